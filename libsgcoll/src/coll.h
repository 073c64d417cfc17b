/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A collective and its life cycle (coll.c).
 *
 * Every collective is one "coll": a vector in chunks, a set of
 * contributors and a set of receivers.  Workers send their chunks to the
 * coordinator (the first push_credit chunks unasked, the rest when
 * PULLed, so bursts stay bounded), the coordinator reduces them and sends
 * each finished chunk to the receivers.  Results stay retained at the
 * coordinator until every worker's watermark says it has them, so any
 * lost datagram can be asked for again (NACK).
 */
#ifndef SGC_COLL_H
#define SGC_COLL_H

#include "comm.h"

/* A worker sends an ACK when its watermark moved this far unreported. */
#define SGC_ACK_EVERY		32

/* The arguments every rank must pass alike to a collective. */
struct coll_args {
	uint64_t count;		/* elements, COLL_COUNT_UNKNOWN if not known */
	uint32_t nchunks;	/* datagrams the count takes; 0: not known */
	uint8_t kind;		/* enum sgc_coll_kind */
	uint8_t dtype;		/* enum sgc_dtype */
	uint8_t op;		/* enum sgc_op */
	int root;
};

#define COLL_COUNT_UNKNOWN	UINT64_MAX

/* Which arguments differ (coll_args_diff()). */
enum {
	COLL_ARG_KIND = 1 << 0,
	COLL_ARG_COUNT = 1 << 1,
	COLL_ARG_DTYPE = 1 << 2,
	COLL_ARG_OP = 1 << 3,
	COLL_ARG_ROOT = 1 << 4,
};

/* One rank's call as the coordinator learnt it; rank -1: none. */
struct coll_call {
	int rank;
	struct coll_args args;
};

enum coll_state {
	COLL_OPEN,	/* in progress */
	COLL_DONE,	/* finished here; coordinator keeps results */
	COLL_FAILED,	/* timed out or aborted */
};

struct sgc_coll {
	uint32_t seq;
	uint8_t kind;		/* enum sgc_coll_kind */
	uint8_t dtype, op;
	uint8_t state;
	bool posted;		/* this rank has called it */
	bool contributes;	/* this rank sends data */
	bool receives;		/* this rank gets the data (else DONE) */
	int root;
	int status;		/* result once DONE/FAILED */
	size_t count;		/* elements */
	size_t elsz;
	uint32_t nchunks;
	uint32_t chunk_elems;	/* elements per full chunk */
	const uint8_t *sendbuf;
	uint8_t *recvbuf;
	struct sgc_retx rt;	/* deadline and loss checks */
	uint64_t last_nack;	/* worker: when we last asked for results */
	uint32_t nack_last;	/* worker: the last chunk that NACK asked for */
	uint32_t ahead;		/* this rank's requests open when it was posted */
	uint64_t t_post;	/* when this rank called it */
	bool rx_resent;		/* worker: a result datagram came as a resend */
	bool lag_resent;	/* coordinator: an older result went with a PULL */
	uint64_t retx_at_post;	/* coordinator: st.retransmits when posted */
	struct sgc_request *req;
	uint32_t nchunks_done;	/* coordinator: complete chunks;
				 * worker: result chunks received */

	char msg[400];		/* why it failed */

	/* coordinator */
	int ncontrib;		/* contributors per chunk, coordinator included */
	struct sgc_pkt **res;	/* per chunk: accumulator, then result datagram */
	uint16_t *nseen;	/* per chunk: contributions reduced */
	uint8_t *seen;		/* seen map: [chunk][rank] (util.h) */
	struct sgc_pull pull;
	uint32_t kernel_low;	/* eBPF: lowest chunk not complete */
	uint32_t kernel_injected; /* eBPF: own chunks handed to the kernel */
	uint64_t kernel_read_at; /* eBPF: last copy of its slots (kernel_refresh_seen()) */
	/* Before this rank's call: whose datagram made this state, with
	 * what arguments (co->kind... hold them too; this adds the count and
	 * the rank).  Rank 0's call is the reference the others are held to. */
	struct coll_call first;
	/* The first call found to differ from rank 0's (or, before rank 0
	 * called, from `first`): what a mismatch names. */
	struct coll_call odd;
	uint8_t *present;	/* broadcast: ranks whose call matched, bitmap */
	int npresent;
	int done_first;		/* the first worker the DONE goes to (notify_prog
				 * told those below that a barrier is over) */

	/* worker */
	bool told;		/* this rank's arguments went to the coordinator
				 * after the coordinator's differed (co->msg) */
	bool agreed;		/* broadcast: the coordinator's DONE came, which
				 * says every rank called it alike */
	uint8_t *got;		/* result chunks received, bitmap */
	uint8_t *stage;		/* results that came before the call */
	uint8_t *pulled;	/* chunks asked for before the call, bitmap */
};

static inline bool is_contributor(const struct sgc_coll *co, int r)
{
	return co->kind == SGC_COLL_BCAST ? r == co->root : true;
}

static inline bool is_data_receiver(const struct sgc_coll *co, int r)
{
	switch (co->kind) {
	case SGC_COLL_ALLREDUCE: return true;
	case SGC_COLL_REDUCE: return r == co->root;
	case SGC_COLL_BCAST: return r != co->root;
	default: return false;
	}
}

/* Byte offset and element count of chunk @ch. */
static inline size_t chunk_off(const struct sgc_coll *co, uint32_t ch)
{
	return (size_t)ch * co->chunk_elems * co->elsz;
}

