// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The collective engine of the user-space path: coordinator and worker
 * state machines, pacing, loss recovery and retention.
 *
 * Coordinator: a contribution chunk is checked (source, consistency,
 * duplicate), reduced into the chunk's accumulator, which is also the
 * result datagram; when all contributors are in, the chunk is sent to the
 * receivers.  Chunks past the workers' push credit are PULLed in paced
 * rounds.  Quiet collectives get their missing chunks PULLed again.
 * Results are retained until every worker's watermark has passed them.
 *
 * Worker: pushes its first chunks, answers PULLs, copies result chunks
 * into the caller's buffer (or stages them when the call has not come
 * yet) and NACKs missing results when the coordinator goes quiet.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "sgc_common.h"

#define BACKOFF_MAX 6

static const char *kind_name(int kind)
{
	switch (kind) {
	case SGC_COLL_ALLREDUCE: return "allreduce";
	case SGC_COLL_REDUCE: return "reduce";
	case SGC_COLL_BCAST: return "broadcast";
	case SGC_COLL_BARRIER: return "barrier";
	case SGC_COLL_QUERY: return "scatter-gather";
	default: return "collective";
	}
}

static bool is_contributor(const struct sgc_coll *co, int r)
{
	return co->kind == SGC_COLL_BCAST ? r == co->root : true;
}

static bool is_data_receiver(const struct sgc_coll *co, int r)
{
	switch (co->kind) {
	case SGC_COLL_ALLREDUCE: return true;
	case SGC_COLL_REDUCE: return r == co->root;
	case SGC_COLL_BCAST: return r != co->root;
	default: return false;
	}
}

static size_t chunk_off(const struct sgc_coll *co, uint32_t ch)
{
	return (size_t)ch * co->chunk_elems * co->elsz;
}

static size_t chunk_n(const struct sgc_coll *co, uint32_t ch)
{
	if (!co->count)
		return 0;
	return ch + 1 < co->nchunks ? co->chunk_elems
				    : co->count - (size_t)ch * co->chunk_elems;
}

static struct sgc_coll **slot_ref(struct sgc_comm *c, uint32_t seq)
{
	return &c->slots[seq % SGC_RING];
}

static struct sgc_coll *slot_find(struct sgc_comm *c, uint32_t seq)
{
	struct sgc_coll *co = *slot_ref(c, seq);

	return co && co->seq == seq ? co : NULL;
}

static bool in_window(struct sgc_comm *c, uint32_t seq)
{
	return seq - c->base < SGC_RING;
}

static void coll_free(struct sgc_comm *c, struct sgc_coll *co)
{
	uint32_t i;

	if (*slot_ref(c, co->seq) == co)
		*slot_ref(c, co->seq) = NULL;
	if (co->res) {
		for (i = 0; i < co->nchunks; i++)
			pkt_put(c, co->res[i]);
		free(co->res);
	}
	free(co->nseen);
	free(co->seen);
	pull_free(&co->pull);
	free(co->got);
	free(co->stage);
	free(co->pulled);
	free(co);
}

static struct sgc_coll *coll_new(struct sgc_comm *c, uint32_t seq, int kind, int dtype,
				 int op, int root, uint32_t nchunks)
{
	struct sgc_coll *co;

	if (*slot_ref(c, seq) || !nchunks)
		return NULL;
	co = calloc(1, sizeof(*co));
	if (!co)
		return NULL;
	co->seq = seq;
	co->kind = (uint8_t)kind;
	co->dtype = (uint8_t)dtype;
	co->op = (uint8_t)op;
	co->root = root;
	co->nchunks = nchunks;
	co->elsz = sgc_dtype_size(dtype);
	co->chunk_elems = (uint32_t)(c->chunk_bytes / co->elsz);
	co->contributes = is_contributor(co, c->rank);
	co->receives = is_data_receiver(co, c->rank);
	co->ncontrib = co->kind == SGC_COLL_BCAST ? 1 : c->world;
	co->state = COLL_OPEN;
	if (c->rank == 0) {
		co->res = calloc(nchunks, sizeof(*co->res));
		co->nseen = calloc(nchunks, sizeof(*co->nseen));
		co->seen = calloc(((size_t)nchunks * (size_t)c->world + 7) / 8, 1);
		if (!co->res || !co->nseen || !co->seen ||
		    pull_init(c, &co->pull, nchunks, c->pull_budget))
			goto fail;
	} else {
		co->got = calloc((nchunks + 7) / 8, 1);
		if (!co->got)
			goto fail;
	}
	*slot_ref(c, seq) = co;
	return co;
fail:
	coll_free(c, co);
	return NULL;
}

/*
 * A datagram may announce a collective this rank has not called yet; its
 * state is made from the datagram's nchunks, which nothing has checked
 * against a call.  Above this many chunks (vectors of a few hundred MB)
 * the datagram is dropped instead, so that one forged header cannot make
 * a rank allocate gigabytes; the real collective's chunks are asked for
 * again once it is called.
 */
#define WIRE_COLL_MAX_CHUNKS	65536

static struct sgc_coll *coll_from_wire(struct sgc_comm *c, const struct sgc_hdr *h)
{
	if (h->nchunks > WIRE_COLL_MAX_CHUNKS)
		return NULL;
	return coll_new(c, h->seq, h->coll, h->dtype, h->op, h->arg, h->nchunks);
}

static void send_to_rank(struct sgc_comm *c, const struct sgc_hdr *h, int r)
{
	io_send_ctl(c, h, r ? &c->peers[r].addr : &c->cfg.coord);
}

static void hdr_for(struct sgc_comm *c, struct sgc_hdr *h, uint8_t type,
		    const struct sgc_coll *co, int rank)
{
	sgc_hdr_init(h, type, c->job_id);
	h->seq = co->seq;
	h->coll = co->kind;
	h->nchunks = co->nchunks;
	h->rank = (uint16_t)rank;
	h->dtype = co->dtype;
	h->op = co->op;
	h->arg = (uint16_t)co->root;
}

static void send_abort(struct sgc_comm *c, const struct sgc_coll *co, int r, int err)
{
	struct sgc_hdr h;

	hdr_for(c, &h, SGC_MSG_ABORT, co, r);
	h.aux = (uint32_t)-err;
	send_to_rank(c, &h, r);
}

