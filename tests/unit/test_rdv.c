// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The coordinator's side of joining (rendezvous.c) over the fake transport
 * (fake_net.h): HELLOs and READYs are injected as a stranger could send
 * them, and what the coordinator answers is captured.  Nothing said to a
 * sender that has not been welcomed may carry the job id; a claim on a
 * rank holds only once its READY brings the job id and the HELLO's nonce.
 *
 * When the coordinator gives up (rdv_coordinator() run on its own, the
 * fake clock moving as it waits), its error names what kept the missing
 * ranks out, and each claimant is told which ranks those are and why.  A
 * worker (rdv_worker(), against a coordinator scripted by the net's
 * policy) waits for that verdict once the coordinator has said it waits.
 *
 * The fake net's comms start joined (fake_world_new()); the tests put the
 * coordinator back into the rendezvous by hand.  The coordinator's world
 * is one smaller than the net's, so that the last comm's address belongs
 * to no rank: the stranger's.
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

#include "fake_net.h"
#include "io.h"
#include "rendezvous.h"

#define NET_RANKS	5
#define WORLD		(NET_RANKS - 1)
#define STRANGER	(NET_RANKS - 1)
#define LATENCY_NS	50000ULL
/* Longer than any grace a welcomed claim gets. */
#define PAST_GRACE_NS	(5 * 1000000000ULL)

/* The coordinator's last answer to each address. */
struct answers {
	int n[NET_RANKS];
	struct sgc_hdr last[NET_RANKS];
	uint32_t body_len[NET_RANKS];	/* of the last ABORT */
	struct sgc_join_abort why[NET_RANKS];
	uint8_t missing[NET_RANKS];	/* its bitmap's first byte */
	int nwelcome[NET_RANKS];
	uint64_t welcome_job[NET_RANKS];
	int nwait[NET_RANKS];
	struct sgc_hdr wait[NET_RANKS];
};

static struct answers ans;

static enum fake_verdict record(const struct fake_dgram_info *d, uint64_t *extra, void *arg)
{
	const uint8_t *body = (const uint8_t *)d->hdr + SGC_HDR_SIZE;
	int to = d->to;

	if (d->from == 0 && to >= 0) {
		if (d->hdr->type == SGC_MSG_ABORT) {
			ans.n[to]++;
			ans.last[to] = *d->hdr;
			ans.body_len[to] = d->len - SGC_HDR_SIZE;
			if (ans.body_len[to] > sizeof(ans.why[to])) {
				memcpy(&ans.why[to], body, sizeof(ans.why[to]));
				ans.missing[to] = body[sizeof(ans.why[to])];
			}
		} else if (d->hdr->type == SGC_MSG_WELCOME) {
			ans.nwelcome[to]++;
			ans.welcome_job[to] = d->hdr->job_id;
		} else if (d->hdr->type == SGC_MSG_WAIT) {
			assert_int_equal(d->len, SGC_HDR_SIZE);
			ans.nwait[to]++;
			ans.wait[to] = *d->hdr;
		}
	}
	return FAKE_DROP;
}

struct rjob {
	struct sgc_comm *c[NET_RANKS];
	struct sgc_comm *coord;
};

/* A coordinator of WORLD ranks; @joining: back in the rendezvous, before
 * any HELLO. */
static void rjob_open(struct rjob *j, bool joining)
{
	struct fake_world_opts o = {
		.world = NET_RANKS, .chunk_bytes = 256, .timeout_ms = 2000, .rto_ns = 1000000ULL,
	};
	int r;

	memset(&ans, 0, sizeof(ans));
	fake_net_reset(7, LATENCY_NS);
	assert_int_equal(fake_world_new(&o, j->c), 0);
	fake_net_policy(record, NULL);
	j->coord = j->c[0];
	j->coord->world = WORLD;
	j->coord->cfg.world = WORLD;
	if (joining) {
		j->coord->joined = false;
		for (r = 1; r < NET_RANKS; r++)
			memset(&j->coord->peers[r], 0, sizeof(j->coord->peers[r]));
	}
}

