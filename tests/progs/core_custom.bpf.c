// SPDX-License-Identifier: GPL-2.0
/* Fixture: CO-RE against a made-up target BTF (`load --btf`, tests/progs/btf/point_target.c).
 * The packet holds a `struct point` laid out as the TARGET says; `read_point` reads it through
 * the local view (other order, other sizes, a field the target lacks) and returns
 *   x * 1000 + y * 10 + kind + 100000 * (enum value of GREEN) [+ 9000000 if `missing` exists]
 * which the test recomputes from the packet it built. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct point {
	int x;
	unsigned int y;
	unsigned int kind : 5;
	int missing;
} __attribute__((preserve_access_index));

enum color { RED = 1, GREEN = 2 };

SEC("xdp")
int read_point(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct point *pt = data;
	long ret;

	if (data + bpf_core_type_size(struct point) > end)
		return -1;
	ret = pt->x * 1000 + pt->y * 10 + BPF_CORE_READ_BITFIELD(pt, kind);
	ret += 100000 * bpf_core_enum_value(enum color, GREEN);
	if (bpf_core_field_exists(pt->missing))
		ret += 9000000 + pt->missing;
	return ret;
}

char LICENSE[] SEC("license") = "GPL";
