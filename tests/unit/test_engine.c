// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The collectives' state machines (coordinator and worker) over the fake
 * transport (fake_net.h), in virtual time: exact results and the right
 * status for allreduce, reduce, broadcast and barrier at several world
 * and vector sizes; several collectives in flight; loss, duplication and
 * reordering; late, replayed and foreign datagrams; a dead rank; ranks
 * that disagree on the arguments.  FAKE_VERBOSE=1 prints each run's
 * traffic, losses and recoveries.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "coll.h"
#include "fake_net.h"
#include "request.h"
#include "transport.h"
#include "worker.h"

static const int worlds[] = { 2, 5, 17 };

struct job {
	int world;
	struct sgc_comm *c[FAKE_MAX_RANKS];
};

/* One collective as every rank calls it. */
struct call {
	uint8_t kind;
	size_t count;
	int root;
	enum sgc_op op;
	int tag;
	int32_t *send[FAKE_MAX_RANKS];
	int32_t *recv[FAKE_MAX_RANKS];
	struct sgc_request req[FAKE_MAX_RANKS];
	bool posted[FAKE_MAX_RANKS];
};

static void job_open(struct job *j, int world, uint64_t seed, uint16_t push_credit)
{
	struct fake_world_opts o = {
		.world = world, .chunk_bytes = CHUNK_BYTES, .timeout_ms = TIMEOUT_MS,
		.rto_ns = RTO_NS, .push_credit = push_credit,
	};

	memset(j, 0, sizeof(*j));
	j->world = world;
	fake_net_reset(seed, LATENCY_NS);
	assert_int_equal(fake_world_new(&o, j->c), 0);
}

static void job_close(struct job *j)
{
	fake_world_free(j->c, j->world);
}

static size_t many(const struct job *j)
{
	return (j->c[0]->pace.push_credit + 3) * ELEMS + 17;
}

/* Rank @r's contribution. */
static int32_t in_val(int r, size_t i, int tag)
{
	return (int32_t)((r + 1) * 1000 + (int)(i % 5000) * 3 + tag);
}

static int32_t reduced(int world, size_t i, int tag, enum sgc_op op)
{
	int32_t acc = in_val(0, i, tag);
	int r;

	for (r = 1; r < world; r++)
		acc = op == SGC_MAX ? (in_val(r, i, tag) > acc ? in_val(r, i, tag) : acc)
				    : acc + in_val(r, i, tag);
	return acc;
}

static void call_init(struct call *k, const struct job *j, uint8_t kind, size_t count, int root,
		      enum sgc_op op, int tag)
{
	int r;
	size_t i;

	memset(k, 0, sizeof(*k));
	k->kind = kind;
	k->count = count == COUNT_MANY ? many(j) : count;
	k->root = root;
	k->op = op;
	k->tag = tag;
	for (r = 0; r < j->world; r++) {
		k->send[r] = malloc((k->count + 1) * sizeof(int32_t));
		k->recv[r] = malloc((k->count + 1) * sizeof(int32_t));
		assert_non_null(k->send[r]);
		assert_non_null(k->recv[r]);
		for (i = 0; i <= k->count; i++) {
			k->send[r][i] = in_val(r, i, tag);
			/* The broadcast's root sends from its recvbuf. */
			k->recv[r][i] = kind == SGC_COLL_BCAST && r == root && i < k->count ?
					in_val(r, i, tag) : SENTINEL;
		}
	}
}

static void call_free(struct call *k, const struct job *j)
{
	int r;

	for (r = 0; r < j->world; r++) {
		free(k->send[r]);
		free(k->recv[r]);
	}
}

static void call_post(struct call *k, struct job *j, int r)
{
	assert_int_equal(coll_post(j->c[r], k->kind, k->send[r], k->recv[r], k->count, SGC_INT32,
				   k->op, k->root, &k->req[r]), 0);
	k->posted[r] = true;
}

/* Every rank that posted @k is done. */
static bool call_done(const struct call *k, const struct job *j)
{
	int r;

	for (r = 0; r < j->world; r++)
		if (k->posted[r] && !k->req[r].done)
			return false;
	return true;
}

struct calls {
	struct call *k;
	int n;
	struct job *j;
};

static bool calls_done(void *arg)
{
	const struct calls *cs = arg;
	int i;

	for (i = 0; i < cs->n; i++)
		if (!call_done(&cs->k[i], cs->j))
			return false;
	return true;
}

static bool never(void *arg)
{
	return false;
}

static bool always(void *arg)
{
	return true;
}

/* Rank @r finished @k with status 0 and exactly the right buffer. */
static void call_check(const struct call *k, const struct job *j, int r)
{
	size_t i;

	if (k->req[r].status)
		fail_msg("world %d rank %d %s of %zu: status %d (%s)", j->world, r,
			 coll_kind_name(k->kind), k->count, k->req[r].status, k->req[r].msg);
	assert_true(k->req[r].done);
	for (i = 0; i < k->count; i++) {
		int32_t want;

		switch (k->kind) {
		case SGC_COLL_ALLREDUCE:
			want = reduced(j->world, i, k->tag, k->op);
			break;
		case SGC_COLL_REDUCE:
			want = r == k->root ? reduced(j->world, i, k->tag, k->op) : SENTINEL;
			break;
		case SGC_COLL_BCAST:
			want = in_val(k->root, i, k->tag);
			break;
		default:
			want = SENTINEL;
			break;
		}
		if (k->recv[r][i] != want)
			fail_msg("world %d rank %d %s of %zu (root %d): element %zu is %d, want %d",
				 j->world, r, coll_kind_name(k->kind), k->count, k->root, i,
				 k->recv[r][i], want);
	}
	/* Nothing written past the vector. */
	assert_int_equal(k->recv[r][k->count], SENTINEL);
}

static void check_all(const struct call *k, const struct job *j)
{
	int r;

	for (r = 0; r < j->world; r++)
		call_check(k, j, r);
}

static struct sgc_stats stats_sum(const struct job *j)
{
	struct sgc_stats s = { 0 };
	int r;

	for (r = 0; r < j->world; r++) {
		s.retransmits += j->c[r]->st.retransmits;
		s.duplicates += j->c[r]->st.duplicates;
		s.late += j->c[r]->st.late;
		s.rejected += j->c[r]->st.rejected;
		s.foreign += j->c[r]->st.foreign;
		s.timeouts += j->c[r]->st.timeouts;
	}
	return s;
}

/*
 * Every rank calls @kind; @late: this rank calls only after 3 ms (-1 =
 * none), so that data may come before its call.  Checks every result and
 * that nothing is sent again without cause.
 */
static void run_one(int world, uint8_t kind, size_t count, int root, enum sgc_op op,
		    struct fake_faults *faults, uint64_t seed, int late)
{
	struct job j;
	struct call k;
	struct calls cs = { &k, 1, &j };
	struct sgc_stats s;
	int r;

