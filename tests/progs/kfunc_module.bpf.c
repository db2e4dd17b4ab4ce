// SPDX-License-Identifier: GPL-2.0
/* Fixture: a kfunc and a typed ksym that only a kernel module's BTF would have. This kernel
 * has no module BTFs, so they are weak here (the program loads with both pruned); the unit
 * tests resolve them against a made-up split module BTF to prove the fd_array path.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int bgt_mod_kfunc(int x) __ksym __weak;
extern const int bgt_mod_counter __ksym __weak;

SEC("xdp")
int use_module(struct xdp_md *ctx)
{
	int r = XDP_PASS;

	if (bgt_mod_kfunc)
		r = bgt_mod_kfunc(7);
	if (&bgt_mod_counter)
		r += *(const int *)bpf_this_cpu_ptr(&bgt_mod_counter);
	return r;
}

char _license[] SEC("license") = "GPL";
