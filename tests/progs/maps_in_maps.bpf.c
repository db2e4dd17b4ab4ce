// SPDX-License-Identifier: GPL-2.0
/* Fixture: map-in-map with inner definitions (`__array(values, struct {...})`) and initial
 * slots, an array of maps and a hash of maps (libbpf's init_map_in_map_slots).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner_arr {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
};

struct inner_arr inner_a SEC(".maps");
struct inner_arr inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 3);
	__type(key, __u32);
	__array(values, struct inner_arr);
} outer_arr SEC(".maps") = {
	.values = { [0] = &inner_a, [2] = &inner_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, int);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_ARRAY);
		__uint(max_entries, 4);
		__type(key, __u32);
		__type(value, __u32);
	});
} outer_hash SEC(".maps") = {
	.values = { [5] = (void *)&inner_b },
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__uint(key_size, 4);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_HASH);
		__uint(max_entries, 16);
		__type(key, __u64);
		__type(value, __u64);
	});
} outer_empty SEC(".maps");

const volatile __u32 bias = 0;

static __u32 probe(void *outer, __u32 key)
{
	__u32 zero = 0, *v;
	void *inner = bpf_map_lookup_elem(outer, &key);

	if (!inner)
		return 0;
	v = bpf_map_lookup_elem(inner, &zero);
	if (!v)
		return 1;
	*v += 1;
	return 2;
}

SEC("xdp")
int walk_maps(struct xdp_md *ctx)
{
	__u32 r = probe(&outer_arr, 0) | probe(&outer_arr, 1) << 2 | probe(&outer_arr, 2) << 4;
	__u64 k = 1;

	r |= probe(&outer_hash, 5) << 6 | probe(&outer_hash, 4) << 8;
	r |= (bpf_map_lookup_elem(&outer_empty, &k) != 0) << 10;
	return r + bias;
}

char LICENSE[] SEC("license") = "GPL";
