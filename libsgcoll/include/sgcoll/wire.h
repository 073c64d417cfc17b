/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libsgcoll wire protocol: the one header that user space and the eBPF
 * programs both compile against.  Fixed-width kernel types only, packed,
 * little-endian on the wire (the library refuses to build big-endian).
 *
 * Every datagram is a struct sgc_hdr (48 bytes) followed by a body of
 * count * sgc_dtype_size(dtype) bytes (or a message-specific body for
 * control messages, see below).  One datagram carries at most one chunk.
 */
#ifndef SGCOLL_WIRE_H
#define SGCOLL_WIRE_H

#include <linux/types.h>

#define SGC_WIRE_MAGIC		0x4753	/* bytes 'S' 'G' on the wire */
#define SGC_WIRE_VERSION	2

/* IPv4 (20, no options) + UDP (8) overhead in front of our header. */
#define SGC_L3L4_OVERHEAD	28
/* Largest body the eBPF slots are sized for; the cluster MTU must keep
 * hdr + body within this (veth native XDP caps the MTU near 3.5 KB). */
#define SGC_MAX_BODY		3456
/* Largest world the rank fields and the in-kernel bitmaps allow. */
#define SGC_MAX_WORLD		4096

enum sgc_msg_type {
	SGC_MSG_HELLO = 1,	/* worker -> coord: rank, world size */
	SGC_MSG_WELCOME = 2,	/* coord -> worker: job id, parameters, roster */
	SGC_MSG_READY = 3,	/* worker -> coord: welcome complete */
	SGC_MSG_CONTRIB = 4,	/* worker -> coord: one chunk of a contribution */
	SGC_MSG_RESULT = 5,	/* coord -> worker: one chunk of a result */
	SGC_MSG_PULL = 6,	/* coord -> worker: send these chunks */
	SGC_MSG_QUERY = 7,	/* coord -> worker: scatter-gather query */
	SGC_MSG_NACK = 8,	/* worker -> coord: resend these result chunks */
	SGC_MSG_ABORT = 9,	/* either way: collective or job failed */
	SGC_MSG_BYE = 10,	/* worker -> coord: finalizing */
	SGC_MSG_BYE_ACK = 11,	/* coord -> worker: goodbye seen */
	SGC_MSG_ACK = 12,	/* worker -> coord: progress; coord -> worker: probe */
	SGC_MSG_WAIT = 13,	/* coord -> worker: HELLO seen, other ranks missing */
	SGC_MSG_SHARD = 14,	/* rank -> rank: one chunk of a shard (sharded collectives) */
	SGC_MSG_SHARD_ACK = 15,	/* rank -> rank: the shard chunks that came */
	SGC_MSG_MAX
};

/* What a collective is; selects the sequence space and delivery rule. */
enum sgc_coll_kind {
	SGC_COLL_ALLREDUCE = 1,	/* all contribute, all get the result */
	SGC_COLL_REDUCE = 2,	/* all contribute, root gets it, others DONE */
	SGC_COLL_BCAST = 3,	/* root contributes, all get it */
	SGC_COLL_BARRIER = 4,	/* all contribute nothing, all get DONE */
	SGC_COLL_QUERY = 5,	/* scatter-gather: own sequence space */
	/* Sharded (SGC_MSG_SHARD only, own sequence space with the sharded
	 * allreduce, which is SGC_COLL_ALLREDUCE there). */
	SGC_COLL_RSCATTER = 6,	/* reduce_scatter: rank r reduces block r */
	SGC_COLL_ALLGATHER = 7,	/* allgather: rank r's block to every rank */
	SGC_COLL_MAX
};

/* Completion policies (scatter-gather; collectives are always WAIT_ALL). */
enum sgc_wire_policy {
	SGC_WIRE_WAIT_ALL = 0,
	SGC_WIRE_WAIT_N = 1,
	SGC_WIRE_WAIT_ANY = 2,
};

/* hdr.flags */
#define SGC_F_RETX	0x0001	/* resent, or sent for a PULL (statistics
					 * and RTT samples only) */
#define SGC_F_DONE	0x0002	/* RESULT without data: "your part is over" */
#define SGC_F_STOP	0x0004	/* QUERY that ends sgc_serve() */
#define SGC_F_DECLINE	0x0008	/* CONTRIB to a QUERY: this rank abstains */
#define SGC_F_FANOUT	0x0010	/* coord egress only: clone to fan_first..fan_end */
#define SGC_F_KERNEL	0x0020	/* RESULT built by the kernel path (never
				 * taken from the wire: see RESULT below) */
