// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A worker's side of a collective: it pushes its first chunks, answers
 * PULLs, copies result chunks into the caller's buffer (or stages them
 * when the call has not come yet) and NACKs missing results when the
 * coordinator goes quiet.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coll.h"
#include "sg.h"
#include "transport.h"
#include "worker.h"

/* @retx: an answer to a PULL, so that the coordinator can tell it from a
 * first send that was only slow. */
/* The worker's own NACK timer waits at least this many RTO floors. */
#define WORKER_RTO_FLOORS	8
/* So many results in a row came without a resend: a silent coordinator is
 * stalled rather than losing ours (worker_timer()). */
#define CLEAN_RX_MAX		64

static void worker_send_chunk(struct sgc_comm *c, struct sgc_coll *co, uint32_t ch, bool retx)
{
	struct sgc_pkt *p = pkt_alloc(c);
	struct sgc_hdr *h;
	size_t n = chunk_n(co, ch);

	if (!p)
		return;
	h = pkt_hdr(p);
	coll_hdr(c, h, SGC_MSG_CONTRIB, co, c->rank);
	h->chunk = ch;
	h->count = (uint16_t)n;
	h->aux = c->colls.base;
	if (retx)
		h->flags |= SGC_F_RETX;
	if (n)
		memcpy(pkt_body(p), co->sendbuf + chunk_off(co, ch), n * co->elsz);
	p->len = (uint32_t)(SGC_HDR_SIZE + n * co->elsz);
	io_send(c, p, &c->cfg.coord);
	pkt_put(c, p);
	c->colls.acked_wm = c->colls.base;
}

/* An ACK to the coordinator, with our watermark. */
static void worker_send_ack(struct sgc_comm *c, struct sgc_hdr *h)
{
	h->aux = c->colls.base;
	send_hdr(c, h, &c->cfg.coord);
	c->colls.acked_wm = c->colls.base;
}

static void worker_send_status(struct sgc_comm *c)
{
	struct sgc_hdr h;

	sgc_hdr_init(&h, SGC_MSG_ACK, c->job_id);
	h.rank = (uint16_t)c->rank;
	worker_send_ack(c, &h);
}

/* What this rank called, to the coordinator: ACK with the collective's
 * fields and the count in total. */
static void worker_send_call(struct sgc_comm *c, struct sgc_coll *co)
{
	struct sgc_hdr h;

	coll_hdr(c, &h, SGC_MSG_ACK, co, c->rank);
	worker_send_ack(c, &h);
}

/* A broadcast's receiver has it all once the coordinator said that every
 * rank called it alike; everyone else once the data or the DONE is in. */
static bool worker_complete(const struct sgc_coll *co)
{
	if (co->kind == SGC_COLL_BCAST && co->receives)
		return co->agreed && co->nchunks_done == co->nchunks;
	return co->receives && co->nchunks_done == co->nchunks;
}

void worker_advance(struct sgc_comm *c)
{
	while (c->colls.base != c->colls.next_seq) {
		struct sgc_coll *co = slot_find(c, c->colls.base);

		if (co && co->state == COLL_OPEN)
			break;
		if (co)
			coll_free(c, co);
		c->colls.base++;
	}
	if (c->colls.base - c->colls.acked_wm >= SGC_ACK_EVERY)
		worker_send_status(c);
}

void worker_start(struct sgc_comm *c, struct sgc_coll *co)
{
	uint32_t ch, credit = c->pace.push_credit < co->nchunks ? c->pace.push_credit : co->nchunks;

	/* A broadcast finishes nowhere before every rank said how it called
	 * it; its root says so with its data. */
	if (co->kind == SGC_COLL_BCAST && !co->contributes)
		worker_send_call(c, co);
	if (co->stage || co->nchunks_done) {
		for (ch = 0; ch < co->nchunks && co->receives; ch++)
			if (bit_test(co->got, ch))
				memcpy(co->recvbuf + chunk_off(co, ch),
				       co->stage + (size_t)ch * c->chunk_bytes, chunk_n(co, ch) * co->elsz);
		free(co->stage);
		co->stage = NULL;
	}
	if (co->contributes) {
		for (ch = 0; ch < co->nchunks; ch++)
			if (ch < credit || (co->pulled && bit_test(co->pulled, ch)))
				worker_send_chunk(c, co, ch, false);
	}
	free(co->pulled);
	co->pulled = NULL;
	if (worker_complete(co))
		coll_finish(c, co, 0);
}