/* Finish @co here with @status; wakes the request waiting on it. */
static void coll_finish(struct sgc_comm *c, struct sgc_coll *co, int status)
{
	struct sgc_request *req = co->req;

	if (co->state != COLL_OPEN)
		return;
	co->state = status ? COLL_FAILED : COLL_DONE;
	co->status = status;
	if (co->pull.to)
		pull_reset(c, &co->pull);
	/* Karn's rule: no sample from a collective something was sent again
	 * for.  But a worker whose result came as first sent (no SGC_F_RETX)
	 * NACKed early: the wait is real, though it may include the recovery
	 * of another rank's datagram, so it counts only up to RTT_FLOOR_MAX
	 * RTO floors (as rtt_floor()). */
	if (status == 0 && co->posted && !co->retx)
		rtt_sample(c, c->now > co->t_post ? c->now - co->t_post : 0);
	else if (status == 0 && co->posted && c->rank && !co->rx_resent && c->now > co->t_post)
		rtt_sample(c, min_u64(c->now - co->t_post, RTT_FLOOR_MAX * c->rto_ns));
	if (status == 0)
		c->st.collectives++;
	if (status == 0 && co->posted && co->t_post > c->done_post_max)
		c->done_post_max = co->t_post;
	if (status == -ETIMEDOUT)
		c->st.timeouts++;
	if (req) {
		req->done = true;
		req->status = status;
		req->coll = NULL;
		if (status)
			snprintf(req->msg, sizeof(req->msg), "%s", co->msg);
		co->req = NULL;
	}
	if (co->posted && c->nposted)
		c->nposted--;
}

static void coll_fail(struct sgc_comm *c, struct sgc_coll *co, int err, const char *fmt, ...)
	SGC_PRINTF(4, 5);

static void coll_fail(struct sgc_comm *c, struct sgc_coll *co, int err, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (co->state != COLL_OPEN)
		return;
	va_start(ap, fmt);
	vsnprintf(co->msg, sizeof(co->msg), fmt, ap);
	va_end(ap);
	pr_debug("rank %d: %s\n", c->rank, co->msg);
	if (c->rank == 0 && co->posted)
		for (r = 1; r < c->world; r++)
			send_abort(c, co, r, err);
	coll_finish(c, co, err);
}

/* ---------------- coordinator ---------------- */

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
		if (!bit_test(co->seen, (size_t)ch * c->world + r))
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
		if (!bit_test(co->seen, (size_t)ch * m->c->world + r))
			return true;
	return false;
}

static void coord_send_done(struct sgc_comm *c, struct sgc_coll *co, int r)
{
	struct sgc_hdr h;

	hdr_for(c, &h, SGC_MSG_RESULT, co, r);
	h.flags = SGC_F_DONE | SGC_F_RETX;
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
	io_send(c, p, &c->peers[r].addr);
	pkt_put(c, p);
}

static bool data_elig(const void *obj, int r)
{
	return is_data_receiver(obj, r);
}

static bool done_elig(const void *obj, int r)
{
	return !is_data_receiver(obj, r);
}

/*
 * Chunk @ch of @co is complete; co->res[ch] holds the result (reduced here,
 * or by the kernel).  @kfanned: notify_prog already sent it to the first
 * SGC_BPF_FANOUT_MAX receivers, or up to the one in the header's fan_first.
 */
static void coord_chunk_complete(struct sgc_comm *c, struct sgc_coll *co, uint32_t ch, bool kfanned)
{
	struct sgc_pkt *p = co->res[ch];
	struct sgc_hdr *h = pkt_hdr(p);
	size_t n = chunk_n(co, ch);
	/* The first receiver left to us: notify_prog stops at a clone that
	 * fails and says where in the result's header. */
	int first = !kfanned ? 1 : h->fan_first ? h->fan_first : SGC_BPF_FANOUT_MAX + 1;

	hdr_for(c, h, SGC_MSG_RESULT, co, 0);
	h->chunk = ch;
	h->count = (uint16_t)n;
	p->len = (uint32_t)(SGC_HDR_SIZE + n * co->elsz);
	if (co->receives && n)
		memcpy(co->recvbuf + chunk_off(co, ch), pkt_body(p), n * co->elsz);
	p->sent_at = now_ns();
	if (co->kind != SGC_COLL_BARRIER)
		fanout(c, p, first, data_elig, co);
	if (kmode(c)) {
		/* The kernel saw the contributions, we did not: mark them so
		 * that re-PULLs never ask for a complete chunk, and give back
		 * the budget of the PULLs this chunk answered. */
		int r;

		for (r = 0; r < c->world; r++) {
			if (r && is_contributor(co, r) && ch >= c->push_credit &&
			    ch < co->pull.to[r] && !bit_test(co->seen, (size_t)ch * c->world + r))
				pull_release(c, &co->pull, 1);
			bit_set(co->seen, (size_t)ch * c->world + r);
		}
	}
	while (co->kwin < co->nchunks && co->res[co->kwin] &&
	       co->nseen[co->kwin] == co->ncontrib)
		co->kwin++;
	if (++co->nchunks_done < co->nchunks)
		return;
	/* Everyone who got no data learns that its part is over; for a
	 * barrier notify_prog already told the first workers. */
	if (co->kind == SGC_COLL_BARRIER || co->kind == SGC_COLL_REDUCE ||
	    (co->kind == SGC_COLL_BCAST && co->root)) {
		struct sgc_pkt *d = pkt_alloc(c);

		if (d) {
			hdr_for(c, pkt_hdr(d), SGC_MSG_RESULT, co, 0);
			pkt_hdr(d)->flags = SGC_F_DONE;
			d->len = SGC_HDR_SIZE;
			fanout(c, d, co->kind == SGC_COLL_BARRIER ? first : 1, done_elig, co);
			pkt_put(c, d);
		}
	}
	coll_finish(c, co, 0);
}

/* Ranks per SGC_F_FANOUT datagram: what scatter_prog clones in one go
 * stays well below a receive ring (256) and the backlog (1000). */
#define FANOUT_WINDOW 128
/* Fewest ranks worth a datagram of their own on another CPU: below this,
 * waking an io_uring worker costs more than the clones it takes over. */
#define FANOUT_SPLIT_MIN 32

/* One SGC_F_FANOUT datagram for ranks [lo, hi); async: from an io_uring
 * worker, so that its clones (and their softirq work) run on another CPU. */
static void fanout_range(struct sgc_comm *c, struct sgc_pkt *p, int lo, int hi, bool async)
{
	struct sgc_pkt *f;
	struct sgc_hdr *h;

	if (hi - lo == 1) {
		io_send(c, p, &c->peers[lo].addr);
		return;
	}
	f = pkt_copy(c, p);
	if (!f)
		return;
	h = pkt_hdr(f);
	h->flags |= SGC_F_FANOUT;
	h->fan_first = (uint16_t)lo;
	h->fan_end = (uint16_t)hi;
	/* Any worker's address routes it out of the right interface. */
	c->send_async = async;
	io_send(c, f, &c->peers[lo].addr);
	c->send_async = false;
	pkt_put(c, f);
}

