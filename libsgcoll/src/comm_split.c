// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sgc_comm_split() and sgc_comm_dup(): new communicators from groups of a
 * joined one's ranks.  The parent carries the whole exchange, in two
 * allgathers.  The first gives every rank each rank's color and key, so
 * each knows its group, its new rank and which rank is the group's
 * coordinator.  Between the two, each coordinator binds a port the kernel
 * chooses and loads its eBPF path for that port (the port is part of the
 * programs' configuration, fixed at load); the second gives every rank the
 * ports and each rank's verdict on its own preparation, so that a group
 * with a rank that failed gives up at once rather than at its timeout.
 * Then each group joins as sgc_init() does, with the group's world size.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "comm.h"
#include "progress.h"

/* First allgather: int32 triples. */
struct split_ent {
	int32_t color;
	int32_t key;
	int32_t bad;		/* SPLIT_* */
};

enum {
	SPLIT_OK,
	SPLIT_BAD_COLOR,	/* below 0 and not SGC_UNDEFINED */
	SPLIT_NO_OUT,		/* out was NULL */
};

/* Second allgather: int32 pairs. */
struct split_ready {
	int32_t err;		/* 0, or why this rank's preparation failed */
	int32_t port;		/* a coordinator's port (host order), else 0 */
};

/* Rank @a of the parent comes before rank @b in their new communicator. */
static bool split_before(const struct split_ent *e, int a, int b)
{
	return e[a].key < e[b].key || (e[a].key == e[b].key && a < b);
}

/* The address other ranks reach parent rank @r at: the coordinator's view,
 * which every rank has from the roster.  A worker bound to 0.0.0.0 is
 * seen at its route's source address, which is on its host. */
struct sockaddr_in split_addr(const struct sgc_comm *p, int r)
{
	struct sockaddr_in a = p->peers[r].addr;

	if (!a.sin_addr.s_addr && r == p->rank)
		a = p->self;
	a.sin_family = AF_INET;
	a.sin_port = 0;
	return a;
}

/* A coordinator binds before comm_start(): the eBPF path is loaded for the
 * port, and workers learn it only through the parent. */
static int split_bind(struct sgc_comm *n)
{
	struct sockaddr_in a = n->cfg.bind;
	socklen_t len = sizeof(a);
	char s[32];
	int fd, err;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return sgc_err(-errno, "sgc_comm_split: cannot create a UDP socket: %s",
			       strerror(errno));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(fd, (struct sockaddr *)&a, &len)) {
		err = -errno;
		close(fd);
		return sgc_err(err, "sgc_comm_split: the new coordinator cannot bind a port on %s, "
			       "its address in the parent (%s): is the address still on this host?",
			       sgc_addr_str(&n->cfg.bind, s, sizeof(s)), strerror(-err));
	}
	n->cfg.bind = a;
	n->cfg.coord = a;
	n->io.fd = fd;
	n->io.prebound = true;
	return 0;
}

int split_open(struct sgc_comm *p, int rank, int world, bool soft, struct sgc_comm **out)
{
	struct sgc_comm *n;
	int err;

	n = calloc(1, sizeof(*n));
	if (!n)
		return sgc_err(-ENOMEM, "sgc_comm_split: out of memory");
	n->io.fd = -1;
	/* The key itself was wiped at sgc_init(); its derived words go over. */
	n->cfg = p->cfg;
	n->cfg.rank = rank;
	n->cfg.world = world;
	n->cfg.bind = split_addr(p, p->rank);
	n->cfg.accel_soft = soft;
	if (p->mac) {
		n->mac = malloc(sizeof(*n->mac));
		if (!n->mac) {
			err = sgc_err(-ENOMEM, "sgc_comm_split: out of memory for the job key");
			goto fail;
		}
		memcpy(n->mac, p->mac, sizeof(*n->mac));
	}
	if (rank == 0) {
		/* A worker's cfg names an interface only if it was told one
		 * (SGC_IFNAME): otherwise the one that holds its address. */
		if (!n->cfg.ifname[0])
			sgc_iface_of(&n->cfg.bind.sin_addr, n->cfg.ifname, sizeof(n->cfg.ifname));
		err = split_bind(n);
		if (err)
			goto fail;
	}
	err = comm_start(n);
	if (err)
		goto fail;
	if (rank == 0 && world > 1 && n->bpf_err && n->cfg.accel == SGC_ACCEL_EBPF && !soft) {
		err = sgc_err(n->bpf_err, "sgc_comm_split: this rank, the coordinator of a new "
			      "communicator, cannot start the eBPF path that SGC_ACCEL=ebpf requires: "
			      "%s.  With SGC_ACCEL=auto the new communicator runs on the user-space "
			      "path; or choose keys that make a rank on another interface its rank 0",
			      n->bpf_why);
		goto fail;
	}
	*out = n;
	return 0;
fail:
	sgc_finalize(n);
	return err;
}

int split_join(struct sgc_comm *p, struct sgc_comm *n, int lead, uint16_t port,
	       void (*side)(void *arg), void *arg)
{
	int err;

	if (n->rank) {
		n->cfg.coord = split_addr(p, lead);
		n->cfg.coord.sin_port = htons(port);
	}
	n->io.side = side;
	n->io.side_arg = arg;
	err = comm_join(n);
	n->io.side = NULL;
	return err;
}

