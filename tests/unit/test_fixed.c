/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Fixed-point helpers: scale choice, rounding error bound, saturation. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "sgc_internal.h"

static void test_scale(void **state)
{
	double s = sgc_fixed_scale(8, 1.0, SGC_INT32);

	/* (2^31 - 1) / 8 - 1 is just under 2^28: the power of two below it. */
	assert_true(s == 134217728.0);
	/* The sum of 8 clamped values fits in int32. */
	assert_true(8.0 * nearbyint(1.0 * s) <= 2147483647.0);
	assert_true(sgc_fixed_scale(1, 1.0, SGC_INT64) == 4503599627370496.0); /* 2^52: doubles stay exact */
	assert_true(sgc_fixed_scale(1000, 0.001, SGC_INT32) > sgc_fixed_scale(1000, 1.0, SGC_INT32));
	assert_true(sgc_fixed_scale(0, 1.0, SGC_INT32) == 0);
	assert_true(sgc_fixed_scale(4, 0, SGC_INT32) == 0);
	/* so small that room / max_abs overflows: no scale, not 0.5 */
	assert_true(sgc_fixed_scale(4, 1e-300, SGC_INT64) == 0);
	assert_true(sgc_fixed_scale(4, 1e-300, SGC_INT32) == 0);
	assert_true(sgc_fixed_scale(4, 1e-290, SGC_INT32) > 1e290);
	assert_true(sgc_fixed_scale(4, -1, SGC_INT32) == 0);
	assert_true(sgc_fixed_scale(4, INFINITY, SGC_INT32) == 0);
	assert_true(sgc_fixed_scale(4, NAN, SGC_INT32) == 0);
	assert_true(sgc_fixed_scale(4, 1.0, SGC_UINT32) == 0);
	(void)state;
}

static void test_round_trip_bound(void **state)
{
	enum { N = 10000 };
	float in[N], out[N];
	int32_t q[N];
	double s = sgc_fixed_scale(16, 2.0, SGC_INT32), worst = 0;
	int i;

	srand(7);
	for (i = 0; i < N; i++)
		in[i] = (float)((rand() / (double)RAND_MAX) * 4.0 - 2.0);
	assert_int_equal(sgc_quantize_f32(in, q, N, SGC_INT32, s, 2.0 * s), 0);
	assert_int_equal(sgc_dequantize_f32(q, out, N, SGC_INT32, s, 1), 0);
	for (i = 0; i < N; i++)
		worst = fmax(worst, fabs((double)out[i] - (double)in[i]));
	/* The rounding bound 0.5 / s, plus the float result's own rounding. */
	assert_true(worst <= 0.5 / s + 2.0 * 1.2e-7);
	(void)state;
}

static void test_saturation(void **state)
{
	double in[6] = { 0.5, 3.0, -3.0, NAN, 1.0, -1.0 }, out[6];
	int64_t q[6];
	int32_t q32[2];
	float f[2] = { 1e30f, -1e30f };

	/* Clamped at +-1.0 * scale: 3.0, -3.0 and NaN count. */
	assert_int_equal(sgc_quantize_f64(in, q, 6, SGC_INT64, 1024.0, 1024.0), 3);
	assert_true(q[1] == 1024 && q[2] == -1024 && q[3] == 0 && q[0] == 512);
	assert_int_equal(sgc_dequantize_f64(q, out, 6, SGC_INT64, 1024.0, 2.0), 0);
	assert_true(out[0] == 0.25 && out[1] == 0.5);
	/* No limit given: the type's range. */
	assert_int_equal(sgc_quantize_f32(f, q32, 2, SGC_INT32, 1.0, 0), 2);
	assert_true(q32[0] == INT32_MAX && q32[1] == -INT32_MAX);
	(void)state;
}

static void test_bad_args(void **state)
{
	float f = 1;
	int32_t q;

	assert_int_equal(sgc_quantize_f32(&f, &q, 1, SGC_INT16, 1.0, 0), -EINVAL);
	assert_int_equal(sgc_quantize_f32(&f, &q, 1, SGC_INT32, 0.0, 0), -EINVAL);
	assert_int_equal(sgc_quantize_f32(NULL, &q, 1, SGC_INT32, 1.0, 0), -EINVAL);
	assert_int_equal(sgc_quantize_f32(NULL, NULL, 0, SGC_INT32, 1.0, 0), 0);
	assert_int_equal(sgc_dequantize_f32(&q, &f, 1, SGC_INT32, 1.0, 0), -EINVAL);
	assert_int_equal(sgc_allreduce_float(NULL, &f, &f, 1, 1.0, 0, NULL), -EINVAL);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scale),
		cmocka_unit_test(test_round_trip_bound),
		cmocka_unit_test(test_saturation),
		cmocka_unit_test(test_bad_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
