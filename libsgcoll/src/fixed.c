// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Fixed point for float gradients: quantise to integers with a scale that
 * keeps the sum over all ranks inside the integer type, reduce as
 * integers (exact, and in the kernel on the eBPF path), dequantise.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sgc_internal.h"

static double type_max(enum sgc_dtype dt)
{
	return dt == SGC_INT32 ? 2147483647.0 : 9223372036854775807.0;
}

double sgc_fixed_scale(int world, double max_abs, enum sgc_dtype dt)
{
	double room, s;
	int e;

	if (world < 1 || !(max_abs > 0) || !isfinite(max_abs) || (dt != SGC_INT32 && dt != SGC_INT64))
		return 0;
	/* Leave one unit per rank for rounding up, and stay below 2^53 so the
	 * doubles that carry the values are exact. */
	room = fmin(type_max(dt), 9007199254740992.0) / world - 1;
	if (room < 1)
		return 0;
	if (!isfinite(room / max_abs))
		return 0;	/* no double scale that large */
	frexp(room / max_abs, &e);
	s = ldexp(1.0, e - 1);		/* largest power of two <= room / max_abs */
	return s;
}

/* One element: round to nearest, clamp at +-lim; returns 1 if clamped. */
static int quant1(double x, double scale, double lim, int64_t *q)
{
	double v;

	if (isnan(x)) {
		*q = 0;
		return 1;
	}
	v = nearbyint(x * scale);
	if (v > lim) {
		*q = (int64_t)lim;
		return 1;
	}
	if (v < -lim) {
		*q = (int64_t)-lim;
		return 1;
	}
	*q = (int64_t)v;
	return 0;
}

#define QUANTIZE_BODY(in, out, n, dt, scale, limit)				\
	do {									\
		double lim = (limit) > 0 ? fmin(floor(limit), type_max(dt)) : type_max(dt); \
		long sat = 0;							\
		size_t i;							\
		int64_t q;							\
										\
		if ((dt != SGC_INT32 && dt != SGC_INT64) || !((scale) > 0) || (n && (!in || !out))) \
			return sgc_err(-EINVAL, "quantize: dtype must be SGC_INT32 or SGC_INT64, " \
				       "scale > 0, buffers not NULL");		\
		if ((dt) == SGC_INT64 && lim > 9.2e18)				\
			lim = 9.2e18;	/* the largest double safely below 2^63 */ \
		for (i = 0; i < (n); i++) {					\
			sat += quant1((double)(in)[i], scale, lim, &q);	\
			if ((dt) == SGC_INT32)					\
				((int32_t *)(out))[i] = (int32_t)q;		\
			else							\
				((int64_t *)(out))[i] = q;			\
		}								\
		return sat;							\
	} while (0)

long sgc_quantize_f32(const float *in, void *out, size_t n, enum sgc_dtype dt, double scale,
		      double limit)
{
	QUANTIZE_BODY(in, out, n, dt, scale, limit);
}

long sgc_quantize_f64(const double *in, void *out, size_t n, enum sgc_dtype dt, double scale,
		      double limit)
{
	QUANTIZE_BODY(in, out, n, dt, scale, limit);
}

#define DEQUANTIZE_BODY(in, out, n, dt, scale, divisor, T)			\
	do {									\
		double f;							\
		size_t i;							\
										\
		if ((dt != SGC_INT32 && dt != SGC_INT64) || !((scale) > 0) ||	\
		    !((divisor) > 0) || (n && (!in || !out)))			\
			return sgc_err(-EINVAL, "dequantize: dtype must be SGC_INT32 or SGC_INT64, " \
				       "scale and divisor > 0, buffers not NULL"); \
		f = 1.0 / ((scale) * (divisor));				\
		for (i = 0; i < (n); i++)					\
			(out)[i] = (T)((dt) == SGC_INT32 ? ((const int32_t *)(in))[i] * f \
							 : (double)((const int64_t *)(in))[i] * f); \
		return 0;							\
	} while (0)

int sgc_dequantize_f32(const void *in, float *out, size_t n, enum sgc_dtype dt, double scale,
		       double divisor)
{
	DEQUANTIZE_BODY(in, out, n, dt, scale, divisor, float);
}

int sgc_dequantize_f64(const void *in, double *out, size_t n, enum sgc_dtype dt, double scale,
		       double divisor)
{
	DEQUANTIZE_BODY(in, out, n, dt, scale, divisor, double);
}

static int allreduce_fixed(sgc_comm *c, const void *send, void *recv, size_t count,
			   double max_abs, int average, size_t *nsaturated, bool dbl)
{
	enum sgc_dtype dt = dbl ? SGC_INT64 : SGC_INT32;
	size_t elsz = dbl ? 8 : 4;
	double scale;
	long sat;
	void *q;
	int err;

	if (nsaturated)
		*nsaturated = 0;
	if (!c)
		return sgc_err(-EINVAL, "allreduce_float: NULL communicator");
	scale = sgc_fixed_scale(sgc_world_size(c), max_abs, dt);
	if (!scale)
		return sgc_err(-EINVAL, "allreduce_float: max_abs %g gives no usable scale for %d ranks "
			       "(it must be finite, > 0 and not below about 1e-290)", max_abs, sgc_world_size(c));
	if (count && (!send || !recv))
		return sgc_err(-EINVAL, "allreduce_float: NULL buffer for %zu elements", count);
	q = malloc(count ? count * elsz : 1);
	if (!q)
		return sgc_err(-ENOMEM, "allreduce_float: out of memory for %zu elements", count);
	sat = dbl ? sgc_quantize_f64(send, q, count, dt, scale, max_abs * scale)
		  : sgc_quantize_f32(send, q, count, dt, scale, max_abs * scale);
	err = sat < 0 ? (int)sat : sgc_allreduce(c, q, q, count, dt, SGC_SUM);
	if (!err)
		err = dbl ? sgc_dequantize_f64(q, recv, count, dt, scale, average ? sgc_world_size(c) : 1)
			  : sgc_dequantize_f32(q, recv, count, dt, scale, average ? sgc_world_size(c) : 1);
	if (!err && nsaturated)
		*nsaturated = (size_t)sat;
	free(q);
	return err;
}

int sgc_allreduce_float(sgc_comm *c, const float *sendbuf, float *recvbuf, size_t count,
			double max_abs, int average, size_t *nsaturated)
{
	return allreduce_fixed(c, sendbuf, recvbuf, count, max_abs, average, nsaturated, false);
}

int sgc_allreduce_double(sgc_comm *c, const double *sendbuf, double *recvbuf, size_t count,
			 double max_abs, int average, size_t *nsaturated)
{
	return allreduce_fixed(c, sendbuf, recvbuf, count, max_abs, average, nsaturated, true);
}
