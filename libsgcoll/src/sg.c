// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The state machines of a scatter-gather query, the raw primitive of
 * sgbpf (the prototype this library grew from): the coordinator sends a
 * query to every worker, each worker's handler (sgc_serve) computes a
 * response vector, and the coordinator reduces the responses, completing
 * under WAIT_ALL, WAIT_N or WAIT_ANY.  Queries have their own sequence
 * space; the coordinator runs one at a time, so a newer query tells a
 * worker that every older one is over.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg.h"
#include "sgc_common.h"
#include "transport.h"

enum { RS_NONE, RS_ANSWERING, RS_DECLINED };

static void query_free(struct sgc_comm *c, struct sgc_query *q)
{
	uint32_t i;

	if (!q)
		return;
	if (c->sg.slots[q->seq % SGC_QRING] == q)
		c->sg.slots[q->seq % SGC_QRING] = NULL;
	if (q->acc) {
		for (i = 0; i < q->nchunks; i++)
			pkt_put(c, q->acc[i]);
		free(q->acc);
	}
	pkt_put(c, q->qpkt);
	free(q->nseen);
	free(q->seen);
	free(q->state);
	free(q->rank_chunks);
	pull_free(&q->pull);
	free(q->qdata);
	free(q->resp);
	free(q->pending_pull);
	free(q);
}

static size_t q_chunk_n(const struct sgc_query *q, uint32_t ch)
{
	if (!q->count)
		return 0;
	return ch + 1 < q->nchunks ? q->chunk_elems : q->count - (size_t)ch * q->chunk_elems;
}

/* ---------------- coordinator ---------------- */

static bool q_full(struct sgc_comm *c, const struct sgc_query *q, int r)
{
	return q->state[r] == RS_ANSWERING && q->rank_chunks[r] == q->nchunks;
}

static bool q_elig_base(const struct sgc_query *q, int r)
{
	if (q->state[r] == RS_ANSWERING)
		return true;
	if (q->state[r] != RS_NONE)
		return false;
	/* WAIT_ALL, or single-chunk answers the kernel reduces (it picks
	 * who counts): everyone who has not declined is asked.  WAIT_N/ANY
	 * in user space: a rank not asked yet is asked for its first chunks
	 * (with no push credit nobody would answer otherwise); after that
	 * only the ranks whose answers were accepted. */
	return q->policy == SGC_WIRE_WAIT_ALL || q->kernel || q->pull.to[r] == 0;
}

/* Who may be PULLed.  With SGC_F_ASK a rank first has to get the query
 * (q_ask_round); a PULL for a query it never saw would be dropped. */
static bool q_elig(const void *obj, int r)
{
	const struct sgc_query *q = obj;

	if (q->ask && !q->pull.to[r])
		return false;
	return q_elig_base(q, r);
}

/* The header of a PULL for @q; the QUERY starts from it too. */
static void q_hdr(struct sgc_comm *c, const struct sgc_query *q, struct sgc_hdr *t)
{
	sgc_hdr_init(t, SGC_MSG_PULL, c->job_id);
	t->seq = q->seq;
	t->coll = SGC_COLL_QUERY;
	t->nchunks = q->nchunks;
	t->dtype = q->dtype;
	t->op = q->op;
	t->policy = q->policy;
	t->arg = (uint16_t)q->want;
}

static void q_done(struct sgc_comm *c, struct sgc_query *q, int status, const char *fmt, ...)
	SGC_PRINTF(4, 5);

static void q_done(struct sgc_comm *c, struct sgc_query *q, int status, const char *fmt, ...)
{
	va_list ap;

	if (q->done)
		return;
	q->done = true;
	q->status = status;
	pull_reset(c, &q->pull);
	if (status && fmt) {
		char msg[300];

		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		sgc_err(status, "%s", msg);
	}
	if (status == 0) {
		if (!q->rt.resent)
			rtt_sample(&c->rtt, retx_gap(&q->rt, c->now));
		c->st.collectives++;
	} else if (status == -ETIMEDOUT) {
		c->st.timeouts++;
	}
}