static void rjob_close(struct rjob *j)
{
	fake_world_free(j->c, NET_RANKS);
}

static void send_to_coord(struct rjob *j, int from, const struct sgc_hdr *h)
{
	struct sockaddr_in a;

	fake_addr(&a, from);
	fake_inject(j->coord, &a, h, sizeof(*h), 0);
	io_poll(j->coord, 0);
}

static void hello_hdr(struct sgc_hdr *h, int rank, int world, uint32_t nonce)
{
	sgc_hdr_init(h, SGC_MSG_HELLO, 0);
	h->rank = (uint16_t)rank;
	h->arg = (uint16_t)world;
	h->aux = nonce;
}

/* From the address of net rank @from: "I am rank @rank of @world". */
static void hello(struct rjob *j, int from, int rank, int world, uint32_t nonce)
{
	struct sgc_hdr h;

	hello_hdr(&h, rank, world, nonce);
	send_to_coord(j, from, &h);
}

/* The same, arriving @at_ms after the rendezvous starts. */
static void hello_at(struct rjob *j, int from, int rank, int world, uint32_t nonce, unsigned at_ms)
{
	struct sockaddr_in a;
	struct sgc_hdr h;

	hello_hdr(&h, rank, world, nonce);
	fake_addr(&a, from);
	fake_inject(j->coord, &a, &h, sizeof(h), at_ms * 1000000ULL);
}

static void ready(struct rjob *j, int from, int rank, uint64_t job_id, uint32_t nonce)
{
	struct sgc_hdr h;

	sgc_hdr_init(&h, SGC_MSG_READY, job_id);
	h.rank = (uint16_t)rank;
	h.aux = nonce;
	send_to_coord(j, from, &h);
}

static bool claimed_by(struct rjob *j, int rank, int from)
{
	struct sockaddr_in a;

	fake_addr(&a, from);
	return j->coord->peers[rank].joined &&
	       j->coord->peers[rank].addr.sin_addr.s_addr == a.sin_addr.s_addr &&
	       j->coord->peers[rank].addr.sin_port == a.sin_port;
}

/* @to got one more ABORT, with @code, that echoes @nonce and hides the job. */
static void expect_abort(struct rjob *j, int to, int *seen, int code, uint32_t nonce)
{
	const struct sgc_hdr *h = &ans.last[to];

	assert_int_equal(ans.n[to], *seen + 1);
	*seen = ans.n[to];
	assert_int_equal(h->aux, code);
	if (h->job_id == j->coord->job_id)
		fail_msg("an ABORT to an unwelcomed sender (code %d) carries the job id %016llx",
			 code, (unsigned long long)h->job_id);
	assert_int_equal(h->job_id, nonce);
}

/* Item: no answer to a bad HELLO reveals the job id, before or after the
 * job started; each still tells the sender why, under its own nonce. */
static void bad_hellos(bool joining)
{
	struct rjob j;
	int seen = 0;

	rjob_open(&j, joining);
	hello(&j, STRANGER, 1, WORLD + 1, 0x1111);
	expect_abort(&j, STRANGER, &seen, EPROTO, 0x1111);
	assert_int_equal(ans.last[STRANGER].arg, WORLD);
	hello(&j, STRANGER, 0, WORLD, 0x2222);
	expect_abort(&j, STRANGER, &seen, EADDRINUSE, 0x2222);
	if (!joining) {
		/* A joined rank's address, claiming another rank. */
		seen = ans.n[1];
		hello(&j, 1, 2, WORLD, 0x3333);
		expect_abort(&j, 1, &seen, EADDRINUSE, 0x3333);
		/* Another address, claiming a joined rank. */
		seen = ans.n[STRANGER];
		hello(&j, STRANGER, 2, WORLD, 0x4444);
		expect_abort(&j, STRANGER, &seen, EADDRINUSE, 0x4444);
		assert_true(claimed_by(&j, 2, 2));
	}
	rjob_close(&j);
}

