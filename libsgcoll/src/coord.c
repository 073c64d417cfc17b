// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The coordinator's side of a collective on the user-space path.
 *
 * A contribution chunk is checked (source, consistency, duplicate),
 * reduced into the chunk's accumulator, which is also the result
 * datagram; when all contributors are in, the chunk is sent to the
 * receivers (coord_complete.c).  Chunks past the workers' push credit are
 * PULLed in paced rounds.  Quiet collectives get their missing chunks
 * PULLed again.  Results are retained until every worker's watermark has
 * passed them.  With the eBPF path, coord_kernel.c stands in for the
 * reduction.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coll.h"
#include "coord.h"
#include "sg.h"
#include "sgc_common.h"
#include "transport.h"

struct miss_ctx {
	struct sgc_comm *c;
	struct sgc_coll *co;
};

static bool coord_rank_missing(const void *arg, int r)
{
	const struct miss_ctx *m = arg;
	struct sgc_comm *c = m->c;
	struct sgc_coll *co = m->co;
	uint32_t ch;

	if (!is_contributor(co, r))
		return false;
	for (ch = 0; ch < co->nchunks; ch++)
		if (!seen_test(co->seen, c->world, ch, r))
			return true;
	return false;
}

/*
 * A rank that left a chunk it was asked for (or pushes unasked) out.  The
 * others may miss chunks only because the PULL budget waits behind it:
 * they did answer, so the timeout names just the silent ones.
 */
static bool coord_rank_silent(const void *arg, int r)
{
	const struct miss_ctx *m = arg;
	struct sgc_coll *co = m->co;
	uint32_t ch, lim = co->pull.to ? co->pull.to[r] : co->nchunks;

	if (!is_contributor(co, r))
		return false;
	for (ch = 0; ch < lim && ch < co->nchunks; ch++)
		if (!seen_test(co->seen, m->c->world, ch, r))
			return true;
	return false;
}

/* A broadcast's rank that has not said it called it. */
static bool coord_rank_absent(const void *arg, int r)
{
	const struct miss_ctx *m = arg;

	return m->co->present && !bit_test(m->co->present, r);
}

static void coord_send_done(struct sgc_comm *c, struct sgc_coll *co, int r)
{
	struct sgc_hdr h;

	coll_hdr(c, &h, SGC_MSG_RESULT, co, r);
	h.flags = SGC_F_DONE | SGC_F_RETX;
	h.stamp = wire_stamp(now_ns());
	send_to_rank(c, &h, r);
}

/* Chunk @ch of @co's result again to rank @r, marked as a resend: a worker
 * that gets the first copy after all learns how long collectives take. */
static void coord_resend_result(struct sgc_comm *c, struct sgc_coll *co, uint32_t ch, int r)
{
	struct sgc_pkt *p = pkt_copy(c, co->res[ch]);

	if (!p)
		return;
	pkt_hdr(p)->flags |= SGC_F_RETX;
	pkt_hdr(p)->stamp = wire_stamp(now_ns());
	/* A worker waits for it: no batch holds it. */
	io_send_now(c, p, &c->peers[r].addr);
	pkt_put(c, p);
	results_resent(c);
}

static int coord_add(struct sgc_comm *c, struct sgc_coll *co, uint32_t ch, int r,
		     const void *data, size_t n)
{
	struct sgc_pkt *p = co->res[ch];

	if (!p) {
		p = pkt_alloc(c);
		if (!p) {
			coll_fail(c, co, -ENOMEM, "out of memory for collective #%u", co->seq);
			return -ENOMEM;
		}
		co->res[ch] = p;
		pkt_hdr(p)->count = (uint16_t)n;
	}
	if (!n)
		;
	else if (co->nseen[ch] == 0)
		memcpy(pkt_body(p), data, n * co->elsz);
	else
		sgc_reduce_into(pkt_body(p), data, n, co->dtype, co->op);
	co->nseen[ch]++;
	seen_set(co->seen, c->world, ch, r);
	if (co->posted && co->nseen[ch] == co->ncontrib)
		coord_chunk_complete(c, co, ch, false);
	return 0;
}