static void q_check(struct sgc_comm *c, struct sgc_query *q)
{
	int nw = c->world - 1;

	if (q->policy == SGC_WIRE_WAIT_ALL) {
		if (q->nfull + q->ndeclined == nw)
			q_done(c, q, 0, NULL);
		return;
	}
	if (q->nfull >= q->want)
		q_done(c, q, 0, NULL);
	else if (nw - q->ndeclined < q->want)
		q_done(c, q, -ECANCELED,
		       "scatter-gather #%u: %d of %d workers declined, so the %d answers wanted can no "
		       "longer come", q->seq, q->ndeclined, nw, q->want);
}

/* eBPF path: single-chunk responses are reduced in the kernel. */
/*
 * Copy the kernel slot's view of who answered into q->seen, so that
 * re-PULLs ask only the silent.  The kernel reduces PULLed answers without
 * telling us, so each newly seen one also gives back its PULL budget.
 * Returns how many were new: progress, not loss.
 */
static int q_kernel_refresh(struct sgc_comm *c, struct sgc_query *q)
{
	const struct sgc_bpf_slot *slot = bpf_path_slot(c, SGC_COLL_QUERY, q->seq, 0);
	int r, fresh = 0;

	if (slot) {
		for (r = 1; r < c->world; r++) {
			if (!rank_mask_test(slot->seen, r) || seen_test(q->seen, c->world, 0, r))
				continue;
			seen_set(q->seen, c->world, 0, r);
			fresh++;
			if (!c->pace.push_credit && q->pull.to[r])
				pull_release(c, &q->pull, 1);
		}
	}
	return fresh;
}

/*
 * A kernel-reduced query that timed out: the slot knows who answered,
 * our per-rank state does not (it is filled on completion).  Mark them,
 * so the message names only the silent ranks and the status is true.
 */
static void q_kernel_mark(struct sgc_comm *c, struct sgc_query *q)
{
	const struct sgc_bpf_slot *slot = bpf_path_slot(c, SGC_COLL_QUERY, q->seq, 0);
	int r;

	if (slot) {
		for (r = 1; r < c->world; r++) {
			if (!rank_mask_test(slot->seen, r) || q->state[r] == RS_DECLINED ||
			    q->rank_chunks[r])
				continue;
			if (q->state[r] == RS_NONE)
				q->naccepted++;
			q->state[r] = RS_ANSWERING;
			q->rank_chunks[r] = q->nchunks;
			q->nfull++;
		}
	}
}

/* Take the kernel's result: @seen says who is in it (NULL: ask the slot). */
static void q_take_kernel(struct sgc_comm *c, struct sgc_query *q, const struct sgc_hdr *h,
			  const void *body, const __u64 *seen)
{
	const struct sgc_bpf_slot *slot;
	size_t len = (size_t)h->count * q->elsz;
	int r, answers = 0;

	if (h->count != q_chunk_n(q, 0) || len > c->chunk_bytes)
		return;
	if (!seen && (slot = bpf_path_slot(c, SGC_COLL_QUERY, q->seq, 0)))
		seen = slot->seen;
	/* The query's own rule decides, not what the kernel was told by the
	 * answers: enough of them, or for WAIT_ALL everyone who did not
	 * decline. */
	for (r = 1; r < c->world; r++)
		if (seen && rank_mask_test(seen, r) && q->state[r] != RS_DECLINED)
			answers++;
	if (answers + (q->policy == SGC_WIRE_WAIT_ALL ? q->ndeclined : 0) < q->want) {
		c->st.rejected++;
		return;
	}
	for (r = 1; r < c->world; r++) {
		if (!seen || !rank_mask_test(seen, r) || q->state[r] == RS_DECLINED)
			continue;
		if (q->state[r] == RS_NONE)
			q->naccepted++;
		q->state[r] = RS_ANSWERING;
		if (!q->rank_chunks[r]++)
			q->nfull++;
	}
	if (!q->acc[0])
		q->acc[0] = pkt_alloc(c);
	if (!q->acc[0]) {
		q_done(c, q, -ENOMEM, "scatter-gather #%u: out of memory", q->seq);
		return;
	}
	if (len)
		memcpy(pkt_body(q->acc[0]), body, len);
	q->nseen[0] = 1;
	q_done(c, q, 0, NULL);
}

void sg_kernel_result(struct sgc_comm *c, const struct sgc_hdr *h, const void *body,
		      const __u64 *seen)
{
	struct sgc_query *q = c->sg.active;

	if (!q || q->done || q->seq != h->seq || h->chunk != 0 || !q->kernel) {
		c->st.late++;
		return;
	}
	q_take_kernel(c, q, h, body, seen);
}

