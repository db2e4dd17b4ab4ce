// SPDX-License-Identifier: GPL-2.0
/* Fixture: the legacy `maps` section (struct bpf_map_def), which libbpf 1.x no longer loads
 * but the parser still reads. Kept apart from objects the libbpf differential tests load.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

struct bpf_map_def SEC("maps") legacy_hash = {
	.type = BPF_MAP_TYPE_HASH, .key_size = 4, .value_size = 8, .max_entries = 16,
};
struct bpf_map_def SEC("maps") legacy_array = {
	.type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 4, .max_entries = 2,
	.map_flags = 0,
};

SEC("socket")
int legacy(struct __sk_buff *skb)
{
	__u32 k = 0;
	return bpf_map_lookup_elem(&legacy_array, &k) != 0;
}

char LICENSE[] SEC("license") = "GPL";
__u32 _version SEC("version") = 0x060100;
