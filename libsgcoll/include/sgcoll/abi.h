/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * sgcoll/abi.h: the kernel/user ABI of libsgcoll's eBPF path.
 *
 * The one definition of what libsgcoll's BPF programs, its loader in user
 * space, and custom reductions written against <sgcoll/agg.bpf.h> must
 * agree on: the `slots` map value, the `events` ring-buffer record, the
 * XDP metadata, the `stats` counters, and where each reduction program
 * sits in reduce_progs.  Fixed-width kernel types only; compiles as C in
 * user space and with clang -target bpf.
 */
#ifndef SGCOLL_ABI_H
#define SGCOLL_ABI_H

#include <linux/bpf.h>
#include <linux/types.h>

#include <sgcoll/wire.h>

/* Slots: (seq % 128) * 32 + chunk % 32 for collectives; queries after. */
#define SGC_BPF_RING_SEQ	128	/* collectives in flight (SGC_RING) */
#define SGC_BPF_CHUNK_SLOTS	32	/* chunks of one collective at once */
#define SGC_BPF_COLL_SLOTS	(SGC_BPF_RING_SEQ * SGC_BPF_CHUNK_SLOTS)
#define SGC_BPF_QUERY_SEQ	4
#define SGC_BPF_SLOTS		(SGC_BPF_COLL_SLOTS + SGC_BPF_QUERY_SEQ * SGC_BPF_CHUNK_SLOTS)
#define SGC_BPF_SEEN_WORDS	(SGC_MAX_WORLD / 64)

/*
 * reduce_progs, the program array gather_prog tail-calls: the built-in
 * reduction of each (dtype, op) (enum sgc_dtype x enum sgc_op), then one
 * entry for the op SGC_OP_CUSTOM (SGC_CUSTOM), whatever the dtype: the
 * application's program.  SGC_BPF_REDUCE_INDEX is a constant expression
 * when its arguments are (op is evaluated twice).
 */
#define SGC_BPF_NDTYPES		8	/* SGC_INT8 .. SGC_UINT64 */
#define SGC_BPF_NOPS		7	/* SGC_SUM .. SGC_BXOR */
#define SGC_OP_CUSTOM		7	/* SGC_CUSTOM */
#define SGC_BPF_CUSTOM_INDEX	(SGC_BPF_NDTYPES * SGC_BPF_NOPS)
#define SGC_BPF_REDUCE_INDEX(dtype, op)						\
	((op) == SGC_OP_CUSTOM ? SGC_BPF_CUSTOM_INDEX : (dtype) * SGC_BPF_NOPS + (op))
#define SGC_BPF_NVARIANTS	(SGC_BPF_CUSTOM_INDEX + 1)

/* How results leave the kernel: flags of the load-time configuration,
 * which gather_prog passes on to the reduction programs. */
#define SGC_BPF_CFG_RINGBUF	0x0001	/* deliver results to the ring buffer */
#define SGC_BPF_CFG_ALLGATHER	0x0002	/* notify_prog re-broadcasts results */

enum sgc_slot_state {
	SGC_SLOT_FREE = 0,
	SGC_SLOT_OPEN = 1,	/* collecting contributions */
	SGC_SLOT_DONE = 2,	/* complete; later datagrams for it are late */
};

/* The `slots` map: array [SGC_BPF_SLOTS]. */
struct sgc_bpf_slot {
	struct bpf_spin_lock lock;
	__u32 seq;		/* tag: (coll, seq, chunk) */
	__u32 chunk;
	__u8 coll;
	__u8 dtype;
	__u8 op;
	__u8 state;		/* enum sgc_slot_state */
	__u16 nseen;		/* contributions reduced */
	__u16 need;		/* contributions that complete the chunk */
	__u16 count;		/* elements in this chunk */
	__u16 arg;		/* root, or wait_n for queries */
	__u32 gen;		/* bumped each time the slot is taken */
	__u32 total;		/* hdr.total: the vector's elements, mod 2^32 */
	__u64 seen[SGC_BPF_SEEN_WORDS];	/* ranks reduced, bit per rank */
	__u8 body[SGC_MAX_BODY];	/* the reduction so far */
};

/* total took the hole before seen: the layout stays that of programs
 * built before it. */
_Static_assert(__builtin_offsetof(struct sgc_bpf_slot, seen) == 32, "slot layout");

/* XDP metadata in front of a datagram that completed a slot. */
#define SGC_BPF_META_MAGIC	0x4b434753	/* "SGCK" */
struct sgc_bpf_meta {
	__u32 magic;
	__u32 slot;
};

/* A result delivered through the `events` ring buffer. */
struct sgc_bpf_event {
	struct sgc_hdr hdr;	/* RESULT header, SGC_F_KERNEL set */
	__u32 slot;
	__u16 nseen;
	__u16 reserved;
	__u64 seen[SGC_BPF_SEEN_WORDS];	/* who is in the result */
	__u8 body[SGC_MAX_BODY];	/* hdr.count elements */
};

/* Per-CPU counters (`stats` map), one per reason. */
enum sgc_bpf_stat {
	SGC_ST_PASS_FOREIGN,	/* not for the coordinator's port: untouched */
	SGC_ST_PASS_CONTROL,	/* HELLO, NACK, ACK, BYE, READY: to user space */
	SGC_ST_PASS_USER,	/* CONTRIB user space reduces (keep mode, ...) */
	SGC_ST_DROP_MALFORMED,	/* short, bad magic/version/type, bad lengths */
	SGC_ST_DROP_JOB,	/* another job's id */
	SGC_ST_DROP_RANK,	/* rank out of range */
	SGC_ST_DROP_SOURCE,	/* sender is not the registered address */
	SGC_ST_DROP_FIELD,	/* coll/dtype/op/chunk/count out of range, forged RESULT */
	SGC_ST_DROP_WINDOW,	/* sequence outside the window (replay, far future) */
	SGC_ST_DROP_STALE,	/* older than the slot's current tag */
	SGC_ST_DROP_LATE,	/* slot already complete */
	SGC_ST_DROP_DUP,	/* (collective, chunk, rank) already reduced */
	SGC_ST_DROP_MISMATCH,	/* a query's answer whose policy, dtype, op or
				 * count differ from the query's or slot's */
	SGC_ST_REDUCED,		/* contributions reduced */
	SGC_ST_COMPLETED,	/* chunks completed */
	SGC_ST_RINGBUF_FULL,	/* result could not be queued */
	SGC_ST_FANOUT_CLONES,	/* clones sent by scatter/notify */
	SGC_ST_FANOUT_ERR,	/* clone_redirect failures */
	SGC_ST_DELIVERED,	/* results delivered to the coordinator */
	/* Appended, so that the counters above keep their indices. */
	SGC_ST_DROP_IP,		/* for the coordinator's port, but an IP fragment
				 * or with IP options: never parsed */
	SGC_ST_DROP_BUSY,	/* slot held by an open chunk of a collective
				 * still in the window: not taken over */
	SGC_ST_PASS_MISMATCH,	/* a collective's contribution whose kind,
				 * dtype, op, root or element count (the
				 * chunk's, or the vector's: total) differ
				 * from its slot's: to user space, which fails
				 * the collective naming the ranks */
	SGC_ST_DROP_MAC,	/* job key set: a contribution whose tag is
				 * missing or wrong (or a tag without a key) */
	SGC_ST_FANOUT_PACED,	/* result copies notify_prog left to user space
				 * for want of its per-CPU clone budget, or
				 * because many collectives were open */
	SGC_ST_MAX
};

#endif /* SGCOLL_ABI_H */
