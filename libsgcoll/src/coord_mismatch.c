// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Coordinator: ranks that call a collective with other arguments.  Every
 * worker's call reaches the coordinator (its contributions, and the ACK a
 * broadcast's receivers send at their call) and is held against rank
 * 0's.  On the eBPF path the kernel holds contributions against the first
 * one of their chunk and passes the ones that differ up to user space: if
 * those agree with rank 0's call, the slot's own ranks are the odd ones.
 * A mismatch fails the collective, naming the rank and the arguments that
 * differ, and the workers are told (coll_send_abort()).
 */
#include <stdio.h>

#include "coll.h"
#include "coord.h"
#include "sgc_common.h"

void coord_fail_mismatch(struct sgc_comm *c, struct sgc_coll *co)
{
	struct coll_args ref;

	if (co->state != COLL_OPEN)
		return;
	coll_args_of(co, &ref);
	coll_mismatch_text(co->msg, sizeof(co->msg), co->seq, msg_rank(c, co->odd.rank), &co->odd.args,
			   msg_rank(c, 0), &ref, msg_rank(c, 0));
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

/* Chunk @ch's slot holds contributions whose arguments differ from @co's:
 * note the first of their ranks as odd. */
static bool slot_mismatch(struct sgc_comm *c, struct sgc_coll *co, uint32_t ch)
{
	const struct sgc_bpf_slot *s = bpf_path_slot_at(c, co->seq, ch);
	struct coll_args theirs, mine;
	int r;

	if (!s)
		return false;
	coll_args_of(co, &mine);
	theirs.kind = s->coll;
	theirs.dtype = s->dtype;
	theirs.op = s->op;
	theirs.root = s->arg;
	/* The slot has the count modulo 2^32, and not the chunks. */
	theirs.nchunks = 0;
	theirs.count = mine.count == COLL_COUNT_UNKNOWN ? s->total :
		       (mine.count & ~(uint64_t)UINT32_MAX) | s->total;
	for (r = 0; r < c->world && !rank_mask_test(s->seen, r); r++)
		;
	if (r == c->world || !coll_args_diff(&theirs, &mine))
		return false;
	coord_mismatch(c, co, r, &theirs);
	return true;
}

bool coord_kernel_refused(struct sgc_comm *c, struct sgc_coll *co, uint32_t ch)
{
	if (kernel_reduces_kind(c, co->kind) && slot_mismatch(c, co, ch))
		return true;
	c->st.rejected++;
	return false;
}

bool kernel_check_slots(struct sgc_comm *c, struct sgc_coll *co)
{
	uint32_t ch, lim = co->kernel_low + SGC_BPF_CHUNK_SLOTS;

	if (!kernel_reduces_kind(c, co->kind))
		return false;
	for (ch = co->kernel_low; ch < lim && ch < co->nchunks; ch++) {
		if (co->res[ch] && co->nseen[ch] == co->ncontrib)
			continue;
		if (slot_mismatch(c, co, ch))
			return true;
	}
	return false;
}