	job_open(&j, world, seed, 0);
	if (faults)
		fake_net_policy(fake_random_faults, faults);
	call_init(&k, &j, kind, count, root, op, (int)seed % 7);
	/* Workers first on even seeds, the coordinator first on odd ones. */
	for (r = 0; r < world; r++) {
		int rr = seed & 1 ? r : world - 1 - r;

		if (rr != late)
			call_post(&k, &j, rr);
	}
	if (late >= 0) {
		fake_run_until(never, NULL, 3000000ULL);
		call_post(&k, &j, late);
	}
	if (!fake_run_until(calls_done, &cs, RUN_NS))
		fail_msg("world %d: %s of %zu did not finish in %llu ms of virtual time", world,
			 coll_kind_name(kind), k.count, (unsigned long long)(RUN_NS / 1000000));
	check_all(&k, &j);
	/* What is still in flight lands, and changes nothing. */
	fake_run_until(never, NULL, DRAIN_NS);
	check_all(&k, &j);
	s = stats_sum(&j);
	if (getenv("FAKE_VERBOSE"))
		fprintf(stderr, "world %d %s of %zu root %d: %llu sent, %llu dropped, %llu dup, %llu delayed, "
			"%llu retx, %llu duplicates, %llu late, %.3f ms\n", world, coll_kind_name(kind),
			k.count, root, (unsigned long long)fake_net_stats()->sent,
			(unsigned long long)fake_net_stats()->dropped,
			(unsigned long long)fake_net_stats()->duplicated,
			(unsigned long long)fake_net_stats()->delayed, (unsigned long long)s.retransmits,
			(unsigned long long)s.duplicates, (unsigned long long)s.late,
			(fake_now() - FAKE_T0) / 1e6);
	if (!faults && late < 0 && s.retransmits + s.duplicates + s.rejected + s.foreign)
		fail_msg("world %d %s of %zu: sent again with no loss: retransmits %llu, duplicates "
			 "%llu, rejected %llu, foreign %llu", world, coll_kind_name(kind), k.count,
			 (unsigned long long)s.retransmits, (unsigned long long)s.duplicates,
			 (unsigned long long)s.rejected, (unsigned long long)s.foreign);
	if (fake_net_stats()->dropped)
		assert_true(s.retransmits > 0);
	/* A second copy of data is seen as one, early or late. */
	if (fake_net_stats()->duplicated_data)
		assert_true(s.duplicates + s.late > 0);
	assert_int_equal(s.timeouts, 0);
	call_free(&k, &j);
	job_close(&j);
}

static void sizes_each(uint8_t kind, int root_sel, struct fake_faults *f, uint64_t seed)
{
	const size_t counts[] = { 0, 1, ELEMS, COUNT_MANY };
	size_t w, n;

	for (w = 0; w < sizeof(worlds) / sizeof(worlds[0]); w++) {
		for (n = 0; n < sizeof(counts) / sizeof(counts[0]); n++) {
			int world = worlds[w];
			int root = root_sel < 0 ? world - 1 : root_sel % world;

			run_one(world, kind, kind == SGC_COLL_BARRIER ? 0 : counts[n], root,
				SGC_SUM, f, seed + n, -1);
		}
	}
}

static void test_allreduce(void **state)
{
	sizes_each(SGC_COLL_ALLREDUCE, 0, NULL, 1);
	run_one(5, SGC_COLL_ALLREDUCE, COUNT_MANY, 0, SGC_MAX, NULL, 2, -1);
	/* A worker calls last: the coordinator waits for it. */
	run_one(5, SGC_COLL_ALLREDUCE, COUNT_MANY, 0, SGC_SUM, NULL, 3, 4);
	run_one(5, SGC_COLL_ALLREDUCE, COUNT_MANY, 0, SGC_SUM, NULL, 3, 0);
}

static void test_reduce(void **state)
{
	sizes_each(SGC_COLL_REDUCE, 0, NULL, 1);
	sizes_each(SGC_COLL_REDUCE, -1, NULL, 2);
	run_one(17, SGC_COLL_REDUCE, COUNT_MANY, 6, SGC_MAX, NULL, 3, -1);
}

static void test_broadcast(void **state)
{
	sizes_each(SGC_COLL_BCAST, 0, NULL, 1);
	sizes_each(SGC_COLL_BCAST, -1, NULL, 2);
	/* A receiver that calls late gets results that came before its
	 * call (staged). */
	run_one(5, SGC_COLL_BCAST, COUNT_MANY, 0, SGC_SUM, NULL, 3, 3);
	run_one(5, SGC_COLL_BCAST, COUNT_MANY, 2, SGC_SUM, NULL, 4, 4);
}

static void test_barrier(void **state)
{
	sizes_each(SGC_COLL_BARRIER, 0, NULL, 1);
	run_one(17, SGC_COLL_BARRIER, 0, 0, SGC_SUM, NULL, 3, 9);
}

/* Several collectives of every kind in flight at once, posted by every
 * rank before any progress; then driven together. */
static void inflight(int world, struct fake_faults *f, uint64_t seed)
{
	struct job j;
	struct call k[8];
	struct calls cs = { k, 8, &j };
	int i, r;

	job_open(&j, world, seed, 0);
	if (f)
		fake_net_policy(fake_random_faults, f);
	call_init(&k[0], &j, SGC_COLL_ALLREDUCE, COUNT_MANY, 0, SGC_SUM, 0);
	call_init(&k[1], &j, SGC_COLL_BCAST, 3 * ELEMS + 5, world - 1, SGC_SUM, 1);
	call_init(&k[2], &j, SGC_COLL_REDUCE, ELEMS, 1 % world, SGC_MAX, 2);
	call_init(&k[3], &j, SGC_COLL_BARRIER, 0, 0, SGC_SUM, 3);
	call_init(&k[4], &j, SGC_COLL_ALLREDUCE, 1, 0, SGC_SUM, 4);
	call_init(&k[5], &j, SGC_COLL_BCAST, COUNT_MANY, 0, SGC_SUM, 5);
	call_init(&k[6], &j, SGC_COLL_ALLREDUCE, 0, 0, SGC_SUM, 6);
	call_init(&k[7], &j, SGC_COLL_REDUCE, 2 * ELEMS, 0, SGC_SUM, 7);
	for (r = 0; r < world; r++)
		for (i = 0; i < 8; i++)
			call_post(&k[i], &j, r);
	if (!fake_run_until(calls_done, &cs, RUN_NS))
		fail_msg("world %d: 8 collectives in flight did not finish", world);
	for (i = 0; i < 8; i++) {
		check_all(&k[i], &j);
		call_free(&k[i], &j);
	}
	for (r = 0; r < world; r++)
		assert_int_equal(j.c[r]->colls.nposted, 0);
	if (f && fake_net_stats()->dropped)
		assert_true(stats_sum(&j).retransmits > 0);
	job_close(&j);
}

static void test_inflight(void **state)
{
	size_t w;

	for (w = 0; w < sizeof(worlds) / sizeof(worlds[0]); w++)
		inflight(worlds[w], NULL, 11);
}

static void test_loss(void **state)
{
	struct fake_faults f = { .drop_pct = 20 };
	uint64_t seed;

	for (seed = 100; seed < 103; seed++) {
		sizes_each(SGC_COLL_ALLREDUCE, 0, &f, seed);
		sizes_each(SGC_COLL_BCAST, -1, &f, seed);
	}
	/* Heavier: 30% of every datagram. */
	f.drop_pct = 30;
	sizes_each(SGC_COLL_REDUCE, -1, &f, 200);
	sizes_each(SGC_COLL_BARRIER, 0, &f, 201);
	/* Only results, or only contributions. */
	f.types = 1u << SGC_MSG_RESULT;
	sizes_each(SGC_COLL_ALLREDUCE, 0, &f, 300);
	f.types = 1u << SGC_MSG_CONTRIB;
	sizes_each(SGC_COLL_ALLREDUCE, 0, &f, 301);
}