/* The collective a worker's datagram is about, made from it if this is
 * the first word of it; NULL (counted) if none can be. */
static struct sgc_coll *coord_coll_for(struct sgc_comm *c, const struct sgc_hdr *h)
{
	struct sgc_coll *co;

	if (!in_window(c, h->seq)) {
		c->st.late++;
		return NULL;
	}
	if (h->arg >= c->world) {
		c->st.rejected++;
		return NULL;
	}
	co = slot_find(c, h->seq);
	if (co)
		return co;
	co = coll_from_wire(c, h);
	if (!co) {
		c->st.late++;
		return NULL;
	}
	co->first.rank = h->rank;
	coll_args_from_hdr(c, h, &co->first.args);
	return co;
}

static void coord_rx_contrib(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_hdr *h = rx->hdr;
	struct sgc_coll *co = coord_coll_for(c, h);
	size_t n = h->count;
	int r = h->rank;

	if (!co)
		return;
	if (co->state == COLL_FAILED) {
		coll_send_abort(c, co, r, co->status);
		return;
	}
	if (co->state == COLL_DONE) {
		c->st.late++;
		return;
	}
	if (!coord_check_call(c, co, h))
		return;
	if (!is_contributor(co, r) || h->chunk >= co->nchunks) {
		c->st.rejected++;
		return;
	}
	if (seen_test(co->seen, c->world, h->chunk, r)) {
		c->st.duplicates++;
		return;
	}
	if ((int32_t)(h->seq - c->peers[r].hi) > 0)
		c->peers[r].hi = h->seq;
	/* Element counts: the call's count (total) agrees, so a chunk of
	 * another length is not from a well-behaved rank. */
	if ((h->chunk + 1 < co->nchunks && n != co->chunk_elems) ||
	    (co->posted && n != chunk_n(co, h->chunk)) ||
	    (co->res[h->chunk] && co->nseen[h->chunk] && pkt_hdr(co->res[h->chunk])->count != n)) {
		c->st.rejected++;
		return;
	}
	if (kernel_reduces_kind(c, co->kind)) {
		/* The kernel passed it up: its slot holds contributions whose
		 * arguments differ from this one's, which agree with ours. */
		coord_kernel_refused(c, co, h->chunk);
		return;
	}
	/* A first send (no SGC_F_RETX) after we PULLed: that silence was a
	 * slow rank, not a loss; learn it, or only the fast collectives
	 * would ever be timed.  Capped (rtt_floor()): the rank may have been
	 * slow because it was recovering an earlier result, which waits on
	 * this very delay; not at all when we sent it such a result with the
	 * PULL (coord_resend_lagging()). */
	if (co->posted && co->rt.resent && !co->lag_resent && !(h->flags & SGC_F_RETX))
		rtt_floor(&c->rtt, retx_gap(&co->rt, c->now));
	retx_heard(&co->rt, c->now);
	if (co->posted) {
		struct sgc_hdr t;

		coll_hdr(c, &t, SGC_MSG_PULL, co, 0);
		seen_set(co->seen, c->world, h->chunk, r);
		if (pull_got(c, &co->pull, &t, co->seen, r, h->chunk))
			co->rt.resent = true;
	}
	coord_add(c, co, h->chunk, r, rx->body, n);
}

/* A worker says what it called (ACK with the collective's fields): a
 * broadcast's workers at their call, and a worker whose call differs from
 * what the coordinator sent it. */
