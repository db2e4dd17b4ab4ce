// SPDX-License-Identifier: GPL-2.0
/* Fixture: CO-RE reads of the running kernel's task_struct, one relocation kind after another.
 * The local type views below put every field at the wrong offset on purpose (only what we
 * read, in a different order), so a loader that skips CO-RE reads garbage. `task_reads`
 * returns 0 when every relocated value is right and the __LINE__ of the first wrong one.
 *
 * The test passes the truth in the packet (thread id, process id, parent process id, comm, as
 * the test-running thread sees them) and, as -D macros taken from `bpftool btf dump` of
 * /sys/kernel/btf/vmlinux, the kernel's own layout facts: TASK_ID (type id of struct
 * task_struct), TASK_SIZE, PID_OFF (byte offset of pid), BF_BITS_OFF/BF_BITS (bit offset and
 * width of the init_private_fork_class bitfield).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/* newer bpf_core_read.h has these; libbpf 1.1's does not */
#ifndef bpf_core_field_signed
#define bpf_core_field_signed(field) __builtin_preserve_field_info(field, BPF_FIELD_SIGNED)
#endif
#ifndef bpf_core_field_lshift
#define bpf_core_field_lshift(field) __builtin_preserve_field_info(field, BPF_FIELD_LSHIFT_U64)
#define bpf_core_field_rshift(field) __builtin_preserve_field_info(field, BPF_FIELD_RSHIFT_U64)
#endif

struct task_struct {
	char comm[16];
	unsigned int flags;
	struct task_struct *real_parent;
	int tgid;
	int pid;
	unsigned int init_private_fork_class : 4;
	int no_such_field_in_any_kernel;
} __attribute__((preserve_access_index));

/* task_struct.state became __state in 5.14: a flavor per layout, resolved by existence */
struct task_struct___new {
	unsigned int __state;
} __attribute__((preserve_access_index));

struct task_struct___old {
	long state;
} __attribute__((preserve_access_index));

struct no_such_struct_in_any_kernel {
	int x;
};

/* local enumerators with the wrong values, named with a flavor suffix */
enum bpf_map_type___local {
	BPF_MAP_TYPE_RINGBUF___local = 1,
	BPF_MAP_TYPE_NO_SUCH_MAP___local = 2,
};

struct truth {
	__u32 tid;
	__u32 tgid;
	__u32 ppid;
	char comm[16];
};

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond))                                                                       \
			return __LINE__;                                                           \
	} while (0)

SEC("xdp")
int task_reads(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct truth *want = data;
	struct task_struct *t = (void *)bpf_get_current_task();
	char comm[16];
	__u64 raw = 0, bits;
	unsigned int state;
	int i;

	if ((void *)(want + 1) > end)
		return __LINE__;
	/* field byte offsets of plain fields, read through bpf_probe_read_kernel */
	CHECK(BPF_CORE_READ(t, pid) == want->tid);
	CHECK(BPF_CORE_READ(t, tgid) == want->tgid);
	CHECK(BPF_CORE_READ(t, real_parent, tgid) == want->ppid);
	BPF_CORE_READ_STR_INTO(&comm, t, comm);
	for (i = 0; i < 16; i++) {
		CHECK(comm[i] == want->comm[i]);
		if (!comm[i])
			break;
	}
	CHECK(bpf_core_field_offset(t->pid) == PID_OFF);
	/* sizes, signedness */
	CHECK(bpf_core_field_size(t->comm) == 16);
	CHECK(bpf_core_field_size(t->real_parent) == 8);
	CHECK(bpf_core_field_signed(t->pid) == 1);
	CHECK(bpf_core_field_signed(t->flags) == 0);
	/* a bitfield: byte offset/size and shifts, checked against a plain read of its bits */
	bpf_probe_read_kernel(&raw, 8, (void *)t + BF_BITS_OFF / 8 / 8 * 8);
	bits = (raw >> (BF_BITS_OFF % 64)) & ((1ULL << BF_BITS) - 1);
	CHECK(BPF_CORE_READ_BITFIELD_PROBED(t, init_private_fork_class) == bits);
	CHECK(bpf_core_field_signed(t->init_private_fork_class) == 0);
	CHECK(bpf_core_field_rshift(t->init_private_fork_class) == 64 - BF_BITS);
	CHECK(bpf_core_field_lshift(t->init_private_fork_class) ==
	      64 - BF_BITS - BF_BITS_OFF % 32);
	/* flavors: exactly one layout of the state field exists; the running task is runnable */
	CHECK(bpf_core_field_exists(struct task_struct___new, __state) +
		      bpf_core_field_exists(struct task_struct___old, state) ==
	      1);
	if (bpf_core_field_exists(struct task_struct___new, __state))
		state = BPF_CORE_READ((struct task_struct___new *)t, __state);
	else
		state = BPF_CORE_READ((struct task_struct___old *)t, state);
	CHECK(state == 0);
	/* a missing field, guarded: the poisoned read is dead code the verifier drops */
	CHECK(!bpf_core_field_exists(t->no_such_field_in_any_kernel));
	if (bpf_core_field_exists(t->no_such_field_in_any_kernel))
		return BPF_CORE_READ(t, no_such_field_in_any_kernel);
	/* types */
	CHECK(bpf_core_type_exists(struct task_struct));
	CHECK(!bpf_core_type_exists(struct no_such_struct_in_any_kernel));
	CHECK(bpf_core_type_size(struct task_struct) == TASK_SIZE);
	CHECK(bpf_core_type_size(struct no_such_struct_in_any_kernel) == 0);
	CHECK(bpf_core_type_id_kernel(struct task_struct) == TASK_ID);
	CHECK(bpf_core_type_id_kernel(struct no_such_struct_in_any_kernel) == 0);
	CHECK(bpf_core_type_id_local(struct task_struct) != 0);
	/* enum values */
	CHECK(bpf_core_enum_value_exists(enum bpf_map_type___local, BPF_MAP_TYPE_RINGBUF___local));
	CHECK(bpf_core_enum_value(enum bpf_map_type___local, BPF_MAP_TYPE_RINGBUF___local) ==
	      BPF_MAP_TYPE_RINGBUF);
	CHECK(!bpf_core_enum_value_exists(enum bpf_map_type___local,
					  BPF_MAP_TYPE_NO_SUCH_MAP___local));
	if (bpf_core_enum_value_exists(enum bpf_map_type___local, BPF_MAP_TYPE_NO_SUCH_MAP___local))
		return bpf_core_enum_value(enum bpf_map_type___local,
					   BPF_MAP_TYPE_NO_SUCH_MAP___local);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