static void test_duplication(void **state)
{
	struct fake_faults f = { .dup_pct = 25, .max_delay_ns = 2 * RTO_NS };

	sizes_each(SGC_COLL_ALLREDUCE, 0, &f, 400);
	sizes_each(SGC_COLL_REDUCE, -1, &f, 401);
	sizes_each(SGC_COLL_BCAST, -1, &f, 402);
	sizes_each(SGC_COLL_BARRIER, 0, &f, 403);
}

static void test_reordering(void **state)
{
	struct fake_faults f = { .delay_pct = 30, .max_delay_ns = 3 * RTO_NS };

	sizes_each(SGC_COLL_ALLREDUCE, 0, &f, 500);
	sizes_each(SGC_COLL_BCAST, 0, &f, 501);
	sizes_each(SGC_COLL_REDUCE, -1, &f, 502);
}

static void test_combined(void **state)
{
	struct fake_faults f = {
		.drop_pct = 15, .dup_pct = 10, .delay_pct = 20, .max_delay_ns = 3 * RTO_NS,
	};
	size_t w;
	uint64_t seed;

	for (seed = 600; seed < 603; seed++) {
		sizes_each(SGC_COLL_ALLREDUCE, 0, &f, seed);
		sizes_each(SGC_COLL_BCAST, -1, &f, seed);
		sizes_each(SGC_COLL_REDUCE, 1, &f, seed);
		sizes_each(SGC_COLL_BARRIER, 0, &f, seed);
	}
	for (w = 0; w < sizeof(worlds) / sizeof(worlds[0]); w++)
		for (seed = 700; seed < 703; seed++)
			inflight(worlds[w], &f, seed);
}

/* Keeps a copy of the first datagram of one type from one rank to another. */
struct capture {
	uint8_t type;
	int from, to;
	bool got;
	uint32_t len;
	uint64_t data[(SGC_HDR_SIZE + SGC_MAX_BODY) / 8 + 1];
};

static enum fake_verdict capture_policy(const struct fake_dgram_info *d, uint64_t *extra,
					void *arg)
{
	struct capture *cp = arg;
	int i;

	for (i = 0; i < 2; i++, cp++) {
		if (!cp->got && d->hdr->type == cp->type && d->from == cp->from && d->to == cp->to) {
			memcpy(cp->data, d->hdr, d->len);
			cp->len = d->len;
			cp->got = true;
		}
	}
	return FAKE_DELIVER;
}

static void run_allreduce(struct job *j, size_t count, int tag)
{
	struct call k;
	struct calls cs = { &k, 1, j };
	int r;

	call_init(&k, j, SGC_COLL_ALLREDUCE, count, 0, SGC_SUM, tag);
	for (r = 0; r < j->world; r++)
		call_post(&k, j, r);
	assert_true(fake_run_until(calls_done, &cs, RUN_NS));
	check_all(&k, j);
	call_free(&k, j);
}

/* Deliver @len bytes to @to from @from and run one round. */
static void inject(struct job *j, int to, const struct sockaddr_in *from, const void *data,
		   uint32_t len)
{
	fake_inject(j->c[to], from, data, len, 0);
	fake_run_until(always, NULL, 0);
}

static void test_late_and_foreign(void **state)
{
	struct capture cp[2] = {
		{ .type = SGC_MSG_CONTRIB, .from = 1, .to = 0 },
		{ .type = SGC_MSG_RESULT, .from = 0, .to = 2 },
	};
	struct sockaddr_in stranger, peer1;
	struct sgc_stats before, before2;
	struct sgc_hdr *h;
	uint64_t bad[sizeof(cp[0].data) / 8];
	struct job j;

	job_open(&j, 3, 42, 0);
	fake_net_policy(capture_policy, cp);
	run_allreduce(&j, 2 * ELEMS, 1);
	assert_true(cp[0].got);
	assert_true(cp[1].got);
	fake_net_policy(NULL, NULL);
	fake_addr(&peer1, 1);
	memset(&stranger, 0, sizeof(stranger));
	stranger.sin_family = AF_INET;
	stranger.sin_addr.s_addr = htonl(0x7f630001);
	stranger.sin_port = htons(5555);

	/* A replay of rank 1's contribution to the finished collective. */
	before = j.c[0]->st;
	inject(&j, 0, &peer1, cp[0].data, cp[0].len);
	assert_int_equal(j.c[0]->st.late, before.late + 1);
	assert_int_equal(j.c[0]->st.pkts_recv, before.pkts_recv + 1);
	assert_int_equal(j.c[0]->st.duplicates + j.c[0]->st.rejected + j.c[0]->st.foreign,
			 before.duplicates + before.rejected + before.foreign);
	/* The same from an address that is no rank's. */
	inject(&j, 0, &stranger, cp[0].data, cp[0].len);
	assert_int_equal(j.c[0]->st.foreign, before.foreign + 1);
	assert_int_equal(j.c[0]->st.late, before.late + 1);
	/* From rank 1's address, but of another job. */
	memcpy(bad, cp[0].data, cp[0].len);
	h = (struct sgc_hdr *)bad;
	h->job_id ^= 0x100;
	inject(&j, 0, &peer1, bad, cp[0].len);
	assert_int_equal(j.c[0]->st.foreign, before.foreign + 2);
	/* Not ours at all (bad magic). */
	h->job_id ^= 0x100;
	h->magic = 0x1234;
	inject(&j, 0, &peer1, bad, cp[0].len);
	assert_int_equal(j.c[0]->st.foreign, before.foreign + 3);
	assert_int_equal(j.c[0]->st.late, before.late + 1);
	/* An old result at a worker, from the coordinator's address. */
	before2 = j.c[2]->st;
	inject(&j, 2, &j.c[0]->self, cp[1].data, cp[1].len);
	assert_int_equal(j.c[2]->st.late, before2.late + 1);
	/* ... and from elsewhere. */
	inject(&j, 2, &stranger, cp[1].data, cp[1].len);
	assert_int_equal(j.c[2]->st.foreign, before2.foreign + 1);

	/* None of it changed anything: the next collectives are exact. */
	run_allreduce(&j, 2 * ELEMS, 2);
	run_allreduce(&j, 1, 3);
	/* The first collective's contribution again, now two collectives
	 * old: still late, and the one after it is still exact. */
	before = j.c[0]->st;
	inject(&j, 0, &peer1, cp[0].data, cp[0].len);
	assert_int_equal(j.c[0]->st.late, before.late + 1);
	run_allreduce(&j, 2 * ELEMS, 4);
	job_close(&j);
}

/*
 * The retransmission delay (retx.h): a few floors before any sample, then
 * srtt + 4 rttvar of the silences timed, never under the floor nor over
 * the cap; "still working" samples are capped at RTT_FLOOR_MAX floors, so
 * they cannot feed the delay they are capped by.
 */
