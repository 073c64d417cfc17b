// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sgc_allreduce: every rank contributes, every rank gets the reduction.
 * Small vectors go through rank 0 (the star, coll.c), large ones in
 * shards, each reduced by its owner (mesh.c): SGC_ALGO picks.
 */
#include <errno.h>

#include "comm.h"
#include "request.h"

int sgc_allreduce(sgc_comm *c, const void *sendbuf, void *recvbuf, size_t count,
		  enum sgc_dtype dt, enum sgc_op op)
{
	struct sgc_request req;
	int err;

	if (!c)
		return sgc_err(-EINVAL, "sgc_allreduce: NULL communicator");
	if (mesh_allreduce_wanted(c, count, dt, op))
		err = mesh_post(c, SGC_COLL_ALLREDUCE, sendbuf, recvbuf, count, dt, op, &req);
	else
		err = coll_post(c, SGC_COLL_ALLREDUCE, sendbuf, recvbuf, count, dt, op, 0, &req);
	return err ? err : req_wait(&req);
}
