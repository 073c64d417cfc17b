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

/*
 * Extra copies of small results under loss.  A lost result is found
 * only by its worker's timer (several floors: it cannot tell a lost
 * result from a slow rank) or by the next collective's PULL, and with
 * 64 workers at 10% loss six of them lose each result: the slowest
 * recovery of the six set the pace (65 ranks: p50 7.4 ms on the eBPF
 * path, 5.7 with one extra copy).  So once the workers ask for small
 * results again often enough that one datagram in RLOSS_ONE_PPM per
 * million seems lost, each small result and DONE goes out twice, and
 * three times from RLOSS_TWO_PPM.  A result sent k + 1 times is missed
 * with p^(k+1), so under k copies the rate seen is held against the
 * marks raised to that power.  The copies are not resends: a worker
 * takes the first and counts the others as duplicates.
 *
 * Only for collectives posted, and finished, while rank 0 had few open
 * (RLOSS_MAX_OPEN), in the counts too.  With many in flight a later
 * collective's PULL already tells a worker that its result was lost
 * (worker_gap_nack()), and NACKs that crossed their result are common:
 * 64 in flight at 33 ranks without loss had 3% of small results asked
 * for again, turned copies on, and rank 0 sent three times the
 * datagrams at two thirds of the rate.
 */
#define RLOSS_ONE_PPM		30000
#define RLOSS_TWO_PPM		200000
/* No copies before this many result datagrams were counted. */
#define RLOSS_MIN_SENT		1024
/* Both counts are halved when the sent one passes this. */
#define RLOSS_WINDOW		65536

static bool rloss_counts(const struct sgc_comm *c, const struct sgc_coll *co)
{
	return co->nchunks <= RLOSS_MAX_CHUNKS && co->ahead <= RLOSS_MAX_OPEN &&
	       c->colls.nposted <= RLOSS_MAX_OPEN;
}

static uint64_t ppm_pow(uint64_t ppm, unsigned k)
{
	uint64_t m = ppm;

	while (k--)
		m = m * ppm / 1000000;
	return m;
}

static void rloss_update(struct sgc_rloss *l)
{
	uint64_t ppm;

	if (l->sent > RLOSS_WINDOW) {
		l->sent /= 2;
		l->lost /= 2;
	}
	if (l->sent < RLOSS_MIN_SENT)
		return;
	ppm = (uint64_t)l->lost * 1000000 / l->sent;
	l->copies = ppm >= ppm_pow(RLOSS_TWO_PPM, l->copies)   ? 2 :
		    ppm >= ppm_pow(RLOSS_ONE_PPM, l->copies) ? 1 : 0;
}

void coord_rloss_lost(struct sgc_comm *c, const struct sgc_coll *co, uint32_t n)
{
	if (!rloss_counts(c, co))
		return;
	c->rloss.lost += n;
	rloss_update(&c->rloss);
}

/* @p goes to every worker @elig takes, from @first on; a small result
 * then again to all of them, as many times as the loss asks for. */
static void send_result(struct sgc_comm *c, const struct sgc_coll *co, struct sgc_pkt *p,
			int first, rank_pred_fn elig)
{
	unsigned k;
	int r, n = 0;

	results_cork(c, co->kind);
	send_to_ranks(c, p, first, elig, co);
	if (!rloss_counts(c, co))
		return;
	for (r = 1; r < c->world; r++)
		n += elig(co, r);
	c->rloss.sent += (uint32_t)n;
	rloss_update(&c->rloss);
	for (k = 0; k < c->rloss.copies && n; k++)
		send_to_ranks(c, p, 1, elig, co);
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
	/* The kernel's clones went out unstamped, and earlier than now. */
	if (!kernel_sent)
		h->stamp = wire_stamp(p->sent_at);
	if (co->kind != SGC_COLL_BARRIER)
		send_result(c, co, p, first, data_elig);
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
			pkt_hdr(d)->stamp = wire_stamp(now_ns());
			d->len = SGC_HDR_SIZE;
			send_result(c, co, d, co->done_first ? co->done_first : 1,
				    co->kind == SGC_COLL_BCAST ? worker_elig : done_elig);
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