static void test_rto_estimator(void **state)
{
	struct sgc_rtt t = { .rto_ns = 200000, .rto_max_ns = 250000000 };
	struct sgc_retx x = { 0 };
	int i;

	assert_int_equal(rto_now(&t), RTO_INIT_FLOORS * t.rto_ns);
	rtt_sample(&t, 0);	/* nothing timed */
	assert_int_equal(t.samples, 0);
	for (i = 0; i < 200; i++)
		rtt_sample(&t, 100000);
	assert_int_equal(t.srtt_ns, 100000);
	/* rttvar has decayed under its minimum: srtt + 4 x 50 us. */
	assert_int_equal(rto_now(&t), 100000 + 4 * RTO_VAR_MIN_NS);
	/* Jitter widens it: 100 us and 900 us in turn. */
	for (i = 0; i < 200; i++)
		rtt_sample(&t, i % 2 ? 900000 : 100000);
	assert_true(rto_now(&t) > 900000);
	assert_true(rto_now(&t) < 3000000);
	/* Long "still working" silences: capped, however many. */
	for (i = 0; i < 1000; i++)
		rtt_floor(&t, 10000000000ULL);
	assert_true(t.srtt_ns <= RTT_FLOOR_MAX * t.rto_ns);
	assert_true(rto_now(&t) <= RTT_FLOOR_MAX * t.rto_ns + 4 * RTO_VAR_MIN_NS);
	/* Small samples: never under the floor. */
	t.rto_ns = 500000;
	for (i = 0; i < 1000; i++)
		rtt_sample(&t, 1000);
	assert_int_equal(rto_now(&t), t.rto_ns);
	/* Huge ones: never over the cap. */
	for (i = 0; i < 100; i++)
		rtt_sample(&t, 10000000000ULL);
	assert_int_equal(rto_now(&t), t.rto_max_ns);
	/* An exchange's sample is its longest silence, the last included. */
	retx_start(&x, 1000, 1000000000, 5000);
	retx_heard(&x, 1300);
	retx_heard(&x, 1400);
	assert_int_equal(retx_gap(&x, 1500), 300);
	assert_int_equal(retx_gap(&x, 2000), 600);
	/* Backoff: the base delay for RETX_LINEAR_TRIES checks that find
	 * nothing, then doubled up to RETX_BACKOFF_MAX times; progress
	 * starts over.  A worker's unanswered NACK doubles at once. */
	for (i = 0; i < RETX_LINEAR_TRIES; i++) {
		retx_backoff(&x);
		assert_int_equal(retx_wait(&x, 1000), 1000);
	}
	for (i = 1; i <= RETX_BACKOFF_MAX + 2; i++) {
		retx_backoff(&x);
		assert_int_equal(retx_wait(&x, 1000),
				 1000 << (i < RETX_BACKOFF_MAX ? i : RETX_BACKOFF_MAX));
	}
	retx_heard(&x, 3000);
	assert_int_equal(retx_wait(&x, 1000), 1000);
	retx_backoff_now(&x);
	assert_int_equal(retx_wait(&x, 1000), 2000);
}

/* Drops the first RESULT to rank 2, and counts what rank 2 sends. */
struct drop_once {
	bool dropped;
	unsigned nacks;
};

static enum fake_verdict drop_first_result_to_2(const struct fake_dgram_info *d, uint64_t *extra,
						void *arg)
{
	struct drop_once *o = arg;

	if (d->from == 2 && d->hdr->type == SGC_MSG_NACK)
		o->nacks++;
	if (d->to == 2 && d->hdr->type == SGC_MSG_RESULT && !o->dropped) {
		o->dropped = true;
		return FAKE_DROP;
	}
	return FAKE_DELIVER;
}

struct rank_call {
	const struct call *k;
	int r;
};

static bool rank_done(void *arg)
{
	const struct rank_call *rc = arg;

	return rc->k->req[rc->r].done;
}

static bool others_done(void *arg)
{
	const struct calls *cs = arg;
	int r;

	for (r = 0; r < cs->j->world; r++)
		if (r != 2 && !cs->k->req[r].done)
			return false;
	return true;
}

/*
 * One collective at a time, and rank 2's result is lost.  The others go on
 * to the next collective; the coordinator PULLs rank 2 for it and, seeing
 * from rank 2's watermark that it still waits for the first result, sends
 * that result along: rank 2 has it about one coordinator delay after the
 * others finished, not after its own (longer) timer, and never NACKs.
 */
static void test_lost_result_gap_nack(void **state)
{
	struct drop_once o = { 0 };
	struct job j;
	struct call k[2];
	struct calls cs = { &k[0], 1, &j };
	struct rank_call rc = { &k[0], 2 };
	uint64_t t_others, took, own;
	int r;

	job_open(&j, 5, 41, 0);
	/* A few clean collectives first: every rank has learned its delay. */
	for (r = 0; r < 4; r++)
		run_allreduce(&j, 7, 10 + r);
	fake_net_policy(drop_first_result_to_2, &o);
	call_init(&k[0], &j, SGC_COLL_ALLREDUCE, 7, 0, SGC_SUM, 0);
	call_init(&k[1], &j, SGC_COLL_ALLREDUCE, 7, 0, SGC_SUM, 1);
	for (r = 0; r < j.world; r++)
		call_post(&k[0], &j, r);
	assert_true(fake_run_until(others_done, &cs, RUN_NS));
	assert_true(o.dropped);
	assert_false(k[0].req[2].done);
	assert_non_null(k[0].req[2].coll);
	own = worker_rto(j.c[2], k[0].req[2].coll);
	t_others = fake_now();
	for (r = 0; r < j.world; r++)
		if (r != 2)
			call_post(&k[1], &j, r);
	assert_true(fake_run_until(rank_done, &rc, RUN_NS));
	took = fake_now() - t_others;
	call_post(&k[1], &j, 2);
	cs.k = &k[1];
	assert_true(fake_run_until(calls_done, &cs, RUN_NS));
	check_all(&k[0], &j);
	check_all(&k[1], &j);
	/* Recovered with the PULL for the next collective: before rank 2's
	 * own timer would have fired, with no NACK. */
	if (took >= own)
		fail_msg("rank 2 got its lost result %llu us after the others, its own timer "
			 "is %llu us", (unsigned long long)(took / 1000),
			 (unsigned long long)(own / 1000));
	assert_int_equal(o.nacks, 0);
	call_free(&k[0], &j);
	call_free(&k[1], &j);
	job_close(&j);
}

/* Drops the first copy of result chunk 1 to rank 2. */
static enum fake_verdict drop_chunk1_to_2(const struct fake_dgram_info *d, uint64_t *extra,
					  void *arg)
{
	bool *dropped = arg;

	if (d->to == 2 && d->hdr->type == SGC_MSG_RESULT && d->hdr->chunk == 1 && !*dropped) {
		*dropped = true;
		return FAKE_DROP;
	}
	return FAKE_DELIVER;
}

/*
 * An allreduce of @nchunks chunks at 5 ranks, after a few clean ones, with
 * @policy on the net: returns how long it took to finish everywhere, and in
 * @own how long rank 2 waits on its own before it asks for a result.
 */
