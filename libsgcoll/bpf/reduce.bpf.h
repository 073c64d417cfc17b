/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The built-in reductions: one small XDP program per (dtype, op), all from
 * one template, tail-called by gather_prog through reduce_progs at index
 * SGC_BPF_REDUCE_INDEX(dtype, op).  They give bit-identical results to libsgcoll's
 * user-space reductions (libsgcoll/src/reduce.c):
 *   SUM, PROD   wrap modulo 2^bits (computed unsigned, truncated);
 *   MIN, MAX    compare as the element's signed or unsigned type;
 *   BAND/BOR/BXOR  bitwise.
 *
 * Each loop step handles four 8-byte words of the body (the body is padded
 * to whole words in the slot and the hand-off record, both SGC_MAX_BODY
 * long, a multiple of 32 bytes, so the bytes past the end are scratch that
 * is never delivered); per word:
 *   bitwise ops and 64-bit SUM   one 64-bit operation;
 *   32-bit SUM                   two 32-bit adds (the JIT makes each a
 *                                load, an add and a store: fewer
 *                                instructions than SWAR's masks);
 *   8/16-bit SUM                 SWAR: add the low bits of every lane, then
 *                                fix each lane's top bit with XOR, so no
 *                                carry crosses a lane;
 *   PROD, MIN, MAX               lane by lane, on the element type.
 * The loops run under the slot's bpf_spin_lock (no calls allowed), with a
 * constant bound and a break, which the verifier walks step by step.
 */
#ifndef SGC_REDUCE_BPF_H
#define SGC_REDUCE_BPF_H

#include "maps.bpf.h"

/* dtype value, name, element type, type the arithmetic is done in,
 * mask of each lane's top bit in a 64-bit word */
#define SGC_BPF_DTYPES(X, ...)							\
	X(__VA_ARGS__, 0, int8,   __s8,  __u32, 0x8080808080808080ULL)		\
	X(__VA_ARGS__, 1, uint8,  __u8,  __u32, 0x8080808080808080ULL)		\
	X(__VA_ARGS__, 2, int16,  __s16, __u32, 0x8000800080008000ULL)		\
	X(__VA_ARGS__, 3, uint16, __u16, __u32, 0x8000800080008000ULL)		\
	X(__VA_ARGS__, 4, int32,  __s32, __u32, 0x8000000080000000ULL)		\
	X(__VA_ARGS__, 5, uint32, __u32, __u32, 0x8000000080000000ULL)		\
	X(__VA_ARGS__, 6, int64,  __s64, __u64, 0ULL)				\
	X(__VA_ARGS__, 7, uint64, __u64, __u64, 0ULL)

/* op value, name, how a word is combined */
#define SGC_BPF_OPS(X, ...)				\
	X(__VA_ARGS__, 0, sum,  SUM)		\
	X(__VA_ARGS__, 1, prod, LANES_PROD)		\
	X(__VA_ARGS__, 2, min,  LANES_MIN)		\
	X(__VA_ARGS__, 3, max,  LANES_MAX)		\
	X(__VA_ARGS__, 4, band, WORD_BAND)		\
	X(__VA_ARGS__, 5, bor,  WORD_BOR)		\
	X(__VA_ARGS__, 6, bxor, WORD_BXOR)

#define SGC_LANE_SUM(T, W, x, y)	((T)((W)(x) + (W)(y)))
#define SGC_LANE_PROD(T, W, x, y)	((T)((W)(x) * (W)(y)))
/*
 * MIN and MAX of lanes narrower than 64 bits without a branch (a branch
 * per lane multiplies the verifier's states): d = x - y exactly in 64
 * bits, d >> 63 is all ones when x < y, so min = y + (d & mask) and
 * max = x - (d & mask).  64-bit lanes (one per word) compare.
 */
static __always_inline __s64 sgc_lane_neg(__s64 x, __s64 y)
{
	__s64 d = x - y;

	/* Opaque, or clang turns this back into a compare and branch. */
	SGC_AGG_OPAQUE(d);
	return d & (d >> 63);
}
#define SGC_LANE_MIN(T, W, x, y)						\
	(sizeof(T) < 8 ? (T)((__s64)(y) + sgc_lane_neg((__s64)(x), (__s64)(y)))	\
		       : ((y) < (x) ? (y) : (x)))
#define SGC_LANE_MAX(T, W, x, y)						\
	(sizeof(T) < 8 ? (T)((__s64)(x) - sgc_lane_neg((__s64)(x), (__s64)(y)))	\
		       : ((y) > (x) ? (y) : (x)))

/* Combine word w of b into word w of a (a, b: __u64 pointers). */
#define SGC_COMBINE_SWAR(H, a, b, w)						\
	a[w] = ((a[w] & ~(H)) + (b[w] & ~(H))) ^ ((a[w] ^ b[w]) & (H))
#define SGC_COMBINE_WORD_BAND(T, W, H, a, b, w)	a[w] &= b[w]
#define SGC_COMBINE_WORD_BOR(T, W, H, a, b, w)	a[w] |= b[w]
#define SGC_COMBINE_WORD_BXOR(T, W, H, a, b, w)	a[w] ^= b[w]
#define SGC_COMBINE_LANES(LANE, T, W, a, b, w)					\
	do {									\
		T *ta_ = (T *)&a[w];						\
		const T *tb_ = (const T *)&b[w];				\
		int k_;								\
		_Pragma("unroll")						\
		for (k_ = 0; k_ < (int)(8 / sizeof(T)); k_++)			\
			ta_[k_] = LANE(T, W, ta_[k_], tb_[k_]);			\
	} while (0)
/* sizeof(T) is a constant: each program keeps one of the two. */
#define SGC_COMBINE_SUM(T, W, H, a, b, w)					\
	do {									\
		if (sizeof(T) < 4)						\
			SGC_COMBINE_SWAR(H, a, b, w);				\
		else								\
			SGC_COMBINE_LANES(SGC_LANE_SUM, T, W, a, b, w);		\
	} while (0)
#define SGC_COMBINE_LANES_PROD(T, W, H, a, b, w) SGC_COMBINE_LANES(SGC_LANE_PROD, T, W, a, b, w)
#define SGC_COMBINE_LANES_MIN(T, W, H, a, b, w)  SGC_COMBINE_LANES(SGC_LANE_MIN, T, W, a, b, w)
#define SGC_COMBINE_LANES_MAX(T, W, H, a, b, w)  SGC_COMBINE_LANES(SGC_LANE_MAX, T, W, a, b, w)

_Static_assert(SGC_MAX_BODY % 32 == 0, "the reduction loop takes four 8-byte words a step");

/* One reduction program: reduce_<dtype>_<op>. */
#define SGC_DEFINE_REDUCE(DT, dname, T, W, H, OP, oname, KIND)			\
SEC("xdp")									\
int reduce_##dname##_##oname(struct xdp_md *ctx)				\
{										\
	struct sgc_agg a;							\
	__u64 *acc;								\
	const __u64 *in;							\
	__u64 w;								\
										\
	SGC_AGG_INTRO(a, ctx);							\
	if (sgc_agg_acquire(&a)) {						\
		acc = a.acc;							\
		in = a.in;							\
		for (w = 0; w < SGC_MAX_BODY / 8; w += 4) {			\
			if (w >= a.nwords)					\
				break;						\
			SGC_COMBINE_##KIND(T, W, H, acc, in, w);		\
			SGC_COMBINE_##KIND(T, W, H, acc, in, w + 1);		\
			SGC_COMBINE_##KIND(T, W, H, acc, in, w + 2);		\
			SGC_COMBINE_##KIND(T, W, H, acc, in, w + 3);		\
		}								\
	}									\
	sgc_agg_release(&a);							\
	return sgc_agg_outro(&a);						\
}

#define SGC_DEFINE_REDUCE_DTYPE(unused, DT, dname, T, W, H)			\
	SGC_BPF_OPS(SGC_DEFINE_REDUCE, DT, dname, T, W, H)

/* The reduce_progs initializer: [index of (dtype, op)] = &reduce_<dtype>_<op>. */
#define SGC_REDUCE_ENTRY(DT, dname, T, W, H, OP, oname, KIND)			\
	[SGC_BPF_REDUCE_INDEX(DT, OP)] = (void *)&reduce_##dname##_##oname,
#define SGC_REDUCE_ROW(unused, DT, dname, T, W, H)				\
	SGC_BPF_OPS(SGC_REDUCE_ENTRY, DT, dname, T, W, H)

#endif /* SGC_REDUCE_BPF_H */