/*
 * The coordinator's datagram about a collective this rank called says
 * other arguments.  Rank 0's call is the reference, and the coordinator
 * names the odd rank to all when it fails the collective: tell it what
 * this rank called, once, and wait for that.  Should its abort not come,
 * the deadline fails the call with what this rank saw (co->msg).  (A
 * broadcast the kernel sent on carries its root's arguments, not rank
 * 0's: ours, or the root's, are the odd ones.)
 */
static void worker_differs(struct sgc_comm *c, struct sgc_coll *co, const struct sgc_hdr *h)
{
	struct coll_args mine, theirs;
	bool kernel = h->type == SGC_MSG_RESULT && (h->flags & SGC_F_KERNEL) &&
		      h->coll == SGC_COLL_BCAST;

	if (co->told)
		return;
	co->told = true;
	coll_args_of(co, &mine);
	coll_args_from_hdr(c, h, &theirs);
	if (h->type == SGC_MSG_RESULT && (h->flags & SGC_F_DONE)) {
		theirs.dtype = mine.dtype;
		theirs.op = mine.op;
	}
	if (kernel)
		coll_mismatch_text(co->msg, sizeof(co->msg), co->seq, msg_rank(c, h->arg), &theirs,
				   msg_rank(c, c->rank), &mine, msg_rank(c, c->rank));
	else
		coll_mismatch_text(co->msg, sizeof(co->msg), co->seq, msg_rank(c, c->rank), &mine,
				   msg_rank(c, 0), &theirs, msg_rank(c, c->rank));
	worker_send_call(c, co);
}

static struct sgc_coll *worker_coll_for(struct sgc_comm *c, const struct sgc_hdr *h)
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
	if (!co)
		co = coll_from_wire(c, h);
	if (!co) {
		c->st.late++;
		return NULL;
	}
	if (co->state != COLL_OPEN) {
		c->st.late++;
		return NULL;
	}
	/* A DONE RESULT carries no data, so nothing of dtype or op; a PULL
	 * asks for data of the coordinator's dtype and op. */
	if (h->coll != co->kind || h->nchunks != co->nchunks || h->arg != co->root ||
	    (!(h->type == SGC_MSG_RESULT && (h->flags & SGC_F_DONE)) &&
	     (h->dtype != co->dtype || h->op != co->op))) {
		c->st.rejected++;
		if (co->posted)
			worker_differs(c, co, h);
		return NULL;
	}
	return co;
}

static void worker_ask_again(struct sgc_comm *c, struct sgc_coll *co, uint64_t now, uint64_t base);