static void coord_rx_call(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_hdr *h = rx->hdr;
	struct sgc_coll *co;

	if (h->coll >= SGC_COLL_QUERY || !sgc_dtype_valid(h->dtype) ||
	    (!sgc_op_valid(h->op) && h->op != SGC_CUSTOM) || !h->nchunks) {
		c->st.rejected++;
		return;
	}
	co = coord_coll_for(c, h);
	if (!co)
		return;
	if (co->state == COLL_FAILED) {
		coll_send_abort(c, co, h->rank, co->status);
		return;
	}
	/* Not progress for the loss timer: a broadcast's receivers send it
	 * again with each NACK, and that must not keep the collective from
	 * going quiet while its root's data is missing. */
	if (co->state == COLL_OPEN)
		coord_check_call(c, co, h);
}

static bool coll_elig(const void *obj, int r);

static void coord_repull_rank(struct sgc_comm *c, struct sgc_coll *co, int r)
{
	struct sgc_hdr t;

	if (!is_contributor(co, r))
		return;
	coll_hdr(c, &t, SGC_MSG_PULL, co, r);
	pull_missing(c, &co->pull, &t, co->seen, r, 0, co->pull.to[r]);
}

/* Rank @r NACKed open collective @co, which proves it has posted it: if
 * its data is missing, its push or our PULL was lost; ask now.  On the
 * eBPF path the kernel's slots are read again first, but not for every
 * NACK: a copy younger than the timer's refresh gap will do.  Reading
 * every incomplete chunk's slot for each of 64 workers' NACKs on 16 open
 * collectives of 46 chunks took rank 0's whole CPU, which made it later
 * still, which brought more NACKs: at 65 ranks on one worker host (64 KiB,
 * 16 in flight) 5 runs in 11 had no result after 60-300 s, where a run
 * takes 9 s. */
static void coord_repull_nacker(struct sgc_comm *c, struct sgc_coll *co, int r)
{
	co->rt.resent = true;
	if (c->now - co->kernel_read_at >= kernel_refresh_gap(c))
		kernel_refresh_seen(c, co);
	coord_repull_rank(c, co, r);
}

/* A result chunk sent less than this before a NACK for it is taken to have
 * crossed the NACK, and is not sent again. */
#define NACK_CROSS_NS		100000ULL

static void coord_rx_nack(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_hdr *h = rx->hdr;
	struct sgc_coll *co = slot_find(c, h->seq);
	int r = h->rank, sent = 0;
	uint64_t now, fresh;
	uint32_t i, resent = 0, stamp;

	if (!co || !co->posted)
		return;
	if (co->state == COLL_FAILED) {
		coll_send_abort(c, co, r, co->status);
		return;
	}
	if (!is_data_receiver(co, r) || (co->kind == SGC_COLL_BCAST && co->state == COLL_DONE)) {
		/* A broadcast's receiver may miss only the DONE that says
		 * every rank agreed; a resend of data chunks follows. */
		if (co->state == COLL_DONE) {
			coord_send_done(c, co, r);
			coord_rloss_lost(c, co, 1);
			c->st.retransmits++;
		}
		/* A contributor that receives nothing (a broadcast's root, a
		 * reduce's non-root) NACKs only for the DONE. */
		if (!is_data_receiver(co, r)) {
			if (co->state == COLL_OPEN)
				coord_repull_nacker(c, co, r);
			return;
		}
	}
	/* A chunk sent just before the NACK came in: the NACK most likely
	 * crossed it (a worker that waited for a CPU).  Only just: if it was
	 * lost after all, the worker's next NACK comes a whole worker delay
	 * later.  "Came in" is when the kernel took it: a busy coordinator
	 * reads its input milliseconds late, and by then every result looks
	 * old (at 33 ranks with 64 in flight, 2,000 resends in 8,000
	 * collectives, of results the workers had long had).  The NACK's
	 * stamp says more: a worker that asked before we sent the result
	 * crossed it for sure, however long its NACK took to reach us (a
	 * worker host with 32 ranks on two CPUs, just started, sent NACKs
	 * that came 60 ms later).  And a chunk still held in our send
	 * queue (batched results wait up to SGC_BATCH_HOLD_NS) is on its
	 * way: at 33 ranks with 64 in flight nearly all of the eBPF path's
	 * resends were these. */
	now = now_ns();
	now -= min_u64(io_rx_age(c), now);
	fresh = min_u64(rto_now(&c->rtt) / 2, NACK_CROSS_NS);
	for (i = 0; i < h->arg; i++) {
		uint32_t ch = h->chunk + i;

		if (ch >= co->nchunks)
			break;
		if (!bit_test(rx->body, i) || co->nseen[ch] != co->ncontrib || !co->res[ch])
			continue;
		stamp = pkt_hdr(co->res[ch])->stamp;
		if (now < co->res[ch]->sent_at + fresh ||
		    (h->stamp && stamp && stamp_before(h->stamp, stamp)) ||
		    io_queued(c, co->res[ch], &c->peers[r].addr)) {
			sent++;
			continue;
		}
		coord_resend_result(c, co, ch, r);
		c->st.retransmits++;
		resent++;
		sent++;
	}
	if (resent)
		coord_rloss_lost(c, co, resent);
	if (!sent && co->state == COLL_OPEN) {
		/* Nothing to resend yet: tell the worker we are still at it, so
		 * it keeps asking at the base rate instead of backing off. */
		struct sgc_hdr a;

		coll_hdr(c, &a, SGC_MSG_ACK, co, r);
		send_to_rank(c, &a, r);
		coord_repull_nacker(c, co, r);
	}
}

