/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Pacing what workers send to the coordinator (pull.c): past their push
 * credit, workers send chunks only when PULLed, and the coordinator keeps
 * the chunks asked for and not yet in within a budget sized to its
 * receive side.
 */
#ifndef SGC_PULL_H
#define SGC_PULL_H

#include "sgc_internal.h"

struct sgc_comm;
struct sgc_pkt;

/* Chunks the workers may have in flight towards the coordinator, summed
 * over workers and collectives (see pull_pacing()): the eBPF path's, and
 * the most the user-space path's may be. */
#define SGC_PULL_BUDGET		192
#define SGC_PULL_BUDGET_MAX	768

/* Per communicator (coordinator). */
struct sgc_pace {
	uint16_t push_credit;	/* chunks a worker sends unasked */
	int inflight;		/* chunks asked for, not yet in */
	int budget;		/* most chunks in flight towards us */
};

/* Per collective or query. */
struct sgc_pull {
	uint32_t *to;		/* per rank: chunks [0, to) asked for (or pushed) */
	uint32_t *gap;		/* per rank: gaps below this were asked again */
	uint64_t *asked;	/* per rank: last PULL to it, or last chunk from it
				 * (eBPF path: pull_stalled()) */
	uint32_t out;		/* chunks asked for and not yet in */
	int next_rank;		/* where the next round starts (round robin) */
	int budget;		/* most in flight (pace.inflight) when asking */
};

/* Which ranks may be asked. */
typedef bool (*pull_elig_fn)(const void *obj, int rank);

/* Coordinator: the pace for its path (eBPF: the XDP ring's budget). */
SGC_HIDDEN void pull_pacing(struct sgc_comm *c, bool kernel);
/* Allocate per-rank state for @nchunks chunks; 0 or -ENOMEM. */
SGC_HIDDEN int pull_init(struct sgc_comm *c, struct sgc_pull *ps, uint32_t nchunks, int budget);
SGC_HIDDEN void pull_free(struct sgc_pull *ps);
/* Ask eligible ranks for their next chunks below @limit, within the
 * global budget.  @proto carries seq, coll, nchunks, dtype, op, arg. */
SGC_HIDDEN void pull_more(struct sgc_comm *c, struct sgc_pull *ps, const struct sgc_hdr *proto,
			  uint32_t limit, pull_elig_fn elig, const void *obj);
/* The same for answers of one chunk on the eBPF path: the next ranks in
 * line are asked for chunk 0 by SGC_F_FANOUT datagrams that scatter_prog
 * clones, a handful of sends for a whole round.  With @ask (a QUERY
 * carrying SGC_F_ASK) that datagram goes instead of a PULL. */
SGC_HIDDEN void pull_more_cloned(struct sgc_comm *c, struct sgc_pull *ps,
				 const struct sgc_hdr *proto, pull_elig_fn elig, const void *obj,
				 struct sgc_pkt *ask);
/* After a quiet period: ask again for every chunk below the pull marks
 * that @seen (nchunks x world bits) does not have. */
SGC_HIDDEN void pull_again(struct sgc_comm *c, struct sgc_pull *ps, const struct sgc_hdr *proto,
			   const uint8_t *seen, pull_elig_fn elig, const void *obj);
/* Chunk @chunk of rank @r is in (not a duplicate).  Workers answer a
 * PULL in chunk order, so missing chunks below it from the same rank
 * were lost: ask for them again at once (fast retransmit).  Returns
 * true when it asked again. */
SGC_HIDDEN bool pull_got(struct sgc_comm *c, struct sgc_pull *ps, const struct sgc_hdr *proto,
			 const uint8_t *seen, int r, uint32_t chunk);
/* Ask rank @r again, once per run, for the chunks in [@lo, @hi) that
 * @seen lacks, outside the budget (the first requests hold their places
 * in it).  Returns true when it asked. */
SGC_HIDDEN bool pull_missing(struct sgc_comm *c, struct sgc_pull *ps, const struct sgc_hdr *proto,
			     const uint8_t *seen, int r, uint32_t lo, uint32_t hi);
/* The gap half of pull_got(): rank @r's chunk @chunk is known to be in
 * (the eBPF path learns it from the kernel's slots, whose budget flows
 * back there); ask once for the missing chunks below it. */
SGC_HIDDEN bool pull_gaps(struct sgc_comm *c, struct sgc_pull *ps, const struct sgc_hdr *proto,
			  const uint8_t *seen, int r, uint32_t chunk);
/* eBPF path: rank @r, which has sent something, sent nothing for @wait
 * since it was last asked: a PULL was lost.  Ask again for what [@lo, to)
 * lacks, once per @wait.  Returns true when it asked. */
SGC_HIDDEN bool pull_stalled(struct sgc_comm *c, struct sgc_pull *ps, const struct sgc_hdr *proto,
			     const uint8_t *seen, int r, uint32_t lo, uint64_t wait);
SGC_HIDDEN void pull_reset(struct sgc_comm *c, struct sgc_pull *ps);
/* Up to @n of @ps's outstanding PULLs are answered or will never be: give
 * their share of the budget back. */
SGC_HIDDEN void pull_release(struct sgc_comm *c, struct sgc_pull *ps, uint32_t n);

#endif /* SGC_PULL_H */
