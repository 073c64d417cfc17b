/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The communicator, its I/O and the collective engine.
 *
 * Every collective is one "coll": a vector in chunks, a set of
 * contributors and a set of receivers (see coll_plan()).  Workers send
 * their chunks to the coordinator (the first push_credit chunks unasked,
 * the rest when PULLed, so bursts stay bounded), the coordinator reduces
 * them and sends each finished chunk to the receivers.  Results stay
 * retained at the coordinator until every worker's watermark says it has
 * them, so any lost datagram can be asked for again (NACK).
 */
#ifndef SGC_ENGINE_H
#define SGC_ENGINE_H

#include <liburing.h>

#include "sgc_internal.h"

/* Collectives tracked at once: ring of slots indexed by seq % SGC_RING. */
#define SGC_RING		(2 * SGC_MAX_INFLIGHT)
/* Query (scatter-gather) slots, own sequence space. */
#define SGC_QRING		64
/* Chunks the workers may have in flight towards the coordinator, summed
 * over workers and collectives (c->pull_budget, see pull_pacing()): the
 * eBPF path's, and the most the user-space path's may be. */
#define SGC_PULL_BUDGET		192
#define SGC_PULL_BUDGET_MAX	768
/* A worker sends an ACK when its watermark moved this far unreported. */
#define SGC_ACK_EVERY		32

/* ---- io.c ---- */

/* UDP GSO and GRO socket options (Linux 4.18, 5.0), for older headers. */
#ifndef SOL_UDP
#define SOL_UDP		17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT	103
#endif
#ifndef UDP_GRO
#define UDP_GRO		104
#endif
/* Datagrams in one UDP GSO send, at most. */
#define GSO_MAX_SEGS	64

/* An outgoing datagram.  Retained result chunks are sent many times. */
/* Sends held per batch so that same-size datagrams to one peer can go as
 * one UDP GSO send (io.c). */
#define SGC_TXQ			256

/* A held send.  @dst points at the caller's address, which outlives the
 * batch (a peer's entry, the coordinator's, a packet's body): an unsent
 * SQE reads it at submission, after this entry may have been reused. */
struct sgc_txq_ent {
	struct sgc_pkt *p;
	const struct sockaddr_in *dst;
};

struct sgc_pkt {
	struct sgc_pkt *next;	/* free list */
	uint32_t len;		/* header + body */
	uint32_t refs;		/* owner + sends not yet completed */
	uint64_t sent_at;	/* coordinator's result chunk: first sent (now_ns) */
	uint64_t data[];	/* struct sgc_hdr then body, 8-aligned */
};

static inline struct sgc_hdr *pkt_hdr(struct sgc_pkt *p)
{
	return (struct sgc_hdr *)p->data;
}

static inline uint8_t *pkt_body(struct sgc_pkt *p)
{
	return (uint8_t *)p->data + SGC_HDR_SIZE;
}

/* A datagram as received, valid until the handler returns. */
struct sgc_rx {
	const struct sgc_hdr *hdr;
	const uint8_t *body;
	uint32_t body_len;
	struct sockaddr_in from;
};

struct sgc_comm;
typedef void (*sgc_rx_fn)(struct sgc_comm *c, const struct sgc_rx *rx);

SGC_HIDDEN int io_open(struct sgc_comm *c);
/* Datagrams the receive side holds: the socket buffer at 4 KiB each, and
 * 3/4 of the per-CPU backlog (net.core.netdev_max_backlog). */
SGC_HIDDEN unsigned long io_rx_room(struct sgc_comm *c);
SGC_HIDDEN void io_close(struct sgc_comm *c);
SGC_HIDDEN struct sgc_pkt *pkt_alloc(struct sgc_comm *c);
/* A new datagram (one reference) with @src's bytes. */
SGC_HIDDEN struct sgc_pkt *pkt_copy(struct sgc_comm *c, const struct sgc_pkt *src);
SGC_HIDDEN void pkt_put(struct sgc_comm *c, struct sgc_pkt *p);
/* Queue @p for @dst (which must stay valid until the next submit). */
SGC_HIDDEN int io_send(struct sgc_comm *c, struct sgc_pkt *p, const struct sockaddr_in *dst);
/* Build and queue a header-only message. */
SGC_HIDDEN int io_send_ctl(struct sgc_comm *c, const struct sgc_hdr *h, const struct sockaddr_in *dst);
/* Submit queued sends, wait up to @wait_ns (0 = don't wait) for events,
 * and handle every completion (received datagrams go to c->rx). */
