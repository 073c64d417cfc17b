/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Loss recovery timing, one state machine for collectives and queries:
 * a deadline for the call, and a check that fires when nothing came for
 * the retransmission delay, backing off while the other side says
 * nothing.  The delay is learned from collectives that needed no resend.
 */
#ifndef SGC_RETX_H
#define SGC_RETX_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

/* Backoff doublings of the retransmission delay, at most. */
#define RETX_BACKOFF_MAX	6
/* Early NACKs and "still working" answers count as a duration of at
 * most this many RTO floors (see rtt_floor()). */
#define RTT_FLOOR_MAX		4

/* Per communicator. */
struct sgc_rtt {
	uint64_t timeout_ns;	/* a call fails after this */
	uint64_t rto_ns;	/* first retransmit delay (floor) */
	uint64_t srtt_ns;	/* smoothed time a collective takes here */
	uint64_t rto_max_ns;
};

/* Per collective or query. */
struct sgc_retx {
	uint64_t deadline;	/* the call fails after this */
	uint64_t timer;		/* next loss check */
	uint64_t last_rx;	/* last sign of progress */
	uint64_t refresh_at;	/* eBPF path: next look at the kernel's slots */
	unsigned backoff;	/* the check waits delay << backoff */
	bool resent;		/* something was sent again: no RTT sample */
};

/* The retransmission delay now: the floor, or twice what a collective
 * usually takes, so a loaded run does not mistake slowness for loss. */
static inline uint64_t rto_now(const struct sgc_rtt *t)
{
	uint64_t rto = t->rto_ns > 2 * t->srtt_ns ? t->rto_ns : 2 * t->srtt_ns;

	return rto < t->rto_max_ns ? rto : t->rto_max_ns;
}

/* Learn how long a collective takes from one that needed no resend
 * (Karn's rule: a retransmitted one would feed loss back into the RTO). */
static inline void rtt_sample(struct sgc_rtt *t, uint64_t took)
{
	t->srtt_ns = t->srtt_ns ? t->srtt_ns - t->srtt_ns / 8 + took / 8 : took;
}

/* A collective still open after @elapsed: collectives take at least that
 * long here (a lower bound, unlike a duration that included a resend). */
static inline void rtt_floor(struct sgc_rtt *t, uint64_t elapsed)
{
	if (t->srtt_ns < elapsed)
		t->srtt_ns = elapsed;
}

/* Posted at @now: first check one delay from now. */
static inline void retx_start(struct sgc_retx *x, uint64_t now, uint64_t deadline, uint64_t delay)
{
	x->deadline = deadline;
	x->last_rx = now;
	x->timer = now + delay;
	x->backoff = 0;
}

/* Progress at @now: the next check waits a whole base delay again. */
static inline void retx_heard(struct sgc_retx *x, uint64_t now)
{
	x->last_rx = now;
	x->backoff = 0;
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

static inline void retx_backoff(struct sgc_retx *x)
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

/* The earliest time the state machine needs to run again. */
static inline uint64_t retx_next(const struct sgc_retx *x)
{
	return min_u64(x->timer, x->deadline);
}

#endif /* SGC_RETX_H */