/*
 * eBPF path: one datagram per run of consecutive ranks, at most
 * FANOUT_WINDOW ranks each, which scatter_prog clones.  The clones of a
 * datagram, and everything they set off on this host (veth, XDP, the
 * reduction of the answers), run on the CPU that sends it; so a long run
 * is cut into one piece per CPU (c->fan_cpus), and all but every
 * fan_cpus-th piece go out through an io_uring worker.
 */
void fanout(struct sgc_comm *c, struct sgc_pkt *p, int first,
	    bool (*pred)(const void *obj, int rank), const void *obj)
{
	int r = first < 1 ? 1 : first, k = 0;

	if (!c->bpf) {
		for (; r < c->world; r++)
			if (pred(obj, r))
				io_send(c, p, &c->peers[r].addr);
		return;
	}
	while (r < c->world) {
		int lo, n, pieces, split, i;

		while (r < c->world && !pred(obj, r))
			r++;
		if (r >= c->world)
			break;
		lo = r;
		while (r < c->world && pred(obj, r))
			r++;
		n = r - lo;
		pieces = (n + FANOUT_WINDOW - 1) / FANOUT_WINDOW;
		split = n / FANOUT_SPLIT_MIN < (int)c->fan_cpus ? n / FANOUT_SPLIT_MIN : (int)c->fan_cpus;
		if (pieces < split)
			pieces = split;
		for (i = 0; i < pieces; i++, k++)
			fanout_range(c, p, lo + n * i / pieces, lo + n * (i + 1) / pieces,
				     split > 1 && k % c->fan_cpus != c->fan_cpus - 1);
	}
}

/* eBPF path: hand rank 0's chunks to the kernel, at most 32 ahead of the
 * lowest incomplete chunk (the slots of one collective). */
static void kmode_inject(struct sgc_comm *c, struct sgc_coll *co)
{
	/* Completions inside the loop move kwin, so the limit moves too. */
	while (co->state == COLL_OPEN && co->kinj < co->nchunks &&
	       co->kinj < co->kwin + SGC_BPF_CHUNK_SLOTS) {
		uint32_t ch = co->kinj++;
		struct sgc_pkt *res = NULL;
		struct sgc_hdr h;
		int rc;

		hdr_for(c, &h, SGC_MSG_CONTRIB, co, 0);
		h.chunk = ch;
		h.count = (uint16_t)chunk_n(co, ch);
		rc = bpf_path_contribute(c, &h, co->sendbuf + chunk_off(co, ch), &res);
		if (rc < 0) {
			coll_fail(c, co, rc, "collective #%u: %s", co->seq, sgc_last_error());
			return;
		}
		if (rc == 1 && !co->res[ch]) {
			co->res[ch] = res;
			co->nseen[ch] = (uint16_t)co->ncontrib;
			coord_chunk_complete(c, co, ch, false);
		} else {
			pkt_put(c, res);
		}
	}
}

/*
 * eBPF path: copy the kernel's view of who contributed into co->seen for
 * the chunks in flight, so re-PULLs ask exactly the missing ranks.  The
 * kernel reduces what was PULLed without telling us, so each newly seen
 * contribution also gives back its PULL budget.  Returns how many were
 * new: progress, not loss.
 */
static int kmode_refresh_seen(struct sgc_comm *c, struct sgc_coll *co)
{
	uint32_t ch, lim = co->kwin + SGC_BPF_CHUNK_SLOTS;
	const struct sgc_bpf_slot *slot;
	int r, fresh = 0;

	if (!kmode(c))
		return 0;
	if (lim > co->nchunks)
		lim = co->nchunks;
	for (ch = co->kwin; ch < lim; ch++) {
		if (co->res[ch] && co->nseen[ch] == co->ncontrib)
			continue;
		slot = bpf_path_slot(c, co->kind, co->seq, ch);
		if (!slot)
			continue;
		for (r = 0; r < c->world; r++) {
			size_t bit = (size_t)ch * c->world + r;

			if (!(slot->seen[r / 64] & (1ULL << (r % 64))) || bit_test(co->seen, bit))
				continue;
			bit_set(co->seen, bit);
			fresh++;
			if (r && ch >= c->push_credit && ch < co->pull.to[r])
				pull_release(c, &co->pull, 1);
		}
	}
	return fresh;
}

void coord_kernel_result(struct sgc_comm *c, const struct sgc_hdr *h, const void *body,
			 const __u64 *seen)
{
	struct sgc_coll *co;
	struct sgc_pkt *p;
	size_t len;

	if (h->coll == SGC_COLL_QUERY) {
		sg_kernel_result(c, h, body, seen);
		return;
	}
	if (!in_window(c, h->seq) || h->coll >= SGC_COLL_MAX || !sgc_dtype_valid(h->dtype)) {
		c->st.late++;
		return;
	}
	co = slot_find(c, h->seq);
	if (!co) {
		/* A broadcast from a worker root can finish before our call. */
		co = coll_from_wire(c, h);
		if (!co)
			return;
	}
	if (co->state != COLL_OPEN || h->chunk >= co->nchunks || h->coll != co->kind ||
	    h->nchunks != co->nchunks || (co->res[h->chunk] && co->nseen[h->chunk] == co->ncontrib)) {
		c->st.late++;
		return;
	}
	len = (size_t)h->count * co->elsz;
	if (len > c->chunk_bytes)
		return;
	p = pkt_alloc(c);
	if (!p)
		return;
	memcpy(p->data, h, SGC_HDR_SIZE);
	if (len)
		memcpy(pkt_body(p), body, len);
	p->len = (uint32_t)(SGC_HDR_SIZE + len);
	pkt_put(c, co->res[h->chunk]);
	co->res[h->chunk] = p;
	co->nseen[h->chunk] = (uint16_t)co->ncontrib;
	co->last_rx = c->now;
	co->backoff = 0;
	if (co->posted && chunk_n(co, h->chunk) != h->count) {
		coll_fail(c, co, -SGC_EMISMATCH,
			  "collective #%u (%s): the workers sent %u elements in chunk %u, rank 0 has %zu: "
			  "every rank must pass the same count", co->seq, kind_name(co->kind), h->count,
			  h->chunk, chunk_n(co, h->chunk));
		return;
	}
	if (co->posted) {
		coord_chunk_complete(c, co, h->chunk, bpf_path_kernel_fanout(c));
		if (co->state == COLL_OPEN && co->contributes)
			kmode_inject(c, co);
	}
}

/* Reduce @n elements from rank @r into chunk @ch (not a duplicate). */
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
	bit_set(co->seen, (size_t)ch * c->world + r);
	if (co->posted && co->nseen[ch] == co->ncontrib)
		coord_chunk_complete(c, co, ch, false);
	return 0;
}