static uint64_t lossy_allreduce(uint32_t seed, size_t nchunks, fake_policy_fn policy, void *arg,
				uint64_t *own)
{
	struct job j;
	struct call k;
	struct calls cs = { &k, 1, &j };
	uint64_t t0, took;
	int r;

	job_open(&j, 5, seed, 0);
	for (r = 0; r < 4; r++)
		run_allreduce(&j, nchunks * ELEMS, 10 + r);
	fake_net_policy(policy, arg);
	call_init(&k, &j, SGC_COLL_ALLREDUCE, nchunks * ELEMS, 0, SGC_SUM, 0);
	t0 = fake_now();
	for (r = 0; r < j.world; r++)
		call_post(&k, &j, r);
	*own = worker_rto(j.c[2], k.req[2].coll);
	assert_true(fake_run_until(calls_done, &cs, RUN_NS));
	took = fake_now() - t0;
	check_all(&k, &j);
	call_free(&k, &j);
	job_close(&j);
	return took;
}

/*
 * A result of four chunks, the second lost on its way to rank 2: the
 * last chunk's coming tells rank 2 at once, and it has the whole result
 * a round trip later, not after its own (bulk) delay.
 */
static void test_lost_result_chunk(void **state)
{
	bool dropped = false;
	uint64_t own, took = lossy_allreduce(53, 4, drop_chunk1_to_2, &dropped, &own);

	assert_true(dropped);
	if (took >= own)
		fail_msg("rank 2 had its lost chunk %llu us after the post, its own delay is %llu us",
			 (unsigned long long)(took / 1000), (unsigned long long)(own / 1000));
}

/* Drops the first copies of result chunks 1 and 3 to rank 2, and the
 * first resend of chunk 1. */
struct drop_two {
	bool first1, first3, resent1;
};

static enum fake_verdict drop_two_to_2(const struct fake_dgram_info *d, uint64_t *extra, void *arg)
{
	struct drop_two *o = arg;
	bool *done;

	if (d->to != 2 || d->hdr->type != SGC_MSG_RESULT)
		return FAKE_DELIVER;
	if (d->hdr->chunk == 1)
		done = (d->hdr->flags & SGC_F_RETX) ? &o->resent1 : &o->first1;
	else if (d->hdr->chunk == 3 && !(d->hdr->flags & SGC_F_RETX))
		done = &o->first3;
	else
		return FAKE_DELIVER;
	if (*done)
		return FAKE_DELIVER;
	*done = true;
	return FAKE_DROP;
}

/*
 * Two chunks of eight lost, and the resend of one of them lost again:
 * when the resend of the other (the last one its NACK asked for) comes,
 * rank 2 asks again at once, and has the whole result before its own
 * delay would have let it ask a second time.
 */
static void test_lost_result_chunk_twice(void **state)
{
	struct drop_two o = { 0 };
	uint64_t own, took = lossy_allreduce(59, 8, drop_two_to_2, &o, &own);

	assert_true(o.first1 && o.first3 && o.resent1);
	if (took >= own)
		fail_msg("rank 2 had its twice-lost chunk %llu us after the post, its own delay is "
			 "%llu us", (unsigned long long)(took / 1000), (unsigned long long)(own / 1000));
}

/* Holds rank 2's NACKs back @nack_delay, and counts them and the
 * resent results to rank 2. */
struct slow_nack {
	uint64_t nack_delay;
	unsigned nacks, resent;
};

static enum fake_verdict slow_nacks_from_2(const struct fake_dgram_info *d, uint64_t *extra,
					   void *arg)
{
	struct slow_nack *o = arg;

	if (d->to == 2 && d->hdr->type == SGC_MSG_RESULT && (d->hdr->flags & SGC_F_RETX))
		o->resent++;
	if (d->from != 2 || d->hdr->type != SGC_MSG_NACK)
		return FAKE_DELIVER;
	o->nacks++;
	*extra = o->nack_delay;
	return FAKE_DELAY;
}

static bool nacked(void *arg)
{
	return ((const struct slow_nack *)arg)->nacks > 0;
}

/*
 * Rank 3 calls late, so rank 2 NACKs before the result exists, and its
 * NACK takes 50 ms to reach the coordinator (a loaded worker host): it
 * comes long after the result went out.  Its stamp says it was asked for
 * before the result was sent, so nothing is resent.  (A NACK for a result
 * that was lost is answered: test_loss.)
 */
static void test_nack_crossed_result(void **state)
{
	struct slow_nack o = { .nack_delay = 50000000ULL };
	struct job j;
	struct call k;
	struct calls cs = { &k, 1, &j };
	int r;

	job_open(&j, 5, 47, 0);
	for (r = 0; r < 4; r++)
		run_allreduce(&j, 7, 10 + r);
	fake_net_policy(slow_nacks_from_2, &o);
	call_init(&k, &j, SGC_COLL_ALLREDUCE, 7, 0, SGC_SUM, 0);
	for (r = 0; r < j.world; r++)
		if (r != 3)
			call_post(&k, &j, r);
	assert_true(fake_run_until(nacked, &o, RUN_NS));
	call_post(&k, &j, 3);
	assert_true(fake_run_until(calls_done, &cs, RUN_NS));
	/* Past the NACK's arrival, and any other rank 2 sent. */
	fake_advance(100000000ULL);
	assert_true(fake_run_until(calls_done, &cs, RUN_NS));
	check_all(&k, &j);
	if (o.resent)
		fail_msg("%u result(s) resent to rank 2 for %u NACK(s) it sent before the "
			 "result existed", o.resent, o.nacks);
	call_free(&k, &j);
	job_close(&j);
}

/* Counts the result datagrams rank 0 sends to workers, and drops
 * drop_pct percent of them. */
struct result_loss {
	unsigned drop_pct;
	uint64_t results;
};

static enum fake_verdict lose_results(const struct fake_dgram_info *d, uint64_t *extra, void *arg)
{
	struct result_loss *l = arg;

	if (d->from != 0 || d->to <= 0 || d->hdr->type != SGC_MSG_RESULT)
		return FAKE_DELIVER;
	l->results++;
	return fake_rand() % 100 < l->drop_pct ? FAKE_DROP : FAKE_DELIVER;
}

/*
 * Small results get extra copies once the workers keep asking for them
 * again (coord_complete.c), and only then: without loss each worker gets
 * each result once; with 15% of results lost, each goes out at least
 * twice, and the results stay exact.
 */
static void test_result_copies(void **state)
{
	struct result_loss l = { 0 };
	struct job j;
	int i, workers = 16;

	job_open(&j, workers + 1, 61, 0);
	fake_net_policy(lose_results, &l);
	for (i = 0; i < 100; i++)
		run_allreduce(&j, 7, i);
	assert_int_equal(l.results, 100 * (uint64_t)workers);
	assert_int_equal(j.c[0]->rloss.copies, 0);
	assert_int_equal(j.c[0]->st.retransmits, 0);

	l.drop_pct = 15;
	for (i = 0; i < 150; i++)
		run_allreduce(&j, 7, 100 + i);
	if (j.c[0]->rloss.copies < 1)
		fail_msg("15%% of results lost, and no copies: %u of %u result datagrams asked "
			 "for again", j.c[0]->rloss.lost, j.c[0]->rloss.sent);
	l.results = 0;
	for (i = 0; i < 50; i++)
		run_allreduce(&j, 7, 250 + i);
	if (l.results < 2 * 50 * (uint64_t)workers)
		fail_msg("%llu result datagrams for 50 collectives of %d workers with copies on",
			 (unsigned long long)l.results, workers);
	job_close(&j);
}

