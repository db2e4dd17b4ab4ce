// SPDX-License-Identifier: GPL-2.0
/* Fixture: a typed __ksym — a per-CPU kernel variable found by its vmlinux BTF id and read
 * through bpf_this_cpu_ptr / bpf_per_cpu_ptr (the ldimm64 carries BPF_PSEUDO_BTF_ID). The
 * kernel then needs the variable's address from kallsyms, which kernels without
 * CONFIG_KALLSYMS_ALL do not have: there both loaders must fail the same way.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern const int bpf_prog_active __ksym;

__s32 active_here, active_cpu0;

SEC("xdp")
int percpu(struct xdp_md *ctx)
{
	const int *here = bpf_this_cpu_ptr(&bpf_prog_active);
	const int *cpu0 = bpf_per_cpu_ptr(&bpf_prog_active, 0);

	active_here = *here;
	active_cpu0 = cpu0 ? *cpu0 : -1;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