static void worker_rx_result(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_hdr *h = rx->hdr;
	struct sgc_coll *co = worker_coll_for(c, h);
	size_t n = h->count;

	if (!co)
		return;
	/* A result of several chunks: the wait for its first is the whole
	 * collective (rto_bulk() covers it); a silence between chunks is
	 * what a lost one looks like, and what the delay is learned from. */
	if (co->nchunks > 1 && !co->nchunks_done && co->posted)
		retx_gaps_from(&co->rt, c->now);
	retx_heard(&co->rt, c->now);
	if (h->flags & SGC_F_RETX) {
		co->rx_resent = true;
		c->coord.clean_rx = 0;
	} else if (c->coord.clean_rx < CLEAN_RX_MAX) {
		c->coord.clean_rx++;
	}
	if (h->flags & SGC_F_DONE) {
		/* For a broadcast's receiver the DONE says that every rank
		 * called it alike; its data may come before or after. */
		if (co->kind == SGC_COLL_BCAST && co->receives) {
			co->agreed = true;
			if (co->posted && worker_complete(co))
				coll_finish(c, co, 0);
			return;
		}
		if (!co->posted || co->receives) {
			c->st.rejected++;
			return;
		}
		coll_finish(c, co, 0);
		return;
	}
	if (co->posted && !co->receives) {
		c->st.rejected++;
		return;
	}
	if (bit_test(co->got, h->chunk)) {
		c->st.duplicates++;
		return;
	}
	if (n > co->chunk_elems || (h->chunk + 1 < co->nchunks && n != co->chunk_elems) ||
	    (co->posted && n != chunk_n(co, h->chunk))) {
		c->st.rejected++;
		return;
	}
	if (co->posted) {
		memcpy(co->recvbuf + chunk_off(co, h->chunk), rx->body, n * co->elsz);
	} else {
		if (!co->stage) {
			co->stage = malloc((size_t)co->nchunks * c->chunk_bytes);
			if (!co->stage)
				return;
		}
		memcpy(co->stage + (size_t)h->chunk * c->chunk_bytes, rx->body, n * co->elsz);
	}
	bit_set(co->got, h->chunk);
	co->nchunks_done++;
	if (co->posted && worker_complete(co)) {
		coll_finish(c, co, 0);
		return;
	}
	/*
	 * The last chunk came and some before it did not: they were most
	 * likely lost (chunks go out in order, but for one whose
	 * contribution was late).  Ask now rather than after a silence; a
	 * NACK for one not sent yet is not answered (its stamp).  The same
	 * when the resend of the last chunk our NACK asked for came and
	 * some of the others did not: a round trip per round of loss.
	 */
	if (co->posted && co->nchunks_done < co->nchunks &&
	    ((h->chunk == co->nchunks - 1 && co->last_nack < co->t_post) ||
	     ((h->flags & SGC_F_RETX) && co->last_nack >= co->t_post && h->chunk == co->nack_last)))
		worker_ask_again(c, co, c->now, worker_rto(c, co));
}

static void worker_rx_pull(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_hdr *h = rx->hdr;
	struct sgc_coll *co = worker_coll_for(c, h);
	uint32_t ch, end;

	if (!co)
		return;
	end = h->chunk + h->aux;
	if (end > co->nchunks)
		end = co->nchunks;
	if (!co->posted) {
		if (!co->pulled)
			co->pulled = calloc(bitmap_bytes(co->nchunks), 1);
		if (co->pulled)
			for (ch = h->chunk; ch < end; ch++)
				bit_set(co->pulled, ch);
		return;
	}
	if (!co->contributes) {
		/* A broadcast's receiver: what the coordinator misses from us
		 * is how we called it. */
		if (co->kind == SGC_COLL_BCAST && !co->agreed)
			worker_send_call(c, co);
		else
			c->st.rejected++;
		return;
	}
	for (ch = h->chunk; ch < end; ch++)
		worker_send_chunk(c, co, ch, true);
}

static void worker_nack(struct sgc_comm *c, struct sgc_coll *co)
{
	struct sgc_pkt *p = pkt_alloc(c);
	struct sgc_hdr *h;
	uint32_t first = 0, span = 1, i;
	uint8_t *bm;

	if (!p)
		return;
	h = pkt_hdr(p);
	coll_hdr(c, h, SGC_MSG_NACK, co, c->rank);
	h->aux = c->colls.base;
	bm = pkt_body(p);
	if (co->receives) {
		while (first < co->nchunks && bit_test(co->got, first))
			first++;
		if (first >= co->nchunks)
			first = co->nchunks - 1;
		span = co->nchunks - first;
		if (span > 8 * 128)
			span = 8 * 128;
	}
	memset(bm, 0, (span + 7) / 8);
	for (i = 0; i < span; i++)
		if (!co->receives || !bit_test(co->got, first + i)) {
			bit_set(bm, i);
			co->nack_last = first + i;
		}
	h->chunk = first;
	h->arg = (uint16_t)span;
	/* Our reckoning of the coordinator's clock, never ahead of it: it
	 * tells a result we asked for before it was sent from a lost one. */
	if (c->coord.stamp)
		h->stamp = stamp_after(c->coord.stamp, now_ns() - c->coord.stamp_rx);
	p->len = SGC_HDR_SIZE + (span + 7) / 8;
	io_send(c, p, &c->cfg.coord);
	pkt_put(c, p);
	c->colls.acked_wm = c->colls.base;
	c->st.retransmits++;
}

