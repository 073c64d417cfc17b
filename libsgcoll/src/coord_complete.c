// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Coordinator: a chunk is complete (reduced here or in the kernel).  Its
 * result goes to the receivers, and once every chunk is, the collective
 * is done and those who get no data are told.
 */
#include <string.h>

#include "coll.h"
#include "coord.h"
#include "pull.h"
#include "sgc_common.h"
#include "transport.h"

static bool data_elig(const void *obj, int r)
{
	return is_data_receiver(obj, r);
}

static bool done_elig(const void *obj, int r)
{
	return !is_data_receiver(obj, r);
}

void coord_chunk_complete(struct sgc_comm *c, struct sgc_coll *co, uint32_t ch, bool kernel_sent)
{
	struct sgc_pkt *p = co->res[ch];
	struct sgc_hdr *h = pkt_hdr(p);
	size_t n = chunk_n(co, ch);
	/* The first receiver left to us: notify_prog stops at a clone that
	 * fails and says where in the result's header (0: it missed none).
	 * It clones to ranks below lim only; anything else in the field is
	 * not its word, and then everyone gets the result from us. */
	int lim = c->world < SGC_BPF_FANOUT_MAX + 1 ? c->world : SGC_BPF_FANOUT_MAX + 1;
	int first = !kernel_sent ? 1 : !h->fan_first ? lim : h->fan_first < lim ? h->fan_first : 1;

	coll_hdr(c, h, SGC_MSG_RESULT, co, 0);
	h->chunk = ch;
	h->count = (uint16_t)n;
	p->len = (uint32_t)(SGC_HDR_SIZE + n * co->elsz);
	if (co->receives && n)
		memcpy(co->recvbuf + chunk_off(co, ch), pkt_body(p), n * co->elsz);
	p->sent_at = now_ns();
	if (co->kind != SGC_COLL_BARRIER)
		send_to_ranks(c, p, first, data_elig, co);
	if (kernel_reduces(c)) {
		/* The kernel saw the contributions, we did not: mark them so
		 * that re-PULLs never ask for a complete chunk, and give back
		 * the budget of the PULLs this chunk answered. */
		int r;

		for (r = 0; r < c->world; r++) {
			if (r && is_contributor(co, r) && ch >= c->pace.push_credit &&
			    ch < co->pull.to[r] && !seen_test(co->seen, c->world, ch, r))
				pull_release(c, &co->pull, 1);
			seen_set(co->seen, c->world, ch, r);
		}
	}
	while (co->kernel_low < co->nchunks && co->res[co->kernel_low] &&
	       co->nseen[co->kernel_low] == co->ncontrib)
		co->kernel_low++;
	if (++co->nchunks_done < co->nchunks)
		return;
	/* notify_prog told the first workers a barrier is over. */
	co->done_first = co->kind == SGC_COLL_BARRIER ? first : 1;
	coord_finish(c, co);
}

static bool worker_elig(const void *obj, int r)
{
	return r != 0;
}

void coord_finish(struct sgc_comm *c, struct sgc_coll *co)
{
	if (co->state != COLL_OPEN)
		return;
	/* A broadcast is over when every rank has said it called it alike:
	 * its receivers finish only on the DONE that says so. */
	if (co->present && co->npresent < c->world)
		return;
	/* Everyone who got no data learns that its part is over. */
	if (co->kind == SGC_COLL_BARRIER || co->kind == SGC_COLL_REDUCE ||
	    co->kind == SGC_COLL_BCAST) {
		struct sgc_pkt *d = pkt_alloc(c);

		if (d) {
			coll_hdr(c, pkt_hdr(d), SGC_MSG_RESULT, co, 0);
			pkt_hdr(d)->flags = SGC_F_DONE;
			d->len = SGC_HDR_SIZE;
			send_to_ranks(c, d, co->done_first ? co->done_first : 1,
				      co->kind == SGC_COLL_BCAST ? worker_elig : done_elig, co);
			pkt_put(c, d);
		}
	}
	coll_finish(c, co, 0);
	coord_kernel_window(c);
}
