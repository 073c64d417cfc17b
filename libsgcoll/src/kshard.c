// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The sharded allreduce with each owner reducing on its own eBPF path:
 * one star allreduce per shard, in a group whose coordinator is the
 * shard's owner (kshard.h says why and when).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coll.h"
#include "comm.h"
#include "progress.h"
#include "request.h"

/* Each rank's verdict on its own groups, and the port of the one it owns. */
struct kshard_ready {
	int32_t err;
	int32_t port;
};

static struct sgc_comm *group_of(struct sgc_comm *c, int r)
{
	return r ? c->kshard->groups[r] : c;
}

static void groups_close(struct sgc_comm *c)
{
	struct sgc_kshard *k = c->kshard;
	int r, n;

	if (!k->groups)
		return;
	/* All at once: one after the other, a rank got to a group whose
	 * coordinator had left (comm_goodbye_all()). */
	for (n = 0, r = 1; r < c->world; r++)
		if (k->groups[r])
			k->groups[n++] = k->groups[r];
	comm_goodbye_all(k->groups, n);
	free(k->groups);
	k->groups = NULL;
}

static int setup_fail(struct sgc_comm *c, int err)
{
	struct sgc_kshard *k = c->kshard;

	groups_close(c);
	k->state = KSHARD_FAILED;
	k->err = err;
	snprintf(k->why, sizeof(k->why), "%s", sgc_last_error());
	return err;
}

/* io.side of the communicator once the groups are up: a call that waits
 * on it alone (a barrier after a sharded allreduce) still answers for
 * the groups, whose owners' results a slower rank may ask for again.
 * While they join, up to the one joining now (whose wait this is). */
static void parent_side(void *arg)
{
	struct sgc_comm *c = arg;
	int r;

	for (r = 1; r < c->world && !c->kshard->groups[r]->io.side; r++)
		engine_round(c->kshard->groups[r]);
}

/* io.side while a group joins: the communicator and the groups joined
 * before answer (a peer may ask again for what they last sent). */
static void groups_side(void *arg)
{
	engine_round(arg);
	parent_side(arg);
}

/*
 * Open every group (this rank's own as its coordinator, which loads the
 * programs: every owner at once), tell each other the owners' ports and
 * verdicts in one allgather, then join the groups in the same order on
 * every rank.
 */
static int groups_open(struct sgc_comm *c)
{
	struct sgc_kshard *k = c->kshard;
	struct kshard_ready mine = {}, *rd;
	char why[400] = "";
	int r, err, w = c->world;

	k->groups = calloc((size_t)w, sizeof(*k->groups));
	rd = calloc((size_t)w, sizeof(*rd));
	if (!k->groups || !rd) {
		free(rd);
		return setup_fail(c, sgc_err(-ENOMEM, "sharded allreduce: out of memory for %d "
					     "groups", w));
	}
	for (r = 1; r < w && !mine.err; r++) {
		mine.err = split_open(c, (c->rank - r + w) % w, w, true, &k->groups[r]);
		if (mine.err)
			snprintf(why, sizeof(why), "%s", sgc_last_error());
		else
			k->groups[r]->rank_base = r;
	}
	if (!mine.err && c->rank)
		mine.port = ntohs(k->groups[c->rank]->self.sin_port);
	err = sgc_allgather(c, &mine, rd, 2, SGC_INT32);
	if (!err && mine.err)
		err = sgc_err(mine.err, "%s", why);
	for (r = 0; !err && r < w; r++)
		if (rd[r].err)
			err = sgc_err(rd[r].err, "sharded allreduce: rank %d could not open its "
				      "groups for the per-owner eBPF reduction: %s (its "
				      "sgc_last_error() says why)", r, sgc_strerror(rd[r].err));
	for (r = 1; !err && r < w; r++) {
		err = split_join(c, k->groups[r], r, (uint16_t)rd[r].port, groups_side, c);
		if (err) {
			snprintf(why, sizeof(why), "%s", sgc_last_error());
			sgc_err(err, "sharded allreduce: joining the group of shard %d (its owner is "
				"rank %d) failed: %s", r, r, why);
		}
	}
	free(rd);
	if (err)
		return setup_fail(c, err);
	k->state = KSHARD_ON;
	c->io.side = parent_side;
	c->io.side_arg = c;
	if (c->rank)
		pr_debug("rank %d: its shard reduced %s\n", c->rank,
			 k->groups[c->rank]->bpf ? "on its eBPF path" : "in user space");
	return 0;
}