/* Ask for @co's result again at @now, and next after @base (backed off). */
static void worker_ask_again(struct sgc_comm *c, struct sgc_coll *co, uint64_t now, uint64_t base)
{
	worker_nack(c, co);
	/* The coordinator may not have had what we called either. */
	if (co->told || (co->kind == SGC_COLL_BCAST && !co->contributes && !co->agreed))
		worker_send_call(c, co);
	co->last_nack = now;
	retx_resent(&co->rt, now, base);
}

/*
 * How long a worker waits for a result before it NACKs.  It waits for the
 * slowest rank as well as for the network and cannot tell the two apart;
 * the coordinator can, and its PULLs for later collectives make us ask
 * for a lost result sooner (worker_gap_nack()).  So the worker's own
 * timer waits at least WORKER_RTO_FLOORS floors, and NACKs from all
 * workers together stay near 250 per delay at the coordinator, whatever
 * the world size.
 */
uint64_t worker_rto(const struct sgc_comm *c, const struct sgc_coll *co)
{
	uint64_t rto = rto_at_least(&c->rtt, rto_now(&c->rtt), WORKER_RTO_FLOORS * c->rtt.rto_ns);

	rto = rto_bulk(&c->rtt, rto, co->nchunks);
	return rto * (uint64_t)(c->world > 65 ? (c->world - 1) / 32 : 1);
}

void worker_timer(struct sgc_comm *c, struct sgc_coll *co, uint64_t now)
{
	uint64_t base, wait;
	char a[32];

	if (retx_expired(&co->rt, now) && co->told) {
		/* The coordinator's word on the mismatch never came. */
		coll_fail_noted(c, co, -SGC_EMISMATCH);
		return;
	}
	if (retx_expired(&co->rt, now)) {
		coll_fail(c, co, -ETIMEDOUT,
			  "collective #%u (%s of %zu x %s) got no result from the coordinator "
			  "at %s within %u ms (%u of %u result chunks arrived): the coordinator may be "
			  "waiting for another rank, or be gone",
			  co->seq, coll_kind_name(co->kind), co->count, sgc_dtype_name(co->dtype),
			  sgc_addr_str(&c->cfg.coord, a, sizeof(a)), c->cfg.timeout_ms,
			  co->nchunks_done, co->receives ? co->nchunks : 1);
		return;
	}
	/* Every open collective's timer runs at every wake-up: the delay is
	 * worked out only for one that is due. */
	if (!retx_due(&co->rt, now))
		return;
	base = worker_rto(c, co);
	wait = retx_wait(&co->rt, base);
	/*
	 * Several collectives in flight: a coordinator that keeps sending us
	 * other results or PULLs, none of them posted after this one, is busy
	 * rather than lossy (and re-PULLs a lost contribution itself).  A NACK
	 * now would only add to its load; a later collective done first is
	 * the sign of a lost result.  (Probes do not count: they are what a
	 * coordinator stuck on this collective sends.)
	 */
	if (retx_quiet(&co->rt, now, wait) && now - c->coord.work_rx < wait &&
	    c->coord.done_post_max <= co->t_post && co->posted) {
		co->rt.timer = c->coord.work_rx + wait;
		return;
	}
	/*
	 * A coordinator that said nothing at all for a delay, after results
	 * that needed no resend for a while, is stalled (its CPU), not losing
	 * ours: ask about the oldest collective only.  With 64 in flight on a
	 * loaded host, a stall of a few milliseconds had every worker NACK
	 * every collective it had open (166,000 NACKs in 8,000 collectives at
	 * 33 ranks).  Where results do get lost, each collective asks for its
	 * own: at 30% loss, asking one collective at a time made 300
	 * collectives take twice as long.  A later collective asks anyway on
	 * a sign of loss of its own: part of its result came, or one posted
	 * after it is done.
	 */
	if (retx_quiet(&co->rt, now, wait) && c->coord.clean_rx >= CLEAN_RX_MAX &&
	    now - c->coord.last_rx >= wait && !co->nchunks_done && co != coll_oldest_open(c, true) &&
	    c->coord.done_post_max <= co->t_post) {
		co->rt.timer = now + wait;
		return;
	}
	if (retx_quiet(&co->rt, now, wait)) {
		/* Back off only while the coordinator says nothing at all: a
		 * live coordinator that lost our datagram is asked again soon. */
		if (c->coord.last_rx < co->last_nack)
			retx_backoff_now(&co->rt);
		else
			co->rt.backoff = 0;
		worker_ask_again(c, co, now, base);
	} else {
		retx_rearm(&co->rt, wait);
	}
}

