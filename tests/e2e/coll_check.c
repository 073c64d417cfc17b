// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * coll_check: run by every rank (sgc_init_env), exercises the collectives
 * and checks every result against a reference that each rank computes on
 * its own (the inputs are a deterministic function of rank and index).
 *
 *   coll_check [-s SUITES] [-c COUNTS] [-b BIGCOUNT] [-i ITERS] [-T SECONDS] [-N COLLS] [-S] [-F]
 *   -T / -N: stop after the iteration during which SECONDS passed or rank 0
 *       completed COLLS collectives (rank 0 decides and tells the others by
 *       a broadcast); -S: every rank prints its counters (the fault runs
 *       sum retransmits over ranks), and rank 0 on the eBPF path its BPF counters;
 *       -F: the run has faults (drops), so window's "no contribution outside
 *       the window" holds no longer: the count is printed, not failed.
 *   -K RANKS: SGC_ALGO=shard-kernel with SGC_ACCEL=ebpf, every rank on a host of
 *       its own: the ranks listed (comma list, or "none") run with
 *       SGC_ACCEL=off, and at the end each of them must have reduced its
 *       shards in user space and every other rank its shards on its own
 *       eBPF path (sgc_stats.shards_in_kernel).
 *   SUITES: comma list of allreduce,inplace,reduce,bcast,barrier,nb,early,sg,sgpartial,custom,
 *       float,window,rscatter,allgather,shardnb (the last count),shardmismatch,
 *       big (the last count), lastresult, inorder, selfkill (kshard_kill.sh; last)
 *   exit 0 = all good, 1 = a wrong result or error, 77 = skipped
 */
#define _GNU_SOURCE	/* strerrorname_np */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sgcoll.h"
#include "check.h"

static unsigned long g_checked;
static bool g_faulty;	/* -F */
/* wrong results seen, and calls that ended in -ETIMEDOUT */
static unsigned long g_wrong, g_timeouts;

static size_t dsize(int dt)
{
	return (size_t)1 << (dt >> 1);
}

static const char *dname[] = { "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64" };
static const char *oname[] = { "sum", "prod", "min", "max", "band", "bor", "bxor" };

/* The input of rank r at index i, as 64 bits (truncated to the type). */
static uint64_t input(int r, size_t i, unsigned salt)
{
	uint64_t x = (uint64_t)r * 0x9E3779B97F4A7C15ULL ^ (uint64_t)i * 0xBF58476D1CE4E5B9ULL ^ salt;

	x ^= x >> 31;
	x *= 0x94D049BB133111EBULL;
	x ^= x >> 29;
	/* Keep PROD interesting: mostly small odd/even values, some extremes. */
	switch (x & 7) {
	case 0: return x >> 11;
	case 1: return (uint64_t)-(int64_t)((x >> 40) & 0xff);
	default: return (x >> 50) & 0x7;
	}
}

static void store(void *buf, int dt, size_t i, uint64_t v)
{
	switch (dsize(dt)) {
	case 1: ((uint8_t *)buf)[i] = (uint8_t)v; break;
	case 2: ((uint16_t *)buf)[i] = (uint16_t)v; break;
	case 4: ((uint32_t *)buf)[i] = (uint32_t)v; break;
	default: ((uint64_t *)buf)[i] = v; break;
	}
}

static uint64_t load(const void *buf, int dt, size_t i)
{
	switch (dsize(dt)) {
	case 1: return ((const uint8_t *)buf)[i];
	case 2: return ((const uint16_t *)buf)[i];
	case 4: return ((const uint32_t *)buf)[i];
	default: return ((const uint64_t *)buf)[i];
	}
}

/* Sign- or zero-extend a stored value so comparisons use the real type. */
static int64_t as_signed(uint64_t v, int dt)
{
	int bits = 8 * (int)dsize(dt);

	if (bits == 64)
		return (int64_t)v;
	v &= (1ULL << bits) - 1;
	if (v >> (bits - 1))
		return (int64_t)(v | ~((1ULL << bits) - 1));
	return (int64_t)v;
}

static uint64_t mask(int dt)
{
	int bits = 8 * (int)dsize(dt);

	return bits == 64 ? ~0ULL : (1ULL << bits) - 1;
}

static uint64_t ref_op(uint64_t a, uint64_t b, int dt, int op)
{
	bool sgn = !(dt & 1);

	a &= mask(dt);
	b &= mask(dt);
	switch (op) {
	case SGC_SUM: return (a + b) & mask(dt);
	case SGC_PROD: return (a * b) & mask(dt);
	case SGC_MIN: return sgn ? (as_signed(a, dt) < as_signed(b, dt) ? a : b) : (a < b ? a : b);
	case SGC_MAX: return sgn ? (as_signed(a, dt) > as_signed(b, dt) ? a : b) : (a > b ? a : b);
	case SGC_BAND: return a & b;
	case SGC_BOR: return a | b;
	default: return a ^ b;
	}
}

static uint64_t expect(size_t i, int dt, int op, unsigned salt, int nranks)
{
	uint64_t acc = input(0, i, salt) & mask(dt);
	int r;

	for (r = 1; r < nranks; r++)
		acc = ref_op(acc, input(r, i, salt), dt, op);
	return acc;
}

static void fill(void *buf, size_t n, int dt, int r, unsigned salt)
{
	size_t i;

	for (i = 0; i < n; i++)
		store(buf, dt, i, input(r, i, salt));
}

/* @buf against the reduction over every rank of input indices @base on
 * (a rank's block of a longer vector: reduce_scatter). */
static int verify_at(const char *what, const void *buf, size_t n, int dt, int op, unsigned salt,
		     size_t base)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint64_t want = expect(base + i, dt, op, salt, g_world) & mask(dt);
		uint64_t got = load(buf, dt, i) & mask(dt);

		if (want != got) {
			FAIL("%s: element %zu of %zu is %#" PRIx64 ", expected %#" PRIx64, what, i, n, got, want);
			g_wrong++;
			return -1;
		}
	}
	g_checked++;
	return 0;
}

static int verify(const char *what, const void *buf, size_t n, int dt, int op, unsigned salt)
{
	return verify_at(what, buf, n, dt, op, salt, 0);
}

static int check_rc(const char *what, int rc)
{
	if (rc) {
		FAIL("%s returned %d (%s): %s", what, rc, sgc_strerror(rc), sgc_last_error());
		if (rc == -ETIMEDOUT)
			g_timeouts++;
		return -1;
	}
	return 0;
}

static unsigned g_salt = 1;

