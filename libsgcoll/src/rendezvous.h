/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Joining a job (rendezvous.c): HELLO, WELCOME, READY. */
#ifndef SGC_RENDEZVOUS_H
#define SGC_RENDEZVOUS_H

#include "comm.h"

SGC_HIDDEN uint64_t random_job_id(void);
/* Wait for every worker's HELLO, attach the eBPF path, welcome them. */
SGC_HIDDEN int rdv_coordinator(struct sgc_comm *c);
/* Say HELLO until the whole WELCOME is here. */
SGC_HIDDEN int rdv_worker(struct sgc_comm *c);
/* Receive handler before joining, and for HELLO and WELCOME after. */
SGC_HIDDEN void rdv_handle(struct sgc_comm *c, const struct sgc_rx *rx);

#endif /* SGC_RENDEZVOUS_H */