/* Does any rank want the eBPF path?  A one-element star allreduce on @c
 * itself, which every rank runs at its first sharded allreduce. */
static int any_wants_ebpf(struct sgc_comm *c, bool *any)
{
	struct sgc_request req;
	int32_t mine = c->cfg.accel == SGC_ACCEL_EBPF, all = 0;
	int err;

	req_reset(&req, c);
	err = coll_post(c, SGC_COLL_ALLREDUCE, &mine, &all, 1, SGC_INT32, SGC_MAX, 0, &req);
	if (!err)
		err = req_wait(&req);
	*any = all != 0;
	return err;
}

static void kshard_free(struct sgc_comm *c);
static void kshard_stats(const struct sgc_comm *c, void *out);

int kshard_wanted(struct sgc_comm *c)
{
	struct sgc_kshard *k = c->kshard;
	bool any;
	int err;

	if (k && k->state == KSHARD_MESH)
		return 0;
	if (k && k->state == KSHARD_ON)
		return 1;
	if (k && k->state == KSHARD_FAILED)
		return sgc_err(k->err, "%s", k->why);
	/* Only SGC_ALGO=shard-kernel asks (every rank has the same
	 * SGC_ALGO): the others take the user-space shards, faster here. */
	any = false;
	if (c->cfg.algo == SGC_ALGO_SHARD_KERNEL) {
		err = any_wants_ebpf(c, &any);
		if (err)
			return err;
	}
	k = calloc(1, sizeof(*k));
	if (!k)
		return sgc_err(-ENOMEM, "sharded allreduce: out of memory");
	k->close = kshard_free;
	k->stats = kshard_stats;
	c->kshard = k;
	if (!any) {
		k->state = KSHARD_MESH;
		return 0;
	}
	err = groups_open(c);
	return err ? err : 1;
}

static void kshard_part_done(struct sgc_request *p);
static int kshard_progress(struct sgc_request *req);
static int kshard_wait(struct sgc_request *req);
static void kshard_req_release(struct sgc_request *req);

static const struct req_ops kshard_ops = {
	.progress = kshard_progress,
	.wait = kshard_wait,
	.release = kshard_req_release,
	.part_done = kshard_part_done,
};

int kshard_post(struct sgc_comm *c, const void *sendbuf, void *recvbuf, size_t count,
		enum sgc_dtype dt, enum sgc_op op, struct sgc_request *req)
{
	struct sgc_kshard *k = c->kshard;
	size_t elsz, ce, lo, n;
	int r, err, posted = 0;

