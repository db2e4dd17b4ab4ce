/* SPDX-License-Identifier: GPL-2.0 */
/* The conntrack kfuncs as networking programs declare them (vmlinux.h has the same).
 * `struct nf_conn` is defined, not only declared: libbpf's prototype check matches a
 * declaration (FWD) only against a declaration.
 */
#ifndef BGT_CONNTRACK_KFUNCS_H
#define BGT_CONNTRACK_KFUNCS_H

#include <linux/bpf.h>

struct nf_conn {
	unsigned long status;
};

struct bpf_ct_opts {
	__s32 netns_id;
	__s32 error;
	__u8 l4proto;
	__u8 dir;
	__u8 reserved[2];
};

extern struct nf_conn *bpf_xdp_ct_lookup(struct xdp_md *xdp_ctx, struct bpf_sock_tuple *tuple,
					 __u32 tuple_len, struct bpf_ct_opts *opts,
					 __u32 opts_len) __ksym;
extern struct nf_conn *bpf_skb_ct_lookup(struct __sk_buff *skb_ctx, struct bpf_sock_tuple *tuple,
					 __u32 tuple_len, struct bpf_ct_opts *opts,
					 __u32 opts_len) __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __ksym;

#endif
