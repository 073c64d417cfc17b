/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The transport the collective algorithms talk to (transport.c): send a
 * message to a rank, or one datagram to a set of ranks.  Receiving is the
 * dispatch table's (struct sgc_rx_table), waiting is progress.c's.
 */
#ifndef SGC_TRANSPORT_H
#define SGC_TRANSPORT_H

#include "comm.h"

/* Which ranks a datagram goes to. */
typedef bool (*rank_pred_fn)(const void *obj, int rank);

/* A header-only message to @dst (which must stay valid until the next
 * submit); 0 or -ENOMEM. */
SGC_HIDDEN int send_hdr(struct sgc_comm *c, const struct sgc_hdr *h, const struct sockaddr_in *dst);
/* A header-only message to rank @r (0: the coordinator). */
SGC_HIDDEN void send_to_rank(struct sgc_comm *c, const struct sgc_hdr *h, int r);
/* Coordinator: a copy of @p to the ranks from @first on where @pred
 * holds, as SGC_F_FANOUT requests that scatter_prog clones (eBPF path) or
 * one send per rank (user-space path, and batched results). */
SGC_HIDDEN void send_to_ranks(struct sgc_comm *c, struct sgc_pkt *p, int first,
			      rank_pred_fn pred, const void *obj);

/*
 * Batched results.  On the eBPF path the kernel completes a
 * collective the moment its last contribution comes, so results leave
 * one at a time and every worker wakes for each; with 33 ranks on one
 * worker host that was 18 context switches per collective against 1.3 on
 * the user-space path, whose coordinator, slower, sends what it finished
 * in one go.  So with SGC_BATCH_OPEN or more collectives open at rank 0
 * (not yet retired: the workers may be ahead of rank 0's calls), a result
 * of a collective the kernel reduces waits a little (io_cork()) and the
 * results go together, one GSO send per worker, not as clones (clones
 * cannot share a send).  The wait: an eighth of the time the open
 * collectives take to go round (how many are open times the smoothed gap
 * between results), at most SGC_BATCH_HOLD_NS.  The user-space path
 * batches too, from SGC_BATCH_USER_WORKERS workers up: its coordinator
 * sends what it finished in one go, which with 64 in flight is batch
 * enough (level at 33 and 65 ranks), but with 16 in flight it is not
 * (17 ranks 11,770 -> 19,353 collectives/s, 33 ranks 5,628 -> 9,419);
 * with 8 workers a batch saves few wake-ups and the wait costs 9%
 * (bench/results/userbatch-2026-12-06).
 * Measured at 9 and 33 ranks on one worker host:
 * bench/results/batch-2026-12-06; the hold went from 50 to 100 us in
 * bench/results/hold-2026-12-06 (larger batches, fewer wake-ups: 33 ranks,
 * 64 in flight, 7% more collectives/s; level at 9 ranks and when rank 0
 * is what limits).
 */
#ifndef SGC_BATCH_OPEN
#define SGC_BATCH_OPEN		16
#endif
#ifndef SGC_BATCH_HOLD_NS
#define SGC_BATCH_HOLD_NS	100000ULL
#endif
#ifndef SGC_BATCH_USER_WORKERS
#define SGC_BATCH_USER_WORKERS	16
#endif
/*
 * ... and, on the user-space path, only while few results need sending
 * again (per mille of the result datagrams, over the last
 * SGC_BATCH_LOSS_WINDOW or so): under loss a held result is one more wait
 * for the worker that asks for it again.  At 17 ranks, 16 in flight, 1%
 * datagram loss, 1.0-1.1% of the result datagrams were sent again, and
 * batching through the loss had 0.81x the collectives/s of this rule
 * (bench/results/batchloss-2026-12-06); without loss 0.04-0.25%, in
 * bursts, so the window is long.  Not on the eBPF path: with the rule
 * there, at 33 ranks with 64 in flight and no loss, one run in five fell
 * to 4,500 collectives/s with every result cloned, against 10,000-11,000
 * (why it never batched again was not found: rank 0's process used 29%
 * of a CPU, and the run's resends were under 5 per mille).
 */
#ifndef SGC_BATCH_LOSS_PM
#define SGC_BATCH_LOSS_PM	5
#endif
#define SGC_BATCH_LOSS_WINDOW	1000000
/* ... and only while rank 0's thread runs less than half the time
 * (per mille, over spans of SGC_BATCH_SPAN_NS, smoothed): a coordinator
 * that is what limits (workers that answer at once, on CPUs of their own)
 * does better with the clones, which cost it one send a result, than with
 * one send per worker a batch. */
#ifndef SGC_BATCH_BUSY_PM
#define SGC_BATCH_BUSY_PM	600
#endif
#define SGC_BATCH_SPAN_NS	1000000ULL
/* Are results of collective kind @kind batched now? */
SGC_HIDDEN bool results_batched(const struct sgc_comm *c, unsigned int kind);
/* Coordinator, before it sends a result of @kind: learn the pace, and
 * cork the sends when such results are batched. */
SGC_HIDDEN void results_cork(struct sgc_comm *c, unsigned int kind);
/* Coordinator: a result datagram went to a worker again. */
SGC_HIDDEN void results_resent(struct sgc_comm *c);

#endif /* SGC_TRANSPORT_H */
