// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * split_check: run by every rank (sgc_init_env); checks sgc_comm_split()
 * and sgc_comm_dup().
 *
 *   split_check [-g GROUPS] [-c COUNT] [-u] [-a]
 *   Color rank % GROUPS, key -rank: the new ranks run opposite to the
 *   parent's, so the ordering by key is what is checked, and each group's
 *   rank 0 is its highest parent rank (on a worker host in sgc-cluster,
 *   one host per group when GROUPS <= hosts: each can take the eBPF path).
 *   -u: the last parent rank passes SGC_UNDEFINED.  -a: each group's
 *   coordinator must be on the eBPF path (implied by SGC_ACCEL=ebpf).
 *
 *   In order: bad arguments (a color of -5, out = NULL) fail with -EINVAL
 *   on every rank and leave the parent working; the split; every group
 *   runs allreduce, broadcast, allgather and barrier at once, with a
 *   parent allreduce in flight across them, results checked exactly;
 *   sgc_comm_dup(), checked as above (SGC_ACCEL=ebpf: its coordinator on the
 *   eBPF path too, sharing the parent's interface);
 *   the children finalized, then a parent collective.
 *   exit 0 = all good, 1 = a wrong result or error, 77 = skipped
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sgcoll.h"
#include "check.h"

#define CALL(what, expr) do { int _e = (expr); if (_e) FAIL("%s: %s (%s)", what, sgc_strerror(_e), \
							    sgc_last_error()); } while (0)

/* Parent ranks of a group, in their new order: by key -rank, descending. */
static int members(int color, int groups, int undef, int *out)
{
	int r, n = 0;

	for (r = g_world - 1; r >= 0; r--)
		if (r % groups == color && r != undef)
			out[n++] = r;
	return n;
}

static uint64_t val(int prank, size_t i)
{
	return (uint64_t)prank * 0x9E3779B97F4A7C15ULL ^ (uint64_t)i * 0xBF58476D1CE4E5B9ULL;
}

/* The collectives on @c, whose rank r is parent rank m[r], checked. */
static void exercise(sgc_comm *c, const char *name, const int *m, int n, size_t count)
{
	uint64_t *a = calloc(count, 8), *want = calloc(count, 8);
	int32_t *ga = calloc((size_t)n, 4);
	int me = sgc_rank(c), root = n > 1 ? 1 : 0, r;
	int32_t mine = g_rank;
	size_t i;

	if (!a || !want || !ga) {
		FAIL("out of memory");
		goto out;
	}
	for (r = 0; r < n && m[r] != g_rank; r++)
		;
	if (sgc_world_size(c) != n || me != r) {
		FAIL("%s: rank %d of %d, expected rank %d of %d", name, me, sgc_world_size(c), r, n);
		goto out;
	}
	for (i = 0; i < count; i++)
		a[i] = val(g_rank, i);
	CALL(name, sgc_allreduce(c, a, a, count, SGC_UINT64, SGC_SUM));
	memset(want, 0, count * 8);
	for (r = 0; r < n; r++)
		for (i = 0; i < count; i++)
			want[i] += val(m[r], i);
	if (memcmp(a, want, count * 8))
		FAIL("%s: allreduce of %zu uint64 differs", name, count);

	for (i = 0; i < count; i++)
		a[i] = me == root ? val(1000 + g_rank, i) : 0;
	CALL(name, sgc_broadcast(c, a, count, SGC_UINT64, root));
	for (i = 0; i < count; i++)
		if (a[i] != val(1000 + m[root], i)) {
			FAIL("%s: broadcast from rank %d (parent %d): element %zu differs", name, root,
			     m[root], i);
			break;
		}

	/* The new order, as the group sees it. */
	CALL(name, sgc_allgather(c, &mine, ga, 1, SGC_INT32));
	for (r = 0; r < n; r++)
		if (ga[r] != m[r]) {
			FAIL("%s: allgather: new rank %d is parent rank %d, expected %d", name, r,
			     ga[r], m[r]);
			break;
		}
	CALL(name, sgc_barrier(c));
out:
	free(a);
	free(want);
	free(ga);
}

/* Every rank gets -EINVAL naming the bad rank; the parent still works. */
static void bad_args(sgc_comm *p)
{
	sgc_comm *out = (sgc_comm *)&out;
	int32_t one = 1, sum = 0;
	int err;

	err = sgc_comm_split(p, g_rank == 1 % g_world ? -5 : 0, 0, &out);
	if (err != -EINVAL || out || !strstr(sgc_last_error(), "color -5"))
		FAIL("color -5 on rank 1: %d, out %p, \"%s\"", err, (void *)out, sgc_last_error());
	err = sgc_comm_split(p, 0, 0, g_rank == 0 ? NULL : &out);
	if (err != -EINVAL || !strstr(sgc_last_error(), "rank 0 passed out = NULL"))
		FAIL("out = NULL on rank 0: %d, \"%s\"", err, sgc_last_error());
	if (sgc_comm_split(NULL, 0, 0, &out) != -EINVAL || sgc_comm_dup(NULL, &out) != -EINVAL)
		FAIL("a NULL communicator is not -EINVAL");
	CALL("parent allreduce after bad arguments", sgc_allreduce(p, &one, &sum, 1, SGC_INT32,
								    SGC_SUM));
	if (sum != g_world)
		FAIL("parent allreduce after bad arguments: %d, expected %d", sum, g_world);
}