static void t_allreduce(sgc_comm *c, const size_t *counts, int ncounts, size_t big, bool inplace)
{
	int dt, op, k;

	for (k = 0; k < ncounts; k++) {
		size_t n = counts[k];

		for (dt = 0; dt < 8; dt++) {
			for (op = 0; op < 7; op++) {
				char what[96];
				void *s, *r;
				unsigned salt = g_salt++;

				/* The full matrix at small counts; big counts on a diagonal. */
				if (n > big && op != dt % 7)
					continue;
				if (g_fail)
					return;	/* one failure is enough: do not wait out more timeouts */
				s = malloc(n * dsize(dt) + 8);
				r = inplace ? s : malloc(n * dsize(dt) + 8);
				fill(s, n, dt, g_rank, salt);
				if (!inplace)
					memset(r, 0xA5, n * dsize(dt));
				snprintf(what, sizeof(what), "allreduce%s %zu x %s %s", inplace ? " in-place" : "",
					 n, dname[dt], oname[op]);
				if (!check_rc(what, sgc_allreduce(c, s, r, n, dt, op)))
					verify(what, r, n, dt, op, salt);
				if (!inplace)
					free(r);
				free(s);
			}
		}
	}
}

/* reduce_scatter: block b of every rank's send buffer is input indices
 * b*n .. b*n+n-1; this rank gets the reduction of block g_rank. */
static void t_rscatter(sgc_comm *c, const size_t *counts, int ncounts, size_t big)
{
	int dt, op, k;

	for (k = 0; k < ncounts && !g_fail; k++) {
		size_t n = counts[k], w = (size_t)g_world;

		for (dt = 0; dt < 8 && !g_fail; dt++) {
			for (op = 0; op < 7 && !g_fail; op++) {
				unsigned salt = g_salt++;
				char what[96];
				void *s, *r;

				if (n > big && op != dt % 7)
					continue;
				s = malloc(n * w * dsize(dt) + 8);
				r = malloc(n * dsize(dt) + 8);
				fill(s, n * w, dt, g_rank, salt);
				memset(r, 0xA5, n * dsize(dt));
				snprintf(what, sizeof(what), "reduce_scatter %zu x %s %s", n, dname[dt], oname[op]);
				if (!check_rc(what, sgc_reduce_scatter(c, s, r, n, dt, op)))
					verify_at(what, r, n, dt, op, salt, (size_t)g_rank * n);
				free(s);
				free(r);
			}
		}
	}
}

/* allgather: block b of the result is rank b's input; also in place. */
static void t_allgather(sgc_comm *c, const size_t *counts, int ncounts)
{
	int dt, k, inplace;

	for (k = 0; k < ncounts && !g_fail; k++) {
		size_t n = counts[k], w = (size_t)g_world, b, i;

		for (dt = 0; dt < 8 && !g_fail; dt++) {
			for (inplace = 0; inplace < 2 && !g_fail; inplace++) {
				unsigned salt = g_salt++;
				uint8_t *r = malloc(n * w * dsize(dt) + 8), *s;
				char what[96];

				memset(r, 0xA5, n * w * dsize(dt));
				s = inplace ? r + (size_t)g_rank * n * dsize(dt) : malloc(n * dsize(dt) + 8);
				fill(s, n, dt, g_rank, salt);
				snprintf(what, sizeof(what), "allgather%s %zu x %s", inplace ? " in-place" : "",
					 n, dname[dt]);
				if (!check_rc(what, sgc_allgather(c, s, r, n, dt))) {
					for (b = 0; b < w; b++) {
						for (i = 0; i < n; i++)
							if ((load(r, dt, b * n + i) ^ input((int)b, i, salt)) & mask(dt))
								break;
						if (i < n) {
							FAIL("%s: block %zu element %zu wrong", what, b, i);
							g_wrong++;
							break;
						}
					}
					g_checked += b == w;
				}
				if (!inplace)
					free(s);
				free(r);
			}
		}
	}
}

/* The sharded collectives non-blocking, several in flight with star ones. */
static void t_shard_nb(sgc_comm *c, size_t n)
{
	enum { K = 4 };
	size_t w = (size_t)g_world;
	int32_t *as[K], *ar[K], *rs[K], *rr[K], *gs[K], *gr[K], small_s[K], small_r[K];
	sgc_request *req[4 * K];
	unsigned salt[K];
	int k, nr = 0, rc, done, left;

	for (k = 0; k < K; k++) {
		salt[k] = g_salt++;
		as[k] = malloc(n * 4 + 8);
		ar[k] = malloc(n * 4 + 8);
		rs[k] = malloc(n * w * 4 + 8);
		rr[k] = malloc(n * 4 + 8);
		gs[k] = malloc(n * 4 + 8);
		gr[k] = malloc(n * w * 4 + 8);
		fill(as[k], n, SGC_INT32, g_rank, salt[k]);
		fill(rs[k], n * w, SGC_INT32, g_rank, salt[k]);
		fill(gs[k], n, SGC_INT32, g_rank, salt[k]);
		small_s[k] = g_rank + k;
		if (check_rc("iallreduce", sgc_iallreduce(c, as[k], ar[k], n, SGC_INT32, SGC_SUM, &req[nr++])) ||
		    check_rc("ireduce_scatter", sgc_ireduce_scatter(c, rs[k], rr[k], n, SGC_INT32, SGC_MAX,
								    &req[nr++])) ||
		    check_rc("iallreduce 1", sgc_iallreduce(c, &small_s[k], &small_r[k], 1, SGC_INT32, SGC_SUM,
							    &req[nr++])) ||
		    check_rc("iallgather", sgc_iallgather(c, gs[k], gr[k], n, SGC_INT32, &req[nr++])))
			return;
	}
	/* Finish them out of order: by sgc_test() until all are done. */
	for (left = nr; left;) {
		for (k = nr - 1; k >= 0; k--) {
			if (!req[k])
				continue;
			rc = sgc_test(req[k], &done);
			if (done) {
				req[k] = NULL;
				left--;
				if (check_rc("non-blocking sharded", rc))
					return;
			} else if (rc) {
				check_rc("sgc_test", rc);
				return;
			}
		}
	}
	for (k = 0; k < K && !g_fail; k++) {
		size_t b, i;

		verify_at("iallreduce (sharded)", ar[k], n, SGC_INT32, SGC_SUM, salt[k], 0);
		verify_at("ireduce_scatter", rr[k], n, SGC_INT32, SGC_MAX, salt[k], (size_t)g_rank * n);
		if (small_r[k] != g_world * (g_world - 1) / 2 + g_world * k)
			FAIL("iallreduce 1 #%d: %d", k, small_r[k]);
		for (b = 0; b < w; b++)
			for (i = 0; i < n; i++)
				if ((uint32_t)gr[k][b * n + i] != (uint32_t)input((int)b, i, salt[k])) {
					FAIL("iallgather #%d: block %zu element %zu wrong", k, b, i);
					b = w;
					break;
				}
		free(as[k]); free(ar[k]); free(rs[k]); free(rr[k]); free(gs[k]); free(gr[k]);
	}
	g_checked++;
}

