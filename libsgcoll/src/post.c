// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Posting a collective and waiting for it: check the arguments, wait for
 * a free slot, match what other ranks already sent, start this rank's
 * part; then progress until the request is done.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coll.h"
#include "coord.h"
#include "progress.h"
#include "request.h"
#include "transport.h"
#include "worker.h"

/* A worker that has not reported finishing the oldest collective. */
static bool peer_lagging(const void *arg, int r)
{
	const struct sgc_comm *c = arg;

	return c->peers[r].wm == c->colls.base;
}

/* What one call asks for, checked. */
struct post_args {
	uint8_t kind;
	const void *sendbuf;
	void *recvbuf;
	size_t count;
	enum sgc_dtype dt;
	enum sgc_op op;
	int root;
	uint32_t nchunks;
};

static int post_validate(struct sgc_comm *c, struct post_args *a)
{
	const char *what = coll_kind_name(a->kind);
	uint64_t nchunks;
	size_t elsz;

	if (c->dead)
		return sgc_err(c->dead_err, "the job has ended: the coordinator aborted it or is gone");
	if (!sgc_dtype_valid(a->dt))
		return sgc_err(-EINVAL, "%s: unknown dtype %d (use enum sgc_dtype)", what, (int)a->dt);
	if (a->op == SGC_CUSTOM && (a->kind == SGC_COLL_ALLREDUCE || a->kind == SGC_COLL_REDUCE)) {
		/* Workers only carry the op; the coordinator's kernel runs it. */
		if (c->rank == 0 && !(kernel_reduces_kind(c, a->kind) && bpf_path_has_custom(c)))
			return sgc_err(-EOPNOTSUPP, "%s with SGC_CUSTOM needs the eBPF path on the "
				       "coordinator with a custom reduction loaded (sgc_config.custom_bpf or "
				       "SGC_CUSTOM_BPF)%s", what,
				       c->bpf ? "" : "; the eBPF path is not active here");
	} else if (!sgc_op_valid(a->op)) {
		return sgc_err(-EINVAL, "%s: unknown op %d (use enum sgc_op)", what, (int)a->op);
	}
	if (a->root < 0 || a->root >= c->world)
		return sgc_err(-EINVAL, "%s: root %d is not a rank of this %d-rank job",
			       what, a->root, c->world);
	elsz = sgc_dtype_size(a->dt);
	if (a->count > SIZE_MAX / elsz)
		return sgc_err(-EMSGSIZE, "%s: count %zu is too large", what, a->count);
	nchunks = sgc_nchunks(a->count, elsz, c->chunk_bytes);
	if (nchunks > UINT32_MAX / 2)
		return sgc_err(-EMSGSIZE, "%s: %zu elements need more than 2^31 datagrams",
			       what, a->count);
	a->nchunks = (uint32_t)nchunks;
	if (a->count &&
	    ((a->kind == SGC_COLL_ALLREDUCE && (!a->sendbuf || !a->recvbuf)) ||
	     (a->kind == SGC_COLL_REDUCE && (!a->sendbuf || (c->rank == a->root && !a->recvbuf))) ||
	     (a->kind == SGC_COLL_BCAST && !a->recvbuf)))
		return sgc_err(-EINVAL, "%s: NULL buffer for %zu elements", what, a->count);
	if (c->colls.nposted >= SGC_MAX_INFLIGHT)
		return sgc_err(-EBUSY, "%d collectives are already outstanding on this communicator: "
			       "finish some with sgc_wait()/sgc_test() first", SGC_MAX_INFLIGHT);
	return 0;
}

/*
 * The slot of the next collective must be free.  At the coordinator that
 * means every worker has the result that used it: ask laggards for their
 * watermark while waiting, until @deadline.
 */
static int post_wait_slot(struct sgc_comm *c, uint64_t deadline)
{
	uint32_t seq = c->colls.next_seq;
	uint64_t probe = 0;

	if (c->rank != 0) {
		/* A collective that completed inside its own call (its data
		 * came first) is retired only after a receive: do it now. */
		if (c->joined)
			worker_advance(c);
		if (seq - c->colls.base >= SGC_MAX_INFLIGHT)
			return sgc_err(-EBUSY, "%d collectives are already outstanding on this "
				       "communicator: finish some with sgc_wait()/sgc_test() first",
				       SGC_MAX_INFLIGHT);
		return 0;
	}
	while (seq - c->colls.base >= SGC_RING) {
		uint64_t now = now_ns();
		int r;

		if (now >= deadline) {
			char list[120];

			sgc_rank_list_base(list, sizeof(list), 1, c->world, c->rank_base, peer_lagging,
					   c);
			return sgc_err(-ETIMEDOUT, "collective #%u: ranks %s have not finished "
				       "collective #%u after %u ms, and only %d may be outstanding",
				       seq, list, c->colls.base, c->cfg.timeout_ms, SGC_RING);
		}
		if (now >= probe) {
			for (r = 1; r < c->world; r++) {
				struct sgc_hdr h;

				if (c->peers[r].wm != c->colls.base)
					continue;
				sgc_hdr_init(&h, SGC_MSG_ACK, c->job_id);
				h.rank = (uint16_t)r;
				send_to_rank(c, &h, r);
			}
			probe = now + c->rtt.rto_ns;
		}
		engine_progress(c, min_u64(probe, deadline));
	}
	return 0;
}

