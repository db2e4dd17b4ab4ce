// SPDX-License-Identifier: GPL-2.0
/* Fixture for the node core: an XDP program whose verdict is a live-tunable .data variable
 * (`verdict`) unless the .rodata `forced_verdict` is set, counting packets per verdict in a
 * pinned-by-the-node user map; and a cgroup_skb program for cgroup attach tests.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 forced_verdict = 0;	/* .rodata: 0 = use `verdict` */
volatile __u32 verdict = XDP_PASS;		/* .data: changed live */
volatile __u64 seen;				/* .bss: state kept across variants */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

SEC("xdp")
int live_xdp(struct xdp_md *ctx)
{
	__u32 v = forced_verdict ? forced_verdict : verdict;
	__u64 *n;

	seen++;
	if (v > 7)
		v = XDP_PASS;
	n = bpf_map_lookup_elem(&verdicts, &v);
	if (n)
		*n += 1;
	return v;
}

SEC("cgroup_skb/ingress")
int cg_ingress(struct __sk_buff *skb)
{
	return 1;
}

SEC("tcx/ingress")
int tcx_pass(struct __sk_buff *skb)
{
	return forced_verdict ? 2 /* TC_ACT_SHOT */ : 0 /* TC_ACT_OK */;
}

char LICENSE[] SEC("license") = "GPL";