static void coord_mismatch(struct sgc_comm *c, struct sgc_coll *co, const struct sgc_hdr *h)
{
	if (co->mismatch)
		return;
	co->mismatch = true;
	snprintf(co->msg, sizeof(co->msg),
		 "collective #%u: rank %u called %s (%u chunks of %s, op %s, root %u) but rank 0 %s %s "
		 "(%u chunks of %s, op %s, root %d): every rank must call the same collectives in the "
		 "same order with the same count, type, op and root",
		 co->seq, h->rank, kind_name(h->coll), h->nchunks, sgc_dtype_name(h->dtype),
		 sgc_op_name(h->op), h->arg, co->posted ? "called" : "expects", kind_name(co->kind),
		 co->nchunks, sgc_dtype_name(co->dtype), sgc_op_name(co->op), co->root);
	if (co->posted) {
		char msg[sizeof(co->msg)];

		memcpy(msg, co->msg, sizeof(msg));
		coll_fail(c, co, -SGC_EMISMATCH, "%s", msg);
	}
}

static void coord_rx_contrib(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_hdr *h = rx->hdr;
	struct sgc_coll *co;
	size_t n = h->count;
	int r = h->rank;

	if (!in_window(c, h->seq)) {
		c->st.late++;
		return;
	}
	if (h->arg >= c->world) {
		c->st.rejected++;
		return;
	}
	co = slot_find(c, h->seq);
	if (!co) {
		co = coll_from_wire(c, h);
		if (!co) {
			c->st.late++;
			return;
		}
	}
	if (co->state == COLL_FAILED) {
		send_abort(c, co, r, co->status);
		return;
	}
	if (co->state == COLL_DONE) {
		c->st.late++;
		return;
	}
	if (h->coll != co->kind || h->nchunks != co->nchunks || h->dtype != co->dtype ||
	    h->op != co->op || h->arg != co->root) {
		coord_mismatch(c, co, h);
		return;
	}
	if (!is_contributor(co, r) || h->chunk >= co->nchunks) {
		c->st.rejected++;
		return;
	}
	if (bit_test(co->seen, (size_t)h->chunk * c->world + r)) {
		c->st.duplicates++;
		return;
	}
	/* Element counts: full chunks are full; the last one must agree with
	 * the other contributions (and with our own call once posted). */
	if ((h->chunk + 1 < co->nchunks && n != co->chunk_elems) ||
	    (co->posted && n != chunk_n(co, h->chunk)) ||
	    (co->res[h->chunk] && co->nseen[h->chunk] && pkt_hdr(co->res[h->chunk])->count != n)) {
		coord_mismatch(c, co, h);
		return;
	}
	co->last_rx = c->now;
	co->backoff = 0;
	if (co->posted) {
		struct sgc_hdr t;

		hdr_for(c, &t, SGC_MSG_PULL, co, 0);
		bit_set(co->seen, (size_t)h->chunk * c->world + r);
		if (pull_got(c, &co->pull, &t, co->seen, r, h->chunk))
			co->retx = true;
	}
	coord_add(c, co, h->chunk, r, rx->body, n);
}

static bool coll_elig(const void *obj, int r);

static void coord_repull_rank(struct sgc_comm *c, struct sgc_coll *co, int r)
{
	uint32_t ch = 0, lim = co->pull.to[r], lo;
	struct sgc_hdr t;

	if (!is_contributor(co, r))
		return;
	hdr_for(c, &t, SGC_MSG_PULL, co, r);
	while (ch < lim) {
		while (ch < lim && bit_test(co->seen, (size_t)ch * c->world + r))
			ch++;
		if (ch >= lim)
			break;
		lo = ch;
		while (ch < lim && ch - lo < 65535 && !bit_test(co->seen, (size_t)ch * c->world + r))
			ch++;
		t.chunk = lo;
		t.aux = ch - lo;
		send_to_rank(c, &t, r);
		c->st.retransmits++;
	}
}

static void coord_rx_nack(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_hdr *h = rx->hdr;
	struct sgc_coll *co = slot_find(c, h->seq);
	int r = h->rank, sent = 0;
	uint64_t now, fresh;
	uint32_t i;

	if (!co || !co->posted)
		return;
	if (co->state == COLL_FAILED) {
		send_abort(c, co, r, co->status);
		return;
	}
	if (!is_data_receiver(co, r)) {
		if (co->state == COLL_DONE) {
			coord_send_done(c, co, r);
			c->st.retransmits++;
		}
		return;
	}
	/* A chunk sent less than half an RTO ago: the NACK most likely
	 * crossed it (a worker that waited for a CPU).  If it was lost after
	 * all, the worker's next NACK comes later than this. */
	now = now_ns();
	fresh = rto_now(c) / 2;
	for (i = 0; i < h->arg; i++) {
		uint32_t ch = h->chunk + i;

		if (ch >= co->nchunks)
			break;
		if (!bit_test(rx->body, i) || co->nseen[ch] != co->ncontrib || !co->res[ch])
			continue;
		if (now - co->res[ch]->sent_at < fresh) {
			sent++;
			continue;
		}
		coord_resend_result(c, co, ch, r);
		c->st.retransmits++;
		sent++;
	}
	if (!sent && co->state == COLL_OPEN) {
		/* Nothing to resend yet: tell the worker we are still at it, so
		 * it keeps asking at the base rate instead of backing off. */
		struct sgc_hdr a;

		hdr_for(c, &a, SGC_MSG_ACK, co, r);
		send_to_rank(c, &a, r);
		/* A NACK proves the worker has posted this collective: if its
		 * data is missing, the push or our PULL was lost; ask now. */
		co->retx = true;
		kmode_refresh_seen(c, co);
		coord_repull_rank(c, co, r);
	}
}

static bool coll_elig(const void *obj, int r)
{
	return is_contributor(obj, r);
}

static void coord_pull(struct sgc_comm *c, struct sgc_coll *co)
{
	struct sgc_hdr t;

	uint32_t lim = co->nchunks;

	/* In the kernel a collective has 32 slots: never ask further ahead. */
	if (kmode(c) && co->kwin + SGC_BPF_CHUNK_SLOTS < lim)
		lim = co->kwin + SGC_BPF_CHUNK_SLOTS;
	hdr_for(c, &t, SGC_MSG_PULL, co, 0);
	if (kmode(c) && co->nchunks == 1)
		pull_more_fanout(c, &co->pull, &t, coll_elig, co, NULL);
	else
		pull_more(c, &co->pull, &t, lim, coll_elig, co);
}

