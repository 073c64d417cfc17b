/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * bench_util.h - clocks, percentiles and the result line, shared by every
 * benchmark program (C and C++).  Header-only so that the peers (Open MPI,
 * Gloo) build from one source file each.
 *
 * Every program prints exactly one line per measurement, starting with
 * "RESULT " and followed by key=value pairs (values never contain blanks);
 * bench/run.py parses them.  A run that did not verify its results prints
 * verified=0 and exits non-zero: it is never counted.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* User + system CPU time of this process. */
static inline uint64_t bench_cpu_ns(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000ull +
	       ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ull;
}

static inline int bench_cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile: the index into a sorted array of n (n > 0). */
static inline size_t bench_pct_index(size_t n, double p)
{
	size_t k = (size_t)(p * (double)n + 0.999999);

	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return k - 1;
}

static inline uint64_t bench_pct_u64(const uint64_t *sorted, size_t n, double p)
{
	return n ? sorted[bench_pct_index(n, p)] : 0;
}

static inline double bench_pct_double(const double *sorted, size_t n, double p)
{
	return n ? sorted[bench_pct_index(n, p)] : 0;
}

/* What one measurement produced; fields left 0 are printed as 0. */
struct bench_result {
	const char *contender;	/* e.g. base_uring, sgc-user, openmpi-tcp */
	const char *workload;	/* sg363, ar1, ar363, ar64k, ar1m */
	const char *mode;	/* lat or tput */
	int fanout;		/* workers (ranks - 1) */
	int window;		/* operations in flight (tput) */
	long ops;		/* measured operations */
	double p50_us, p99_us, mean_us, min_us, max_us;
	double tput_ops;	/* operations per second over the measured part */
	double tput_med;	/* median of the sampled rates */
	double cpu_us_per_op;	/* coordinator (rank 0) user + system CPU */
	unsigned long long retx;	/* datagrams sent again */
	unsigned long long lost;	/* answers that never came */
	unsigned long long dup;		/* answers received twice */
	int verified;		/* 1: every result was checked and right */
	const char *extra;	/* more key=value pairs, or NULL */
};

/* Latency summary of @n per-operation times in ns (sorts them). */
static inline void bench_lat_summary(struct bench_result *r, uint64_t *ns, size_t n)
{
	double sum = 0;
	size_t i;

	if (!n)
		return;
	qsort(ns, n, sizeof(*ns), bench_cmp_u64);
	for (i = 0; i < n; i++)
		sum += (double)ns[i];
	r->p50_us = (double)bench_pct_u64(ns, n, 0.50) / 1e3;
	r->p99_us = (double)bench_pct_u64(ns, n, 0.99) / 1e3;
	r->min_us = (double)ns[0] / 1e3;
	r->max_us = (double)ns[n - 1] / 1e3;
	r->mean_us = sum / (double)n / 1e3;
}

/*
 * Throughput summary: @stamps[k] is the time of completion number
 * (k + 1) * @every of the measured part, @t0 its start, @n the stamps.
 */
static inline void bench_tput_summary(struct bench_result *r, const uint64_t *stamps, size_t n,
				      uint64_t t0, long every, long ops, uint64_t t_end)
{
	double *rates;
	size_t i;

	if (t_end > t0)
		r->tput_ops = (double)ops * 1e9 / (double)(t_end - t0);
	if (!n)
		return;
	rates = (double *)calloc(n, sizeof(*rates));
	if (!rates)
		return;
	for (i = 0; i < n; i++) {
		uint64_t prev = i ? stamps[i - 1] : t0;

		rates[i] = stamps[i] > prev ? (double)every * 1e9 / (double)(stamps[i] - prev) : 0;
	}
	qsort(rates, n, sizeof(*rates), bench_cmp_double);
	r->tput_med = bench_pct_double(rates, n, 0.5);
	free(rates);
}

static inline void bench_print_result(const struct bench_result *r)
{
	printf("RESULT contender=%s workload=%s mode=%s fanout=%d window=%d ops=%ld "
	       "p50_us=%.2f p99_us=%.2f mean_us=%.2f min_us=%.2f max_us=%.2f "
	       "tput_ops=%.1f tput_med=%.1f cpu_us_per_op=%.2f retx=%llu lost=%llu dup=%llu "
	       "verified=%d%s%s\n",
	       r->contender, r->workload, r->mode, r->fanout, r->window, r->ops, r->p50_us,
	       r->p99_us, r->mean_us, r->min_us, r->max_us, r->tput_ops, r->tput_med,
	       r->cpu_us_per_op, r->retx, r->lost, r->dup, r->verified, r->extra ? " " : "",
	       r->extra ? r->extra : "");
	fflush(stdout);
}

#endif /* BENCH_UTIL_H */
