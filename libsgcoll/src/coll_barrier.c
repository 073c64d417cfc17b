// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* sgc_barrier: an empty reduction that every rank must enter. */
#include <errno.h>

#include "request.h"

int sgc_barrier(sgc_comm *c)
{
	struct sgc_request req;
	int err;

	if (!c)
		return sgc_err(-EINVAL, "sgc_barrier: NULL communicator");
	err = coll_post(c, SGC_COLL_BARRIER, NULL, NULL, 0, SGC_UINT8, SGC_SUM, 0, &req);
	return err ? err : req_wait(&req);
}