static bool coll_elig(const void *obj, int r)
{
	return is_contributor(obj, r);
}

void coord_pull(struct sgc_comm *c, struct sgc_coll *co)
{
	struct sgc_hdr t;

	uint32_t lim = co->nchunks;

	/* In the kernel a collective has 32 slots: never ask further ahead. */
	if (kernel_reduces_kind(c, co->kind) && co->kernel_low + SGC_BPF_CHUNK_SLOTS < lim)
		lim = co->kernel_low + SGC_BPF_CHUNK_SLOTS;
	coll_hdr(c, &t, SGC_MSG_PULL, co, 0);
	if (kernel_reduces_kind(c, co->kind) && co->nchunks == 1)
		pull_more_cloned(c, &co->pull, &t, coll_elig, co, NULL);
	else
		pull_more(c, &co->pull, &t, lim, coll_elig, co);
}

void coord_start(struct sgc_comm *c, struct sgc_coll *co)
{
	uint32_t ch;

	if (co->odd.rank >= 0) {
		coord_fail_mismatch(c, co);
		return;
	}
	if (co->present) {
		bit_set(co->present, 0);
		co->npresent++;
	}
	for (ch = 0; ch < co->nchunks; ch++) {
		if (co->res[ch] && co->nseen[ch] && pkt_hdr(co->res[ch])->count != chunk_n(co, ch)) {
			coll_fail(c, co, -SGC_EMISMATCH,
				  "collective #%u (%s): the count differs: workers sent %u elements in chunk "
				  "%u, rank 0 has %zu there; every rank must pass the same count", co->seq,
				  coll_kind_name(co->kind), pkt_hdr(co->res[ch])->count, ch, chunk_n(co, ch));
			return;
		}
	}
	if (kernel_reduces_kind(c, co->kind) && co->kind == SGC_COLL_BCAST && co->root == 0) {
		/* Nothing to reduce: each chunk goes straight out. */
		for (ch = 0; ch < co->nchunks && co->state == COLL_OPEN; ch++) {
			struct sgc_pkt *p = co->res[ch] ? co->res[ch] : pkt_alloc(c);

			if (!p) {
				coll_fail(c, co, -ENOMEM, "out of memory for collective #%u", co->seq);
				return;
			}
			co->res[ch] = p;
			if (chunk_n(co, ch))
				memcpy(pkt_body(p), co->sendbuf + chunk_off(co, ch),
				       chunk_n(co, ch) * co->elsz);
			co->nseen[ch] = (uint16_t)co->ncontrib;
			coord_chunk_complete(c, co, ch, false);
		}
	} else if (kernel_reduces_kind(c, co->kind) && co->contributes) {
		for (ch = 0; ch < co->nchunks && co->state == COLL_OPEN; ch++)
			if (co->res[ch] && co->nseen[ch] == co->ncontrib)
				coord_chunk_complete(c, co, ch, bpf_path_kernel_fanout(c));
		kernel_inject_own(c, co);
	} else if (co->contributes) {
		for (ch = 0; ch < co->nchunks && co->state == COLL_OPEN; ch++)
			if (coord_add(c, co, ch, 0, co->sendbuf + chunk_off(co, ch), chunk_n(co, ch)))
				return;
	} else {
		for (ch = 0; ch < co->nchunks && co->state == COLL_OPEN; ch++)
			if (co->nseen[ch] == co->ncontrib)
				coord_chunk_complete(c, co, ch, kernel_reduces_kind(c, co->kind) &&
							     bpf_path_kernel_fanout(c));
	}
	coord_pull(c, co);
}

