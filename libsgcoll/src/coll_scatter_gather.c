// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The raw scatter-gather primitive: sgc_scatter_gather() and
 * sgc_serve_stop() on the coordinator, sgc_serve() on the workers.  The
 * query's state machines are in sg.c; this file starts them and waits.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "progress.h"
#include "sg.h"

static int sg_run(struct sgc_comm *c, const void *query, size_t qlen, void *result, size_t count,
		  enum sgc_dtype dt, enum sgc_op op, int policy, unsigned wait_n, unsigned timeout_ms,
		  uint16_t flags, struct sgc_sg_status *status)
{
	struct sgc_query *q;
	int err;

	err = sg_query_start(c, query, qlen, result, count, dt, op, policy, wait_n, timeout_ms,
			     flags, &q);
	if (err)
		return err;
	while (!q->done && !err)
		err = engine_progress(c, UINT64_MAX);
	io_flush(c);
	return sg_query_end(c, q, err, status);
}

int sgc_scatter_gather(sgc_comm *c, const void *query, size_t query_len, void *result,
		       size_t count, enum sgc_dtype dt, enum sgc_op op,
		       const struct sgc_sg_opts *opts, struct sgc_sg_status *status)
{
	enum sgc_policy policy;

	if (!c)
		return sgc_err(-EINVAL, "sgc_scatter_gather: NULL communicator");
	if (!OPTS_VALID(opts, sgc_sg_opts))
		return -EINVAL;
	policy = OPTS_GET(opts, policy, SGC_WAIT_ALL);
	if ((unsigned)policy > SGC_WAIT_ANY)
		return sgc_err(-EINVAL, "sgc_scatter_gather: unknown policy %d", (int)policy);
	if (!OPTS_VALID(status, sgc_sg_status))
		return -EINVAL;
	return sg_run(c, query, query_len, result, count, dt, op, (int)policy,
		      OPTS_GET(opts, wait_n, 0), OPTS_GET(opts, timeout_ms, 0), 0, status);
}

int sgc_serve_stop(sgc_comm *c)
{
	if (!c)
		return sgc_err(-EINVAL, "sgc_serve_stop: NULL communicator");
	return sg_run(c, NULL, 0, NULL, 0, SGC_UINT8, SGC_SUM, SGC_WIRE_WAIT_ALL, 0, 0,
		      SGC_F_STOP, NULL);
}

size_t sgc_max_query(const sgc_comm *c)
{
	return c ? c->chunk_bytes : 0;
}

int sgc_serve(sgc_comm *c, sgc_handler_fn fn, void *arg, const struct sgc_serve_opts *opts)
{
	unsigned idle_ms;
	uint64_t idle;
	int err = 0;

	if (!c || !fn)
		return sgc_err(-EINVAL, "sgc_serve: NULL %s", c ? "handler" : "communicator");
	if (c->rank == 0)
		return sgc_err(-EINVAL, "sgc_serve() is for workers; the coordinator (rank 0) sends "
			       "queries with sgc_scatter_gather() and ends the service with sgc_serve_stop()");
	if (c->dead)
		return sgc_err(c->dead_err, "the job has ended");
	if (!OPTS_VALID(opts, sgc_serve_opts))
		return -EINVAL;
	idle_ms = OPTS_GET(opts, idle_timeout_ms, 0);
	idle = idle_ms ? idle_ms * 1000000ULL : c->rtt.timeout_ns;

	c->sg.handler = fn;
	c->sg.handler_arg = arg;
	c->sg.handler_err = 0;
	c->sg.serving = true;
	c->sg.last_query = c->now = now_ns();
	sg_worker_process(c);
	for (;;) {
		if (c->sg.stop_seen) {
			err = 0;
			break;
		}
		if (c->sg.handler_err) {
			err = sgc_err(c->sg.handler_err, "sgc_serve: the handler returned %d", c->sg.handler_err);
			break;
		}
		if (c->dead) {
			err = sgc_err(c->dead_err, "sgc_serve: the coordinator ended the job");
			break;
		}
		if (c->now - c->sg.last_query >= idle) {
			err = sgc_err(-ETIMEDOUT, "sgc_serve: no query from the coordinator for %llu ms "
				      "(idle timeout): is rank 0 running, and does it call "
				      "sgc_serve_stop() at the end?", (unsigned long long)(idle / 1000000ULL));
			break;
		}
		err = engine_progress(c, c->sg.last_query + idle);
		if (err)
			break;
		sg_worker_process(c);
	}
	io_flush(c);
	c->sg.serving = false;
	c->sg.stop_seen = false;
	c->sg.handler = NULL;
	return err;
}

