/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Driving the engine (progress.c): one round of I/O and timers, and the
 * receive dispatch. */
#ifndef SGC_PROGRESS_H
#define SGC_PROGRESS_H

#include "comm.h"

/* Every datagram io.c accepts: dispatch through c->rxt. */
SGC_HIDDEN void engine_rx(struct sgc_comm *c, const struct sgc_rx *rx);
/* Run timers and send what is due; returns the earliest next deadline. */
SGC_HIDDEN uint64_t engine_timers(struct sgc_comm *c, uint64_t now);
/* One round of I/O and timers, waiting at most until @until. */
SGC_HIDDEN int engine_progress(struct sgc_comm *c, uint64_t until);
/* One round without waiting, its sends flushed: another communicator
 * driven while this thread waits on one (io.side, kshard.c). */
SGC_HIDDEN int engine_round(struct sgc_comm *c);

#endif /* SGC_PROGRESS_H */
