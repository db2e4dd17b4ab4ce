// SPDX-License-Identifier: GPL-2.0
/* Fixture: the remaining map kinds as public objects declare them, typed where tools type
 * them: sockmap/sockhash/stack trace (libbpf leaves their BTF out), reuseport array, LPM trie,
 * and an arena (BPF_MAP_TYPE_ARENA, 33: newer than these headers) with its map_extra, the
 * user-space address the kernel maps it at; socket and task local storage.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAP_TYPE_ARENA 33

struct {
	__uint(type, MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 4);
	__uint(map_extra, 0x100000); /* __uint() spells it as an int array: keep it small */
} arena SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} sock_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__type(key, __u32);
	__type(value, __u64[127]);
	__uint(max_entries, 16);
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} reuse SEC(".maps");

/* Local storage: the kernel needs BTF for these (and libbpf passes it) */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} sk_store SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u32);
} task_store SEC(".maps");

struct lpm_key {
	__u32 prefixlen;
	__u32 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct lpm_key);
	__type(value, __u32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16);
} prefixes SEC(".maps");

SEC("xdp")
int classify(struct xdp_md *ctx)
{
	struct lpm_key k = { .prefixlen = 32, .addr = ctx->data_end - ctx->data };
	__u32 *v = bpf_map_lookup_elem(&prefixes, &k);

	return v ? *v : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
