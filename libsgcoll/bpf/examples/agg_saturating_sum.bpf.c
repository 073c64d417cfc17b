/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A custom in-kernel reduction for libsgcoll: saturating int32 addition
 * (sums clamp at INT32_MIN / INT32_MAX instead of wrapping).  Contributions
 * that carry op SGC_OP_CUSTOM (7) and dtype SGC_INT32 are reduced by it;
 * the loader puts it at index 56 of reduce_progs.
 */
#include <sgcoll/agg.bpf.h>

#define SAT_MAX 0x7fffffffLL
#define SAT_MIN (-0x7fffffffLL - 1)

/* Called under the slot lock: inline, no calls. */
static __always_inline __s32 sat_add(__s32 x, __s32 y)
{
	__s64 s = (__s64)x + y;

	if (s > SAT_MAX)
		return (__s32)SAT_MAX;
	if (s < SAT_MIN)
		return (__s32)SAT_MIN;
	return (__s32)s;
}

SEC("xdp")
int agg_saturating_sum(struct xdp_md *ctx)
{
	struct sgc_agg a;
	const __s32 *in;
	__s32 *acc;
	__u32 i;

	SGC_AGG_INTRO(a, ctx);
	if (sgc_agg_acquire(&a)) {
		acc = a.acc;
		in = a.in;
		/* Only int32 is defined for this op; other dtypes stay as the
		 * first contribution made them (the caller's error). */
		if (a.dtype == 4) {
			for (i = 0; i < SGC_AGG_MAX_ELEMS(__s32); i++) {
				if (i >= a.count)
					break;
				acc[i] = sat_add(acc[i], in[i]);
			}
		}
	}
	sgc_agg_release(&a);
	return sgc_agg_outro(&a);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
