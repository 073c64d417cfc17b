/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The sharded allreduce with each owner reducing its shard on its own
 * eBPF path (kshard.c).
 *
 * The vector is cut into one shard per rank, as mesh.c cuts it.  Shard r
 * is a star allreduce in a group of every rank whose coordinator is rank
 * r: the others send it their part of the shard, its gather_prog reduces
 * what comes on its own interface, and its notify_prog clones the reduced
 * shard to every rank.  So every rank, not only rank 0, loads and attaches
 * the programs (on an interface several ranks or jobs share, through the
 * XDP dispatcher and tcx's multi-program links), and every shard has the
 * star's loss recovery, duplicate suppression, pacing and mismatch checks.
 * Shard 0's group is the communicator itself.
 *
 * It is taken with SGC_ALGO=shard-kernel when some rank of the job asked
 * for SGC_ACCEL=ebpf (a one-element allreduce at the first sharded
 * allreduce tells every rank, so that all take the same algorithm);
 * otherwise mesh.c reduces in user space, which was 5-20x faster on
 * veth here (README, Limits), and which SGC_ALGO=auto and shard take.  A group whose owner cannot take the eBPF
 * path (SGC_ACCEL=off or auto there, a rank of the group on the owner's
 * own host, the interface's dispatcher slots full) reduces in that
 * owner's user space: a mixed job works.
 *
 * The groups are made at that first call, world - 1 communicators per
 * rank, each with its own socket; each owner loads its programs once, all
 * owners at the same time, and the groups join one after the other in the
 * same order on every rank.  Every wait for a sharded allreduce drives all
 * of them, and a wait on the communicator alone drives them too (io.side):
 * an owner whose shard is done must still answer a rank that lost its
 * result.
 */
#ifndef SGC_KSHARD_H
#define SGC_KSHARD_H

#include <stddef.h>

#include "sgc_internal.h"

struct sgc_comm;
struct sgc_request;

enum kshard_state {
	KSHARD_UNKNOWN,		/* no sharded allreduce yet */
	KSHARD_MESH,		/* no rank asked for the eBPF path: mesh.c */
	KSHARD_ON,		/* the groups are up */
	KSHARD_FAILED,		/* they could not be set up: every call fails */
};

struct sgc_kshard {
	enum kshard_state state;
	int err;
	char why[400];
	/* [world]: the group whose rank 0 is rank r (its rank k is rank
	 * (r + k) % world here); [0] is NULL, the communicator itself. */
	struct sgc_comm **groups;
	uint64_t owned_in_kernel;	/* shards this rank reduced on its eBPF path */
	/* For comm.c, which kshard.c calls: finalize the groups (before the
	 * communicator's own goodbye), and add their counters to a struct
	 * sgc_stats. */
	void (*close)(struct sgc_comm *c);
	void (*stats)(const struct sgc_comm *c, void *st);
};

/* 1: the sharded allreduce of @c goes through the groups; 0: through
 * mesh.c; < 0: the groups could not be set up (a collective step at the
 * first call on every rank). */
SGC_HIDDEN int kshard_wanted(struct sgc_comm *c);
/* Post the shards of an allreduce; @req finishes when every shard has. */
SGC_HIDDEN int kshard_post(struct sgc_comm *c, const void *sendbuf, void *recvbuf, size_t count,
			   enum sgc_dtype dt, enum sgc_op op, struct sgc_request *req);
#endif /* SGC_KSHARD_H */