/*
 * The coordinator is working on collectives we posted: a RESULT or PULL
 * for one of them.  Traffic for collectives we have not posted yet does
 * not count: a coordinator PULLing those waits on us, and if we wait on
 * a lost result, only our NACK ends that.
 */
static void note_coord_work(struct sgc_comm *c, const struct sgc_hdr *h)
{
	const struct sgc_coll *co = slot_find(c, h->seq);

	if (co && co->kind == h->coll && co->posted && co->state == COLL_OPEN)
		c->coord.work_rx = c->now;
}

/* Everything a worker takes comes from the coordinator's address. */
static bool worker_accept(struct sgc_comm *c, const struct sgc_rx *rx)
{
	if (!sockaddr_eq(&rx->from, &c->cfg.coord)) {
		c->st.foreign++;
		return false;
	}
	c->coord.last_rx = c->now;
	if (rx->hdr->stamp && (!c->coord.stamp || stamp_before(c->coord.stamp, rx->hdr->stamp))) {
		c->coord.stamp = rx->hdr->stamp;
		c->coord.stamp_rx = c->now;
	}
	return true;
}

static void worker_on_result(struct sgc_comm *c, const struct sgc_rx *rx)
{
	note_coord_work(c, rx->hdr);
	worker_rx_result(c, rx);
}

/*
 * The coordinator PULLs collective @seq, later than the oldest one whose
 * result we still wait for.  With one collective at a time it started
 * @seq only after it finished ours, so our result was lost: ask for it
 * now rather than after our own timer.  With many in flight the oldest
 * may still be open there, or its result on the way: so only once the
 * oldest has waited our usual wait, and at most once per delay.
 */
static void worker_gap_nack(struct sgc_comm *c, uint32_t seq)
{
	struct sgc_coll *co = slot_find(c, c->colls.base);
	uint64_t rto = rto_now(&c->rtt);

	if (!co || !co->posted || co->state != COLL_OPEN || seq == co->seq || !in_window(c, seq) ||
	    c->now - co->t_post < rto || c->now - co->last_nack < rto)
		return;
	worker_ask_again(c, co, c->now, worker_rto(c, co));
}

static void worker_on_pull(struct sgc_comm *c, const struct sgc_rx *rx)
{
	if (rx->hdr->coll == SGC_COLL_QUERY) {
		sg_rx_worker(c, rx);
		return;
	}
	note_coord_work(c, rx->hdr);
	worker_gap_nack(c, rx->hdr->seq);
	worker_rx_pull(c, rx);
}

static bool wire_args_valid(const struct sgc_comm *c, const struct sgc_wire_args *w)
{
	return w->coll >= 1 && w->coll < SGC_COLL_QUERY && sgc_dtype_valid(w->dtype) &&
	       (sgc_op_valid(w->op) || w->op == SGC_CUSTOM) && w->root < c->world;
}

static void args_from_wire(struct coll_args *a, const struct sgc_wire_args *w)
{
	a->count = w->count;
	a->nchunks = w->nchunks;
	a->kind = w->coll;
	a->dtype = w->dtype;
	a->op = w->op;
	a->root = w->root;
}