/*
 * A decline never reaches the kernel's count, so a WAIT_ALL query whose
 * other workers all answered is finished here from the slot.
 */
static void q_kernel_check_declines(struct sgc_comm *c, struct sgc_query *q)
{
	static const __u64 nobody[SGC_BPF_SEEN_WORDS];
	static const uint8_t zeros[SGC_MAX_BODY];
	struct sgc_hdr h = { .count = (uint16_t)q_chunk_n(q, 0) };
	const struct sgc_bpf_slot *slot;

	if (q->policy != SGC_WIRE_WAIT_ALL)
		return;
	if (q->ndeclined == c->world - 1) {
		q_take_kernel(c, q, &h, zeros, nobody);	/* nobody answers */
		return;
	}
	/* q_take_kernel() is given the slot's seen, so it reads no other. */
	slot = bpf_path_slot(c, SGC_COLL_QUERY, q->seq, 0);
	if (slot && slot->nseen + q->ndeclined == c->world - 1)
		q_take_kernel(c, q, &h, slot->body, slot->seen);
}

void sg_rx_coord(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_hdr *h = rx->hdr;
	struct sgc_query *q = c->sg.slots[h->seq % SGC_QRING];
	size_t n = h->count;
	struct sgc_pkt *p;
	int r = h->rank;

	if (!q || q->seq != h->seq || q->done) {
		c->st.late++;
		return;
	}
	/* The query's completion rule, as sent, comes back with every
	 * answer; one that says another is not an answer to this query
	 * (gather_prog drops it too: drop_mismatch). */
	if (h->policy != q->policy || h->arg != (uint16_t)q->want) {
		c->st.rejected++;
		return;
	}
	retx_heard(&q->rt, c->now);
	if (h->flags & SGC_F_DECLINE) {
		if (q->state[r] == RS_NONE) {
			/* What it was PULLed or asked for will not come: give
			 * that budget back, or declines would starve the rounds. */
			if (q->pull.to[r] > c->pace.push_credit)
				pull_release(c, &q->pull, q->pull.to[r] - c->pace.push_credit);
			q->state[r] = RS_DECLINED;
			q->ndeclined++;
			if (q->kernel)
				q_kernel_check_declines(c, q);
			if (!q->done)
				q_check(c, q);
		} else {
			c->st.duplicates++;
		}
		return;
	}
	if (h->dtype != q->dtype || h->op != q->op || h->nchunks != q->nchunks ||
	    n != q_chunk_n(q, h->chunk) || q->state[r] == RS_DECLINED) {
		c->st.rejected++;
		return;
	}
	if (q->state[r] == RS_NONE) {
		if (q->naccepted >= q->want) {
			c->st.late++;	/* more answers than wanted */
			return;
		}
		q->state[r] = RS_ANSWERING;
		q->naccepted++;
	}
	if (seen_test(q->seen, c->world, h->chunk, r)) {
		c->st.duplicates++;
		return;
	}
	seen_set(q->seen, c->world, h->chunk, r);
	{
		struct sgc_hdr t;

		q_hdr(c, q, &t);
		if (pull_got(c, &q->pull, &t, q->seen, r, h->chunk))
			q->rt.resent = true;
	}
	p = q->acc[h->chunk];
	if (!p) {
		p = q->acc[h->chunk] = pkt_alloc(c);
		if (!p) {
			q_done(c, q, -ENOMEM, "scatter-gather #%u: out of memory", q->seq);
			return;
		}
	}
	if (!n)
		;
	else if (q->nseen[h->chunk]++ == 0)
		memcpy(pkt_body(p), rx->body, n * q->elsz);
	else
		sgc_reduce_into(pkt_body(p), rx->body, n, q->dtype, q->op);
	if (++q->rank_chunks[r] == q->nchunks) {
		q->nfull++;
		q_check(c, q);
	}
}

static void q_send_query(struct sgc_comm *c, struct sgc_query *q, int r)
{
	io_send(c, q->qpkt, &c->peers[r].addr);
}

static bool q_silent(struct sgc_comm *c, struct sgc_query *q, int r);

struct silent_ctx {
	struct sgc_comm *c;
	struct sgc_query *q;
};

static bool silent_pred(const void *arg, int r)
{
	const struct silent_ctx *s = arg;

	return q_silent(s->c, s->q, r);
}