/* Would rank 0 batch its next result, were 16 collectives open and its
 * thread idle? */
static bool would_batch(struct sgc_comm *c0)
{
	uint32_t next = c0->colls.next_seq;
	bool yes;

	c0->colls.next_seq = c0->colls.base + SGC_BATCH_OPEN;
	c0->batch.busy_pm = 0;
	yes = results_batched(c0, SGC_COLL_ALLREDUCE);
	c0->colls.next_seq = next;
	return yes;
}

/*
 * On the user-space path rank 0 batches results from 16 workers up
 * (transport.c), but not while many have to be sent again: after clean
 * allreduces it would, after allreduces with 15% of the results lost it
 * would not, and with 8 workers it never would.
 */
static void test_batch_loss_rule(void **state)
{
	struct result_loss l = { 0 };
	struct job j;
	int i;

	job_open(&j, 17, 63, 0);
	fake_net_policy(lose_results, &l);
	for (i = 0; i < 100; i++)
		run_allreduce(&j, 7, i);
	if (!would_batch(j.c[0]))
		fail_msg("16 workers, no loss, and no batch: %u of %u result datagrams sent again",
			 j.c[0]->batch.resent, j.c[0]->batch.sent);
	l.drop_pct = 15;
	for (i = 0; i < 150; i++)
		run_allreduce(&j, 7, 100 + i);
	if (would_batch(j.c[0]))
		fail_msg("15%% of results lost, and still batching: %u of %u result datagrams "
			 "sent again", j.c[0]->batch.resent, j.c[0]->batch.sent);
	job_close(&j);

	job_open(&j, 9, 64, 0);
	fake_net_policy(NULL, NULL);
	for (i = 0; i < 10; i++)
		run_allreduce(&j, 7, i);
	assert_false(would_batch(j.c[0]));
	job_close(&j);
}

static enum fake_verdict drop_contribs(const struct fake_dgram_info *d, uint64_t *extra, void *arg)
{
	return d->hdr->type == SGC_MSG_CONTRIB && d->to == 0 ? FAKE_DROP : FAKE_DELIVER;
}

/*
 * An SGC_F_KERNEL RESULT off the wire, at a coordinator on the eBPF path.
 * Only notify_prog makes those, and it marks the ones it hands to the
 * socket with the load's token.  A forged one, from a worker's address,
 * for a collective not posted yet or for one in progress, with any
 * fan_first, changes nothing.
 */
static void test_forged_kernel_result(void **state)
{
	struct capture cp[2] = {
		{ .type = SGC_MSG_RESULT, .from = 0, .to = 2 },
		{ .type = SGC_MSG_MAX },
	};
	uint64_t forged[sizeof(cp[0].data) / 8];
	struct sockaddr_in peer1;
	struct sgc_stats before;
	struct sgc_hdr *h;
	int32_t *body;
	struct call k;
	struct job j;
	struct calls cs = { &k, 1, &j };
	uint32_t seq, i;
	int r;

	job_open(&j, 3, 43, 0);
	fake_net_policy(capture_policy, cp);
	run_allreduce(&j, 2 * ELEMS, 1);
	assert_true(cp[0].got);
	fake_net_policy(NULL, NULL);
	fake_bpf_on(j.c[0], true, 0x5ec12e70u);
	fake_addr(&peer1, 1);

	memcpy(forged, cp[0].data, cp[0].len);
	h = (struct sgc_hdr *)forged;
	body = (int32_t *)(h + 1);
	for (i = 0; i < h->count; i++)
		body[i] = 666;
	h->flags = SGC_F_KERNEL;
	h->rank = 0;
	h->fan_first = 2;

	/* For the next collective, which nobody has posted. */
	seq = j.c[0]->colls.next_seq;
	h->seq = seq;
	before = j.c[0]->st;
	inject(&j, 0, &peer1, forged, cp[0].len);
	assert_int_equal(j.c[0]->st.rejected, before.rejected + 1);
	assert_null(slot_find(j.c[0], seq));
	/* With a token, but the wrong one. */
	h->aux = 0x5ec12e71u;
	inject(&j, 0, &peer1, forged, cp[0].len);
	assert_int_equal(j.c[0]->st.rejected, before.rejected + 2);
	assert_null(slot_find(j.c[0], seq));
	run_allreduce(&j, 2 * ELEMS, 2);

	/* For a collective in progress whose contributions have not come. */
	fake_net_policy(drop_contribs, NULL);
	seq = j.c[0]->colls.next_seq;
	call_init(&k, &j, SGC_COLL_ALLREDUCE, 2 * ELEMS, 0, SGC_SUM, 3);
	for (r = 0; r < j.world; r++)
		call_post(&k, &j, r);
	fake_run_until(never, NULL, RTO_NS / 2);
	h->seq = seq;
	h->aux = 0;
	before = j.c[0]->st;
	inject(&j, 0, &peer1, forged, cp[0].len);
	assert_int_equal(j.c[0]->st.rejected, before.rejected + 1);
	fake_run_until(never, NULL, RTO_NS / 2);
	for (r = 0; r < j.world; r++)
		assert_false(k.req[r].done);
	fake_net_policy(NULL, NULL);
	assert_true(fake_run_until(calls_done, &cs, RUN_NS));
	check_all(&k, &j);
	call_free(&k, &j);
	run_allreduce(&j, 1, 4);
	job_close(&j);
}

/* Rank @dead never runs; every other rank calls an allreduce. */
static void dead_rank(int world, int dead, size_t count)
{
	char want[64];
	struct job j;
	struct call k;
	struct calls cs = { &k, 1, &j };
	uint64_t t0;
	int r;

	job_open(&j, world, 77, 0);
	fake_net_kill(dead);
	call_init(&k, &j, SGC_COLL_ALLREDUCE, count, 0, SGC_SUM, 0);
	t0 = fake_now();
	for (r = 0; r < world; r++)
		if (r != dead)
			call_post(&k, &j, r);
	if (!fake_run_until(calls_done, &cs, 3 * TIMEOUT_NS))
		fail_msg("world %d, rank %d dead: a live rank still waits after %u ms", world, dead,
			 3 * TIMEOUT_MS);
	/* Within the timeout, and a little for the abort to travel. */
	assert_true(fake_now() - t0 <= TIMEOUT_NS + 10 * LATENCY_NS);
	for (r = 0; r < world; r++) {
		int st = k.req[r].status;

		if (r == dead)
			continue;
		if (r == 0 || dead == 0)
			assert_int_equal(st, -ETIMEDOUT);
		else if (st != -ETIMEDOUT && st != -SGC_EABORTED)
			fail_msg("rank %d: status %d (%s), want a timeout or an abort", r, st,
				 k.req[r].msg);
	}
	if (dead) {
		snprintf(want, sizeof(want), "rank %d did not contribute", dead);
		if (!strstr(k.req[0].msg, want))
			fail_msg("the coordinator's message does not name rank %d: %s", dead,
				 k.req[0].msg);
	} else {
		for (r = 1; r < world; r++)
			if (!strstr(k.req[r].msg, "got no result from the coordinator at 127.10.0.1:7000"))
				fail_msg("rank %d's message does not name the coordinator: %s", r,
					 k.req[r].msg);
	}
	call_free(&k, &j);
	job_close(&j);
}

