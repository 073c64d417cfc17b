// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * nb_check: the non-blocking API on a real job, run by every rank
 * (sgc_init_env).  Every result is checked against a reference each rank
 * computes on its own.
 *
 *   nb_check [-s PHASES] [-n DEPTH] [-i ITERS] [-P PORT_OFFSET]
 *   PHASES: comma list of
 *     testany  DEPTH requests in flight, ireduce (every root), ibarrier,
 *              iallreduce, ibroadcast, ireduce_scatter and iallgather
 *              mixed, finished through
 *              sgc_testany() and sgc_fd(): each index once, its entry NULL;
 *     waitall  the same mix with NULL holes through sgc_waitall(), with
 *              per-request statuses;
 *     late     the last rank enters an ibarrier 300 ms late: nobody's
 *              finishes before that, and sgc_testany() does not block;
 *     error    one ireduce in a waitall whose count differs on rank 1: its
 *              status is -SGC_EMISMATCH on every rank, the others' 0, and
 *              the job goes on;
 *     twocomm  a second communicator on every port + PORT_OFFSET (the
 *              user-space path), large iallreduces and ibarriers on both
 *              in one waitall, in opposite orders on odd and even ranks
 *              (waiting for one communicator and then the other would
 *              deadlock until the timeout), then a testany loop over both.
 *              Not under loss: sgc_init() and the blocking calls between
 *              the phases drive one communicator only, and a result of the
 *              other lost just before one of them is not sent again until
 *              that call returns.
 *   exit 0 = all good, 1 = a wrong result or error, 77 = skipped
 */
#include <errno.h>
#include <inttypes.h>
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

static int check_rc(const char *what, int rc)
{
	if (rc) {
		FAIL("%s returned %d (%s): %s", what, rc, sgc_strerror(rc), sgc_last_error());
		return -1;
	}
	return 0;
}

/* Rank r's input at index i of the collective salted @salt. */
static int32_t input(int r, size_t i, unsigned salt)
{
	uint32_t x = (uint32_t)r * 2654435761u ^ (uint32_t)i * 40503u ^ salt * 97u;

	x ^= x >> 15;
	x *= 2246822519u;
	x ^= x >> 13;
	return (int32_t)(x & 0xffffff);
}

static int32_t sum_over_ranks(size_t i, unsigned salt)
{
	uint32_t s = 0;
	int r;

	for (r = 0; r < g_world; r++)
		s += (uint32_t)input(r, i, salt);
	return (int32_t)s;
}

/* One posted collective of the mix, and what it must give. */
enum kind { K_REDUCE, K_BARRIER, K_ALLREDUCE, K_BCAST, K_RSCATTER, K_ALLGATHER, K_NKINDS };
static const char *kname[] = { "ireduce", "ibarrier", "iallreduce", "ibroadcast",
			       "ireduce_scatter", "iallgather" };

struct op {
	enum kind kind;
	int root;
	size_t n;		/* per rank for the sharded two */
	size_t nsend, nrecv;
	unsigned salt;
	int32_t *send, *recv;
};

static unsigned g_salt = 1;

/* Request @i of a mix: every kind, every root, two sizes. */
static void op_init(struct op *o, int i)
{
	size_t k;

	o->kind = (enum kind)(i % K_NKINDS);
	o->root = (i / K_NKINDS + (o->kind == K_BCAST)) % g_world;
	o->n = i % 4 == 1 ? 5000 : 363;
	o->nsend = o->kind == K_RSCATTER ? o->n * (size_t)g_world : o->n;
	o->nrecv = o->kind == K_ALLGATHER ? o->n * (size_t)g_world : o->n;
	o->salt = g_salt++;
	o->send = malloc(o->nsend * sizeof(int32_t));
	o->recv = malloc(o->nrecv * sizeof(int32_t));
	for (k = 0; k < o->nsend; k++)
		o->send[k] = input(g_rank, k, o->salt);
	for (k = 0; k < o->nrecv; k++)
		o->recv[k] = o->kind == K_BCAST && g_rank == o->root ? input(o->root, k, o->salt) : -1;
}

