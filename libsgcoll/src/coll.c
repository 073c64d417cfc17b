// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The life cycle of a collective (coll.h): its slot in the ring, its
 * state, the header of its messages, and how it finishes or fails.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coll.h"
#include "transport.h"

const char *coll_kind_name(int kind)
{
	switch (kind) {
	case SGC_COLL_ALLREDUCE: return "allreduce";
	case SGC_COLL_REDUCE: return "reduce";
	case SGC_COLL_BCAST: return "broadcast";
	case SGC_COLL_BARRIER: return "barrier";
	case SGC_COLL_QUERY: return "scatter-gather";
	case SGC_COLL_RSCATTER: return "reduce_scatter";
	case SGC_COLL_ALLGATHER: return "allgather";
	default: return "collective";
	}
}

void coll_args_of(const struct sgc_coll *co, struct coll_args *a)
{
	a->kind = co->kind;
	a->dtype = co->dtype;
	a->op = co->op;
	a->root = co->root;
	a->nchunks = co->nchunks;
	if (co->posted)
		a->count = co->count;
	else if (co->first.rank >= 0)
		a->count = co->first.args.count;
	else
		a->count = COLL_COUNT_UNKNOWN;
}

void coll_args_from_hdr(const struct sgc_comm *c, const struct sgc_hdr *h, struct coll_args *a)
{
	uint64_t per, base;

	a->kind = h->coll;
	a->dtype = h->dtype;
	a->op = h->op;
	a->root = h->arg;
	a->nchunks = h->nchunks;
	a->count = COLL_COUNT_UNKNOWN;
	/* Only a worker's datagrams carry the count, to the coordinator. */
	if (c->rank != 0 || !h->nchunks || !sgc_dtype_valid(h->dtype))
		return;
	/* total is the count modulo 2^32; all chunks but the last are full,
	 * which puts the count within one chunk of (nchunks - 1) * per. */
	per = c->chunk_bytes / sgc_dtype_size(h->dtype);
	base = (uint64_t)(h->nchunks - 1) * per;
	a->count = base + (uint32_t)(h->total - (uint32_t)base);
}

unsigned coll_args_diff(const struct coll_args *a, const struct coll_args *b)
{
	unsigned d = 0;

	if (a->kind != b->kind)
		d |= COLL_ARG_KIND;
	if (a->count != COLL_COUNT_UNKNOWN && b->count != COLL_COUNT_UNKNOWN ?
	    a->count != b->count : a->nchunks && b->nchunks && a->nchunks != b->nchunks)
		d |= COLL_ARG_COUNT;
	if (a->dtype != b->dtype)
		d |= COLL_ARG_DTYPE;
	if (a->op != b->op)
		d |= COLL_ARG_OP;
	if (a->root != b->root)
		d |= COLL_ARG_ROOT;
	return d;
}

static const char *op_name(int op)
{
	return op == SGC_CUSTOM ? "custom" : sgc_op_name(op);
}

/* "count 101 and dtype int32" for the arguments in @diff. */
static size_t args_text(char *buf, size_t len, unsigned diff, const struct coll_args *a)
{
	size_t off = 0;
	int n = 0, total = __builtin_popcount(diff), left;

#define APPEND(...)								\
	do {									\
		left = total - ++n;						\
		off += (size_t)snprintf(buf + off, off < len ? len - off : 0, __VA_ARGS__); \
		if (left)							\
			off += (size_t)snprintf(buf + off, off < len ? len - off : 0, \
						left == 1 ? " and " : ", ");	\
	} while (0)
	if (diff & COLL_ARG_COUNT) {
		if (a->count != COLL_COUNT_UNKNOWN)
			APPEND("count %llu", (unsigned long long)a->count);
		else
			APPEND("a count that takes %u datagram%s", a->nchunks, a->nchunks == 1 ? "" : "s");
	}
	if (diff & COLL_ARG_DTYPE)
		APPEND("dtype %s", sgc_dtype_name(a->dtype));
	if (diff & COLL_ARG_OP)
		APPEND("op %s", op_name(a->op));
	if (diff & COLL_ARG_ROOT)
		APPEND("root %d", a->root);
#undef APPEND
	return off;
}