static void coord_start(struct sgc_comm *c, struct sgc_coll *co)
{
	uint32_t ch;

	if (co->mismatch) {
		char msg[sizeof(co->msg)];

		memcpy(msg, co->msg, sizeof(msg));
		coll_fail(c, co, -SGC_EMISMATCH, "%s", msg);
		return;
	}
	for (ch = 0; ch < co->nchunks; ch++) {
		if (co->res[ch] && co->nseen[ch] && pkt_hdr(co->res[ch])->count != chunk_n(co, ch)) {
			coll_fail(c, co, -SGC_EMISMATCH,
				  "collective #%u (%s): workers sent %u elements in the last chunk but rank 0 "
				  "has %zu: every rank must pass the same count", co->seq,
				  kind_name(co->kind), pkt_hdr(co->res[ch])->count, chunk_n(co, ch));
			return;
		}
	}
	if (kmode(c) && co->kind == SGC_COLL_BCAST && co->root == 0) {
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
	} else if (kmode(c) && co->contributes) {
		for (ch = 0; ch < co->nchunks && co->state == COLL_OPEN; ch++)
			if (co->res[ch] && co->nseen[ch] == co->ncontrib)
				coord_chunk_complete(c, co, ch, bpf_path_kernel_fanout(c));
		kmode_inject(c, co);
	} else if (co->contributes) {
		for (ch = 0; ch < co->nchunks && co->state == COLL_OPEN; ch++)
			if (coord_add(c, co, ch, 0, co->sendbuf + chunk_off(co, ch), chunk_n(co, ch)))
				return;
	} else {
		for (ch = 0; ch < co->nchunks && co->state == COLL_OPEN; ch++)
			if (co->nseen[ch] == co->ncontrib)
				coord_chunk_complete(c, co, ch, kmode(c) && bpf_path_kernel_fanout(c));
	}
	coord_pull(c, co);
}

static void coord_timer(struct sgc_comm *c, struct sgc_coll *co, uint64_t now)
{
	uint64_t wait = rto_now(c) << co->backoff;
	char list[120];

	if (now >= co->deadline) {
		struct miss_ctx m = { c, co };

		kmode_refresh_seen(c, co);
		sgc_rank_list(list, sizeof(list), 1, c->world, coord_rank_silent, &m);
		if (!list[0])
			sgc_rank_list(list, sizeof(list), 1, c->world, coord_rank_missing, &m);
		coll_fail(c, co, -ETIMEDOUT,
			  "collective #%u (%s of %zu x %s): rank%s %s did not contribute within %u ms",
			  co->seq, kind_name(co->kind), co->count, sgc_dtype_name(co->dtype),
			  strchr(list, ',') || strstr(list, "more") ? "s" : "", list, c->cfg.timeout_ms);
		return;
	}
	/* eBPF path with PULLs out: look at the slots every half RTO floor,
	 * so the budget flows back and slowness is not taken for loss. */
	if (kmode(c) && co->pull.out && now >= co->refresh_at) {
		if (kmode_refresh_seen(c, co)) {
			co->last_rx = now;
			co->backoff = 0;
		}
		co->refresh_at = now + kmode_refresh_gap(c);
	}
	if (now < co->timer)
		return;
	/* Contributions the kernel reduced count as heard from, as on the
	 * user-space path: slow is not lost. */
	if (kmode(c)) {
		uint64_t k = bpf_path_coll_rx(c, co->seq);

		if (k > co->last_rx && k <= now) {
			co->last_rx = k;
			co->backoff = 0;
		}
	}
	if (now - co->last_rx >= wait) {
		struct sgc_hdr t;

		co->retx = true;
		kmode_refresh_seen(c, co);
		hdr_for(c, &t, SGC_MSG_PULL, co, 0);
		pull_again(c, &co->pull, &t, co->seen, coll_elig, co);
		if (co->backoff < BACKOFF_MAX)
			co->backoff++;
		co->timer = now + (rto_now(c) << co->backoff);
	} else {
		co->timer = co->last_rx + wait;
	}
}

static void peer_wm(struct sgc_comm *c, int r, uint32_t wm)
{
	/* Accept only forward moves that stay within what we have posted. */
	if (wm - c->peers[r].wm <= SGC_RING && wm - c->peers[r].wm != 0 &&
	    c->next_seq + SGC_RING - wm <= 2 * SGC_RING)
		c->peers[r].wm = wm;
}

static uint32_t coord_min_wm(struct sgc_comm *c)
{
	uint32_t m = c->next_seq;
	bool kernel = kmode(c);
	int r;

	for (r = 1; r < c->world; r++) {
		/* Contributions the kernel reduced carried watermarks too. */
		if (kernel)
			peer_wm(c, r, bpf_path_rank_wm(c, r));
		if (c->peers[r].wm - c->base < m - c->base)
			m = c->peers[r].wm;
	}
	return m;
}

static void coord_retire(struct sgc_comm *c)
{
	uint32_t wm = coord_min_wm(c);

	while (c->base != c->next_seq) {
		struct sgc_coll *co = slot_find(c, c->base);

		if (co) {
			if (co->state == COLL_OPEN || wm - c->base == 0 || wm - c->base > SGC_RING)
				break;
			coll_free(c, co);
		}
		c->base++;
	}
	if (c->bpf)
		bpf_path_window(c);
}

static void coord_rx(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_hdr *h = rx->hdr;
	int r = h->rank;
	struct sgc_hdr a;

	/* Socket delivery: notify_prog hands us the completing datagram, from
	 * the worker that completed it.  gather_prog drops RESULTs from the
	 * wire on our interface, so this one was made by the kernel. */
	if (h->type == SGC_MSG_RESULT && c->bpf && (h->flags & SGC_F_KERNEL)) {
		coord_kernel_result(c, h, rx->body, NULL);
		return;
	}
	if (r == 0 || !c->peers[r].joined ||
	    c->peers[r].addr.sin_addr.s_addr != rx->from.sin_addr.s_addr ||
	    c->peers[r].addr.sin_port != rx->from.sin_port) {
		c->st.foreign++;
		return;
	}
	switch (h->type) {
	case SGC_MSG_CONTRIB:
		peer_wm(c, r, h->aux);
		if (h->coll == SGC_COLL_QUERY)
			sg_rx_coord(c, rx);
		else
			coord_rx_contrib(c, rx);
		break;
	case SGC_MSG_NACK:
		peer_wm(c, r, h->aux);
		coord_rx_nack(c, rx);
		break;
	case SGC_MSG_ACK:
		peer_wm(c, r, h->aux);
		break;
	case SGC_MSG_BYE:
		peer_wm(c, r, h->aux);
		c->peers[r].bye = true;
		sgc_hdr_init(&a, SGC_MSG_BYE_ACK, c->job_id);
		a.rank = (uint16_t)r;
		send_to_rank(c, &a, r);
		break;
	case SGC_MSG_READY:
		break;
	default:
		c->st.rejected++;
	}
}

/* ---------------- worker ---------------- */

