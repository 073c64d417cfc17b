/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The coordinator's side of a collective: coord.c (contributions, PULLs,
 * NACKs, loss checks, retirement), coord_mismatch.c (calls that differ
 * from rank 0's), coord_complete.c (a complete chunk goes out) and
 * coord_kernel.c (the eBPF path's reduction).
 */
#ifndef SGC_COORD_H
#define SGC_COORD_H

#include "coll.h"

/* coord.c */
/* Fill @t with the coordinator's receive handlers. */
SGC_HIDDEN void coord_rx_table(struct sgc_rx_table *t);
/* This rank posted @co: add its contribution and start asking. */
SGC_HIDDEN void coord_start(struct sgc_comm *c, struct sgc_coll *co);
/* Deadline and loss check of @co at @now. */
/* How long a quiet collective waits before its PULL. */
SGC_HIDDEN uint64_t coord_rto(const struct sgc_comm *c, const struct sgc_coll *co);
SGC_HIDDEN void coord_timer(struct sgc_comm *c, struct sgc_coll *co, uint64_t now);
/* Ask for more of @co's chunks within the PULL budget. */
SGC_HIDDEN void coord_pull(struct sgc_comm *c, struct sgc_coll *co);
/* Free the collectives every worker has the result of. */
SGC_HIDDEN void coord_retire(struct sgc_comm *c);

/* coord_mismatch.c */
/* Hold rank @h->rank's call, as its datagram announces it, against rank
 * 0's (a broadcast's counts the rank as present); false when it differs. */
SGC_HIDDEN bool coord_check_call(struct sgc_comm *c, struct sgc_coll *co, const struct sgc_hdr *h);
/* Rank @r called broadcast @co as rank 0 did (or, before rank 0's call,
 * as the rank whose datagram made co's state): once all did, it may end. */
SGC_HIDDEN void coord_present(struct sgc_comm *c, struct sgc_coll *co, int r);
/* Rank @r called @co with @args, which differ from rank 0's (or, before
 * rank 0 called, from those that made co's state): noted in co->odd (the
 * first only), and @co fails if this rank has posted it. */
SGC_HIDDEN void coord_mismatch(struct sgc_comm *c, struct sgc_coll *co, int r,
			       const struct coll_args *args);
/* Posted @co fails with the mismatch co->odd notes, against rank 0's call. */
SGC_HIDDEN void coord_fail_mismatch(struct sgc_comm *c, struct sgc_coll *co);
/* The kernel refused a contribution to chunk @ch of @co whose arguments
 * agree with co's: the ranks its slot holds called it otherwise.  Returns
 * whether the slot showed that (co->odd noted, co failed if posted); else
 * the datagram counts as rejected. */
SGC_HIDDEN bool coord_kernel_refused(struct sgc_comm *c, struct sgc_coll *co, uint32_t ch);
/* Before the timeout: a chunk in the kernel that cannot complete because
 * its slot holds contributions of other arguments is a mismatch, not
 * silence.  Returns whether one was found. */
SGC_HIDDEN bool kernel_check_slots(struct sgc_comm *c, struct sgc_coll *co);

/* coord_complete.c */
/* Chunk @ch of @co is complete; co->res[ch] holds the result (reduced
 * here, or by the kernel).  @kernel_sent: notify_prog already sent it to
 * the first SGC_BPF_FANOUT_MAX receivers, or up to the one in the
 * header's fan_first. */
SGC_HIDDEN void coord_chunk_complete(struct sgc_comm *c, struct sgc_coll *co, uint32_t ch,
				     bool kernel_sent);
/* Every chunk of @co is complete: finish it, once every rank of a
 * broadcast has said it called it alike, and tell the workers that get
 * no data (and a broadcast's receivers) that it is over. */
SGC_HIDDEN void coord_finish(struct sgc_comm *c, struct sgc_coll *co);
/* Collectives of at most this many chunks count in the result loss
 * (struct sgc_rloss) and get its extra copies. */
#define RLOSS_MAX_CHUNKS	4
/* ... and only with at most this many collectives open at rank 0. */
#define RLOSS_MAX_OPEN		4
/* A worker asked for @n datagrams of @co's result again. */
SGC_HIDDEN void coord_rloss_lost(struct sgc_comm *c, const struct sgc_coll *co, uint32_t n);

/* coord_kernel.c */
/* Hand rank 0's chunks to the kernel, up to the slots it has. */
SGC_HIDDEN void kernel_inject_own(struct sgc_comm *c, struct sgc_coll *co);
/* Copy the kernel's view of who contributed into co->seen; returns how
 * many contributions were new. */
SGC_HIDDEN int kernel_refresh_seen(struct sgc_comm *c, struct sgc_coll *co);
/* eBPF path: start the kernel's window of collectives at the oldest one
 * still open (coord_retire(), and whenever one finishes). */
SGC_HIDDEN void coord_kernel_window(struct sgc_comm *c);
/* eBPF path: @co's timer looks at the kernel's slots every
 * kernel_refresh_gap(): while PULLs are out (their budget comes back
 * there), and for the whole of a collective of several chunks (a lost
 * push or PULL shows there, kernel_pull_lost()). */
static inline bool kernel_refreshes(const struct sgc_comm *c, const struct sgc_coll *co)
{
	return kernel_reduces_kind(c, co->kind) && (co->pull.out || co->nchunks > 1);
}
/* A result the kernel reduced (ring buffer or socket delivery). */
SGC_HIDDEN void coord_kernel_result(struct sgc_comm *c, const struct sgc_hdr *h,
				    const void *body, const __u64 *seen);

#endif /* SGC_COORD_H */