/* Gradient-sized: allreduce of @n int32 (sharded by default from 1 MiB),
 * reduce_scatter and allgather of the same vector cut in world blocks. */
static void t_big(sgc_comm *c, size_t n)
{
	size_t w = (size_t)g_world, blk = n / w, b, i;
	int32_t *s = malloc(n * 4 + 8), *r = malloc(n * 4 + 8);
	unsigned salt = g_salt++;
	double t0;

	fill(s, n, SGC_INT32, g_rank, salt);
	t0 = now_us();
	if (!check_rc("allreduce (big)", sgc_allreduce(c, s, r, n, SGC_INT32, SGC_SUM)))
		verify_at("allreduce (big)", r, n, SGC_INT32, SGC_SUM, salt, 0);
	if (g_rank == 0)
		printf("rank 0: allreduce of %zu x int32 in %.1f ms\n", n, (now_us() - t0) / 1e3);
	if (!g_fail &&
	    !check_rc("reduce_scatter (big)", sgc_reduce_scatter(c, s, r, blk, SGC_INT32, SGC_MIN)))
		verify_at("reduce_scatter (big)", r, blk, SGC_INT32, SGC_MIN, salt, (size_t)g_rank * blk);
	fill(s, blk, SGC_INT32, g_rank, salt);
	if (!g_fail && !check_rc("allgather (big)", sgc_allgather(c, s, r, blk, SGC_INT32))) {
		for (b = 0; b < w; b++)
			for (i = 0; i < blk; i++)
				if ((uint32_t)r[b * blk + i] != (uint32_t)input((int)b, i, salt)) {
					FAIL("allgather (big): block %zu element %zu wrong", b, i);
					g_wrong++;
					b = w;
					break;
				}
		g_checked++;
	}
	free(s);
	free(r);
}

/* The last rank passes another count: every rank gets SGC_EMISMATCH with
 * a message that names a rank, and the next collective works. */
static void t_shard_mismatch(sgc_comm *c)
{
	size_t n = 1000, w = (size_t)g_world;
	size_t mine = g_rank == g_world - 1 ? n + 1 : n;
	int32_t *s, *r;
	char odd[32];
	int rc;

	if (g_world < 2)
		return;		/* one rank cannot disagree with itself */
	s = calloc((n + 1) * w, 4);
	r = calloc((n + 1) * w, 4);

	rc = sgc_reduce_scatter(c, s, r, mine, SGC_INT32, SGC_SUM);
	if (rc != -SGC_EMISMATCH)
		FAIL("mismatched reduce_scatter returned %d (%s), expected -SGC_EMISMATCH: %s", rc,
		     sgc_strerror(rc), sgc_last_error());
	else if (!strstr(sgc_last_error(), "rank ") || !strstr(sgc_last_error(), "count"))
		FAIL("mismatch message names no rank or count: %s", sgc_last_error());
	rc = sgc_allgather(c, s, r, mine, SGC_INT32);
	if (rc != -SGC_EMISMATCH)
		FAIL("mismatched allgather returned %d (%s), expected -SGC_EMISMATCH: %s", rc,
		     sgc_strerror(rc), sgc_last_error());
	/* The sharded allreduce (SGC_ALGO=shard), on the owners' eBPF paths
	 * too: the message names the odd rank as this job numbers it. */
	rc = sgc_allreduce(c, s, r, mine, SGC_INT32, SGC_SUM);
	snprintf(odd, sizeof(odd), "rank %d", g_world - 1);
	if (rc != -SGC_EMISMATCH)
		FAIL("mismatched sharded allreduce returned %d (%s), expected -SGC_EMISMATCH: %s", rc,
		     sgc_strerror(rc), sgc_last_error());
	else if (!strstr(sgc_last_error(), odd) || !strstr(sgc_last_error(), "count"))
		FAIL("sharded allreduce mismatch message names not %s and the count: %s", odd,
		     sgc_last_error());
	fill(s, n, SGC_INT32, g_rank, 78);
	if (!check_rc("sharded allreduce after a mismatch", sgc_allreduce(c, s, r, n, SGC_INT32, SGC_SUM)))
		verify("sharded allreduce after a mismatch", r, n, SGC_INT32, SGC_SUM, 78);
	rc = sgc_reduce_scatter(c, s, r, g_rank == 1 % g_world ? n : n, SGC_INT32,
				g_rank == g_world - 1 ? SGC_MAX : SGC_SUM);
	if (rc != -SGC_EMISMATCH || !strstr(sgc_last_error(), "op"))
		FAIL("reduce_scatter with another op returned %d: %s", rc, sgc_last_error());
	fill(s, n * w, SGC_INT32, g_rank, 77);
	if (!check_rc("reduce_scatter after mismatches", sgc_reduce_scatter(c, s, r, n, SGC_INT32, SGC_SUM)))
		verify_at("reduce_scatter after mismatches", r, n, SGC_INT32, SGC_SUM, 77, (size_t)g_rank * n);
	free(s);
	free(r);
}

/* A rank lost mid-job (kshard_kill.sh): rank world / 2 SIGKILLs itself
 * after one exact sharded allreduce; every other rank's next one must fail
 * with -ETIMEDOUT naming it, within three timeouts.  Nothing runs after. */
static bool g_lost;

/* SGC_TIMEOUT_MS in seconds (10 unset, as the library). */
static double timeout_s(void)
{
	const char *t = getenv("SGC_TIMEOUT_MS");

	return (t ? atof(t) : 10000) / 1e3;
}

