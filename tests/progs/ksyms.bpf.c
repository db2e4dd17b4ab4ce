// SPDX-License-Identifier: GPL-2.0
/* Fixture: __ksym variables. A typeless ksym is the symbol's kallsyms address; weak ksyms
 * this kernel lacks, typed and typeless, resolve to NULL and their use is pruned. (A strong
 * typed ksym is in ksym_percpu.bpf.c.) `ksyms` writes what it saw into .bss so a test run
 * compares both loaders' results.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern const int bgt_no_such_percpu __ksym __weak;       /* typed, missing */
extern const void _stext __ksym;                         /* typeless: an address */
extern const void bgt_no_such_symbol __ksym __weak;      /* typeless, missing */

struct seen {
	__u64 _stext_addr;
	__u64 missing_addr;
	__u32 missing_typed_is_null;
};

struct seen seen;

SEC("xdp")
int ksyms(struct xdp_md *ctx)
{
	seen._stext_addr = (__u64)&_stext;
	seen.missing_addr = (__u64)&bgt_no_such_symbol;
	seen.missing_typed_is_null = &bgt_no_such_percpu == 0;
	if (&bgt_no_such_percpu) {
		/* pruned when the weak ksym is missing */
		const int *p = bpf_this_cpu_ptr(&bgt_no_such_percpu);
		return *p ? XDP_DROP : XDP_ABORTED;
	}
	return seen._stext_addr ? XDP_PASS : XDP_DROP;
}

char _license[] SEC("license") = "GPL";
