// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Coordinator with the eBPF path: rank 0's own chunks go to the kernel's
 * slots, the kernel's view of who contributed comes back to the seen map,
 * and results the kernel reduced are installed and sent on.
 */
#include <string.h>

#include "coll.h"
#include "coord.h"
#include "pull.h"
#include "sg.h"
#include "sgc_common.h"

/* eBPF path: hand rank 0's chunks to the kernel, at most 32 ahead of the
 * lowest incomplete chunk (the slots of one collective). */
void kernel_inject_own(struct sgc_comm *c, struct sgc_coll *co)
{
	/*
	 * Results the kernel finished and queued first go first.  A chunk our
	 * own part completes is done in this call, while one a worker's part
	 * completed waits in the ring buffer until the next wait: a rank 0
	 * that posts many collectives in a row (its oldest already done)
	 * finished up to 60 later ones first, at 33 ranks with 64 in flight
	 * 4.6% of them, and workers that see a later collective done first
	 * NACK the earlier one.
	 */
	io_watch_drain(c);
	/* Completions inside the loop move kernel_low, so the limit moves too. */
	while (co->state == COLL_OPEN && co->kernel_injected < co->nchunks &&
	       co->kernel_injected < co->kernel_low + SGC_BPF_CHUNK_SLOTS) {
		uint32_t ch = co->kernel_injected++;
		struct sgc_pkt *res = NULL;
		struct sgc_hdr h;
		int rc;

		coll_hdr(c, &h, SGC_MSG_CONTRIB, co, 0);
		h.chunk = ch;
		h.count = (uint16_t)chunk_n(co, ch);
		rc = bpf_path_contribute(c, &h, co->sendbuf + chunk_off(co, ch), &res);
		if (rc < 0) {
			coll_fail(c, co, rc, "collective #%u: %s", co->seq, sgc_last_error());
			return;
		}
		if (rc == 2) {
			/* Refused: workers called it otherwise.  The slot says
			 * who; if it cannot, the timer's check of the slots or
			 * the refused workers' datagrams will. */
			coord_kernel_refused(c, co, ch);
			continue;
		}
		if (rc == 1 && !co->res[ch]) {
			co->res[ch] = res;
			co->nseen[ch] = (uint16_t)co->ncontrib;
			coord_chunk_complete(c, co, ch, false);
		} else {
			pkt_put(c, res);
		}
	}
}

/*
 * eBPF path, fast retransmit as pull_got() does it on the user-space
 * path: a worker sends its chunks in order, so a chunk the kernel has
 * from rank r means r's missing chunks below it were lost.  Each gap is
 * asked for once (pull.gap); the quiet timer asks again.  Without this a
 * lost contribution to a long collective waited out the multi-chunk
 * delay (rto_bulk(), 13 ms for 64 KiB at 17 ranks) while every other
 * chunk was done.
 */
#define KERNEL_STALL_FLOORS	8

static void kernel_pull_lost(struct sgc_comm *c, struct sgc_coll *co, uint32_t lim, int fresh)
{
	uint64_t wait = max_u64(KERNEL_STALL_FLOORS * c->rtt.rto_ns, 2 * c->rtt.srtt_ns);
	struct sgc_hdr t;
	uint32_t ch;
	int r;

	coll_hdr(c, &t, SGC_MSG_PULL, co, 0);
	for (r = 1; r < c->world; r++) {
		if (!is_contributor(co, r))
			continue;
		/* The highest chunk the kernel has from r, if new ones came. */
		for (ch = fresh ? lim : 0; ch > co->pull.gap[r] + 1; ch--)
			if (seen_test(co->seen, c->world, ch - 1, r))
				break;
		if (ch > co->pull.gap[r] + 1 && pull_gaps(c, &co->pull, &t, co->seen, r, ch - 1))
			co->rt.resent = true;
		if (pull_stalled(c, &co->pull, &t, co->seen, r, co->kernel_low, wait))
			co->rt.resent = true;
	}
}

/*
 * eBPF path: copy the kernel's view of who contributed into co->seen for
 * the chunks in flight, so re-PULLs ask exactly the missing ranks.  The
 * kernel reduces what was PULLed without telling us, so each newly seen
 * contribution also gives back its PULL budget.  Returns how many were
 * new: progress, not loss.
 */
