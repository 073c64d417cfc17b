/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the e2e check programs (coll_check, nb_check, split_check) share:
 * this rank and the world size, the count of failed checks, FAIL() to
 * report one, and a monotonic clock.  One program is one file, so the
 * statics here are its own.
 */
#ifndef SGC_E2E_CHECK_H
#define SGC_E2E_CHECK_H

#include <stdio.h>
#include <time.h>

static int g_rank, g_world, g_fail;

#define FAIL(...) do { fprintf(stderr, "rank %d: FAIL: ", g_rank); fprintf(stderr, __VA_ARGS__); \
			fputc('\n', stderr); g_fail++; } while (0)

static inline double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static inline double now_ms(void)
{
	return now_us() / 1e3;
}

#endif /* SGC_E2E_CHECK_H */