static void op_free(struct op *o)
{
	free(o->send);
	free(o->recv);
}

static int op_post(sgc_comm *c, struct op *o, sgc_request **req)
{
	switch (o->kind) {
	case K_REDUCE:
		/* Only the root's recvbuf is used: the others pass NULL. */
		return sgc_ireduce(c, o->send, g_rank == o->root ? o->recv : NULL, o->n, SGC_INT32,
				   SGC_SUM, o->root, req);
	case K_BARRIER:
		return sgc_ibarrier(c, req);
	case K_ALLREDUCE:
		return sgc_iallreduce(c, o->send, o->recv, o->n, SGC_INT32, SGC_SUM, req);
	case K_RSCATTER:
		return sgc_ireduce_scatter(c, o->send, o->recv, o->n, SGC_INT32, SGC_SUM, req);
	case K_ALLGATHER:
		return sgc_iallgather(c, o->send, o->recv, o->n, SGC_INT32, req);
	default:
		return sgc_ibroadcast(c, o->recv, o->n, SGC_INT32, o->root, req);
	}
}

/* The finished @o's buffer is right. */
static void op_verify(const char *phase, int idx, const struct op *o)
{
	size_t k;

	for (k = 0; k < o->nrecv; k++) {
		int32_t want, got = o->recv[k];

		switch (o->kind) {
		case K_RSCATTER:
			/* This rank's block of everyone's vector, reduced. */
			want = sum_over_ranks((size_t)g_rank * o->n + k, o->salt);
			break;
		case K_ALLGATHER:
			want = input((int)(k / o->n), k % o->n, o->salt);
			break;
		case K_REDUCE:
			want = g_rank == o->root ? sum_over_ranks(k, o->salt) : -1;
			break;
		case K_ALLREDUCE:
			want = sum_over_ranks(k, o->salt);
			break;
		case K_BCAST:
			want = input(o->root, k, o->salt);
			break;
		default:
			want = -1;	/* untouched */
			break;
		}
		if (got != want) {
			FAIL("%s: request %d (%s of %zu, root %d): element %zu is %d, expected %d", phase,
			     idx, kname[o->kind], o->n, o->root, k, got, want);
			return;
		}
	}
	g_checked++;
}

/* Wait for any of @c's (up to 2) descriptors, at most 100 ms. */
static void wait_fds(sgc_comm *const *cs, int ncs)
{
	struct pollfd p[2];
	int i;

	for (i = 0; i < ncs; i++) {
		p[i].fd = sgc_fd(cs[i]);
		p[i].events = POLLIN;
	}
	poll(p, (nfds_t)ncs, 100);
}

/*
 * Finish every request of @reqs through sgc_testany(): each index exactly
 * once, its entry NULL afterwards, the array reported empty at the end.
 */
static void testany_loop(const char *phase, sgc_comm *const *cs, int ncs, sgc_request **reqs,
			 struct op *ops, int n)
{
	char *seen = calloc((size_t)n, 1);
	int left = 0, idx, done, rc, i;
	unsigned long idle = 0;
	double t0 = now_ms(), tb, longest = 0;

	for (i = 0; i < n; i++)
		left += reqs[i] != NULL;
	while (now_ms() - t0 < 60e3) {
		tb = now_ms();
		rc = sgc_testany(n, reqs, &idx, &done);
		if (now_ms() - tb > longest)
			longest = now_ms() - tb;
		if (!done) {
			if (rc)
				check_rc("sgc_testany (progress)", rc);
			if (idx != -1)
				FAIL("%s: sgc_testany not done, but index %d", phase, idx);
			idle++;
			wait_fds(cs, ncs);
			continue;
		}
		if (idx == -1) {
			if (left)
				FAIL("%s: sgc_testany says the array is empty with %d left", phase, left);
			break;
		}
		if (idx < 0 || idx >= n || seen[idx] || reqs[idx]) {
			FAIL("%s: sgc_testany gave index %d (seen %d, entry %p)", phase, idx,
			     idx >= 0 && idx < n ? seen[idx] : -1, idx >= 0 && idx < n ? (void *)reqs[idx] : NULL);
			break;
		}
		seen[idx] = 1;
		left--;
		if (!check_rc(kname[ops[idx].kind], rc))
			op_verify(phase, idx, &ops[idx]);
	}
	if (left)
		FAIL("%s: %d requests not finished after 60 s", phase, left);
	if (g_rank == 0)
		printf("rank 0: %s: %d requests through sgc_testany, %lu calls found none done, %.1f ms, "
		       "the longest call %.2f ms\n", phase, n, idle, now_ms() - t0, longest);
	free(seen);
}

