// SPDX-License-Identifier: GPL-2.0
/* Fixture: BTF-defined maps of several types, with key/value given as types or sizes,
 * flags, and LIBBPF_PIN_BY_NAME pinning; one XDP program uses them all.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct flow {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct flow);
	__type(value, __u64);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 128);
	__uint(key_size, 4);
	__uint(value_size, 8);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
} recent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

const volatile __u32 limit = 5;

SEC("xdp")
int use_maps(struct xdp_md *ctx)
{
	struct flow f = { .sport = 1 };
	__u32 k = 0;
	__u64 *v, one = 1;

	bpf_map_update_elem(&flows, &f, &one, BPF_ANY);
	v = bpf_map_lookup_elem(&counters, &k);
	if (v)
		*v += limit;
	bpf_map_update_elem(&recent, &k, &one, BPF_ANY);
	bpf_ringbuf_output(&events, &k, sizeof(k), 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