static void t_self_kill(sgc_comm *c)
{
	size_t n = 1 << 16;
	int32_t *s = malloc(n * 4), *r = malloc(n * 4);
	int victim = g_world / 2, rc;
	double t0, limit = 3 * timeout_s();
	char who[32];

	fill(s, n, SGC_INT32, g_rank, 91);
	if (!check_rc("sharded allreduce before the loss", sgc_allreduce(c, s, r, n, SGC_INT32, SGC_SUM)))
		verify("sharded allreduce before the loss", r, n, SGC_INT32, SGC_SUM, 91);
	g_lost = true;
	if (g_rank == victim && !g_fail) {
		printf("rank %d: SIGKILL myself\n", g_rank);
		fflush(stdout);
		raise(SIGKILL);
	}
	t0 = now_us();
	rc = sgc_allreduce(c, s, r, n, SGC_INT32, SGC_SUM);
	snprintf(who, sizeof(who), "rank %d ", victim);
	if (rc != -ETIMEDOUT)
		FAIL("sharded allreduce after the loss returned %d (%s), expected -ETIMEDOUT: %s", rc,
		     sgc_strerror(rc), sgc_last_error());
	else if (!strstr(sgc_last_error(), who))
		FAIL("sharded allreduce after the loss names not %s: %s", who, sgc_last_error());
	else if ((now_us() - t0) / 1e6 > limit)
		FAIL("sharded allreduce after the loss took %.1f s, more than %.1f", (now_us() - t0) / 1e6,
		     limit);
	else
		printf("rank %d: selfkill: failed as it should in %.1f s: %s\n", g_rank,
		       (now_us() - t0) / 1e6, sgc_last_error());
	free(s);
	free(r);
}

static void t_reduce(sgc_comm *c, const size_t *counts, int ncounts)
{
	int roots[3] = { 0, 1 % g_world, g_world - 1 };
	int k, ri, dt = SGC_INT32, op = SGC_SUM;

	for (k = 0; k < ncounts; k++) {
		for (ri = 0; ri < 3; ri++) {
			size_t n = counts[k];
			int root = roots[ri];
			unsigned salt = g_salt++;
			char what[96];
			void *s = malloc(n * 8 + 8), *r = malloc(n * 8 + 8);

			dt = (dt + 3) % 8;
			op = (op + 2) % 7;
			fill(s, n, dt, g_rank, salt);
			snprintf(what, sizeof(what), "reduce %zu x %s %s root %d", n, dname[dt], oname[op], root);
			if (!check_rc(what, sgc_reduce(c, s, g_rank == root ? r : NULL, n, dt, op, root)) &&
			    g_rank == root)
				verify(what, r, n, dt, op, salt);
			free(s);
			free(r);
		}
	}
}

static void t_bcast(sgc_comm *c, const size_t *counts, int ncounts)
{
	int roots[3] = { 0, 1 % g_world, g_world - 1 };
	int k, ri, dt = SGC_UINT8;

	for (k = 0; k < ncounts; k++) {
		for (ri = 0; ri < 3; ri++) {
			size_t n = counts[k], i;
			int root = roots[ri];
			unsigned salt = g_salt++;
			char what[96];
			uint8_t *b;

			dt = (dt + 5) % 8;
			b = malloc(n * dsize(dt) + 8);
			if (g_rank == root)
				fill(b, n, dt, root, salt);
			else
				memset(b, 0x5A, n * dsize(dt));
			snprintf(what, sizeof(what), "broadcast %zu x %s root %d", n, dname[dt], root);
			if (!check_rc(what, sgc_broadcast(c, b, n, dt, root))) {
				for (i = 0; i < n; i++) {
					if ((load(b, dt, i) ^ input(root, i, salt)) & mask(dt)) {
						FAIL("%s: element %zu wrong", what, i);
						g_wrong++;
						break;
					}
				}
				g_checked += i == n;
			}
			free(b);
		}
	}
}

static void t_barrier(sgc_comm *c, int iters)
{
	int i;

	for (i = 0; i < iters; i++)
		if (check_rc("barrier", sgc_barrier(c)))
			return;
	g_checked++;
}

/*
 * 3 x 128 sequential collectives, one element each, then rank 0's kernel
 * counters: in a run without faults no contribution may fall outside the
 * kernel's 128-collective window.  That happens when the window does not
 * follow the workers, each of whose contributions the kernel reduces and
 * drops unseen by user space; every 128th collective then waited for a
 * resend (4 ms).
 */
static void t_window(sgc_comm *c)
{
	int32_t in = g_rank + 1, out = 0, want = g_world * (g_world + 1) / 2;
	uint64_t st[32];
	int i, n;

	for (i = 0; i < 3 * 128; i++) {
		if (check_rc("allreduce (window)", sgc_allreduce(c, &in, &out, 1, SGC_INT32, SGC_SUM)))
			return;
		if (out != want) {
			FAIL("allreduce (window) #%d: %d, expected %d", i, out, want);
			return;
		}
	}
	if (g_rank != 0 || !sgc_accelerated(c)) {
		g_checked++;
		return;
	}
	n = sgc_bpf_stats(c, st, 32);
	for (i = 0; i < n; i++) {
		if (strcmp(sgc_bpf_stat_name(i), "drop_window"))
			continue;
		if (st[i] && !g_faulty) {
			FAIL("the kernel dropped %" PRIu64 " contributions as outside its window in "
			     "%d sequential collectives without faults", st[i], 3 * 128);
			return;
		}
		if (st[i])
			printf("rank 0: window: %" PRIu64 " contributions dropped as outside the kernel's "
			       "window, in a run with faults (-F)\n", st[i]);
		g_checked++;
		return;
	}
	FAIL("sgc_bpf_stats has no drop_window counter (%d counters)", n);
}

/* Many non-blocking collectives in flight, completed through sgc_fd()
 * polling and sgc_test() in an order different from posting. */
static void t_nonblocking(sgc_comm *c, int depth)
{
	enum { N = 363 };
	sgc_request **reqs = calloc((size_t)depth, sizeof(*reqs));
	int32_t (*s)[N] = calloc((size_t)depth, sizeof(*s));
	int32_t (*r)[N] = calloc((size_t)depth, sizeof(*r));
	unsigned *salt = calloc((size_t)depth, sizeof(*salt));
	int i, left, rc;
	double t0 = now_us();

	for (i = 0; i < depth; i++) {
		salt[i] = g_salt++;
		if (i % 4 == 3) {
			if (g_rank == i % g_world)
				fill(r[i], N, SGC_INT32, i % g_world, salt[i]);
			rc = sgc_ibroadcast(c, r[i], N, SGC_INT32, i % g_world, &reqs[i]);
		} else {
			fill(s[i], N, SGC_INT32, g_rank, salt[i]);
			rc = sgc_iallreduce(c, s[i], r[i], N, SGC_INT32, SGC_SUM, &reqs[i]);
		}
		if (check_rc("post non-blocking", rc))
			goto out;
	}
	left = depth;
	while (left && now_us() - t0 < 60e6) {
		struct pollfd p = { .fd = sgc_fd(c), .events = POLLIN };

		for (i = depth - 1; i >= 0; i--) {
			int done = 0;

			if (!reqs[i])
				continue;
			rc = sgc_test(reqs[i], &done);
			if (done) {
				reqs[i] = NULL;
				left--;
				if (check_rc("sgc_test result", rc))
					continue;
				if (i % 4 == 3) {
					int k;

					for (k = 0; k < N; k++)
						if ((uint32_t)r[i][k] != (uint32_t)input(i % g_world, (size_t)k, salt[i])) {
							FAIL("ibroadcast #%d element %d wrong", i, k);
							g_wrong++;
							break;
						}
					g_checked++;
				} else {
					verify("iallreduce", r[i], N, SGC_INT32, SGC_SUM, salt[i]);
				}
			} else if (rc) {
				check_rc("sgc_test", rc);
			}
		}
		if (left)
			poll(&p, 1, 100);
	}
	if (left)
		FAIL("%d non-blocking collectives did not complete", left);
out:
	for (i = 0; i < depth; i++)
		if (reqs[i])
			sgc_wait(reqs[i]);
	free(reqs);
	free(s);
	free(r);
	free(salt);
}

