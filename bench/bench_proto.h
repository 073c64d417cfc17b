/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * bench_proto.h - what the benchmark's coordinators, its worker handlers
 * and the XDP responder (responder.bpf.c) agree on.  Kernel types only:
 * this header is compiled for BPF and for user space.
 *
 * Two protocols are answered:
 *
 *  - the baselines' simple protocol: a query is a struct bench_msg (no
 *    body) sent to worker rank r at port simple_port + r; the answer is the
 *    same header with BENCH_F_RESP set and `count` int32 elements;
 *  - libsgcoll's wire protocol (sgcoll/wire.h) for sgc_scatter_gather():
 *    the query payload is a struct bench_sg_query; the answer is a CONTRIB
 *    whose body holds `aux` (the wanted count) int32 elements;
 *  - and for sgc_allreduce() of one chunk of int32 (ar_window): a RESULT
 *    or PULL is answered by a CONTRIB whose id is its collective's seq
 *    (sgc_bench --responder numbers its allreduces so).
 *
 * Every worker contributes bench_contrib(rank, id, i) as element i for the
 * request with id @id, so the coordinator can check every reduced vector
 * exactly: the sum over ranks 1..F is bench_rank_sum(F) + F * (i+1)(2id+1)
 * (modulo 2^32).  A response applied to the wrong request, counted twice or
 * missing changes the sum.
 */
#ifndef BENCH_PROTO_H
#define BENCH_PROTO_H

#include <linux/types.h>

#define BENCH_MAGIC		0x51474253u	/* "SBGQ" little-endian */
#define BENCH_SGQ_MAGIC		0x51534753u	/* "SGSQ": sg query payload */

/* Default ports: libsgcoll's ranks sit at 7000 + r (sgc-cluster); the
 * simple protocol uses another range so both can be answered at once. */
#define BENCH_SGC_PORT		7000
#define BENCH_SIMPLE_PORT	20000

/* The thesis's vector: 363 int32 per response, one datagram. */
#define BENCH_COUNT		363
/* Largest response the responder builds (libsgcoll's SGC_MAX_BODY / 4). */
#define BENCH_MAX_ELEMS		864

/* struct bench_msg.flags */
#define BENCH_F_RESP		0x1

struct bench_msg {
	__u32 magic;		/* BENCH_MAGIC */
	__u32 id;		/* request id, echoed */
	__u16 rank;		/* worker rank the query is for (its slot) */
	__u16 count;		/* int32 elements wanted / carried */
	__u32 flags;		/* BENCH_F_* */
} __attribute__((packed));

/* The payload of a libsgcoll scatter-gather query. */
struct bench_sg_query {
	__u32 magic;		/* BENCH_SGQ_MAGIC */
	__u32 id;		/* request id */
} __attribute__((packed));

static inline __u32 bench_rank_term(__u32 rank)
{
	/* Not linear in rank: a response credited to the wrong rank shows. */
	return rank * 2654435761u ^ (rank << 11);
}

/* Element @i of rank @rank's answer to request @id. */
static inline __u32 bench_contrib(__u32 rank, __u32 id, __u32 i)
{
	return bench_rank_term(rank) + (i + 1) * (2 * id + 1);
}

/* ---- The responder's load-time configuration and counters ---- */

struct bench_resp_cfg {
	__u16 sgc_port;		/* libsgcoll rank r listens on sgc_port + r */
	__u16 simple_port;	/* simple-protocol rank r: simple_port + r */
	__u16 max_rank;		/* highest rank answered (both protocols) */
	__u16 flags;		/* BENCH_RESP_* */
	/* Allreduce workers (0: off).  A RESULT of collective s is answered
	 * by the contribution to s + ar_window, as a worker that keeps
	 * ar_window allreduces in flight posts its next one when the oldest
	 * completes; a PULL by the contribution it asks for, of ar_count
	 * elements (a PULL does not carry the count). */
	__u16 ar_window;
	__u16 ar_count;
	__u16 pad[2];
};

#define BENCH_RESP_SIMPLE	0x1	/* answer the simple protocol */
#define BENCH_RESP_SGC		0x2	/* answer libsgcoll queries */

/* What the responder learnt from the job's WELCOME (map `job`). */
struct bench_resp_job {
	__u64 job_id;
	__u32 chunk_bytes;
	__u16 push_credit;
	__u16 world;
};

/*
 * A libsgcoll query held until the coordinator PULLs it (push credit 0,
 * i.e. more than 192 workers): map `pending`, index = rank.
 */
struct bench_resp_pending {
	__u64 job_id;
	__u32 seq;
	__u32 id;		/* bench_sg_query.id */
	__u32 count;		/* elements wanted (QUERY aux) */
	__u8 dtype;
	__u8 op;
	__u8 policy;
	__u8 valid;
	__u16 arg;
	__u16 pad;
};

enum bench_resp_stat {
	BENCH_RST_SIMPLE,	/* simple queries answered */
	BENCH_RST_SGC_QUERY,	/* libsgcoll queries answered at once */
	BENCH_RST_SGC_HELD,	/* libsgcoll queries held for a PULL */
	BENCH_RST_SGC_PULL,	/* PULLs answered */
	BENCH_RST_WELCOME,	/* WELCOMEs seen (job learnt) */
	BENCH_RST_PASS,		/* a rank's, not answerable here: to the process */
	BENCH_RST_OTHER,	/* not UDP to a rank's port: to the stack */
	BENCH_RST_BAD,		/* ours but malformed: to the stack */
	BENCH_RST_XDP_SMALL,	/* XDP could not resize the frame: to TC */
	BENCH_RST_TC,		/* answers sent by the TC program */
	BENCH_RST_TC_GROW_FAIL,	/* TC could not resize either: to the stack */
	BENCH_RST_AR_RESULT,	/* allreduce results answered by the next contribution */
	BENCH_RST_AR_PULL,	/* allreduce PULLs answered */
	BENCH_RST_AR_HELD,	/* allreduce results not answered: no push credit */
	BENCH_RST_MAX
};

#endif /* BENCH_PROTO_H */
