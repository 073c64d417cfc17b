// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Scatter-gather queries over the fake transport (fake_net.h), in virtual
 * time: the coordinator's query (sg_query_start/sg_query_end) against
 * workers that serve it with a handler, as sgc_serve() does.  WAIT_ALL,
 * WAIT_N and WAIT_ANY at several world and response sizes, under loss,
 * duplication and reordering; a worker that declines; dead workers.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fake_net.h"
#include "sg.h"

static const int worlds[] = { 2, 5, 17 };

/* A worker's handler state. */
struct server {
	int rank;
	int calls;
	bool decline;
};

struct job {
	int world;
	struct sgc_comm *c[FAKE_MAX_RANKS];
	struct server srv[FAKE_MAX_RANKS];
};

/* Worker @r's answer to a query whose first byte is @q0. */
static int32_t answer(int r, size_t i, uint8_t q0)
{
	return (int32_t)(r * 1000 + (int)(i % 5000) * 3 + q0);
}

static int handler(const void *query, size_t query_len, void *response, size_t count,
		   enum sgc_dtype dt, void *arg)
{
	struct server *s = arg;
	uint8_t q0 = query_len ? *(const uint8_t *)query : 0;
	int32_t *out = response;
	size_t i;

	s->calls++;
	if (dt != SGC_INT32)
		return -EINVAL;
	if (s->decline)
		return 1;
	for (i = 0; i < count; i++)
		out[i] = answer(s->rank, i, q0);
	return 0;
}

/* Every worker serves, as inside sgc_serve(). */
static void job_open(struct job *j, int world, uint64_t seed)
{
	struct fake_world_opts o = {
		.world = world, .chunk_bytes = CHUNK_BYTES, .timeout_ms = TIMEOUT_MS,
		.rto_ns = RTO_NS,
	};
	int r;

	memset(j, 0, sizeof(*j));
	j->world = world;
	fake_net_reset(seed, LATENCY_NS);
	assert_int_equal(fake_world_new(&o, j->c), 0);
	for (r = 1; r < world; r++) {
		j->srv[r].rank = r;
		j->c[r]->sg.handler = handler;
		j->c[r]->sg.handler_arg = &j->srv[r];
		j->c[r]->sg.serving = true;
	}
}

static void job_close(struct job *j)
{
	fake_world_free(j->c, j->world);
}

static bool query_done(void *arg)
{
	return ((const struct sgc_query *)arg)->done;
}

static bool never(void *arg)
{
	return false;
}

/* One query and what came of it. */
struct ask {
	int policy;
	unsigned wait_n;
	size_t count;
	unsigned timeout_ms;
	uint8_t q0;
	int err;
	uint64_t took;
	int32_t *result;
	unsigned char answered[FAKE_MAX_RANKS];
	struct sgc_sg_status st;
};

static void ask_run(struct job *j, struct ask *a)
{
	uint8_t payload[3] = { a->q0, 1, 2 };
	struct sgc_query *q;
	uint64_t t0 = fake_now();
	size_t i;
	bool done;

	if (a->count == COUNT_MANY)
		a->count = (j->c[0]->pace.push_credit + 3) * ELEMS + 17;
	a->result = malloc((a->count + 1) * sizeof(int32_t));
	assert_non_null(a->result);
	for (i = 0; i <= a->count; i++)
		a->result[i] = SENTINEL;
	memset(a->answered, 0xee, sizeof(a->answered));
	memset(&a->st, 0, sizeof(a->st));
	a->st.sz = sizeof(a->st);
	a->st.answered = a->answered;
	assert_int_equal(sg_query_start(j->c[0], payload, sizeof(payload), a->result, a->count,
					SGC_INT32, SGC_SUM, a->policy, a->wait_n, a->timeout_ms, 0, &q), 0);
	done = fake_run_until(query_done, q, RUN_NS);
	a->took = fake_now() - t0;
	a->err = sg_query_end(j->c[0], q, done ? 0 : -ETIMEDOUT, &a->st);
	assert_true(done);
}

/* @a succeeded with exactly the answers of the ranks it says answered,
 * @nanswered of them, none of them a decliner. */
