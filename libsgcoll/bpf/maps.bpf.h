/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * State shared by the programs of sgc.bpf.c: the load-time configuration,
 * the window user space moves through the mmap'ed .bss, and the maps.
 *
 * The maps a reduction program needs (slots, stats, events, jobs) are
 * defined by the public sgcoll/agg.bpf.h, so that a user's custom
 * reduction object declares exactly the same ones and the loader can hand
 * it ours with bpf_map__reuse_fd().  Their types come from sgcoll/abi.h,
 * which sgc_common.h includes too.
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
volatile __u32 rank_hi[SGC_MAX_WORLD];
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

/* Word loops over slot and record bodies. */
_Static_assert(SGC_MAX_BODY % 8 == 0, "body is whole words");
_Static_assert(offsetof(struct sgc_bpf_slot, body) % 8 == 0, "slot body aligned");
_Static_assert(offsetof(struct sgc_agg_job, ev) % 8 == 0 &&
	       offsetof(struct sgc_bpf_event, body) % 8 == 0, "record body aligned");

#endif /* SGC_MAPS_BPF_H */
