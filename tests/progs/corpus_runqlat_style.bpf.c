// SPDX-License-Identifier: GPL-2.0
/* Corpus: a latency-histogram tool in the style of bcc's libbpf-tools (runqlat, biolatency):
 * tracing programs record timestamps in a hash map and a log2 histogram, choosing clock units
 * from CONFIG_HZ and code paths from LINUX_KERNEL_VERSION and LINUX_HAS_BPF_COOKIE the way
 * those tools do; a socket filter reports the same histogram through a test run.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAX_SLOTS 26

extern int CONFIG_HZ __kconfig;
extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern bool LINUX_HAS_BPF_COOKIE __kconfig;
extern bool CONFIG_SCHED_INFO __kconfig __weak;
extern bool CONFIG_BGT_MISSING_FEATURE __kconfig __weak;

const volatile bool targ_ms = false;
const volatile __u32 targ_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, __u64);
} start SEC(".maps");

__u32 hist[MAX_SLOTS];
__u64 ticks_per_sec;
__u32 path;

static __always_inline __u32 log2l(__u64 v)
{
	__u32 r = 0;

#pragma unroll
	for (int i = 0; i < 6; i++) {
		__u32 shift = 1u << (5 - i);

		if (v >= (1ull << shift)) {
			v >>= shift;
			r += shift;
		}
	}
	return r;
}

static __always_inline void record(__u64 delta)
{
	__u32 slot;

	delta /= targ_ms ? 1000000U : 1000U;
	slot = log2l(delta);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	__sync_fetch_and_add(&hist[slot], 1);
}

SEC("raw_tp/sched_wakeup")
int handle_wakeup(__u64 *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid();
	__u64 ts = bpf_ktime_get_ns();

	if (targ_tgid && (bpf_get_current_pid_tgid() >> 32) != targ_tgid)
		return 0;
	bpf_map_update_elem(&start, &pid, &ts, BPF_ANY);
	return 0;
}

SEC("raw_tp/sched_switch")
int handle_switch(__u64 *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid();
	__u64 *tsp = bpf_map_lookup_elem(&start, &pid);

	if (!tsp)
		return 0;
	record(bpf_ktime_get_ns() - *tsp);
	bpf_map_delete_elem(&start, &pid);
	/* kernels >= 5.15 with BPF cookies take the cheaper path, as the tools pick one */
	if (LINUX_HAS_BPF_COOKIE && LINUX_KERNEL_VERSION >= ((5 << 16) | (15 << 8)))
		path = 1;
	else
		path = CONFIG_SCHED_INFO ? 2 : 3;
	return 0;
}

SEC("socket")
int report_hist(struct __sk_buff *skb)
{
	/* what the user-space side computes from the kernel's config, done in BPF */
	ticks_per_sec = CONFIG_HZ;
	record((__u64)skb->len * 1000 * (CONFIG_BGT_MISSING_FEATURE ? 2 : 1));
	return CONFIG_HZ >= 100 ? skb->len : 0;
}

char _license[] SEC("license") = "GPL";