SGC_HIDDEN int io_poll(struct sgc_comm *c, uint64_t wait_ns);
SGC_HIDDEN int io_poll_flags(struct sgc_comm *c, uint64_t wait_ns, bool enter);
/* Make sgc_fd() readable at @when (monotonic ns). */
SGC_HIDDEN void io_arm_timer(struct sgc_comm *c, uint64_t when);
SGC_HIDDEN uint64_t now_ns(void);

/* ---- pull.c: pacing what workers send ---- */

struct sgc_pull {
	uint32_t *to;		/* per rank: chunks [0, to) asked for (or pushed) */
	uint32_t *gap;		/* per rank: gaps below this were asked again */
	uint32_t out;		/* chunks asked for and not yet in */
	int rr;			/* round-robin start */
	int budget;		/* most in flight (c->pull_inflight) when asking */
};

typedef bool (*pull_elig_fn)(const void *obj, int rank);

/* Allocate per-rank state for @nchunks chunks; 0 or -ENOMEM. */
/* Coordinator: c->pull_budget and c->push_credit for its path. */
SGC_HIDDEN void pull_pacing(struct sgc_comm *c, bool kernel);
SGC_HIDDEN int pull_init(struct sgc_comm *c, struct sgc_pull *ps, uint32_t nchunks, int budget);
SGC_HIDDEN void pull_free(struct sgc_pull *ps);
/* Ask eligible ranks for their next chunks below @limit, within the
 * global budget.  @tmpl carries seq, coll, nchunks, dtype, op, arg. */
SGC_HIDDEN void pull_more(struct sgc_comm *c, struct sgc_pull *ps, const struct sgc_hdr *tmpl,
			  uint32_t limit, pull_elig_fn elig, const void *obj);
/* The same for answers of one chunk on the eBPF path: the next ranks in
 * line are asked for chunk 0 by SGC_F_FANOUT datagrams that scatter_prog
 * clones, a handful of sends for a whole round.  With @ask (a QUERY
 * carrying SGC_F_ASK) that datagram goes instead of a PULL. */
SGC_HIDDEN void pull_more_fanout(struct sgc_comm *c, struct sgc_pull *ps,
				 const struct sgc_hdr *tmpl, pull_elig_fn elig, const void *obj,
				 struct sgc_pkt *ask);
/* After a quiet period: ask again for every chunk below the pull marks
 * that @seen (nchunks x world bits) does not have. */
SGC_HIDDEN void pull_again(struct sgc_comm *c, struct sgc_pull *ps, const struct sgc_hdr *tmpl,
			   const uint8_t *seen, pull_elig_fn elig, const void *obj);
/* Chunk @chunk of rank @r is in (not a duplicate).  Workers answer a
 * PULL in chunk order, so missing chunks below it from the same rank
 * were lost: ask for them again at once (fast retransmit).  Returns
 * true when it asked again. */
SGC_HIDDEN bool pull_got(struct sgc_comm *c, struct sgc_pull *ps, const struct sgc_hdr *tmpl,
			 const uint8_t *seen, int r, uint32_t chunk);
SGC_HIDDEN void pull_reset(struct sgc_comm *c, struct sgc_pull *ps);
/* Up to @n of @ps's outstanding PULLs are answered or will never be: give
 * their share of the budget back. */
SGC_HIDDEN void pull_release(struct sgc_comm *c, struct sgc_pull *ps, uint32_t n);

