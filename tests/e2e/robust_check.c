// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * robust_check: run by every rank of a virtual-cluster job (sgc_init_env),
 * the rank side of the robustness tests.  Every result is checked exactly
 * against a reference each rank computes itself; the inputs depend on a
 * tag, so a datagram that crossed from another job or communicator would
 * show up as a wrong element.
 *
 *   robust_check -m kill [-v VICTIM]
 *       rank VICTIM (default world-1) posts a large allreduce and SIGKILLs
 *       itself mid-collective; the survivors check what the header
 *       promises after a lost rank (see "Lost ranks" in sgcoll.h).
 *   robust_check -m run [-k TAG] [-S STOPFILE] [-T MAXSEC]
 *       exact collectives and scatter-gather in a loop until STOPFILE
 *       exists (or MAXSEC; a WAIT_ALL query must have every worker's
 *       answer), then every rank prints its counters
 *       ("stat NAME VALUE", "bpfstat NAME VALUE") for the caller to check.
 *   robust_check -m twocomm [-i ITERS]
 *       two communicators in one process (the second on ports +1000),
 *       collectives interleaved, blocking and non-blocking.  With
 *       SGC_ACCEL=ebpf both are in the kernel on the same interface; then
 *       six more fill its XDP dispatcher's 8 slots, a ninth fails with
 *       -EBUSY and a message that says so, and a freed slot is reused.
 *   robust_check -m threads [-n THREADS] [-i ITERS]
 *       THREADS communicators (ports +1000*k), each driven by its own
 *       thread at the same time.
 *   robust_check -m order [-v ODD] [-L LATE_MS]
 *       ranks that disagree: rank ODD (default world-1) calls another
 *       collective, or names another root, than the others; in some
 *       cases one rank enters the call LATE_MS (default 500) after the
 *       others.  Every call returns within the timeout (a watchdog ends
 *       the rank at three timeouts): the mismatched one with
 *       -SGC_EMISMATCH on every rank, on both paths, the barrier that
 *       every rank calls next with 0.
 *   robust_check -m mismatch [-v ODD] [-L LATE_MS]
 *       one argument differs: rank ODD (default world-1, at least 2)
 *       calls with another count (in one datagram and in several),
 *       dtype, op, broadcast root, or a barrier where the others call an
 *       allreduce; the odd rank enters with the others, LATE_MS (default
 *       500) before them, or as long after.  On every rank the call fails
 *       with -SGC_EMISMATCH within the timeout, and sgc_last_error() names
 *       rank ODD, the argument and both values; the barrier after it
 *       returns 0.
 *
 *   robust_check -m reinit [-i ITERS]
 *       ITERS rounds of a failed sgc_init and a restart on the same ports
 *       at once: every rank first joins a job one rank larger than the
 *       cluster (so rank world is missing and every rank fails, naming
 *       it), then the real job, which must join and run a barrier.  An
 *       -EADDRINUSE anywhere fails: a failed sgc_init (and sgc_finalize)
 *       must leave the port free.
 *
 *   exit 0 = all good, 1 = a wrong result or error, 77 = skipped
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sgcoll.h"
#include "sgcoll/wire.h"	/* SGC_F_MAC: built with the job key */

#include "robust_input.h"

static int g_rank = -1;
static atomic_int g_fail;
static atomic_ulong g_checked;

#define FAIL(...) do { fprintf(stderr, "rank %d: FAIL: ", g_rank); fprintf(stderr, __VA_ARGS__); \
			fputc('\n', stderr); atomic_fetch_add(&g_fail, 1); } while (0)

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One communicator and what its rank needs to check results. */
struct job {
	sgc_comm *c;
	int rank, world;
	unsigned tag;
	unsigned salt;
	const char *name;
};

static int job_rc(struct job *j, const char *what, int rc)
{
	if (rc) {
		FAIL("%s: %s returned %d (%s): %s", j->name, what, rc, sgc_strerror(rc), sgc_last_error());
		return -1;
	}
	return 0;
}

/* int64 SUM allreduce of n elements, checked element by element. */
static int check_allreduce_sum(struct job *j, size_t n)
{
	int64_t *in = calloc(n + 1, sizeof(*in)), *out = calloc(n + 1, sizeof(*out));
	unsigned salt = j->salt++;
	size_t i;
	int r, rc = -1;

	if (!in || !out)
		goto out;
	for (i = 0; i < n; i++)
		in[i] = (int64_t)input(j->tag, j->rank, i, salt);
	if (job_rc(j, "allreduce int64 sum", sgc_allreduce(j->c, in, out, n, SGC_INT64, SGC_SUM)))
		goto out;
	for (i = 0; i < n; i++) {
		uint64_t want = 0;

		for (r = 0; r < j->world; r++)
			want += input(j->tag, r, i, salt);
		if ((uint64_t)out[i] != want) {
			FAIL("%s: allreduce of %zu: element %zu is %#" PRIx64 ", expected %#" PRIx64,
			     j->name, n, i, (uint64_t)out[i], want);
			goto out;
		}
	}
	atomic_fetch_add(&g_checked, 1);
	rc = 0;
out:
	free(in);
	free(out);
	return rc;
}

/* uint32 MAX allreduce, non-blocking, checked. */
static int check_iallreduce_max(struct job *j, size_t n, uint32_t *in, uint32_t *out,
				sgc_request **req)
{
	unsigned salt = j->salt++;
	size_t i;

	for (i = 0; i < n; i++)
		in[i] = (uint32_t)input(j->tag, j->rank, i, salt);
	in[n] = salt;	/* remembered for the check */
	return job_rc(j, "iallreduce uint32 max", sgc_iallreduce(j->c, in, out, n, SGC_UINT32, SGC_MAX, req));
}

static int verify_max(struct job *j, size_t n, const uint32_t *in, const uint32_t *out)
{
	unsigned salt = in[n];
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		uint32_t want = 0;

		for (r = 0; r < j->world; r++) {
			uint32_t v = (uint32_t)input(j->tag, r, i, salt);

			want = v > want ? v : want;
		}
		if (out[i] != want) {
			FAIL("%s: iallreduce max of %zu: element %zu is %#x, expected %#x", j->name, n, i,
			     out[i], want);
			return -1;
		}
	}
	atomic_fetch_add(&g_checked, 1);
	return 0;
}

