// SPDX-License-Identifier: GPL-2.0
/* Fixture in the style of bcc's libbpf-tools (execsnoop, runqlat): a perf event array declared
 * without max_entries (sized to the possible CPUs), one sized and typed, a cgroup array check,
 * queue/stack with typed values and a ring buffer whose size is not a power-of-2 of pages.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct event {
	__u32 pid;
	__u32 len;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__type(key, int);
	__type(value, __u32);
} typed_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__type(key, int);
	__type(value, __u32);
	__uint(max_entries, 3);
} sized_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
} cgroup_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__type(value, struct event);
	__uint(max_entries, 32);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__type(value, __u64);
	__uint(max_entries, 8);
} lifo SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 5000);
} rb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__type(value, __u32);
	__uint(max_entries, 64);
	__uint(map_extra, 3);
} seen SEC(".maps");

/* An array keyed by a struct: the kernel refuses that BTF key (arrays want an int key), so
 * libbpf retries without BTF; so must we. */
struct slot {
	__u32 idx;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, struct slot);
	__type(value, __u64);
	__uint(max_entries, 2);
} struct_keyed SEC(".maps");

SEC("xdp")
int perf_out(struct xdp_md *ctx)
{
	struct event e = { .pid = 1, .len = ctx->data_end - ctx->data };
	long a = bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));
	long b = bpf_perf_event_output(ctx, &typed_events, BPF_F_CURRENT_CPU, &e, sizeof(e));
	long c = bpf_perf_event_output(ctx, &sized_events, 2, &e, sizeof(e));
	__u64 top = 0, len = e.len;

	bpf_map_push_elem(&pending, &e, 0);
	bpf_map_push_elem(&lifo, &len, 0);
	bpf_map_peek_elem(&lifo, &top);
	bpf_map_push_elem(&seen, &e.len, 0);
	if (bpf_map_peek_elem(&seen, &e.len) != 0)
		return XDP_ABORTED;
	bpf_ringbuf_output(&rb, &e, sizeof(e), 0);
	struct slot s = { .idx = 1 };
	__u64 *cnt = bpf_map_lookup_elem(&struct_keyed, &s);
	if (!cnt)
		return XDP_ABORTED;
	*cnt += 1;
	return (a == -2 && b == -2 && c == -2 && top == len) ? XDP_TX : XDP_DROP;
}

SEC("tc")
int cgroup_check(struct __sk_buff *skb)
{
	long r = bpf_skb_under_cgroup(skb, &cgroup_map, 0);
	return r < 0 ? 2 - r : r;
}

char LICENSE[] SEC("license") = "GPL";