static void ask_check(const struct job *j, const struct ask *a, int nanswered)
{
	int r, n = 0;
	size_t i;

	if (a->err)
		fail_msg("world %d policy %d of %zu: %d (%s)", j->world, a->policy, a->count, a->err,
			 sgc_last_error());
	assert_int_equal(a->st.nanswered, nanswered);
	assert_int_equal(a->answered[0], 0);
	for (r = 1; r < j->world; r++) {
		assert_true(a->answered[r] <= 1);
		if (a->answered[r]) {
			assert_false(j->srv[r].decline);
			n++;
		}
	}
	assert_int_equal(n, nanswered);
	for (i = 0; i < a->count; i++) {
		int32_t want = 0;

		for (r = 1; r < j->world; r++)
			if (a->answered[r])
				want += answer(r, i, a->q0);
		if (a->result[i] != want)
			fail_msg("world %d policy %d of %zu: element %zu is %d, want %d", j->world,
				 a->policy, a->count, i, a->result[i], want);
	}
	assert_int_equal(a->result[a->count], SENTINEL);
}

/*
 * Three queries in a row of each policy on one job, then the STOP that
 * ends sgc_serve(); with @f's faults.  Every worker's handler runs once
 * per query it got; WAIT_ALL queries reach every worker.
 */
static void policies(int world, size_t count, struct fake_faults *f, uint64_t seed)
{
	const int pol[] = { SGC_WIRE_WAIT_ALL, SGC_WIRE_WAIT_N, SGC_WIRE_WAIT_ANY };
	struct sgc_query *q;
	struct job j;
	int p, r, nall = 0, nq = 0;

	job_open(&j, world, seed);
	if (f)
		fake_net_policy(fake_random_faults, f);
	for (p = 0; p < 3; p++) {
		struct ask a = {
			.policy = pol[p], .count = count, .q0 = (uint8_t)(10 + p),
			.wait_n = world > 2 ? (unsigned)world / 2 : 1,
		};
		int want = p == 0 ? world - 1 : p == 1 ? (int)a.wait_n : 1;

		ask_run(&j, &a);
		ask_check(&j, &a, want);
		free(a.result);
		nq++;
		nall += p == 0;
	}
	fake_run_until(never, NULL, DRAIN_NS);
	for (r = 1; r < world; r++) {
		assert_true(j.srv[r].calls >= nall);
		assert_true(j.srv[r].calls <= nq);
	}
	/* sgc_serve_stop(): every worker sees the STOP. */
	assert_int_equal(sg_query_start(j.c[0], NULL, 0, NULL, 0, SGC_UINT8, SGC_SUM,
					SGC_WIRE_WAIT_ALL, 0, 0, SGC_F_STOP, &q), 0);
	assert_true(fake_run_until(query_done, q, RUN_NS));
	assert_int_equal(sg_query_end(j.c[0], q, 0, NULL), 0);
	for (r = 1; r < world; r++)
		assert_true(j.c[r]->sg.stop_seen);
	{
		uint64_t retx = 0;

		for (r = 0; r < world; r++)
			retx += j.c[r]->st.retransmits;
		/* Sent again only after a loss. */
		if (fake_net_stats()->dropped)
			assert_true(retx > 0);
		else if (!f)
			assert_int_equal(retx, 0);
	}
	if (fake_net_stats()->duplicated_data) {
		uint64_t seen = 0;

		for (r = 0; r < world; r++)
			seen += j.c[r]->st.duplicates + j.c[r]->st.late;
		assert_true(seen > 0);
	}
	job_close(&j);
}

static void sizes_each(struct fake_faults *f, uint64_t seed)
{
	const size_t counts[] = { 0, 1, ELEMS, COUNT_MANY };
	size_t w, n;

	for (w = 0; w < sizeof(worlds) / sizeof(worlds[0]); w++)
		for (n = 0; n < sizeof(counts) / sizeof(counts[0]); n++)
			policies(worlds[w], counts[n], f, seed + n);
}

static void test_policies(void **state)
{
	sizes_each(NULL, 1);
}

static void test_loss(void **state)
{
	struct fake_faults f = { .drop_pct = 20 };
	uint64_t seed;

	for (seed = 100; seed < 103; seed++)
		sizes_each(&f, seed);
}

static void test_duplication(void **state)
{
	struct fake_faults f = { .dup_pct = 25, .max_delay_ns = 2 * RTO_NS };

	sizes_each(&f, 200);
}

