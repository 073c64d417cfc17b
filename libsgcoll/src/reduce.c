/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Element-wise reductions: every dtype x op from one template.
 *
 * Arithmetic.  SUM and PROD are done in an unsigned type at least as wide
 * as the element (unsigned int for 8/16/32-bit elements, so that the usual
 * promotion to int can never overflow; uint64_t for 64-bit ones) and the
 * result is truncated back, which wraps modulo 2^bits as the public header
 * promises.  Converting an out-of-range value to a signed type is modulo
 * 2^bits in GCC and Clang (implementation-defined in C, never undefined).
 * MIN/MAX compare as the element's own signed or unsigned type; BAND, BOR
 * and BXOR work on the bits.
 *
 * Alignment and aliasing.  The loops access the buffers through typedefs
 * with alignment 1 and may_alias, so any pointer is correct: packet bodies
 * (40 bytes into an 8-aligned buffer, hence 8-aligned), user buffers of any
 * alignment, and char arrays.  On x86-64 and arm64 the vectorised loops use
 * unaligned vector loads, which cost nothing extra on aligned data, so
 * there is no reason to assume alignment.  @acc and @in may be the same
 * buffer (element i only reads and writes index i), but must not overlap
 * otherwise.
 */
#include <stdint.h>
#include <string.h>

#include "sgc_internal.h"

/* enum value, name, element type, type the arithmetic is done in */
#define SGC_DTYPES(X)						\
	X(SGC_INT8,   int8,   int8_t,   unsigned int)		\
	X(SGC_UINT8,  uint8,  uint8_t,  unsigned int)		\
	X(SGC_INT16,  int16,  int16_t,  unsigned int)		\
	X(SGC_UINT16, uint16, uint16_t, unsigned int)		\
	X(SGC_INT32,  int32,  int32_t,  unsigned int)		\
	X(SGC_UINT32, uint32, uint32_t, unsigned int)		\
	X(SGC_INT64,  int64,  int64_t,  uint64_t)		\
	X(SGC_UINT64, uint64, uint64_t, uint64_t)

#define SGC_NDTYPES 8
#define SGC_NOPS 7

/* enum value, name, combine(T, W, accumulated, incoming) */
#define SGC_OPS(X, ...)						\
	X(__VA_ARGS__, SGC_SUM,  sum,  OP_SUM)			\
	X(__VA_ARGS__, SGC_PROD, prod, OP_PROD)			\
	X(__VA_ARGS__, SGC_MIN,  min,  OP_MIN)			\
	X(__VA_ARGS__, SGC_MAX,  max,  OP_MAX)			\
	X(__VA_ARGS__, SGC_BAND, band, OP_BAND)			\
	X(__VA_ARGS__, SGC_BOR,  bor,  OP_BOR)			\
	X(__VA_ARGS__, SGC_BXOR, bxor, OP_BXOR)

#define OP_SUM(T, W, x, y)	((T)((W)(x) + (W)(y)))
#define OP_PROD(T, W, x, y)	((T)((W)(x) * (W)(y)))
#define OP_MIN(T, W, x, y)	((y) < (x) ? (y) : (x))
#define OP_MAX(T, W, x, y)	((y) > (x) ? (y) : (x))
#define OP_BAND(T, W, x, y)	((T)((x) & (y)))
#define OP_BOR(T, W, x, y)	((T)((x) | (y)))
#define OP_BXOR(T, W, x, y)	((T)((x) ^ (y)))

typedef void (*reduce_fn)(void *acc, const void *in, size_t count);

/*
 * GCC 12 at -O2 vectorises only loops it needs no run-time checks and no
 * scalar epilogue for: so each function works in blocks of a constant
 * number of elements, with the no-dependence promise (true even when
 * acc == in, as each element touches only its own index), then finishes
 * the tail one element at a time.
 */
#define SGC_REDUCE_BLOCK 128	/* bytes per vectorised block */

#if defined(__clang__)
#define SGC_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#else
#define SGC_IVDEP _Pragma("GCC ivdep")
#endif

#define DEFINE_REDUCE_OP(E, name, T, W, OE, opname, OP)				\
static void reduce_##name##_##opname(void *accv, const void *inv, size_t n)	\
{										\
	enum { BLOCK = SGC_REDUCE_BLOCK / sizeof(T) };				\
	sgc_ua_##name *a = accv;						\
	const sgc_ua_##name *b = inv;						\
	size_t i, j;								\
										\
	for (i = 0; i + BLOCK <= n; i += BLOCK) {				\
		SGC_IVDEP							\
		for (j = 0; j < BLOCK; j++)					\
			a[i + j] = OP(T, W, a[i + j], b[i + j]);		\
	}									\
	for (; i < n; i++)							\
		a[i] = OP(T, W, a[i], b[i]);					\
}

#define DEFINE_REDUCE_DTYPE(E, name, T, W)					\
	typedef T __attribute__((aligned(1), may_alias)) sgc_ua_##name;		\
	_Static_assert(sizeof(T) == 1u << ((E) >> 1), #name " size");		\
	SGC_OPS(DEFINE_REDUCE_OP, E, name, T, W)

SGC_DTYPES(DEFINE_REDUCE_DTYPE)

#define REDUCE_ENTRY(E, name, T, W, OE, opname, OP)	[OE] = reduce_##name##_##opname,
#define REDUCE_ROW(E, name, T, W)	[E] = { SGC_OPS(REDUCE_ENTRY, E, name, T, W) },

static const reduce_fn reduce_table[SGC_NDTYPES][SGC_NOPS] = {
	SGC_DTYPES(REDUCE_ROW)
};

#define DTYPE_NAME(E, name, T, W)	[E] = #name,
static const char *const dtype_names[SGC_NDTYPES] = { SGC_DTYPES(DTYPE_NAME) };

#define OP_NAME(unused, OE, opname, OP)	[OE] = #opname,
static const char *const op_names[SGC_NOPS] = { SGC_OPS(OP_NAME, 0) };

bool sgc_dtype_valid(int dt)
{
	return dt >= 0 && dt < SGC_NDTYPES;
}

bool sgc_op_valid(int op)
{
	return op >= 0 && op < SGC_NOPS;
}

size_t sgc_dtype_size(enum sgc_dtype dt)
{
	return sgc_dtype_valid(dt) ? sgc_wire_dtype_size(dt) : 0;
}

const char *sgc_dtype_name(int dt)
{
	return sgc_dtype_valid(dt) ? dtype_names[dt] : "invalid dtype";
}

const char *sgc_op_name(int op)
{
	return sgc_op_valid(op) ? op_names[op] : "invalid op";
}

/* Callers validate dt and op against the wire first; an invalid pair is a
 * no-op rather than a wild call. */
void sgc_reduce_into(void *acc, const void *in, size_t count, enum sgc_dtype dt,
		     enum sgc_op op)
{
	if (!sgc_dtype_valid(dt) || !sgc_op_valid(op) || !count)
		return;
	reduce_table[dt][op](acc, in, count);
}