static void phase_testany(sgc_comm *c, int depth)
{
	sgc_request **reqs = calloc((size_t)depth, sizeof(*reqs));
	struct op *ops = calloc((size_t)depth, sizeof(*ops));
	int i;

	for (i = 0; i < depth; i++) {
		op_init(&ops[i], i);
		if (check_rc("post", op_post(c, &ops[i], &reqs[i])))
			break;
	}
	if (i == depth)
		testany_loop("testany", &c, 1, reqs, ops, depth);
	else
		sgc_waitall(depth, reqs, NULL);
	for (i = 0; i < depth; i++)
		op_free(&ops[i]);
	free(ops);
	free(reqs);
}

static void phase_waitall(sgc_comm *c, int depth)
{
	sgc_request **reqs = calloc((size_t)depth, sizeof(*reqs));
	struct op *ops = calloc((size_t)depth, sizeof(*ops));
	int *st = malloc((size_t)depth * sizeof(*st));
	int i, rc;
	double t0;

	for (i = 0; i < depth; i++) {
		st[i] = 12345;
		op_init(&ops[i], i + 1);
		/* Holes: sgc_waitall skips NULL entries. */
		if (i % 5 == 4)
			continue;
		if (check_rc("post", op_post(c, &ops[i], &reqs[i])))
			goto out;
	}
	t0 = now_ms();
	rc = sgc_waitall(depth, reqs, st);
	check_rc("sgc_waitall", rc);
	for (i = 0; i < depth; i++) {
		if (reqs[i])
			FAIL("waitall: entry %d not set to NULL", i);
		if (st[i])
			FAIL("waitall: status %d is %d", i, st[i]);
		else if (i % 5 != 4)
			op_verify("waitall", i, &ops[i]);
	}
	if (g_rank == 0)
		printf("rank 0: waitall: %d requests (%d NULL) in %.1f ms\n", depth, depth / 5,
		       now_ms() - t0);
out:
	sgc_waitall(depth, reqs, NULL);
	for (i = 0; i < depth; i++)
		op_free(&ops[i]);
	free(ops);
	free(reqs);
	free(st);
}

/*
 * The last rank enters the ibarrier 300 ms after the others.  No other
 * rank's may finish before it entered: the late rank broadcasts when it
 * did, and each rank compares that with when its own finished.  The ranks
 * of the virtual cluster are processes under one kernel, so they share
 * CLOCK_MONOTONIC (a per-rank elapsed time would not do: under loss a
 * rank may learn of the barrier before this one late, and start late).
 */