/* ---- the engine's state ---- */

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
	uint64_t deadline;	/* the call fails after this */
	uint64_t timer;		/* next retransmit check */
	uint64_t last_rx;	/* last datagram for this coll */
	uint64_t last_nack;	/* worker: when we last asked for results */
	uint64_t t_post;	/* when this rank called it */
	bool retx;		/* something was sent again: no RTT sample */
	bool rx_resent;		/* worker: a result datagram came as a resend */
	unsigned backoff;
	struct sgc_request *req;
	uint32_t nchunks_done;	/* coordinator: complete chunks;
				 * worker: result chunks received */

	char msg[400];		/* why it failed */

	/* coordinator */
	int ncontrib;		/* contributors per chunk, coordinator included */
	struct sgc_pkt **res;	/* per chunk: accumulator, then result datagram */
	uint16_t *nseen;	/* per chunk: contributions reduced */
	uint8_t *seen;		/* nchunks x world bits: [chunk][rank] */
	struct sgc_pull pull;
	uint32_t kwin;		/* eBPF: lowest chunk not complete */
	uint64_t refresh_at;	/* eBPF: next look at the kernel slots */
	uint32_t kinj;		/* eBPF: own chunks injected so far */
	bool mismatch;

	/* worker */
	uint8_t *got;		/* result chunks received, bitmap */
	uint8_t *stage;		/* results that came before the call */
	uint8_t *pulled;	/* chunks asked for before the call, bitmap */
};

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
	uint8_t *seen;		/* nchunks x world bits */
	uint8_t *state;		/* per rank: 0 none, 1 answering, 2 declined */
	int naccepted, ndeclined, nfull;
	uint32_t *rank_chunks;	/* per rank: chunks received */
	struct sgc_pull pull;
	struct sgc_pkt *qpkt;	/* the QUERY datagram, resent to the silent */
	size_t query_len;
	uint64_t deadline, timer, last_rx, timer_base;
	uint64_t refresh_at;	/* eBPF: next look at the kernel slot */
	bool retx;		/* sent again: no RTT sample */
	bool kernel;		/* eBPF path reduces the answers */
	bool ask;		/* no push credit: sent in rounds, SGC_F_ASK */
	unsigned backoff;
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

struct sgc_peer {
	struct sockaddr_in addr;
	bool joined;		/* hello seen */
	bool bye;
	uint32_t nonce;
	uint32_t wm;		/* worker's reported watermark */
};

struct sgc_request {
	struct sgc_comm *c;
	struct sgc_coll *coll;	/* NULL once finished */
	bool done;
	bool heap;		/* from sgc_i*(): freed by sgc_test/sgc_wait */
	int status;
	char msg[400];
};

struct sgc_comm {
	struct sgc_cfg cfg;
	int rank, world;
	uint64_t job_id;
	uint32_t chunk_bytes;
	uint16_t push_credit;
	uint64_t timeout_ns;
	uint64_t rto_ns;	/* first retransmit delay (floor) */
	uint64_t srtt_ns;	/* smoothed time a collective takes here */
	uint64_t rto_max_ns;
	bool joined;
	uint64_t now;		/* monotonic ns, refreshed each round */
	uint64_t last_coord_rx;	/* worker: last datagram from the coordinator */
	uint64_t coord_work_rx;	/* worker: last RESULT or PULL from the coordinator */
	uint64_t done_post_max;	/* worker: latest t_post of a completed collective */

	/* io.c */
	int fd;
	struct io_uring ring;
	bool ring_ok;
	struct io_uring_buf_ring *br;
	size_t br_size;
	unsigned br_entries;
	unsigned buf_size;
	uint8_t *bufs;
	bool recv_armed;
	struct msghdr rx_msg;
	uint64_t timer_at;	/* armed io_uring timeout, 0 = none */
	struct __kernel_timespec timer_ts;
	struct sgc_pkt *free_pkts;
	size_t pkt_size;
	unsigned nsq;		/* queued, not yet submitted */
	unsigned sends_inflight; /* sends whose completion is not reaped */
	bool gso;		/* UDP_SEGMENT: coalesce sends to one peer */
	bool gro;		/* UDP_GRO: a peer's burst arrives as one receive */
	uint8_t *rx_bounce;	/* an aligned copy of one unaligned GRO segment */
	uint64_t rx_coalesced;	/* receives that held more than one datagram */
	bool send_async;	/* the next io_send() goes through an io_uring worker */
	unsigned fan_cpus;	/* eBPF fan-out: CPUs to spread the clones over */
	unsigned ntxq;
	struct sgc_txq_ent *txq; /* [SGC_TXQ] sends held until the batch goes */
	sgc_rx_fn rx;

	struct sgc_peer *peers;	/* [world] */
	struct sockaddr_in self;