/*
 * How long a quiet collective waits before its PULL.  One of a single
 * chunk waits srtt (the longest silence a clean exchange has), not
 * srtt + 4 rttvar: a PULL to a rank that is only slow costs one small
 * datagram each way, while the variance a loaded host adds (17 ranks on 2
 * CPUs: rttvar 100-400 us) made every lost contribution cost about a
 * millisecond.  At 10% loss, 17 ranks, the median allreduce went from 3.7
 * to 1.1 ms.  Longer collectives keep rto_bulk()'s wait.
 */
uint64_t coord_rto(const struct sgc_comm *c, const struct sgc_coll *co)
{
	uint64_t rto = rto_now(&c->rtt);

	if (co->nchunks == 1 && c->rtt.samples)
		rto = min_u64(rto, rto_at_least(&c->rtt, c->rtt.srtt_ns, c->rtt.rto_ns));
	return rto_bulk(&c->rtt, rto, co->nchunks);
}

struct quiet_pull {
	const struct sgc_comm *c;
	const struct sgc_coll *co;	/* the collective that went quiet */
	const struct sgc_coll *oldest;	/* the oldest open one, if not @co */
};

/*
 * Which ranks a quiet collective PULLs.  The oldest open one asks every
 * rank it misses.  A later one asks only ranks with a sign that theirs
 * was lost, not that they are slow: that they sent for a later
 * collective (a worker sends in order; on the eBPF path the kernel keeps
 * track).  A rank that has not is behind (its CPU, or a lost result), and
 * what it needs is the oldest's PULL.  With 64 in flight, the later
 * collectives' PULLs to ranks that were only slow were most resends.
 */
static bool quiet_elig(const void *obj, int r)
{
	const struct quiet_pull *q = obj;
	uint32_t hi;

	if (!coll_elig(q->co, r))
		return false;
	if (!q->oldest)
		return true;
	hi = kernel_reduces_kind(q->c, q->co->kind) ? bpf_path_rank_hi(q->c, r) : q->c->peers[r].hi;
	return (int32_t)(hi - q->co->seq) > 0;
}

/*
 * A PULL to rank @r for @co, whose watermark says it still waits for an
 * older result that was sent at least @wait ago: that result was most
 * likely lost, and the rank waits for it rather than for us (its own
 * NACK comes only after several delays).  Send it along.  One of a few
 * chunks only: a long result is NACKed chunk by chunk.
 */
#define LAG_RESEND_CHUNKS	RLOSS_MAX_CHUNKS

/* (On the eBPF path peers[].wm holds the kernel's copy: coord_min_wm()
 * reads it after every batch of datagrams, before the timers run.) */