static bool q_silent(struct sgc_comm *c, struct sgc_query *q, int r)
{
	if (q->state[r] == RS_DECLINED)
		return false;
	if (q->state[r] == RS_ANSWERING)
		return !q_full(c, q, r);
	return q->policy == SGC_WIRE_WAIT_ALL || q->naccepted < q->want;
}

static void q_timer(struct sgc_comm *c, struct sgc_query *q, uint64_t now)
{
	uint64_t base = rto_now(&c->rtt), wait = retx_wait(&q->rt, base);
	int r;

	if (retx_expired(&q->rt, now)) {
		struct silent_ctx sc = { c, q };
		char list[120];
		int total = 0;

		if (q->kernel)
			q_kernel_mark(c, q);
		for (r = 1; r < c->world; r++)
			total += q_silent(c, q, r);
		sgc_rank_list(list, sizeof(list), 1, c->world, silent_pred, &sc);
		q_done(c, q, -ETIMEDOUT,
		       "scatter-gather #%u: %d of the %d answers wanted came within %u ms; no (complete) "
		       "answer from rank%s %s", q->seq, q->nfull, q->want,
		       (unsigned)((q->rt.deadline - q->t_start) / 1000000ULL), total > 1 ? "s" : "", list);
		return;
	}
	/* eBPF path with PULLs out: look at the slot often, so the budget
	 * flows back and slowness is not taken for loss. */
	if (q->kernel && q->pull.out && now >= q->rt.refresh_at) {
		if (q_kernel_refresh(c, q))
			retx_heard(&q->rt, now);
		q->rt.refresh_at = now + kernel_refresh_gap(c);
	}
	if (!retx_due(&q->rt, now))
		return;
	if (retx_quiet(&q->rt, now, wait)) {
		struct sgc_hdr t;

		if (q->kernel)
			q_kernel_refresh(c, q);
		/* Only the ranks asked for data so far (by credit or PULL) owe
		 * an answer; the others are silent because they wait for us.
		 * Asked ranks that stayed silent are asked again: at once, or
		 * (SGC_F_ASK) by the next rounds, which keep to the budget. */
		for (r = 1; r < c->world; r++) {
			if (q->state[r] != RS_NONE || !q->pull.to[r] || !q_silent(c, q, r) ||
			    (q->kernel && seen_test(q->seen, c->world, 0, r)))
				continue;
			if (q->ask)
				q->pull.to[r] = 0;
			else
				q_send_query(c, q, r);
			c->st.retransmits++;
		}
		q_hdr(c, q, &t);
		pull_again(c, &q->pull, &t, q->seen, q_elig, q);
		retx_backoff(&q->rt);
		retx_resent(&q->rt, now, base);
	} else {
		retx_rearm(&q->rt, wait);
	}
}

/* Who may get the query in the next round (SGC_F_ASK): not asked yet. */
static bool q_askable(const void *obj, int r)
{
	return q_elig_base(obj, r);
}

/*
 * No push credit (more workers than the PULL budget): instead of a query
 * to everyone and then a PULL to each, the query goes out in rounds to as
 * many ranks as the budget has room for, with SGC_F_ASK, so that it is
 * the PULL of their first chunk.  One datagram each way per worker.
 */
static void q_ask_round(struct sgc_comm *c, struct sgc_query *q)
{
	struct sgc_hdr t;

	q_hdr(c, q, &t);
	pull_more_cloned(c, &q->pull, &t, q_askable, q, q->qpkt);
}

uint64_t sg_timers(struct sgc_comm *c, uint64_t now)
{
	struct sgc_query *q = c->sg.active;
	struct sgc_hdr t;

	if (c->rank != 0 || !q || q->done)
		return UINT64_MAX;
	q_timer(c, q, now);
	if (q->done)
		return now;
	q_hdr(c, q, &t);
	if (q->ask)
		q_ask_round(c, q);
	if (q->kernel && c->bpf && !q->ask)
		pull_more_cloned(c, &q->pull, &t, q_elig, q, NULL);
	else if (!q->kernel)
		pull_more(c, &q->pull, &t, q->nchunks, q_elig, q);
	if (q->kernel && q->pull.out)
		return min_u64(min_u64(q->rt.timer, q->rt.deadline), q->rt.refresh_at);
	return min_u64(q->rt.timer, q->rt.deadline);
}