	/* engine.c */
	uint32_t next_seq;	/* next collective this rank posts */
	uint32_t base;		/* coordinator: oldest unretired; worker: watermark */
	uint32_t acked_wm;	/* worker: last watermark reported */
	struct sgc_coll *slots[SGC_RING];
	int pull_inflight;	/* coordinator: packets asked for, not yet in */
	int pull_budget;	/* coordinator: most packets in flight towards it */
	uint32_t nposted;	/* outstanding requests */

	uint64_t next_timer;	/* earliest engine deadline after a round */

	/* sg.c */
	uint32_t next_qseq;	/* coordinator: next query to send */
	struct sgc_query *qslots[SGC_QRING];
	struct sgc_query *qcur;	/* coordinator: the query in progress */
	struct sgc_query *qpending; /* worker: newest query not yet handled */
	uint32_t qnewest;	/* worker: newest query seen */
	bool qseen;
	uint64_t last_query;	/* worker: last QUERY/PULL from the coordinator */
	bool serving;
	bool stop_seen;
	sgc_handler_fn handler;
	void *handler_arg;
	int handler_err;

	/* rendezvous.c (worker, during sgc_init) */
	void *rdv;

	/* path_bpf.c (coordinator with the eBPF path) */
	struct sgc_bpf *bpf;
	int bpf_err;		/* why the load failed */
	char bpf_why[300];
	bool ring_armed;

	/* finalize */
	bool bye_acked;
	bool dead;		/* the job was aborted; every call fails */
	int dead_err;

	struct sgc_stats st;
};

/* ---- path_bpf.c: the coordinator's eBPF fast path ---- */
struct sgc_bpf;
struct sgc_bpf_slot;
/* Load the programs (before the socket is armed), then attach once the
 * rendezvous knows every rank; 0 = active, else the reason. */
SGC_HIDDEN int bpf_path_load(struct sgc_comm *c);
SGC_HIDDEN int bpf_path_attach(struct sgc_comm *c);
SGC_HIDDEN void bpf_path_close(struct sgc_comm *c);
/* Reduce rank 0's chunk in the kernel (BPF_PROG_RUN of gather_prog).
 * Returns 1 with *result set when it completed the chunk, else 0. */
SGC_HIDDEN int bpf_path_contribute(struct sgc_comm *c, const struct sgc_hdr *h, const void *body,
				   struct sgc_pkt **result);
/* Read the slot of (coll, seq, chunk) into the path's own copy, valid
 * until the next call; NULL if it holds another tag or cannot be read. */
SGC_HIDDEN const struct sgc_bpf_slot *bpf_path_slot(struct sgc_comm *c, uint8_t coll,
						    uint32_t seq, uint32_t chunk);
/* Publish the collective and query windows to the kernel (no syscall). */
SGC_HIDDEN void bpf_path_window(struct sgc_comm *c);
/* Rank @r's watermark from its last contribution the kernel saw (no
 * syscall); 0 before any. */
SGC_HIDDEN uint32_t bpf_path_rank_wm(const struct sgc_comm *c, int r);
/* When the kernel last took a contribution to collective @seq
 * (CLOCK_MONOTONIC ns, no syscall); 0 if none since it entered the window. */
SGC_HIDDEN uint64_t bpf_path_coll_rx(const struct sgc_comm *c, uint32_t seq);
/* Consume ring-buffer results (each goes to coord_kernel_result). */
SGC_HIDDEN int bpf_path_poll(struct sgc_comm *c);
SGC_HIDDEN int bpf_path_ringfd(const struct sgc_comm *c);
SGC_HIDDEN bool bpf_path_kernel_fanout(const struct sgc_comm *c);
SGC_HIDDEN bool bpf_path_keep(const struct sgc_comm *c);
SGC_HIDDEN bool bpf_path_has_custom(const struct sgc_comm *c);
/* engine.c: a result the kernel reduced (@seen: ranks in it, or NULL). */
SGC_HIDDEN void coord_kernel_result(struct sgc_comm *c, const struct sgc_hdr *h, const void *body,
				    const __u64 *seen);
/* sg.c: the same for a scatter-gather query. */
SGC_HIDDEN void sg_kernel_result(struct sgc_comm *c, const struct sgc_hdr *h, const void *body,
				 const __u64 *seen);