/*
 * With many collectives open, rank 0 holds results for a moment to send
 * them together (eBPF path; user-space path from 16 workers).  What it
 * holds must not wait for its next call: here rank 0 posts after the
 * workers (so that each collective completes inside its post), goes quiet
 * for 2 s right after its waitall, and every worker's waitall must still
 * end at once.
 */
static void t_last_result(sgc_comm *c)
{
	enum { DEPTH = SGC_MAX_INFLIGHT, N = 363 };
	static int32_t s[DEPTH][N], r[DEPTH][N];
	sgc_request *reqs[DEPTH] = { 0 };
	unsigned salt[DEPTH];
	double t;
	int i, rc = 0;

	if (g_rank == 0)
		usleep(200000);
	for (i = 0; i < DEPTH && !rc; i++) {
		salt[i] = g_salt++;
		fill(s[i], N, SGC_INT32, g_rank, salt[i]);
		rc = check_rc("iallreduce", sgc_iallreduce(c, s[i], r[i], N, SGC_INT32, SGC_SUM,
							    &reqs[i]));
	}
	t = now_us();
	if (check_rc("waitall", sgc_waitall(DEPTH, reqs, NULL)) || rc)
		return;
	t = now_us() - t;
	for (i = 0; i < DEPTH; i++)
		verify("iallreduce (last results)", r[i], N, SGC_INT32, SGC_SUM, salt[i]);
	if (g_rank == 0)
		usleep(2000000);
	else if (t > 1e6)
		FAIL("the last of %d allreduces in flight took %.0f ms: rank 0 held results "
		     "until its next call", DEPTH, t / 1e3);
}

/*
 * Results in the order of the collectives.  Rank 0 posts A (eight
 * allreduces, enough that the kernel leaves their results to user space)
 * and sleeps; the workers post A and B meanwhile, so the kernel finishes
 * A on workers' datagrams (the results wait in the ring buffer) while B
 * waits for rank 0.  Rank 0's post of B finishes B at once; A must be
 * finished and sent first, not at rank 0's next wait 200 ms later: a
 * worker that sees a later collective done first takes the earlier
 * result for lost.
 */
static void t_in_order(sgc_comm *c)
{
	enum { A = 8, M = A + 1, N = 363 };
	static int32_t s[M][N], r[M][N];
	sgc_request *reqs[M] = { 0 };
	unsigned salt[M];
	int i, rc = 0, idx, done, first = -1;
	double t0;

	for (i = 0; i < M; i++) {
		salt[i] = g_salt++;
		fill(s[i], N, SGC_INT32, g_rank, salt[i]);
	}
	if (check_rc("barrier", sgc_barrier(c)))
		return;
	if (g_rank == 0) {
		for (i = 0; i < A && !rc; i++)
			rc = check_rc("iallreduce", sgc_iallreduce(c, s[i], r[i], N, SGC_INT32,
								    SGC_SUM, &reqs[i]));
		/* A progress step tells the kernel how many are open. */
		if (!rc)
			rc = check_rc("testany", sgc_testany(A, reqs, &idx, &done));
		usleep(200000);
		if (!rc)
			rc = check_rc("iallreduce", sgc_iallreduce(c, s[A], r[A], N, SGC_INT32,
								    SGC_SUM, &reqs[A]));
		usleep(200000);
	} else {
		usleep(50000);
		for (i = 0; i < M && !rc; i++)
			rc = check_rc("iallreduce", sgc_iallreduce(c, s[i], r[i], N, SGC_INT32,
								    SGC_SUM, &reqs[i]));
		/* Which finishes first; several in one step count as in order. */
		t0 = now_us();
		while (!rc && first < 0 && now_us() - t0 < 5e6) {
			rc = check_rc("testany", sgc_testany(M, reqs, &idx, &done));
			if (!rc && done)
				first = idx;
			else if (!rc)
				usleep(1000);
		}
		if (first == A)
			FAIL("allreduce %d of %d finished while the first %d had not: rank 0 sent "
			     "their results out of order", A + 1, M, A);
	}
	if (check_rc("waitall", sgc_waitall(M, reqs, NULL)) || rc)
		return;
	for (i = 0; i < M; i++)
		verify("iallreduce (in order)", r[i], N, SGC_INT32, SGC_SUM, salt[i]);
}

/*
 * A collective whose result is here before it is called: while a worker
 * waits on the first broadcast from rank 0, the second one's data comes in
 * the same batch, so the second call completes inside itself.  Its slot
 * must then be as free as that of one completed by waiting: a full window
 * of non-blocking collectives right after it must be accepted.
 */
static void t_early(sgc_comm *c)
{
	int32_t a = g_rank == 0 ? 0x1234 : 0, b = g_rank == 0 ? 0x5678 : 0;
	sgc_request *req;

	if (check_rc("early: first ibroadcast", sgc_ibroadcast(c, &a, 1, SGC_INT32, 0, &req)))
		return;
	/* Rank 0 does not wait for the workers: let both arrive here first. */
	if (g_rank != 0)
		usleep(200 * 1000);
	if (check_rc("early: first broadcast's wait", sgc_wait(req)) ||
	    check_rc("early: second broadcast", sgc_broadcast(c, &b, 1, SGC_INT32, 0)))
		return;
	if (a != 0x1234 || b != 0x5678) {
		FAIL("early: broadcasts gave %#x and %#x, expected 0x1234 and 0x5678", (unsigned)a,
		     (unsigned)b);
		g_wrong++;
		return;
	}
	g_checked++;
	t_nonblocking(c, SGC_MAX_INFLIGHT);
}

/* scatter-gather: workers answer the query (a salt) with their input
 * vector, or decline when (salt + rank) % 3 == 0 in the "declines" round. */
