/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Chunking: how a vector is cut into datagrams, and the body size an MTU
 * allows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "sgc_internal.h"

/* The boundaries of one (elsz, chunk_bytes) pair. */
static void check_boundaries(size_t elsz, size_t cb)
{
	size_t per = cb / elsz;

	assert_true(per > 0);
	assert_int_equal(sgc_nchunks(0, elsz, cb), 1);
	assert_int_equal(sgc_chunk_elems(0, elsz, cb, 0), 0);
	assert_int_equal(sgc_nchunks(1, elsz, cb), 1);
	assert_int_equal(sgc_chunk_elems(1, elsz, cb, 0), 1);
	assert_int_equal(sgc_chunk_elems(1, elsz, cb, 1), 0);

	for (size_t k = 1; k <= 5; k++) {
		/* exactly k full chunks */
		assert_int_equal(sgc_nchunks(k * per, elsz, cb), k);
		assert_int_equal(sgc_chunk_elems(k * per, elsz, cb, (uint32_t)(k - 1)), per);
		assert_int_equal(sgc_chunk_elems(k * per, elsz, cb, (uint32_t)k), 0);
		/* one element over: a chunk of one more */
		assert_int_equal(sgc_nchunks(k * per + 1, elsz, cb), k + 1);
		assert_int_equal(sgc_chunk_elems(k * per + 1, elsz, cb, (uint32_t)(k - 1)), per);
		assert_int_equal(sgc_chunk_elems(k * per + 1, elsz, cb, (uint32_t)k), 1);
		/* one element short */
		assert_int_equal(sgc_nchunks(k * per - 1, elsz, cb), k);
		assert_int_equal(sgc_chunk_elems(k * per - 1, elsz, cb, (uint32_t)(k - 1)),
				 per - 1);
	}
}

static void test_boundaries_every_dtype(void **state)
{
	static const size_t cbs[] = { 64, 72, 100, 1432, SGC_MAX_BODY };

	for (int dt = SGC_INT8; dt <= SGC_UINT64; dt++) {
		size_t elsz = sgc_dtype_size(dt);

		for (size_t i = 0; i < sizeof(cbs) / sizeof(cbs[0]); i++)
			check_boundaries(elsz, cbs[i]);
	}
	(void)state;
}

/* Counts where a straightforward model is easy to state. */
static void test_known_values(void **state)
{
	/* 1432-byte chunks: 358 int32, 179 int64, 1432 int8 */
	assert_int_equal(sgc_nchunks(1000, 4, 1432), 3);
	assert_int_equal(sgc_chunk_elems(1000, 4, 1432, 0), 358);
	assert_int_equal(sgc_chunk_elems(1000, 4, 1432, 1), 358);
	assert_int_equal(sgc_chunk_elems(1000, 4, 1432, 2), 284);
	assert_int_equal(sgc_nchunks(179, 8, 1432), 1);
	assert_int_equal(sgc_nchunks(180, 8, 1432), 2);
	/* a chunk size that is not a multiple of the element: 100 / 8 = 12 */
	assert_int_equal(sgc_nchunks(24, 8, 100), 2);
	assert_int_equal(sgc_nchunks(25, 8, 100), 3);
	assert_int_equal(sgc_chunk_elems(25, 8, 100, 2), 1);
	(void)state;
}

/* Sum of all chunks is the count, every chunk but the last is full. */
static void test_partition(void **state)
{
	static const size_t counts[] = { 2, 3, 357, 358, 359, 1000, 4095, 65536, 100003 };

	for (int dt = SGC_INT8; dt <= SGC_UINT64; dt++) {
		size_t elsz = sgc_dtype_size(dt);

		for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
			size_t count = counts[c], per = 1432 / elsz, total = 0;
			uint32_t n = sgc_nchunks(count, elsz, 1432);

			for (uint32_t i = 0; i < n; i++) {
				size_t e = sgc_chunk_elems(count, elsz, 1432, i);

				assert_true(e >= 1 && e <= per);
				if (i + 1 < n)
					assert_int_equal(e, per);
				total += e;
			}
			assert_int_equal(total, count);
			assert_int_equal(sgc_chunk_elems(count, elsz, 1432, n), 0);
			assert_int_equal(sgc_chunk_elems(count, elsz, 1432, UINT32_MAX), 0);
		}
	}
	(void)state;
}