/* The kernel reduces contributions (eBPF path on, keep-responses off). */
static inline bool kmode(const struct sgc_comm *c)
{
	return c->bpf && !bpf_path_keep(c);
}
/* Send a copy of @p to ranks where @pred holds, as SGC_F_FANOUT datagrams
 * (eBPF path) or one datagram per rank (user-space path). */
SGC_HIDDEN void fanout(struct sgc_comm *c, struct sgc_pkt *p, int first,
		       bool (*pred)(const void *obj, int rank), const void *obj);

/* ---- rendezvous.c ---- */
SGC_HIDDEN uint64_t random_job_id(void);
SGC_HIDDEN int rdv_coordinator(struct sgc_comm *c);
SGC_HIDDEN int rdv_worker(struct sgc_comm *c);
SGC_HIDDEN void rdv_handle(struct sgc_comm *c, const struct sgc_rx *rx);

/* ---- engine.c ---- */
SGC_HIDDEN void engine_rx(struct sgc_comm *c, const struct sgc_rx *rx);
/* Start this rank's part of a collective; @req learns the outcome. */
SGC_HIDDEN int coll_post(struct sgc_comm *c, uint8_t kind, const void *sendbuf,
			 void *recvbuf, size_t count, enum sgc_dtype dt,
			 enum sgc_op op, int root, struct sgc_request *req);
/* Progress until @req is done; returns its status. */
SGC_HIDDEN int req_wait(struct sgc_request *req);
/* Run timers and send what is due; returns the earliest next deadline. */
SGC_HIDDEN uint64_t engine_timers(struct sgc_comm *c, uint64_t now);
/* Fail every outstanding collective with @err (finalize, job abort). */
SGC_HIDDEN void engine_cancel_all(struct sgc_comm *c, int err, const char *why);
SGC_HIDDEN void engine_free(struct sgc_comm *c);
/* The retransmission delay now: the floor, or twice what a collective
 * usually takes, so a loaded run does not mistake slowness for loss. */
static inline uint64_t rto_now(const struct sgc_comm *c)
{
	uint64_t rto = c->rto_ns > 2 * c->srtt_ns ? c->rto_ns : 2 * c->srtt_ns;

	return rto < c->rto_max_ns ? rto : c->rto_max_ns;
}

/*
 * eBPF path: how often the coordinator looks at a kernel slot while PULLs
 * are out.  The kernel reduces PULLed answers without telling user space,
 * so this is how their budget flows back; a slot lookup costs one syscall.
 */
static inline uint64_t kmode_refresh_gap(const struct sgc_comm *c)
{
	return c->rto_ns / 64;
}

/* Learn how long a collective takes from one that needed no resend
 * (Karn's rule: a retransmitted one would feed loss back into the RTO). */
static inline void rtt_sample(struct sgc_comm *c, uint64_t took)
{
	c->srtt_ns = c->srtt_ns ? c->srtt_ns - c->srtt_ns / 8 + took / 8 : took;
}
/* A collective still open after @elapsed: collectives take at least that
 * long here (a lower bound, unlike a duration that included a resend). */
#define RTT_FLOOR_MAX	4
static inline void rtt_floor(struct sgc_comm *c, uint64_t elapsed)
{
	if (c->srtt_ns < elapsed)
		c->srtt_ns = elapsed;
}
/* One round of I/O and timers, waiting at most until @until. */
SGC_HIDDEN int engine_progress(struct sgc_comm *c, uint64_t until);
/* Submit queued sends now. */
SGC_HIDDEN void io_flush(struct sgc_comm *c);
SGC_HIDDEN void io_tx_flush(struct sgc_comm *c);

/* ---- sg.c ---- */
SGC_HIDDEN void sg_rx_coord(struct sgc_comm *c, const struct sgc_rx *rx);
SGC_HIDDEN void sg_rx_worker(struct sgc_comm *c, const struct sgc_rx *rx);
SGC_HIDDEN uint64_t sg_timers(struct sgc_comm *c, uint64_t now);
SGC_HIDDEN void sg_free(struct sgc_comm *c);

/* bitmap helpers */
static inline bool bit_test(const uint8_t *m, size_t i)
{
	return m[i >> 3] & (1u << (i & 7));
}

static inline void bit_set(uint8_t *m, size_t i)
{
	m[i >> 3] |= (uint8_t)(1u << (i & 7));
}

static inline uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

#endif /* SGC_ENGINE_H */