static void test_dead_rank(void **state)
{
	dead_rank(5, 3, COUNT_MANY);
	dead_rank(5, 3, 1);
	dead_rank(2, 1, ELEMS);
	dead_rank(17, 16, COUNT_MANY);
	dead_rank(5, 0, COUNT_MANY);
}

/* Rank 2 calls with @bad elements where the others call with @good. */
static void mismatch(size_t good, size_t bad)
{
	struct job j;
	struct call k;
	struct calls cs = { &k, 1, &j };
	int r;

	job_open(&j, 5, 88, 0);
	call_init(&k, &j, SGC_COLL_ALLREDUCE, good, 0, SGC_SUM, 0);
	for (r = 0; r < 5; r++) {
		assert_int_equal(coll_post(j.c[r], k.kind, k.send[r], k.recv[r], r == 2 ? bad : good,
					   SGC_INT32, k.op, k.root, &k.req[r]), 0);
		k.posted[r] = true;
	}
	assert_true(fake_run_until(calls_done, &cs, RUN_NS));
	assert_int_equal(k.req[0].status, -SGC_EMISMATCH);
	if (!strstr(k.req[0].msg, "rank 2"))
		fail_msg("the coordinator's message does not name rank 2: %s", k.req[0].msg);
	for (r = 1; r < 5; r++)
		assert_int_equal(k.req[r].status, -SGC_EMISMATCH);
	call_free(&k, &j);
	/* The job goes on. */
	run_allreduce(&j, good, 5);
	job_close(&j);
}

static void test_mismatch(void **state)
{
	mismatch(2 * ELEMS + 10, 2 * ELEMS + 9);	/* the last chunk differs */
	mismatch(3 * ELEMS, 1);				/* the number of chunks */
	mismatch(1, 0);
}

/*
 * One argument differs.  Rank MM_ODD calls with mc->odd, the others with
 * mc->ref; @order says who calls first.  Every rank's call fails with
 * -SGC_EMISMATCH, and every message names rank MM_ODD, the argument and
 * both values; the next allreduce is exact again.
 */
#define MM_WORLD	5
#define MM_ODD		3

struct mm_args {
	uint8_t kind;
	size_t count;
	enum sgc_dtype dt;
	enum sgc_op op;
	int root;
};

struct mm_case {
	const char *name;
	struct mm_args odd, ref;
	const char *what, *odd_says, *ref_says;
};

static const struct mm_case mm_cases[] = {
	{ "count in one chunk", { SGC_COLL_ALLREDUCE, 11, SGC_INT32, SGC_SUM, 0 },
	  { SGC_COLL_ALLREDUCE, 10, SGC_INT32, SGC_SUM, 0 }, "the count differs", "count 11", "count 10" },
	{ "count in the last chunk", { SGC_COLL_ALLREDUCE, 2 * ELEMS + 9, SGC_INT32, SGC_SUM, 0 },
	  { SGC_COLL_ALLREDUCE, 2 * ELEMS + 10, SGC_INT32, SGC_SUM, 0 }, "the count differs",
	  "count 137", "count 138" },
	{ "count in chunks", { SGC_COLL_ALLREDUCE, 5 * ELEMS, SGC_INT32, SGC_SUM, 0 },
	  { SGC_COLL_ALLREDUCE, 2 * ELEMS, SGC_INT32, SGC_SUM, 0 }, "the count differs",
	  "count 320", "count 128" },
	{ "dtype", { SGC_COLL_ALLREDUCE, 10, SGC_INT64, SGC_SUM, 0 },
	  { SGC_COLL_ALLREDUCE, 10, SGC_INT32, SGC_SUM, 0 }, "the dtype differs", "dtype int64",
	  "dtype int32" },
	{ "op", { SGC_COLL_ALLREDUCE, 10, SGC_INT32, SGC_MAX, 0 },
	  { SGC_COLL_ALLREDUCE, 10, SGC_INT32, SGC_SUM, 0 }, "the op differs", "op max", "op sum" },
	{ "count and op", { SGC_COLL_REDUCE, 11, SGC_INT32, SGC_MIN, 0 },
	  { SGC_COLL_REDUCE, 10, SGC_INT32, SGC_SUM, 0 }, "the count and op differ",
	  "count 11 and op min", "count 10 and op sum" },
	{ "broadcast root, the odd rank's own", { SGC_COLL_BCAST, 10, SGC_INT32, SGC_SUM, MM_ODD },
	  { SGC_COLL_BCAST, 10, SGC_INT32, SGC_SUM, 0 }, "the root differs", "root 3", "root 0" },
	{ "broadcast root, rank 0 against a worker", { SGC_COLL_BCAST, 10, SGC_INT32, SGC_SUM, 0 },
	  { SGC_COLL_BCAST, 10, SGC_INT32, SGC_SUM, 1 }, "the root differs", "root 0", "root 1" },
	{ "reduce root", { SGC_COLL_REDUCE, 10, SGC_INT32, SGC_SUM, 2 },
	  { SGC_COLL_REDUCE, 10, SGC_INT32, SGC_SUM, 1 }, "the root differs", "root 2", "root 1" },
	{ "barrier against allreduce", { SGC_COLL_BARRIER, 0, SGC_UINT8, SGC_SUM, 0 },
	  { SGC_COLL_ALLREDUCE, 10, SGC_INT32, SGC_SUM, 0 }, "the collective differs",
	  "called barrier", "allreduce" },
	{ "allreduce against broadcast", { SGC_COLL_ALLREDUCE, 10, SGC_INT32, SGC_SUM, 0 },
	  { SGC_COLL_BCAST, 10, SGC_INT32, SGC_SUM, 0 }, "the collective differs",
	  "called allreduce", "broadcast" },
};

enum mm_order { MM_TOGETHER, MM_ODD_FIRST, MM_ODD_LAST, MM_COORD_LAST };

static void mm_post(struct job *j, const struct mm_args *a, int r, int64_t *buf,
		    struct sgc_request *req)
{
	assert_int_equal(coll_post(j->c[r], a->kind, buf, buf + 2048, a->count, a->dt, a->op, a->root,
				   req), 0);
}

static bool mm_reqs_done(void *arg)
{
	const struct sgc_request *req = arg;
	int r;

	for (r = 0; r < MM_WORLD; r++)
		if (!req[r].done)
			return false;
	return true;
}