void coll_mismatch_text(char *buf, size_t len, uint32_t seq, int odd_rank,
			const struct coll_args *odd, int ref_rank, const struct coll_args *ref, int self)
{
	static const char *const names[] = { "count", "dtype", "op", "root" };
	unsigned diff = coll_args_diff(odd, ref);
	const char *me_odd = odd_rank == self ? " (this rank)" : "";
	const char *me_ref = ref_rank == self ? " (this rank)" : "";
	char what[48] = "", a[96], b[96];
	size_t off = 0;
	int i, n = 0, total;

	if (diff & COLL_ARG_KIND) {
		snprintf(buf, len, "collective #%u: the collective differs: rank %d%s called %s, rank %d%s "
			 "%s; every rank must call the same collectives in the same order", seq, odd_rank,
			 me_odd, coll_kind_name(odd->kind), ref_rank, me_ref, coll_kind_name(ref->kind));
		return;
	}
	total = __builtin_popcount(diff);
	for (i = 0; i < 4; i++) {
		if (!(diff & (COLL_ARG_COUNT << i)))
			continue;
		n++;
		off += (size_t)snprintf(what + off, off < sizeof(what) ? sizeof(what) - off : 0, "%s%s",
					n == 1 ? "" : n == total ? " and " : ", ", names[i]);
	}
	args_text(a, sizeof(a), diff, odd);
	args_text(b, sizeof(b), diff, ref);
	snprintf(buf, len, "collective #%u: the %s differ%s: rank %d%s called %s with %s, rank %d%s with %s; "
		 "every rank must call the same collectives with the same count, dtype, op and root",
		 seq, what[0] ? what : "arguments", total == 1 ? "s" : "", odd_rank, me_odd,
		 coll_kind_name(ref->kind), a, ref_rank, me_ref, b);
}

void coll_free(struct sgc_comm *c, struct sgc_coll *co)
{
	uint32_t i;

	if (*slot_ref(c, co->seq) == co)
		*slot_ref(c, co->seq) = NULL;
	/* A request still waiting keeps its deadline (req_timers()). */
	if (co->req) {
		co->req->coll = NULL;
		co->req = NULL;
	}
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
	free(co->present);
	free(co);
}

