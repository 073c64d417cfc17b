/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Loss recovery timing, one state machine for collectives and queries:
 * a deadline for the call, and a check that fires when nothing came for
 * the retransmission delay, backing off while the other side says
 * nothing.
 *
 * The delay is learned per exchange, as TCP learns its RTO: what is timed
 * is the longest silence one side saw inside an exchange that needed no
 * resend (post to first answer, then between answers), smoothed into
 * srtt and rttvar; the delay is srtt + 4 rttvar, never below the floor.
 * A silence is what the loss check measures too, so a collective that
 * waits for a slow rank does not learn a longer delay than the gaps it
 * really sees.
 */
#ifndef SGC_RETX_H
#define SGC_RETX_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

/* Backoff doublings of the retransmission delay, at most. */
#define RETX_BACKOFF_MAX	6
/* Checks that find nothing before the delay starts doubling (see
 * retx_backoff()). */
#define RETX_LINEAR_TRIES	3
/* Early NACKs and "still working" answers count as a silence of at
 * most this many floors (see rtt_floor()). */
#define RTT_FLOOR_MAX		4
/* The delay before the first sample: the floor times this. */
#define RTO_INIT_FLOORS		8
/* A collective of more than one chunk waits at least this many floors
 * before a PULL or NACK (rto_bulk()). */
#define RTO_BULK_FLOORS		20
/* rttvar never counts for less than this (timer and wake-up jitter). */
#define RTO_VAR_MIN_NS		50000ULL

/* Per communicator. */
struct sgc_rtt {
	uint64_t timeout_ns;	/* a call fails after this */
	uint64_t rto_ns;	/* the floor of the delay (SGC_RTO_US) */
	uint64_t srtt_ns;	/* smoothed longest silence of an exchange */
	uint64_t rttvar_ns;	/* its smoothed mean deviation */
	uint64_t rto_max_ns;
	uint64_t samples;
	uint64_t bulk_ns;	/* smoothed duration of a clean multi-chunk collective */
};

/* Per collective or query. */
struct sgc_retx {
	uint64_t deadline;	/* the call fails after this */
	uint64_t timer;		/* next loss check */
	uint64_t last_rx;	/* last sign of progress */
	uint64_t gap_max;	/* longest silence so far (the RTT sample) */
	uint64_t refresh_at;	/* eBPF path: next look at the kernel's slots */
	unsigned backoff;	/* the check waits delay << backoff */
	unsigned tries;		/* quiet checks at the base delay so far */
	bool resent;		/* something was sent again: no RTT sample */
};

/* @rto, at least @min, never over the cap. */
static inline uint64_t rto_at_least(const struct sgc_rtt *t, uint64_t rto, uint64_t min)
{
	if (rto < min)
		rto = min;
	return rto < t->rto_max_ns ? rto : t->rto_max_ns;
}

/* What the samples say: srtt + 4 rttvar (rttvar at least RTO_VAR_MIN_NS);
 * 0 before any sample. */
static inline uint64_t rtt_learned(const struct sgc_rtt *t)
{
	uint64_t var = t->rttvar_ns > RTO_VAR_MIN_NS ? t->rttvar_ns : RTO_VAR_MIN_NS;

	return t->samples ? t->srtt_ns + 4 * var : 0;
}

/* The retransmission delay now: rtt_learned(), within the floor and the
 * cap; before any sample, a few floors. */
static inline uint64_t rto_now(const struct sgc_rtt *t)
{
	return rto_at_least(t, t->samples ? rtt_learned(t) : RTO_INIT_FLOORS * t->rto_ns, t->rto_ns);
}

/*
 * @rto for a collective of @nchunks.  Many chunks come paced by PULLs,
 * many ranks' at once, and the gaps between them on a busy host are not
 * what one exchange's silence teaches: at the 200 us floor, 65 ranks'
 * 64 KiB allreduces were PULLed again half of the time.  Those wait at
 * least RTO_BULK_FLOORS floors (4 ms by default, the old fixed floor) and
 * twice what a clean multi-chunk collective takes here, as before;
 * single-chunk collectives, where a lost datagram costs the most time
 * relatively, keep the learned delay.
 */
static inline uint64_t rto_bulk(const struct sgc_rtt *t, uint64_t rto, uint32_t nchunks)
{
	uint64_t bulk = RTO_BULK_FLOORS * t->rto_ns;

	if (bulk < 2 * t->bulk_ns)
		bulk = 2 * t->bulk_ns;
	return nchunks > 1 ? rto_at_least(t, rto, bulk) : rto;
}

/* A clean multi-chunk collective took @took. */
static inline void rtt_bulk_sample(struct sgc_rtt *t, uint64_t took)
{
	t->bulk_ns = t->bulk_ns ? t->bulk_ns - t->bulk_ns / 8 + took / 8 : took;
}

/* Learn from one exchange that needed no resend (Karn's rule: one that
 * did would feed the loss back into the delay).  Gains 1/8 and 1/4. */
