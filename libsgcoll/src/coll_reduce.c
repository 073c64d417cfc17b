// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sgc_reduce: every rank contributes, the root gets the reduction.  A
 * non-zero root costs one more hop (coordinator -> root); the other ranks
 * return once the coordinator confirms it has their data.
 */
#include <errno.h>

#include "request.h"

int sgc_reduce(sgc_comm *c, const void *sendbuf, void *recvbuf, size_t count,
	       enum sgc_dtype dt, enum sgc_op op, int root)
{
	struct sgc_request req;
	int err;

	if (!c)
		return sgc_err(-EINVAL, "sgc_reduce: NULL communicator");
	err = coll_post(c, SGC_COLL_REDUCE, sendbuf, recvbuf, count, dt, op, root, &req);
	return err ? err : req_wait(&req);
}
