// SPDX-License-Identifier: GPL-2.0
/* Fixture: kfunc calls as networking programs make them — conntrack lookups from XDP and tc
 * (bpf_xdp_ct_lookup / bpf_skb_ct_lookup, released with bpf_ct_release), and a weak kfunc this
 * kernel lacks, called only behind `if (kfunc)` so the verifier prunes the call. Taking a
 * kfunc's address is a typed ksym load by BTF id, which this kernel can resolve (functions are
 * in kallsyms; per-CPU variables, see ksym_percpu.bpf.c, are not without KALLSYMS_ALL).
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include "conntrack_kfuncs.h"

extern int bgt_no_such_kfunc(int x) __ksym __weak;

__s32 last_error;
__u64 release_addr; /* &kfunc: an ldimm64 of the function's BTF id (BPF_PSEUDO_BTF_ID) */

SEC("xdp")
int xdp_ct(struct xdp_md *ctx)
{
	struct bpf_sock_tuple tup = {};
	struct bpf_ct_opts opts = { .netns_id = -1, .l4proto = 6 };
	struct nf_conn *ct;

	tup.ipv4.saddr = 0x0100007f;
	tup.ipv4.daddr = 0x0100007f;
	tup.ipv4.sport = 1234;
	tup.ipv4.dport = 80;
	ct = bpf_xdp_ct_lookup(ctx, &tup, sizeof(tup.ipv4), &opts, sizeof(opts));
	if (ct) {
		bpf_ct_release(ct);
		return XDP_DROP;
	}
	last_error = opts.error;
	release_addr = (__u64)&bpf_ct_release;
	if (bgt_no_such_kfunc)
		return bgt_no_such_kfunc(1);
	return XDP_PASS;
}

SEC("tc")
int tc_ct(struct __sk_buff *skb)
{
	struct bpf_sock_tuple tup = {};
	struct bpf_ct_opts opts = { .netns_id = -1, .l4proto = 17 };
	struct nf_conn *ct;

	ct = bpf_skb_ct_lookup(skb, &tup, sizeof(tup.ipv4), &opts, sizeof(opts));
	if (ct) {
		bpf_ct_release(ct);
		return TC_ACT_SHOT;
	}
	last_error = opts.error;
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
