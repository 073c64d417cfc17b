/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * bench_base.h - the frame shared by the baseline coordinators
 * (base_naive.c, base_epoll.c, base_mmsg.c, base_uring.c).
 *
 * A baseline scatters a query (struct bench_msg) to F workers, rank r at
 * SUBNET.1.h:(simple_port + r) with h = ((r - 1) % H) + 1 (the rank
 * placement of tools/sgc-cluster), gathers F answers of `count` int32,
 * sums them and checks the sum (WaitAll).  The I/O is what differs: each
 * baseline supplies a struct base_io; this frame runs the measurement
 * loops, the request table, validation, retransmission and verification.
 *
 * Queries are padded with zeros to the answer's size by default: native XDP
 * on veth cannot grow a small frame into a 1.5 KB answer (the veth's XDP
 * buffer has next to no tailroom), so the responder answers in place.
 *
 * Modes (the thesis's, chapter 5):
 *   lat   one operation at a time (5000 by default): p50/p99 latency;
 *   tput  `window` operations in flight, a new one launched per
 *         completion (8000 by default), rate sampled every 200.
 * Every answer is checked (magic, request id, rank against its source
 * address and port, length); a silent rank is asked again after an RTO
 * that doubles per retry (as libsgcoll does) and is at least twice the
 * smoothed operation latency (under load, answers queue behind other
 * operations' answers: a fixed RTO would resend what is merely queued and
 * melt down); an operation that cannot
 * complete within the operation timeout fails the run (verified=0).
 */
#ifndef BENCH_BASE_H
#define BENCH_BASE_H

#include <stdbool.h>
#include <stdint.h>
#include <netinet/in.h>

#include "bench_proto.h"

#define BENCH_MAX_WORKERS 4095	/* libsgcoll's world limit, minus rank 0 */

struct base_ctx;

struct base_op {
	uint32_t id;		/* request id; 0 = slot free */
	bool complete;
	int nrecv;		/* distinct ranks answered */
	uint8_t *seen;		/* [F + 1] */
	uint32_t *sum;		/* [count] */
	uint64_t t0;		/* scatter started */
	uint64_t t_done;	/* last answer arrived */
	uint64_t t_last;	/* last progress */
	uint64_t t_timer;	/* next retransmission check */
	unsigned backoff;
};

struct base_io {
	const char *name;
	/* Set up sockets (and rings); b->nslots, b->addr are ready. */
	int (*open)(struct base_ctx *b);
	/* Send @op's query to @n ranks: the header b->qmsg(slot, r), which
	 * stays unchanged until the slot is reused, then b->pad_len bytes of
	 * b->pad. */
	int (*send)(struct base_ctx *b, int slot, const int *ranks, int n);
	/* Receive what arrives until @deadline_ns or until at least one
	 * operation completes; pass every datagram to base_rx().  Returns 0
	 * or a negative errno. */
	int (*poll)(struct base_ctx *b, uint64_t deadline_ns);
	void (*close)(struct base_ctx *b);
};

struct base_args {
	const char *subnet;	/* "10.123": workers at SUBNET.1.h */
	int hosts;		/* worker hosts H */
	int workers;		/* fan-out F */
	int port;		/* simple_port: rank r at port + r */
	int count;		/* int32 per answer */
	int query_bytes;	/* UDP payload of a query: header + zero padding */
	bool tput;		/* mode */
	long ops, warmup;
	int window, sample;
	unsigned rto_us;	/* first retransmission after this silence */
	unsigned op_timeout_ms;	/* an operation failing this fails the run */
	unsigned max_s;		/* the whole run, in seconds */
};

struct base_ctx {
	struct base_args a;
	const struct base_io *io;
	void *priv;			/* the I/O's own state */
	struct sockaddr_in *addr;	/* [F + 1] */
	int nslots;			/* 1 (lat) or window (tput) */
	struct base_op *ops;		/* [nslots] */
	struct bench_msg *qmsgs;	/* [nslots][F + 1] */
	unsigned char *pad;		/* query_bytes - sizeof(bench_msg) zeros */
	size_t pad_len;
	uint32_t rank_sum;		/* sum of bench_rank_term(1..F) */
	uint64_t srtt;			/* smoothed operation latency, ns */
	uint32_t next_id;
	int *ranks;			/* [2 (F + 1)]: 1..F, then scratch */
	int *done;			/* slots completed since last taken */
	int ndone;
	int failed;			/* errno-like; the run is void */
	char why[256];
	unsigned long long retx, dup, stale, bad, send_err;
};

static inline struct bench_msg *base_qmsg(struct base_ctx *b, int slot, int rank)
{
	return &b->qmsgs[(size_t)slot * (size_t)(b->a.workers + 1) + (size_t)rank];
}

/*
 * Feed one received datagram.  @from is its source, or NULL when the
 * socket is connected to rank @rank_hint (which is then the source).
 */
void base_rx(struct base_ctx *b, const void *buf, size_t len, const struct sockaddr_in *from,
	     int rank_hint);

/* Rank of a source address, or 0. */
int base_rank_of(const struct base_ctx *b, const struct sockaddr_in *from);

/* Set socket buffers (forcing past rmem_max/wmem_max when root). */
void base_sockbuf(int fd, int rcv, int snd);

/* The whole program: parse @argv, run, print the RESULT line. */
int base_main(int argc, char **argv, const struct base_io *io);

#endif /* BENCH_BASE_H */