static bool any_rank(const void *obj, int r)
{
	return true;
}

int sg_query_start(struct sgc_comm *c, const void *query, size_t qlen, void *result,
		   size_t count, enum sgc_dtype dt, enum sgc_op op, int policy, unsigned wait_n,
		   unsigned timeout_ms, uint16_t flags, struct sgc_query **out)
{
	struct sgc_query *q;
	struct sgc_hdr *h;
	uint64_t nchunks;
	int nw = c->world - 1;

	*out = NULL;

	if (c->rank != 0)
		return sgc_err(-EINVAL, "sgc_scatter_gather() is for the coordinator (rank 0); rank %d "
			       "should call sgc_serve() to answer queries", c->rank);
	if (c->dead)
		return sgc_err(c->dead_err, "the job has ended");
	if (nw < 1)
		return sgc_err(-EINVAL, "scatter-gather needs at least one worker (world size is 1)");
	if (!sgc_dtype_valid(dt) || (!sgc_op_valid(op) && op != SGC_CUSTOM))
		return sgc_err(-EINVAL, "scatter-gather: unknown dtype %d or op %d", (int)dt, (int)op);
	if (op == SGC_CUSTOM &&
	    (!kernel_reduces_kind(c, SGC_COLL_QUERY) || !bpf_path_has_custom(c) ||
	     sgc_nchunks(count, sgc_dtype_size(dt), c->chunk_bytes) != 1))
		return sgc_err(-EOPNOTSUPP, "scatter-gather with SGC_CUSTOM needs the eBPF path with a "
			       "custom reduction loaded, and answers of one datagram (at most %u bytes)",
			       c->chunk_bytes);
	if (qlen > c->chunk_bytes || (qlen && !query))
		return sgc_err(qlen > c->chunk_bytes ? -EMSGSIZE : -EINVAL,
			       "scatter-gather: the query is %zu bytes; at most %u fit (sgc_max_query())",
			       qlen, c->chunk_bytes);
	if (count && !result)
		return sgc_err(-EINVAL, "scatter-gather: NULL result buffer for %zu elements", count);
	if (count > UINT32_MAX)
		return sgc_err(-EMSGSIZE, "scatter-gather: at most 2^32-1 response elements");
	if (policy == SGC_WIRE_WAIT_N && (wait_n < 1 || wait_n > (unsigned)nw))
		return sgc_err(-EINVAL, "scatter-gather: WAIT_N needs 1 <= wait_n <= %d (the workers), "
			       "got %u", nw, wait_n);
	nchunks = sgc_nchunks(count, sgc_dtype_size(dt), c->chunk_bytes);

	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->seq = c->sg.next_seq++;
	q->dtype = (uint8_t)dt;
	q->op = (uint8_t)op;
	q->policy = (uint8_t)policy;
	q->flags = flags;
	q->count = count;
	q->elsz = sgc_dtype_size(dt);
	q->nchunks = (uint32_t)nchunks;
	q->chunk_elems = (uint32_t)(c->chunk_bytes / q->elsz);
	q->want = policy == SGC_WIRE_WAIT_ALL ? nw : policy == SGC_WIRE_WAIT_N ? (int)wait_n : 1;
	bpf_path_engage(c);
	q->kernel = kernel_reduces_kind(c, SGC_COLL_QUERY) && nchunks == 1;
	q->ask = !c->pace.push_credit;
	q->result = result;
	q->acc = calloc(nchunks, sizeof(*q->acc));
	q->nseen = calloc(nchunks, sizeof(*q->nseen));
	q->seen = calloc(bitmap_bytes(nchunks * (size_t)c->world), 1);
	q->state = calloc((size_t)c->world, 1);
	q->rank_chunks = calloc((size_t)c->world, sizeof(*q->rank_chunks));
	q->qpkt = pkt_alloc(c);
	/* Answers (and the PULLs and ASK rounds for them) come from every
	 * worker at once, often one frame each through a veth that runs XDP
	 * (256-frame ring; the bench's responder): the ring's budget. */
	if (!q->acc || !q->nseen || !q->seen || !q->state || !q->rank_chunks || !q->qpkt ||
	    pull_init(c, &q->pull, q->nchunks, SGC_PULL_BUDGET)) {
		query_free(c, q);
		return sgc_err(-ENOMEM, "scatter-gather: out of memory for %zu elements", count);
	}
	query_free(c, c->sg.slots[q->seq % SGC_QRING]);
	c->sg.slots[q->seq % SGC_QRING] = q;
	c->sg.active = q;

	h = pkt_hdr(q->qpkt);
	q_hdr(c, q, h);
	h->type = SGC_MSG_QUERY;
	h->flags = flags | (q->ask ? SGC_F_ASK : 0);
	h->aux = (uint32_t)count;
	if (qlen)
		memcpy(pkt_body(q->qpkt), query, qlen);
	q->qpkt->len = (uint32_t)(SGC_HDR_SIZE + qlen);

	c->now = now_ns();
	q->t_start = c->now;
	retx_start(&q->rt, c->now,
		   c->now + (timeout_ms ? timeout_ms * 1000000ULL : c->rtt.timeout_ns),
		   rto_now(&c->rtt));
	if (c->bpf)
		bpf_path_query(c, q->seq, q->policy, (uint16_t)q->want);
	if (q->ask)
		q_ask_round(c, q);
	else
		send_to_ranks(c, q->qpkt, 1, any_rank, NULL);

	*out = q;
	return 0;
}

