// SPDX-License-Identifier: GPL-2.0
/* Fixture: a custom .bss.* section (its own internal map in libbpf >= 1.2; libbpf 1.1 skips
 * it). `bump` increments the variable and returns the new value.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

volatile __u32 extra_bss SEC(".bss.extra");

SEC("xdp")
int bump(struct xdp_md *ctx)
{
	return ++extra_bss;
}

char LICENSE[] SEC("license") = "GPL";
