// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Arrays of requests: sgc_waitall() and sgc_testany().
 *
 * The requests may come from several communicators.  Progress is per
 * communicator, so waiting for them one after the other could deadlock:
 * while this rank blocks in one communicator's wait, it answers nobody's
 * PULL or NACK in the other, and a peer that waits on them in the other
 * order blocks on us.  So every round drives each communicator that has
 * a request outstanding, and several of them are waited for together
 * through their sgc_fd() descriptors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"
#include "progress.h"
#include "request.h"

/* The communicators of the outstanding requests of an array, each once.
 * There are few (one, usually): a short array, grown on the heap only
 * past what the stack holds. */
struct comm_set {
	struct sgc_comm **v;
	int n, cap;
	struct sgc_comm *inline_v[8];
};

static void set_init(struct comm_set *s)
{
	s->v = s->inline_v;
	s->n = 0;
	s->cap = (int)(sizeof(s->inline_v) / sizeof(s->inline_v[0]));
}

static void set_release(struct comm_set *s)
{
	if (s->v != s->inline_v)
		free(s->v);
	set_init(s);
}

static int set_add(struct comm_set *s, struct sgc_comm *c)
{
	struct sgc_comm **v;
	int i;

	for (i = 0; i < s->n; i++)
		if (s->v[i] == c)
			return 0;
	if (s->n == s->cap) {
		v = malloc((size_t)s->cap * 2 * sizeof(*v));
		if (!v)
			return -ENOMEM;
		memcpy(v, s->v, (size_t)s->n * sizeof(*v));
		if (s->v != s->inline_v)
			free(s->v);
		s->v = v;
		s->cap *= 2;
	}
	s->v[s->n++] = c;
	return 0;
}

/* Posted and not finished.  A finished request's communicator may have
 * been finalized since: only an outstanding one's is looked at (an
 * outstanding request of a finalized communicator is finished, with
 * -ECANCELED, and has c == NULL). */
static bool outstanding(const struct sgc_request *req)
{
	return req && !req->done && req->c;
}

/*
 * A request made of parts (kshard.c's sharded allreduce): every part's
 * communicator, the part done or not.  An owner whose shard is done may
 * still be asked for its result again by a rank that lost it, and that
 * rank waits for it: waiting only on the parts still open deadlocked
 * under 5% loss (owner 7 waited for shard 6 while rank 1 asked 7 for
 * shard 7).
 */
static int set_collect_parts(struct comm_set *s, const struct sgc_request *whole)
{
	int i, err;

	for (i = 0; i < whole->nparts; i++) {
		if (!whole->parts[i].c)
			continue;	/* finalized */
		err = set_add(s, whole->parts[i].c);
		if (err)
			return err;
	}
	return 0;
}

/* Fill @s with the communicators of the outstanding requests in @reqs. */
static int set_collect(struct comm_set *s, int n, sgc_request **reqs)
{
	int i, err;

	s->n = 0;
	for (i = 0; i < n; i++) {
		if (!outstanding(reqs[i]))
			continue;
		if (reqs[i]->parts) {
			/* A sharded allreduce on its groups: theirs. */
			err = set_collect_parts(s, reqs[i]);
			if (err)
				return err;
			continue;
		}
		err = set_add(s, reqs[i]->c);
		if (err)
			return err;
	}
	return 0;
}

/*
 * What every call over an array checks first: a count, an array when the
 * count is not 0, and no request twice (it would be freed twice).  Nothing
 * is freed or written when this fails.
 */
static int check_array(const char *what, int n, sgc_request **reqs)
{
	int i, j;

	if (n < 0)
		return sgc_err(-EINVAL, "%s: negative request count %d", what, n);
	if (n && !reqs)
		return sgc_err(-EINVAL, "%s: NULL request array for %d requests", what, n);
	/* Quadratic, but arrays are short (64 in flight per communicator)
	 * and the alternative is a double free. */
	for (i = 0; i < n; i++) {
		if (!reqs[i])
			continue;
		for (j = i + 1; j < n; j++)
			if (reqs[j] == reqs[i])
				return sgc_err(-EINVAL, "%s: request %d appears again at index %d; "
					       "each request may be in the array once", what, i, j);
	}
	return 0;
}

/* ... every outstanding part of @whole on @c. */
static void give_up_parts(struct sgc_request *whole, struct sgc_comm *c, int err)
{
	int i;

	for (i = 0; i < whole->nparts; i++)
		if (outstanding(&whole->parts[i]) && whole->parts[i].c == c)
			req_give_up(&whole->parts[i], err);
}

/* Waiting failed with @err on @c (the engine, not a collective): every
 * outstanding request of @c in the array finishes with it. */
static void give_up_comm(int n, sgc_request **reqs, struct sgc_comm *c, int err)
{
	int i;

	for (i = 0; i < n; i++) {
		if (!outstanding(reqs[i]))
			continue;
		if (reqs[i]->parts)
			give_up_parts(reqs[i], c, err);
		else if (reqs[i]->c == c)
			req_give_up(reqs[i], err);
	}
}

/* One round without blocking on each communicator of @s; a failing one
 * gives up its requests.  Returns the first failure. */
static int progress_each(struct comm_set *s, int n, sgc_request **reqs)
{
	int i, err, first = 0;

	for (i = 0; i < s->n; i++) {
		err = engine_round(s->v[i]);
		if (err) {
			give_up_comm(n, reqs, s->v[i], err);
			first = first ? first : err;
		}
	}
	return first;
}