	if (!sgc_dtype_valid(dt))
		return sgc_err(-EINVAL, "sgc_allreduce: unknown dtype %d (use enum sgc_dtype)", (int)dt);
	if (count && (!sendbuf || !recvbuf))
		return sgc_err(-EINVAL, "sgc_allreduce: NULL buffer for %zu elements", count);
	elsz = sgc_dtype_size(dt);
	ce = c->chunk_bytes / elsz ? c->chunk_bytes / elsz : 1;
	req_reset(req, c);
	req->kind = SGC_COLL_ALLREDUCE;
	req->ops = &kshard_ops;
	req->count = count;
	req->dtype = (uint8_t)dt;
	req->parts = calloc((size_t)c->world, sizeof(*req->parts));
	if (!req->parts)
		return sgc_err(-ENOMEM, "sgc_allreduce: out of memory for %d shards", c->world);
	req->nparts = c->world;
	req->parts_left = c->world;
	for (r = 0; r < c->world; r++) {
		struct sgc_comm *g = group_of(c, r);
		struct sgc_request *p = &req->parts[r];

		mesh_shard_of(count, ce, c->world, r, &lo, &n);
		/* coll_post() resets @p: whose part it is comes after. */
		err = coll_post(g, SGC_COLL_ALLREDUCE, n ? (const uint8_t *)sendbuf + lo * elsz : sendbuf,
				n ? (uint8_t *)recvbuf + lo * elsz : recvbuf, n, dt, op, 0, p);
		if (err)
			break;
		p->whole = req;
		if (p->done)
			kshard_part_done(p);
		posted++;
		if (r == c->rank && g->bpf && kernel_reduces_kind(g, SGC_COLL_ALLREDUCE))
			k->owned_in_kernel++;
	}
	for (r = 0; r < posted; r++)
		io_flush(group_of(c, r));
	if (posted < c->world) {
		char why[sizeof(req->msg)];

		snprintf(why, sizeof(why), "%s", sgc_last_error());
		if (!posted) {
			kshard_req_release(req);
			return sgc_err(err, "%s", why);
		}
		/* The shards posted already go on; the call fails when they
		 * are done, and the others' calls at their timeout. */
		req->parts_left -= c->world - posted;
		req->nparts = posted;
		req->status = err;
		snprintf(req->msg, sizeof(req->msg), "sharded allreduce: posting shard %d failed: %.300s",
			 posted, why);
		req->done = req->parts_left == 0;
	}
	return 0;
}

static void kshard_part_done(struct sgc_request *p)
{
	struct sgc_request *req = p->whole;
	int r = (int)(p - req->parts);
	/* This rank's own shard says best why: as its coordinator it names
	 * the ranks that did not contribute, where the others only hear
	 * that their coordinator gave up. */
	bool own = req->c && r == req->c->rank;

	if (p->status && (!req->status || own)) {
		req->status = p->status;
		/* The counts a mismatch names are the shard's: say the call's. */
		snprintf(req->msg, sizeof(req->msg), "shard %d of the sharded allreduce of %zu x %s "
			 "on this rank (rank %d reduces the shard): %.280s", r, req->count,
			 sgc_dtype_name(req->dtype), r, p->msg);
	}
	if (--req->parts_left == 0)
		req->done = true;
}

/* sgc_test(): one round on every group, the shards done or not
 * (request_set.c's set_collect_parts() says why). */
static int kshard_progress(struct sgc_request *req)
{
	return reqs_progress(1, &req);
}

static int kshard_wait(struct sgc_request *req)
{
	reqs_wait_all(1, &req);
	return req->status;
}

static void kshard_req_release(struct sgc_request *req)
{
	free(req->parts);
	req->parts = NULL;
	req->nparts = 0;
}

static void kshard_stats(const struct sgc_comm *c, void *out)
{
	struct sgc_stats *st = out;
	int r;

	if (!c->kshard)
		return;
	st->shards_in_kernel = c->kshard->owned_in_kernel;
	if (!c->kshard->groups)
		return;
	for (r = 1; r < c->world; r++) {
		const struct sgc_stats *g = &c->kshard->groups[r]->st;

		st->pkts_sent += g->pkts_sent;
		st->pkts_recv += g->pkts_recv;
		st->retransmits += g->retransmits;
		st->duplicates += g->duplicates;
		st->rejected += g->rejected;
		st->foreign += g->foreign;
		st->late += g->late;
		st->bad_mac += g->bad_mac;
		st->bytes_sent += g->bytes_sent;
	}
}

static void kshard_free(struct sgc_comm *c)
{
	if (!c->kshard)
		return;
	c->io.side = NULL;
	groups_close(c);
	free(c->kshard);
	c->kshard = NULL;
}
