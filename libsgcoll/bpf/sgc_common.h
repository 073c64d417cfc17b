/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The contract between the eBPF programs (libsgcoll/bpf/sgc.bpf.c) and
 * their loader (libsgcoll/src/path_bpf.c): what sgcoll/abi.h defines for
 * custom reductions too (slots, the ring-buffer record, XDP metadata,
 * counters), and here what only the two of them know: the load-time
 * configuration, the window, the rank table.  Kernel types only.
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

#include <linux/types.h>

#include "sgcoll/abi.h"

/* notify_prog clones a result to at most this many workers; user space
 * sends the rest in paced SGC_F_FANOUT windows. */
#define SGC_BPF_FANOUT_MAX	256

/* IPv4 frag_off bits (host order): more fragments, and the offset. */
#define SGC_IP_MF		0x2000
#define SGC_IP_OFFSET		0x1fff

/* Coordinators one interface holds at once: the slots of dispatch.bpf.c. */
#define SGC_XDP_SLOTS		8

/* dispatch.bpf.c's `jobs`: a coordinator's address (network order) ... */
struct sgc_xdp_job_key {
	__u32 ip;
	__u16 port;
	__u16 pad;
};

/* ... and its slot in `gather_slots`, with who holds it, so that a
 * joining coordinator can free the slots of processes that died. */
struct sgc_xdp_job {
	__u32 slot;
	__u32 pid;
	__u64 start;	/* the holder's start time (/proc/PID/stat field 22) */
	__u32 prog_id;	/* its gather_prog, for sgc-bpfstat */
	__u32 pad;
};

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
	/* Random per load, never 0: notify_prog writes it into hdr.aux of
	 * each result it hands to the coordinator's socket, which is how user
	 * space tells those from an SGC_F_KERNEL RESULT off the wire. */
	__u32 result_token;
	/* notify_prog's clones per CPU at once, refilled at that many per
	 * millisecond (sgc.bpf.c); 0: unpaced. */
	__u32 fan_burst;
	/* Which kinds of collective the kernel reduces, bit 1 << SGC_COLL_*;
	 * the others' contributions go up to user space (sgc_bpf_in_kernel()). */
	__u32 kernel_colls;
};

/* Every kind the kernel can reduce (SGC_ACCEL=ebpf). */
#define SGC_BPF_KERNEL_ALL						\
	(1u << SGC_COLL_ALLREDUCE | 1u << SGC_COLL_REDUCE | 1u << SGC_COLL_BCAST |	\
	 1u << SGC_COLL_BARRIER | 1u << SGC_COLL_QUERY)

/* Whether the kernel reduces collectives of kind @coll: gather_prog and the
 * coordinator ask the same question of the same word. */
static inline int sgc_bpf_in_kernel(__u32 kernel_colls, __u32 coll)
{
	return coll < 32 && (kernel_colls >> coll & 1);
}

/* SGC_BPF_CFG_RINGBUF and SGC_BPF_CFG_ALLGATHER: sgcoll/abi.h */
#define SGC_BPF_CFG_KEEP	0x0004	/* pass CONTRIBs up unreduced (ALLOW_PK) */
#define SGC_BPF_CFG_MAC		0x0008	/* job key: datagrams carry a tag (mac_key map) */

/* Mutable state user space writes through the mmap'ed .bss, no syscall:
 * `volatile struct sgc_bpf_window win` in the BPF object. */
struct sgc_bpf_window {
	__u32 base;		/* oldest collective still open */
	/* Non-zero: so many collectives are open that notify_prog clones no
	 * result and user space sends each on (scatter_prog's clones, one
	 * send per result, each drained before the next).  Kernel clones
	 * win one collective at a time (no wake-up between result and
	 * workers); with many open, one NAPI poll completes tens of results
	 * and their clone bursts overflow the backlogs on the way. */
	__u32 fan_user;
	/* The query in progress, the only one whose answers are taken: its
	 * seq, policy and wanted answers in one word (sgc_bpf_query_word()),
	 * so that gather_prog never reads one query's seq with another's
	 * policy.  0 = none yet (a word with SGC_BPF_QUERY_VALID set). */
	__u64 query;
};

#define SGC_BPF_QUERY_VALID	(1ULL << 40)

/* The completion rule of query @seq comes from the query, never from an
 * answer: @policy and @want as the QUERY's header carries them. */
static inline __u64 sgc_bpf_query_word(__u32 seq, __u32 policy, __u32 want)
{
	return (__u64)seq | (__u64)(policy & 0xff) << 32 | SGC_BPF_QUERY_VALID |
	       (__u64)(want & 0xffff) << 48;
}

static inline __u32 sgc_bpf_query_seq(__u64 w)
{
	return (__u32)w;
}

static inline __u32 sgc_bpf_query_policy(__u64 w)
{
	return (__u32)(w >> 32) & 0xff;
}

static inline __u32 sgc_bpf_query_want(__u64 w)
{
	return (__u32)(w >> 48);
}

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

#endif /* SGC_COMMON_H */