/*
 * Sleep until one of @s's communicators has something to do: a datagram
 * arrived (sgc_fd() becomes readable) or its next timer is due, at most a
 * second (engine_timers() looks again at least that often).
 */
static void sleep_on(struct comm_set *s)
{
	uint64_t next = now_ns() + 1000000000ULL;
	int i;

	for (i = 0; i < s->n; i++) {
		next = min_u64(next, s->v[i]->colls.next_timer);
		io_flush(s->v[i]);
	}
	/* To the nanosecond (ppoll), so that no timer is armed on each
	 * ring: with a sharded allreduce's groups (kshard.c), nine rings a
	 * rank, arming them each round took 30% of the machine in
	 * io_timeout(). */
	comm_sleep(s->v, s->n, next);
}

/* Out of memory for a set: @whole's parts one at a time, each ending at
 * its deadline at the latest (req_wait() of a part is plain). */
static void wait_parts_singly(struct sgc_request *whole)
{
	int i, err;

	for (i = 0; i < whole->nparts; i++) {
		struct sgc_request *p = &whole->parts[i];

		if (!outstanding(p))
			continue;
		err = req_wait(p);
		if (err && !p->done)
			req_give_up(p, err);
	}
}

void reqs_wait_all(int n, sgc_request **reqs)
{
	struct comm_set s;
	int err;

	set_init(&s);
	for (;;) {
		if (set_collect(&s, n, reqs)) {
			/* No memory for the set: one communicator at a time,
			 * which still ends, each request at its deadline. */
			int i;

			for (i = 0; i < n; i++) {
				if (!outstanding(reqs[i]))
					continue;
				if (reqs[i]->parts) {
					wait_parts_singly(reqs[i]);
					continue;
				}
				err = req_wait(reqs[i]);
				if (err && !reqs[i]->done)
					req_give_up(reqs[i], err);
			}
			break;
		}
		if (!s.n)
			break;
		if (s.n == 1) {
			/* The common case: block in the engine, as sgc_wait(). */
			err = engine_progress(s.v[0], UINT64_MAX);
			io_flush(s.v[0]);
			if (err)
				give_up_comm(n, reqs, s.v[0], err);
			continue;
		}
		progress_each(&s, n, reqs);
		if (set_collect(&s, n, reqs) == 0 && s.n)
			sleep_on(&s);
	}
	set_release(&s);
}

int reqs_progress(int n, sgc_request **reqs)
{
	struct comm_set s;
	int i, err;

	set_init(&s);
	err = set_collect(&s, n, reqs);
	if (!err)
		err = progress_each(&s, n, reqs);
	/* Make each sgc_fd() readable when its next timer is due. */
	for (i = 0; i < s.n; i++) {
		io_arm_timer(s.v[i], s.v[i]->colls.next_timer);
		io_flush(s.v[i]);
	}
	set_release(&s);
	return err;
}

int sgc_waitall(int n, sgc_request **reqs, int *statuses)
{
	char msg[sizeof(((struct sgc_request *)0)->msg)] = "";
	int i, st, first = 0, first_i = -1, err;

	err = check_array("sgc_waitall", n, reqs);
	if (err)
		return err;
	reqs_wait_all(n, reqs);
	for (i = 0; i < n; i++) {
		st = 0;
		if (reqs[i]) {
			if (reqs[i]->status && !first) {
				snprintf(msg, sizeof(msg), "%s",
					 reqs[i]->msg[0] ? reqs[i]->msg : sgc_strerror(reqs[i]->status));
				first_i = i;
			}
			st = req_finish(reqs[i]);
			reqs[i] = NULL;
		}
		if (statuses)
			statuses[i] = st;
		first = first ? first : st;
	}
	/* Each failed request set the last error in turn: the one returned
	 * is the first, so that is the one to describe. */
	if (first)
		return sgc_err(first, "sgc_waitall: request %d: %s", first_i, msg);
	return 0;
}

/* The lowest index of a finished request, or -1; *@any: whether the
 * array holds a request at all. */
static int first_done(int n, sgc_request **reqs, bool *any)
{
	int i;

	*any = false;
	for (i = 0; i < n; i++) {
		if (!reqs[i])
			continue;
		*any = true;
		if (!outstanding(reqs[i]))
			return i;
	}
	return -1;
}

int sgc_testany(int n, sgc_request **reqs, int *index, int *done)
{
	struct comm_set s;
	struct sgc_request *req;
	bool any;
	int i, err;

	if (!index || !done)
		return sgc_err(-EINVAL, "sgc_testany: NULL index or done pointer");
	*index = -1;
	*done = 0;
	err = check_array("sgc_testany", n, reqs);
	if (err)
		return err;
	i = first_done(n, reqs, &any);
	if (!any) {
		/* As MPI_Testany: nothing left to test is done, with no index,
		 * so that a loop until done ends on an empty array. */
		*done = 1;
		return 0;
	}
	if (i < 0) {
		set_init(&s);
		err = set_collect(&s, n, reqs);
		if (!err)
			err = progress_each(&s, n, reqs);
		i = first_done(n, reqs, &any);
		if (i < 0) {
			/* Make each sgc_fd() readable when its next timer is
			 * due, as sgc_test() does. */
			int k;

			for (k = 0; k < s.n; k++) {
				io_arm_timer(s.v[k], s.v[k]->colls.next_timer);
				io_flush(s.v[k]);
			}
		}
		set_release(&s);
		if (i < 0)
			return err;
	}
	req = reqs[i];
	reqs[i] = NULL;
	*index = i;
	*done = 1;
	return req_finish(req);
}
