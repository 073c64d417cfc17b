/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The communicator and the request: the state every layer shares, in one
 * sub-struct per module that owns it.
 */
#ifndef SGC_COMM_H
#define SGC_COMM_H

#include "io.h"
#include "kshard.h"
#include "mesh.h"
#include "path_bpf.h"
#include "pkt.h"
#include "pull.h"
#include "request.h"
#include "retx.h"
#include "sgc_internal.h"

/* Collectives tracked at once: ring of slots indexed by seq % SGC_RING. */
#define SGC_RING		(2 * SGC_MAX_INFLIGHT)
/* Query (scatter-gather) slots, own sequence space. */
#define SGC_QRING		64

struct sgc_coll;
struct sgc_query;
struct rdv_state;

struct sgc_peer {
	struct sockaddr_in addr;
	bool joined;		/* coordinator: claimed by a HELLO (rendezvous.c);
				 * worker: in the roster */
	bool ready;		/* coordinator: the claim is confirmed, by a READY
				 * with the job id and the HELLO's nonce */
	bool bye;
	uint32_t nonce;		/* the HELLO's (worker: its own) */
	uint64_t welcomed_at;	/* coordinator: first WELCOME to the claim, 0 = none */
	struct sockaddr_in rival; /* coordinator: the claim it took over, if any */
	uint32_t rival_nonce;
	uint32_t wm;		/* worker's reported watermark */
	uint64_t lag_at;	/* coordinator: when the result it lagged on was
				 * last sent again with a PULL */
	uint64_t said_at;	/* coordinator: when we took its latest word (and
				 * so its watermark) */
	uint64_t said_wall;	/* and when the kernel took it (CLOCK_REALTIME),
				 * 0 = not known */
	uint32_t hi;		/* coordinator: the latest collective it sent
				 * for (user-space path; gather_prog's rank_hi
				 * on the eBPF path), 0 before any */
};

/*
 * Receive dispatch (progress.c's engine_rx()), filled at init by the
 * rendezvous and by the rank's role (coord_rx_table(), worker_rx_table()).
 * Until this rank has joined, every datagram goes to @unjoined.  Then
 * @early[type] runs first if set; otherwise @accept checks the sender and
 * @on[type] handles what it accepted (none: counted as rejected).
 */
struct sgc_rx_table {
	sgc_rx_fn unjoined;
	sgc_rx_fn early[SGC_MSG_MAX];
	bool (*accept)(struct sgc_comm *c, const struct sgc_rx *rx);
	sgc_rx_fn on[SGC_MSG_MAX];
};

/* The collectives this rank has posted or heard of (coll.c). */
struct sgc_colls {
	uint32_t next_seq;	/* next collective this rank posts */
	uint32_t base;		/* coordinator: oldest unretired; worker: watermark */
	uint32_t acked_wm;	/* worker: last watermark reported */
	uint32_t nposted;	/* outstanding requests */
	struct sgc_request *live; /* requests of non-blocking calls not yet freed */
	struct sgc_request *reqs; /* the outstanding requests (coll.c) */
	struct sgc_request **reqs_tail; /* the last one's next, valid while reqs is set */
	uint64_t next_timer;	/* earliest deadline after a round */
	struct sgc_coll *slots[SGC_RING];
};

/* A worker's view of the coordinator (worker.c). */
struct sgc_coord_view {
	uint64_t last_rx;	/* last datagram from the coordinator */
	uint64_t work_rx;	/* last RESULT or PULL for a posted collective */
	uint64_t done_post_max;	/* latest t_post of a completed collective */
	uint32_t clean_rx;	/* result datagrams in a row that came as first
				 * sent (not resent), up to CLEAN_RX_MAX */
	uint32_t stamp;		/* the latest stamp the coordinator sent us */
	uint64_t stamp_rx;	/* when we took it (c->now: read as the round of
				 * completions that held it began) */
};

/*
 * The coordinator's count of small results lost on the way to the workers
 * (coord_complete.c): result datagrams sent, and those a worker NACKed
 * for again, both halved now and then so that they follow the link.  From
 * them, how many extra copies each small result gets.
 */
struct sgc_rloss {
	uint32_t sent;		/* result datagrams to workers, first copies */
	uint32_t lost;		/* of those, sent again on request */
	uint8_t copies;		/* extra copies each small result gets now */
};

/* Coordinator: the pace of its results, for how long a batch waits
 * (transport.c, results_cork()). */
