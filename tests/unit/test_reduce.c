/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * sgc_reduce_into() for every dtype x op against a reference written the
 * other way round: one element at a time, widened to 64 bits through
 * memcpy, a switch on the op, then truncated back to the element's bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sgc_internal.h"

#define GUARD 16
#define GUARD_BYTE 0xee

static const size_t lengths[] = { 0, 1, 7, 1000, 100000 };

/* ---- reference ---- */

static bool dt_signed(int dt)
{
	return (dt & 1) == 0;	/* INT8, INT16, INT32, INT64 are even */
}

static size_t dt_size(int dt)
{
	switch (dt) {
	case SGC_INT8: case SGC_UINT8: return 1;
	case SGC_INT16: case SGC_UINT16: return 2;
	case SGC_INT32: case SGC_UINT32: return 4;
	default: return 8;
	}
}

static uint64_t load_u64(const uint8_t *p, int dt)
{
	uint64_t v = 0;

	memcpy(&v, p, dt_size(dt));	/* little-endian host */
	return v;
}

static int64_t load_s64(const uint8_t *p, int dt)
{
	unsigned bits = (unsigned)dt_size(dt) * 8;
	uint64_t v = load_u64(p, dt);

	if (bits < 64 && (v >> (bits - 1)) & 1)
		v |= ~0ull << bits;
	return (int64_t)v;
}

static void ref_elem(uint8_t *acc, const uint8_t *in, int dt, int op)
{
	uint64_t ua = load_u64(acc, dt), ub = load_u64(in, dt), r = 0;
	int64_t sa = load_s64(acc, dt), sb = load_s64(in, dt);

	switch (op) {
	case SGC_SUM:
		r = ua + ub;
		break;
	case SGC_PROD:
		r = ua * ub;	/* the low bits are the same as for signed */
		break;
	case SGC_MIN:
		if (dt_signed(dt))
			r = (uint64_t)(sb < sa ? sb : sa);
		else
			r = ub < ua ? ub : ua;
		break;
	case SGC_MAX:
		if (dt_signed(dt))
			r = (uint64_t)(sb > sa ? sb : sa);
		else
			r = ub > ua ? ub : ua;
		break;
	case SGC_BAND:
		r = ua & ub;
		break;
	case SGC_BOR:
		r = ua | ub;
		break;
	case SGC_BXOR:
		r = ua ^ ub;
		break;
	default:
		fail();
	}
	memcpy(acc, &r, dt_size(dt));
}

static void ref_reduce(uint8_t *acc, const uint8_t *in, size_t n, int dt, int op)
{
	size_t sz = dt_size(dt);

	for (size_t i = 0; i < n; i++)
		ref_elem(acc + i * sz, in + i * sz, dt, op);
}

/* ---- inputs ---- */

static uint64_t rng_state = 0x5eed5eed12345678ull;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Random values with the interesting ones over-represented. */
static void fill_random(uint8_t *p, size_t n, int dt)
{
	unsigned bits = (unsigned)dt_size(dt) * 8;
	uint64_t mask = bits == 64 ? ~0ull : (1ull << bits) - 1;
	uint64_t smin = 1ull << (bits - 1);	/* bit pattern of the signed minimum */
	const uint64_t extremes[] = {
		0, 1, mask /* -1 or unsigned max */, smin /* signed min */,
		smin - 1 /* signed max */, smin + 1, mask - 1, 2,
		(uint64_t)-2 & mask, (uint64_t)-3 & mask,
	};

	for (size_t i = 0; i < n; i++) {
		uint64_t r = rnd(), v;

		switch (r % 4) {
		case 0:
			v = extremes[(r >> 8) % (sizeof(extremes) / sizeof(extremes[0]))];
			break;
		case 1:	/* small, possibly negative */
			v = (uint64_t)((int64_t)((r >> 8) % 33) - 16);
			break;
		default:
			v = rnd();
		}
		v &= mask;
		memcpy(p + i * dt_size(dt), &v, dt_size(dt));
	}
}

/* ---- tests ---- */

/*
 * Reduce @n random elements with the buffers placed @acc_off/@in_off bytes
 * past an aligned address, compare with the reference, and check that the
 * bytes after the vector are untouched.
 */