static void coord_resend_lagging(struct sgc_comm *c, struct sgc_coll *co, int r, uint64_t wait)
{
	uint32_t wm = c->peers[r].wm, ch;
	struct sgc_coll *old;

	if (wm == co->seq || co->seq - wm > SGC_RING)
		return;
	old = slot_find(c, wm);
	if (!old || old->seq != wm || old->state != COLL_DONE || !is_data_receiver(old, r) ||
	    old->nchunks > LAG_RESEND_CHUNKS)
		return;
	for (ch = 0; ch < old->nchunks; ch++)
		if (!old->res[ch] || c->now - old->res[ch]->sent_at < wait)
			return;
	/*
	 * The watermark is only as new as the rank's latest datagram.  A
	 * rank that has sent for later collectives, last before the result
	 * could reach it, is slow (32 ranks on two CPUs, 64 in flight: a
	 * third of the resends were these), not stuck; its own NACK asks if
	 * it was lost.  One whose latest word was its part of @old waits for
	 * it.  On the eBPF path the kernel keeps the watermark, with no time.
	 */
	if (!kernel_reduces_kind(c, old->kind) && (int32_t)(c->peers[r].hi - old->seq) > 0) {
		uint64_t now = now_ns(), said = c->peers[r].said_at;

		if (c->peers[r].said_wall)
			said = now - min_u64(io_wall_age(c->peers[r].said_wall), now);

		for (ch = 0; ch < old->nchunks; ch++)
			if (said < old->res[ch]->sent_at + NACK_CROSS_NS)
				return;
	}
	co->lag_resent = true;
	/* Once per delay, not once per quiet collective. */
	if (c->now - c->peers[r].lag_at < wait)
		return;
	c->peers[r].lag_at = c->now;
	for (ch = 0; ch < old->nchunks; ch++) {
		coord_resend_result(c, old, ch, r);
		c->st.retransmits++;
	}
}

/* @co was quiet for a delay: PULL what is missing (quiet_elig()).
 * Returns whether anything was sent. */
static bool coord_pull_quiet(struct sgc_comm *c, struct sgc_coll *co, uint64_t wait)
{
	struct sgc_coll *o = coll_oldest_open(c, true);
	struct quiet_pull q = { c, co, o == co ? NULL : o };
	uint64_t before = c->st.retransmits;
	struct sgc_hdr t;
	int r;

	if (q.oldest)
		kernel_refresh_seen(c, o);
	for (r = 1; co->nchunks == 1 && r < c->world; r++)
		if (quiet_elig(&q, r) && !seen_test(co->seen, c->world, 0, r))
			coord_resend_lagging(c, co, r, wait);
	coll_hdr(c, &t, SGC_MSG_PULL, co, 0);
	pull_again(c, &co->pull, &t, co->seen, quiet_elig, &q);
	return c->st.retransmits != before;
}