#define SGC_F_ASK	0x0040	/* QUERY that is also the PULL of chunk 0 */
#define SGC_F_MAC	0x0080	/* the datagram ends in an SGC_MAC_TAG_SIZE tag */

struct sgc_hdr {
	__u16 magic;		/* SGC_WIRE_MAGIC */
	__u8 version;		/* SGC_WIRE_VERSION */
	__u8 type;		/* enum sgc_msg_type */
	__u32 seq;		/* collective sequence number, per kind space */
	__u64 job_id;		/* random per communicator; 0 only in HELLO;
				 * a nonce in an ABORT before the WELCOME */
	__u32 chunk;		/* chunk index (0 .. nchunks-1) */
	__u32 nchunks;		/* chunks in the whole vector (>= 1) */
	__u16 rank;		/* worker->coord: sender; coord->worker: dest */
	__u16 count;		/* elements in this datagram's body */
	__u8 dtype;		/* enum sgc_dtype */
	__u8 op;		/* enum sgc_op */
	__u8 coll;		/* enum sgc_coll_kind */
	__u8 policy;		/* enum sgc_wire_policy */
	__u16 arg;		/* root (collectives), wait_n (QUERY), span (NACK) */
	__u16 flags;		/* SGC_F_* */
	__u32 aux;		/* per type, see below */
	union {
		/* Coordinator to workers. */
		struct {
			__u16 fan_first;	/* SGC_F_FANOUT: scatter_prog clones
						 * this datagram to ranks
						 * [fan_first, fan_end).  RESULT with
						 * SGC_F_KERNEL (coordinator only):
						 * the first receiver notify_prog
						 * could not clone it to, 0 = none */
			__u16 fan_end;
		} __attribute__((packed));
		/* Workers to the coordinator (CONTRIB, ACK, NACK of a
		 * collective): the elements of the sender's whole vector,
		 * modulo 2^32 (with nchunks that is the exact count). */
		__u32 total;
	};
	__u32 stamp;		/* RESULT, PULL, NACK only (see below); else 0 */
} __attribute__((packed));