int main(int argc, char **argv)
{
	int groups = 3, undef = -1, opt, n, err, i, *m;
	const char *accel = getenv("SGC_ACCEL");
	bool ebpf = accel && !strcmp(accel, "ebpf"), want_accel = ebpf;
	size_t count = 20000;
	sgc_comm *p, *child, *dup;
	int64_t x, sum, pin, psum = 0;
	sgc_request *preq = NULL;
	char name[32];

	while ((opt = getopt(argc, argv, "g:c:ua")) != -1) {
		switch (opt) {
		case 'g': groups = atoi(optarg); break;
		case 'c': count = strtoull(optarg, NULL, 10); break;
		case 'u': undef = 1; break;
		case 'a': want_accel = true; break;
		default:
			fprintf(stderr, "usage: %s [-g groups] [-c count] [-u] [-a]\n", argv[0]);
			return 2;
		}
	}
	err = sgc_init_env(&p);
	if (err == -EOPNOTSUPP) {
		fprintf(stderr, "SKIP: %s\n", sgc_last_error());
		return 77;
	}
	if (err) {
		fprintf(stderr, "sgc_init_env: %s\n%s\n", sgc_strerror(err), sgc_last_error());
		return 1;
	}
	g_rank = sgc_rank(p);
	g_world = sgc_world_size(p);
	if (groups < 1)
		groups = 1;
	if (undef > 0)
		undef = g_world - 1;
	m = calloc((size_t)g_world, sizeof(*m));
	if (!m)
		return 1;

	bad_args(p);

	err = sgc_comm_split(p, g_rank == undef ? SGC_UNDEFINED : g_rank % groups, -g_rank, &child);
	/* A parent collective in flight while the groups run theirs: each
	 * communicator has its own socket, sequence and coordinator. */
	pin = g_rank;
	CALL("parent sgc_iallreduce", sgc_iallreduce(p, &pin, &psum, 1, SGC_INT64, SGC_SUM, &preq));
	if (err) {
		FAIL("sgc_comm_split: %s (%s)", sgc_strerror(err), sgc_last_error());
	} else if (g_rank == undef) {
		if (child)
			FAIL("SGC_UNDEFINED gave a communicator");
	} else if (!child) {
		FAIL("sgc_comm_split gave no communicator");
	} else {
		n = members(g_rank % groups, groups, undef, m);
		snprintf(name, sizeof(name), "group %d", g_rank % groups);
		if (want_accel && sgc_rank(child) == 0 && n > 1 && !sgc_accelerated(child))
			FAIL("%s: the new coordinator is not on the eBPF path", name);
		if (sgc_rank(child) == 0)
			printf("rank %d: %s of %d ranks, coordinator %s\n", g_rank, name, n,
			       sgc_accelerated(child) ? "on the eBPF path" : "in user space");
		exercise(child, name, m, n, count);
	}
	CALL("parent iallreduce", sgc_wait(preq));
	if (psum != (int64_t)g_world * (g_world - 1) / 2)
		FAIL("parent iallreduce: %" PRId64 ", expected %d", psum, g_world * (g_world - 1) / 2);

	err = sgc_comm_dup(p, &dup);
	if (!err && ebpf && g_rank == 0 && g_world > 1 && !sgc_accelerated(dup)) {
		/* The dup's coordinator is rank 0, whose interface the
		 * parent's eBPF path already uses: they share its dispatcher. */
		FAIL("sgc_comm_dup with SGC_ACCEL=ebpf: the dup's coordinator is not on the eBPF "
		     "path (%s)", sgc_last_error());
	} else if (err) {
		FAIL("sgc_comm_dup: %s (%s)", sgc_strerror(err), sgc_last_error());
	} else {
		for (i = 0; i < g_world; i++)
			m[i] = i;
		/* exercise() wants the order of its @m: the parent's here. */
		exercise(dup, "dup", m, g_world, count);
	}

	/* The children go first; the parent works on without them. */
	sgc_finalize(child);
	sgc_finalize(dup);
	x = g_rank;
	CALL("parent allreduce after the children", sgc_allreduce(p, &x, &sum, 1, SGC_INT64,
								   SGC_SUM));
	if (sum != (int64_t)g_world * (g_world - 1) / 2)
		FAIL("parent allreduce after the children: %" PRId64, sum);
	sgc_finalize(p);
	free(m);
	if (!g_fail && g_rank == 0)
		printf("split_check: world %d, %d groups: all good\n", g_world, groups);
	return g_fail ? 1 : 0;
}
