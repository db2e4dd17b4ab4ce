// SPDX-License-Identifier: GPL-2.0
/* Fixture: every kind of __kconfig extern libbpf fills — bool, tristate, char, 1/2/4/8-byte
 * integers (signed and unsigned), strings in char arrays (fitting and truncated), the virtual
 * LINUX_* externs, and weak externs this kernel's config does not set (they read as zero).
 * `report` copies every value into .bss so a test run shows what the loader wrote.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>


extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern bool LINUX_HAS_BPF_COOKIE __kconfig;
extern bool LINUX_HAS_SYSCALL_WRAPPER __kconfig;
extern int LINUX_SOMETHING_NEW __kconfig __weak; /* unknown virtual extern: weak, so 0 */
extern bool CONFIG_BPF_SYSCALL __kconfig;
extern enum libbpf_tristate CONFIG_BPF_JIT __kconfig;
extern char CONFIG_NET_CLS_BPF __kconfig; /* 'y' as a char */
extern int CONFIG_HZ __kconfig;
extern unsigned short CONFIG_NR_CPUS __kconfig;
extern unsigned char CONFIG_LOG_BUF_SHIFT __kconfig;
extern unsigned long long CONFIG_ILLEGAL_POINTER_VALUE __kconfig;
extern char CONFIG_LOCALVERSION[32] __kconfig;
extern char CONFIG_DEFAULT_HOSTNAME[4] __kconfig; /* "(none)" truncated to "(no" */
extern bool CONFIG_BGT_NOT_A_REAL_OPTION __kconfig __weak;
extern enum libbpf_tristate CONFIG_BGT_MISSING_TRISTATE __kconfig __weak;
extern long CONFIG_BGT_MISSING_INT __kconfig __weak;
extern char CONFIG_BGT_MISSING_STR[8] __kconfig __weak;

struct report {
	__u32 kernel_version;
	__u8 has_cookie, has_wrapper, bpf_syscall, net_cls_char;
	__s32 something_new;
	__u32 bpf_jit;
	__s32 hz;
	__u16 nr_cpus;
	__u8 log_buf_shift, missing_bool;
	__u64 illegal_pointer;
	char localversion[32];
	char hostname[4];
	__u32 missing_tristate;
	__s64 missing_int;
	char missing_str[8];
};

struct report out;

SEC("xdp")
int report(struct xdp_md *ctx)
{
	out.kernel_version = LINUX_KERNEL_VERSION;
	out.has_cookie = LINUX_HAS_BPF_COOKIE;
	out.has_wrapper = LINUX_HAS_SYSCALL_WRAPPER;
	out.bpf_syscall = CONFIG_BPF_SYSCALL;
	out.net_cls_char = CONFIG_NET_CLS_BPF;
	out.something_new = LINUX_SOMETHING_NEW;
	out.bpf_jit = CONFIG_BPF_JIT;
	out.hz = CONFIG_HZ;
	out.nr_cpus = CONFIG_NR_CPUS;
	out.log_buf_shift = CONFIG_LOG_BUF_SHIFT;
	out.missing_bool = CONFIG_BGT_NOT_A_REAL_OPTION;
	out.illegal_pointer = CONFIG_ILLEGAL_POINTER_VALUE;
	__builtin_memcpy(out.localversion, CONFIG_LOCALVERSION, sizeof(out.localversion));
	__builtin_memcpy(out.hostname, CONFIG_DEFAULT_HOSTNAME, sizeof(out.hostname));
	out.missing_tristate = CONFIG_BGT_MISSING_TRISTATE;
	out.missing_int = CONFIG_BGT_MISSING_INT;
	__builtin_memcpy(out.missing_str, CONFIG_BGT_MISSING_STR, sizeof(out.missing_str));
	/* the verifier sees .kconfig as read-only constants: this branch is pruned */
	if (CONFIG_HZ == 0)
		return XDP_ABORTED;
	return CONFIG_BPF_SYSCALL ? XDP_PASS : XDP_DROP;
}

char _license[] SEC("license") = "GPL";
