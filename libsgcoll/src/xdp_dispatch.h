/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Sharing an interface's XDP hook between eBPF-path coordinators
 * (xdp_dispatch.c): libsgcoll's dispatcher (bpf/dispatch.bpf.c) on the
 * interface, and one slot of it per coordinator, for its gather_prog.
 */
#ifndef SGC_XDP_DISPATCH_H
#define SGC_XDP_DISPATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "sgc_common.h"
#include "sgc_internal.h"

struct sgc_comm;
struct dispatch;

/* A coordinator's place in its interface's dispatcher. */
struct xdp_slot {
	int ifindex;
	struct dispatch *own;		/* the dispatcher we attached, if we did */
	int disp_fd;			/* the dispatcher on the interface, ... */
	int slots_fd, jobs_fd;		/* ... its maps, */
	int slot;			/* ... our slot there (-1: none), */
	struct sgc_xdp_job_key key;	/* ... and our key in its jobs */
	bool native;			/* attached in driver mode */
};

/* An empty slot for @ifindex, with our own dispatcher loaded (before the
 * socket is armed: a load fails with -EAGAIN while io_uring work is
 * pending for the task, which a flood of datagrams keeps it).  Leave it
 * with xdp_slot_leave() even when this fails. */
SGC_HIDDEN int xdp_slot_init(struct xdp_slot *x, int ifindex);

/* 0 when the interface has no XDP program or libsgcoll's dispatcher; else
 * -EBUSY naming the program that holds it (checked before loading). */
SGC_HIDDEN int xdp_slot_check(struct sgc_comm *c, int ifindex);

/* Put @gather_fd into a free slot of the interface's dispatcher,
 * attaching one first if needed; 0, or the reason (-EBUSY when all
 * SGC_XDP_SLOTS are taken). */
SGC_HIDDEN int xdp_slot_join(struct sgc_comm *c, struct xdp_slot *x, int gather_fd);

/* Free the slot (the last one out takes the dispatcher off) and whatever
 * @x holds; safe on an empty slot. */
SGC_HIDDEN void xdp_slot_leave(struct xdp_slot *x);

/* xdp_jobs.c, compiled into sgc-bpfstat too (it reads a coordinator's
 * counters through the dispatcher): */

/* The map called @name of the program @prog_fd: its fd, or -errno. */
SGC_HIDDEN int xdp_prog_map(int prog_fd, const char *name);

/* The entries of a dispatcher's `jobs` map, at most @max: their number. */
SGC_HIDDEN int xdp_jobs_list(int jobs_fd, struct sgc_xdp_job_key *keys, struct sgc_xdp_job *jobs,
			     int max);

/* Field 22 of /proc/@pid/stat, the process's start time; 0 if it is gone. */
SGC_HIDDEN uint64_t xdp_proc_start(uint32_t pid);

/* Is the process that holds @job's slot still running (its pid and start
 * time, so that a reused pid does not count)? */
SGC_HIDDEN bool xdp_job_alive(const struct sgc_xdp_job *job);

#endif /* SGC_XDP_DISPATCH_H */
