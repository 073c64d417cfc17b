// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The raw scatter-gather primitive of the thesis: the coordinator sends a
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

#include "engine.h"
#include "sgc_common.h"

#define BACKOFF_MAX 6

enum { RS_NONE, RS_ANSWERING, RS_DECLINED };

static void query_free(struct sgc_comm *c, struct sgc_query *q)
{
	uint32_t i;

	if (!q)
		return;
	if (c->qslots[q->seq % SGC_QRING] == q)
		c->qslots[q->seq % SGC_QRING] = NULL;
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

static void q_tmpl(struct sgc_comm *c, const struct sgc_query *q, struct sgc_hdr *t)
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
		if (!q->retx)
			rtt_sample(c, c->now > q->timer_base ? c->now - q->timer_base : 0);
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
static bool q_in_kernel(const struct sgc_comm *c, const struct sgc_query *q)
{
	return q->kernel;
}

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
			if (!(slot->seen[r / 64] & (1ULL << (r % 64))) || bit_test(q->seen, (size_t)r))
				continue;
			bit_set(q->seen, (size_t)r);
			fresh++;
			if (!c->push_credit && q->pull.to[r])
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
			if (!(slot->seen[r / 64] & (1ULL << (r % 64))) || q->state[r] == RS_DECLINED ||
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
	int r;

	if (h->count != q_chunk_n(q, 0) || len > c->chunk_bytes)
		return;
	if (!seen && (slot = bpf_path_slot(c, SGC_COLL_QUERY, q->seq, 0)))
		seen = slot->seen;
	for (r = 1; r < c->world; r++) {
		if (!seen || !(seen[r / 64] & (1ULL << (r % 64))) || q->state[r] == RS_DECLINED)
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
	struct sgc_query *q = c->qcur;

	if (!q || q->done || q->seq != h->seq || h->chunk != 0 || !q_in_kernel(c, q)) {
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
	struct sgc_query *q = c->qslots[h->seq % SGC_QRING];
	size_t n = h->count;
	struct sgc_pkt *p;
	int r = h->rank;

	if (!q || q->seq != h->seq || q->done) {
		c->st.late++;
		return;
	}
	q->last_rx = c->now;
	q->backoff = 0;
	if (h->flags & SGC_F_DECLINE) {
		if (q->state[r] == RS_NONE) {
			/* What it was PULLed or asked for will not come: give
			 * that budget back, or declines would starve the rounds. */
			if (q->pull.to[r] > c->push_credit)
				pull_release(c, &q->pull, q->pull.to[r] - c->push_credit);
			q->state[r] = RS_DECLINED;
			q->ndeclined++;
			if (q_in_kernel(c, q))
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
	if (bit_test(q->seen, (size_t)h->chunk * c->world + r)) {
		c->st.duplicates++;
		return;
	}
	bit_set(q->seen, (size_t)h->chunk * c->world + r);
	{
		struct sgc_hdr t;

		q_tmpl(c, q, &t);
		if (pull_got(c, &q->pull, &t, q->seen, r, h->chunk))
			q->retx = true;
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
	uint64_t wait = rto_now(c) << q->backoff;
	int r;

	if (now >= q->deadline) {
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
		       (unsigned)((q->deadline - q->timer_base) / 1000000ULL), total > 1 ? "s" : "", list);
		return;
	}
	/* eBPF path with PULLs out: look at the slot often, so the budget
	 * flows back and slowness is not taken for loss. */
	if (q->kernel && q->pull.out && now >= q->refresh_at) {
		if (q_kernel_refresh(c, q)) {
			q->last_rx = now;
			q->backoff = 0;
		}
		q->refresh_at = now + kmode_refresh_gap(c);
	}
	if (now < q->timer)
		return;
	if (now - q->last_rx >= wait) {
		struct sgc_hdr t;

		q->retx = true;
		if (q->kernel)
			q_kernel_refresh(c, q);
		/* Only the ranks asked for data so far (by credit or PULL) owe
		 * an answer; the others are silent because they wait for us.
		 * Asked ranks that stayed silent are asked again: at once, or
		 * (SGC_F_ASK) by the next rounds, which keep to the budget. */
		for (r = 1; r < c->world; r++) {
			if (q->state[r] != RS_NONE || !q->pull.to[r] || !q_silent(c, q, r) ||
			    (q->kernel && bit_test(q->seen, (size_t)r)))
				continue;
			if (q->ask)
				q->pull.to[r] = 0;
			else
				q_send_query(c, q, r);
			c->st.retransmits++;
		}
		q_tmpl(c, q, &t);
		pull_again(c, &q->pull, &t, q->seen, q_elig, q);
		if (q->backoff < BACKOFF_MAX)
			q->backoff++;
		q->timer = now + (rto_now(c) << q->backoff);
	} else {
		q->timer = q->last_rx + wait;
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

	q_tmpl(c, q, &t);
	pull_more_fanout(c, &q->pull, &t, q_askable, q, q->qpkt);
}

uint64_t sg_timers(struct sgc_comm *c, uint64_t now)
{
	struct sgc_query *q = c->qcur;
	struct sgc_hdr t;

	if (c->rank != 0 || !q || q->done)
		return UINT64_MAX;
	q_timer(c, q, now);
	if (q->done)
		return now;
	q_tmpl(c, q, &t);
	if (q->ask)
		q_ask_round(c, q);
	if (q->kernel && c->bpf && !q->ask)
		pull_more_fanout(c, &q->pull, &t, q_elig, q, NULL);
	else if (!q->kernel)
		pull_more(c, &q->pull, &t, q->nchunks, q_elig, q);
	if (q->kernel && q->pull.out)
		return min_u64(min_u64(q->timer, q->deadline), q->refresh_at);
	return min_u64(q->timer, q->deadline);
}

static bool any_rank(const void *obj, int r)
{
	return true;
}

static int sg_run(struct sgc_comm *c, const void *query, size_t qlen, void *result, size_t count,
		  enum sgc_dtype dt, enum sgc_op op, int policy, unsigned wait_n, unsigned timeout_ms,
		  uint16_t flags, struct sgc_sg_status *status)
{
	struct sgc_query *q;
	struct sgc_hdr *h;
	uint64_t nchunks;
	int r, err, nw = c->world - 1;
	uint32_t ch;

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
	    (!kmode(c) || !bpf_path_has_custom(c) ||
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
	q->seq = c->next_qseq++;
	q->dtype = (uint8_t)dt;
	q->op = (uint8_t)op;
	q->policy = (uint8_t)policy;
	q->flags = flags;
	q->count = count;
	q->elsz = sgc_dtype_size(dt);
	q->nchunks = (uint32_t)nchunks;
	q->chunk_elems = (uint32_t)(c->chunk_bytes / q->elsz);
	q->want = policy == SGC_WIRE_WAIT_ALL ? nw : policy == SGC_WIRE_WAIT_N ? (int)wait_n : 1;
	q->kernel = kmode(c) && nchunks == 1;
	q->ask = !c->push_credit;
	q->result = result;
	q->acc = calloc(nchunks, sizeof(*q->acc));
	q->nseen = calloc(nchunks, sizeof(*q->nseen));
	q->seen = calloc((nchunks * (size_t)c->world + 7) / 8, 1);
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
	query_free(c, c->qslots[q->seq % SGC_QRING]);
	c->qslots[q->seq % SGC_QRING] = q;
	c->qcur = q;

	h = pkt_hdr(q->qpkt);
	q_tmpl(c, q, h);
	h->type = SGC_MSG_QUERY;
	h->flags = flags | (q->ask ? SGC_F_ASK : 0);
	h->aux = (uint32_t)count;
	if (qlen)
		memcpy(pkt_body(q->qpkt), query, qlen);
	q->qpkt->len = (uint32_t)(SGC_HDR_SIZE + qlen);

	c->now = now_ns();
	q->timer_base = c->now;
	q->deadline = c->now + (timeout_ms ? timeout_ms * 1000000ULL : c->timeout_ns);
	q->last_rx = c->now;
	q->timer = c->now + rto_now(c);
	if (c->bpf)
		bpf_path_window(c);
	if (q->ask)
		q_ask_round(c, q);
	else
		fanout(c, q->qpkt, 1, any_rank, NULL);

	err = 0;
	while (!q->done && !err)
		err = engine_progress(c, UINT64_MAX);
	io_flush(c);
	if (!err)
		err = q->status;

	if (status && status->sz >= sizeof(*status)) {
		status->nanswered = q->nfull;
		status->ndeclined = q->ndeclined;
		if (status->answered) {
			memset(status->answered, 0, (size_t)c->world);
			for (r = 1; r < c->world; r++)
				status->answered[r] = q_full(c, q, r);
		}
	}
	if (!err && count) {
		for (ch = 0; ch < q->nchunks; ch++) {
			size_t n = q_chunk_n(q, ch) * q->elsz;
			uint8_t *dst = (uint8_t *)result + (size_t)ch * q->chunk_elems * q->elsz;

			if (q->acc[ch] && q->nseen[ch])
				memcpy(dst, pkt_body(q->acc[ch]), n);
			else
				memset(dst, 0, n);
		}
	}
	c->qcur = NULL;
	query_free(c, q);
	return err;
}

int sgc_scatter_gather(sgc_comm *c, const void *query, size_t query_len, void *result,
		       size_t count, enum sgc_dtype dt, enum sgc_op op,
		       const struct sgc_sg_opts *opts, struct sgc_sg_status *status)
{
	struct sgc_sg_opts o = { .sz = sizeof(o), .policy = SGC_WAIT_ALL };

	if (!c)
		return sgc_err(-EINVAL, "sgc_scatter_gather: NULL communicator");
	if (opts) {
		if (opts->sz < offsetof(struct sgc_sg_opts, timeout_ms) + sizeof(unsigned))
			return sgc_err(-EINVAL, "sgc_scatter_gather: set opts.sz = sizeof(struct sgc_sg_opts)");
		memcpy(&o, opts, opts->sz < sizeof(o) ? opts->sz : sizeof(o));
	}
	if ((unsigned)o.policy > SGC_WAIT_ANY)
		return sgc_err(-EINVAL, "sgc_scatter_gather: unknown policy %d", (int)o.policy);
	if (status && status->sz < sizeof(*status))
		return sgc_err(-EINVAL, "sgc_scatter_gather: set status.sz = sizeof(struct sgc_sg_status)");
	return sg_run(c, query, query_len, result, count, dt, op, (int)o.policy, o.wait_n,
		      o.timeout_ms, 0, status);
}

int sgc_serve_stop(sgc_comm *c)
{
	if (!c)
		return sgc_err(-EINVAL, "sgc_serve_stop: NULL communicator");
	return sg_run(c, NULL, 0, NULL, 0, SGC_UINT8, SGC_SUM, SGC_WIRE_WAIT_ALL, 0, 0,
		      SGC_F_STOP, NULL);
}

size_t sgc_max_query(const sgc_comm *c)
{
	return c ? c->chunk_bytes : 0;
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
	h->aux = c->base;
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
	uint32_t ch, credit = c->push_credit < q->nchunks ? c->push_credit : q->nchunks;

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
		c->stop_seen = true;
		q_send_answer(c, q);
		return;
	}
	q->resp = calloc(q->count ? q->count : 1, q->elsz);
	if (!q->resp) {
		q->declined = true;
		q_send_answer(c, q);
		return;
	}
	rc = c->handler(q->qdata, q->qlen, q->resp, q->count, (enum sgc_dtype)q->dtype,
			c->handler_arg);
	if (rc < 0)
		c->handler_err = rc;
	q->declined = rc != 0;
	q_send_answer(c, q);
}

/* Answer the newest waiting query if sgc_serve() is running. */
static void sg_worker_process(struct sgc_comm *c)
{
	struct sgc_query *q = c->qpending;

	if (!c->serving || !q || c->handler_err || c->stop_seen)
		return;
	c->qpending = NULL;
	q_handle(c, q);
}

void sg_rx_worker(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_hdr *h = rx->hdr;
	struct sgc_query *q = c->qslots[h->seq % SGC_QRING];
	uint32_t ch, end;

	c->last_query = c->now;
	if (h->type == SGC_MSG_PULL) {
		if (!q || q->seq != h->seq) {
			c->st.late++;
			return;
		}
		end = h->chunk + h->aux < q->nchunks ? h->chunk + h->aux : q->nchunks;
		if (!q->answered) {
			if (!q->pending_pull)
				q->pending_pull = calloc((q->nchunks + 7) / 8, 1);
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
	if (c->qseen && h->seq - c->qnewest > UINT32_MAX / 2) {
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
	if (c->qslots[q->seq % SGC_QRING] == c->qpending)
		c->qpending = NULL;
	query_free(c, c->qslots[q->seq % SGC_QRING]);
	c->qslots[q->seq % SGC_QRING] = q;
	c->qseen = true;
	c->qnewest = q->seq;
	/* A newer query means the coordinator is done with older ones. */
	if (c->qpending && c->qpending != q && !c->qpending->answered)
		query_free(c, c->qpending);
	c->qpending = q;
	sg_worker_process(c);
}

int sgc_serve(sgc_comm *c, sgc_handler_fn fn, void *arg, const struct sgc_serve_opts *opts)
{
	uint64_t idle;
	int err = 0;

	if (!c || !fn)
		return sgc_err(-EINVAL, "sgc_serve: NULL %s", c ? "handler" : "communicator");
	if (c->rank == 0)
		return sgc_err(-EINVAL, "sgc_serve() is for workers; the coordinator (rank 0) sends "
			       "queries with sgc_scatter_gather() and ends the service with sgc_serve_stop()");
	if (c->dead)
		return sgc_err(c->dead_err, "the job has ended");
	if (opts && opts->sz < offsetof(struct sgc_serve_opts, idle_timeout_ms) + sizeof(unsigned))
		return sgc_err(-EINVAL, "sgc_serve: set opts.sz = sizeof(struct sgc_serve_opts)");
	idle = opts && opts->idle_timeout_ms ? opts->idle_timeout_ms * 1000000ULL : c->timeout_ns;

	c->handler = fn;
	c->handler_arg = arg;
	c->handler_err = 0;
	c->serving = true;
	c->last_query = c->now = now_ns();
	sg_worker_process(c);
	for (;;) {
		if (c->stop_seen) {
			err = 0;
			break;
		}
		if (c->handler_err) {
			err = sgc_err(c->handler_err, "sgc_serve: the handler returned %d", c->handler_err);
			break;
		}
		if (c->dead) {
			err = sgc_err(c->dead_err, "sgc_serve: the coordinator ended the job");
			break;
		}
		if (c->now - c->last_query >= idle) {
			err = sgc_err(-ETIMEDOUT, "sgc_serve: no query from the coordinator for %llu ms "
				      "(idle timeout): is rank 0 running, and does it call "
				      "sgc_serve_stop() at the end?", (unsigned long long)(idle / 1000000ULL));
			break;
		}
		err = engine_progress(c, c->last_query + idle);
		if (err)
			break;
		sg_worker_process(c);
	}
	io_flush(c);
	c->serving = false;
	c->stop_seen = false;
	c->handler = NULL;
	return err;
}

void sg_free(struct sgc_comm *c)
{
	int i;

	for (i = 0; i < SGC_QRING; i++)
		query_free(c, c->qslots[i]);
	c->qpending = NULL;
	c->qcur = NULL;
}