static int handler(const void *query, size_t len, void *resp, size_t count, enum sgc_dtype dt, void *arg)
{
	unsigned salt;

	if (len != sizeof(salt))
		return -EINVAL;
	memcpy(&salt, query, sizeof(salt));
	if ((salt & 1) && (salt + (unsigned)g_rank) % 3 == 0)
		return 1;
	fill(resp, count, dt, g_rank, salt);
	return 0;
}

/* One query from the coordinator; checks the result against the ranks
 * the status says answered.  Returns the call's result. */
static int sg_one(sgc_comm *c, int pol, unsigned wait_n, size_t n, unsigned salt, unsigned timeout_ms,
		  int *nanswered, unsigned char *ans)
{
	struct sgc_sg_opts o = { .sz = sizeof(o), .policy = pol, .wait_n = wait_n, .timeout_ms = timeout_ms };
	struct sgc_sg_status st = { .sz = sizeof(st), .answered = ans };
	int32_t *res = calloc(n + 1, sizeof(*res));
	char what[96];
	size_t i;
	int r, rc;

	snprintf(what, sizeof(what), "scatter_gather %zu x int32 policy %d wait_n %u salt %u", n, pol,
		 wait_n, salt);
	rc = sgc_scatter_gather(c, &salt, sizeof(salt), res, n, SGC_INT32, SGC_SUM, &o, &st);
	*nanswered = st.nanswered;
	if (rc)
		goto out;
	for (i = 0; i < n; i++) {
		uint32_t sum = 0;

		for (r = 1; r < g_world; r++)
			if (ans[r])
				sum += (uint32_t)input(r, i, salt);
		if ((uint32_t)res[i] != sum) {
			FAIL("%s: element %zu is %u, expected %u", what, i, (uint32_t)res[i], sum);
			g_wrong++;
			break;
		}
	}
	g_checked++;
out:
	free(res);
	return rc;
}

static void t_sg(sgc_comm *c)
{
	size_t counts[] = { 1, 363, 5000 };
	int nw = g_world - 1, k, pol, got, r, rc, ndecl;
	unsigned char *ans = calloc((size_t)g_world, 1);
	unsigned salt;

	if (g_world < 2)
		goto out;
	if (g_rank != 0) {
		check_rc("sgc_serve", sgc_serve(c, handler, NULL, NULL));
		goto out;
	}
	for (pol = 0; pol < 3; pol++) {
		for (k = 0; k < 3; k++) {
			unsigned wait_n = (unsigned)(nw > 2 ? nw / 2 + 1 : 1);
			int want = pol == SGC_WAIT_ALL ? nw : pol == SGC_WAIT_N ? (int)wait_n : 1;

			salt = (g_salt++) * 2;	/* even: nobody declines */
			rc = sg_one(c, pol, wait_n, counts[k], salt, 10000, &got, ans);
			if (!check_rc("scatter_gather", rc) && got != want)
				FAIL("scatter_gather policy %d: %d answered, wanted %d", pol, got, want);
		}
	}
	/* WAIT_ALL with declines: completes, declined ranks are not in it. */
	salt = (g_salt++) * 2 + 1;
	for (ndecl = 0, r = 1; r < g_world; r++)
		ndecl += (salt + (unsigned)r) % 3 == 0;
	rc = sg_one(c, SGC_WAIT_ALL, 0, 363, salt, 10000, &got, ans);
	if (!check_rc("scatter_gather with declines", rc) && got != nw - ndecl)
		FAIL("scatter_gather with declines: %d answered, expected %d", got, nw - ndecl);
	/* WAIT_N asking for more than can answer: -ECANCELED, no hang. */
	if (ndecl) {
		rc = sg_one(c, SGC_WAIT_N, (unsigned)nw, 10, salt, 10000, &got, ans);
		if (rc != -ECANCELED)
			FAIL("WAIT_N %d with %d declining: expected -ECANCELED, got %d", nw, ndecl, rc);
		else
			g_checked++;
	}
	check_rc("sgc_serve_stop", sgc_serve_stop(c));
out:
	free(ans);
}

/* The last rank never serves: WAIT_N/WAIT_ANY complete without it,
 * WAIT_ALL times out naming it.  Then everyone meets in a barrier. */
static void t_sg_partial(sgc_comm *c)
{
	int silent = g_world - 1, nw = g_world - 1, got, pol;
	unsigned char *ans = calloc((size_t)g_world, 1);

	if (g_world < 3)
		goto out;
	if (g_rank == 0) {
		for (pol = 0; pol < 3; pol++) {
			unsigned wait_n = (unsigned)(nw - 1);
			int rc = sg_one(c, pol, wait_n, 363, (g_salt++) * 2, pol == SGC_WAIT_ALL ? 400 : 10000,
					&got, ans);

			if (pol == SGC_WAIT_ALL) {
				char want[32];

				snprintf(want, sizeof(want), "rank %d", silent);
				if (rc != -ETIMEDOUT)
					FAIL("WAIT_ALL with rank %d silent: expected -ETIMEDOUT, got %d", silent, rc);
				else if (!strstr(sgc_last_error(), want))
					FAIL("WAIT_ALL timeout message does not name %s: %s", want, sgc_last_error());
				else if (ans[silent] || got != nw - 1)
					FAIL("WAIT_ALL timeout status: %d answered, silent rank marked %d", got, ans[silent]);
				else
					g_checked++;
			} else if (!check_rc("scatter_gather (one silent)", rc) && ans[silent]) {
				FAIL("silent rank %d reported as answered", silent);
			}
		}
	} else if (g_rank != silent) {
		struct sgc_serve_opts so = { .sz = sizeof(so), .idle_timeout_ms = 1500 };
		int rc = sgc_serve(c, handler, NULL, &so);

		if (rc != -ETIMEDOUT)
			check_rc("sgc_serve (partial)", rc);
	}
	check_rc("barrier after partial", sgc_barrier(c));
out:
	free(ans);
}

/*
 * SGC_CUSTOM with libsgcoll/bpf/examples/agg_saturating_sum (the
 * coordinator runs with SGC_CUSTOM_BPF pointing at it): int32 sums that
 * clamp at INT32_MAX.
 * Inputs are positive, so the clamped sum does not depend on the order in
 * which the kernel reduces contributions.
 */
static int32_t custom_input(int r, size_t i)
{
	return (int32_t)(((uint64_t)r * 100000007u + i * 7919u) % 1000000000u + 1);
}