static void mismatch_one(const struct mm_case *mc, enum mm_order order, uint64_t seed)
{
	struct sgc_request req[MM_WORLD];
	static int64_t buf[MM_WORLD][4096];
	struct job j;
	uint64_t t0;
	char who[2][40];
	int r, k;

	job_open(&j, MM_WORLD, seed, 0);
	memset(req, 0, sizeof(req));
	memset(buf, 0, sizeof(buf));
	t0 = fake_now();
	/* Two rounds of posting: the ones that go first, then after 3 ms the
	 * rest, so that their datagrams wait for the others' calls. */
	for (k = 0; k < 2; k++) {
		for (r = 0; r < MM_WORLD; r++) {
			bool first = order == MM_TOGETHER || (order == MM_ODD_FIRST && r == MM_ODD) ||
				     (order == MM_ODD_LAST && r != MM_ODD) ||
				     (order == MM_COORD_LAST && r != 0);

			if (first == (k == 0))
				mm_post(&j, r == MM_ODD ? &mc->odd : &mc->ref, r, buf[r], &req[r]);
		}
		if (k == 0)
			fake_run_until(never, NULL, 3 * RTO_NS);
	}
	if (!fake_run_until(mm_reqs_done, req, TIMEOUT_NS + RTO_NS))
		fail_msg("%s, order %d: a rank still waits after the timeout", mc->name, order);
	assert_true(fake_now() - t0 <= TIMEOUT_NS + 10 * LATENCY_NS);
	snprintf(who[0], sizeof(who[0]), "rank %d called", MM_ODD);
	snprintf(who[1], sizeof(who[1]), "rank %d (this rank) called", MM_ODD);
	for (r = 0; r < MM_WORLD; r++) {
		const char *m = req[r].msg;

		if (req[r].status != -SGC_EMISMATCH)
			fail_msg("%s, order %d: rank %d: status %d (%s), want -SGC_EMISMATCH", mc->name,
				 order, r, req[r].status, m);
		if ((!strstr(m, who[0]) && !strstr(m, who[1])) || !strstr(m, mc->what) ||
		    !strstr(m, mc->odd_says) || !strstr(m, mc->ref_says))
			fail_msg("%s, order %d: rank %d does not name rank %d, \"%s\", \"%s\" and \"%s\": "
				 "%s", mc->name, order, r, MM_ODD, mc->what, mc->odd_says, mc->ref_says, m);
	}
	/* The job goes on. */
	run_allreduce(&j, 3 * ELEMS, 9);
	job_close(&j);
}

static void test_mismatch_args(void **state)
{
	size_t i;
	int order;

	for (i = 0; i < sizeof(mm_cases) / sizeof(mm_cases[0]); i++)
		for (order = MM_TOGETHER; order <= MM_COORD_LAST; order++)
			mismatch_one(&mm_cases[i], (enum mm_order)order, 300 + i);
}

/*
 * A broadcast's receivers finish only when every rank has called it: one
 * that has the data waits for the last rank's call, then all finish
 * exactly.
 */
static void test_broadcast_waits_for_all(void **state)
{
	struct job j;
	struct call k;
	struct calls cs = { &k, 1, &j };
	int r;

	job_open(&j, 5, 41, 0);
	call_init(&k, &j, SGC_COLL_BCAST, 3 * ELEMS, 0, SGC_SUM, 4);
	for (r = 0; r < 4; r++)
		call_post(&k, &j, r);
	fake_run_until(never, NULL, 20 * RTO_NS);
	for (r = 0; r < 4; r++)
		if (k.req[r].done)
			fail_msg("rank %d finished the broadcast before rank 4 called it (status %d: %s)", r,
				 k.req[r].status, k.req[r].msg);
	call_post(&k, &j, 4);
	assert_true(fake_run_until(calls_done, &cs, RUN_NS));
	check_all(&k, &j);
	call_free(&k, &j);
	job_close(&j);
}

/* A PULL for collective @seq to rank @r, from the coordinator's address. */
static void pull_to(struct job *j, int r, uint32_t seq, uint32_t nchunks, uint8_t dtype,
		    uint8_t op)
{
	struct sgc_hdr h;

	sgc_hdr_init(&h, SGC_MSG_PULL, FAKE_JOB_ID);
	h.seq = seq;
	h.coll = SGC_COLL_ALLREDUCE;
	h.nchunks = nchunks;
	h.dtype = dtype;
	h.op = op;
	h.rank = (uint16_t)r;
	h.aux = 1;
	inject(j, r, &j->c[0]->self, &h, sizeof(h));
}

/* fake_run_until(): the request @arg is done. */
static bool req_done(void *arg)
{
	const struct sgc_request *req = arg;

	return req->done;
}

/*
 * A PULL is checked against the collective like a RESULT: one whose
 * dtype or op differs makes a posted call tell the coordinator what this
 * rank called and wait for its abort (which does not come here: rank 0
 * never calls), then fail at its deadline with a mismatch that names
 * both sides; before the call it is rejected.
 */
static void test_pull_mismatch(void **state)
{
	struct job j;
	struct call k;
	struct sgc_stats before;
	uint32_t seq, nchunks;

	job_open(&j, 3, 99, 1);
	call_init(&k, &j, SGC_COLL_ALLREDUCE, 3 * ELEMS, 0, SGC_SUM, 0);
	call_post(&k, &j, 1);
	assert_non_null(k.req[1].coll);
	seq = k.req[1].coll->seq;
	nchunks = k.req[1].coll->nchunks;

	/* Posted: another op. */
	pull_to(&j, 1, seq, nchunks, SGC_INT32, SGC_MAX);
	assert_false(k.req[1].done);
	assert_true(fake_run_until(req_done, &k.req[1], TIMEOUT_NS + RTO_NS));
	assert_int_equal(k.req[1].status, -SGC_EMISMATCH);
	if (!strstr(k.req[1].msg, "the op differs: rank 1 (this rank) called allreduce with op sum, "
			"rank 0 with op max"))
		fail_msg("the mismatch does not name the rank and both ops: %s", k.req[1].msg);

	/* Not posted yet: a PULL like the collective is noted, one with
	 * another dtype or op is rejected. */
	pull_to(&j, 2, seq, nchunks, SGC_INT32, SGC_SUM);
	before = j.c[2]->st;
	pull_to(&j, 2, seq, nchunks, SGC_INT64, SGC_SUM);
	assert_int_equal(j.c[2]->st.rejected, before.rejected + 1);
	pull_to(&j, 2, seq, nchunks, SGC_INT32, SGC_BXOR);
	assert_int_equal(j.c[2]->st.rejected, before.rejected + 2);
	call_free(&k, &j);
	job_close(&j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allreduce),
		cmocka_unit_test(test_reduce),
		cmocka_unit_test(test_broadcast),
		cmocka_unit_test(test_barrier),
		cmocka_unit_test(test_inflight),
		cmocka_unit_test(test_loss),
		cmocka_unit_test(test_duplication),
		cmocka_unit_test(test_reordering),
		cmocka_unit_test(test_combined),
		cmocka_unit_test(test_late_and_foreign),
		cmocka_unit_test(test_forged_kernel_result),
		cmocka_unit_test(test_rto_estimator),
		cmocka_unit_test(test_lost_result_gap_nack),
		cmocka_unit_test(test_nack_crossed_result),
		cmocka_unit_test(test_lost_result_chunk),
		cmocka_unit_test(test_lost_result_chunk_twice),
		cmocka_unit_test(test_dead_rank),
		cmocka_unit_test(test_mismatch),
		cmocka_unit_test(test_mismatch_args),
		cmocka_unit_test(test_broadcast_waits_for_all),
		cmocka_unit_test(test_pull_mismatch),
		cmocka_unit_test(test_result_copies),
		cmocka_unit_test(test_batch_loss_rule),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
