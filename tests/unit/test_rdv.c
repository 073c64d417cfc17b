// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The coordinator's side of joining (rendezvous.c) over the fake transport
 * (fake_net.h): HELLOs and READYs are injected as a stranger could send
 * them, and what the coordinator answers is captured.  Nothing said to a
 * sender that has not been welcomed may carry the job id; a claim on a
 * rank holds only once its READY brings the job id and the HELLO's nonce.
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
	int nwelcome[NET_RANKS];
	uint64_t welcome_job[NET_RANKS];
};

static struct answers ans;

static enum fake_verdict record(const struct fake_dgram_info *d, uint64_t *extra, void *arg)
{
	if (d->from == 0 && d->to >= 0) {
		if (d->hdr->type == SGC_MSG_ABORT) {
			ans.n[d->to]++;
			ans.last[d->to] = *d->hdr;
		} else if (d->hdr->type == SGC_MSG_WELCOME) {
			ans.nwelcome[d->to]++;
			ans.welcome_job[d->to] = d->hdr->job_id;
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

/* From the address of net rank @from: "I am rank @rank of @world". */
static void hello(struct rjob *j, int from, int rank, int world, uint32_t nonce)
{
	struct sgc_hdr h;

	sgc_hdr_init(&h, SGC_MSG_HELLO, 0);
	h.rank = (uint16_t)rank;
	h.arg = (uint16_t)world;
	h.aux = nonce;
	send_to_coord(j, from, &h);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abort_hides_job_id),
		cmocka_unit_test(test_ready_unwelcomed),
		cmocka_unit_test(test_spoofed_hello),
		cmocka_unit_test(test_welcomed_claim),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