/*
 * Per-type use of the fields:
 *  HELLO    rank, arg = world size, aux = worker's random nonce; no body.
 *  WELCOME  arg = world size, chunk/nchunks = roster piece; body =
 *           struct sgc_welcome then struct sgc_roster_ent[count].
 *  READY    rank, aux = nonce echoed, job_id = the WELCOME's: the pair
 *           confirms the rank's claim.
 *  CONTRIB  seq, coll, chunk, nchunks, rank, count, dtype, op, arg = root,
 *           total; body = count elements.  To a QUERY: policy/arg as the
 *           query.
 *  RESULT   seq, coll, chunk, nchunks, count, dtype, op; body = elements,
 *           or no body with SGC_F_DONE.  With SGC_F_KERNEL, on the
 *           coordinator's host only (notify_prog to its socket): aux = a
 *           random token per load of the BPF programs, known to them and
 *           to the coordinator alone; one without it came off the wire
 *           and is dropped.  Workers never see either.
 *  PULL     seq, coll, nchunks, dtype, op, arg (as the collective),
 *           chunk = first chunk, aux = number of chunks, rank = the
 *           worker asked (count = 0).
 *  QUERY    seq, nchunks/dtype/op of the wanted response, aux = its
 *           element count, policy, arg = wait_n, count = 0; body = the
 *           query payload (one datagram).  With SGC_F_ASK (no push
 *           credit) the worker answers chunk 0 at once, as if PULLed.
 *  NACK     seq, coll, chunk = first missing chunk, arg = chunks in the
 *           bitmap; body = bitmap of missing chunks from `chunk` on.
 *  ABORT    seq, coll, aux = positive errno; seq 0 + coll 0 = whole job.
 *           With aux = SGC_EMISMATCH, a body of struct sgc_mismatch may
 *           say which rank's call differs from rank 0's, and how.
 *           To a worker not welcomed yet (the answer to its HELLO):
 *           job_id = that HELLO's nonce, never the job id; arg = the job's
 *           world size (EPROTO) or the rank in conflict (EADDRINUSE); when
 *           the coordinator gave up waiting (ETIMEDOUT, EADDRINUSE) the
 *           body is a struct sgc_join_abort and its bitmap, else empty.
 *  WAIT     the answer to a HELLO whose claim stands while other ranks
 *           are still missing: job_id = the HELLO's nonce, rank, arg =
 *           ranks missing, aux = ms until the coordinator gives up.  No
 *           body, so that a forged HELLO is not answered with more bytes
 *           than it had.
 *  BYE, BYE_ACK  rank.
 *  ACK      worker->coord: aux = the worker's watermark; with seq/coll
 *           set also the worker's call of that collective, in the fields
 *           a CONTRIB has (nchunks, dtype, op, arg = root, total).
 *           coord->worker with coll 0: a probe asking for an ACK; with
 *           seq/coll set: "still working on it" in answer to a NACK.  No
 *           body.
 *  SHARD    rank to rank (sharded collectives, mesh.c): seq (the sharded
 *           sequence space), coll (ALLREDUCE, RSCATTER or ALLGATHER),
 *           policy = phase (0: a contribution to the shard's owner,
 *           1: the owner's result or block), arg = the shard's owner,
 *           chunk/nchunks within the shard, rank = sender, count, dtype,
 *           op, total = the call's count, aux = the chunks the sender may
 *           have unacknowledged in this stream (the receiver acknowledges
 *           every quarter of it; 0: not said); body = count elements.
 *  SHARD_ACK  the same fields for the stream it answers, rank = sender,
 *           chunk = chunks that came in a row from the first (nchunks:
 *           all), count = the chunks the sender may have unacknowledged
 *           in a stream to it (its window; 0: not said); body = a __u64
 *           bitmap of chunks chunk+1 .. chunk+64 that came too.
 * stamp: on a RESULT or PULL, the coordinator's clock when it sent it, in
 *           microseconds, modulo 2^32 (0 = not said: results the kernel
 *           built).  On a NACK, the worker's reckoning of that clock when it
 *           decided to ask: the latest stamp it had plus the microseconds
 *           since it came, never later than the truth.  A NACK stamped
 *           before a result was sent crossed it and is not a loss.
 * Every worker->coord message carries the worker's watermark in aux
 * (all collectives below it are complete at that worker) except HELLO
 * and READY; the coordinator frees retained results by it.
 */

struct sgc_welcome {
	__u32 chunk_bytes;	/* body bytes per data chunk (multiple of 8) */
	__u16 world;		/* world size */
	__u16 push_credit;	/* chunks a worker may send unasked */
	__u32 timeout_ms;	/* coordinator's per-call timeout, for info */
	__u32 reserved;
} __attribute__((packed));

/*
 * Why the coordinator gave up on the join, told to each rank that had
 * claimed a place: which ranks had not joined (a bitmap of ranks
 * 0 .. nbits-1 follows, bit set = missing; nbits may stop short of the
 * world when the datagram cannot hold more, @missing counts them all),
 * and the HELLO it refused that most likely explains them.
 */
struct sgc_join_abort {
	__u32 timeout_ms;	/* how long the coordinator waited */
	__u16 world;		/* the job's world size */
	__u16 missing;		/* ranks that had not joined */
	__u16 nbits;		/* ranks the bitmap covers */
	__u16 cause;		/* 0, EPROTO (a world size) or EADDRINUSE (a rank
				 * claimed from two addresses) */
	__u16 cause_rank;	/* the rank of that HELLO */
	__u16 cause_world;	/* EPROTO: the world size it gave */
	__u32 other_addr;	/* EADDRINUSE to a claimant: the other one's IPv4 */
	__u16 other_port;	/* and port, both network order; 0 = none */
	__u16 reserved;
} __attribute__((packed));

/* A rank's arguments to a collective. */
struct sgc_wire_args {
	__u64 count;		/* elements; ~0 = not known */
	__u32 nchunks;		/* datagrams the count takes; 0 = not known */
	__u16 root;
	__u8 coll;		/* enum sgc_coll_kind */
	__u8 dtype;		/* enum sgc_dtype */
	__u8 op;		/* enum sgc_op */
	__u8 pad[7];		/* 0 */
} __attribute__((packed));

