/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * State shared by the programs of sgc.bpf.c: the load-time configuration,
 * the window user space moves through the mmap'ed .bss, and the maps.
 *
 * The maps a reduction program needs (slots, stats, events, jobs) are
 * defined by the public sgcoll/agg.bpf.h, so that a user's custom
 * reduction object declares exactly the same ones and the loader can hand
 * it ours with bpf_map__reuse_fd().  That header mirrors the contract's
 * types; the asserts below keep the two in step.
 */
#ifndef SGC_MAPS_BPF_H
#define SGC_MAPS_BPF_H

#include <stddef.h>

#include "sgc_common.h"
#include <sgcoll/agg.bpf.h>

/* Set by the loader through the skeleton's rodata before load. */
const volatile struct sgc_bpf_cfg cfg = {};
/* Written by user space through the skeleton's mmap'ed bss. */
volatile struct sgc_bpf_window win;
/* Written by gather_prog, read by user space (see sgc_common.h). */
volatile __u32 rank_wm[SGC_MAX_WORLD];
volatile struct sgc_bpf_activity coll_rx[SGC_BPF_RING_SEQ];
/*
 * Always 0, but read from the .bss it is a value the verifier does not
 * know.  The clone loops start their counters from it: counters that
 * start from a known 0 give bpf_loop's callback a new state on every
 * iteration (1, 2, 3 ...), and notify_prog then fails to verify ("the
 * sequence of 8193 jumps is too complex").
 */
volatile __u32 sgc_opaque_zero;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SGC_MAX_WORLD);
	__type(key, __u32);
	__type(value, struct sgc_bpf_rank);
} ranks SEC(".maps");

static __always_inline void sgc_count(enum sgc_bpf_stat st)
{
	sgc_agg_count(st, 1);
}

/* cfg is const volatile: read it through volatile (a memcpy that casts
 * the qualifier away lets clang fold the {} initialiser in). */
static __always_inline void sgc_coord_mac(__u8 *dst)
{
	int i;

#pragma unroll
	for (i = 0; i < 6; i++)
		dst[i] = cfg.coord_mac[i];
}

/* ---- the public mirror must be the contract, field for field ---- */
#define SGC_SAME_FIELD(a, b, f)							\
	_Static_assert(offsetof(struct a, f) == offsetof(struct b, f) &&	\
		       sizeof(((struct a *)0)->f) == sizeof(((struct b *)0)->f),	\
		       #a "." #f " differs from " #b)

_Static_assert(sizeof(struct sgc_agg_slot) == sizeof(struct sgc_bpf_slot), "slot size");
SGC_SAME_FIELD(sgc_agg_slot, sgc_bpf_slot, lock);
SGC_SAME_FIELD(sgc_agg_slot, sgc_bpf_slot, seq);
SGC_SAME_FIELD(sgc_agg_slot, sgc_bpf_slot, chunk);
SGC_SAME_FIELD(sgc_agg_slot, sgc_bpf_slot, coll);
SGC_SAME_FIELD(sgc_agg_slot, sgc_bpf_slot, dtype);
SGC_SAME_FIELD(sgc_agg_slot, sgc_bpf_slot, op);
SGC_SAME_FIELD(sgc_agg_slot, sgc_bpf_slot, state);
SGC_SAME_FIELD(sgc_agg_slot, sgc_bpf_slot, nseen);
SGC_SAME_FIELD(sgc_agg_slot, sgc_bpf_slot, need);
SGC_SAME_FIELD(sgc_agg_slot, sgc_bpf_slot, count);
SGC_SAME_FIELD(sgc_agg_slot, sgc_bpf_slot, arg);
SGC_SAME_FIELD(sgc_agg_slot, sgc_bpf_slot, gen);
SGC_SAME_FIELD(sgc_agg_slot, sgc_bpf_slot, seen);
SGC_SAME_FIELD(sgc_agg_slot, sgc_bpf_slot, body);

_Static_assert(sizeof(struct sgc_agg_event) == sizeof(struct sgc_bpf_event), "event size");
SGC_SAME_FIELD(sgc_agg_event, sgc_bpf_event, hdr);
SGC_SAME_FIELD(sgc_agg_event, sgc_bpf_event, slot);
SGC_SAME_FIELD(sgc_agg_event, sgc_bpf_event, nseen);
SGC_SAME_FIELD(sgc_agg_event, sgc_bpf_event, reserved);
SGC_SAME_FIELD(sgc_agg_event, sgc_bpf_event, seen);
SGC_SAME_FIELD(sgc_agg_event, sgc_bpf_event, body);

_Static_assert(sizeof(struct sgc_agg_meta) == sizeof(struct sgc_bpf_meta), "meta size");
SGC_SAME_FIELD(sgc_agg_meta, sgc_bpf_meta, magic);
SGC_SAME_FIELD(sgc_agg_meta, sgc_bpf_meta, slot);
_Static_assert(SGC_AGG_META_MAGIC == SGC_BPF_META_MAGIC, "meta magic");

_Static_assert(SGC_AGG_SLOTS == SGC_BPF_SLOTS, "slot count");
_Static_assert(SGC_AGG_SEEN_WORDS == SGC_BPF_SEEN_WORDS, "seen words");
_Static_assert(SGC_AGG_CUSTOM_OP == SGC_OP_CUSTOM, "custom op");
_Static_assert(SGC_AGG_CUSTOM_INDEX == SGC_BPF_NVARIANTS - 1, "custom index");
_Static_assert(SGC_AGG_DELIVER_RINGBUF == SGC_BPF_CFG_RINGBUF, "ringbuf flag");
_Static_assert(SGC_AGG_DELIVER_ALLGATHER == SGC_BPF_CFG_ALLGATHER, "allgather flag");
_Static_assert(SGC_AGG_FREE == SGC_SLOT_FREE && SGC_AGG_OPEN == SGC_SLOT_OPEN &&
	       SGC_AGG_DONE == SGC_SLOT_DONE, "slot states");
_Static_assert(SGC_AGG_ST_DROP_MALFORMED == SGC_ST_DROP_MALFORMED &&
	       SGC_AGG_ST_DROP_STALE == SGC_ST_DROP_STALE &&
	       SGC_AGG_ST_DROP_LATE == SGC_ST_DROP_LATE &&
	       SGC_AGG_ST_DROP_DUP == SGC_ST_DROP_DUP &&
	       SGC_AGG_ST_DROP_MISMATCH == SGC_ST_DROP_MISMATCH &&
	       SGC_AGG_ST_REDUCED == SGC_ST_REDUCED &&
	       SGC_AGG_ST_COMPLETED == SGC_ST_COMPLETED &&
	       SGC_AGG_ST_RINGBUF_FULL == SGC_ST_RINGBUF_FULL &&
	       SGC_AGG_ST_FANOUT_ERR == SGC_ST_FANOUT_ERR &&
	       SGC_AGG_ST_DELIVERED == SGC_ST_DELIVERED &&
	       SGC_AGG_ST_MAX == SGC_ST_MAX, "stat indices");
/* Word loops over slot and record bodies. */
_Static_assert(SGC_MAX_BODY % 8 == 0, "body is whole words");
_Static_assert(offsetof(struct sgc_agg_slot, body) % 8 == 0, "slot body aligned");
_Static_assert(offsetof(struct sgc_agg_job, ev) % 8 == 0 &&
	       offsetof(struct sgc_agg_event, body) % 8 == 0, "record body aligned");

#endif /* SGC_MAPS_BPF_H */
