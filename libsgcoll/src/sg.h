/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Scatter-gather queries (sg.c); the public calls that start and wait
 * for them are in coll_scatter_gather.c.
 */
#ifndef SGC_SG_H
#define SGC_SG_H

#include "comm.h"

/* A scatter-gather query, coordinator or worker side. */
struct sgc_query {
	uint32_t seq;
	uint8_t dtype, op, policy;
	uint16_t flags;
	size_t count, elsz;
	uint32_t nchunks, chunk_elems;
	int want;		/* answers needed */

	/* coordinator */
	uint8_t *result;	/* user's result buffer */
	struct sgc_pkt **acc;	/* per chunk accumulator */
	uint16_t *nseen;
	uint8_t *seen;		/* seen map: [chunk][rank] (util.h) */
	uint8_t *state;		/* per rank: 0 none, 1 answering, 2 declined */
	int naccepted, ndeclined, nfull;
	uint32_t *rank_chunks;	/* per rank: chunks received */
	struct sgc_pull pull;
	struct sgc_pkt *qpkt;	/* the QUERY datagram, resent to the silent */
	size_t query_len;
	struct sgc_retx rt;	/* deadline and loss checks */
	uint64_t t_start;	/* when it was sent: the RTT sample's start */
	bool kernel;		/* eBPF path reduces the answers */
	bool ask;		/* no push credit: sent in rounds, SGC_F_ASK */
	int status;
	bool done;

	/* worker */
	uint8_t *qdata;		/* the query payload */
	size_t qlen;
	bool answered;		/* handler ran */
	bool declined;
	uint8_t *resp;		/* response vector */
	uint8_t *pending_pull;	/* chunks pulled before the handler ran */
};

/* Coordinator: check the arguments, send the query; *out is the query
 * in flight (c->sg.active) until sg_query_end(). */
SGC_HIDDEN int sg_query_start(struct sgc_comm *c, const void *query, size_t qlen, void *result,
			      size_t count, enum sgc_dtype dt, enum sgc_op op, int policy,
			      unsigned wait_n, unsigned timeout_ms, uint16_t flags,
			      struct sgc_query **out);
/* Coordinator: the query is done (or waiting failed with @err): fill
 * @status and the result, free the query; returns the outcome. */
SGC_HIDDEN int sg_query_end(struct sgc_comm *c, struct sgc_query *q, int err,
			    struct sgc_sg_status *status);
/* Coordinator: loss checks and pacing of the active query; returns the
 * earliest next deadline. */
SGC_HIDDEN uint64_t sg_timers(struct sgc_comm *c, uint64_t now);
/* Coordinator: an answer chunk; a result the kernel reduced. */
SGC_HIDDEN void sg_rx_coord(struct sgc_comm *c, const struct sgc_rx *rx);
SGC_HIDDEN void sg_kernel_result(struct sgc_comm *c, const struct sgc_hdr *h, const void *body,
				 const __u64 *seen);
/* Worker: a QUERY or a PULL for one. */
SGC_HIDDEN void sg_rx_worker(struct sgc_comm *c, const struct sgc_rx *rx);
/* Worker: run the handler on the newest query if it has not run. */
SGC_HIDDEN void sg_worker_process(struct sgc_comm *c);
SGC_HIDDEN void sg_free(struct sgc_comm *c);

#endif /* SGC_SG_H */
