// SPDX-License-Identifier: GPL-2.0
/* Corpus, refused: a field read through a flavor the kernel does not have, unguarded, in a
 * subprogram (the poisoned instruction is mapped back through the linker). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

struct sock___future {
	u64 sk_field_from_the_future;
} __attribute__((preserve_access_index));

static __noinline u64 future(struct sock *sk)
{
	return BPF_CORE_READ((struct sock___future *)sk, sk_field_from_the_future);
}

SEC("kprobe/tcp_close")
int BPF_KPROBE(close_enter, struct sock *sk)
{
	return future(sk) ? 1 : 0;
}

char LICENSE[] SEC("license") = "GPL";