static void worker_send_chunk(struct sgc_comm *c, struct sgc_coll *co, uint32_t ch)
{
	struct sgc_pkt *p = pkt_alloc(c);
	struct sgc_hdr *h;
	size_t n = chunk_n(co, ch);

	if (!p)
		return;
	h = pkt_hdr(p);
	hdr_for(c, h, SGC_MSG_CONTRIB, co, c->rank);
	h->chunk = ch;
	h->count = (uint16_t)n;
	h->aux = c->base;
	if (n)
		memcpy(pkt_body(p), co->sendbuf + chunk_off(co, ch), n * co->elsz);
	p->len = (uint32_t)(SGC_HDR_SIZE + n * co->elsz);
	io_send(c, p, &c->cfg.coord);
	pkt_put(c, p);
	c->acked_wm = c->base;
}

static void worker_send_status(struct sgc_comm *c)
{
	struct sgc_hdr h;

	sgc_hdr_init(&h, SGC_MSG_ACK, c->job_id);
	h.rank = (uint16_t)c->rank;
	h.aux = c->base;
	io_send_ctl(c, &h, &c->cfg.coord);
	c->acked_wm = c->base;
}

static void worker_advance(struct sgc_comm *c)
{
	while (c->base != c->next_seq) {
		struct sgc_coll *co = slot_find(c, c->base);

		if (co && co->state == COLL_OPEN)
			break;
		if (co)
			coll_free(c, co);
		c->base++;
	}
	if (c->base - c->acked_wm >= SGC_ACK_EVERY)
		worker_send_status(c);
}

static void worker_start(struct sgc_comm *c, struct sgc_coll *co)
{
	uint32_t ch, credit = c->push_credit < co->nchunks ? c->push_credit : co->nchunks;

	if (co->stage || co->nchunks_done) {
		if (!co->receives) {
			coll_fail(c, co, -SGC_EMISMATCH,
				  "collective #%u: the coordinator sent data for a %s this rank does not "
				  "receive (root differs between ranks?)", co->seq, kind_name(co->kind));
			return;
		}
		for (ch = 0; ch < co->nchunks; ch++)
			if (bit_test(co->got, ch))
				memcpy(co->recvbuf + chunk_off(co, ch),
				       co->stage + (size_t)ch * c->chunk_bytes, chunk_n(co, ch) * co->elsz);
		free(co->stage);
		co->stage = NULL;
	}
	if (co->contributes) {
		for (ch = 0; ch < co->nchunks; ch++)
			if (ch < credit || (co->pulled && bit_test(co->pulled, ch)))
				worker_send_chunk(c, co, ch);
	}
	free(co->pulled);
	co->pulled = NULL;
	if (co->receives && co->nchunks_done == co->nchunks)
		coll_finish(c, co, 0);
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
	if (h->coll != co->kind || h->nchunks != co->nchunks || h->arg != co->root ||
	    (h->type == SGC_MSG_RESULT && !(h->flags & SGC_F_DONE) &&
	     (h->dtype != co->dtype || h->op != co->op))) {
		if (co->posted)
			coll_fail(c, co, -SGC_EMISMATCH,
				  "collective #%u: this rank called %s (%u chunks of %s, root %d) but the "
				  "coordinator runs %s (%u chunks of %s, root %u): every rank must call the "
				  "same collectives in the same order with the same arguments",
				  co->seq, kind_name(co->kind), co->nchunks, sgc_dtype_name(co->dtype),
				  co->root, kind_name(h->coll), h->nchunks, sgc_dtype_name(h->dtype), h->arg);
		else
			c->st.rejected++;
		return NULL;
	}
	return co;
}

static void worker_rx_result(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_hdr *h = rx->hdr;
	struct sgc_coll *co = worker_coll_for(c, h);
	size_t n = h->count;

	if (!co)
		return;
	co->last_rx = c->now;
	co->backoff = 0;
	if (h->flags & SGC_F_RETX)
		co->rx_resent = true;
	if (h->flags & SGC_F_DONE) {
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
	if (++co->nchunks_done == co->nchunks && co->posted)
		coll_finish(c, co, 0);
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
			co->pulled = calloc((co->nchunks + 7) / 8, 1);
		if (co->pulled)
			for (ch = h->chunk; ch < end; ch++)
				bit_set(co->pulled, ch);
		return;
	}
	if (!co->contributes) {
		c->st.rejected++;
		return;
	}
	for (ch = h->chunk; ch < end; ch++)
		worker_send_chunk(c, co, ch);
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
	hdr_for(c, h, SGC_MSG_NACK, co, c->rank);
	h->aux = c->base;
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
		if (!co->receives || !bit_test(co->got, first + i))
			bit_set(bm, i);
	h->chunk = first;
	h->arg = (uint16_t)span;
	p->len = SGC_HDR_SIZE + (span + 7) / 8;
	io_send(c, p, &c->cfg.coord);
	pkt_put(c, p);
	c->acked_wm = c->base;
	c->st.retransmits++;
}

