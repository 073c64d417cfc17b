// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Pacing the workers' data towards the coordinator.  A worker sends its
 * first push_credit chunks unasked; the rest is PULLed here in rounds that
 * keep at most the budget's chunks in flight towards the coordinator,
 * summed over all workers and collectives, so that a burst never exceeds
 * what the coordinator's receive side holds (pull_pacing()).
 */
#include <errno.h>
#include <stdlib.h>

#include "comm.h"
#include "pull.h"
#include "transport.h"

/* PULL chunks [lo, lo + n) of rank @r; a rank that has sent something
 * (ps->asked set) was asked now (pull_stalled()). */
static void send_pull(struct sgc_comm *c, struct sgc_pull *ps, const struct sgc_hdr *proto,
		      int r, uint32_t lo, uint32_t n)
{
	struct sgc_hdr h = *proto;

	h.type = SGC_MSG_PULL;
	h.rank = (uint16_t)r;
	h.chunk = lo;
	h.aux = n;
	h.count = 0;
	h.flags = 0;
	h.stamp = wire_stamp(now_ns());
	send_hdr(c, &h, &c->peers[r].addr);
	if (ps->asked[r])
		ps->asked[r] = c->now;
}

bool pull_missing(struct sgc_comm *c, struct sgc_pull *ps, const struct sgc_hdr *proto,
		  const uint8_t *seen, int r, uint32_t lo, uint32_t hi)
{
	bool again = false;
	uint32_t run;

	while (lo < hi) {
		while (lo < hi && seen_test(seen, c->world, lo, r))
			lo++;
		run = lo;
		while (lo < hi && lo - run < 65535 && !seen_test(seen, c->world, lo, r))
			lo++;
		if (lo > run) {
			send_pull(c, ps, proto, r, run, lo - run);
			c->st.retransmits++;
			again = true;
		}
	}
	return again;
}

/*
 * How many chunks the workers may have in flight towards the coordinator
 * (the PULL budget) and how many each sends unasked (the push credit).
 * The eBPF path's XDP program sees every datagram, and a veth XDP receive
 * ring holds 256 frames: 192 in flight, at most 8 unasked.  The user-space
 * path's collectives are bound by what its receive side holds
 * (io_rx_room()): 192 to SGC_PULL_BUDGET_MAX, and a credit of up to one
 * GSO send, so that a 64 KiB contribution at 16 ranks goes unasked in one
 * send instead of in three PULL rounds.  Its queries keep 192 (sg.c), and
 * so does a job of more than 192 workers: its queries go in ASK rounds,
 * as they need a credit of 0.
 */
void pull_pacing(struct sgc_comm *c, bool kernel)
{
	unsigned long budget = SGC_PULL_BUDGET, cap = 8, credit;

	if (!kernel && c->world - 1 <= SGC_PULL_BUDGET) {
		budget = io_rx_room(c);
		budget = budget < SGC_PULL_BUDGET ? SGC_PULL_BUDGET :
			 budget > SGC_PULL_BUDGET_MAX ? SGC_PULL_BUDGET_MAX : budget;
		cap = GSO_MAX_SEGS;
	}
	c->pace.budget = (int)budget;
	credit = c->world > 1 ? budget / (unsigned long)(c->world - 1) : cap;
	c->pace.push_credit = (uint16_t)(credit > cap ? cap : credit);
}

int pull_init(struct sgc_comm *c, struct sgc_pull *ps, uint32_t nchunks, int budget)
{
	uint32_t credit = c->pace.push_credit < nchunks ? c->pace.push_credit : nchunks;
	int r;

	ps->to = calloc((size_t)c->world, sizeof(*ps->to));
	ps->gap = calloc((size_t)c->world, sizeof(*ps->gap));
	ps->asked = calloc((size_t)c->world, sizeof(*ps->asked));
	if (!ps->to || !ps->gap || !ps->asked) {
		pull_free(ps);
		return -ENOMEM;
	}
	for (r = 0; r < c->world; r++)
		ps->to[r] = credit;
	ps->budget = budget;
	return 0;
}

void pull_free(struct sgc_pull *ps)
{
	free(ps->to);
	free(ps->gap);
	free(ps->asked);
	ps->to = NULL;
	ps->gap = NULL;
	ps->asked = NULL;
}

void pull_more(struct sgc_comm *c, struct sgc_pull *ps, const struct sgc_hdr *proto,
	       uint32_t limit, pull_elig_fn elig, const void *obj)
{
	int budget = ps->budget - c->pace.inflight;
	int nw = c->world - 1, nremote = 0, i, span;

	if (budget <= 0 || nw <= 0)
		return;
	for (i = 1; i <= nw; i++)
		nremote += elig(obj, i) && ps->to[i] < limit;
	if (!nremote)
		return;
	span = budget / nremote;
	span = span < 1 ? 1 : span > 64 ? 64 : span;
	for (i = 0; i < nw && budget > 0; i++) {
		int r = 1 + (ps->next_rank + i) % nw;
		uint32_t n;

		if (!elig(obj, r) || ps->to[r] >= limit)
			continue;
		n = limit - ps->to[r];
		if (n > (uint32_t)span)
			n = (uint32_t)span;
		if (n > (uint32_t)budget)
			n = (uint32_t)budget;
		send_pull(c, ps, proto, r, ps->to[r], n);
		ps->to[r] += n;
		ps->out += n;
		c->pace.inflight += (int)n;
		budget -= (int)n;
		ps->next_rank = r % nw;
	}
}

