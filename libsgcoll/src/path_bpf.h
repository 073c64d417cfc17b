/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The coordinator's eBPF path (path_bpf.c): loading and attaching the
 * programs, rank 0's own contribution through BPF_PROG_RUN, the kernel's
 * slots and watermarks, and the ring buffer of results.  Results go up
 * through the callback the communicator registers (c->on_kernel_result).
 */
#ifndef SGC_PATH_BPF_H
#define SGC_PATH_BPF_H

#include <linux/types.h>

#include "sgc_internal.h"

struct sgc_comm;
struct sgc_pkt;
struct sgc_bpf;
struct sgc_bpf_slot;

/* A result the kernel reduced; @seen: the ranks in it, or NULL. */
typedef void (*sgc_kernel_result_fn)(struct sgc_comm *c, const struct sgc_hdr *h,
				     const void *body, const __u64 *seen);

/* Load the programs (before the socket is armed), then attach once the
 * rendezvous knows every rank; 0 = active, else the reason. */
SGC_HIDDEN int bpf_path_load(struct sgc_comm *c);
SGC_HIDDEN int bpf_path_attach(struct sgc_comm *c);
/* The roster changed after the attach (a rank's claim changed hands
 * during the rendezvous): write it to the ranks map again. */
SGC_HIDDEN int bpf_path_roster(struct sgc_comm *c);
/* Before a collective the kernel reduces: attach gather_prog if it waits
 * for one (SGC_ACCEL=auto); if that fails, close the path and go on in
 * user space, saying why in one log line. */
SGC_HIDDEN void bpf_path_engage(struct sgc_comm *c);
SGC_HIDDEN void bpf_path_close(struct sgc_comm *c);
/* Reduce rank 0's chunk in the kernel (BPF_PROG_RUN of gather_prog).
 * Returns 1 with *result set when it completed the chunk, 2 when the
 * kernel refused it because the slot holds contributions of other
 * arguments, else 0. */
SGC_HIDDEN int bpf_path_contribute(struct sgc_comm *c, const struct sgc_hdr *h, const void *body,
				   struct sgc_pkt **result);
/* Read the slot of (coll, seq, chunk) into the path's own copy, valid
 * until the next call; NULL if it holds another tag or cannot be read. */
SGC_HIDDEN const struct sgc_bpf_slot *bpf_path_slot(struct sgc_comm *c, uint8_t coll,
						    uint32_t seq, uint32_t chunk);
/* The same for chunk @chunk of collective @seq (not a query) whatever its
 * kind: NULL if the slot holds another (seq, chunk) or cannot be read. */
SGC_HIDDEN const struct sgc_bpf_slot *bpf_path_slot_at(struct sgc_comm *c, uint32_t seq,
						       uint32_t chunk);
/* Publish the collective window to the kernel (no syscall): it takes
 * contributions to collectives @base .. @base + SGC_BPF_RING_SEQ - 1. */
SGC_HIDDEN void bpf_path_window(struct sgc_comm *c, uint32_t base);
/* Publish the query in progress: the kernel takes answers to it alone,
 * and completes it by its @policy and @want, never by an answer's. */
SGC_HIDDEN void bpf_path_query(struct sgc_comm *c, uint32_t seq, uint8_t policy, uint16_t want);
/* Rank @r's watermark from its last contribution the kernel saw (no
 * syscall); 0 before any. */
SGC_HIDDEN uint32_t bpf_path_rank_wm(const struct sgc_comm *c, int r);
/* The latest collective rank @r sent a contribution for that the kernel
 * took (0 before any). */
SGC_HIDDEN uint32_t bpf_path_rank_hi(const struct sgc_comm *c, int r);
/* When the kernel last took a contribution to collective @seq
 * (CLOCK_MONOTONIC ns, no syscall); 0 if none since it entered the window. */
SGC_HIDDEN uint64_t bpf_path_coll_rx(const struct sgc_comm *c, uint32_t seq);
/* notify_prog sends results to the workers itself. */
SGC_HIDDEN bool bpf_path_kernel_fanout(const struct sgc_comm *c);
/* Keep-responses mode: the kernel passes contributions to user space. */
SGC_HIDDEN bool bpf_path_keep(const struct sgc_comm *c);
/* The kernel reduces collectives of this kind (SGC_COLL_*): the eBPF path
 * is on, keep-responses off, and the kind is one SGC_ACCEL gives it. */
SGC_HIDDEN bool bpf_path_in_kernel(const struct sgc_comm *c, unsigned int kind);
SGC_HIDDEN bool bpf_path_has_custom(const struct sgc_comm *c);

#endif /* SGC_PATH_BPF_H */
