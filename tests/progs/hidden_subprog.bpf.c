// SPDX-License-Identifier: GPL-2.0
/* Fixture: a global subprogram with hidden visibility (libbpf's __hidden, as in usdt.bpf.h) is
 * verified in its caller's context: its BTF FUNC is made static, as libbpf does. Verified alone,
 * `*res = ...` through a `long *` the verifier must assume may be NULL is refused. Also a
 * `ksyscall/` program (libbpf's kprobe on a syscall). */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>

const volatile long bonus = 0;

__attribute__((visibility("hidden"))) __attribute__((noinline)) int fill(void *ctx, long *res)
{
	*res = 40 + bonus;
	return ctx != 0;
}

SEC("xdp")
int hidden_call(struct xdp_md *ctx)
{
	long v = 0;

	fill(ctx, &v);
	return v == 42 ? XDP_PASS : XDP_DROP;
}

SEC("ksyscall/getpid")
int getpid_entry(struct pt_regs *ctx)
{
	long v = 0;

	return fill(ctx, &v);
}

char LICENSE[] SEC("license") = "GPL";
