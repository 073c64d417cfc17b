// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* sgc_allreduce: every rank contributes, every rank gets the reduction. */
#include <errno.h>

#include "request.h"

int sgc_allreduce(sgc_comm *c, const void *sendbuf, void *recvbuf, size_t count,
		  enum sgc_dtype dt, enum sgc_op op)
{
	struct sgc_request req;
	int err;

	if (!c)
		return sgc_err(-EINVAL, "sgc_allreduce: NULL communicator");
	err = coll_post(c, SGC_COLL_ALLREDUCE, sendbuf, recvbuf, count, dt, op, 0, &req);
	return err ? err : req_wait(&req);
}
