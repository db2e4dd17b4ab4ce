// SPDX-License-Identifier: GPL-2.0
/* Corpus, refused: an unguarded enumerator no kernel has (a poisoned ldimm64 the verifier
 * reaches). libbpf refuses it; so must we. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

enum bpf_map_type___want {
	BPF_MAP_TYPE_NEVER_EXISTED___want = 1234,
};

SEC("xdp")
int want_enum(struct xdp_md *ctx)
{
	return bpf_core_enum_value(enum bpf_map_type___want, BPF_MAP_TYPE_NEVER_EXISTED___want) ==
			       1234 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