struct sgc_coll *coll_new(struct sgc_comm *c, uint32_t seq, int kind, int dtype,
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
	co->first.rank = -1;
	co->odd.rank = -1;
	if (c->rank == 0) {
		co->res = calloc(nchunks, sizeof(*co->res));
		co->nseen = calloc(nchunks, sizeof(*co->nseen));
		co->seen = calloc(bitmap_bytes((size_t)nchunks * (size_t)c->world), 1);
		if (!co->res || !co->nseen || !co->seen ||
		    pull_init(c, &co->pull, nchunks, c->pace.budget))
			goto fail;
		if (kind == SGC_COLL_BCAST) {
			co->present = calloc(bitmap_bytes((size_t)c->world), 1);
			if (!co->present)
				goto fail;
		}
	} else {
		co->got = calloc(bitmap_bytes(nchunks), 1);
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

struct sgc_coll *coll_from_wire(struct sgc_comm *c, const struct sgc_hdr *h)
{
	if (h->nchunks > WIRE_COLL_MAX_CHUNKS)
		return NULL;
	return coll_new(c, h->seq, h->coll, h->dtype, h->op, h->arg, h->nchunks);
}

void coll_hdr(struct sgc_comm *c, struct sgc_hdr *h, uint8_t type,
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
	/* A contribution, and a worker's word about a collective, say the
	 * whole call (the fan-out fields are the coordinator's otherwise). */
	if (type == SGC_MSG_CONTRIB || type == SGC_MSG_NACK || (type == SGC_MSG_ACK && c->rank))
		h->total = (uint32_t)co->count;
}

static void wire_args(struct sgc_wire_args *w, const struct coll_args *a)
{
	memset(w, 0, sizeof(*w));
	w->count = a->count;
	w->nchunks = a->nchunks;
	w->root = (uint16_t)a->root;
	w->coll = a->kind;
	w->dtype = a->dtype;
	w->op = a->op;
}

void coll_send_abort(struct sgc_comm *c, const struct sgc_coll *co, int r, int err)
{
	struct sgc_mismatch m;
	struct coll_args ref;
	struct sgc_pkt *p;
	struct sgc_hdr h;

	coll_hdr(c, &h, SGC_MSG_ABORT, co, r);
	h.aux = (uint32_t)-err;
	if (err != -SGC_EMISMATCH || co->odd.rank < 0 || !(p = pkt_alloc(c))) {
		send_to_rank(c, &h, r);
		return;
	}
	/* Which rank differs and how, for the worker's message. */
	memset(&m, 0, sizeof(m));
	m.rank = (uint16_t)co->odd.rank;
	coll_args_of(co, &ref);
	wire_args(&m.odd, &co->odd.args);
	wire_args(&m.ref, &ref);
	memcpy(pkt_hdr(p), &h, SGC_HDR_SIZE);
	memcpy(pkt_body(p), &m, sizeof(m));
	p->len = SGC_HDR_SIZE + sizeof(m);
	io_send(c, p, &c->peers[r].addr);
	pkt_put(c, p);
}

void coll_finish(struct sgc_comm *c, struct sgc_coll *co, int status)
{
	struct sgc_request *req = co->req;

	if (co->state != COLL_OPEN)
		return;
	co->state = status ? COLL_FAILED : COLL_DONE;
	co->status = status;
	if (co->pull.to)
		pull_reset(c, &co->pull);
	/* Karn's rule: no sample from a collective something was sent again
	 * for; at the coordinator, nor from one that lived through any
	 * resend: its ranks may have been late recovering an earlier result,
	 * and such silences made the delay grow with the loss rate.  But a
	 * worker whose result came as first sent (no SGC_F_RETX) NACKed
	 * early: its wait from posting to the result was real (the "still
	 * working" answers cut it into silences as long as our own delay,
	 * so the whole wait counts).  With many collectives in flight
	 * this is what teaches a worker how long its results take.  Capped
	 * at RTT_FLOOR_MAX floors per collective that was ahead of it: the
	 * wait may hold another rank's recovery, and uncapped, those waits
	 * fed each other from rank to rank under heavy loss. */
	if (status == 0 && co->posted && !co->rt.resent &&
	    (c->rank || c->st.retransmits == co->retx_at_post)) {
		rtt_sample(&c->rtt, retx_gap(&co->rt, c->now));
		if (co->nchunks > 1 && c->now > co->t_post)
			rtt_bulk_sample(&c->rtt, c->now - co->t_post);
	} else if (status == 0 && co->posted && c->rank && !co->rx_resent && c->now > co->t_post) {
		uint64_t cap = RTT_FLOOR_MAX * c->rtt.rto_ns * (co->ahead + 1);

		rtt_sample(&c->rtt, min_u64(c->now - co->t_post, cap));
	}
	if (status == 0)
		c->st.collectives++;
	if (status == 0 && co->posted && co->t_post > c->coord.done_post_max)
		c->coord.done_post_max = co->t_post;
	if (status == -ETIMEDOUT)
		c->st.timeouts++;
	if (req)
		req_complete(c, req, status, co->msg);
}

void coll_abort_workers(struct sgc_comm *c, const struct sgc_coll *co, int err)
{
	int r;

	if (c->rank == 0 && co->posted)
		for (r = 1; r < c->world; r++)
			coll_send_abort(c, co, r, err);
}

void coll_fail_noted(struct sgc_comm *c, struct sgc_coll *co, int err)
{
	if (co->state != COLL_OPEN)
		return;
	pr_debug("rank %d: %s\n", c->rank, co->msg);
	coll_abort_workers(c, co, err);
	coll_finish(c, co, err);
}

void coll_fail(struct sgc_comm *c, struct sgc_coll *co, int err, const char *fmt, ...)
{
	va_list ap;

	if (co->state != COLL_OPEN)
		return;
	va_start(ap, fmt);
	vsnprintf(co->msg, sizeof(co->msg), fmt, ap);
	va_end(ap);
	coll_fail_noted(c, co, err);
}

/* Fail @req with @err: through its collective while that is open (the
 * coordinator then tells the workers), else the request alone. */
static void req_fail(struct sgc_comm *c, struct sgc_request *req, int err, const char *why)
{
	struct sgc_coll *co = req->coll;
	char msg[sizeof(req->msg)];

	snprintf(msg, sizeof(msg), "collective #%u (%s): %s", req->seq, coll_kind_name(req->kind), why);
	if (req->fail)
		req->fail(c, req, err, msg);
	if (co && co->state == COLL_OPEN)
		coll_fail(c, co, err, "%s", msg);
	if (!req->done) {
		req_complete(c, req, err, msg);
		if (err == -ETIMEDOUT)
			c->st.timeouts++;
	}
}

void coll_cancel_all(struct sgc_comm *c, int err, const char *why)
{
	while (c->colls.reqs)
		req_fail(c, c->colls.reqs, err, why);
}

void coll_free_all(struct sgc_comm *c)
{
	struct sgc_request *req;
	int i;

	while ((req = c->colls.reqs)) {
		req_complete(c, req, -ECANCELED,
			     "the communicator was finalized before this collective finished");
		req->c = NULL;
	}
	for (i = 0; i < SGC_RING; i++)
		if (c->colls.slots[i])
			coll_free(c, c->colls.slots[i]);
	/* Requests the caller still holds, done or not, forget @c. */
	while ((req = c->colls.live)) {
		req_live_drop(req);
		req->c = NULL;
	}
}

void req_live_add(struct sgc_comm *c, struct sgc_request *req)
{
	req->lnext = c->colls.live;
	if (req->lnext)
		req->lnext->lpprev = &req->lnext;
	req->lpprev = &c->colls.live;
	c->colls.live = req;
}

void req_live_drop(struct sgc_request *req)
{
	*req->lpprev = req->lnext;
	if (req->lnext)
		req->lnext->lpprev = req->lpprev;
	req->lnext = NULL;
	req->lpprev = NULL;
}

void req_track(struct sgc_comm *c, struct sgc_request *req, struct sgc_coll *co, uint8_t kind,
	       uint64_t deadline)
{
	req_link(c, req, co->seq, kind, deadline);
	req->coll = co;
	co->req = req;
}

void req_link(struct sgc_comm *c, struct sgc_request *req, uint32_t seq, uint8_t kind,
	      uint64_t deadline)
{
	/* Posting order; with many in flight a walk to the end cost more
	 * than the rest of a post. */
	struct sgc_request **tail = c->colls.reqs ? c->colls.reqs_tail : &c->colls.reqs;

	req->next = NULL;
	req->pprev = tail;
	*tail = req;
	c->colls.reqs_tail = &req->next;
	c->colls.nposted++;
	req->deadline = deadline;
	req->seq = seq;
	req->kind = kind;
}

void req_complete(struct sgc_comm *c, struct sgc_request *req, int status, const char *msg)
{
	if (req->coll && req->coll->req == req)
		req->coll->req = NULL;
	req->coll = NULL;
	if (req->detach)
		req->detach(req);
	req->done = true;
	req->status = status;
	if (status)
		snprintf(req->msg, sizeof(req->msg), "%s", msg);
	if (req->whole)
		req->whole->ops->part_done(req);
	if (req->pprev) {
		*req->pprev = req->next;
		if (req->next)
			req->next->pprev = req->pprev;
		else
			c->colls.reqs_tail = req->pprev;
		req->next = NULL;
		req->pprev = NULL;
		c->colls.nposted--;
	}
}

/*
 * The collective's own timer (coord_timer(), worker_timer()) fails it at
 * the same deadline with a better message, and runs first.  What is left
 * here is a request the window does not reach: its collective finished
 * without it, was freed, or is open outside [base, next_seq).  Every
 * deadline is the posting time plus the same timeout, so the list, in
 * posting order, is in deadline order: only its head can be due.
 */
uint64_t req_timers(struct sgc_comm *c, uint64_t now)
{
	struct sgc_request *req;
	char why[160];

	while ((req = c->colls.reqs) && now >= req->deadline) {
		snprintf(why, sizeof(why), "not finished within %u ms: the coordinator may be waiting "
			 "for another rank, or the ranks called collectives in a different order",
			 c->cfg.timeout_ms);
		req_fail(c, req, -ETIMEDOUT, why);
	}
	return req ? req->deadline : UINT64_MAX;
}
