// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sgc_allreduce: every rank contributes, every rank gets the reduction.
 * Small vectors go through rank 0 (the star, coll.c), large ones in
 * shards, each reduced by its owner (mesh.c; kshard.c on the owners' eBPF
 * paths when a rank asks for SGC_ACCEL=ebpf): SGC_ALGO picks.
 */
#include <errno.h>

#include "coll.h"
#include "comm.h"
#include "request.h"

/* Post an allreduce on the algorithm SGC_ALGO (and SGC_ACCEL, for
 * shard-kernel) picks; @req learns the outcome. */
static int allreduce_post(struct sgc_comm *c, const void *sendbuf, void *recvbuf, size_t count,
			  enum sgc_dtype dt, enum sgc_op op, struct sgc_request *req)
{
	int err;

	if (!mesh_allreduce_wanted(c, count, dt, op))
		return coll_post(c, SGC_COLL_ALLREDUCE, sendbuf, recvbuf, count, dt, op, 0, req);
	err = kshard_wanted(c);
	if (err > 0)
		return kshard_post(c, sendbuf, recvbuf, count, dt, op, req);
	return err ? err : mesh_post(c, SGC_COLL_ALLREDUCE, sendbuf, recvbuf, count, dt, op, req);
}

int sgc_allreduce(sgc_comm *c, const void *sendbuf, void *recvbuf, size_t count,
		  enum sgc_dtype dt, enum sgc_op op)
{
	struct sgc_request req;
	int err;

	if (!c)
		return sgc_err(-EINVAL, "sgc_allreduce: NULL communicator");
	err = allreduce_post(c, sendbuf, recvbuf, count, dt, op, &req);
	if (err)
		return err;
	err = req_wait(&req);
	if (req.ops)
		req.ops->release(&req);
	return err;
}

int sgc_iallreduce(sgc_comm *c, const void *sendbuf, void *recvbuf, size_t count,
		   enum sgc_dtype dt, enum sgc_op op, sgc_request **out)
{
	struct sgc_request *req;
	int err;

	err = req_new("sgc_iallreduce", c, out, &req);
	if (err)
		return err;
	err = allreduce_post(c, sendbuf, recvbuf, count, dt, op, req);
	return req_started(c, req, err, out);
}