static void t_custom(sgc_comm *c)
{
	size_t counts[] = { 1, 300, 5000 }, k, i;
	int root, r;

	for (k = 0; k < 3 && !g_fail; k++) {
		size_t n = counts[k];
		int32_t *s = malloc(n * sizeof(*s)), *res = calloc(n, sizeof(*res));

		for (i = 0; i < n; i++)
			s[i] = custom_input(g_rank, i);
		for (root = -1; root < 2 && !g_fail; root++) {
			char what[64];
			int rc;

			snprintf(what, sizeof(what), "custom saturating sum %zu x int32 %s", n,
				 root < 0 ? "allreduce" : root ? "reduce to 1" : "reduce to 0");
			rc = root < 0 ? sgc_allreduce(c, s, res, n, SGC_INT32, SGC_CUSTOM)
				      : sgc_reduce(c, s, res, n, SGC_INT32, SGC_CUSTOM, root % g_world);
			if (check_rc(what, rc) || (root >= 0 && g_rank != root % g_world))
				continue;
			for (i = 0; i < n; i++) {
				int64_t sum = 0;

				for (r = 0; r < g_world; r++)
					sum += custom_input(r, i);
				if (sum > INT32_MAX)
					sum = INT32_MAX;
				if (res[i] != (int32_t)sum) {
					FAIL("%s: element %zu is %d, expected %lld", what, i, res[i],
					     (long long)sum);
					break;
				}
			}
			g_checked++;
		}
		free(s);
		free(res);
	}
}

/*
 * sgc_allreduce_float/double: random values in [-1, 1], averaged and summed
 * through int32/int64; the error against the exact double result must stay
 * within the documented bound (0.5 / scale for the average, world times
 * that for the sum) plus the result type's own rounding.
 */
static void t_float(sgc_comm *c)
{
	size_t counts[] = { 1, 363, 20000 }, k, i;
	int r, avg;

	for (k = 0; k < 3 && !g_fail; k++) {
		size_t n = counts[k];
		float *fs = malloc(n * sizeof(*fs)), *fr = malloc(n * sizeof(*fr));
		double *ds = malloc(n * sizeof(*ds)), *dr = malloc(n * sizeof(*dr));
		double worst_f = 0, worst_d = 0;

		for (i = 0; i < n; i++) {
			ds[i] = (double)(int64_t)input(g_rank, i, 99) / 9.3e18;
			fs[i] = (float)ds[i];
		}
		for (avg = 0; avg < 2 && !g_fail; avg++) {
			double sf = sgc_fixed_scale(g_world, 1.0, SGC_INT32);
			double sd = sgc_fixed_scale(g_world, 1.0, SGC_INT64);
			double div = avg ? g_world : 1, bf, bd;
			size_t nsat = 1;

			worst_f = worst_d = 0;
			if (check_rc("allreduce_float", sgc_allreduce_float(c, fs, fr, n, 1.0, avg, &nsat)) ||
			    check_rc("allreduce_double", sgc_allreduce_double(c, ds, dr, n, 1.0, avg, NULL)))
				break;
			if (nsat)
				FAIL("allreduce_float: %zu inputs in [-1, 1] reported saturated", nsat);
			for (i = 0; i < n; i++) {
				double ef = 0, ed = 0;

				for (r = 0; r < g_world; r++) {
					double v = (double)(int64_t)input(r, i, 99) / 9.3e18;

					ef += (double)(float)v;
					ed += v;
				}
				worst_f = fmax(worst_f, fabs(fr[i] - ef / div));
				worst_d = fmax(worst_d, fabs(dr[i] - ed / div));
			}
			bf = g_world * 0.5 / sf / div + 1.2e-7 * g_world;
			bd = g_world * 0.5 / sd / div + 1e-15 * g_world;
			if (worst_f > bf || worst_d > bd)
				FAIL("float allreduce of %zu (%s): error %g / %g above the bound %g / %g", n,
				     avg ? "average" : "sum", worst_f, worst_d, bf, bd);
			else
				g_checked++;
			if (g_rank == 0 && n == 20000)
				printf("rank 0: %s of %zu floats over %d ranks: worst error %.3g (bound %.3g), "
				       "doubles %.3g (bound %.3g)\n", avg ? "average" : "sum", n, g_world,
				       worst_f, bf, worst_d, bd);
		}
		free(fs);
		free(fr);
		free(ds);
		free(dr);
	}
}

/* Is @rank in the comma list @list? */
static bool rank_listed(const char *list, int rank)
{
	const char *s = list;

	while (*s) {
		char *end;
		long r = strtol(s, &end, 10);

		if (end != s && r == rank)
			return true;
		s = *end ? end + 1 : end;
	}
	return false;
}

static size_t parse_counts(const char *s, size_t *out, int max)
{
	int n = 0;

	while (*s && n < max) {
		out[n++] = strtoull(s, (char **)&s, 10);
		if (*s == ',')
			s++;
	}
	return (size_t)n;
}