static int check_bcast(struct job *j, size_t n)
{
	uint64_t *buf = calloc(n + 1, sizeof(*buf));
	unsigned salt = j->salt++;
	int root = (int)(salt % (unsigned)j->world), rc = -1;
	size_t i;

	if (!buf)
		return -1;
	for (i = 0; i < n; i++)
		buf[i] = j->rank == root ? input(j->tag, root, i, salt) : 0;
	if (job_rc(j, "broadcast", sgc_broadcast(j->c, buf, n, SGC_UINT64, root)))
		goto out;
	for (i = 0; i < n; i++) {
		if (buf[i] != input(j->tag, root, i, salt)) {
			FAIL("%s: broadcast of %zu from %d: element %zu is %#" PRIx64, j->name, n, root, i,
			     buf[i]);
			goto out;
		}
	}
	atomic_fetch_add(&g_checked, 1);
	rc = 0;
out:
	free(buf);
	return rc;
}

/* Scatter-gather: workers answer with their input for the salt in the query. */
static int sg_handler(const void *query, size_t len, void *resp, size_t count, enum sgc_dtype dt,
		      void *arg)
{
	const struct job *j = arg;
	unsigned salt;
	size_t i;

	if (len != sizeof(salt) || dt != SGC_INT64)
		return -EINVAL;
	memcpy(&salt, query, sizeof(salt));
	for (i = 0; i < count; i++)
		((uint64_t *)resp)[i] = input(j->tag, j->rank, i, salt);
	return 0;
}

/* Coordinator: one query under @pol; checks the result against the
 * ranks the status names.  Returns the call's result. */
static int sg_query(struct job *j, enum sgc_policy pol, unsigned wait_n, size_t n, unsigned timeout_ms,
		    struct sgc_sg_status *st)
{
	struct sgc_sg_opts o = { .sz = sizeof(o), .policy = pol, .wait_n = wait_n,
				 .timeout_ms = timeout_ms };
	uint64_t *res = calloc(n + 1, sizeof(*res));
	unsigned salt = j->salt++;
	size_t i;
	int r, rc;

	if (!res)
		return -ENOMEM;
	rc = sgc_scatter_gather(j->c, &salt, sizeof(salt), res, n, SGC_INT64, SGC_SUM, &o, st);
	if (rc)
		goto out;
	for (i = 0; i < n; i++) {
		uint64_t want = 0;

		for (r = 1; r < j->world; r++)
			if (st->answered[r])
				want += input(j->tag, r, i, salt);
		if (res[i] != want) {
			FAIL("%s: scatter-gather policy %d of %zu: element %zu is %#" PRIx64 ", expected %#"
			     PRIx64, j->name, (int)pol, n, i, res[i], want);
			rc = -EBADMSG;
			goto out;
		}
	}
	atomic_fetch_add(&g_checked, 1);
out:
	free(res);
	return rc;
}

