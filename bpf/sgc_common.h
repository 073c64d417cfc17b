/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The contract between the eBPF programs (bpf/sgc.bpf.c) and their loader
 * (libsgcoll/src/path_bpf.c): load-time configuration, map values, the
 * ring-buffer record, XDP metadata and the counters.  Kernel types only.
 *
 * Flow on the coordinator's interface:
 *   gather_prog (XDP)      reduces CONTRIB chunks into slots, drops them;
 *                          the datagram that completes a chunk carries the
 *                          result on (metadata mark) or goes to the ring.
 *   notify_prog (TC in)    clones a completed result to the receivers and
 *                          delivers it to the coordinator.
 *   scatter_prog (TC out)  clones an SGC_F_FANOUT datagram from the
 *                          coordinator to ranks [fan_first, fan_end).
 * The coordinator adds its own contribution by running gather_prog on a
 * crafted datagram with BPF_PROG_RUN (same code, same slots).
 */
#ifndef SGC_COMMON_H
#define SGC_COMMON_H

#include <linux/bpf.h>
#include <linux/types.h>

#include "sgcoll/wire.h"

/* Slots: (seq % 128) * 32 + chunk % 32 for collectives; queries after. */
#define SGC_BPF_RING_SEQ	128	/* collectives in flight (SGC_RING) */
#define SGC_BPF_CHUNK_SLOTS	32	/* chunks of one collective at once */
#define SGC_BPF_COLL_SLOTS	(SGC_BPF_RING_SEQ * SGC_BPF_CHUNK_SLOTS)
#define SGC_BPF_QUERY_SEQ	4
#define SGC_BPF_SLOTS		(SGC_BPF_COLL_SLOTS + SGC_BPF_QUERY_SEQ * SGC_BPF_CHUNK_SLOTS)
#define SGC_BPF_SEEN_WORDS	(SGC_MAX_WORLD / 64)
/* notify_prog clones a result to at most this many workers; user space
 * sends the rest in paced SGC_F_FANOUT windows. */
#define SGC_BPF_FANOUT_MAX	256
/* Custom reduction: the op value that selects the user's program. */
#define SGC_OP_CUSTOM		7
#define SGC_BPF_NVARIANTS	(8 * 7 + 1)	/* dtype * 7 + op, then custom */

static inline __u32 sgc_slot_index(__u32 coll, __u32 seq, __u32 chunk)
{
	if (coll == SGC_COLL_QUERY)
		return SGC_BPF_COLL_SLOTS +
		       (seq % SGC_BPF_QUERY_SEQ) * SGC_BPF_CHUNK_SLOTS +
		       chunk % SGC_BPF_CHUNK_SLOTS;
	return (seq % SGC_BPF_RING_SEQ) * SGC_BPF_CHUNK_SLOTS + chunk % SGC_BPF_CHUNK_SLOTS;
}

/* Load-time configuration: `const volatile struct sgc_bpf_cfg cfg` in the
 * BPF object, written through the skeleton's rodata before load. */
struct sgc_bpf_cfg {
	__u64 job_id;
	__u32 coord_ip;		/* network byte order */
	__u16 coord_port;	/* network byte order */
	__u16 world;		/* ranks including the coordinator */
	__u32 chunk_bytes;	/* body bytes of a full chunk */
	__u32 ifindex;		/* the coordinator's interface */
	__u8 coord_mac[6];
	__u16 flags;		/* SGC_BPF_CFG_* */
};

#define SGC_BPF_CFG_RINGBUF	0x0001	/* deliver results to the ring buffer */
#define SGC_BPF_CFG_ALLGATHER	0x0002	/* notify_prog re-broadcasts results */
#define SGC_BPF_CFG_KEEP	0x0004	/* pass CONTRIBs up unreduced (ALLOW_PK) */

/* Mutable state user space writes through the mmap'ed .bss, no syscall:
 * `volatile struct sgc_bpf_window win` in the BPF object. */
struct sgc_bpf_window {
	__u32 base;		/* oldest collective not retired */
	__u32 qbase;		/* oldest query in progress */
};

/*
 * Each worker's watermark as its last contribution carried it (hdr.aux),
 * recorded by gather_prog, which drops those datagrams before user space
 * sees them: `volatile __u32 rank_wm[SGC_MAX_WORLD]` in the mmap'ed
 * .bss.  The coordinator retires collectives, and so moves `win`, by it.
 */

/*
 * When the kernel last took a contribution to each collective in the
 * window: `volatile struct sgc_bpf_activity coll_rx[SGC_BPF_RING_SEQ]` in
 * the .bss, index seq % SGC_BPF_RING_SEQ.  The coordinator's quiet timer
 * reads it, so that a collective whose contributions the kernel is still
 * reducing is not taken for one that lost them.  gather_prog writes ns
 * before seq, and user space reads seq before ns.
 */
struct sgc_bpf_activity {
	__u64 ns;		/* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
	__u32 seq;
	__u32 pad;
};

/* The `ranks` map: array [SGC_MAX_WORLD], index = rank.  Rank 0 is the
 * coordinator itself (its own contribution comes through BPF_PROG_RUN). */
struct sgc_bpf_rank {
	__u32 ip;		/* network byte order; 0 = not registered */
	__u16 port;		/* network byte order */
	__u8 mac[6];		/* next-hop MAC for this rank */
};

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
	__u64 seen[SGC_BPF_SEEN_WORDS];	/* ranks reduced, bit per rank */
	__u8 body[SGC_MAX_BODY];	/* the reduction so far */
};

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
	SGC_ST_DROP_MISMATCH,	/* dtype/op/count differ from the slot's */
	SGC_ST_REDUCED,		/* contributions reduced */
	SGC_ST_COMPLETED,	/* chunks completed */
	SGC_ST_RINGBUF_FULL,	/* result could not be queued */
	SGC_ST_FANOUT_CLONES,	/* clones sent by scatter/notify */
	SGC_ST_FANOUT_ERR,	/* clone_redirect failures */
	SGC_ST_DELIVERED,	/* results delivered to the coordinator */
	SGC_ST_MAX
};

#endif /* SGC_COMMON_H */
