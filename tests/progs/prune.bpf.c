// SPDX-License-Identifier: GPL-2.0
/* Fixture: dead-code pruning by a frozen .rodata flag. With `unsafe_path` false (and .rodata
 * frozen) the verifier never visits the branch that reads out of bounds; set it true and the
 * program is rejected. Returns `answer`.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile bool unsafe_path = false;
const volatile __u32 answer = 42;

SEC("xdp")
int guarded(struct xdp_md *ctx)
{
	if (unsafe_path) {
		/* no bounds check: the verifier rejects this if it ever sees it */
		unsigned char *data = (void *)(long)ctx->data;
		return data[100];
	}
	return answer;
}

char LICENSE[] SEC("license") = "GPL";
