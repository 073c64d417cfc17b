/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* A worker's side of a collective (worker.c). */
#ifndef SGC_WORKER_H
#define SGC_WORKER_H

#include "coll.h"

/* Fill @t with a worker's receive handlers. */
SGC_HIDDEN void worker_rx_table(struct sgc_rx_table *t);
/* This rank posted @co: copy staged results, push the first chunks. */
SGC_HIDDEN void worker_start(struct sgc_comm *c, struct sgc_coll *co);
/* Deadline and NACK check of @co at @now. */
SGC_HIDDEN void worker_timer(struct sgc_comm *c, struct sgc_coll *co, uint64_t now);
/* How long a worker waits for a result before it NACKs. */
SGC_HIDDEN uint64_t worker_rto(const struct sgc_comm *c, const struct sgc_coll *co);
/* Move the watermark past finished collectives; report it now and then. */
SGC_HIDDEN void worker_advance(struct sgc_comm *c);

#endif /* SGC_WORKER_H */
