// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Non-blocking collectives: requests, sgc_test() and sgc_wait().  The
 * calls over arrays of requests (sgc_waitall(), sgc_testany()) are in
 * request_set.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "coll.h"
#include "comm.h"
#include "progress.h"

int req_new(const char *what, sgc_comm *c, sgc_request **out, struct sgc_request **req)
{
	if (!out)
		return sgc_err(-EINVAL, "%s: NULL request pointer", what);
	*out = NULL;
	if (!c)
		return sgc_err(-EINVAL, "%s: NULL communicator", what);
	*req = calloc(1, sizeof(**req));
	if (!*req)
		return sgc_err(-ENOMEM, "out of memory for a request");
	return 0;
}

int req_started(struct sgc_comm *c, struct sgc_request *req, int err, sgc_request **out)
{
	if (err) {
		free(req);
		return err;
	}
	req_live_add(c, req);
	io_flush(c);
	*out = req;
	return 0;
}

static int req_post(const char *what, sgc_comm *c, uint8_t kind, const void *sendbuf,
		    void *recvbuf, size_t count, enum sgc_dtype dt, enum sgc_op op, int root,
		    bool shard, sgc_request **out)
{
	struct sgc_request *req;
	int err;

	err = req_new(what, c, out, &req);
	if (err)
		return err;
	if (shard)
		err = mesh_post(c, kind, sendbuf, recvbuf, count, dt, op, req);
	else
		err = coll_post(c, kind, sendbuf, recvbuf, count, dt, op, root, req);
	return req_started(c, req, err, out);
}

int sgc_ireduce(sgc_comm *c, const void *sendbuf, void *recvbuf, size_t count,
		enum sgc_dtype dt, enum sgc_op op, int root, sgc_request **req)
{
	return req_post("sgc_ireduce", c, SGC_COLL_REDUCE, sendbuf, recvbuf, count, dt, op, root, false,
		    req);
}

int sgc_ibroadcast(sgc_comm *c, void *buf, size_t count, enum sgc_dtype dt, int root,
		   sgc_request **req)
{
	return req_post("sgc_ibroadcast", c, SGC_COLL_BCAST, NULL, buf, count, dt, SGC_SUM, root, false,
		    req);
}

int sgc_ibarrier(sgc_comm *c, sgc_request **req)
{
	return req_post("sgc_ibarrier", c, SGC_COLL_BARRIER, NULL, NULL, 0, SGC_UINT8, SGC_SUM, 0, false,
		    req);
}

int sgc_ireduce_scatter(sgc_comm *c, const void *sendbuf, void *recvbuf, size_t count,
			enum sgc_dtype dt, enum sgc_op op, sgc_request **req)
{
	return req_post("sgc_ireduce_scatter", c, SGC_COLL_RSCATTER, sendbuf, recvbuf, count, dt, op, 0,
		    true, req);
}

int sgc_iallgather(sgc_comm *c, const void *sendbuf, void *recvbuf, size_t count,
		   enum sgc_dtype dt, sgc_request **req)
{
	return req_post("sgc_iallgather", c, SGC_COLL_ALLGATHER, sendbuf, recvbuf, count, dt, SGC_SUM, 0,
		    true, req);
}

void req_give_up(struct sgc_request *req, int err)
{
	char msg[sizeof(req->msg)];

	if (req->done || !req->c)
		return;
	/* Off the communicator's list before it can be freed; its
	 * collective, still open, goes on without it. */
	snprintf(msg, sizeof(msg), "collective #%u (%s): waiting for it failed: %s", req->seq,
		 coll_kind_name(req->kind), sgc_last_error()[0] ? sgc_last_error() : sgc_strerror(err));
	req_complete(req->c, req, err, msg);
}

int req_finish(struct sgc_request *req)
{
	/* NULL once the communicator is gone (coll_free_all()). */
	struct sgc_comm *c = req->lpprev ? req->c : NULL;
	int status = req->status;

	if (status)
		sgc_err(status, "%s", req->msg[0] ? req->msg : sgc_strerror(status));
	if (c)
		req_live_drop(req);
	if (req->ops)
		req->ops->release(req);
	free(req);
	/* The caller's last request: what a cork holds goes now. */
	if (c && !c->colls.live)
		io_flush(c);
	return status;
}

int sgc_test(sgc_request *req, int *done)
{
	struct sgc_comm *c;
	int err;

	if (!req || !done)
		return sgc_err(-EINVAL, "sgc_test: NULL request or done pointer");
	*done = 0;
	c = req->c;
	if (!req->done && c && req->ops) {
		err = req->ops->progress(req);
		if (!req->done)
			return err;
	} else if (!req->done && c) {
		err = engine_progress(c, 0);
		if (!req->done) {
			/* Make sgc_fd() readable when the next timer is due. */
			io_arm_timer(c, c->colls.next_timer);
			io_flush(c);
			return err;
		}
		io_flush(c);
	}
	*done = 1;
	return req_finish(req);
}

int sgc_wait(sgc_request *req)
{
	if (!req)
		return sgc_err(-EINVAL, "sgc_wait: NULL request");
	if (!req->done && req->c) {
		int err = req_wait(req);

		/* Not done: the engine failed (io_uring), and @req, still
		 * outstanding, must leave the list before it is freed. */
		if (err && !req->done)
			req_give_up(req, err);
	}
	return req_finish(req);
}