static void test_combined(void **state)
{
	struct fake_faults f = {
		.drop_pct = 15, .dup_pct = 10, .delay_pct = 20, .max_delay_ns = 3 * RTO_NS,
	};
	uint64_t seed;

	for (seed = 300; seed < 303; seed++)
		sizes_each(&f, seed);
}

/* Rank 2 declines: WAIT_ALL completes without it; a WAIT_N that needs it
 * is cancelled. */
static void declining(int world, size_t count, struct fake_faults *f, uint64_t seed)
{
	struct job j;
	struct ask a = { .policy = SGC_WIRE_WAIT_ALL, .count = count, .q0 = 7 };
	struct ask b = { .policy = SGC_WIRE_WAIT_N, .count = count, .q0 = 8 };

	job_open(&j, world, seed);
	if (f)
		fake_net_policy(fake_random_faults, f);
	j.srv[2].decline = true;
	ask_run(&j, &a);
	ask_check(&j, &a, world - 2);
	assert_int_equal(a.st.ndeclined, 1);
	assert_int_equal(a.answered[2], 0);
	free(a.result);

	b.wait_n = (unsigned)world - 1;
	ask_run(&j, &b);
	assert_int_equal(b.err, -ECANCELED);
	if (!strstr(sgc_last_error(), "declined"))
		fail_msg("the message does not say why: %s", sgc_last_error());
	assert_int_equal(b.st.ndeclined, 1);
	free(b.result);
	job_close(&j);
}

static void test_declining(void **state)
{
	struct fake_faults f = { .drop_pct = 15, .dup_pct = 10 };

	declining(5, 1, NULL, 1);
	declining(5, COUNT_MANY, NULL, 2);
	declining(17, COUNT_MANY, NULL, 3);
	declining(5, COUNT_MANY, &f, 4);
	declining(17, ELEMS, &f, 5);
}

/* Ranks @dead never answer: WAIT_ALL times out naming them; WAIT_N of the
 * live workers and WAIT_ANY succeed with their answers. */
static void dead_workers(int world, const int *dead, int ndead, size_t count, const char *names)
{
	struct job j;
	struct ask a = { .policy = SGC_WIRE_WAIT_ALL, .count = count, .q0 = 3, .timeout_ms = 500 };
	struct ask b = { .policy = SGC_WIRE_WAIT_N, .count = count, .q0 = 4 };
	struct ask c = { .policy = SGC_WIRE_WAIT_ANY, .count = count, .q0 = 5 };
	char want[64];
	int i;

	job_open(&j, world, 99);
	for (i = 0; i < ndead; i++)
		fake_net_kill(dead[i]);
	ask_run(&j, &a);
	assert_int_equal(a.err, -ETIMEDOUT);
	assert_true(a.took >= 500 * 1000000ULL);
	assert_true(a.took <= 500 * 1000000ULL + 10 * LATENCY_NS);
	snprintf(want, sizeof(want), "answer from rank%s %s", ndead > 1 ? "s" : "", names);
	if (!strstr(sgc_last_error(), want))
		fail_msg("want \"%s\" in: %s", want, sgc_last_error());
	assert_int_equal(a.st.nanswered, world - 1 - ndead);
	for (i = 0; i < ndead; i++)
		assert_int_equal(a.answered[dead[i]], 0);
	free(a.result);

	b.wait_n = (unsigned)(world - 1 - ndead);
	ask_run(&j, &b);
	ask_check(&j, &b, world - 1 - ndead);
	free(b.result);
	ask_run(&j, &c);
	ask_check(&j, &c, 1);
	free(c.result);
	job_close(&j);
}

static void test_dead_worker(void **state)
{
	dead_workers(5, (const int[]){ 3 }, 1, COUNT_MANY, "3");
	dead_workers(5, (const int[]){ 3 }, 1, 1, "3");
	dead_workers(17, (const int[]){ 5, 16 }, 2, COUNT_MANY, "5, 16");
	dead_workers(17, (const int[]){ 1 }, 1, 0, "1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policies),
		cmocka_unit_test(test_loss),
		cmocka_unit_test(test_duplication),
		cmocka_unit_test(test_combined),
		cmocka_unit_test(test_declining),
		cmocka_unit_test(test_dead_worker),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
