/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Sharded collectives (mesh.c): every rank talks to every other rank.
 *
 * A vector is cut into one shard per rank.  In the reduce phase (0) every
 * rank sends each shard to its owner, which reduces what comes into its
 * own shard; in the gather phase (1) every owner sends its shard to every
 * rank.  reduce_scatter is phase 0 alone, allgather phase 1 alone, the
 * sharded allreduce both: it moves about 2N bytes per rank each way where
 * the star moves (world - 1) N through rank 0.
 *
 * What goes from one rank to another in one phase is a stream of chunks,
 * each numbered from 0 (an empty shard is one empty chunk, so that every
 * pair of ranks hears from each other and a mismatch is seen by all).
 * The receiver acknowledges what came (SHARD_ACK: chunks in a row, plus a
 * bitmap of the 64 after, and the receiver's window); the sender keeps at
 * most that window of unacknowledged chunks out (the receive room the
 * receiver shares among its peers; before it has said, the room as the
 * star's PULL budget counts it), and sends again what stays
 * unacknowledged for a retransmission delay.  A rank's call is done when its own data is in and
 * every stream it sent is acknowledged, so nothing it holds is asked for
 * again; a late duplicate of a finished collective is answered with an
 * acknowledgement of everything.
 */
#ifndef SGC_MESH_H
#define SGC_MESH_H

#include "retx.h"
#include "sgc_internal.h"

struct sgc_comm;
struct sgc_request;
struct sgc_rx_table;
struct mesh_coll;

/* Sharded collectives tracked at once. */
#define SGC_MESH_RING		(2 * SGC_MAX_INFLIGHT)

struct sgc_mesh {
	uint32_t next_seq;		/* the next one this rank posts */
	bool used;			/* one ran: finalize waits for every rank */
	unsigned win;			/* mesh_window(), once found */
	unsigned rx_win;		/* mesh_rx_window(), once found */
	uint16_t *peer_win;		/* [world]: each peer's advertised window, 0 = not yet */
	struct sgc_rtt rtt;		/* chunk to acknowledgement, streams never resent (srtt, rttvar) */
	struct mesh_coll *slots[SGC_MESH_RING];
};

/* Post this rank's part of sharded collective @kind (SGC_COLL_ALLREDUCE,
 * SGC_COLL_RSCATTER or SGC_COLL_ALLGATHER); @req learns the outcome. */
SGC_HIDDEN int mesh_post(struct sgc_comm *c, uint8_t kind, const void *sendbuf, void *recvbuf,
			 size_t count, enum sgc_dtype dt, enum sgc_op op, struct sgc_request *req);
/* Loss checks and deadlines; returns the earliest next timer. */
SGC_HIDDEN uint64_t mesh_timers(struct sgc_comm *c, uint64_t now);
/* Fail every open sharded collective with @err (job abort). */
SGC_HIDDEN void mesh_cancel_all(struct sgc_comm *c, int err, const char *why);
SGC_HIDDEN void mesh_free_all(struct sgc_comm *c);
/* Register the SHARD and SHARD_ACK handlers (any role). */
SGC_HIDDEN void mesh_rx_table(struct sgc_rx_table *t);
/* Shard @o of @world of a vector of @count elements cut on chunk
 * boundaries of @ce elements: elements [*lo, *lo + *n).  The sharded
 * allreduce's cut, in mesh.c and kshard.c alike. */
SGC_HIDDEN void mesh_shard_of(size_t count, size_t ce, int world, int o, size_t *lo, size_t *n);
/* The algorithm an allreduce of @count elements of @dt takes here. */
SGC_HIDDEN bool mesh_allreduce_wanted(const struct sgc_comm *c, size_t count, enum sgc_dtype dt,
				      enum sgc_op op);

#endif /* SGC_MESH_H */