/* A round of everything, exact; 0 or -1. */
static int round_exact(struct job *j, bool with_sg)
{
	static const size_t counts[] = { 1, 363, 5000 };
	size_t n = counts[j->salt % 3];
	uint32_t in[364], out[364];
	sgc_request *req = NULL;

	if (check_allreduce_sum(j, n) || check_bcast(j, n) ||
	    job_rc(j, "barrier", sgc_barrier(j->c)))
		return -1;
	if (check_iallreduce_max(j, 363, in, out, &req) ||
	    job_rc(j, "wait", sgc_wait(req)) || verify_max(j, 363, in, out))
		return -1;
	if (!with_sg)
		return 0;
	if (j->rank == 0) {
		unsigned char *ans = calloc((size_t)j->world, 1);
		struct sgc_sg_status st = { .sz = sizeof(st), .answered = ans };
		int rc = ans ? sg_query(j, SGC_WAIT_ALL, 0, n, 0, &st) : -ENOMEM, r;

		/* No worker declines here: WAIT_ALL has every answer, whatever
		 * policy an answer claims (forgery.sh sends WAIT_ANY ones). */
		for (r = 1; rc == 0 && r < j->world; r++)
			if (!ans[r])
				FAIL("%s: a WAIT_ALL scatter-gather of %zu completed without rank %d's "
				     "answer (%d of %d answered)", j->name, n, r, st.nanswered, j->world - 1);
		free(ans);
		if (job_rc(j, "scatter-gather", rc) || job_rc(j, "serve_stop", sgc_serve_stop(j->c)))
			return -1;
	} else {
		j->salt++;	/* as the coordinator's query did: sizes stay in step */
		if (job_rc(j, "serve", sgc_serve(j->c, sg_handler, j, NULL)))
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ kill */

static bool names_rank(const char *msg, int r)
{
	char want[24];
	const char *p = msg;

	/* "rank 4 did ..." or "ranks 2, 4 ..." */
	snprintf(want, sizeof(want), "%d", r);
	while ((p = strstr(p, want))) {
		bool left = p == msg || p[-1] == ' ' || p[-1] == ',';
		bool right = p[strlen(want)] < '0' || p[strlen(want)] > '9';

		if (left && right && strstr(msg, "rank"))
			return true;
		p++;
	}
	return false;
}

/* A WAIT_ALL call after the victim died: within the timeout, the
 * coordinator gets -ETIMEDOUT naming it, a worker -ETIMEDOUT or the
 * coordinator's abort. */
static void expect_lost(struct job *j, const char *what, int rc, double t0, unsigned timeout_ms,
			int victim)
{
	double dt = now_ms() - t0;

	if (rc == 0) {
		FAIL("%s succeeded without rank %d", what, victim);
		return;
	}
	if (dt > timeout_ms + 2500.0)
		FAIL("%s took %.0f ms to fail, the timeout is %u ms", what, dt, timeout_ms);
	if (j->rank == 0 && rc != -ETIMEDOUT)
		FAIL("%s: expected -ETIMEDOUT at the coordinator, got %d (%s)", what, rc, sgc_strerror(rc));
	else if (j->rank != 0 && rc != -ETIMEDOUT && rc != -SGC_EABORTED)
		FAIL("%s: expected -ETIMEDOUT or -SGC_EABORTED at a worker, got %d (%s)", what, rc,
		     sgc_strerror(rc));
	else if (j->rank == 0 && !names_rank(sgc_last_error(), victim))
		FAIL("%s: the error does not name rank %d: %s", what, victim, sgc_last_error());
	else
		atomic_fetch_add(&g_checked, 1);
	printf("rank %d: %s after the loss: %d in %.0f ms: %s\n", j->rank, what, rc, dt,
	       sgc_last_error());
}

static int mode_kill(struct job *j, unsigned timeout_ms, int victim)
{
	size_t big = 100000, i;
	int64_t *in = calloc(big, sizeof(*in)), *out = calloc(big, sizeof(*out));
	sgc_request *req = NULL;
	double t0;
	int rc, nw = j->world - 1;

	if (!in || !out || victim < 1 || victim >= j->world || j->world < 4) {
		FAIL("kill: needs 4+ ranks and a worker victim (world %d, victim %d)", j->world, victim);
		goto out;
	}
	/* Everyone is alive: exact. */
	if (round_exact(j, true))
		goto out;
	for (i = 0; i < big; i++)
		in[i] = (int64_t)i;
	t0 = now_ms();
	rc = sgc_iallreduce(j->c, in, out, big, SGC_INT64, SGC_SUM, &req);
	if (job_rc(j, "iallreduce", rc))
		goto out;
	if (j->rank == victim) {
		int done = 0;

		/* Some chunks out, most not: die in the middle. */
		for (i = 0; i < 3 && !done; i++)
			sgc_test(req, &done);
		usleep(20000);
		printf("rank %d: SIGKILL myself in the middle of an allreduce\n", j->rank);
		fflush(stdout);
		kill(getpid(), SIGKILL);
		pause();
	}
	expect_lost(j, "allreduce", sgc_wait(req), t0, timeout_ms, victim);
	t0 = now_ms();
	expect_lost(j, "barrier", sgc_barrier(j->c), t0, timeout_ms, victim);
	t0 = now_ms();
	expect_lost(j, "small allreduce", sgc_allreduce(j->c, in, out, 1, SGC_INT64, SGC_SUM), t0,
		    timeout_ms, victim);
	if (j->rank == 0) {
		unsigned char *ans = calloc((size_t)j->world, 1);
		struct sgc_sg_status st = { .sz = sizeof(st), .answered = ans };
		int pol;

		if (!ans)
			goto out;
		/* WAIT_ALL: fails, names the victim, status has the others;
		 * answers of several datagrams, and of one (which the eBPF
		 * path reduces in the kernel). */
		for (i = 0; i < 2; i++) {
			t0 = now_ms();
			rc = sg_query(j, SGC_WAIT_ALL, 0, i ? 363 : 20, timeout_ms, &st);
			expect_lost(j, i ? "scatter-gather WAIT_ALL" : "one-datagram WAIT_ALL", rc, t0,
				    timeout_ms, victim);
			if (rc == -ETIMEDOUT && (st.nanswered != nw - 1 || ans[victim]))
				FAIL("WAIT_ALL status after the loss: %d answered (want %d), victim marked %d",
				     st.nanswered, nw - 1, ans[victim]);
		}
		/* WAIT_N of the survivors and WAIT_ANY complete, exact; one
		 * and several datagrams per answer. */
		for (pol = SGC_WAIT_N; pol <= SGC_WAIT_ANY; pol++) {
			size_t n;

			for (n = 363; n <= 5000; n += 5000 - 363) {
				memset(ans, 0, (size_t)j->world);
				rc = sg_query(j, pol, (unsigned)(nw - 1), n, timeout_ms, &st);
				if (job_rc(j, pol == SGC_WAIT_N ? "WAIT_N after the loss" :
					   "WAIT_ANY after the loss", rc))
					continue;
				if (ans[victim] || st.nanswered != (pol == SGC_WAIT_N ? nw - 1 : 1))
					FAIL("policy %d after the loss: %d answered, victim marked %d", pol,
					     st.nanswered, ans[victim]);
			}
		}
		printf("rank 0: WAIT_N and WAIT_ANY completed without rank %d\n", victim);
		/* Stopping the service is WAIT_ALL too: the survivors stop. */
		t0 = now_ms();
		expect_lost(j, "serve_stop", sgc_serve_stop(j->c), t0, timeout_ms, victim);
		free(ans);
	} else {
		struct sgc_serve_opts so = { .sz = sizeof(so), .idle_timeout_ms = 4 * timeout_ms + 5000 };

		job_rc(j, "serve after the loss", sgc_serve(j->c, sg_handler, j, &so));
	}
out:
	free(in);
	free(out);
	return atomic_load(&g_fail) ? -1 : 0;
}

/* ------------------------------------------------------------ order */

/*
 * A watchdog for one call: a rank still inside it after three timeouts
 * is hung; it says where and exits, so the test fails instead of waiting
 * for the cluster's deadline.
 */
static char g_watch_what[128];

static void watchdog_fire(int sig)
{
	char msg[200];
	int n = snprintf(msg, sizeof(msg), "rank %d: FAIL: HUNG in %s (3 timeouts passed)\n", g_rank,
			 g_watch_what);

	(void)sig;
	if (n > 0)
		(void)!write(2, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
	_exit(3);
}

static void watch(unsigned timeout_ms, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(g_watch_what, sizeof(g_watch_what), fmt, ap);
	va_end(ap);
	signal(SIGALRM, watchdog_fire);
	alarm((3 * timeout_ms + 999) / 1000);
}

static void unwatch(void)
{
	alarm(0);
}

enum order_call { OC_ALLREDUCE, OC_REDUCE, OC_BCAST0, OC_BCAST_SELF, OC_BARRIER };

static const char *order_call_name(enum order_call k)
{
	switch (k) {
	case OC_ALLREDUCE: return "allreduce";
	case OC_REDUCE: return "reduce to 0";
	case OC_BCAST0: return "broadcast from 0";
	case OC_BCAST_SELF: return "broadcast from itself";
	default: return "barrier";
	}
}

/*
 * One mismatch: rank @odd calls @odd_call, the others @rest_call; rank
 * @late (-1: none; -2: the odd rank) enters late.
 */
struct order_case {
	const char *name;
	enum order_call odd_call, rest_call;
	bool odd_is_coord;	/* rank 0 is the odd one, not ODD */
	int late;		/* -1 none, -2 the odd rank, else this rank */
};

static const struct order_case order_cases[] = {
	{ "barrier against allreduce", OC_BARRIER, OC_ALLREDUCE, false, -1 },
	{ "barrier against allreduce, the odd rank late", OC_BARRIER, OC_ALLREDUCE, false, -2 },
	{ "barrier against allreduce, rank 1 late", OC_BARRIER, OC_ALLREDUCE, false, 1 },
	{ "coordinator's barrier against allreduce", OC_BARRIER, OC_ALLREDUCE, true, -1 },
	{ "coordinator's barrier against allreduce, rank 1 late", OC_BARRIER, OC_ALLREDUCE, true, 1 },
	{ "reduce against allreduce", OC_REDUCE, OC_ALLREDUCE, false, -1 },
	{ "reduce against allreduce, rank 1 late", OC_REDUCE, OC_ALLREDUCE, false, 1 },
	{ "allreduce against barrier", OC_ALLREDUCE, OC_BARRIER, false, 1 },
	{ "broadcast roots differ", OC_BCAST_SELF, OC_BCAST0, false, -1 },
	{ "broadcast roots differ, rank 1 late", OC_BCAST_SELF, OC_BCAST0, false, 1 },
};

/* Returns the call's result; *exact says whether a 0 came with the right data. */
static int order_call(struct job *j, enum order_call k, unsigned salt, bool *exact)
{
	uint64_t in[3], out[3];
	int rc, r, i;

	*exact = true;
	for (i = 0; i < 3; i++)
		in[i] = input(j->tag, j->rank, (size_t)i, salt);
	switch (k) {
	case OC_ALLREDUCE:
		rc = sgc_allreduce(j->c, in, out, 3, SGC_UINT64, SGC_SUM);
		for (i = 0; !rc && i < 3; i++) {
			uint64_t want = 0;

			for (r = 0; r < j->world; r++)
				want += input(j->tag, r, (size_t)i, salt);
			*exact &= out[i] == want;
		}
		return rc;
	case OC_REDUCE:
		rc = sgc_reduce(j->c, in, out, 3, SGC_UINT64, SGC_SUM, 0);
		for (i = 0; !rc && j->rank == 0 && i < 3; i++) {
			uint64_t want = 0;

			for (r = 0; r < j->world; r++)
				want += input(j->tag, r, (size_t)i, salt);
			*exact &= out[i] == want;
		}
		return rc;
	case OC_BCAST0:
	case OC_BCAST_SELF:
		r = k == OC_BCAST0 ? 0 : j->rank;
		for (i = 0; i < 3; i++)
			out[i] = j->rank == r ? input(j->tag, r, (size_t)i, salt) : 0;
		rc = sgc_broadcast(j->c, out, 3, SGC_UINT64, r);
		for (i = 0; !rc && i < 3; i++)
			*exact &= out[i] == input(j->tag, r, (size_t)i, salt);
		return rc;
	default:
		return sgc_barrier(j->c);
	}
}

static void order_one(struct job *j, const struct order_case *oc, int odd, unsigned timeout_ms,
		      unsigned late_ms)
{
	int who = oc->odd_is_coord ? 0 : odd;
	bool is_odd = j->rank == who, exact;
	enum order_call k = is_odd ? oc->odd_call : oc->rest_call;
	int late = oc->late == -2 ? who : oc->late;
	unsigned salt = j->salt++;
	double t0, dt;
	int rc;

	if (j->rank == late)
		usleep(late_ms * 1000);
	watch(timeout_ms, "%s (%s)", order_call_name(k), oc->name);
	t0 = now_ms();
	rc = order_call(j, k, salt, &exact);
	dt = now_ms() - t0;
	unwatch();
	printf("rank %d: %s: %s: %d in %.0f ms: %s\n", j->rank, oc->name, order_call_name(k), rc, dt,
	       rc ? sgc_last_error() : "ok");
	if (dt > timeout_ms + 1000.0)
		FAIL("%s: %s took %.0f ms, the timeout is %u ms", oc->name, order_call_name(k), dt,
		     timeout_ms);
	if (rc == 0)
		FAIL("%s: %s succeeded%s although the ranks disagree", oc->name, order_call_name(k),
		     exact ? "" : " with a wrong result");
	else if (rc != -SGC_EMISMATCH)
		FAIL("%s: %s: expected -SGC_EMISMATCH, got %d (%s): %s", oc->name, order_call_name(k), rc,
		     sgc_strerror(rc), sgc_last_error());
	/* The mismatch used one collective on every rank: the next call
	 * matches again. */
	watch(timeout_ms, "the barrier after %s", oc->name);
	t0 = now_ms();
	rc = sgc_barrier(j->c);
	dt = now_ms() - t0;
	unwatch();
	if (rc)
		FAIL("%s: the barrier after it returned %d in %.0f ms (%s): %s", oc->name, rc, dt,
		     sgc_strerror(rc), sgc_last_error());
	else if (dt > timeout_ms + 1000.0)
		FAIL("%s: the barrier after it took %.0f ms", oc->name, dt);
}

static int mode_order(struct job *j, unsigned timeout_ms, int odd, unsigned late_ms)
{
	size_t i;

	if (odd < 1 || odd >= j->world || j->world < 3) {
		FAIL("order: needs 3+ ranks and a worker as the odd rank (world %d, odd %d)", j->world, odd);
		return -1;
	}
	if (late_ms >= timeout_ms / 2) {
		FAIL("order: -L %u must stay below half the timeout (%u ms)", late_ms, timeout_ms);
		return -1;
	}
	for (i = 0; i < sizeof(order_cases) / sizeof(order_cases[0]); i++)
		order_one(j, &order_cases[i], odd, timeout_ms, late_ms);
	/* And the communicator still gives exact results. */
	watch(timeout_ms, "the exact round after the mismatches");
	round_exact(j, false);
	unwatch();
	return atomic_load(&g_fail) ? -1 : 0;
}

/* ------------------------------------------------------------ run */

static void print_stats(struct job *j)
{
	struct sgc_stats st;
	uint64_t b[64];
	int n, i;

	if (job_rc(j, "get_stats", sgc_get_stats(j->c, &st, sizeof(st))))
		return;
	printf("rank %d stat collectives %" PRIu64 "\n", j->rank, st.collectives);
	printf("rank %d stat rejected %" PRIu64 "\n", j->rank, st.rejected);
	printf("rank %d stat foreign %" PRIu64 "\n", j->rank, st.foreign);
	printf("rank %d stat late %" PRIu64 "\n", j->rank, st.late);
	printf("rank %d stat duplicates %" PRIu64 "\n", j->rank, st.duplicates);
	printf("rank %d stat retransmits %" PRIu64 "\n", j->rank, st.retransmits);
#ifdef SGC_F_MAC
	/* With a job key: datagrams whose tag was missing or wrong. */
	printf("rank %d stat bad_mac %" PRIu64 "\n", j->rank, st.bad_mac);
#endif
	n = sgc_bpf_stats(j->c, b, 64);
	for (i = 0; i < n; i++)
		printf("rank %d bpfstat %s %" PRIu64 "\n", j->rank, sgc_bpf_stat_name(i), b[i]);
}

static int mode_run(struct job *j, const char *stopfile, int maxsec)
{
	double t_end = now_ms() + maxsec * 1e3;
	unsigned long rounds = 0;
	uint32_t go = 1;

	if (j->rank == 0)
		printf("rank 0: the %s path\n", sgc_accelerated(j->c) ? "eBPF" : "user-space");
	while (go) {
		if (round_exact(j, true))
			break;
		rounds++;
		if (j->rank == 0)
			go = (!stopfile || access(stopfile, F_OK) != 0) && now_ms() < t_end;
		if (job_rc(j, "broadcast go", sgc_broadcast(j->c, &go, 1, SGC_UINT32, 0)))
			break;
	}
	printf("rank %d: %lu rounds, %lu checks, %s\n", j->rank, rounds,
	       (unsigned long)atomic_load(&g_checked), atomic_load(&g_fail) ? "FAILED" : "all exact");
	print_stats(j);
	return atomic_load(&g_fail) ? -1 : 0;
}

/* ------------------------------------------------------------ mismatch */

/*
 * One argument differs: rank ODD calls with @odd, every other rank with
 * @ref.  Every rank's call must fail with -SGC_EMISMATCH within the
 * timeout, and its sgc_last_error() must name rank ODD, the argument and
 * both values (@odd_says and @ref_says, as the message puts them).
 */
struct mm_call {
	enum { MM_ALLREDUCE, MM_BCAST, MM_BARRIER } kind;
	size_t count;
	enum sgc_dtype dt;
	enum sgc_op op;
	int root;		/* -1: the odd rank itself */
};

struct mm_case {
	const char *name;
	struct mm_call odd, ref;
	const char *what;	/* "the count differs", ... */
	const char *odd_says, *ref_says;
};

static const struct mm_case mm_cases[] = {
	{ "count 101 against 100",
	  { MM_ALLREDUCE, 101, SGC_INT64, SGC_SUM, 0 }, { MM_ALLREDUCE, 100, SGC_INT64, SGC_SUM, 0 },
	  "the count differs", "count 101", "count 100" },
	{ "count 1001 against 1000, several datagrams",
	  { MM_ALLREDUCE, 1001, SGC_INT64, SGC_SUM, 0 }, { MM_ALLREDUCE, 1000, SGC_INT64, SGC_SUM, 0 },
	  "the count differs", "count 1001", "count 1000" },
	{ "count 100 against 1000",
	  { MM_ALLREDUCE, 100, SGC_INT64, SGC_SUM, 0 }, { MM_ALLREDUCE, 1000, SGC_INT64, SGC_SUM, 0 },
	  "the count differs", "count 100,", "count 1000" },
	{ "dtype int32 against int64",
	  { MM_ALLREDUCE, 100, SGC_INT32, SGC_SUM, 0 }, { MM_ALLREDUCE, 100, SGC_INT64, SGC_SUM, 0 },
	  "the dtype differs", "dtype int32", "dtype int64" },
	{ "op max against sum",
	  { MM_ALLREDUCE, 100, SGC_INT64, SGC_MAX, 0 }, { MM_ALLREDUCE, 100, SGC_INT64, SGC_SUM, 0 },
	  "the op differs", "op max", "op sum" },
	{ "broadcast from itself against from 0",
	  { MM_BCAST, 100, SGC_INT64, SGC_SUM, -1 }, { MM_BCAST, 100, SGC_INT64, SGC_SUM, 0 },
	  "the root differs", NULL, "root 0" },
	{ "broadcast from 0 against from 1",
	  { MM_BCAST, 100, SGC_INT64, SGC_SUM, 0 }, { MM_BCAST, 100, SGC_INT64, SGC_SUM, 1 },
	  "the root differs", "root 0", "root 1" },
	{ "barrier against allreduce",
	  { MM_BARRIER, 0, SGC_UINT8, SGC_SUM, 0 }, { MM_ALLREDUCE, 100, SGC_INT64, SGC_SUM, 0 },
	  "the collective differs", "called barrier", "allreduce" },
};

/* Who enters the call late, so that each order of arrival is tried. */
enum mm_late { MM_NONE, MM_ODD_FIRST, MM_ODD_LAST };

static const char *const mm_late_names[] = { "together", "the odd rank first", "the odd rank last" };

static int mm_do(struct job *j, const struct mm_call *k, uint64_t *buf, uint64_t *out)
{
	int root = k->root < 0 ? j->rank : k->root;

	switch (k->kind) {
	case MM_ALLREDUCE:
		return sgc_allreduce(j->c, buf, out, k->count, k->dt, k->op);
	case MM_BCAST:
		return sgc_broadcast(j->c, buf, k->count, k->dt, root);
	default:
		return sgc_barrier(j->c);
	}
}

/* "rank 3 called" or "rank 3 (this rank) called" */
static bool names_odd(const char *msg, int odd)
{
	char a[48], b[48];

	snprintf(a, sizeof(a), "rank %d called", odd);
	snprintf(b, sizeof(b), "rank %d (this rank) called", odd);
	return strstr(msg, a) || strstr(msg, b);
}

static void mm_one(struct job *j, const struct mm_case *mc, int odd, enum mm_late late,
		   unsigned timeout_ms, unsigned late_ms)
{
	bool is_odd = j->rank == odd;
	const struct mm_call *k = is_odd ? &mc->odd : &mc->ref;
	uint64_t *buf = calloc(2048, sizeof(*buf)), *out = calloc(2048, sizeof(*out));
	char odd_says[32];
	const char *msg;
	double t0, dt;
	int rc;

	if (!buf || !out) {
		FAIL("out of memory");
		goto out;
	}
	if ((late == MM_ODD_FIRST && !is_odd) || (late == MM_ODD_LAST && is_odd))
		usleep(late_ms * 1000);
	watch(timeout_ms, "%s (%s)", mc->name, mm_late_names[late]);
	t0 = now_ms();
	rc = mm_do(j, k, buf, out);
	dt = now_ms() - t0;
	unwatch();
	msg = sgc_last_error();
	printf("rank %d: %s, %s: %d in %.0f ms: %s\n", j->rank, mc->name, mm_late_names[late], rc, dt,
	       rc ? msg : "ok");
	/* The odd broadcaster's root is itself. */
	snprintf(odd_says, sizeof(odd_says), "root %d", odd);
	if (rc != -SGC_EMISMATCH)
		FAIL("%s, %s: expected -SGC_EMISMATCH, got %d (%s): %s", mc->name, mm_late_names[late],
		     rc, sgc_strerror(rc), rc ? msg : "");
	else if (!names_odd(msg, odd) || !strstr(msg, mc->what) ||
		 !strstr(msg, mc->odd_says ? mc->odd_says : odd_says) || !strstr(msg, mc->ref_says))
		FAIL("%s, %s: the message does not say that rank %d called it with %s where rank 0 has "
		     "%s (%s): %s", mc->name, mm_late_names[late], odd, mc->odd_says ? mc->odd_says : odd_says,
		     mc->ref_says, mc->what, msg);
	else
		atomic_fetch_add(&g_checked, 1);
	if (dt > timeout_ms + 1000.0)
		FAIL("%s, %s: the call took %.0f ms, the timeout is %u ms", mc->name, mm_late_names[late],
		     dt, timeout_ms);
	/* The mismatch used one collective on every rank: the next call
	 * matches again. */
	watch(timeout_ms, "the barrier after %s", mc->name);
	rc = sgc_barrier(j->c);
	unwatch();
	if (rc)
		FAIL("%s, %s: the barrier after it returned %d: %s", mc->name, mm_late_names[late], rc,
		     sgc_last_error());
out:
	free(buf);
	free(out);
}

static int mode_mismatch(struct job *j, unsigned timeout_ms, int odd, unsigned late_ms)
{
	size_t i;
	int late;

	if (odd < 2 || odd >= j->world || j->world < 4) {
		FAIL("mismatch: needs 4+ ranks and a worker other than 1 as the odd rank (world %d, odd %d)",
		     j->world, odd);
		return -1;
	}
	if (late_ms >= timeout_ms / 2) {
		FAIL("mismatch: -L %u must stay below half the timeout (%u ms)", late_ms, timeout_ms);
		return -1;
	}
	if (j->rank == 0)
		printf("rank 0: the %s path\n", sgc_accelerated(j->c) ? "eBPF" : "user-space");
	for (i = 0; i < sizeof(mm_cases) / sizeof(mm_cases[0]); i++)
		for (late = MM_NONE; late <= MM_ODD_LAST; late++)
			mm_one(j, &mm_cases[i], odd, (enum mm_late)late, timeout_ms, late_ms);
	watch(timeout_ms, "the exact round after the mismatches");
	round_exact(j, false);
	unwatch();
	if (j->rank == 0)
		print_stats(j);
	return atomic_load(&g_fail) ? -1 : 0;
}

/* ------------------------------------------------------------ two comms */

/* "a.b.c.d:port" + off -> buf; NULL when @s has no port. */
static const char *port_plus(const char *s, int off, char *buf, size_t len)
{
	const char *colon = s ? strrchr(s, ':') : NULL;

	if (!colon)
		return NULL;
	snprintf(buf, len, "%.*s:%d", (int)(colon - s), s, atoi(colon + 1) + off);
	return buf;
}

/*
 * sgc_init(), once more for a worker that timed out: rank 0 loads its
 * eBPF object before it listens, which can take seconds on a busy
 * machine, while the workers' timeout already runs.  The failed attempt
 * must have left its port free: -EADDRINUSE on the retry is a failure.
 */
static int init_patiently(const struct sgc_config *cfg, sgc_comm **out)
{
	int rc = sgc_init(cfg, out), tries = 0;

	while (cfg->rank != 0 && tries < 3 && rc == -ETIMEDOUT) {
		fprintf(stderr, "rank %d: sgc_init timed out (%s); again\n", cfg->rank,
			sgc_last_error());
		tries++;
		rc = sgc_init(cfg, out);
		if (rc == -EADDRINUSE)
			FAIL("sgc_init right after a failed one: the port is still bound (%s)",
			     sgc_last_error());
	}
	return rc;
}

/* A second communicator of the same ranks, every port moved by @off. */
static int open_shifted(struct sgc_config *base, int off, enum sgc_accel accel, sgc_comm **out)
{
	struct sgc_config cfg = *base;
	char co[64], bi[64];

	cfg.coordinator = port_plus(base->coordinator, off, co, sizeof(co));
	if (base->bind_addr)
		cfg.bind_addr = port_plus(base->bind_addr, off, bi, sizeof(bi));
	if (!cfg.coordinator || (base->bind_addr && !cfg.bind_addr)) {
		fprintf(stderr, "SGC_COORDINATOR and SGC_BIND need ports (ip:port)\n");
		return -EINVAL;
	}
	cfg.accel = accel;
	return init_patiently(&cfg, out);
}

/*
 * With A and B open, six more eBPF communicators fill the interface's
 * XDP dispatcher (SGC_XDP_SLOTS = 8, every one exact), a ninth is
 * refused precisely at every rank, and once one of the eight ends a new
 * one gets its slot.
 */
#define FILL_SLOTS 8

static void fill_slots(struct sgc_config *cfg, struct job *a)
{
	struct job x[FILL_SLOTS] = {};
	sgc_comm *extra = NULL;
	int k, rc;

	for (k = 2; k < FILL_SLOTS; k++) {
		x[k] = (struct job){ .rank = a->rank, .world = a->world, .tag = 10 + (unsigned)k,
				     .name = "slot filler" };
		rc = open_shifted(cfg, 1000 * k, SGC_ACCEL_EBPF, &x[k].c);
		if (job_rc(&x[k], "sgc_init (slot filler)", rc))
			goto out;
		if (a->rank == 0 && !sgc_accelerated(x[k].c)) {
			FAIL("eBPF communicator %d of %d is not in the kernel", k + 1, FILL_SLOTS);
			goto out;
		}
		if (round_exact(&x[k], true))
			goto out;
	}
	rc = open_shifted(cfg, 1000 * FILL_SLOTS, SGC_ACCEL_EBPF, &extra);
	printf("rank %d: eBPF communicator %d: %d: %s\n", a->rank, FILL_SLOTS + 1, rc,
	       rc ? sgc_last_error() : "");
	if (rc == 0) {
		FAIL("an eBPF communicator beyond the dispatcher's %d slots was accepted", FILL_SLOTS);
		sgc_finalize(extra);
		goto out;
	}
	if (a->rank == 0 && (rc != -EBUSY || !strstr(sgc_last_error(), "every slot"))) {
		FAIL("a ninth eBPF coordinator: expected -EBUSY naming the full slots, got %d: %s", rc,
		     sgc_last_error());
		goto out;
	}
	if (a->rank != 0 && !strstr(sgc_last_error(), "XDP") && !strstr(sgc_last_error(), "busy") &&
	    !strstr(sgc_last_error(), "abort")) {
		FAIL("a worker of the refused communicator got an unclear error %d: %s", rc,
		     sgc_last_error());
		goto out;
	}
	/* One leaves; its slot serves the next. */
	sgc_finalize(x[2].c);
	x[2].c = NULL;
	rc = open_shifted(cfg, 1000 * (FILL_SLOTS + 1), SGC_ACCEL_EBPF, &x[2].c);
	if (job_rc(&x[2], "sgc_init (after a slot was freed)", rc))
		goto out;
	if (a->rank == 0 && !sgc_accelerated(x[2].c))
		FAIL("a freed dispatcher slot was not given to the next eBPF communicator");
	else if (!round_exact(&x[2], false) && a->rank == 0)
		printf("rank 0: %d eBPF communicators on one interface, the %dth refused, a freed "
		       "slot reused\n", FILL_SLOTS, FILL_SLOTS + 1);
out:
	for (k = 2; k < FILL_SLOTS; k++)
		sgc_finalize(x[k].c);
}

static int mode_twocomm(sgc_comm *c1, struct sgc_config *cfg, int iters)
{
	struct job a = { .c = c1, .rank = sgc_rank(c1), .world = sgc_world_size(c1), .tag = 1, .name = "comm A" };
	struct job b = { .rank = a.rank, .world = a.world, .tag = 2, .name = "comm B" };
	uint32_t ina[364], outa[364], inb[364], outb[364];
	sgc_request *ra, *rb;
	int it, rc;

	if (sgc_accelerated(c1) && a.rank == 0)
		printf("rank 0: comm A runs the eBPF path\n");
	/* With SGC_ACCEL=ebpf both coordinators share rank 0's interface, and
	 * both must be in the kernel (its XDP dispatcher, one slot each). */
	rc = open_shifted(cfg, 1000, cfg->accel, &b.c);
	if (job_rc(&b, "sgc_init (second communicator)", rc))
		return -1;
	if (cfg->accel == SGC_ACCEL_EBPF && b.rank == 0) {
		if (!sgc_accelerated(b.c))
			FAIL("a second eBPF-path communicator on the same interface is not in the kernel");
		else
			printf("rank 0: comm B runs the eBPF path too\n");
	}
	for (it = 0; it < iters && !atomic_load(&g_fail); it++) {
		/* Blocking calls alternate; non-blocking ones overlap. */
		if (round_exact(&a, it % 2 == 0) || round_exact(&b, it % 2 == 1))
			break;
		if (check_iallreduce_max(&a, 363, ina, outa, &ra))
			break;
		if (check_iallreduce_max(&b, 363, inb, outb, &rb)) {
			sgc_wait(ra);
			break;
		}
		rc = sgc_wait(rb);
		if (job_rc(&a, "wait A", sgc_wait(ra)) | job_rc(&b, "wait B", rc))
			break;
		verify_max(&a, 363, ina, outa);
		verify_max(&b, 363, inb, outb);
	}
	if (cfg->accel == SGC_ACCEL_EBPF && !atomic_load(&g_fail))
		fill_slots(cfg, &a);
	sgc_finalize(b.c);
	return atomic_load(&g_fail) ? -1 : 0;
}

/* ------------------------------------------------------------ threads */

struct thread_arg {
	struct sgc_config *cfg;
	int k, iters, rc;
	pthread_t tid;
};

static void *thread_main(void *p)
{
	struct thread_arg *t = p;
	struct job j = { .tag = 100 + (unsigned)t->k };
	char name[32];
	int it, rc;

	snprintf(name, sizeof(name), "thread %d", t->k);
	j.name = name;
	/* Every thread takes the job's path: with SGC_ACCEL=ebpf their
	 * coordinators share rank 0's interface, a dispatcher slot each. */
	rc = open_shifted(t->cfg, 1000 * (t->k + 1), t->cfg->accel, &j.c);
	if (rc) {
		FAIL("%s: sgc_init: %d: %s", name, rc, sgc_last_error());
		t->rc = rc;
		return NULL;
	}
	j.rank = sgc_rank(j.c);
	j.world = sgc_world_size(j.c);
	for (it = 0; it < t->iters && !t->rc; it++)
		t->rc = round_exact(&j, it % 2 == 0);
	/* sgc_last_error() is per thread: each thread's bad call (a dtype
	 * of its own) is the one its message names. */
	for (it = 0; it < 50 && !t->rc; it++) {
		char want[40];

		rc = sgc_allreduce(j.c, NULL, NULL, 1, (enum sgc_dtype)(40 + t->k), SGC_SUM);
		usleep(100);
		snprintf(want, sizeof(want), "unknown dtype %d", 40 + t->k);
		if (rc != -EINVAL || !strstr(sgc_last_error(), want)) {
			FAIL("%s: bad dtype gave %d, last error \"%s\"", name, rc, sgc_last_error());
			t->rc = -1;
		}
	}
	if (!t->rc)
		t->rc = job_rc(&j, "final barrier", sgc_barrier(j.c));
	sgc_finalize(j.c);
	return NULL;
}

static int mode_threads(struct sgc_config *cfg, int nthreads, int iters)
{
	struct thread_arg t[8];
	int k, started = 0;

	if (nthreads < 1 || nthreads > 8)
		nthreads = 4;
	for (k = 0; k < nthreads; k++) {
		t[k] = (struct thread_arg){ .cfg = cfg, .k = k, .iters = iters };
		if (pthread_create(&t[k].tid, NULL, thread_main, &t[k])) {
			FAIL("pthread_create failed");
			break;
		}
		started++;
	}
	for (k = 0; k < started; k++)
		pthread_join(t[k].tid, NULL);
	return atomic_load(&g_fail) ? -1 : 0;
}

/* sgc_init() with @cfg must fail with @want, and sgc_last_error() say @text. */
static void expect_init_fails(const struct sgc_config *cfg, int want, const char *text, int round)
{
	sgc_comm *c = NULL;
	int rc = sgc_init(cfg, &c);

	if (rc == 0) {
		FAIL("round %d: sgc_init of a job with a missing rank succeeded", round);
		sgc_finalize(c);
	} else if (rc != want || !strstr(sgc_last_error(), text)) {
		FAIL("round %d: sgc_init of a job with a missing rank: got %d (%s), want %d and "
		     "\"%s\"", round, rc, sgc_last_error(), want, text);
	}
}

static int mode_reinit(const struct sgc_config *cfg, int iters)
{
	struct sgc_config big = *cfg;
	char text[64];
	int it, rc;

	/* Rank world_size of world_size + 1 never comes. */
	big.world_size = cfg->world_size + 1;
	big.timeout_ms = 1000;
	if (cfg->rank == 0)
		snprintf(text, sizeof(text), "(missing ranks: %d)", cfg->world_size);
	else
		snprintf(text, sizeof(text), "gave up: rank %d did not join within 1000 ms",
			 cfg->world_size);
	for (it = 0; it < iters && !atomic_load(&g_fail); it++) {
		sgc_comm *c = NULL;

		expect_init_fails(&big, -ETIMEDOUT, text, it);
		rc = sgc_init(cfg, &c);
		if (rc) {
			FAIL("round %d: sgc_init right after a failed one: %d (%s)", it, rc,
			     sgc_last_error());
			break;
		}
		rc = sgc_barrier(c);
		if (rc)
			FAIL("round %d: barrier: %d (%s)", it, rc, sgc_last_error());
		sgc_finalize(c);
	}
	printf("rank %d: %d rounds of a failed sgc_init and a restart\n", cfg->rank, it);
	return atomic_load(&g_fail) ? -1 : 0;
}

int main(int argc, char **argv)
{
	const char *mode = "run", *stopfile = NULL;
	int opt, victim = -1, maxsec = 60, iters = 20, nthreads = 4, late_ms = 500, rc;
	unsigned tag = 7;
	struct sgc_config cfg = { .sz = sizeof(cfg) };
	struct job j = { .name = "job" };
	double t0 = now_ms();

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "m:v:k:S:T:i:n:L:")) != -1) {
		switch (opt) {
		case 'm': mode = optarg; break;
		case 'v': victim = atoi(optarg); break;
		case 'k': tag = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'S': stopfile = optarg; break;
		case 'T': maxsec = atoi(optarg); break;
		case 'i': iters = atoi(optarg); break;
		case 'n': nthreads = atoi(optarg); break;
		case 'L': late_ms = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s -m kill|run|twocomm|threads|order|mismatch|reinit [-v victim] [-k tag] "
				"[-S stopfile] [-T maxsec] [-i iters] [-n threads] [-L late_ms]\n", argv[0]);
			return 2;
		}
	}
	rc = sgc_config_from_env(&cfg);
	if (rc) {
		fprintf(stderr, "sgc_config_from_env: %s\n", sgc_last_error());
		return 1;
	}
	g_rank = cfg.rank;
	if (!strcmp(mode, "threads")) {
		/* Every communicator is made by its own thread. */
		rc = mode_threads(&cfg, nthreads, iters);
		goto done;
	}
	if (!strcmp(mode, "reinit")) {
		rc = mode_reinit(&cfg, iters);
		goto done;
	}
	rc = init_patiently(&cfg, &j.c);
	if (rc == -EOPNOTSUPP) {
		fprintf(stderr, "SKIP: %s\n", sgc_last_error());
		return 77;
	}
	if (rc) {
		fprintf(stderr, "sgc_init: %s\n%s\n", sgc_strerror(rc), sgc_last_error());
		return 1;
	}
	j.rank = sgc_rank(j.c);
	j.world = sgc_world_size(j.c);
	j.tag = tag;
	if (!strcmp(mode, "kill"))
		rc = mode_kill(&j, cfg.timeout_ms ? cfg.timeout_ms : SGC_DEFAULT_TIMEOUT_MS,
			       victim < 0 ? j.world - 1 : victim);
	else if (!strcmp(mode, "run"))
		rc = mode_run(&j, stopfile, maxsec);
	else if (!strcmp(mode, "order"))
		rc = mode_order(&j, cfg.timeout_ms ? cfg.timeout_ms : SGC_DEFAULT_TIMEOUT_MS,
				victim < 0 ? j.world - 1 : victim, late_ms < 0 ? 0 : (unsigned)late_ms);
	else if (!strcmp(mode, "mismatch"))
		rc = mode_mismatch(&j, cfg.timeout_ms ? cfg.timeout_ms : SGC_DEFAULT_TIMEOUT_MS,
				   victim < 0 ? j.world - 1 : victim, late_ms < 0 ? 0 : (unsigned)late_ms);
	else if (!strcmp(mode, "twocomm"))
		rc = mode_twocomm(j.c, &cfg, iters);
	else
		FAIL("unknown mode %s", mode);
	sgc_finalize(j.c);
done:
	printf("rank %d: %s: %s, %lu checks in %.0f ms\n", g_rank, mode,
	       rc || atomic_load(&g_fail) ? "FAILED" : "ok", (unsigned long)atomic_load(&g_checked),
	       now_ms() - t0);
	return rc || atomic_load(&g_fail) ? 1 : 0;
}
