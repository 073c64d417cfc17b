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
	if (kernel_reduces_kind(c, co->kind)) {
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

/*
 * Also when a collective finishes, not only after a batch of datagrams: a
 * coordinator that posts after every worker has sent completes the
 * collective inside its own call (kernel_inject_own()), and posts the
 * next, and so on, without a receive in between.  With 64 in flight at
 * 33 ranks the kernel's window then lagged what was open by up to 128
 * collectives, and the workers' contributions beyond it, 2,048 at a
 * time, were dropped and PULLed again: 20,000-30,000 resends per 8,000
 * collectives.
 */
void coord_kernel_window(struct sgc_comm *c)
{
	const struct sgc_coll *o;

	if (!c->bpf)
		return;
	o = coll_oldest_open(c, false);
	bpf_path_window(c, o ? o->seq : c->colls.next_seq);
}
