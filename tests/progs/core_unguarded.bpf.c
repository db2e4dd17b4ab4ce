// SPDX-License-Identifier: GPL-2.0
/* Fixture: an unguarded CO-RE read of a field no kernel has. libbpf poisons the instruction
 * and the verifier refuses the program; so must we, naming the relocation. `fine` in the same
 * object has a guarded read of the same field and loads on its own. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_struct {
	int pid;
	int no_such_field_in_any_kernel;
} __attribute__((preserve_access_index));

SEC("xdp")
int unguarded(struct xdp_md *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();

	return BPF_CORE_READ(t, no_such_field_in_any_kernel);
}

SEC("xdp")
int fine(struct xdp_md *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();

	if (bpf_core_field_exists(t->no_such_field_in_any_kernel))
		return BPF_CORE_READ(t, no_such_field_in_any_kernel);
	return BPF_CORE_READ(t, pid) > 0 ? XDP_PASS : XDP_ABORTED;
}

char LICENSE[] SEC("license") = "GPL";