int kernel_refresh_seen(struct sgc_comm *c, struct sgc_coll *co)
{
	uint32_t ch, lim = co->kernel_low + SGC_BPF_CHUNK_SLOTS;
	const struct sgc_bpf_slot *slot;
	uint64_t t0, took;
	int r, fresh = 0;

	if (!kernel_reduces_kind(c, co->kind))
		return 0;
	t0 = now_ns();
	co->kernel_read_at = c->now;
	if (lim > co->nchunks)
		lim = co->nchunks;
	/* From the top down: a contribution the kernel takes while we read
	 * is then seen in a lower chunk rather than missed below a higher
	 * one, which kernel_pull_gaps() would take for a loss. */
	for (ch = lim; ch-- > co->kernel_low;) {
		if (co->res[ch] && co->nseen[ch] == co->ncontrib)
			continue;
		slot = bpf_path_slot(c, co->kind, co->seq, ch);
		if (!slot)
			continue;
		for (r = 0; r < c->world; r++) {
			if (!rank_mask_test(slot->seen, r) || seen_test(co->seen, c->world, ch, r))
				continue;
			seen_set(co->seen, c->world, ch, r);
			co->pull.asked[r] = c->now;
			fresh++;
			if (r && ch >= c->pace.push_credit && ch < co->pull.to[r])
				pull_release(c, &co->pull, 1);
		}
	}
	/* What the reads cost: the refresh gap keeps them a small share. */
	took = now_ns() - t0;
	c->kernel_read_ns = c->kernel_read_ns ? c->kernel_read_ns - c->kernel_read_ns / 8 + took / 8
					      : took;
	if (co->nchunks > 1)
		kernel_pull_lost(c, co, lim, fresh);
	return fresh;
}

void coord_kernel_result(struct sgc_comm *c, const struct sgc_hdr *h, const void *body,
			 const __u64 *seen)
{
	struct coll_args theirs, mine;
	struct sgc_coll *co;
	struct sgc_pkt *p;
	size_t len;

	if (h->coll == SGC_COLL_QUERY) {
		sg_kernel_result(c, h, body, seen);
		return;
	}
	if (!in_window(c, h->seq) || h->coll > SGC_COLL_QUERY || !sgc_dtype_valid(h->dtype)) {
		c->st.late++;
		return;
	}
	co = slot_find(c, h->seq);
	coll_args_from_hdr(c, h, &theirs);
	theirs.count = COLL_COUNT_UNKNOWN;	/* hdr.total is not in a result */
	if (!co || !co->posted) {
		/* The kernel completes a chunk only with rank 0's contribution
		 * in it, which comes when we post, except a broadcast from a
		 * worker root: its one contribution is the root's, so it can
		 * finish before our call.  Nothing else is taken unposted. */
		if (h->coll != SGC_COLL_BCAST || h->arg == 0 || h->arg >= c->world) {
			c->st.rejected++;
			return;
		}
		if (!co) {
			co = coll_from_wire(c, h);
			if (!co)
				return;
			/* The root's data, checked when rank 0 calls. */
			co->first.rank = h->arg;
			co->first.args = theirs;
		}
	}
	/* A broadcast's result is its root's contribution alone, which
	 * nothing but its slot held it against: the root's call. */
	coll_args_of(co, &mine);
	if (h->coll == SGC_COLL_BCAST && co->state == COLL_OPEN) {
		if (coll_args_diff(&theirs, &mine)) {
			coord_mismatch(c, co, h->arg, &theirs);
			return;
		}
		coord_present(c, co, h->arg);
	}
	if (co->state != COLL_OPEN || h->chunk >= co->nchunks || h->coll != co->kind ||
	    h->nchunks != co->nchunks || (co->res[h->chunk] && co->nseen[h->chunk] == co->ncontrib)) {
		c->st.late++;
		return;
	}
	len = (size_t)h->count * co->elsz;
	if (len > c->chunk_bytes)
		return;
	p = pkt_alloc(c);
	if (!p)
		return;
	memcpy(p->data, h, SGC_HDR_SIZE);
	if (len)
		memcpy(pkt_body(p), body, len);
	p->len = (uint32_t)(SGC_HDR_SIZE + len);
	pkt_put(c, co->res[h->chunk]);
	co->res[h->chunk] = p;
	co->nseen[h->chunk] = (uint16_t)co->ncontrib;
	retx_heard(&co->rt, c->now);
	if (co->posted && chunk_n(co, h->chunk) != h->count) {
		coll_fail(c, co, -SGC_EMISMATCH,
			  "collective #%u (%s): the workers sent %u elements in chunk %u, rank 0 has %zu: "
			  "every rank must pass the same count", co->seq, coll_kind_name(co->kind), h->count,
			  h->chunk, chunk_n(co, h->chunk));
		return;
	}
	if (co->posted) {
		coord_chunk_complete(c, co, h->chunk, bpf_path_kernel_fanout(c));
		if (co->state == COLL_OPEN && co->contributes)
			kernel_inject_own(c, co);
	}
}