/* An abort that says which rank called @co otherwise than rank 0, and how. */
static bool worker_abort_mismatch(struct sgc_comm *c, struct sgc_coll *co, const struct sgc_rx *rx)
{
	struct coll_args odd, ref;
	struct sgc_mismatch m;

	memcpy(&m, rx->body, sizeof(m));
	if (co->state != COLL_OPEN)
		return true;
	if (m.rank >= c->world || !wire_args_valid(c, &m.odd) || !wire_args_valid(c, &m.ref))
		return false;
	args_from_wire(&odd, &m.odd);
	args_from_wire(&ref, &m.ref);
	coll_mismatch_text(co->msg, sizeof(co->msg), co->seq, msg_rank(c, m.rank), &odd,
			   msg_rank(c, 0), &ref, msg_rank(c, c->rank));
	coll_fail_noted(c, co, -SGC_EMISMATCH);
	return true;
}

/* An ABORT's aux as a negative code for sgc_strerror(): an errno or an
 * SGC_E* code; anything else (a forged 0x80000000 would overflow the
 * negation) reads as a protocol error. */
static int abort_code(uint32_t aux)
{
	return aux && aux < 65536 ? -(int)aux : -EPROTO;
}

static void worker_on_abort(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_hdr *h = rx->hdr;
	struct sgc_coll *co;

	if (h->seq == 0 && h->coll == 0) {
		c->dead = true;
		c->dead_err = -ESHUTDOWN;
		coll_cancel_all(c, -ESHUTDOWN, "the coordinator ended the job");
		return;
	}
	co = slot_find(c, h->seq);
	if (!co || !h->coll || h->coll >= SGC_COLL_QUERY)
		return;
	if (rx->body_len == sizeof(struct sgc_mismatch) && worker_abort_mismatch(c, co, rx))
		return;
	/* The abort names the collective the coordinator has at this
	 * position.  Another one here means the ranks disagree on the order:
	 * this rank learns it from the abort, or it would only time out. */
	if (co->kind != h->coll)
		coll_fail(c, co, -SGC_EMISMATCH,
			  "collective #%u (%s here, %s at the coordinator): the coordinator abandoned "
			  "it (%s)", co->seq, coll_kind_name(co->kind), coll_kind_name(h->coll),
			  sgc_strerror(abort_code(h->aux)));
	else
		coll_fail(c, co, h->aux == SGC_EMISMATCH ? -SGC_EMISMATCH : -SGC_EABORTED,
			  "collective #%u (%s): the coordinator abandoned it (%s)%s", co->seq,
			  coll_kind_name(co->kind), sgc_strerror(abort_code(h->aux)),
			  h->aux == ETIMEDOUT ? "; its log names the ranks that did not answer" : "");
}

static void worker_on_ack(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_hdr *h = rx->hdr;
	struct sgc_coll *co;

	if (!h->coll) {
		worker_send_status(c);	/* a probe for our watermark */
		return;
	}
	/* "still working on it": keep NACKing at the base rate.  The NACK
	 * came early, so the silences here are at least this long now; learn
	 * that, capped (rtt_floor()): under loss the wait includes the
	 * recovery of someone else's datagram, and a long delay would slow
	 * the recovery of ours. */
	co = slot_find(c, h->seq);
	if (co && co->kind == h->coll && co->state == COLL_OPEN) {
		if (co->posted)
			rtt_floor(&c->rtt, retx_gap(&co->rt, c->now));
		retx_heard(&co->rt, c->now);
		co->rt.timer = c->now + worker_rto(c, co);
	}
}

static void worker_on_bye_ack(struct sgc_comm *c, const struct sgc_rx *rx)
{
	c->bye_acked = true;
}

void worker_rx_table(struct sgc_rx_table *t)
{
	t->accept = worker_accept;
	t->on[SGC_MSG_RESULT] = worker_on_result;
	t->on[SGC_MSG_PULL] = worker_on_pull;
	t->on[SGC_MSG_QUERY] = sg_rx_worker;
	t->on[SGC_MSG_ABORT] = worker_on_abort;
	t->on[SGC_MSG_ACK] = worker_on_ack;
	t->on[SGC_MSG_BYE_ACK] = worker_on_bye_ack;
}