static void worker_timer(struct sgc_comm *c, struct sgc_coll *co, uint64_t now)
{
	/* NACKs from all workers together stay near 250 per RTO at the
	 * coordinator, whatever the world size. */
	uint64_t base = rto_now(c) * (uint64_t)(c->world > 65 ? (c->world - 1) / 32 : 1);
	uint64_t wait = base << co->backoff;
	char a[32];

	if (now >= co->deadline) {
		coll_fail(c, co, -ETIMEDOUT,
			  "collective #%u (%s of %zu x %s) got no result from the coordinator "
			  "at %s within %u ms (%u of %u result chunks arrived): the coordinator may be "
			  "waiting for another rank, or be gone",
			  co->seq, kind_name(co->kind), co->count, sgc_dtype_name(co->dtype),
			  sgc_addr_str(&c->cfg.coord, a, sizeof(a)), c->cfg.timeout_ms,
			  co->nchunks_done, co->receives ? co->nchunks : 1);
		return;
	}
	if (now < co->timer)
		return;
	/*
	 * Several collectives in flight: a coordinator that keeps sending us
	 * other results or PULLs, none of them posted after this one, is busy
	 * rather than lossy (and re-PULLs a lost contribution itself).  A NACK
	 * now would only add to its load; a later collective done first is
	 * the sign of a lost result.  (Probes do not count: they are what a
	 * coordinator stuck on this collective sends.)
	 */
	if (now - co->last_rx >= wait && now - c->coord_work_rx < wait &&
	    c->done_post_max <= co->t_post && co->posted) {
		co->timer = c->coord_work_rx + wait;
		return;
	}
	if (now - co->last_rx >= wait) {
		/* Back off only while the coordinator says nothing at all: a
		 * live coordinator that lost our datagram is asked again soon. */
		if (c->last_coord_rx < co->last_nack) {
			if (co->backoff < BACKOFF_MAX)
				co->backoff++;
		} else {
			co->backoff = 0;
		}
		worker_nack(c, co);
		co->retx = true;
		co->last_nack = now;
		co->timer = now + (base << co->backoff);
	} else {
		co->timer = co->last_rx + wait;
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
		c->coord_work_rx = c->now;
}

static void worker_rx(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_hdr *h = rx->hdr;
	struct sgc_coll *co;

	if (rx->from.sin_addr.s_addr != c->cfg.coord.sin_addr.s_addr ||
	    rx->from.sin_port != c->cfg.coord.sin_port) {
		c->st.foreign++;
		return;
	}
	c->last_coord_rx = c->now;
	switch (h->type) {
	case SGC_MSG_RESULT:
		note_coord_work(c, h);
		worker_rx_result(c, rx);
		break;
	case SGC_MSG_PULL:
		if (h->coll == SGC_COLL_QUERY) {
			sg_rx_worker(c, rx);
		} else {
			note_coord_work(c, h);
			worker_rx_pull(c, rx);
		}
		break;
	case SGC_MSG_QUERY:
		sg_rx_worker(c, rx);
		break;
	case SGC_MSG_ABORT:
		if (h->seq == 0 && h->coll == 0) {
			c->dead = true;
			c->dead_err = -ESHUTDOWN;
			engine_cancel_all(c, -ESHUTDOWN, "the coordinator ended the job");
			break;
		}
		co = slot_find(c, h->seq);
		if (co && co->kind == h->coll)
			coll_fail(c, co, h->aux == SGC_EMISMATCH ? -SGC_EMISMATCH : -SGC_EABORTED,
				  "collective #%u (%s): the coordinator abandoned it (%s)%s", co->seq,
				  kind_name(co->kind), sgc_strerror(-(int)h->aux),
				  h->aux == ETIMEDOUT ? "; its log names the ranks that did not answer" : "");
		break;
	case SGC_MSG_ACK:
		if (!h->coll) {
			worker_send_status(c);	/* a probe for our watermark */
			break;
		}
		/* "still working on it": keep NACKing at the base rate.  The
		 * NACK came early, so collectives take at least this long now;
		 * learn that, but only up to RTT_FLOOR_MAX RTO floors: under
		 * loss the wait includes the recovery of someone's datagram,
		 * and a large RTO would slow the recovery of ours. */
		co = slot_find(c, h->seq);
		if (co && co->kind == h->coll && co->state == COLL_OPEN) {
			if (co->posted && c->now > co->t_post)
				rtt_floor(c, min_u64(c->now - co->t_post, RTT_FLOOR_MAX * c->rto_ns));
			co->last_rx = c->now;
			co->backoff = 0;
			co->timer = c->now + rto_now(c);
		}
		break;
	case SGC_MSG_BYE_ACK:
		c->bye_acked = true;
		break;
	default:
		c->st.rejected++;
	}
}

/* ---------------- common ---------------- */

void engine_rx(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_hdr *h = rx->hdr;

	if (h->type == SGC_MSG_HELLO || h->type == SGC_MSG_WELCOME || !c->joined) {
		rdv_handle(c, rx);
		return;
	}
	if (c->rank == 0)
		coord_rx(c, rx);
	else
		worker_rx(c, rx);
}

/* A worker that has not reported finishing the oldest collective. */
static bool peer_lagging(const void *arg, int r)
{
	const struct sgc_comm *c = arg;

	return c->peers[r].wm == c->base;
}

int coll_post(struct sgc_comm *c, uint8_t kind, const void *sendbuf, void *recvbuf,
	      size_t count, enum sgc_dtype dt, enum sgc_op op, int root, struct sgc_request *req)
{
	struct sgc_coll *co;
	uint32_t seq = c->next_seq;
	uint64_t nchunks, deadline;
	size_t elsz;

	req->c = c;
	req->done = false;
	req->coll = NULL;
	req->status = 0;
	req->msg[0] = 0;
	if (c->dead)
		return sgc_err(c->dead_err, "the job has ended: the coordinator aborted it or is gone");
	if (!sgc_dtype_valid(dt))
		return sgc_err(-EINVAL, "%s: unknown dtype %d (use enum sgc_dtype)", kind_name(kind), (int)dt);
	if (op == SGC_CUSTOM && (kind == SGC_COLL_ALLREDUCE || kind == SGC_COLL_REDUCE)) {
		/* Workers only carry the op; the coordinator's kernel runs it. */
		if (c->rank == 0 && !(kmode(c) && bpf_path_has_custom(c)))
			return sgc_err(-EOPNOTSUPP, "%s with SGC_CUSTOM needs the eBPF path on the "
				       "coordinator with a custom reduction loaded (sgc_config.custom_bpf or "
				       "SGC_CUSTOM_BPF)%s", kind_name(kind),
				       c->bpf ? "" : "; the eBPF path is not active here");
	} else if (!sgc_op_valid(op)) {
		return sgc_err(-EINVAL, "%s: unknown op %d (use enum sgc_op)", kind_name(kind), (int)op);
	}
	if (root < 0 || root >= c->world)
		return sgc_err(-EINVAL, "%s: root %d is not a rank of this %d-rank job",
			       kind_name(kind), root, c->world);
	elsz = sgc_dtype_size(dt);
	if (count > SIZE_MAX / elsz)
		return sgc_err(-EMSGSIZE, "%s: count %zu is too large", kind_name(kind), count);
	nchunks = sgc_nchunks(count, elsz, c->chunk_bytes);
	if (nchunks > UINT32_MAX / 2)
		return sgc_err(-EMSGSIZE, "%s: %zu elements need more than 2^31 datagrams",
			       kind_name(kind), count);
	if (count && ((kind == SGC_COLL_ALLREDUCE && (!sendbuf || !recvbuf)) ||
		      (kind == SGC_COLL_REDUCE && (!sendbuf || (c->rank == root && !recvbuf))) ||
		      (kind == SGC_COLL_BCAST && !recvbuf)))
		return sgc_err(-EINVAL, "%s: NULL buffer for %zu elements", kind_name(kind), count);
	if (c->nposted >= SGC_MAX_INFLIGHT)
		return sgc_err(-EBUSY, "%d collectives are already outstanding on this communicator: "
			       "finish some with sgc_wait()/sgc_test() first", SGC_MAX_INFLIGHT);

	deadline = now_ns() + c->timeout_ns;
	if (c->rank == 0) {
		/* The slot must be free: every worker has the result that
		 * used it.  Ask laggards for their watermark while waiting. */
		uint64_t probe = 0;

		while (seq - c->base >= SGC_RING) {
			uint64_t now = now_ns();
			int r;

			if (now >= deadline) {
				char list[120];

				sgc_rank_list(list, sizeof(list), 1, c->world, peer_lagging, c);
				return sgc_err(-ETIMEDOUT, "collective #%u: ranks %s have not finished "
					       "collective #%u after %u ms, and only %d may be outstanding",
					       seq, list, c->base, c->cfg.timeout_ms, SGC_RING);
			}
			if (now >= probe) {
				for (r = 1; r < c->world; r++) {
					struct sgc_hdr h;

					if (c->peers[r].wm != c->base)
						continue;
					sgc_hdr_init(&h, SGC_MSG_ACK, c->job_id);
					h.rank = (uint16_t)r;
					send_to_rank(c, &h, r);
				}
				probe = now + c->rto_ns;
			}
			engine_progress(c, min_u64(probe, deadline));
		}
	} else {
		/* A collective that completed inside its own call (its data
		 * came first) is retired only after a receive: do it now. */
		if (c->joined)
			worker_advance(c);
		if (seq - c->base >= SGC_MAX_INFLIGHT)
			return sgc_err(-EBUSY, "%d collectives are already outstanding on this "
				       "communicator: finish some with sgc_wait()/sgc_test() first",
				       SGC_MAX_INFLIGHT);
	}

	co = slot_find(c, seq);
	if (!co) {
		co = coll_new(c, seq, kind, dt, op, root, (uint32_t)nchunks);
		if (!co)
			return sgc_err(-ENOMEM, "%s: cannot allocate state for %llu chunks",
				       kind_name(kind), (unsigned long long)nchunks);
	} else if (co->kind != kind || co->nchunks != nchunks || co->root != root ||
		   ((co->dtype != dt || co->op != op) && c->rank == 0)) {
		co->mismatch = true;
		if (!co->msg[0])
			snprintf(co->msg, sizeof(co->msg),
				 "collective #%u: rank %d called %s (%llu chunks of %s, root %d) but other "
				 "ranks sent %s (%u chunks of %s, root %d): every rank must call the same "
				 "collectives in the same order with the same arguments", seq, c->rank,
				 kind_name(kind), (unsigned long long)nchunks, sgc_dtype_name(dt), root,
				 kind_name(co->kind), co->nchunks, sgc_dtype_name(co->dtype), co->root);
	}
	c->next_seq++;
	c->nposted++;
	co->posted = true;
	co->count = count;
	co->sendbuf = sendbuf;
	co->recvbuf = recvbuf;
	co->deadline = deadline;
	co->last_rx = c->now = now_ns();
	co->t_post = c->now;
	co->timer = c->now + rto_now(c);
	co->req = req;
	req->coll = co;
	if (kind == SGC_COLL_BCAST && c->rank == root) {
		/* The root's data is its contribution. */
		co->sendbuf = recvbuf;
	}
	if (co->mismatch && c->rank != 0) {
		char msg[sizeof(co->msg)];

		memcpy(msg, co->msg, sizeof(msg));
		coll_fail(c, co, -SGC_EMISMATCH, "%s", msg);
	} else if (c->rank == 0) {
		coord_start(c, co);
	} else {
		worker_start(c, co);
	}
	return 0;
}

uint64_t engine_timers(struct sgc_comm *c, uint64_t now)
{
	uint64_t next = now + 1000000000ULL;
	uint32_t s;

	for (s = c->base; s != c->next_seq; s++) {
		struct sgc_coll *co = slot_find(c, s);

		if (!co || !co->posted || co->state != COLL_OPEN)
			continue;
		if (c->rank == 0)
			coord_timer(c, co, now);
		else
			worker_timer(c, co, now);
		if (co->state == COLL_OPEN)
			next = min_u64(next, min_u64(co->timer, co->deadline));
		if (co->state == COLL_OPEN && kmode(c) && co->pull.out)
			next = min_u64(next, co->refresh_at);
	}
	return min_u64(next, sg_timers(c, now));
}

/* After a batch of datagrams: pull more, retire, advance. */
static void engine_after_rx(struct sgc_comm *c)
{
	uint32_t s;

	if (c->rank == 0) {
		for (s = c->base; s != c->next_seq && c->pull_inflight < c->pull_budget; s++) {
			struct sgc_coll *co = slot_find(c, s);

			if (co && co->posted && co->state == COLL_OPEN)
				coord_pull(c, co);
		}
		coord_retire(c);
	} else if (c->joined) {
		worker_advance(c);
	}
}

int engine_progress(struct sgc_comm *c, uint64_t until)
{
	uint64_t now = now_ns(), next;
	int err;

	/* A timer that is due may be answered by datagrams that are already
	 * here, their completions waiting for us to enter the kernel (a rank
	 * that did not get a CPU for a while): take them first, so that a
	 * slow result is not NACKed, nor a slow contribution PULLed again. */
	if (c->next_timer && c->next_timer <= now) {
		err = io_poll_flags(c, 0, true);
		if (err)
			return err;
		engine_after_rx(c);
		now = now_ns();
	}
	c->now = now;
	c->next_timer = engine_timers(c, now);
	next = min_u64(c->next_timer, until);
	err = io_poll(c, next > now ? next - now : 0);
	c->now = now_ns();
	engine_after_rx(c);
	return err;
}

void io_flush(struct sgc_comm *c)
{
	io_tx_flush(c);
	if (c->nsq) {
		io_uring_submit(&c->ring);
		c->nsq = 0;
	}
}

int req_wait(struct sgc_request *req)
{
	struct sgc_comm *c = req->c;
	int err;

	while (!req->done) {
		err = engine_progress(c, UINT64_MAX);
		if (err && !req->done) {
			io_flush(c);
			return err;
		}
	}
	io_flush(c);
	if (req->status)
		return sgc_err(req->status, "%s", req->msg[0] ? req->msg : sgc_strerror(req->status));
	return 0;
}

void engine_cancel_all(struct sgc_comm *c, int err, const char *why)
{
	uint32_t s;

	for (s = c->base; s != c->next_seq; s++) {
		struct sgc_coll *co = slot_find(c, s);

		if (co && co->state == COLL_OPEN && co->posted)
			coll_fail(c, co, err, "collective #%u (%s): %s", co->seq, kind_name(co->kind), why);
	}
}

void engine_free(struct sgc_comm *c)
{
	int i;

	for (i = 0; i < SGC_RING; i++) {
		struct sgc_coll *co = c->slots[i];

		if (!co)
			continue;
		if (co->req) {
			co->req->done = true;
			co->req->status = -ECANCELED;
			co->req->c = NULL;
			co->req->coll = NULL;
			snprintf(co->req->msg, sizeof(co->req->msg),
				 "the communicator was finalized before this collective finished");
		}
		coll_free(c, co);
	}
}