int sg_query_end(struct sgc_comm *c, struct sgc_query *q, int err, struct sgc_sg_status *status)
{
	uint32_t ch;
	int r;

	if (!err)
		err = q->status;

	if (status) {
		unsigned char *answered = OPTS_GET(status, answered, NULL);

		OPTS_SET(status, nanswered, q->nfull);
		OPTS_SET(status, ndeclined, q->ndeclined);
		if (answered) {
			memset(answered, 0, (size_t)c->world);
			for (r = 1; r < c->world; r++)
				answered[r] = q_full(c, q, r);
		}
	}
	if (!err && q->count) {
		for (ch = 0; ch < q->nchunks; ch++) {
			size_t n = q_chunk_n(q, ch) * q->elsz;
			uint8_t *dst = q->result + (size_t)ch * q->chunk_elems * q->elsz;

			if (q->acc[ch] && q->nseen[ch])
				memcpy(dst, pkt_body(q->acc[ch]), n);
			else
				memset(dst, 0, n);
		}
	}
	c->sg.active = NULL;
	query_free(c, q);
	return err;
}

/* ---------------- worker ---------------- */

static void q_send_chunk(struct sgc_comm *c, struct sgc_query *q, uint32_t ch, uint16_t flags)
{
	struct sgc_pkt *p = pkt_alloc(c);
	struct sgc_hdr *h;
	/* No response vector (a STOP, even one that claims elements): empty. */
	size_t n = flags || !q->resp ? 0 : q_chunk_n(q, ch);

	if (!p)
		return;
	h = pkt_hdr(p);
	sgc_hdr_init(h, SGC_MSG_CONTRIB, c->job_id);
	h->seq = q->seq;
	h->coll = SGC_COLL_QUERY;
	h->chunk = ch;
	h->nchunks = q->nchunks;
	h->rank = (uint16_t)c->rank;
	h->count = (uint16_t)n;
	h->dtype = q->dtype;
	h->op = q->op;
	h->policy = q->policy;
	h->arg = (uint16_t)q->want;	/* gather_prog sizes WAIT_N by it */
	h->flags = flags;
	h->aux = c->colls.base;
	if (n)
		memcpy(pkt_body(p), q->resp + (size_t)ch * q->chunk_elems * q->elsz, n * q->elsz);
	p->len = (uint32_t)(SGC_HDR_SIZE + n * q->elsz);
	io_send(c, p, &c->cfg.coord);
	pkt_put(c, p);
}

/* Send what the coordinator gets unasked: the credit chunks, a decline,
 * or the empty answer to a STOP. */
static void q_send_answer(struct sgc_comm *c, struct sgc_query *q)
{
	uint32_t ch, credit = c->pace.push_credit < q->nchunks ? c->pace.push_credit : q->nchunks;

	if (q->declined) {
		q_send_chunk(c, q, 0, SGC_F_DECLINE);
		return;
	}
	/* SGC_F_ASK: the query asks for chunk 0 (again, if it is resent). */
	if (!credit && (q->flags & SGC_F_ASK))
		credit = 1;
	for (ch = 0; ch < q->nchunks; ch++)
		if (ch < credit || (q->pending_pull && bit_test(q->pending_pull, ch)))
			q_send_chunk(c, q, ch, 0);
	free(q->pending_pull);
	q->pending_pull = NULL;
}

