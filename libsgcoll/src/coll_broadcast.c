// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sgc_broadcast: the root's buffer goes to every rank.  A worker root
 * sends its data to the coordinator (paced like a contribution), which
 * fans it out; a coordinator root fans out directly.
 */
#include <errno.h>

#include "request.h"

int sgc_broadcast(sgc_comm *c, void *buf, size_t count, enum sgc_dtype dt, int root)
{
	struct sgc_request req;
	int err;

	if (!c)
		return sgc_err(-EINVAL, "sgc_broadcast: NULL communicator");
	err = coll_post(c, SGC_COLL_BCAST, NULL, buf, count, dt, SGC_SUM, root, &req);
	return err ? err : req_wait(&req);
}