static void phase_late(sgc_comm *c)
{
	const double late_ms = 300;
	int late = g_world - 1, idx, done, ndone = 0, polls = 0, i, rc;
	sgc_request *req[3] = { NULL, NULL, NULL };
	int32_t in = g_rank + 1, out = 0;
	double t0, tb, longest = 0, t_done[2] = { 0, 0 };
	int64_t t_enter = 0;	/* µs, from the late rank */

	if (check_rc("barrier before late", sgc_barrier(c)))
		return;
	t0 = now_ms();
	if (g_rank == late) {
		usleep((useconds_t)(late_ms * 1000));
		t_enter = (int64_t)(now_ms() * 1e3);
		if (check_rc("ibarrier (late rank)", sgc_ibarrier(c, &req[0])))
			return;
		rc = sgc_wait(req[0]);
		req[0] = NULL;
		if (check_rc("wait (late rank)", rc))
			return;
		rc = sgc_iallreduce(c, &in, &out, 1, SGC_INT32, SGC_SUM, &req[1]);
	} else {
		/* An iallreduce behind it: the late rank posts that only
		 * after its barrier, so it is not done before either (it may
		 * be done first here, when the barrier's result was lost). */
		if (check_rc("ibarrier", sgc_ibarrier(c, &req[0])))
			return;
		rc = sgc_iallreduce(c, &in, &out, 1, SGC_INT32, SGC_SUM, &req[1]);
		if (rc)
			goto out;
		while (ndone < 2 && now_ms() - t0 < 30e3) {
			tb = now_ms();
			rc = sgc_testany(2, req, &idx, &done);
			if (now_ms() - tb > longest)
				longest = now_ms() - tb;
			if (!done) {
				check_rc("sgc_testany (progress)", rc);
				polls++;
				wait_fds(&c, 1);
				continue;
			}
			if (idx < 0 || idx > 1 || t_done[idx]) {
				FAIL("late: sgc_testany gave index %d", idx);
				break;
			}
			t_done[idx] = now_ms();
			ndone++;
			check_rc(idx ? "iallreduce result" : "ibarrier result", rc);
		}
		/* Whatever failed, the broadcast below keeps the ranks in step. */
		rc = 0;
		if (ndone < 2)
			FAIL("late: %d of 2 requests finished after 30 s", ndone);
		/* sgc_testany does not block: each call well under the wait
		 * (the margin is for a busy machine's scheduling). */
		else if (longest > late_ms / 2)
			FAIL("late: one sgc_testany call took %.0f ms", longest);
	}
out:
	if (!rc)
		rc = sgc_ibroadcast(c, &t_enter, 1, SGC_INT64, late, &req[2]);
	check_rc("late: post", rc);
	if (check_rc("late: sgc_waitall", sgc_waitall(3, req, NULL)))
		return;
	if (out != g_world * (g_world + 1) / 2)
		FAIL("late: iallreduce gave %d, expected %d", out, g_world * (g_world + 1) / 2);
	else
		g_checked++;
	if (g_rank == late)
		return;
	for (i = 0; i < 2; i++) {
		if (t_done[i] * 1e3 < (double)t_enter)
			FAIL("late: this rank's %s finished %.1f ms before rank %d entered the ibarrier",
			     i ? "iallreduce" : "ibarrier", t_enter / 1e3 - t_done[i], late);
		else
			g_checked++;
	}
	if (g_rank == 0)
		printf("rank 0: late: ibarrier finished %.1f ms after rank %d entered it, %.0f ms after "
		       "this rank; %d testany calls before, the longest %.2f ms\n", t_done[0] - t_enter / 1e3,
		       late, t_done[0] - t0, polls, longest);
}

/* Rank 1's ireduce has another count: that request fails everywhere with
 * -SGC_EMISMATCH, the rest of the waitall does not. */
static void phase_error(sgc_comm *c)
{
	enum { N = 363 };
	int32_t s[3][N], r[3][N];
	sgc_request *reqs[3] = { NULL, NULL, NULL };
	int st[3] = { 1, 1, 1 }, i, rc;
	unsigned salt[3];
	size_t k;

	if (g_world < 2)
		return;
	for (i = 0; i < 3; i++) {
		salt[i] = g_salt++;
		for (k = 0; k < N; k++)
			s[i][k] = input(g_rank, k, salt[i]);
	}
	rc = sgc_iallreduce(c, s[0], r[0], N, SGC_INT32, SGC_SUM, &reqs[0]);
	if (!rc)
		rc = sgc_ireduce(c, s[1], r[1], g_rank == 1 ? N - 1 : N, SGC_INT32, SGC_SUM, 0, &reqs[1]);
	if (!rc)
		rc = sgc_iallreduce(c, s[2], r[2], N, SGC_INT32, SGC_SUM, &reqs[2]);
	if (check_rc("error: post", rc)) {
		sgc_waitall(3, reqs, NULL);
		return;
	}
	rc = sgc_waitall(3, reqs, st);
	if (rc != -SGC_EMISMATCH || st[0] || st[1] != -SGC_EMISMATCH || st[2])
		FAIL("error: sgc_waitall returned %d, statuses %d %d %d; expected %d, 0 %d 0 (%s)", rc,
		     st[0], st[1], st[2], -SGC_EMISMATCH, -SGC_EMISMATCH, sgc_last_error());
	else if (!strstr(sgc_last_error(), "request 1"))
		FAIL("error: the last error does not name request 1: %s", sgc_last_error());
	else
		g_checked++;
	for (i = 0; i < 3; i += 2)
		for (k = 0; k < N && !st[i]; k++)
			if (r[i][k] != sum_over_ranks(k, salt[i])) {
				FAIL("error: iallreduce %d element %zu wrong", i, k);
				break;
			}
	if (g_rank == 0)
		printf("rank 0: error: %s\n", sgc_last_error());
	/* The job goes on. */
	{
		int32_t one = 1, all = 0;

		if (!check_rc("allreduce after the mismatch",
			      sgc_allreduce(c, &one, &all, 1, SGC_INT32, SGC_SUM)) && all != g_world)
			FAIL("allreduce after the mismatch gave %d, expected %d", all, g_world);
	}
}

