// SPDX-License-Identifier: GPL-2.0
/* Corpus (libbpf-tools tcpconnect / bcc tcpconnlat style): kprobe/kretprobe on
 * tcp_v4_connect, struct sock / sock_common CO-RE reads through nested anonymous unions,
 * a subprogram shared by two programs (its relocations travel with it). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u32);
	__type(value, struct sock *);
} sockets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, u64);
	__type(value, u64);
} flows SEC(".maps");

static __noinline u64 flow_key(struct sock *sk)
{
	u32 daddr = BPF_CORE_READ(sk, __sk_common.skc_daddr);
	u16 dport = BPF_CORE_READ(sk, __sk_common.skc_dport);
	u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	return ((u64)daddr << 32) | ((u64)dport << 16) | family;
}

SEC("kprobe/tcp_v4_connect")
int BPF_KPROBE(tcp_v4_connect_enter, struct sock *sk)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();

	bpf_map_update_elem(&sockets, &tid, &sk, 0);
	return 0;
}

SEC("kretprobe/tcp_v4_connect")
int BPF_KRETPROBE(tcp_v4_connect_exit, int ret)
{
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct sock **skpp = bpf_map_lookup_elem(&sockets, &tid);
	u64 key, one = 1;

	if (!skpp)
		return 0;
	if (ret == 0) {
		key = flow_key(*skpp);
		bpf_map_update_elem(&flows, &key, &one, 0);
	}
	bpf_map_delete_elem(&sockets, &tid);
	return 0;
}

SEC("kprobe/tcp_close")
int BPF_KPROBE(tcp_close_enter, struct sock *sk)
{
	u64 key = flow_key(sk);

	bpf_map_delete_elem(&flows, &key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
