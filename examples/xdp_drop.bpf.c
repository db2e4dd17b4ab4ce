// SPDX-License-Identifier: GPL-2.0
// xdp_drop: drop UDP packets to one configurable port, count what passes and what drops.
//
// Compiled once; configured through its globals, never recompiled:
//   .rodata  drop_port, drop_icmp   -> a change loads a new variant (frozen, so the verifier
//                                      prunes dead branches) and swaps it in atomically
//   .bss     log_level              -> written into the live map, same program (zero-initialized,
//                                      so clang puts it in .bss; `= 1` would make it .data)
//   .bss     last_dropped_saddr     -> runtime state written by the program
//   stats    (BTF map, pinned)      -> counters shared by every variant across swaps
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

const volatile __u16 drop_port = 9999;	/* UDP destination port to drop; 0 drops none */
const volatile bool drop_icmp = false;	/* also drop ICMP echo */
volatile __u32 log_level = 0;		/* live-tunable without reload */
__be32 last_dropped_saddr = 0;		/* written by the program */

enum stat { STAT_PASS = 0, STAT_DROP = 1, STAT_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline int count(__u32 which, int verdict)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &which);

	if (v)
		*v += 1;
	return verdict;
}

SEC("xdp")
int xdp_drop(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *udp;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return count(STAT_PASS, XDP_PASS);
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return count(STAT_PASS, XDP_PASS);
	if (drop_icmp && ip->protocol == IPPROTO_ICMP) {
		last_dropped_saddr = ip->saddr;
		return count(STAT_DROP, XDP_DROP);
	}
	if (ip->protocol != IPPROTO_UDP || drop_port == 0)
		return count(STAT_PASS, XDP_PASS);
	udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > end)
		return count(STAT_PASS, XDP_PASS);
	if (udp->dest == bpf_htons(drop_port)) {
		last_dropped_saddr = ip->saddr;
		if (log_level > 0)
			bpf_printk("xdp_drop: dropped udp to %d", drop_port);
		return count(STAT_DROP, XDP_DROP);
	}
	return count(STAT_PASS, XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";