static void test_abort_hides_job_id(void **state)
{
	bad_hellos(true);
	bad_hellos(false);
}

/* A READY before any WELCOME, with a guessed job id, claims nothing. */
static void test_ready_unwelcomed(void **state)
{
	struct rjob j;

	rjob_open(&j, true);
	ready(&j, STRANGER, 1, 0x1234, 0);
	ready(&j, STRANGER, 2, j.coord->job_id, 0);
	hello(&j, 1, 1, WORLD, 0x11);
	hello(&j, 2, 2, WORLD, 0x22);
	assert_int_equal(ans.n[1] + ans.n[2], 0);
	assert_true(claimed_by(&j, 1, 1));
	assert_true(claimed_by(&j, 2, 2));
	rjob_close(&j);
}

/* A HELLO from a stranger first does not keep the real worker out. */
static void test_spoofed_hello(void **state)
{
	struct rjob j;

	rjob_open(&j, true);
	hello(&j, STRANGER, 1, WORLD, 0x5);
	hello(&j, 1, 1, WORLD, 0x11);
	assert_int_equal(ans.n[1], 0);
	assert_true(claimed_by(&j, 1, 1));
	/* A stranger on a worker's address with another rank: no lock-out
	 * either, while neither claim is confirmed. */
	hello(&j, 2, 3, WORLD, 0x6);
	hello(&j, 2, 2, WORLD, 0x22);
	assert_int_equal(ans.n[2], 0);
	assert_true(claimed_by(&j, 2, 2));
	assert_false(j.coord->peers[3].joined);
	rjob_close(&j);
}

/*
 * After the WELCOME: a claim holds once its READY brings the job id and
 * the nonce of the welcomed HELLO.  Until then, another address's HELLO is
 * kept waiting for a while, then takes the rank over.
 */
static void test_welcomed_claim(void **state)
{
	struct rjob j;
	uint64_t job;
	int r, seen;

	rjob_open(&j, true);
	for (r = 1; r < WORLD; r++)
		hello(&j, r, r, WORLD, 0x10 * (uint32_t)r);
	/* rdv_coordinator() welcomes everyone; a repeated HELLO (a lost
	 * WELCOME) is answered with one. */
	j.coord->joined = true;
	for (r = 1; r < WORLD; r++) {
		hello(&j, r, r, WORLD, 0x10 * (uint32_t)r);
		assert_true(ans.nwelcome[r] > 0);
	}
	job = ans.welcome_job[1];
	assert_int_equal(job, j.coord->job_id);

	/* Rank 1: READYs with the wrong nonce and the wrong job id. */
	ready(&j, 1, 1, job, 0x99);
	ready(&j, 1, 1, job ^ 1, 0x10);
	/* Rank 2: the right READY. */
	ready(&j, 2, 2, job, 0x20);

	/* Just after the welcome, a competing HELLO waits, for any rank. */
	hello(&j, STRANGER, 1, WORLD, 0x7);
	assert_true(claimed_by(&j, 1, 1));
	assert_int_equal(ans.n[STRANGER], 0);

	fake_advance(PAST_GRACE_NS);
	/* Rank 2 is confirmed: the stranger is told, under its own nonce. */
	seen = ans.n[STRANGER];
	hello(&j, STRANGER, 2, WORLD, 0x8);
	expect_abort(&j, STRANGER, &seen, EADDRINUSE, 0x8);
	assert_true(claimed_by(&j, 2, 2));
	/* Rank 1 never confirmed: its claim gives way, and the new claimant
	 * is welcomed. */
	hello(&j, STRANGER, 1, WORLD, 0x9);
	assert_int_equal(ans.n[STRANGER], seen);
	assert_true(claimed_by(&j, 1, STRANGER));
	assert_true(ans.nwelcome[STRANGER] > 0);
	rjob_close(&j);
}