void coord_timer(struct sgc_comm *c, struct sgc_coll *co, uint64_t now)
{
	uint64_t base = coord_rto(c, co), wait = retx_wait(&co->rt, base);
	char list[120];

	if (retx_expired(&co->rt, now)) {
		struct miss_ctx m = { c, co };

		if (kernel_check_slots(c, co))
			return;
		kernel_refresh_seen(c, co);
		sgc_rank_list_base(list, sizeof(list), 1, c->world, c->rank_base, coord_rank_silent, &m);
		if (!list[0])
			sgc_rank_list_base(list, sizeof(list), 1, c->world, c->rank_base,
					   coord_rank_missing, &m);
		if (!list[0] && co->present) {
			sgc_rank_list_base(list, sizeof(list), 1, c->world, c->rank_base,
					   coord_rank_absent, &m);
			coll_fail(c, co, -ETIMEDOUT,
				  "collective #%u (%s of %zu x %s): rank%s %s did not call it within %u ms",
				  co->seq, coll_kind_name(co->kind), co->count, sgc_dtype_name(co->dtype),
				  strchr(list, ',') || strstr(list, "more") ? "s" : "", list,
				  c->cfg.timeout_ms);
			return;
		}
		coll_fail(c, co, -ETIMEDOUT,
			  "collective #%u (%s of %zu x %s): rank%s %s did not contribute within %u ms",
			  co->seq, coll_kind_name(co->kind), co->count, sgc_dtype_name(co->dtype),
			  strchr(list, ',') || strstr(list, "more") ? "s" : "", list, c->cfg.timeout_ms);
		return;
	}
	/* eBPF path (kernel_refreshes()): look at the slots every half RTO
	 * floor, so the budget flows back, slowness is not taken for loss,
	 * and a lost push or PULL is asked for again in about a round trip. */
	if (kernel_refreshes(c, co) && now >= co->rt.refresh_at) {
		if (kernel_refresh_seen(c, co))
			retx_heard(&co->rt, now);
		co->rt.refresh_at = now + kernel_refresh_gap(c);
	}
	if (!retx_due(&co->rt, now))
		return;
	/* Contributions the kernel reduced count as heard from, as on the
	 * user-space path: slow is not lost.  And as there, one that came
	 * after we sent something again teaches the delay, capped
	 * (coord_rx_contrib()); the kernel does not say whether it was a
	 * first send, so answers to PULLs count too.  Without this the eBPF
	 * path had no sample under steady loss (every collective lives
	 * through a resend), and a quiet collective waited the initial 8
	 * floors: 65 ranks, 10% loss, p50 9.2 -> 7.8 ms. */
	if (kernel_reduces_kind(c, co->kind)) {
		uint64_t k = bpf_path_coll_rx(c, co->seq);

		if (k > co->rt.last_rx && k <= now) {
			if (co->posted && co->rt.resent && !co->lag_resent)
				rtt_floor(&c->rtt, retx_gap(&co->rt, k));
			retx_heard(&co->rt, k);
		}
	}
	if (retx_quiet(&co->rt, now, wait)) {
		/* The kernel passes a mismatched contribution up, but a full
		 * socket may have lost it: its slot still tells. */
		if (kernel_check_slots(c, co))
			return;
		kernel_refresh_seen(c, co);
		if (!coord_pull_quiet(c, co, wait)) {
			/* Nothing asked (every rank it misses is behind): no
			 * reason to wait longer next time. */
			co->rt.timer = now + base;
			return;
		}
		retx_backoff(&co->rt);
		retx_resent(&co->rt, now, base);
	} else {
		retx_rearm(&co->rt, wait);
	}
}

static void peer_wm(struct sgc_comm *c, int r, uint32_t wm)
{
	/* Accept only forward moves that stay within what we have posted. */
	if (wm - c->peers[r].wm <= SGC_RING && wm - c->peers[r].wm != 0 &&
	    c->colls.next_seq + SGC_RING - wm <= 2 * SGC_RING)
		c->peers[r].wm = wm;
}

/* Rank @r's watermark @wm, in a datagram from it that came just now. */
static void peer_said(struct sgc_comm *c, int r, uint32_t wm)
{
	c->peers[r].said_at = c->now;
	c->peers[r].said_wall = c->io.rx_wall;
	peer_wm(c, r, wm);
}

static uint32_t coord_min_wm(struct sgc_comm *c)
{
	uint32_t m = c->colls.next_seq;
	bool kernel = kernel_reduces(c);
	int r;

	for (r = 1; r < c->world; r++) {
		/* Contributions the kernel reduced carried watermarks too. */
		if (kernel)
			peer_wm(c, r, bpf_path_rank_wm(c, r));
		if (c->peers[r].wm - c->colls.base < m - c->colls.base)
			m = c->peers[r].wm;
	}
	return m;
}

