// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sgc_reduce_scatter: rank r gets the reduction of every rank's block r,
 * which it reduces itself from what the others send it (mesh.c, phase 0).
 */
#include <errno.h>

#include "comm.h"
#include "request.h"

int sgc_reduce_scatter(sgc_comm *c, const void *sendbuf, void *recvbuf, size_t count,
		       enum sgc_dtype dt, enum sgc_op op)
{
	struct sgc_request req;
	int err;

	if (!c)
		return sgc_err(-EINVAL, "sgc_reduce_scatter: NULL communicator");
	err = mesh_post(c, SGC_COLL_RSCATTER, sendbuf, recvbuf, count, dt, op, &req);
	return err ? err : req_wait(&req);
}
