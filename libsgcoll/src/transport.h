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
 * one send per rank (user-space path). */
SGC_HIDDEN void send_to_ranks(struct sgc_comm *c, struct sgc_pkt *p, int first,
			      rank_pred_fn pred, const void *obj);

#endif /* SGC_TRANSPORT_H */
