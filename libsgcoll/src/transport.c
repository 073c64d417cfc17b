// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * What the collective algorithms send through: one message to a rank, or
 * one datagram to a set of ranks.  On the user-space path that is one
 * send per rank; on the eBPF path the coordinator sends one SGC_F_FANOUT
 * request per run of ranks and scatter_prog (TC egress) clones it.
 */
#include <errno.h>
#include <string.h>

#include "transport.h"

int send_hdr(struct sgc_comm *c, const struct sgc_hdr *h, const struct sockaddr_in *dst)
{
	struct sgc_pkt *p = pkt_alloc_small(c);
	int err;

	if (!p)
		return -ENOMEM;
	memcpy(p->data, h, sizeof(*h));
	p->len = SGC_HDR_SIZE;
	err = io_send(c, p, dst);
	pkt_put(c, p);
	return err;
}

void send_to_rank(struct sgc_comm *c, const struct sgc_hdr *h, int r)
{
	send_hdr(c, h, r ? &c->peers[r].addr : &c->cfg.coord);
}

/* Ranks per SGC_F_FANOUT datagram: what scatter_prog clones in one go
 * stays well below a receive ring (256) and the backlog (1000). */
#define CLONE_WINDOW 128
/* Fewest ranks worth a datagram of their own on another CPU: below this,
 * waking an io_uring worker costs more than the clones it takes over. */
#define CLONE_SPLIT_MIN 32

/* One SGC_F_FANOUT clone request for ranks [lo, hi); async: from an io_uring
 * worker, so that its clones (and their softirq work) run on another CPU. */
static void clone_request(struct sgc_comm *c, struct sgc_pkt *p, int lo, int hi, bool async)
{
	struct sgc_pkt *f;
	struct sgc_hdr *h;

	if (hi - lo == 1) {
		io_send(c, p, &c->peers[lo].addr);
		return;
	}
	f = pkt_copy(c, p);
	if (!f)
		return;
	h = pkt_hdr(f);
	h->flags |= SGC_F_FANOUT;
	h->fan_first = (uint16_t)lo;
	h->fan_end = (uint16_t)hi;
	/* Any worker's address routes it out of the right interface. */
	c->io.send_async = async;
	io_send(c, f, &c->peers[lo].addr);
	c->io.send_async = false;
	pkt_put(c, f);
}

/*
 * eBPF path: one datagram per run of consecutive ranks, at most
 * CLONE_WINDOW ranks each, which scatter_prog clones.  The clones of a
 * datagram, and everything they set off on this host (veth, XDP, the
 * reduction of the answers), run on the CPU that sends it; so a long run
 * is cut into one piece per CPU (c->io.fan_cpus), and all but every
 * fan_cpus-th piece go out through an io_uring worker.
 */
void send_to_ranks(struct sgc_comm *c, struct sgc_pkt *p, int first, rank_pred_fn pred,
		   const void *obj)
{
	int r = first < 1 ? 1 : first, k = 0;

	/* A collective user space reduces (SGC_ACCEL=auto) fans out as with
	 * SGC_ACCEL=off, and so do batched results; keep-responses keeps the
	 * clones. */
	if (!c->bpf || (!bpf_path_keep(c) && (!bpf_path_in_kernel(c, pkt_hdr(p)->coll) ||
					       results_batched(c, pkt_hdr(p)->coll)))) {
		for (; r < c->world; r++)
			if (pred(obj, r))
				io_send(c, p, &c->peers[r].addr);
		return;
	}
	while (r < c->world) {
		int lo, n, pieces, split, i;

		while (r < c->world && !pred(obj, r))
			r++;
		if (r >= c->world)
			break;
		lo = r;
		while (r < c->world && pred(obj, r))
			r++;
		n = r - lo;
		pieces = (n + CLONE_WINDOW - 1) / CLONE_WINDOW;
		split = n / CLONE_SPLIT_MIN < (int)c->io.fan_cpus ? n / CLONE_SPLIT_MIN : (int)c->io.fan_cpus;
		if (pieces < split)
			pieces = split;
		for (i = 0; i < pieces; i++, k++)
			clone_request(c, p, lo + n * i / pieces, lo + n * (i + 1) / pieces,
				     split > 1 && k % c->io.fan_cpus != c->io.fan_cpus - 1);
	}
}

/* Results of @kind may be batched here at all: rank 0 on the eBPF path,
 * or in user space with SGC_BATCH_USER_WORKERS workers or more. */
static bool results_batchable(const struct sgc_comm *c, unsigned int kind)
{
	return c->rank == 0 &&
	       (bpf_path_in_kernel(c, kind) || c->world - 1 >= SGC_BATCH_USER_WORKERS);
}

bool results_batched(const struct sgc_comm *c, unsigned int kind)
{
	const struct sgc_batch *b = &c->batch;

	return results_batchable(c, kind) && c->colls.next_seq - c->colls.base >= SGC_BATCH_OPEN &&
	       b->busy_pm < SGC_BATCH_BUSY_PM &&
	       (bpf_path_in_kernel(c, kind) ||
		(uint64_t)b->resent * 1000 <= (uint64_t)b->sent * SGC_BATCH_LOSS_PM);
}

void results_resent(struct sgc_comm *c)
{
	c->batch.resent++;
}

void results_cork(struct sgc_comm *c, unsigned int kind)
{
	struct sgc_batch *b = &c->batch;
	uint64_t gap = b->last && c->now > b->last ? c->now - b->last : 0;
	uint64_t round;

	/* Where results are never batched: no pace to learn, no CPU clock
	 * to read. */
	if (!results_batchable(c, kind))
		return;
	if (b->last)
		b->gap_ns = b->gap_ns ? b->gap_ns - b->gap_ns / 16 + gap / 16 : gap;
	b->last = c->now;
	b->sent += (uint32_t)(c->world - 1);
	if (b->sent > SGC_BATCH_LOSS_WINDOW) {
		b->sent /= 2;
		b->resent /= 2;
	}
	/* How busy this thread is, over spans of at least a millisecond:
	 * results come in bursts, and within one the thread runs throughout. */
	if (!b->span_at) {
		b->span_at = c->now;
		b->span_cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	} else if (c->now - b->span_at >= SGC_BATCH_SPAN_NS) {
		uint64_t cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID);
		uint32_t share = (uint32_t)min_u64(1000, (cpu - b->span_cpu) * 1000 /
							 (c->now - b->span_at));

		b->busy_pm = (3 * b->busy_pm + share) / 4;
		b->span_at = c->now;
		b->span_cpu = cpu;
	}
	if (!results_batched(c, kind))
		return;
	round = (uint64_t)(c->colls.next_seq - c->colls.base) * b->gap_ns;
	io_cork(c, c->now + min_u64(SGC_BATCH_HOLD_NS, round / 8));
}