/* ---- the coordinator gives up ---- */

/* @to's last ABORT: @code under @nonce, from a coordinator that gave up
 * waiting @missing_bits (ranks 0..7) out. */
static void expect_verdict(struct rjob *j, int to, int code, uint32_t nonce, uint8_t missing_bits)
{
	const struct sgc_join_abort *w = &ans.why[to];

	assert_int_equal(ans.n[to], 1);
	assert_int_equal(ans.last[to].aux, code);
	assert_int_equal(ans.last[to].job_id, nonce);
	assert_int_equal(ans.body_len[to], sizeof(*w) + 1);
	assert_int_equal(w->timeout_ms, 2000);
	assert_int_equal(w->world, WORLD);
	assert_int_equal(w->nbits, WORLD);
	assert_int_equal(w->missing, __builtin_popcount(missing_bits));
	assert_int_equal(ans.missing[to], missing_bits);
}

static void expect_error(int err, int code, const char *text)
{
	assert_int_equal(err, code);
	if (!strstr(sgc_last_error(), text))
		fail_msg("error \"%s\" does not say \"%s\"", sgc_last_error(), text);
}

/* Ranks 1 and 2 came, 3 did not: each of them waits, then is told it is
 * rank 3. */
static void test_give_up_missing(void **state)
{
	struct rjob j;
	int err;

	rjob_open(&j, true);
	hello_at(&j, 1, 1, WORLD, 0x11, 1);
	hello_at(&j, 2, 2, WORLD, 0x22, 2);
	hello_at(&j, 1, 1, WORLD, 0x11, 500);	/* again: waits again */
	err = rdv_coordinator(j.coord);
	expect_error(err, -ETIMEDOUT, "(missing ranks: 3): start it with SGC_COORDINATOR=");
	assert_int_equal(fake_now() - FAKE_T0, TIMEOUT_NS);

	/* "Waiting for one more, for 1500 ms", under the HELLO's nonce. */
	assert_int_equal(ans.nwait[1], 2);
	assert_int_equal(ans.nwait[2], 1);
	assert_int_equal(ans.wait[1].job_id, 0x11);
	assert_int_equal(ans.wait[1].rank, 1);
	assert_int_equal(ans.wait[1].arg, 1);
	assert_int_equal(ans.wait[1].aux, 1500);
	assert_int_equal(ans.wait[2].job_id, 0x22);
	assert_int_equal(ans.wait[2].arg, 1);

	expect_verdict(&j, 1, ETIMEDOUT, 0x11, 1 << 3);
	expect_verdict(&j, 2, ETIMEDOUT, 0x22, 1 << 3);
	assert_int_equal(ans.why[1].cause, 0);
	assert_int_equal(ans.n[3], 0);
	rjob_close(&j);
}

/* Rank 2 believes in 5 ranks: refused at once, and named as the cause. */
static void test_give_up_world_size(void **state)
{
	struct rjob j;
	int r, err;

	rjob_open(&j, true);
	hello_at(&j, 1, 1, WORLD, 0x11, 1);
	hello_at(&j, 2, 2, WORLD + 1, 0x22, 2);
	hello_at(&j, 3, 3, WORLD, 0x33, 3);
	err = rdv_coordinator(j.coord);
	expect_error(err, -EPROTO, "rank 2 was started with SGC_WORLD_SIZE=5 but rank 0 has 4");
	assert_non_null(strstr(sgc_last_error(), "missing ranks: 2"));

	/* Rank 2 was told at its HELLO, and only then. */
	assert_int_equal(ans.n[2], 1);
	assert_int_equal(ans.last[2].aux, EPROTO);
	assert_int_equal(ans.last[2].arg, WORLD);
	assert_int_equal(ans.last[2].job_id, 0x22);
	assert_int_equal(ans.body_len[2], 0);
	for (r = 1; r <= 3; r += 2) {
		expect_verdict(&j, r, ETIMEDOUT, 0x11 * (uint32_t)r, 1 << 2);
		assert_int_equal(ans.why[r].cause, EPROTO);
		assert_int_equal(ans.why[r].cause_rank, 2);
		assert_int_equal(ans.why[r].cause_world, WORLD + 1);
	}
	rjob_close(&j);
}

