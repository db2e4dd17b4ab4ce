// SPDX-License-Identifier: GPL-2.0
/* Fixture: BPF-to-BPF calls. Two socket-filter programs in one section and a tc program call
 * a static and a global subprogram in .text; one passes a static callback to bpf_loop (a
 * BPF_PSEUDO_FUNC reference). Return values depend on .rodata so the loader tests can check
 * relocations by BPF_PROG_TEST_RUN: sum_prog returns add3(base, 1, 2) * scale, and so on.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 base = 10;
const volatile __u32 scale = 3;
const char greeting[] = "hello";

static __attribute__((noinline)) __u32 add3(__u32 a, __u32 b, __u32 c)
{
	return a + b + c;
}

__attribute__((noinline)) int global_mul(int x)
{
	return x * scale;
}

static int loop_cb(__u32 i, void *ctx)
{
	*(__u32 *)ctx += i;
	return 0;
}

SEC("socket")
int sum_prog(struct __sk_buff *skb)
{
	return global_mul(add3(base, 1, 2));
}

SEC("socket")
int loop_prog(struct __sk_buff *skb)
{
	__u32 acc = base;

	bpf_loop(4, loop_cb, &acc, 0); /* acc = base + 0+1+2+3 */
	return acc + greeting[1] + "xyz"[base & 1]; /* literal: .rodata.str1.1 */
}

SEC("tc")
int tc_prog(struct __sk_buff *skb)
{
	return add3(1, 2, base) > 12 ? 0 : 2;
}

char LICENSE[] SEC("license") = "GPL";
