// SPDX-License-Identifier: GPL-2.0
// Counts one process's calls of one system call, through four kinds of tracing hook:
// a tracepoint, a raw tracepoint, a BTF-typed tracepoint and an fentry probe. Which process
// and which call are .rodata globals: configuration, not code.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 target_tgid = 0; // 0: every process
const volatile __u64 syscall_nr = 39; // getpid on x86_64 (172 on arm64)

__u64 tp_hits = 0;     // tracepoint syscalls/sys_enter_getpid
__u64 raw_hits = 0;    // raw_tp sys_enter, filtered by syscall_nr
__u64 btf_hits = 0;    // tp_btf sys_enter, filtered by syscall_nr
__u64 fentry_hits = 0; // fentry on the kernel function getpid() calls (other callers too)

static __always_inline int wanted(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	return !target_tgid || tgid == target_tgid;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int count_tp(void *ctx)
{
	if (wanted())
		__sync_fetch_and_add(&tp_hits, 1);
	return 0;
}

SEC("raw_tp/sys_enter")
int count_raw(struct bpf_raw_tracepoint_args *ctx)
{
	if (ctx->args[1] == syscall_nr && wanted())
		__sync_fetch_and_add(&raw_hits, 1);
	return 0;
}

SEC("tp_btf/sys_enter")
int count_btf(__u64 *ctx)
{
	if (ctx[1] == syscall_nr && wanted())
		__sync_fetch_and_add(&btf_hits, 1);
	return 0;
}

SEC("fentry/__task_pid_nr_ns")
int count_fentry(__u64 *ctx)
{
	if (wanted())
		__sync_fetch_and_add(&fentry_hits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
