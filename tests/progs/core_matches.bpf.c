// SPDX-License-Identifier: GPL-2.0
/* Fixture: bpf_core_type_matches() against the running kernel. clang 14 cannot emit the
 * TYPE_MATCHES relocation (kind 12), so the test compiles these bpf_core_type_exists() calls
 * (kind 8) and rewrites the records' kind in .BTF.ext: both kinds patch an immediate 1/0.
 * `matches` returns one bit per type, set when the relocation says 1. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

typedef int pid_t;

struct task_struct___ok {
	pid_t pid;
	int tgid;
	struct task_struct___ok *real_parent;
};

struct task_struct___wrong_size {
	long pid;
};

struct task_struct___no_member {
	int pid;
	int no_such_member;
};

struct sk_buff___ok {
	unsigned int len;
};

enum bpf_map_type___ok { BPF_MAP_TYPE_HASH___ok = 77, BPF_MAP_TYPE_ARRAY___ok = 78 };

enum bpf_map_type___bad { NOT_A_MAP_TYPE___bad = 1 };

struct no_such_struct_anywhere {
	int x;
};

SEC("xdp")
int matches(struct xdp_md *ctx)
{
	int bits = 0;

	bits |= bpf_core_type_exists(struct task_struct___ok) << 0;
	bits |= bpf_core_type_exists(struct task_struct___wrong_size) << 1;
	bits |= bpf_core_type_exists(struct task_struct___no_member) << 2;
	bits |= bpf_core_type_exists(struct sk_buff___ok) << 3;
	bits |= bpf_core_type_exists(enum bpf_map_type___ok) << 4;
	bits |= bpf_core_type_exists(enum bpf_map_type___bad) << 5;
	bits |= bpf_core_type_exists(struct no_such_struct_anywhere) << 6;
	return bits;
}

char LICENSE[] SEC("license") = "GPL";
