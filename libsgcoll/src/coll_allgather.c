// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sgc_allgather: every rank's block to every rank, in rank order; each
 * rank sends its own block to the others (mesh.c, phase 1).
 */
#include <errno.h>

#include "comm.h"
#include "request.h"

int sgc_allgather(sgc_comm *c, const void *sendbuf, void *recvbuf, size_t count,
		  enum sgc_dtype dt)
{
	struct sgc_request req;
	int err;

	if (!c)
		return sgc_err(-EINVAL, "sgc_allgather: NULL communicator");
	err = mesh_post(c, SGC_COLL_ALLGATHER, sendbuf, recvbuf, count, dt, SGC_SUM, &req);
	return err ? err : req_wait(&req);
}