void coord_retire(struct sgc_comm *c)
{
	uint32_t wm = coord_min_wm(c);

	while (c->colls.base != c->colls.next_seq) {
		struct sgc_coll *co = slot_find(c, c->colls.base);

		if (co) {
			if (co->state == COLL_OPEN || wm - c->colls.base == 0 || wm - c->colls.base > SGC_RING)
				break;
			coll_free(c, co);
		}
		c->colls.base++;
	}
	/*
	 * The kernel's window starts at the oldest collective still open,
	 * not at the oldest kept: a collective done here needs its slot no
	 * more (its result is ours), only its retirement waits for every
	 * worker's watermark.  A worker that had not yet seen an older result
	 * held the window back, and the others' contributions beyond it were
	 * dropped and PULLed again: with 64 in flight at 33 ranks, 3,000 a
	 * second and most of the eBPF path's resends.
	 */
	coord_kernel_window(c);
}

/* A datagram from a joined worker, from the address it joined with. */
static bool coord_accept(struct sgc_comm *c, const struct sgc_rx *rx)
{
	int r = rx->hdr->rank;

	if (r == 0 || !c->peers[r].joined || !sockaddr_eq(&c->peers[r].addr, &rx->from)) {
		c->st.foreign++;
		return false;
	}
	return true;
}

/*
 * Socket delivery: notify_prog hands us the completing datagram, from the
 * worker that completed it.  gather_prog drops RESULTs from the wire on
 * our interface, but not what comes in elsewhere (another interface, lo),
 * and SGC_F_KERNEL is a bit anyone can set: notify_prog's results also
 * carry this load's token in aux, which never crosses the wire.  Any
 * other RESULT is not for a coordinator.
 */
static void coord_on_result(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_hdr *h = rx->hdr;
	struct sgc_hdr kh;

	if (h->flags & SGC_F_KERNEL) {
		if (!kernel_result_authentic(c, h)) {
			c->st.rejected++;
			return;
		}
		kh = *h;
		kh.aux = 0;
		coord_kernel_result(c, &kh, rx->body, NULL);
		return;
	}
	if (coord_accept(c, rx))
		c->st.rejected++;
}

static void coord_on_contrib(struct sgc_comm *c, const struct sgc_rx *rx)
{
	peer_said(c, rx->hdr->rank, rx->hdr->aux);
	if (rx->hdr->coll == SGC_COLL_QUERY)
		sg_rx_coord(c, rx);
	else
		coord_rx_contrib(c, rx);
}

static void coord_on_nack(struct sgc_comm *c, const struct sgc_rx *rx)
{
	peer_said(c, rx->hdr->rank, rx->hdr->aux);
	coord_rx_nack(c, rx);
}

static void coord_on_ack(struct sgc_comm *c, const struct sgc_rx *rx)
{
	peer_said(c, rx->hdr->rank, rx->hdr->aux);
	if (rx->hdr->coll)
		coord_rx_call(c, rx);
}

static void coord_on_bye(struct sgc_comm *c, const struct sgc_rx *rx)
{
	int r = rx->hdr->rank, w;
	struct sgc_hdr a;

	peer_wm(c, r, rx->hdr->aux);
	c->peers[r].bye = true;
	/* After sharded collectives, all at once when the last one came
	 * (comm.c's bye_all()): a peer may still need this one's acks. */
	for (w = 1; c->mesh.used && w < c->world; w++)
		if (!c->peers[w].bye)
			return;
	sgc_hdr_init(&a, SGC_MSG_BYE_ACK, c->job_id);
	a.rank = (uint16_t)r;
	send_to_rank(c, &a, r);
}

void coord_rx_table(struct sgc_rx_table *t)
{
	t->early[SGC_MSG_RESULT] = coord_on_result;
	t->accept = coord_accept;
	t->on[SGC_MSG_CONTRIB] = coord_on_contrib;
	t->on[SGC_MSG_NACK] = coord_on_nack;
	t->on[SGC_MSG_ACK] = coord_on_ack;
	t->on[SGC_MSG_BYE] = coord_on_bye;
}
