// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Progress: one round of I/O and timers.  Received datagrams go through
 * the communicator's dispatch table (struct sgc_rx_table); then the
 * role's loss checks run, and after every batch the coordinator PULLs
 * more and retires what every worker has, a worker reports its watermark.
 */
#include "coll.h"
#include "coord.h"
#include "progress.h"
#include "sg.h"
#include "worker.h"

void engine_rx(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_rx_table *t = &c->rxt;
	uint8_t type = rx->hdr->type;	/* < SGC_MSG_MAX: sgc_wire_check() */
	sgc_rx_fn fn;

	if (!c->joined) {
		if (t->unjoined)
			t->unjoined(c, rx);
		return;
	}
	if (t->early[type]) {
		t->early[type](c, rx);
		return;
	}
	if (t->accept && !t->accept(c, rx))
		return;
	fn = t->on[type];
	if (fn)
		fn(c, rx);
	else
		c->st.rejected++;
}

uint64_t engine_timers(struct sgc_comm *c, uint64_t now)
{
	uint64_t next = now + 1000000000ULL;
	uint32_t s;

	for (s = c->colls.base; s != c->colls.next_seq; s++) {
		struct sgc_coll *co = slot_find(c, s);

		if (!co || !co->posted || co->state != COLL_OPEN)
			continue;
		if (c->rank == 0)
			coord_timer(c, co, now);
		else
			worker_timer(c, co, now);
		if (co->state == COLL_OPEN)
			next = min_u64(next, retx_next(&co->rt));
		if (co->state == COLL_OPEN && kernel_refreshes(c, co))
			next = min_u64(next, co->rt.refresh_at);
	}
	next = min_u64(next, mesh_timers(c, now));
	/* Then every request, wherever its collective is. */
	next = min_u64(next, req_timers(c, now));
	return min_u64(next, sg_timers(c, now));
}

/* After a batch of datagrams: pull more, retire, advance. */
static void engine_after_rx(struct sgc_comm *c)
{
	uint32_t s;

	if (c->rank == 0) {
		for (s = c->colls.base; s != c->colls.next_seq && c->pace.inflight < c->pace.budget; s++) {
			struct sgc_coll *co = slot_find(c, s);

			if (co && co->posted && co->state == COLL_OPEN)
				coord_pull(c, co);
		}
		coord_retire(c);
	} else if (c->joined) {
		worker_advance(c);
	}
}

int engine_round(struct sgc_comm *c)
{
	int err = engine_progress(c, 0);

	io_flush(c);
	return err;
}

int engine_progress(struct sgc_comm *c, uint64_t until)
{
	uint64_t now = now_ns(), next, events = c->io.events;
	int err;

	/* A timer that is due may be answered by datagrams that are already
	 * here, their completions waiting for us to enter the kernel (a rank
	 * that did not get a CPU for a while): take them first, so that a
	 * slow result is not NACKed, nor a slow contribution PULLed again. */
	if (c->colls.next_timer && c->colls.next_timer <= now) {
		err = io_poll_flags(c, 0, true, events);
		if (err)
			return err;
		engine_after_rx(c);
		now = now_ns();
	}
	c->now = now;
	c->colls.next_timer = engine_timers(c, now);
	if (io_cork_due(c))
		c->colls.next_timer = min_u64(c->colls.next_timer, io_cork_due(c));
	next = min_u64(c->colls.next_timer, until);
	/* What the first poll took may be what the caller waits for (the
	 * last answer of a query, the last result chunk): passing the mark
	 * from before it, the wait is skipped then, so the caller sees it now
	 * rather than after the next timer, up to a second away. */
	err = io_poll_flags(c, next > now ? next - now : 0, false, events);
	c->now = now_ns();
	engine_after_rx(c);
	return err;
}
