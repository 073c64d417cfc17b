/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The socket and its io_uring (io.c): one UDP socket per rank, a
 * multishot receive from a provided-buffer ring, sends held per round and
 * coalesced with UDP GSO, a timer, and other file descriptors to watch.
 *
 * The layers above get what comes in only through callbacks they
 * register: every valid datagram goes to io.rx, and a watched fd's
 * handler runs when it is readable and before every wait.
 */
#ifndef SGC_IO_H
#define SGC_IO_H

#include <liburing.h>

#include "pkt.h"

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
/* Sends held per batch so that same-size datagrams to one peer can go as
 * one UDP GSO send.  A batch of results to 64 workers (io_cork()) is 16
 * results; at 256 it was 4, and workers woke 18 times per collective. */
#ifndef SGC_TXQ
#define SGC_TXQ		1024
#endif

struct sgc_comm;
typedef void (*sgc_rx_fn)(struct sgc_comm *c, const struct sgc_rx *rx);
/* Returns how many events it handled. */
typedef int (*sgc_watch_fn)(struct sgc_comm *c);

/* A held send.  @dst points at the caller's address, which outlives the
 * batch (a peer's entry, the coordinator's, a packet's body): an unsent
 * SQE reads it at submission, after this entry may have been reused. */
struct sgc_txq_ent {
	struct sgc_pkt *p;
	const struct sockaddr_in *dst;
};

/* While this rank waits on one communicator, others it is in may have to
 * answer: a new one joining (sgc_comm_split(), kshard.c's groups) while
 * a peer that lost our acknowledgement of the parent's last collective
 * asks again, or kshard.c's groups while a call waits on their parent
 * alone.  So a wait that sets @side calls it first and lasts at most
 * SGC_SIDE_WAIT_NS. */
#define SGC_SIDE_WAIT_NS	2000000ULL

struct sgc_io {
	int fd;
	void (*side)(void *arg);	/* NULL, or drive the others, not blocking */
	void *side_arg;
	/* @fd is already bound (sgc_comm_split()'s coordinators bind port 0
	 * first: the eBPF path is loaded for the port the kernel chose) */
	bool prebound;
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
	unsigned nsq;		/* queued, not yet submitted */
	unsigned sends_inflight; /* sends whose completion is not reaped */
	bool gso;		/* UDP_SEGMENT: coalesce sends to one peer */
	bool gro;		/* UDP_GRO: a peer's burst arrives as one receive */
	bool no_gro;		/* set before io_open(): never ask for UDP_GRO */
	bool rx_stamp;		/* SO_TIMESTAMPNS: the kernel says when it took each one */
	uint64_t rx_wall;	/* the datagram being handled: when this host's
				 * kernel took it (CLOCK_REALTIME ns), 0 = unknown */
	uint8_t *rx_bounce;	/* an aligned copy of one unaligned GRO segment */
	uint64_t rx_coalesced;	/* receives that held more than one datagram */
	bool send_async;	/* the next io_send() goes through an io_uring worker */
	unsigned fan_cpus;	/* CPUs to spread a long eBPF fan-out over */
	unsigned ntxq;
	struct sgc_txq_ent *txq; /* [SGC_TXQ] sends held until the batch goes */
	uint64_t cork_until;	/* io_cork(): the txq waits until then, 0 = not corked */
	sgc_rx_fn rx;		/* every datagram that passes sgc_wire_check() */
	int watch_fd;		/* -1 = none */
	sgc_watch_fn watch;
	bool watch_armed;
	bool in_watch;		/* the watch handler runs (io_watch_drain()) */
	bool closing;		/* io_close(): arm nothing again */
	bool cancel_pending;	/* io_close()'s cancel has not completed */
	uint64_t events;		/* receives and watch events handled, ever */
};

SGC_HIDDEN int io_open(struct sgc_comm *c);
SGC_HIDDEN void io_close(struct sgc_comm *c);
/* net.core.netdev_max_backlog: packets a CPU queues before the stack
 * takes them (veth delivers through this queue); 1000 if unreadable. */
SGC_HIDDEN unsigned long io_netdev_backlog(void);
/* Datagrams the socket buffer holds, at 4 KiB each. */
SGC_HIDDEN unsigned long io_sock_room(struct sgc_comm *c);
/* Datagrams the receive side holds: io_sock_room(), and 3/4 of the
 * per-CPU backlog (net.core.netdev_max_backlog). */
SGC_HIDDEN unsigned long io_rx_room(struct sgc_comm *c);
/* Queue @p for @dst (which must stay valid until the next submit). */
SGC_HIDDEN int io_send(struct sgc_comm *c, struct sgc_pkt *p, const struct sockaddr_in *dst);
/* The same, past the send queue and any cork: alone, at the next submit. */
SGC_HIDDEN int io_send_now(struct sgc_comm *c, struct sgc_pkt *p, const struct sockaddr_in *dst);
/* Turn held sends into SQEs (GSO where it can), unless corked. */
SGC_HIDDEN void io_tx_flush(struct sgc_comm *c);
/*
 * Keep the held sends until @until (monotonic ns) or until the txq is
 * full, whichever comes first, so that what goes to one peer meanwhile
 * leaves as one GSO send.  Sends wait in the txq, not in the kernel:
 * they go at the first libsgcoll call after @until (the progress loop's
 * wait ends then, and sgc_fd() is readable), or as a call returns when
 * the caller holds no request (io_flush()).  No effect without GSO, or
 * while a cork holds.
 */
SGC_HIDDEN void io_cork(struct sgc_comm *c, uint64_t until);
/* When held sends are due to go (monotonic ns), 0 = none held. */
SGC_HIDDEN uint64_t io_cork_due(const struct sgc_comm *c);
/* Whether @p still waits in the txq for @dst (held by a cork, or not yet
 * flushed): it has not left, so it cannot have been lost. */
SGC_HIDDEN bool io_queued(const struct sgc_comm *c, const struct sgc_pkt *p,
			  const struct sockaddr_in *dst);
/* Submit queued sends now. */
SGC_HIDDEN void io_flush(struct sgc_comm *c);
/* Submit queued sends, wait up to @wait_ns (0 = don't wait) for events,
 * and handle every completion (received datagrams go to io.rx). */
SGC_HIDDEN int io_poll(struct sgc_comm *c, uint64_t wait_ns);
/* The same; @enter: enter the kernel even with nothing to submit or wait
 * for, so that receives whose completion is pending get posted.  No wait
 * either when io.events has moved past @since: something the caller has
 * not looked at yet was handled (io_poll() passes the current count). */
SGC_HIDDEN int io_poll_flags(struct sgc_comm *c, uint64_t wait_ns, bool enter, uint64_t since);
/* Make sgc_fd() readable at @when (monotonic ns). */
SGC_HIDDEN void io_arm_timer(struct sgc_comm *c, uint64_t when);
/* Call @fn when @fd is readable, and before every wait; fd -1 stops. */
SGC_HIDDEN void io_watch(struct sgc_comm *c, int fd, sgc_watch_fn fn);
/* io_watch_drain() (comm.h): run the watch handler now. */
SGC_HIDDEN uint64_t now_ns(void);
/* How long ago this host's kernel took the datagram being handled (rank
 * 0 only, from SO_TIMESTAMPNS); 0 if not known. */
SGC_HIDDEN uint64_t io_rx_age(const struct sgc_comm *c);
/* How long ago a kernel receive time (CLOCK_REALTIME ns, as io.rx_wall) was. */
SGC_HIDDEN uint64_t io_wall_age(uint64_t wall);

#endif /* SGC_IO_H */