static void run_one(int dt, int op, size_t n, size_t acc_off, size_t in_off)
{
	size_t bytes = n * dt_size(dt);
	uint8_t *acc_raw = malloc(bytes + GUARD + 16);
	uint8_t *in_raw = malloc(bytes + GUARD + 16);
	uint8_t *exp = malloc(bytes + GUARD);
	uint8_t *acc = acc_raw + acc_off, *in = in_raw + in_off;

	assert_non_null(acc_raw);
	assert_non_null(in_raw);
	assert_non_null(exp);
	fill_random(acc, n, dt);
	fill_random(in, n, dt);
	memset(acc + bytes, GUARD_BYTE, GUARD);
	memcpy(exp, acc, bytes + GUARD);
	ref_reduce(exp, in, n, dt, op);

	sgc_reduce_into(acc, in, n, dt, op);
	if (memcmp(acc, exp, bytes + GUARD)) {
		for (size_t i = 0; i < bytes + GUARD; i++) {
			if (acc[i] != exp[i]) {
				print_error("%s %s n=%zu off=%zu/%zu: byte %zu is %#x, want %#x\n",
					    sgc_dtype_name(dt), sgc_op_name(op), n, acc_off,
					    in_off, i, acc[i], exp[i]);
				break;
			}
		}
		fail();
	}
	free(acc_raw);
	free(in_raw);
	free(exp);
}

static void test_every_dtype_op(void **state)
{
	for (int dt = SGC_INT8; dt <= SGC_UINT64; dt++)
		for (int op = SGC_SUM; op <= SGC_BXOR; op++)
			for (size_t l = 0; l < sizeof(lengths) / sizeof(lengths[0]); l++)
				run_one(dt, op, lengths[l], 0, 0);
	(void)state;
}

/* No alignment is assumed: odd offsets, and acc and in misaligned apart. */
static void test_unaligned(void **state)
{
	static const size_t offs[][2] = { { 1, 1 }, { 3, 0 }, { 0, 5 }, { 7, 2 }, { 4, 4 } };

	for (int dt = SGC_INT8; dt <= SGC_UINT64; dt++)
		for (int op = SGC_SUM; op <= SGC_BXOR; op++)
			for (size_t o = 0; o < sizeof(offs) / sizeof(offs[0]); o++) {
				run_one(dt, op, 7, offs[o][0], offs[o][1]);
				run_one(dt, op, 1000, offs[o][0], offs[o][1]);
			}
	(void)state;
}

/* acc == in: each element reduced with itself. */
static void test_in_place(void **state)
{
	for (int dt = SGC_INT8; dt <= SGC_UINT64; dt++) {
		for (int op = SGC_SUM; op <= SGC_BXOR; op++) {
			size_t n = 1003, bytes = n * dt_size(dt);
			uint8_t *buf = malloc(bytes), *exp = malloc(bytes), *copy = malloc(bytes);

			assert_non_null(buf);
			assert_non_null(exp);
			assert_non_null(copy);
			fill_random(buf, n, dt);
			memcpy(exp, buf, bytes);
			memcpy(copy, buf, bytes);
			ref_reduce(exp, copy, n, dt, op);
			sgc_reduce_into(buf, buf, n, dt, op);
			assert_memory_equal(buf, exp, bytes);
			free(buf);
			free(exp);
			free(copy);
		}
	}
	(void)state;
}

