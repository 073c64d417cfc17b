/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A request: one rank's call of one collective, and what the collective
 * files (coll_*.c, request.c) need to post one and wait for it (post.c).
 */
#ifndef SGC_REQUEST_H
#define SGC_REQUEST_H

#include "sgc_internal.h"

struct sgc_comm;
struct sgc_coll;
struct mesh_coll;

/* A request made of others' (kshard.c's): how the calls that take any
 * request drive it.  Set on the whole; its parts point back at it. */
struct req_ops {
	int (*progress)(struct sgc_request *req);	/* one round, not blocking */
	int (*wait)(struct sgc_request *req);		/* until done; its status */
	void (*release)(struct sgc_request *req);	/* what it holds, before it is freed */
	void (*part_done)(struct sgc_request *part);	/* req_complete() of a part */
};

struct sgc_request {
	struct sgc_comm *c;
	struct sgc_coll *coll;	/* NULL once finished */
	struct mesh_coll *mesh;	/* a sharded collective's (mesh.c) instead */
	/* Set for such a request by its owner: forget the request, which is
	 * over; fail its collective with @err. */
	void (*detach)(struct sgc_request *req);
	void (*fail)(struct sgc_comm *c, struct sgc_request *req, int err, const char *msg);
	/* Outstanding (posted, not done): on c->colls.reqs, in posting
	 * order; @pprev is NULL otherwise. */
	struct sgc_request *next, **pprev;
	/* A non-blocking call's, until freed: on c->colls.live (request.c). */
	struct sgc_request *lnext, **lpprev;
	/* A sharded allreduce on the groups (kshard.c): one request per
	 * shard, each on its group; done when every one is.  A shard's
	 * request points back at it. */
	const struct req_ops *ops;
	struct sgc_request *parts;
	int nparts, parts_left;
	struct sgc_request *whole;
	size_t count;		/* the whole's: the call's count and dtype, for messages */
	uint8_t dtype;
	uint64_t deadline;	/* done by then, whatever its collective does */
	uint32_t seq;		/* what this rank called, for messages */
	uint8_t kind;
	bool done;
	int status;
	char msg[400];
};

/* @req, ready for a call on @c: on no list, no outcome, no owner's hooks. */
static inline void req_reset(struct sgc_request *req, struct sgc_comm *c)
{
	*req = (struct sgc_request){ .c = c };
}

/* Start this rank's part of a collective; @req learns the outcome. */
SGC_HIDDEN int coll_post(struct sgc_comm *c, uint8_t kind, const void *sendbuf,
			 void *recvbuf, size_t count, enum sgc_dtype dt,
			 enum sgc_op op, int root, struct sgc_request *req);
/* A non-blocking call's request (request.c).  req_new(): the checks of
 * @c and @out, and a heap request in *@req.  req_started(): after the
 * post, with its error: on failure the request is freed; otherwise it is
 * live until the caller frees it, and *@out gets it. */
SGC_HIDDEN int req_new(const char *what, struct sgc_comm *c, struct sgc_request **out,
		       struct sgc_request **req);
SGC_HIDDEN int req_started(struct sgc_comm *c, struct sgc_request *req, int err,
			   struct sgc_request **out);
/* Progress until @req is done; returns its status. */
SGC_HIDDEN int req_wait(struct sgc_request *req);
/* Waiting for @req failed with @err (the engine, not the collective):
 * complete it with @err, so that it leaves its communicator's list. */
SGC_HIDDEN void req_give_up(struct sgc_request *req, int err);
/* request_set.c, for requests made of parts too.  reqs_wait_all():
 * progress until no request in @reqs is outstanding (each ends at its
 * collective's end or its deadline; a communicator whose engine fails
 * gives its requests up).  reqs_progress(): one round without blocking on
 * every communicator they use, each sgc_fd() armed for its next timer;
 * the first failure. */
SGC_HIDDEN void reqs_wait_all(int n, struct sgc_request **reqs);
SGC_HIDDEN int reqs_progress(int n, struct sgc_request **reqs);
/* Free a finished heap request; returns its status, which becomes this
 * thread's last error if it is one. */
SGC_HIDDEN int req_finish(struct sgc_request *req);

#endif /* SGC_REQUEST_H */