struct fan_round {
	const struct sgc_pull *ps;
	pull_elig_fn elig;
	const void *obj;
	int end;		/* ranks below this are in the round */
};

static bool in_round(const void *arg, int r)
{
	const struct fan_round *fr = arg;

	return r < fr->end && !fr->ps->to[r] && fr->elig(fr->obj, r);
}

void pull_more_cloned(struct sgc_comm *c, struct sgc_pull *ps, const struct sgc_hdr *proto,
		      pull_elig_fn elig, const void *obj, struct sgc_pkt *ask)
{
	struct fan_round fr = { ps, elig, obj, 0 };
	int budget = ps->budget - c->pace.inflight, first = 0, r;
	struct sgc_pkt *p;
	struct sgc_hdr *h;

	if (budget <= 0)
		return;
	/* Ranks are asked in order, so the round is the next @budget ranks
	 * not yet asked, from the lowest one. */
	for (r = 1; r < c->world && budget > 0; r++) {
		if (ps->to[r] || !elig(obj, r))
			continue;
		if (!first)
			first = r;
		budget--;
		fr.end = r + 1;
	}
	if (!first)
		return;
	if (ask) {
		send_to_ranks(c, ask, first, in_round, &fr);
	} else {
		p = pkt_alloc(c);
		if (!p)
			return;
		h = pkt_hdr(p);
		*h = *proto;
		h->type = SGC_MSG_PULL;
		h->chunk = 0;
		h->aux = 1;
		h->count = 0;
		h->flags = 0;
		h->stamp = wire_stamp(now_ns());
		p->len = SGC_HDR_SIZE;
		send_to_ranks(c, p, first, in_round, &fr);
		pkt_put(c, p);
	}
	for (r = first; r < fr.end; r++) {
		if (!in_round(&fr, r))
			continue;
		ps->to[r] = 1;
		ps->out++;
		c->pace.inflight++;
	}
}

void pull_again(struct sgc_comm *c, struct sgc_pull *ps, const struct sgc_hdr *proto,
		const uint8_t *seen, pull_elig_fn elig, const void *obj)
{
	int r, sent = 0;

	pull_reset(c, ps);
	for (r = 1; r < c->world && sent < ps->budget; r++) {
		uint32_t ch = 0, lim = ps->to[r];

		if (!elig(obj, r))
			continue;
		while (ch < lim && sent < ps->budget) {
			uint32_t lo;

			while (ch < lim && seen_test(seen, c->world, ch, r))
				ch++;
			if (ch >= lim)
				break;
			lo = ch;
			while (ch < lim && ch - lo < 65535 &&
			       !seen_test(seen, c->world, ch, r))
				ch++;
			send_pull(c, ps, proto, r, lo, ch - lo);
			ps->out += ch - lo;
			c->pace.inflight += (int)(ch - lo);
			c->st.retransmits++;
			sent++;
		}
	}
}

bool pull_got(struct sgc_comm *c, struct sgc_pull *ps, const struct sgc_hdr *proto,
	      const uint8_t *seen, int r, uint32_t chunk)
{
	if (chunk >= c->pace.push_credit)
		pull_release(c, ps, 1);
	return pull_gaps(c, ps, proto, seen, r, chunk);
}

bool pull_gaps(struct sgc_comm *c, struct sgc_pull *ps, const struct sgc_hdr *proto,
	       const uint8_t *seen, int r, uint32_t chunk)
{
	uint32_t lo = ps->gap[r];

	/* Look for missing chunks in [gap, chunk) and ask for each run once;
	 * the original request still holds its place in the budget. */
	if (chunk <= lo)
		return false;
	ps->gap[r] = chunk;
	return pull_missing(c, ps, proto, seen, r, lo, chunk);
}

bool pull_stalled(struct sgc_comm *c, struct sgc_pull *ps, const struct sgc_hdr *proto,
		  const uint8_t *seen, int r, uint32_t lo, uint64_t wait)
{
	bool again;

	if (!ps->asked[r] || c->now - ps->asked[r] < wait)
		return false;
	again = pull_missing(c, ps, proto, seen, r, lo, ps->to[r]);
	ps->asked[r] = c->now;
	return again;
}

void pull_release(struct sgc_comm *c, struct sgc_pull *ps, uint32_t n)
{
	if (n > ps->out)
		n = ps->out;
	ps->out -= n;
	c->pace.inflight -= (int)n;
}

void pull_reset(struct sgc_comm *c, struct sgc_pull *ps)
{
	pull_release(c, ps, ps->out);
}