static inline void rtt_sample(struct sgc_rtt *t, uint64_t gap)
{
	/* Everything was here before we looked: nothing was timed. */
	if (!gap)
		return;
	if (!t->samples++) {
		t->srtt_ns = gap;
		t->rttvar_ns = gap / 2;
		return;
	}
	t->rttvar_ns = t->rttvar_ns - t->rttvar_ns / 4 +
		       (gap > t->srtt_ns ? gap - t->srtt_ns : t->srtt_ns - gap) / 4;
	t->srtt_ns = t->srtt_ns - t->srtt_ns / 8 + gap / 8;
}

/* An exchange still open after a silence of @gap that was not a loss (the
 * other side said it is still working, or a first send came after our
 * resend): a sample, capped at RTT_FLOOR_MAX floors.  Under loss that
 * silence includes the recovery of someone else's datagram, and a cap
 * that grew with the delay would let the delay feed itself. */
static inline void rtt_floor(struct sgc_rtt *t, uint64_t gap)
{
	uint64_t cap = RTT_FLOOR_MAX * t->rto_ns;

	rtt_sample(t, gap < cap ? gap : cap);
}

/* Silences are timed from @now on: what came before was not an exchange
 * that loss could stall (before the post; the wait for a long
 * result's first chunk). */
static inline void retx_gaps_from(struct sgc_retx *x, uint64_t now)
{
	x->last_rx = now;
	x->gap_max = 0;
}

/* Posted at @now: first check one delay from now. */
static inline void retx_start(struct sgc_retx *x, uint64_t now, uint64_t deadline, uint64_t delay)
{
	x->deadline = deadline;
	retx_gaps_from(x, now);
	x->timer = now + delay;
	x->backoff = 0;
	x->tries = 0;
}

/* Progress at @now: the next check waits a whole base delay again. */
static inline void retx_heard(struct sgc_retx *x, uint64_t now)
{
	if (now > x->last_rx && now - x->last_rx > x->gap_max)
		x->gap_max = now - x->last_rx;
	x->last_rx = now;
	x->backoff = 0;
	x->tries = 0;
}

/* The call's time is up. */
static inline bool retx_expired(const struct sgc_retx *x, uint64_t now)
{
	return now >= x->deadline;
}

/* The loss check is due. */
static inline bool retx_due(const struct sgc_retx *x, uint64_t now)
{
	return now >= x->timer;
}

/* How long to wait for progress: the base delay, backed off. */
static inline uint64_t retx_wait(const struct sgc_retx *x, uint64_t base)
{
	return base << x->backoff;
}

/* Nothing for @wait since the last progress. */
static inline bool retx_quiet(const struct sgc_retx *x, uint64_t now, uint64_t wait)
{
	return now - x->last_rx >= wait;
}

/*
 * Another quiet check found nothing.  The first RETX_LINEAR_TRIES keep
 * the base delay, then it doubles, as Linux's linear timeouts for thin
 * TCP streams do: a collective has a datagram or two in flight per rank,
 * so a loss is found by the timer alone, and at 10% loss a resend that
 * was lost too made the next wait twice as long.  65 ranks, 10% loss:
 * see bench/results/loss-2026-12-06.
 */
static inline void retx_backoff(struct sgc_retx *x)
{
	if (x->tries < RETX_LINEAR_TRIES)
		x->tries++;
	else if (x->backoff < RETX_BACKOFF_MAX)
		x->backoff++;
}

/* Double the delay at once: a worker's NACK to a coordinator that said
 * nothing since its last one.  With 64 in flight a stalled coordinator
 * is the common case, and three NACKs per collective at the base delay
 * tripled its resends (33 ranks: 0.7-1.4% of what it sent, 1.8% with
 * them). */
static inline void retx_backoff_now(struct sgc_retx *x)
{
	if (x->backoff < RETX_BACKOFF_MAX)
		x->backoff++;
}

/* After a resend at @now: check again one (backed-off) delay later. */
static inline void retx_resent(struct sgc_retx *x, uint64_t now, uint64_t base)
{
	x->resent = true;
	x->timer = now + (base << x->backoff);
}

/* Not quiet yet: check when it would be, @wait after the last progress. */
static inline void retx_rearm(struct sgc_retx *x, uint64_t wait)
{
	x->timer = x->last_rx + wait;
}

/* The exchange's RTT sample at @now: its longest silence, the last one
 * (up to @now) included. */
static inline uint64_t retx_gap(const struct sgc_retx *x, uint64_t now)
{
	uint64_t last = now > x->last_rx ? now - x->last_rx : 0;

	return last > x->gap_max ? last : x->gap_max;
}

/* The earliest time the state machine needs to run again. */
static inline uint64_t retx_next(const struct sgc_retx *x)
{
	return min_u64(x->timer, x->deadline);
}

/*
 * The coordinator's stamps (sgc_hdr.stamp): its clock in microseconds,
 * modulo 2^32, never 0 (0 is "not said").  Compared as TCP compares
 * sequence numbers, so they may wrap.
 */
static inline uint32_t wire_stamp(uint64_t ns)
{
	uint32_t s = (uint32_t)(ns / 1000);

	return s ? s : 1;
}

/* Stamp @s plus @ns. */
static inline uint32_t stamp_after(uint32_t s, uint64_t ns)
{
	uint32_t t = s + (uint32_t)(ns / 1000);

	return t ? t : 1;
}

/* @a is earlier than @b. */
static inline bool stamp_before(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

#endif /* SGC_RETX_H */
