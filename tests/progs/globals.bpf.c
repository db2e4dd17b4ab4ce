// SPDX-License-Identifier: GPL-2.0
/* Fixture: every global-data section kind and every scalar/aggregate type the value codec
 * knows, in static and global variables, read by two XDP programs in one section.
 * `config_ret` returns a value computed from .rodata/.data so the loader tests can prove with
 * BPF_PROG_TEST_RUN that configured values reach the program; `record` writes .bss/.data.
 * libbpf 1.1 (bpftool 7.1) skips custom .bss.* sections, so those live in custom_bss.bpf.c.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/in6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

enum mode { MODE_OFF = 0, MODE_LOG = 1, MODE_DROP = 2 };
enum wide : long long { WIDE_NEG = -5, WIDE_BIG = 0x100000000LL };

struct limits {
	__u16 low;
	__u16 high;
};

struct cfg {
	__u32 flags;
	struct limits lim;
	__u8 tag[4];
	union {
		__u32 as_u32;
		__u8 as_bytes[4];
	} u;
	__u32 bit_a : 3, bit_b : 5;
};

/* .rodata: configuration the verifier sees as constants */
const volatile __u8 ro_u8 = 8;
const volatile __s8 ro_s8 = -8;
const volatile __u16 ro_u16 = 1600;
const volatile __s16 ro_s16 = -1600;
const volatile __u32 ro_u32 = 320000;
const volatile __s32 ro_s32 = -320000;
const volatile __u64 ro_u64 = 6400000000ULL;
const volatile __s64 ro_s64 = -6400000000LL;
const volatile bool ro_bool = true;
const volatile enum mode ro_mode = MODE_LOG;
const volatile enum wide ro_wide = WIDE_NEG;
const volatile char ro_name[16] = "eth0";
const volatile __u32 ro_ports[4] = {80, 443, 0, 0};
const volatile struct cfg ro_cfg = { .flags = 1, .lim = { .low = 10, .high = 20 }, .bit_a = 5, .bit_b = 17 };
const volatile __be16 ro_port_be = 0x5000; /* htons(80) on little endian */
const volatile __be32 ro_addr_be = 0x0100007f; /* 127.0.0.1 */
const volatile __be64 ro_be64 = 0;
const volatile __u32 ro_addr_u32 = 0;
const volatile __u8 ro_mac[6] = {0x02, 0, 0, 0, 0, 1};
const volatile struct in6_addr ro_addr6 = {};
const volatile __u8 ro_raw16[16] = {};
static const volatile __u32 ro_static = 7;

/* .data: initialised, writable at run time */
volatile __u32 data_counter_limit = 100;
volatile __s64 data_delta = -3;
static volatile __u16 data_static = 5;

/* .bss: zero-initialised */
volatile __u64 bss_hits;
volatile __u32 bss_last;
static volatile __u32 bss_static;

/* custom sections: each becomes its own internal map */
const volatile __u32 extra_ro SEC(".rodata.extra") = 42;
volatile __u32 extra_data SEC(".data.extra") = 43;

/* Return value depends on .rodata and .data: ro_u32 + data_counter_limit + extra_ro. */
SEC("xdp")
int config_ret(struct xdp_md *ctx)
{
	if (ro_mode == MODE_OFF)
		return 0;
	return ro_u32 + data_counter_limit + extra_ro + ro_static + data_static;
}

/* Writes .bss/.data so tests can read back program-side updates. */
SEC("xdp")
int record(struct xdp_md *ctx)
{
	bss_hits++;
	bss_last = ro_ports[1] + ro_cfg.lim.high + ro_name[0];
	bss_last += extra_data + bss_static;
	bss_static++;
	data_delta += 1;
	return XDP_PASS;
}

/* Reads the remaining variables so nothing is optimised away. */
SEC("xdp")
int touch_all(struct xdp_md *ctx)
{
	__u64 s = ro_u8 + ro_s8 + ro_u16 + ro_s16 + ro_s32 + ro_u64 + ro_s64 + ro_bool + ro_wide;
	s += ro_port_be + ro_addr_be + ro_be64 + ro_addr_u32 + ro_mac[5] + ro_addr6.s6_addr[15];
	s += ro_raw16[3] + ro_cfg.u.as_u32 + ro_cfg.tag[1] + ro_cfg.bit_a;
	return s & 1 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