static void test_large_counts(void **state)
{
	size_t per = 3456 / 8;
	size_t count = (size_t)UINT32_MAX * per;	/* exactly 2^32-1 chunks */

	/* 1e9 = 2793296 * 358 + 32 */
	assert_int_equal(sgc_nchunks(1000000000, 4, 1432), 2793297);
	assert_int_equal(sgc_chunk_elems(1000000000, 4, 1432, 2793295), 358);
	assert_int_equal(sgc_chunk_elems(1000000000, 4, 1432, 2793296), 32);
	assert_int_equal(sgc_chunk_elems(1000000000, 4, 1432, 2793297), 0);
	assert_int_equal(sgc_nchunks(count, 8, 3456), UINT32_MAX);
	assert_int_equal(sgc_chunk_elems(count, 8, 3456, UINT32_MAX - 1), per);
	/* one element more would need chunk number 2^32: not representable */
	assert_int_equal(sgc_nchunks(count + 1, 8, 3456), 0);
	assert_int_equal(sgc_nchunks(SIZE_MAX, 1, 64), 0);
	assert_int_equal(sgc_nchunks(SIZE_MAX, 8, 3456), 0);
	(void)state;
}

/* Arguments that cannot make a single chunk. */
static void test_degenerate(void **state)
{
	assert_int_equal(sgc_nchunks(10, 8, 4), 0);
	assert_int_equal(sgc_nchunks(10, 0, 64), 0);
	assert_int_equal(sgc_nchunks(10, 4, 0), 0);
	assert_int_equal(sgc_chunk_elems(10, 8, 4, 0), 0);
	assert_int_equal(sgc_chunk_elems(10, 0, 64, 0), 0);
	(void)state;
}

static void test_mtu(void **state)
{
	static const struct {
		unsigned mtu;
		uint32_t bytes;
	} cases[] = {
		{ 1500, 1424 },			/* Ethernet */
		{ 1501, 1424 }, { 1507, 1424 }, { 1508, 1432 },
		{ 9000, SGC_MAX_BODY },		/* jumbo: capped */
		{ SGC_MAX_BODY + 76, SGC_MAX_BODY },
		{ SGC_MAX_BODY + 75, SGC_MAX_BODY - 8 },
		{ 3500, 3424 },
		{ 65535, SGC_MAX_BODY },
		{ 576, 496 },			/* IPv4 minimum reassembly size */
		{ 148, 72 }, { 147, 64 }, { 141, 64 }, { 140, 64 },
		{ 68, 64 }, { 0, 64 },		/* absurdly small: floor */
		{ 0xffffffff, SGC_MAX_BODY },
	};
	uint32_t prev = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (sgc_chunk_bytes_for_mtu(cases[i].mtu) != cases[i].bytes) {
			print_error("mtu %u: got %u want %u\n", cases[i].mtu,
				    sgc_chunk_bytes_for_mtu(cases[i].mtu), cases[i].bytes);
			fail();
		}
	}
	for (unsigned mtu = 0; mtu <= 70000; mtu++) {
		uint32_t b = sgc_chunk_bytes_for_mtu(mtu);

		assert_int_equal(b % 8, 0);
		assert_true(b >= 64 && b <= SGC_MAX_BODY);
		assert_true(b >= prev);
		if (mtu >= 64 + SGC_L3L4_OVERHEAD + SGC_HDR_SIZE)
			assert_true(b + SGC_HDR_SIZE + SGC_L3L4_OVERHEAD <= mtu);
		prev = b;
	}
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_boundaries_every_dtype),
		cmocka_unit_test(test_known_values),
		cmocka_unit_test(test_partition),
		cmocka_unit_test(test_large_counts),
		cmocka_unit_test(test_degenerate),
		cmocka_unit_test(test_mtu),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