/* Net ranks 1 and 3 were both started as rank 1, and take it from each
 * other at every HELLO: -EADDRINUSE naming both, each told of the other. */
static void test_give_up_duplicate(void **state)
{
	struct sockaddr_in a1, a3;
	struct rjob j;
	int err;

	rjob_open(&j, true);
	hello_at(&j, 1, 1, WORLD, 0x11, 1);
	hello_at(&j, 3, 1, WORLD, 0x33, 2);
	hello_at(&j, 2, 2, WORLD, 0x22, 3);
	hello_at(&j, 1, 1, WORLD, 0x11, 300);
	hello_at(&j, 3, 1, WORLD, 0x33, 600);
	err = rdv_coordinator(j.coord);
	expect_error(err, -EADDRINUSE, "rank 1 was claimed from two addresses, 127.10.0.2:7001 and "
		     "127.10.0.4:7003: two processes were started with SGC_RANK=1");
	assert_non_null(strstr(sgc_last_error(), "missing ranks: 3"));

	fake_addr(&a1, 1);
	fake_addr(&a3, 3);
	expect_verdict(&j, 1, EADDRINUSE, 0x11, 1 << 3);
	assert_int_equal(ans.last[1].arg, 1);
	assert_int_equal(ans.why[1].other_addr, a3.sin_addr.s_addr);
	assert_int_equal(ans.why[1].other_port, a3.sin_port);
	expect_verdict(&j, 3, EADDRINUSE, 0x33, 1 << 3);
	assert_int_equal(ans.why[3].other_addr, a1.sin_addr.s_addr);
	assert_int_equal(ans.why[3].other_port, a1.sin_port);
	/* The bystander learns who is missing, and why. */
	expect_verdict(&j, 2, ETIMEDOUT, 0x22, 1 << 3);
	assert_int_equal(ans.why[2].cause, EADDRINUSE);
	assert_int_equal(ans.why[2].cause_rank, 1);
	assert_int_equal(ans.why[2].other_port, 0);
	rjob_close(&j);
}

/* ---- a worker waits for the verdict ---- */

/* A coordinator played by the net's policy: it answers rank 1's HELLOs
 * with WAITs, if @wait, until it gives up at @give_up_ms, and then sends
 * an ABORT naming rank 3, if @verdict.  @nonce: what it echoes (0 = the
 * HELLO's). */
static struct script {
	bool wait, verdict;
	unsigned give_up_ms;
	uint32_t nonce;
	int hellos;
} sc;

static void script_send(struct sgc_comm *w, const void *data, size_t len, uint64_t at)
{
	struct sockaddr_in coord;

	fake_addr(&coord, 0);
	fake_inject(w, &coord, data, len, at - fake_now());
}

static enum fake_verdict script(const struct fake_dgram_info *d, uint64_t *extra, void *arg)
{
	struct sgc_comm *w = arg;
	uint64_t now = fake_now(), give_up = FAKE_T0 + sc.give_up_ms * 1000000ULL;
	uint32_t nonce = sc.nonce ? sc.nonce : d->hdr->aux;
	struct sgc_hdr h;