static inline size_t chunk_n(const struct sgc_coll *co, uint32_t ch)
{
	if (!co->count)
		return 0;
	return ch + 1 < co->nchunks ? co->chunk_elems
				    : co->count - (size_t)ch * co->chunk_elems;
}

static inline struct sgc_coll **slot_ref(struct sgc_comm *c, uint32_t seq)
{
	return &c->colls.slots[seq % SGC_RING];
}

static inline struct sgc_coll *slot_find(struct sgc_comm *c, uint32_t seq)
{
	struct sgc_coll *co = *slot_ref(c, seq);

	return co && co->seq == seq ? co : NULL;
}

static inline bool in_window(const struct sgc_comm *c, uint32_t seq)
{
	return seq - c->colls.base < SGC_RING;
}

/* The oldest collective still open, of those this rank called if @called;
 * NULL if none. */
static inline struct sgc_coll *coll_oldest_open(struct sgc_comm *c, bool called)
{
	uint32_t s;

	for (s = c->colls.base; s != c->colls.next_seq; s++) {
		struct sgc_coll *co = slot_find(c, s);

		if (co && co->state == COLL_OPEN && (co->posted || !called))
			return co;
	}
	return NULL;
}

/* "allreduce", "broadcast", ... for messages. */
SGC_HIDDEN const char *coll_kind_name(int kind);
/* @co's arguments as this rank called it, or as the datagram that made
 * its state announced them. */
SGC_HIDDEN void coll_args_of(const struct sgc_coll *co, struct coll_args *a);
/* The arguments a datagram about a collective carries; the count only
 * from a worker's (hdr.total). */
SGC_HIDDEN void coll_args_from_hdr(const struct sgc_comm *c, const struct sgc_hdr *h,
				   struct coll_args *a);
/* COLL_ARG_* of the arguments that differ; 0 when they agree. */
SGC_HIDDEN unsigned coll_args_diff(const struct coll_args *a, const struct coll_args *b);
/* "collective #7: the count differs: rank 3 called allreduce with count
 * 101, rank 0 with count 100; every rank must ..." (@odd_rank's call
 * against @ref_rank's); @self is marked as "this rank". */
SGC_HIDDEN void coll_mismatch_text(char *buf, size_t len, uint32_t seq, int odd_rank,
				   const struct coll_args *odd, int ref_rank,
				   const struct coll_args *ref, int self);
/* A new collective in its slot; NULL if the slot is taken or no memory. */
SGC_HIDDEN struct sgc_coll *coll_new(struct sgc_comm *c, uint32_t seq, int kind, int dtype,
				     int op, int root, uint32_t nchunks);
/* The same for one a datagram announced before this rank called it. */
SGC_HIDDEN struct sgc_coll *coll_from_wire(struct sgc_comm *c, const struct sgc_hdr *h);
SGC_HIDDEN void coll_free(struct sgc_comm *c, struct sgc_coll *co);
/* The header of a @type message about @co from or to @rank. */
SGC_HIDDEN void coll_hdr(struct sgc_comm *c, struct sgc_hdr *h, uint8_t type,
			 const struct sgc_coll *co, int rank);
SGC_HIDDEN void coll_send_abort(struct sgc_comm *c, const struct sgc_coll *co, int r, int err);
/*
 * Requests.  A posted request is outstanding until req_complete(); the
 * engine fails it at its deadline even if its collective is no longer in
 * the timers' window (req_timers()), so no call waits past its timeout.
 */
/* @req waits for @co, which this rank just posted as a @kind, until @deadline. */
SGC_HIDDEN void req_track(struct sgc_comm *c, struct sgc_request *req, struct sgc_coll *co,
			  uint8_t kind, uint64_t deadline);
/* The same for a collective kept elsewhere (mesh.c): the list and the
 * deadline only. */
SGC_HIDDEN void req_link(struct sgc_comm *c, struct sgc_request *req, uint32_t seq, uint8_t kind,
			 uint64_t deadline);
/* @req is over with @status (@msg says why when it failed). */
SGC_HIDDEN void req_complete(struct sgc_comm *c, struct sgc_request *req, int status,
			     const char *msg);
/* The caller holds @req, a non-blocking call's, until req_live_drop(). */
SGC_HIDDEN void req_live_add(struct sgc_comm *c, struct sgc_request *req);
/* @req is freed: off its communicator's list. */
SGC_HIDDEN void req_live_drop(struct sgc_request *req);
/* Fail the requests whose deadline has come; returns the earliest one left. */
SGC_HIDDEN uint64_t req_timers(struct sgc_comm *c, uint64_t now);
/* Finish @co here with @status; wakes the request waiting on it. */
SGC_HIDDEN void coll_finish(struct sgc_comm *c, struct sgc_coll *co, int status);
/* Fail @co with @err and a message; the coordinator tells the workers. */
SGC_HIDDEN void coll_fail(struct sgc_comm *c, struct sgc_coll *co, int err, const char *fmt, ...)
	SGC_PRINTF(4, 5);
/* The same with the message already in co->msg (a mismatch noted when
 * the first datagram showed it). */
SGC_HIDDEN void coll_fail_noted(struct sgc_comm *c, struct sgc_coll *co, int err);
/* Coordinator, posted @co: tell every worker it failed with @err. */
SGC_HIDDEN void coll_abort_workers(struct sgc_comm *c, const struct sgc_coll *co, int err);
/* Fail every outstanding collective with @err (finalize, job abort). */
SGC_HIDDEN void coll_cancel_all(struct sgc_comm *c, int err, const char *why);
/* Free every collective; a request still waiting gets -ECANCELED. */
SGC_HIDDEN void coll_free_all(struct sgc_comm *c);

#endif /* SGC_COLL_H */