/* The wrap-around and sign cases spelled out. */
static void test_known_values(void **state)
{
	int8_t i8[2] = { INT8_MIN, 100 }, j8[2] = { -1, 100 };
	uint16_t u16[2] = { 65535, 65535 }, v16[2] = { 65535, 1 };
	int32_t i32[3] = { INT32_MAX, INT32_MIN, -5 }, j32[3] = { 1, -1, 3 };
	uint32_t u32[2] = { 0, UINT32_MAX }, v32[2] = { UINT32_MAX, 1 };
	int64_t i64[2] = { INT64_MAX, INT64_MIN }, j64[2] = { INT64_MAX, -1 };
	uint64_t u64[2] = { 1, 0 }, v64[2] = { UINT64_MAX, UINT64_MAX };
	int16_t i16[2] = { -300, 300 }, j16[2] = { 200, -200 };

	sgc_reduce_into(i8, j8, 2, SGC_INT8, SGC_PROD);		/* -128 * -1 wraps */
	assert_int_equal(i8[0], INT8_MIN);
	assert_int_equal(i8[1], 16);				/* 10000 mod 256 */

	sgc_reduce_into(u16, v16, 2, SGC_UINT16, SGC_PROD);	/* no int overflow */
	assert_int_equal(u16[0], 1);
	assert_int_equal(u16[1], 65535);

	sgc_reduce_into(i32, j32, 3, SGC_INT32, SGC_SUM);
	assert_int_equal(i32[0], INT32_MIN);
	assert_int_equal(i32[1], INT32_MAX);
	assert_int_equal(i32[2], -2);

	sgc_reduce_into(u32, v32, 2, SGC_UINT32, SGC_MIN);	/* unsigned compare */
	assert_int_equal(u32[0], 0);
	assert_int_equal(u32[1], 1);

	sgc_reduce_into(i64, j64, 2, SGC_INT64, SGC_PROD);
	assert_true(i64[0] == 1);				/* (2^63-1)^2 mod 2^64 */
	assert_true(i64[1] == INT64_MIN);			/* -2^63 * -1 */

	sgc_reduce_into(u64, v64, 2, SGC_UINT64, SGC_SUM);
	assert_true(u64[0] == 0);
	assert_true(u64[1] == UINT64_MAX);

	sgc_reduce_into(i16, j16, 2, SGC_INT16, SGC_MAX);	/* signed compare */
	assert_int_equal(i16[0], 200);
	assert_int_equal(i16[1], 300);
	sgc_reduce_into(i16, j16, 2, SGC_INT16, SGC_MIN);
	assert_int_equal(i16[0], 200);
	assert_int_equal(i16[1], -200);
	(void)state;
}

static void test_invalid_is_noop(void **state)
{
	uint8_t acc[16], in[16], before[16];

	memset(acc, 0x11, sizeof(acc));
	memset(in, 0x22, sizeof(in));
	memcpy(before, acc, sizeof(acc));
	sgc_reduce_into(acc, in, 2, (enum sgc_dtype)8, SGC_SUM);
	sgc_reduce_into(acc, in, 2, (enum sgc_dtype)-1, SGC_SUM);
	sgc_reduce_into(acc, in, 2, SGC_UINT64, (enum sgc_op)7);
	sgc_reduce_into(acc, in, 2, SGC_UINT64, (enum sgc_op)-1);
	sgc_reduce_into(NULL, NULL, 0, SGC_UINT64, SGC_SUM);
	assert_memory_equal(acc, before, sizeof(acc));
	(void)state;
}

static void test_names_sizes(void **state)
{
	static const char *const dnames[] = {
		"int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
	};
	static const char *const onames[] = { "sum", "prod", "min", "max", "band", "bor", "bxor" };

	for (int dt = 0; dt < 8; dt++) {
		assert_true(sgc_dtype_valid(dt));
		assert_int_equal(sgc_dtype_size(dt), dt_size(dt));
		assert_int_equal(sgc_dtype_size(dt), sgc_wire_dtype_size(dt));
		assert_string_equal(sgc_dtype_name(dt), dnames[dt]);
	}
	for (int op = 0; op < 7; op++) {
		assert_true(sgc_op_valid(op));
		assert_string_equal(sgc_op_name(op), onames[op]);
	}
	assert_false(sgc_dtype_valid(-1));
	assert_false(sgc_dtype_valid(8));
	assert_false(sgc_op_valid(-1));
	assert_false(sgc_op_valid(7));
	assert_int_equal(sgc_dtype_size((enum sgc_dtype)8), 0);
	assert_non_null(sgc_dtype_name(99));
	assert_non_null(sgc_op_name(-5));
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_sizes),
		cmocka_unit_test(test_known_values),
		cmocka_unit_test(test_every_dtype_op),
		cmocka_unit_test(test_unaligned),
		cmocka_unit_test(test_in_place),
		cmocka_unit_test(test_invalid_is_noop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
