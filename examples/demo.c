// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The `make demo` job: every rank runs this under sgc-cluster.  It runs
 * allreduce, broadcast, barrier and a scatter-gather query, checks every
 * result, and rank 0 prints what happened and how long it took.
 *
 *   demo [-n ITERATIONS]
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sgcoll.h>

static int rank, world, failures;

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[(int)(p * (n - 1))];
}

static int check(const char *what, int rc)
{
	if (rc) {
		fprintf(stderr, "rank %d: %s failed: %s\n  %s\n", rank, what, sgc_strerror(rc),
			sgc_last_error());
		failures++;
	}
	return rc;
}

static void report(const char *what, bool ok, double *lat, int n)
{
	if (rank != 0)
		return;
	if (n > 1)
		printf("  %-44s %s   p50 %7.1f us   p99 %7.1f us   (%d runs)\n", what,
		       ok ? "ok  " : "FAIL", pct(lat, n, 0.5), pct(lat, n, 0.99), n);
	else
		printf("  %-44s %s\n", what, ok ? "ok  " : "FAIL");
	fflush(stdout);
}

/* Worker handler: a vote.  The query is a proposal number; a worker votes
 * yes (1) when (proposal + rank) is not divisible by 4. */
static int vote(const void *query, size_t len, void *resp, size_t count, enum sgc_dtype dt, void *arg)
{
	uint32_t proposal;

	(void)arg;
	if (len != sizeof(proposal) || count != 1 || dt != SGC_UINT32)
		return -EINVAL;
	memcpy(&proposal, query, sizeof(proposal));
	*(uint32_t *)resp = (proposal + (uint32_t)rank) % 4 != 0;
	return 0;
}

static void demo_allreduce(sgc_comm *c, int iters)
{
	enum { N = 363 };
	int32_t send[N], recv[N];
	double *lat = calloc((size_t)iters, sizeof(*lat));
	bool ok = true;
	int it, i;

	for (it = 0; it < iters && ok; it++) {
		double t0;

		for (i = 0; i < N; i++)
			send[i] = rank * 1000 + i + it;
		sgc_barrier(c);
		t0 = now_us();
		if (check("allreduce", sgc_allreduce(c, send, recv, N, SGC_INT32, SGC_SUM))) {
			ok = false;
			break;
		}
		lat[it] = now_us() - t0;
		/* sum over r of (1000 r + i + it) */
		for (i = 0; i < N; i++)
			if (recv[i] != 1000 * world * (world - 1) / 2 + world * (i + it))
				ok = false;
	}
	report("allreduce   363 x int32 sum", ok, lat, it);
	failures += !ok;
	free(lat);
}

static void demo_broadcast(sgc_comm *c, int iters)
{
	const size_t n = 100000;
	uint8_t *buf = malloc(n);
	double *lat = calloc((size_t)iters, sizeof(*lat));
	int root = world > 3 ? 3 : world - 1, it;
	bool ok = true;
	size_t i;

	for (it = 0; it < iters && ok; it++) {
		double t0;

		for (i = 0; i < n; i++)
			buf[i] = rank == root ? (uint8_t)(i * 7 + (size_t)it) : 0;
		sgc_barrier(c);
		t0 = now_us();
		if (check("broadcast", sgc_broadcast(c, buf, n, SGC_UINT8, root))) {
			ok = false;
			break;
		}
		lat[it] = now_us() - t0;
		for (i = 0; i < n; i++)
			if (buf[i] != (uint8_t)(i * 7 + (size_t)it))
				ok = false;
	}
	{
		char what[64];

		snprintf(what, sizeof(what), "broadcast   100000 x uint8 from rank %d", root);
		report(what, ok, lat, it);
	}
	failures += !ok;
	free(lat);
	free(buf);
}

static void demo_barrier(sgc_comm *c, int iters)
{
	double *lat = calloc((size_t)iters, sizeof(*lat));
	bool ok = true;
	int it;

	for (it = 0; it < iters; it++) {
		double t0 = now_us();

		if (check("barrier", sgc_barrier(c))) {
			ok = false;
			break;
		}
		lat[it] = now_us() - t0;
	}
	report("barrier", ok, lat, it);
	free(lat);
}

static void demo_vote(sgc_comm *c)
{
	if (rank != 0) {
		check("sgc_serve", sgc_serve(c, vote, NULL, NULL));
		return;
	}
	for (int pol = SGC_WAIT_ALL; pol <= SGC_WAIT_ANY; pol++) {
		struct sgc_sg_opts o = { .sz = sizeof(o), .policy = pol, .wait_n = (unsigned)world / 2 };
		unsigned char *answered = calloc((size_t)world, 1);
		struct sgc_sg_status st = { .sz = sizeof(st), .answered = answered };
		uint32_t proposal = 42, yes = 0, expect = 0;
		double t0 = now_us(), us;
		char what[96];
		int r;

		if (check("scatter_gather", sgc_scatter_gather(c, &proposal, sizeof(proposal), &yes, 1,
							       SGC_UINT32, SGC_SUM, &o, &st))) {
			free(answered);
			continue;
		}
		us = now_us() - t0;
		for (r = 1; r < world; r++)
			if (answered[r])
				expect += (proposal + (uint32_t)r) % 4 != 0;
		snprintf(what, sizeof(what), "vote %-8s %2d of %2d answered, %2u yes",
			 pol == SGC_WAIT_ALL ? "WAIT_ALL" : pol == SGC_WAIT_N ? "WAIT_N" : "WAIT_ANY",
			 st.nanswered, world - 1, yes);
		report(what, yes == expect, &us, 1);
		failures += yes != expect;
		free(answered);
	}
	check("sgc_serve_stop", sgc_serve_stop(c));
}

int main(int argc, char **argv)
{
	int iters = 200, opt, err;
	sgc_comm *c;

	while ((opt = getopt(argc, argv, "n:")) != -1) {
		if (opt == 'n')
			iters = atoi(optarg) > 0 ? atoi(optarg) : 1;
	}
	err = sgc_init_env(&c);
	if (err) {
		fprintf(stderr, "sgc_init_env: %s\n  %s\n", sgc_strerror(err), sgc_last_error());
		return 1;
	}
	rank = sgc_rank(c);
	world = sgc_world_size(c);
	if (rank == 0) {
		const char *accel = getenv("SGC_ACCEL");

		/* SGC_ACCEL=auto (the default) gives the kernel the vote only. */
		printf("libsgcoll demo: %d ranks (1 coordinator + %d workers), %s\n", world, world - 1,
		       !sgc_accelerated(c) ? "user-space path" :
		       accel && !strcasecmp(accel, "ebpf") ? "eBPF path" :
		       "eBPF path for the vote, user-space path for the rest (SGC_ACCEL=auto)");
		fflush(stdout);
	}
	demo_allreduce(c, iters);
	demo_broadcast(c, iters / 10 > 0 ? iters / 10 : 1);
	demo_barrier(c, iters);
	demo_vote(c);
	err = sgc_allreduce(c, &failures, &opt, 1, SGC_INT32, SGC_SUM);
	if (rank == 0) {
		struct sgc_stats st;

		sgc_get_stats(c, &st, sizeof(st));
		printf("coordinator: %llu datagrams sent, %llu received, %llu retransmitted\n",
		       (unsigned long long)st.pkts_sent, (unsigned long long)st.pkts_recv,
		       (unsigned long long)st.retransmits);
		printf("%s\n", !err && opt == 0 ? "demo passed: every result checked" : "demo FAILED");
	}
	sgc_finalize(c);
	return err || opt ? 1 : 0;
}