struct sgc_batch {
	uint64_t last;		/* when the latest result was sent */
	uint64_t gap_ns;	/* between two results, smoothed (1/16) */
	uint64_t span_at;	/* the current span began (ns) */
	uint64_t span_cpu;	/* this thread's CPU time then (ns) */
	uint32_t busy_pm;	/* share of the time this thread ran, per mille,
				 * per span, smoothed (1/4) */
	uint32_t sent;		/* result datagrams for workers, decaying */
	uint32_t resent;	/* of those, sent again (coord_resend_result()) */
};

/* Scatter-gather (sg.c). */
struct sgc_sg {
	uint32_t next_seq;	/* coordinator: next query to send */
	struct sgc_query *slots[SGC_QRING];
	struct sgc_query *active;	/* coordinator: the query in progress */
	struct sgc_query *unhandled;	/* worker: newest query not yet handled */
	uint32_t newest;	/* worker: newest query seen */
	bool any_seen;		/* worker: newest is valid */
	uint64_t last_query;	/* worker: last QUERY/PULL from the coordinator */
	bool serving;
	bool stop_seen;
	sgc_handler_fn handler;
	void *handler_arg;
	int handler_err;
};

struct sgc_comm {
	struct sgc_cfg cfg;
	int rank, world;
	uint64_t job_id;
	uint32_t chunk_bytes;
	bool joined;
	uint64_t now;		/* monotonic ns, refreshed each round */
	struct sgc_peer *peers;	/* [world] */
	struct sockaddr_in self;
	struct sgc_mac_key *mac; /* mac.c: the job key's, NULL = no key */
	bool mac_warned;	/* pkt.c: the log has said why tags fail */
	uint64_t hello_warn_at;	/* rendezvous.c: last refused HELLO logged */
	uint32_t hello_warn_quiet; /* refused HELLOs not logged since */
	uint32_t kernel_token;	/* path_bpf.c: notify_prog's results carry it; 0 = none */
	uint64_t kernel_read_ns; /* coord_kernel.c: what a read of a collective's
				  * slots costs, smoothed (1/8) */

	struct sgc_rtt rtt;	/* retx.h */
	struct sgc_io io;	/* io.c */
	struct sgc_pkt_pool pkts; /* pkt.c */
	struct sgc_rx_table rxt; /* progress.c */
	struct sgc_pace pace;	/* pull.c */
	struct sgc_colls colls;	/* coll.c, coord*.c, worker.c */
	struct sgc_coord_view coord; /* worker.c */
	struct sgc_rloss rloss;	/* coord_complete.c */
	struct sgc_batch batch;	/* transport.c */
	struct sgc_sg sg;	/* sg.c */
	struct sgc_mesh mesh;	/* mesh.c */
	struct sgc_kshard *kshard; /* kshard.c, NULL before a sharded allreduce */
	int rank_base;		/* messages name rank r as (r + this) % world: a
				 * kshard.c group's ranks as its parent's */
	struct rdv_state *rdv;	/* rendezvous.c, worker during sgc_init */

	/* path_bpf.c (coordinator with the eBPF path) */
	struct sgc_bpf *bpf;
	int bpf_err;		/* why the load failed */
	char bpf_why[300];
	sgc_kernel_result_fn on_kernel_result;

	/* finalize */
	bool bye_acked;
	bool dead;		/* the job was aborted; every call fails */
	int dead_err;

	struct sgc_stats st;
};

/* @h, an SGC_F_KERNEL RESULT from the socket, is notify_prog's: it carries
 * this load's random token in aux, which no datagram off the wire does. */
static inline bool kernel_result_authentic(const struct sgc_comm *c, const struct sgc_hdr *h)
{
	return c->kernel_token && (h->flags & SGC_F_KERNEL) && h->aux == c->kernel_token;
}

/* Rank @r as messages name it (rank_base). */
static inline int msg_rank(const struct sgc_comm *c, int r)
{
	return c->rank_base ? (r + c->rank_base) % c->world : r;
}

/* The kernel reduces contributions (eBPF path on, keep-responses off). */
static inline bool kernel_reduces(const struct sgc_comm *c)
{
	return c->bpf && !bpf_path_keep(c);
}

/* ... of collectives of kind @kind (SGC_COLL_*): SGC_ACCEL=auto leaves
 * some to user space (kernel_colls() in path_bpf.c). */
static inline bool kernel_reduces_kind(const struct sgc_comm *c, unsigned int kind)
{
	return c->bpf && bpf_path_in_kernel(c, kind);
}