/* "a.b.c.d:port" with the port moved by @off, into @buf. */
static const char *port_moved(const char *s, int off, char *buf, size_t len)
{
	const char *colon = s ? strrchr(s, ':') : NULL;

	if (!colon)
		return NULL;
	snprintf(buf, len, "%.*s:%d", (int)(colon - s), s, atoi(colon + 1) + off);
	return buf;
}

static void phase_twocomm(sgc_comm *a, int off, int iters)
{
	enum { BIG = 100000 };
	struct sgc_config cfg = { .sz = sizeof(cfg) };
	char co[64], bi[64];
	sgc_comm *cs[2] = { a, NULL };
	int32_t *s[2], *r[2];
	unsigned salt[2];
	int it, i, rc;
	size_t k;

	if (check_rc("sgc_config_from_env", sgc_config_from_env(&cfg)))
		return;
	cfg.coordinator = port_moved(cfg.coordinator, off, co, sizeof(co));
	if (cfg.bind_addr)
		cfg.bind_addr = port_moved(cfg.bind_addr, off, bi, sizeof(bi));
	if (!cfg.coordinator || !cfg.bind_addr) {
		FAIL("twocomm: SGC_COORDINATOR and SGC_BIND need ip:port");
		return;
	}
	/* One eBPF coordinator per interface: the second is user space. */
	cfg.accel = SGC_ACCEL_OFF;
	rc = sgc_init(&cfg, &cs[1]);
	if (check_rc("twocomm: sgc_init (second communicator)", rc))
		return;
	for (i = 0; i < 2; i++) {
		s[i] = malloc(BIG * sizeof(int32_t));
		r[i] = malloc(BIG * sizeof(int32_t));
	}
	for (it = 0; it < iters && !g_fail; it++) {
		/* [A's allreduce, A's barrier, B's allreduce, B's barrier] on
		 * even ranks, B's first on odd ones. */
		sgc_request *reqs[4] = { NULL };
		int st[4], first = g_rank % 2;
		double t0;

		for (i = 0; i < 2; i++) {
			int slot = 2 * (i ^ first);

			salt[i] = g_salt++;
			for (k = 0; k < BIG; k++)
				s[i][k] = input(g_rank, k, salt[i]);
			rc = sgc_iallreduce(cs[i], s[i], r[i], BIG, SGC_INT32, SGC_SUM, &reqs[slot]);
			if (!rc)
				rc = sgc_ibarrier(cs[i], &reqs[slot + 1]);
			if (check_rc("twocomm: post", rc))
				break;
		}
		t0 = now_ms();
		rc = sgc_waitall(4, reqs, st);
		if (check_rc("twocomm: sgc_waitall over two communicators", rc))
			break;
		for (i = 0; i < 2; i++) {
			for (k = 0; k < BIG; k++)
				if (r[i][k] != sum_over_ranks(k, salt[i])) {
					FAIL("twocomm: communicator %c element %zu wrong", 'A' + i, k);
					break;
				}
			g_checked += k == BIG;
		}
		if (g_rank == 0)
			printf("rank 0: twocomm: waitall over 2 communicators (2 x %d int32 + 2 barriers) "
			       "in %.1f ms\n", BIG, now_ms() - t0);
	}
	/* testany over both, in opposite orders too. */
	if (!g_fail) {
		struct op ops[8];
		sgc_request *reqs[8] = { NULL };

		/* ops 0..3 on A, 4..7 on B, posted in that order at every
		 * rank; odd ranks hold B's at the front of the array. */
		for (i = 0; i < 8; i++)
			op_init(&ops[i], i);
		for (i = 0; i < 8; i++) {
			int comm = i < 4 ? 0 : 1;
			int slot = g_rank % 2 ? (i + 4) % 8 : i;

			if (check_rc("twocomm: post for testany", op_post(cs[comm], &ops[i], &reqs[slot])))
				break;
		}
		if (i == 8) {
			/* testany_loop indexes ops by array slot. */
			struct op byslot[8];

			for (i = 0; i < 8; i++)
				byslot[g_rank % 2 ? (i + 4) % 8 : i] = ops[i];
			testany_loop("twocomm testany", cs, 2, reqs, byslot, 8);
		} else {
			sgc_waitall(8, reqs, NULL);
		}
		for (i = 0; i < 8; i++)
			op_free(&ops[i]);
	}
	for (i = 0; i < 2; i++) {
		free(s[i]);
		free(r[i]);
	}
	check_rc("twocomm: barrier on B", sgc_barrier(cs[1]));
	sgc_finalize(cs[1]);
}