/* The body of an ABORT for SGC_EMISMATCH: rank @rank called the
 * collective with @odd, rank 0 with @ref. */
struct sgc_mismatch {
	__u16 rank;
	__u16 pad[3];		/* 0 */
	struct sgc_wire_args odd;
	struct sgc_wire_args ref;
} __attribute__((packed));

struct sgc_roster_ent {
	__u32 addr;		/* IPv4, network byte order */
	__u16 port;		/* network byte order */
	__u16 rank;
} __attribute__((packed));

#define SGC_HDR_SIZE 48

#ifdef __cplusplus
static_assert(sizeof(struct sgc_hdr) == SGC_HDR_SIZE, "sgc_hdr size");

#else
_Static_assert(sizeof(struct sgc_hdr) == SGC_HDR_SIZE, "sgc_hdr size");
_Static_assert(sizeof(struct sgc_welcome) == 16, "sgc_welcome size");
_Static_assert(sizeof(struct sgc_roster_ent) == 8, "sgc_roster_ent size");
_Static_assert(sizeof(struct sgc_join_abort) == 24, "sgc_join_abort size");
_Static_assert(sizeof(struct sgc_mismatch) == 56, "sgc_mismatch size");
#endif

/*
 * The job key's MAC (SGC_KEY).  With a key every datagram sets SGC_F_MAC
 * and ends in an 8-byte tag after its body; the tag covers the header, as
 * sent, and the body.  Without a key no datagram carries one.
 *
 * Keys, derived from the 16-byte job key K with SipHash-2-4 (user space
 * only; the eBPF programs get the derived words):
 *   fin = SipHash(K, 0x6e69662d636773ULL) | SipHash(K, 0x6e69662d636773ULL + 1)
 *   nh[2i], nh[2i+1] = low and high half of SipHash(K, i), i = 0, 1, ...
 * Message: the header's 12 little-endian 32-bit words m[0..11], then the
 * body's, zero-padded to a multiple of 4 words.  For each pair of words
 * (32-bit additions wrap, 64-bit products and sums wrap):
 *   a += (m[j] + nh[j]) * (m[j+1] + nh[j+1])
 *   b += (m[j] + nh[j+4]) * (m[j+1] + nh[j+5])
 * (NH, as in UMAC, twice with the key shifted by 4 words: a forgery that
 * gives both sums of a message already seen has probability about 2^-64),
 * and tag = SipHash(fin, a | b | header + body bytes), three 64-bit words.
 * NH costs two multiplies per 8 bytes, which keeps the check in
 * gather_prog to a fraction of the reduction's cost; SipHash over the
 * whole datagram would cost several times the reduction.
 */
#define SGC_MAC_TAG_SIZE	8
/* Key words for 256 16-byte blocks after the header (and the shift):
 * more than the largest body needs, so that the eBPF programs may index
 * them with a block number masked to 8 bits. */
#define SGC_MAC_NH_WORDS	(SGC_HDR_SIZE / 4 + 256 * 4 + 8)
#define SGC_MAC_FIN_LABEL	0x6e69662d636773ULL	/* "sgc-fin" */

/* One SipHash round on the 64-bit state v0..v3 (both implementations). */
#define SGC_ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SGC_SIPROUND(v0, v1, v2, v3)                                                              \
	do {                                                                                       \
		v0 += v1; v1 = SGC_ROTL(v1, 13); v1 ^= v0; v0 = SGC_ROTL(v0, 32);                  \
		v2 += v3; v3 = SGC_ROTL(v3, 16); v3 ^= v2;                                         \
		v0 += v3; v3 = SGC_ROTL(v3, 21); v3 ^= v0;                                         \
		v2 += v1; v1 = SGC_ROTL(v1, 17); v1 ^= v2; v2 = SGC_ROTL(v2, 32);                  \
	} while (0)

/* What the eBPF programs and user space both hold of a job key. */
struct sgc_mac_key {
	__u64 fin[2];			/* SipHash key of the last step */
	__u32 nh[SGC_MAC_NH_WORDS];	/* NH key words */
};

/* Bytes per element of dtype (enum sgc_dtype order: i8 u8 i16 u16 ...). */
static inline __u32 sgc_wire_dtype_size(__u32 dtype)
{
	return 1u << (dtype >> 1);
}

#endif /* SGCOLL_WIRE_H */