static void q_handle(struct sgc_comm *c, struct sgc_query *q)
{
	int rc;

	q->answered = true;
	if (q->flags & SGC_F_STOP) {
		c->sg.stop_seen = true;
		q_send_answer(c, q);
		return;
	}
	q->resp = calloc(q->count ? q->count : 1, q->elsz);
	if (!q->resp) {
		q->declined = true;
		q_send_answer(c, q);
		return;
	}
	rc = c->sg.handler(q->qdata, q->qlen, q->resp, q->count, (enum sgc_dtype)q->dtype,
			c->sg.handler_arg);
	if (rc < 0)
		c->sg.handler_err = rc;
	q->declined = rc != 0;
	q_send_answer(c, q);
}

/* Answer the newest waiting query if sgc_serve() is running. */
void sg_worker_process(struct sgc_comm *c)
{
	struct sgc_query *q = c->sg.unhandled;

	if (!c->sg.serving || !q || c->sg.handler_err || c->sg.stop_seen)
		return;
	c->sg.unhandled = NULL;
	q_handle(c, q);
}

void sg_rx_worker(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_hdr *h = rx->hdr;
	struct sgc_query *q = c->sg.slots[h->seq % SGC_QRING];
	uint32_t ch, end;

	c->sg.last_query = c->now;
	if (h->type == SGC_MSG_PULL) {
		if (!q || q->seq != h->seq) {
			c->st.late++;
			return;
		}
		end = h->chunk + h->aux < q->nchunks ? h->chunk + h->aux : q->nchunks;
		if (!q->answered) {
			if (!q->pending_pull)
				q->pending_pull = calloc(bitmap_bytes(q->nchunks), 1);
			if (q->pending_pull)
				for (ch = h->chunk; ch < end; ch++)
					bit_set(q->pending_pull, ch);
			return;
		}
		if (q->declined)
			return;
		for (ch = h->chunk; ch < end; ch++)
			q_send_chunk(c, q, ch, 0);
		return;
	}

	/* QUERY */
	if (q && q->seq == h->seq) {
		if (q->answered) {
			q_send_answer(c, q);	/* our answer was lost */
			c->st.retransmits++;
		}
		return;
	}
	if (c->sg.any_seen && h->seq - c->sg.newest > UINT32_MAX / 2) {
		c->st.late++;		/* older than one we have seen */
		return;
	}
	if (sgc_nchunks(h->aux, sgc_dtype_size(h->dtype), c->chunk_bytes) != h->nchunks) {
		c->st.rejected++;
		return;
	}
	q = calloc(1, sizeof(*q));
	if (!q)
		return;
	q->seq = h->seq;
	q->dtype = h->dtype;
	q->op = h->op;
	q->policy = h->policy;
	q->flags = h->flags;
	q->count = h->aux;
	q->want = h->arg;
	q->elsz = sgc_dtype_size(h->dtype);
	q->nchunks = h->nchunks;
	q->chunk_elems = (uint32_t)(c->chunk_bytes / q->elsz);
	q->qlen = rx->body_len;
	q->qdata = malloc(q->qlen ? q->qlen : 1);
	if (!q->qdata) {
		free(q);
		return;
	}
	memcpy(q->qdata, rx->body, q->qlen);
	if (c->sg.slots[q->seq % SGC_QRING] == c->sg.unhandled)
		c->sg.unhandled = NULL;
	query_free(c, c->sg.slots[q->seq % SGC_QRING]);
	c->sg.slots[q->seq % SGC_QRING] = q;
	c->sg.any_seen = true;
	c->sg.newest = q->seq;
	/* A newer query means the coordinator is done with older ones. */
	if (c->sg.unhandled && c->sg.unhandled != q && !c->sg.unhandled->answered)
		query_free(c, c->sg.unhandled);
	c->sg.unhandled = q;
	sg_worker_process(c);
}

void sg_free(struct sgc_comm *c)
{
	int i;

	for (i = 0; i < SGC_QRING; i++)
		query_free(c, c->sg.slots[i]);
	c->sg.unhandled = NULL;
	c->sg.active = NULL;
}
