// SPDX-License-Identifier: GPL-2.0
/* Fixture in the style of xdp-tutorial's packet03-redirecting and AF_XDP examples: typed
 * devmap, devmap_hash and xskmap (libbpf creates these without BTF key/value types).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 8);
} tx_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__type(key, __u32);
	__type(value, struct bpf_devmap_val);
	__uint(max_entries, 16);
} tx_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 64);
} xsks_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CPUMAP);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct bpf_cpumap_val));
	__uint(max_entries, 4);
} cpu_map SEC(".maps");

SEC("xdp")
int xdp_redirect_map_prog(struct xdp_md *ctx)
{
	return bpf_redirect_map(&tx_ports, 0, XDP_PASS);
}

SEC("xdp")
int xdp_redirect_hash_prog(struct xdp_md *ctx)
{
	return bpf_redirect_map(&tx_hash, 7, XDP_ABORTED);
}

SEC("xdp")
int xdp_sock_prog(struct xdp_md *ctx)
{
	return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
}

SEC("xdp")
int xdp_cpu_prog(struct xdp_md *ctx)
{
	return bpf_redirect_map(&cpu_map, 1, XDP_DROP);
}

char LICENSE[] SEC("license") = "GPL";
