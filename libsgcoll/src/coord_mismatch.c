// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Coordinator: ranks that call a collective with other arguments.  Every
 * worker's call reaches the coordinator (its contributions, and the ACK a
 * broadcast's receivers send at their call) and is held against rank
 * 0's.  A mismatch fails the collective, naming the rank and the
 * arguments that differ, and the workers are told.
 */
#include <stdio.h>

#include "coll.h"
#include "coord.h"

void coord_fail_mismatch(struct sgc_comm *c, struct sgc_coll *co)
{
	struct coll_args ref;

	if (co->state != COLL_OPEN)
		return;
	coll_args_of(co, &ref);
	coll_mismatch_text(co->msg, sizeof(co->msg), co->seq, co->odd.rank, &co->odd.args, 0, &ref, 0);
	coll_fail_noted(c, co, -SGC_EMISMATCH);
}

void coord_mismatch(struct sgc_comm *c, struct sgc_coll *co, int r, const struct coll_args *args)
{
	if (co->odd.rank < 0) {
		co->odd.rank = r;
		co->odd.args = *args;
	}
	if (co->posted)
		coord_fail_mismatch(c, co);
}

/*
 * Before rank 0 has called, the first datagram's arguments made co's
 * state; a call that differs is noted, and rank 0's call decides which of
 * the two was odd (post_match()).
 */
bool coord_check_call(struct sgc_comm *c, struct sgc_coll *co, const struct sgc_hdr *h)
{
	struct coll_args mine, theirs;

	coll_args_from_hdr(c, h, &theirs);
	coll_args_of(co, &mine);
	if (coll_args_diff(&theirs, &mine)) {
		coord_mismatch(c, co, h->rank, &theirs);
		return false;
	}
	coord_present(c, co, h->rank);
	return true;
}

void coord_present(struct sgc_comm *c, struct sgc_coll *co, int r)
{
	if (!co->present || bit_test(co->present, r))
		return;
	bit_set(co->present, r);
	co->npresent++;
	if (co->posted && co->nchunks_done == co->nchunks)
		coord_finish(c, co);
}
