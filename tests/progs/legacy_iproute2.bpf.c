// SPDX-License-Identifier: GPL-2.0
/* Fixture in the style of iproute2's examples (tc/xdp objects before BTF maps): struct
 * bpf_elf_map definitions in SEC("maps"), one shared through PIN_GLOBAL_NS, one private.
 * GLOBAL_MAP names the shared map (tests pass a unique name: it lives in bpffs/tc/globals).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef GLOBAL_MAP
#define GLOBAL_MAP shared_counts
#endif

#define PIN_NONE 0
#define PIN_GLOBAL_NS 2

struct bpf_elf_map {
	__u32 type;
	__u32 size_key;
	__u32 size_value;
	__u32 max_elem;
	__u32 flags;
	__u32 id;
	__u32 pinning;
	__u32 inner_id;
	__u32 inner_idx;
};

struct bpf_elf_map SEC("maps") GLOBAL_MAP = {
	.type = BPF_MAP_TYPE_ARRAY,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u64),
	.max_elem = 4,
	.pinning = PIN_GLOBAL_NS,
};

struct bpf_elf_map SEC("maps") private_seen = {
	.type = BPF_MAP_TYPE_HASH,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u64),
	.max_elem = 16,
	.flags = BPF_F_NO_PREALLOC,
	.pinning = PIN_NONE,
};

SEC("xdp")
int count_packets(struct xdp_md *ctx)
{
	__u32 k = 1;
	__u64 *v = bpf_map_lookup_elem(&GLOBAL_MAP, &k), one = 1;

	if (!v)
		return XDP_ABORTED;
	__sync_fetch_and_add(v, 1);
	bpf_map_update_elem(&private_seen, &k, &one, BPF_ANY);
	return *v > 1 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