int main(int argc, char **argv)
{
	const char *phases = "testany,waitall,late,error";
	int depth = 24, iters = 3, off = 0, opt, rc;
	sgc_comm *c;
	double t0;

	while ((opt = getopt(argc, argv, "s:n:i:P:")) != -1) {
		switch (opt) {
		case 's': phases = optarg; break;
		case 'n': depth = atoi(optarg); break;
		case 'i': iters = atoi(optarg); break;
		case 'P': off = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-s phases] [-n depth] [-i iters] [-P port_offset]\n",
				argv[0]);
			return 2;
		}
	}
	if (depth < 1 || depth > SGC_MAX_INFLIGHT) {
		fprintf(stderr, "-n: 1 .. %d\n", SGC_MAX_INFLIGHT);
		return 2;
	}
	rc = sgc_init_env(&c);
	if (rc == -EOPNOTSUPP) {
		fprintf(stderr, "SKIP: %s\n", sgc_last_error());
		return 77;
	}
	if (rc) {
		fprintf(stderr, "sgc_init_env: %d (%s): %s\n", rc, sgc_strerror(rc), sgc_last_error());
		return 1;
	}
	g_rank = sgc_rank(c);
	g_world = sgc_world_size(c);
	t0 = now_ms();
	if (g_rank == 0)
		printf("rank 0: %d ranks, %s path\n", g_world, sgc_accelerated(c) ? "eBPF" : "user-space");
	for (int it = 0; it < iters && !g_fail; it++) {
		if (strstr(phases, "testany"))
			phase_testany(c, depth);
		if (strstr(phases, "waitall") && !g_fail)
			phase_waitall(c, depth);
		if (strstr(phases, "late") && !g_fail)
			phase_late(c);
		if (strstr(phases, "error") && !g_fail)
			phase_error(c);
	}
	if (strstr(phases, "twocomm") && !g_fail) {
		if (!off)
			FAIL("twocomm needs -P PORT_OFFSET");
		else
			phase_twocomm(c, off, iters);
	}
	if (!g_fail)
		check_rc("final barrier", sgc_barrier(c));
	if (g_rank == 0 || g_fail)
		printf("rank %d: %s: %lu checks in %.1f ms\n", g_rank, g_fail ? "FAILED" : "ok", g_checked,
		       now_ms() - t0);
	sgc_finalize(c);
	return g_fail ? 1 : 0;
}
