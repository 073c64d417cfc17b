/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A fake transport with virtual time, for unit tests of the engine's state
 * machines (coordinator, worker, scatter-gather).  fake_net.c implements
 * every function of io.h, and now_ns(), for several communicators in one
 * process: sends are copied into a per-destination queue and delivered
 * after a latency, when the driver (fake_run_until()) has moved the
 * virtual clock that far.  Nothing blocks and no socket is opened; a wait
 * in io_poll() moves the clock instead, for one comm run on its own
 * (rdv_coordinator(), rdv_worker()).
 *
 * The tests link the real engine objects with this file instead of io.c
 * (tests/unit/CMakeLists.txt).  A per-test policy decides the fate of
 * every datagram: deliver, drop, duplicate or delay; a rank can be made
 * dead (everything to and from it is dropped, and it stops running).
 */
#ifndef SGC_FAKE_NET_H
#define SGC_FAKE_NET_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

#include "comm.h"

/* Ranks one fake net holds. */
#define FAKE_MAX_RANKS		32
/* io_rx_room() and io_sock_room(): the user-space path's PULL budget
 * (pull_pacing()) and the sharded collectives' windows. */
#define FAKE_RX_ROOM		256
/* The virtual clock starts here (0 means "none" in places). */
#define FAKE_T0			1000000000ULL
/* fake_run_until() gives up after this many rounds: a livelock. */
#define FAKE_MAX_STEPS		2000000

enum fake_verdict {
	FAKE_DELIVER,
	FAKE_DROP,
	FAKE_DUP,	/* two copies; the second @extra_ns later */
	FAKE_DELAY,	/* one copy, @extra_ns later than the latency */
};

/* What a policy sees of a datagram being sent. */
struct fake_dgram_info {
	int from, to;			/* ranks; -1 = not a rank of the net */
	const struct sgc_hdr *hdr;
	uint32_t len;
	uint64_t now;
};

typedef enum fake_verdict (*fake_policy_fn)(const struct fake_dgram_info *d, uint64_t *extra_ns,
					    void *arg);

/* Random faults for fake_random_faults(): percentages of the datagrams
 * whose type is in @types (bit per enum sgc_msg_type; 0 = all). */
struct fake_faults {
	unsigned drop_pct;
	unsigned dup_pct;
	unsigned delay_pct;
	uint64_t max_delay_ns;		/* of a delay, and of a duplicate */
	unsigned types;
};

SGC_HIDDEN enum fake_verdict fake_random_faults(const struct fake_dgram_info *d,
						uint64_t *extra_ns, void *arg);

struct fake_net_stats {
	uint64_t sent;		/* io_send() calls */
	uint64_t delivered;	/* handed to a receiving comm */
	uint64_t dropped;	/* by the policy or a dead rank */
	uint64_t duplicated;
	uint64_t duplicated_data; /* of them CONTRIB or RESULT */
	uint64_t delayed;
	uint64_t unroutable;	/* to an address no comm has */
};

/* Empty the net: no comms, no datagrams, clock at FAKE_T0, the RNG seeded
 * with @seed, every datagram taking @latency_ns. */
SGC_HIDDEN void fake_net_reset(uint64_t seed, uint64_t latency_ns);
/* Free the datagrams still in flight (comms are closed by io_close()). */
SGC_HIDDEN void fake_net_free(void);
SGC_HIDDEN void fake_net_policy(fake_policy_fn fn, void *arg);
/* Rank @rank is dead from now: it stops running, and every datagram to
 * or from it is dropped. */
SGC_HIDDEN void fake_net_kill(int rank);
SGC_HIDDEN const struct fake_net_stats *fake_net_stats(void);
SGC_HIDDEN uint64_t fake_now(void);
/* Move the clock forward by @ns without running anything. */
SGC_HIDDEN void fake_advance(uint64_t ns);
/* xorshift64*, seeded by fake_net_reset(). */
SGC_HIDDEN uint64_t fake_rand(void);
/* Deliver @len bytes to @to as if sent from @from, @delay_ns from now
 * (with no policy and no latency). */
SGC_HIDDEN void fake_inject(struct sgc_comm *to, const struct sockaddr_in *from,
			    const void *data, size_t len, uint64_t delay_ns);

/*
 * Run every live comm (engine_progress(c, 0), then sg_worker_process() for
 * a worker that serves queries), then move the clock to the next event
 * (the earliest delivery or timer), until @done(@arg) holds or @max_ns of
 * virtual time have passed.  Returns whether @done held.
 */
SGC_HIDDEN bool fake_run_until(bool (*done)(void *arg), void *arg, uint64_t max_ns);

/* A job of @world comms already joined, as sgc_init() leaves them. */
struct fake_world_opts {
	int world;
	uint32_t chunk_bytes;		/* a multiple of 8, <= SGC_MAX_BODY */
	unsigned timeout_ms;
	uint64_t rto_ns;
	uint16_t push_credit;		/* 0 = what pull_pacing() says */
};

#define FAKE_JOB_ID		0x5ca1ab1e0ddba11ULL

/* Rank @rank's address: 127.10.0.(rank + 1), port 7000 + rank. */
SGC_HIDDEN void fake_addr(struct sockaddr_in *a, int rank);
/* @out[0..world): the comms; 0 or -ENOMEM. */
SGC_HIDDEN int fake_world_new(const struct fake_world_opts *o, struct sgc_comm **out);
SGC_HIDDEN void fake_world_free(struct sgc_comm **cs, int world);

/*
 * A fake eBPF path (fake_bpf.c, which replaces path_bpf.c): @c (rank 0)
 * believes it runs the eBPF path, with notify_prog's result token @token.
 * @keep: the kernel passes contributions up and user space reduces them;
 * otherwise the kernel "reduces" (rank 0's own chunks vanish, nothing
 * comes back but what the test hands to c->on_kernel_result).
 */
SGC_HIDDEN void fake_bpf_on(struct sgc_comm *c, bool keep, uint32_t token);

/* The job the state-machine tests run: small chunks so that vectors
 * span several, a short timeout and RTO in virtual time. */
#define CHUNK_BYTES	256
#define ELEMS		(CHUNK_BYTES / sizeof(int32_t))	/* per chunk */
#define LATENCY_NS	50000ULL
#define TIMEOUT_MS	2000u
#define TIMEOUT_NS	(TIMEOUT_MS * 1000000ULL)
#define RTO_NS		1000000ULL
/* Enough virtual time for anything that should succeed. */
#define RUN_NS		(4 * TIMEOUT_NS)
/* After a test: longer than any delay the faults add. */
#define DRAIN_NS	(20 * RTO_NS)
/* A vector past the push credit: some chunks must be PULLed. */
#define COUNT_MANY	((size_t)-1)
/* Written past the vector: must stay. */
#define SENTINEL	((int32_t)0x7eadbeef)

#endif /* SGC_FAKE_NET_H */
