// SPDX-License-Identifier: GPL-2.0
/* Corpus (Cilium / pwru style): tp_btf on kfree_skb reading struct sk_buff — length,
 * device ifindex, the pkt_type bitfield — enum skb_drop_reason values checked with
 * bpf_core_enum_value_exists, and a type-size guard. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define PACKET_HOST 0 /* linux/if_packet.h: a macro, so not in vmlinux.h */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, u32);
	__type(value, u64);
	__uint(max_entries, 4);
} counts SEC(".maps");

static __always_inline void bump(u32 slot, u64 by)
{
	u64 *total = bpf_map_lookup_elem(&counts, &slot);

	if (total != NULL)
		__sync_fetch_and_add(total, by);
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(on_drop, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	u32 ifindex = BPF_CORE_READ(skb, dev, ifindex);
	u8 pkt_type = BPF_CORE_READ_BITFIELD_PROBED(skb, pkt_type);

	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET))
		bump(0, 1);
	if (pkt_type == PACKET_HOST)
		bump(1, skb->len);
	if (bpf_core_type_size(struct sk_buff) > 0)
		bump(2, ifindex);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