/*
 * The collective's state: new, or the one datagrams from other ranks
 * made already.  If this call differs from those datagrams, the state is
 * made again from the call: this rank goes on as it called, and the
 * coordinator, which holds every call against rank 0's, fails it and
 * names the odd rank.  At the coordinator, this call decides which one
 * that is: the rank whose datagram made the state if this call differs
 * from it, else the first other one noted (coord_mismatch()).
 */
static struct sgc_coll *post_match(struct sgc_comm *c, const struct post_args *a)
{
	uint32_t seq = c->colls.next_seq;
	struct sgc_coll *co = slot_find(c, seq);
	struct coll_args call = {
		.count = a->count, .nchunks = a->nchunks, .kind = a->kind,
		.dtype = (uint8_t)a->dt, .op = (uint8_t)a->op, .root = a->root,
	};
	struct coll_args made;
	struct coll_call odd = { .rank = -1 };

	if (co && co->state == COLL_OPEN) {
		coll_args_of(co, &made);
		if (!coll_args_diff(&made, &call))
			return co;
		odd = co->odd;
		if (c->rank == 0 && co->first.rank >= 0)
			odd = co->first;
		coll_free(c, co);
		co = NULL;
	}
	if (!co) {
		co = coll_new(c, seq, a->kind, a->dt, a->op, a->root, a->nchunks);
		if (!co)
			sgc_err(-ENOMEM, "%s: cannot allocate state for %u chunks",
				coll_kind_name(a->kind), a->nchunks);
		else if (c->rank == 0)
			co->odd = odd;
	}
	return co;
}

/* This rank's part begins. */
static void post_start(struct sgc_comm *c, struct sgc_coll *co, const struct post_args *a,
		       uint64_t deadline, struct sgc_request *req)
{
	c->colls.next_seq++;
	co->posted = true;
	co->count = a->count;
	co->sendbuf = a->sendbuf;
	co->recvbuf = a->recvbuf;
	c->now = now_ns();
	retx_start(&co->rt, c->now, deadline, c->rank ? worker_rto(c, co) : coord_rto(c, co));
	co->t_post = c->now;
	co->retx_at_post = c->st.retransmits;
	co->ahead = c->colls.nposted;
	req_track(c, req, co, a->kind, deadline);
	if (co->state == COLL_FAILED) {
		/* It failed before this rank called it: a worker had its
		 * datagrams and then the coordinator's abort; the coordinator
		 * ran out of memory for early contributions.  Nothing will
		 * finish it again, so the call fails now, with that cause. */
		coll_abort_workers(c, co, co->status);
		req_complete(c, req, co->status, co->msg);
		return;
	}
	if (a->kind == SGC_COLL_BCAST && c->rank == a->root) {
		/* The root's data is its contribution. */
		co->sendbuf = a->recvbuf;
	}
	if (c->rank == 0) {
		coord_start(c, co);
	} else {
		worker_start(c, co);
	}
}

int coll_post(struct sgc_comm *c, uint8_t kind, const void *sendbuf, void *recvbuf,
	      size_t count, enum sgc_dtype dt, enum sgc_op op, int root, struct sgc_request *req)
{
	struct post_args a = {
		.kind = kind, .sendbuf = sendbuf, .recvbuf = recvbuf, .count = count,
		.dt = dt, .op = op, .root = root,
	};
	struct sgc_coll *co;
	uint64_t deadline;
	int err;

	req_reset(req, c);
	err = post_validate(c, &a);
	if (err)
		return err;
	deadline = now_ns() + c->rtt.timeout_ns;
	err = post_wait_slot(c, deadline);
	if (err)
		return err;
	co = post_match(c, &a);
	if (!co)
		return -ENOMEM;
	post_start(c, co, &a, deadline, req);
	return 0;
}

int req_wait(struct sgc_request *req)
{
	struct sgc_comm *c = req->c;
	int err;

	if (req->ops) {
		err = req->ops->wait(req);
		return err ? sgc_err(err, "%s", req->msg[0] ? req->msg : sgc_strerror(err)) : 0;
	}
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