/*
 * eBPF path: how often the coordinator looks at a kernel slot while PULLs
 * are out.  The kernel reduces PULLed answers without telling user space,
 * so this is how their budget flows back; a slot lookup costs one syscall.
 * Often (a 64th of the floor) only while the budget is what holds PULLs
 * back: otherwise nothing waits for it, and at the 200 us floor a wake-up
 * every 3 us while one lost contribution was PULLed took a CPU from the
 * ranks on a 2-CPU host (1% loss, 17 ranks: p99 3.5 -> 1.0 ms).  And
 * never so often that reading the slots takes more than a quarter of the
 * time (KERNEL_READ_SHARE times what the reads cost, kernel_read_ns): a
 * read copies each open chunk's slot, body and all, and with
 * SGC_ALGO=shard-kernel (nine stars a rank at 9 ranks, 32 open chunks
 * each) the reads took 31% of the machine and the 1 MiB allreduce 60 ms,
 * against 26-30 ms at half the floor (bench/results/kshard-2026-12-06).
 */
#define KERNEL_READ_SHARE	4
static inline uint64_t kernel_refresh_gap(const struct sgc_comm *c)
{
	uint64_t gap = c->pace.inflight * 2 < c->pace.budget ? c->rtt.rto_ns / 2 : c->rtt.rto_ns / 64;

	return max_u64(gap, c->kernel_read_ns * KERNEL_READ_SHARE);
}

/* comm.c: register the upcalls of a rank of c->rank: io.rx, the receive
 * dispatch table (rendezvous, then the role's), and the eBPF path's
 * kernel results.  sgc_init() calls it; so do tests that build a joined
 * communicator by hand. */
SGC_HIDDEN void comm_set_handlers(struct sgc_comm *c);

/*
 * comm.c: sgc_init() in two steps, for sgc_comm_split() (comm_split.c),
 * which exchanges the new coordinator's port between them.  @c has its
 * cfg (and mac, for a keyed job) set.  comm_start(): peers, handlers, the
 * eBPF path's load (rank 0), the socket and ring; comm_join(): the
 * rendezvous.  On failure, sgc_finalize() with c->joined false.
 */
SGC_HIDDEN int comm_start(struct sgc_comm *c);
SGC_HIDDEN int comm_join(struct sgc_comm *c);

/*
 * comm_split.c, for sgc_comm_split() and kshard.c.  split_open(): rank
 * @rank of @world in a new communicator with @p's settings, bound, its
 * eBPF path loaded if it is the coordinator, not joined; @soft: an eBPF
 * path that SGC_ACCEL=ebpf asks for and that cannot start leaves the new
 * communicator on the user-space path rather than failing it.
 * split_addr(): the address other ranks reach parent rank @r at (port 0).
 */
SGC_HIDDEN int split_open(struct sgc_comm *p, int rank, int world, bool soft,
			  struct sgc_comm **out);
SGC_HIDDEN struct sockaddr_in split_addr(const struct sgc_comm *p, int r);
/* Several communicators' goodbyes at once, then sgc_finalize() of each
 * (kshard.c's groups). */
SGC_HIDDEN void comm_goodbye_all(struct sgc_comm **v, int n);
/* Sleep until a datagram comes for one of @v's @n communicators or until
 * @until (ns), whichever is first (ppoll, to the nanosecond). */
SGC_HIDDEN void comm_sleep(struct sgc_comm **v, int n, uint64_t until);

/* Join @n, opened by split_open(), whose coordinator is parent rank @lead
 * on @port (host order), with io.side @side(@arg) driving the others
 * while it waits. */
SGC_HIDDEN int split_join(struct sgc_comm *p, struct sgc_comm *n, int lead, uint16_t port,
			  void (*side)(void *arg), void *arg);

/*
 * Run the I/O watch handler (io_watch(): the eBPF path's ring buffer) now,
 * unless it is running already (what it hands up may lead back here);
 * counts what it handled in io.events.  Here, inline, so that the unit
 * tests' fake transport, which stands in for io.c, has it too.
 */
static inline void io_watch_drain(struct sgc_comm *c)
{
	int n;

	if (!c->io.watch || c->io.in_watch)
		return;
	c->io.in_watch = true;
	n = c->io.watch(c);
	c->io.in_watch = false;
	if (n > 0)
		c->io.events += (unsigned)n;
}

#endif /* SGC_COMM_H */