/* io.side while the new communicator joins: the parent answers. */
static void split_side(void *arg)
{
	engine_round(arg);
}

/* Every rank's arguments were fine, or -EINVAL naming the first that was
 * not: the same verdict on every rank. */
static int split_check_args(const struct split_ent *e, int world)
{
	int i;

	for (i = 0; i < world; i++) {
		if (e[i].bad == SPLIT_BAD_COLOR)
			return sgc_err(-EINVAL, "sgc_comm_split: rank %d passed color %d: a color is "
				       "0 or more, or SGC_UNDEFINED to join no new communicator",
				       i, e[i].color);
		if (e[i].bad == SPLIT_NO_OUT)
			return sgc_err(-EINVAL, "sgc_comm_split: rank %d passed out = NULL: pass the "
				       "address of an sgc_comm pointer", i);
	}
	return 0;
}

/* The verdict on a group from the second allgather: 0 when every member
 * prepared its part, else the first failure, named. */
static int split_check_group(const struct sgc_comm *p, const struct split_ent *e,
			     const struct split_ready *rd, int lead)
{
	int i, color = e[p->rank].color;

	for (i = 0; i < p->world; i++) {
		if (e[i].color != color || !rd[i].err || i == p->rank)
			continue;
		if (i == lead)
			return sgc_err(rd[i].err, "sgc_comm_split: rank %d of the parent, the coordinator "
				       "of this rank's new communicator (color %d), could not start it: %s "
				       "(its sgc_last_error() says why; with SGC_ACCEL=ebpf, its interface "
				       "may already carry an eBPF coordinator: SGC_ACCEL=auto runs the "
				       "group on the user-space path)", i, color, sgc_strerror(rd[i].err));
		return sgc_err(rd[i].err, "sgc_comm_split: rank %d of the parent, in this rank's new "
			       "communicator (color %d), could not set up its part: %s (its "
			       "sgc_last_error() says why)", i, color, sgc_strerror(rd[i].err));
	}
	return 0;
}

int sgc_comm_split(sgc_comm *c, int color, int key, sgc_comm **out)
{
	struct split_ent me = { .color = color, .key = key }, *e = NULL;
	struct split_ready mine = {}, *rd = NULL;
	struct sgc_comm *n = NULL;
	char why[512] = "";
	int err, i, nrank = 0, nworld = 0, lead = -1;
	bool any = false;

	sgc_err_clear();
	if (!c)
		return sgc_err(-EINVAL, "sgc_comm_split: NULL communicator: pass the parent that "
			       "every rank calls it on");
	if (out)
		*out = NULL;
	/* Bad arguments still take part, so that every rank fails alike. */
	if (color < 0 && color != SGC_UNDEFINED)
		me.bad = SPLIT_BAD_COLOR;
	else if (!out)
		me.bad = SPLIT_NO_OUT;
	e = calloc((size_t)c->world, sizeof(*e));
	rd = calloc((size_t)c->world, sizeof(*rd));
	if (!e || !rd) {
		err = sgc_err(-ENOMEM, "sgc_comm_split: out of memory for %d ranks", c->world);
		goto out;
	}
	err = sgc_allgather(c, &me, e, 3, SGC_INT32);
	if (err)
		goto out;
	err = split_check_args(e, c->world);
	if (err)
		goto out;
	for (i = 0; i < c->world; i++) {
		any |= e[i].color != SGC_UNDEFINED;
		if (color == SGC_UNDEFINED || e[i].color != color)
			continue;
		nworld++;
		nrank += split_before(e, i, c->rank);
		if (lead < 0 || split_before(e, i, lead))
			lead = i;
	}
	if (!any)
		goto out;

	if (color != SGC_UNDEFINED) {
		mine.err = split_open(c, nrank, nworld, false, &n);
		if (mine.err)
			snprintf(why, sizeof(why), "%s", sgc_last_error());
		else if (nrank == 0)
			mine.port = ntohs(n->self.sin_port);
	}
	/* Whatever this rank's verdict, the others need it. */
	err = sgc_allgather(c, &mine, rd, 2, SGC_INT32);
	if (err || color == SGC_UNDEFINED)
		goto out;
	if (mine.err)
		err = sgc_err(mine.err, "%s", why);
	else
		err = split_check_group(c, e, rd, lead);
	if (err)
		goto out;
	err = split_join(c, n, lead, (uint16_t)rd[lead].port, split_side, c);
	if (err)
		goto out;
	*out = n;
	n = NULL;
out:
	if (n) {
		n->joined = false;
		sgc_finalize(n);
	}
	free(e);
	free(rd);
	return err;
}

int sgc_comm_dup(sgc_comm *c, sgc_comm **out)
{
	if (!c)
		return sgc_err(-EINVAL, "sgc_comm_dup: NULL communicator: pass the communicator "
			       "that every rank calls it on");
	return sgc_comm_split(c, 0, c->rank, out);
}
