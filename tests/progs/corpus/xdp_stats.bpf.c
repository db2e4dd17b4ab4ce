// SPDX-License-Identifier: GPL-2.0
/* Corpus (xdp-tutorial style): XDP packet parsing with direct packet access, plus CO-RE
 * guards on kernel types an XDP program may reference (type exists / enum value). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800

struct datarec {
	u64 rx_packets;
	u64 rx_bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 5);
	__type(key, u32);
	__type(value, struct datarec);
} xdp_stats_map SEC(".maps");

SEC("xdp")
int xdp_stats(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	u32 key = XDP_PASS;
	struct datarec *rec;

	if ((void *)(eth + 1) > end)
		return XDP_ABORTED;
	if (eth->h_proto == bpf_htons(ETH_P_IP) && bpf_core_type_exists(struct iphdr)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > end)
			return XDP_ABORTED;
		if (ip->protocol == IPPROTO_ICMP)
			key = bpf_core_enum_value(enum xdp_action, XDP_DROP);
	}
	rec = bpf_map_lookup_elem(&xdp_stats_map, &key);
	if (!rec)
		return XDP_ABORTED;
	rec->rx_packets++;
	rec->rx_bytes += end - data;
	return key;
}

char LICENSE[] SEC("license") = "GPL";