	if (d->to != 0 || d->hdr->type != SGC_MSG_HELLO)
		return FAKE_DROP;
	if (sc.hellos++ == 0 && sc.verdict) {
		struct {
			struct sgc_hdr h;
			struct sgc_join_abort why;
			uint8_t bits;
		} __attribute__((packed)) a = {
			.why = { .timeout_ms = sc.give_up_ms, .world = WORLD, .missing = 1,
				 .nbits = WORLD },
			.bits = 1 << 3,
		};

		sgc_hdr_init(&a.h, SGC_MSG_ABORT, nonce);
		a.h.aux = ETIMEDOUT;
		script_send(w, &a, sizeof(a), give_up + LATENCY_NS);
	}
	if (sc.wait && now < give_up) {
		sgc_hdr_init(&h, SGC_MSG_WAIT, nonce);
		h.rank = 1;
		h.arg = 1;
		h.aux = (uint32_t)((give_up - now) / 1000000ULL);
		script_send(w, &h, sizeof(h), now + 2 * LATENCY_NS);
	}
	return FAKE_DROP;
}

/* Rank 1 (timeout 2000 ms) against the script: rdv_worker()'s result,
 * and in @ms how long it took. */
static int worker_against(struct script s, uint64_t *ms)
{
	struct rjob j;
	struct sgc_comm *w;
	int err;

	rjob_open(&j, false);
	w = j.c[1];
	w->joined = false;
	w->world = w->cfg.world = WORLD;
	sc = s;
	fake_net_policy(script, w);
	err = rdv_worker(w);
	*ms = (fake_now() - FAKE_T0) / 1000000ULL;
	rjob_close(&j);
	return err;
}

/* The coordinator started later, so it gives up after the worker's own
 * timeout: the worker waits for it, and says what it said. */
static void test_worker_waits_for_verdict(void **state)
{
	uint64_t ms;
	int err;

	err = worker_against((struct script){ .wait = true, .verdict = true, .give_up_ms = 3000 }, &ms);
	expect_error(err, -ETIMEDOUT, "the coordinator at 127.10.0.1:7000 gave up: rank 3 did not "
		     "join within 3000 ms: start it with SGC_COORDINATOR=127.10.0.1:7000 and "
		     "SGC_WORLD_SIZE=4");
	assert_true(ms >= 3000 && ms < 3100);
}

/* The verdict is lost: past it, the worker still does not say that the
 * coordinator never answered. */
static void test_worker_verdict_lost(void **state)
{
	uint64_t ms;
	int err;

	err = worker_against((struct script){ .wait = true, .give_up_ms = 3000 }, &ms);
	expect_error(err, -ETIMEDOUT, "the coordinator at 127.10.0.1:7000 is running, but was still "
		     "waiting for 1 other rank");
	assert_null(strstr(sgc_last_error(), "no answer"));
	assert_int_equal(ms, 3500);	/* + VERDICT_GRACE_NS */
	/* A coordinator that would wait much longer holds it 2 timeouts. */
	err = worker_against((struct script){ .wait = true, .give_up_ms = 60000 }, &ms);
	assert_int_equal(err, -ETIMEDOUT);
	assert_int_equal(ms, 2 * TIMEOUT_MS);
}

/* WAITs and ABORTs that do not echo the HELLO's nonce are a stranger's:
 * the worker keeps its own timeout and says it heard nothing. */
static void test_worker_ignores_strangers(void **state)
{
	uint64_t ms;
	int err;

	err = worker_against((struct script){ .wait = true, .verdict = true, .give_up_ms = 1000,
					      .nonce = 0x5eed }, &ms);
	expect_error(err, -ETIMEDOUT, "no answer from the coordinator at 127.10.0.1:7000");
	assert_int_equal(ms, TIMEOUT_MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abort_hides_job_id),
		cmocka_unit_test(test_ready_unwelcomed),
		cmocka_unit_test(test_spoofed_hello),
		cmocka_unit_test(test_welcomed_claim),
		cmocka_unit_test(test_give_up_missing),
		cmocka_unit_test(test_give_up_world_size),
		cmocka_unit_test(test_give_up_duplicate),
		cmocka_unit_test(test_worker_waits_for_verdict),
		cmocka_unit_test(test_worker_verdict_lost),
		cmocka_unit_test(test_worker_ignores_strangers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
