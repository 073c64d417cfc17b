// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sgc_allreduce: every rank contributes, every rank gets the reduction.
 * Small vectors go through rank 0 (the star, coll.c), large ones in
 * shards, each reduced by its owner (mesh.c; kshard.c on the owners' eBPF
 * paths when a rank asks for SGC_ACCEL=ebpf): SGC_ALGO picks.
 */
#include <errno.h>
#include <stdlib.h>

#include "coll.h"
#include "comm.h"
#include "request.h"

int sgc_allreduce(sgc_comm *c, const void *sendbuf, void *recvbuf, size_t count,
		  enum sgc_dtype dt, enum sgc_op op)
{
	struct sgc_request req;
	int err;

	if (!c)
		return sgc_err(-EINVAL, "sgc_allreduce: NULL communicator");
	if (!mesh_allreduce_wanted(c, count, dt, op))
		err = coll_post(c, SGC_COLL_ALLREDUCE, sendbuf, recvbuf, count, dt, op, 0, &req);
	else if ((err = kshard_wanted(c)) > 0)
		err = kshard_post(c, sendbuf, recvbuf, count, dt, op, &req);
	else if (!err)
		err = mesh_post(c, SGC_COLL_ALLREDUCE, sendbuf, recvbuf, count, dt, op, &req);
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

	if (!c || !out || !mesh_allreduce_wanted(c, count, dt, op))
		return req_post("sgc_iallreduce", c, SGC_COLL_ALLREDUCE, sendbuf, recvbuf, count, dt,
				op, 0, false, out);
	*out = NULL;
	err = kshard_wanted(c);
	if (err <= 0)
		return err ? err : req_post("sgc_iallreduce", c, SGC_COLL_ALLREDUCE, sendbuf,
					    recvbuf, count, dt, op, 0, true, out);
	req = calloc(1, sizeof(*req));
	if (!req)
		return sgc_err(-ENOMEM, "out of memory for a request");
	err = kshard_post(c, sendbuf, recvbuf, count, dt, op, req);
	if (err) {
		free(req);
		return err;
	}
	req_live_add(c, req);
	*out = req;
	return 0;
}
