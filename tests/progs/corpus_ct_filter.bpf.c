// SPDX-License-Identifier: GPL-2.0
/* Corpus: an XDP/tc stateful filter in the style of today's networking tools. New inbound
 * TCP connections to a configured port are dropped unless conntrack knows them; kconfig
 * externs pick the code path for the running kernel (conntrack built in or a module, kernel
 * version gates), and per-CPU counters record the verdicts.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "conntrack_kfuncs.h"

extern enum libbpf_tristate CONFIG_NF_CONNTRACK __kconfig;
extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern bool CONFIG_NF_CONNTRACK_MARK __kconfig __weak;

const volatile __u16 guarded_port = 80;
const volatile bool log_only = false;

enum { STAT_PASS, STAT_DROP, STAT_KNOWN, STAT_NO_CT, STAT_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 what)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &what);

	if (v)
		(*v)++;
}

static __always_inline int parse(void *data, void *end, struct bpf_sock_tuple *t)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp = (void *)(ip + 1);

	if ((void *)(tcp + 1) > end)
		return -1;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_TCP || ip->ihl != 5)
		return -1;
	if (tcp->dest != bpf_htons(guarded_port) || !tcp->syn || tcp->ack)
		return -1;
	t->ipv4.saddr = ip->saddr;
	t->ipv4.daddr = ip->daddr;
	t->ipv4.sport = tcp->source;
	t->ipv4.dport = tcp->dest;
	return 0;
}

SEC("xdp")
int ct_filter_xdp(struct xdp_md *ctx)
{
	struct bpf_sock_tuple t = {};
	struct bpf_ct_opts opts = { .netns_id = -1, .l4proto = IPPROTO_TCP };
	struct nf_conn *ct;

	if (parse((void *)(long)ctx->data, (void *)(long)ctx->data_end, &t)) {
		count(STAT_PASS);
		return XDP_PASS;
	}
	/* conntrack kfuncs exist from 5.18 on, and only with conntrack in the kernel */
	if (CONFIG_NF_CONNTRACK == TRI_NO || LINUX_KERNEL_VERSION < ((5 << 16) | (18 << 8))) {
		count(STAT_NO_CT);
		return XDP_PASS;
	}
	ct = bpf_xdp_ct_lookup(ctx, &t, sizeof(t.ipv4), &opts, sizeof(opts));
	if (ct) {
		bpf_ct_release(ct);
		count(STAT_KNOWN);
		return XDP_PASS;
	}
	count(STAT_DROP);
	return log_only ? XDP_PASS : XDP_DROP;
}

SEC("tc")
int ct_filter_tc(struct __sk_buff *skb)
{
	struct bpf_sock_tuple t = {};
	struct bpf_ct_opts opts = { .netns_id = -1, .l4proto = IPPROTO_TCP };
	struct nf_conn *ct;

	if (parse((void *)(long)skb->data, (void *)(long)skb->data_end, &t))
		return TC_ACT_OK;
	if (CONFIG_NF_CONNTRACK == TRI_NO)
		return TC_ACT_OK;
	ct = bpf_skb_ct_lookup(skb, &t, sizeof(t.ipv4), &opts, sizeof(opts));
	if (ct) {
		bpf_ct_release(ct);
		return TC_ACT_OK;
	}
	count(STAT_DROP);
	return log_only || CONFIG_NF_CONNTRACK_MARK == false ? TC_ACT_OK : TC_ACT_SHOT;
}

char _license[] SEC("license") = "GPL";
