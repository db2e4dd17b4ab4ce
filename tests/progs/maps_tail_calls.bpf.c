// SPDX-License-Identifier: GPL-2.0
/* Fixture: tail calls through a prog array whose slots are filled by `.maps` initialisers
 * (libbpf's init_prog_array_slots), in the style of cilium's and xdp-tools' dispatchers.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 start_slot = 0;

SEC("xdp")
int tail_tx(struct xdp_md *ctx)
{
	return XDP_TX;
}

SEC("xdp")
int tail_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} jmp_table SEC(".maps") = {
	.values = {
		[0] = (void *)&tail_tx,
		[2] = (void *)&tail_drop,
	},
};

/* Typed the way many tools declare it: the kernel refuses BTF for prog arrays (ENOTSUPP),
 * libbpf retries without; user space fills it. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u32);
} typed_jmp SEC(".maps");

SEC("xdp")
int dispatch_typed(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &typed_jmp, 0);
	return XDP_ABORTED;
}

SEC("xdp")
int dispatch(struct xdp_md *ctx)
{
	__u32 len = ctx->data_end - ctx->data;

	bpf_tail_call(ctx, &jmp_table, start_slot + (len & 3));
	return XDP_PASS; /* empty slot: fall through */
}

char LICENSE[] SEC("license") = "GPL";