int main(int argc, char **argv)
{
	const char *suites = "allreduce,inplace,reduce,bcast,barrier,nb,early,sg";
	size_t counts[16] = { 0, 1, 363, 100000 }, big = 363;
	int ncounts = 4, iters = 1, opt, it;
	double limit_s = 0, next_report = 10;
	uint64_t limit_colls = 0;
	bool all_stats = false;
	const char *go_file = NULL;
	const char *kernel_off = NULL;	/* -K */
	sgc_comm *c;
	double t0;
	int rc;

	while ((opt = getopt(argc, argv, "s:c:b:i:T:N:SW:FK:")) != -1) {
		switch (opt) {
		case 's': suites = optarg; break;
		case 'c': ncounts = (int)parse_counts(optarg, counts, 16); break;
		case 'b': big = strtoull(optarg, NULL, 10); break;
		case 'i': iters = atoi(optarg); break;
		case 'T': limit_s = atof(optarg); break;
		case 'N': limit_colls = strtoull(optarg, NULL, 10); break;
		case 'S': all_stats = true; break;
		case 'F': g_faulty = true; break;
		case 'K': kernel_off = optarg; break;
		case 'W': go_file = optarg; break;
		default:
			fprintf(stderr, "usage: %s [-s suites] [-c counts] [-b bigcount] [-i iters] [-T seconds] [-S] "
				"[-F] [-W file]\n", argv[0]);
			return 2;
		}
	}
	if (kernel_off && getenv("SGC_RANK") && rank_listed(kernel_off, atoi(getenv("SGC_RANK"))))
		setenv("SGC_ACCEL", "off", 1);
	rc = sgc_init_env(&c);
	if (rc == -EOPNOTSUPP) {
		/* SGC_ACCEL=ebpf on a kernel without a feature the path needs. */
		fprintf(stderr, "SKIP: %s\n", sgc_last_error());
		return 77;
	}
	if (rc) {
		fprintf(stderr, "sgc_init_env: %s\n%s\n", sgc_strerror(rc), sgc_last_error());
		fprintf(stderr, "sgc_init_env returned %d (%s)\n", rc,
			strerrorname_np(-rc) ? strerrorname_np(-rc) : "?");
		return 1;
	}
	g_rank = sgc_rank(c);
	g_world = sgc_world_size(c);
	t0 = now_us();
	for (it = 0; it < iters && !g_fail; it++) {
		/* Only rank 0 draws salts in sg: start every iteration in step. */
		g_salt = 1 + (unsigned)it * 4096;
		if (strstr(suites, "allreduce"))
			t_allreduce(c, counts, ncounts, big, false);
		if (strstr(suites, "rscatter") && !g_fail)
			t_rscatter(c, counts, ncounts, big);
		if (strstr(suites, "allgather") && !g_fail)
			t_allgather(c, counts, ncounts);
		if (strstr(suites, "shardnb") && !g_fail)
			t_shard_nb(c, counts[ncounts - 1]);
		if (strstr(suites, "shardmismatch") && !g_fail)
			t_shard_mismatch(c);
		if (strstr(suites, "big") && !g_fail)
			t_big(c, counts[ncounts - 1]);
		if (strstr(suites, "selfkill") && !g_fail) {
			t_self_kill(c);
			break;
		}
		if (strstr(suites, "inplace"))
			t_allreduce(c, counts, ncounts, 0, true);
		if (strstr(suites, "reduce") && !g_fail)
			t_reduce(c, counts, ncounts);
		if (strstr(suites, "bcast") && !g_fail)
			t_bcast(c, counts, ncounts);
		if (strstr(suites, "barrier") && !g_fail)
			t_barrier(c, 10);
		if (strstr(suites, "nb") && !g_fail)
			t_nonblocking(c, SGC_MAX_INFLIGHT);
		if (strstr(suites, "window") && !g_fail)
			t_window(c);
		if (strstr(suites, "lastresult") && !g_fail)
			t_last_result(c);
		if (strstr(suites, "early") && !g_fail)
			t_early(c);
		if (strstr(suites, "inorder") && !g_fail)
			t_in_order(c);
		if (strstr(suites, "custom") && !g_fail)
			t_custom(c);
		if (strstr(suites, "float") && !g_fail)
			t_float(c);
		/* -W: rank 0 holds the first scatter-gather until FILE exists
		 * (at most 30 s), so that a test can change the host first. */
		if (go_file && g_rank == 0 && strstr(suites, "sg")) {
			int n;

			for (n = 0; n < 300 && access(go_file, F_OK); n++)
				usleep(100000);
			go_file = NULL;
		}
		if (strstr(suites, "sgpartial") && !g_fail)
			t_sg_partial(c);
		else if (strstr(suites, "sg") && !g_fail)
			t_sg(c);
		if ((limit_s > 0 || limit_colls) && !g_fail) {
			/* rank 0's clock decides, so that every rank stops together */
			int32_t stop = 0;
			double el = (now_us() - t0) / 1e6;

			if (g_rank == 0) {
				struct sgc_stats ps;

				sgc_get_stats(c, &ps, sizeof(ps));
				stop = (limit_s > 0 && el >= limit_s) || (limit_colls && ps.collectives >= limit_colls);
				if (el >= next_report || stop) {
					printf("rank 0: progress: %d iterations, %" PRIu64 " collectives, %" PRIu64
					       " retransmits, %.0f s\n", it + 1, ps.collectives, ps.retransmits, el);
					fflush(stdout);
					next_report = el + 10;
				}
			}
			if (check_rc("stop broadcast", sgc_broadcast(c, &stop, 1, SGC_INT32, 0)))
				break;
			if (stop)
				break;
		}
	}
	if (!g_fail && !g_lost)
		check_rc("final barrier", sgc_barrier(c));
	if (g_rank == 0 || g_fail || all_stats) {
		struct sgc_stats st;

		sgc_get_stats(c, &st, sizeof(st));
		printf("rank %d: %s: %lu checks in %.1f ms; %" PRIu64 " datagrams sent, %" PRIu64
		       " received, %" PRIu64 " retransmits, %" PRIu64 " duplicates ignored\n",
		       g_rank, g_fail ? "FAILED" : "ok", g_checked, (now_us() - t0) / 1e3,
		       st.pkts_sent, st.pkts_recv, st.retransmits, st.duplicates);
		printf("rank %d: counts: collectives=%" PRIu64 " checks=%lu wrong=%lu timeouts=%lu retransmits=%"
		       PRIu64 " duplicates=%" PRIu64 " late=%" PRIu64 " rejected=%" PRIu64 " seconds=%.1f\n",
		       g_rank, st.collectives, g_checked, g_wrong, g_timeouts, st.retransmits, st.duplicates,
		       st.late, st.rejected, (now_us() - t0) / 1e6);
	}
	if (kernel_off && !g_fail) {
		struct sgc_stats st;

		sgc_get_stats(c, &st, sizeof(st));
		if (rank_listed(kernel_off, g_rank) ? st.shards_in_kernel != 0 : st.shards_in_kernel == 0)
			FAIL("rank %d (SGC_ACCEL=%s) reduced %" PRIu64 " of its shards on its eBPF path",
			     g_rank, rank_listed(kernel_off, g_rank) ? "off" : "ebpf", st.shards_in_kernel);
		else
			printf("rank %d: %" PRIu64 " shards reduced on its own eBPF path\n", g_rank,
			       st.shards_in_kernel);
	}
	if (all_stats && sgc_accelerated(c)) {
		uint64_t bs[32];
		int i, n = sgc_bpf_stats(c, bs, 32);

		printf("rank %d: bpf:", g_rank);
		for (i = 0; i < n; i++)
			printf(" %s=%" PRIu64, sgc_bpf_stat_name(i), bs[i]);
		printf("\n");
	}
	t0 = now_us();
	sgc_finalize(c);
	if (g_lost) {
		/* The peers' goodbyes wait at most a timeout each, side by side. */
		double limit = 3 * timeout_s() + 5;

		if ((now_us() - t0) / 1e6 > limit)
			FAIL("sgc_finalize after the loss took %.1f s, more than %.1f",
			     (now_us() - t0) / 1e6, limit);
		else
			printf("rank %d: selfkill: ok (finalize %.1f s)\n", g_rank, (now_us() - t0) / 1e6);
	}
	return g_fail ? 1 : 0;
}
