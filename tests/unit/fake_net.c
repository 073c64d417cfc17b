// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The fake transport (fake_net.h): io.h over per-destination queues of
 * copied datagrams, and a virtual clock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "coord.h"
#include "fake_net.h"
#include "progress.h"
#include "rendezvous.h"
#include "sg.h"
#include "worker.h"

/* One datagram in flight.  The body stays 8-aligned, as io.c's receive
 * buffers keep it: handlers read elements in place. */
struct fake_dgram {
	struct fake_dgram *prev, *next;
	uint64_t due;
	uint64_t id;			/* send order: ties keep it */
	struct sockaddr_in from;
	uint32_t len;
	uint64_t data[];
};

struct fake_node {
	struct sgc_comm *c;
	struct fake_dgram *head, *tail;	/* by (due, id) */
};

static struct {
	uint64_t now;
	uint64_t latency;
	uint64_t rng;
	uint64_t next_id;
	fake_policy_fn policy;
	void *policy_arg;
	int nnodes;
	struct fake_node nodes[FAKE_MAX_RANKS];
	bool dead_rank[FAKE_MAX_RANKS];
	struct fake_net_stats st;
} net = { .now = FAKE_T0, .rng = 1 };

/* ---------------- the net ---------------- */

uint64_t fake_rand(void)
{
	net.rng ^= net.rng >> 12;
	net.rng ^= net.rng << 25;
	net.rng ^= net.rng >> 27;
	return net.rng * 0x2545f4914f6cdd1dULL;
}

static struct fake_node *node_at(const struct sockaddr_in *a)
{
	int i;

	for (i = 0; i < net.nnodes; i++)
		if (net.nodes[i].c && sockaddr_eq(&net.nodes[i].c->self, a))
			return &net.nodes[i];
	return NULL;
}

static struct fake_node *node_of(const struct sgc_comm *c)
{
	int i;

	for (i = 0; i < net.nnodes; i++)
		if (net.nodes[i].c == c)
			return &net.nodes[i];
	return NULL;
}

static bool rank_dead(int r)
{
	return r >= 0 && r < FAKE_MAX_RANKS && net.dead_rank[r];
}

static void queue_free(struct fake_node *n)
{
	struct fake_dgram *d;

	while ((d = n->head)) {
		n->head = d->next;
		free(d);
	}
	n->tail = NULL;
}

void fake_net_free(void)
{
	int i;

	for (i = 0; i < net.nnodes; i++)
		queue_free(&net.nodes[i]);
}

void fake_net_reset(uint64_t seed, uint64_t latency_ns)
{
	fake_net_free();
	memset(&net, 0, sizeof(net));
	net.now = FAKE_T0;
	net.latency = latency_ns;
	net.rng = seed ? seed : 1;
}

void fake_net_policy(fake_policy_fn fn, void *arg)
{
	net.policy = fn;
	net.policy_arg = arg;
}

void fake_net_kill(int rank)
{
	if (rank >= 0 && rank < FAKE_MAX_RANKS)
		net.dead_rank[rank] = true;
}

const struct fake_net_stats *fake_net_stats(void)
{
	return &net.st;
}

uint64_t fake_now(void)
{
	return net.now;
}

void fake_advance(uint64_t ns)
{
	net.now += ns;
}

enum fake_verdict fake_random_faults(const struct fake_dgram_info *d, uint64_t *extra_ns,
				     void *arg)
{
	const struct fake_faults *f = arg;
	unsigned roll;

	if (f->types && !(f->types & (1u << d->hdr->type)))
		return FAKE_DELIVER;
	roll = (unsigned)(fake_rand() % 100);
	*extra_ns = f->max_delay_ns ? fake_rand() % f->max_delay_ns : 0;
	if (roll < f->drop_pct)
		return FAKE_DROP;
	if (roll < f->drop_pct + f->dup_pct)
		return FAKE_DUP;
	if (roll < f->drop_pct + f->dup_pct + f->delay_pct)
		return FAKE_DELAY;
	return FAKE_DELIVER;
}

/* Queue a copy of @data for @n, due at @due. */
static void enqueue(struct fake_node *n, const struct sockaddr_in *from, const void *data,
		    uint32_t len, uint64_t due)
{
	struct fake_dgram *d = malloc(sizeof(*d) + len), *at;

	if (!d)
		abort();
	d->due = due;
	d->id = net.next_id++;
	d->from = *from;
	d->len = len;
	memcpy(d->data, data, len);
	/* Most datagrams are due last: look from the tail. */
	for (at = n->tail; at && at->due > due; at = at->prev)
		;
	d->prev = at;
	d->next = at ? at->next : n->head;
	if (d->next)
		d->next->prev = d;
	else
		n->tail = d;
	if (at)
		at->next = d;
	else
		n->head = d;
}

void fake_inject(struct sgc_comm *to, const struct sockaddr_in *from, const void *data,
		 size_t len, uint64_t delay_ns)
{
	struct fake_node *n = node_of(to);

	if (n)
		enqueue(n, from, data, (uint32_t)len, net.now + delay_ns);
}

/* One received datagram goes up as io.c hands it up. */
static void deliver(struct sgc_comm *c, struct fake_dgram *d)
{
	net.st.delivered++;
	pkt_deliver(c, &d->from, (const uint8_t *)d->data, d->len);
}

/* ---------------- io.h ---------------- */

uint64_t now_ns(void)
{
	return net.now;
}

/* Datagrams are handed over at once: none waited in a socket. */
uint64_t io_rx_age(const struct sgc_comm *c)
{
	return 0;
}

/* Never called: io.rx_wall stays 0 here. */
uint64_t io_wall_age(uint64_t wall)
{
	return 0;
}

int io_open(struct sgc_comm *c)
{
	struct fake_node *n;

	c->io.fd = -1;
	c->io.watch_fd = -1;
	c->pkts.size = sizeof(struct sgc_pkt) + SGC_HDR_SIZE + SGC_MAX_BODY;
	if (node_at(&c->self))
		return sgc_err(-EADDRINUSE, "fake net: address taken");
	if (net.nnodes == FAKE_MAX_RANKS)
		return sgc_err(-ENOSPC, "fake net: more than %d comms", FAKE_MAX_RANKS);
	n = &net.nodes[net.nnodes++];
	memset(n, 0, sizeof(*n));
	n->c = c;
	return 0;
}

void io_close(struct sgc_comm *c)
{
	struct fake_node *n = node_of(c);

	if (n) {
		queue_free(n);
		n->c = NULL;
	}
	pkt_pool_free(c);
}

unsigned long io_rx_room(struct sgc_comm *c)
{
	return FAKE_RX_ROOM;
}

unsigned long io_sock_room(struct sgc_comm *c)
{
	return FAKE_RX_ROOM;
}

/* scatter_prog's part, for a coordinator on the fake eBPF path
 * (fake_bpf_on()): one clone per rank of the datagram's range. */
static int fake_fan_out(struct sgc_comm *c, struct sgc_pkt *p)
{
	const struct sgc_hdr *h = pkt_hdr(p);
	int r, end = h->fan_end < c->world ? h->fan_end : c->world;

	for (r = h->fan_first; r < end; r++) {
		struct sgc_pkt *q;

		if (r == 0)
			continue;
		q = pkt_copy(c, p);
		if (!q)
			return -ENOMEM;
		pkt_hdr(q)->flags &= (uint16_t)~SGC_F_FANOUT;
		pkt_hdr(q)->fan_first = 0;
		pkt_hdr(q)->fan_end = 0;
		pkt_hdr(q)->rank = (uint16_t)r;
		io_send(c, q, &c->peers[r].addr);
		pkt_put(c, q);
	}
	return 0;
}

int io_send(struct sgc_comm *c, struct sgc_pkt *p, const struct sockaddr_in *dst)
{
	struct fake_node *to = node_at(dst);
	struct fake_dgram_info info = {
		.from = c->rank,
		.to = to ? to->c->rank : -1,
		.hdr = pkt_hdr(p),
		.len = p->len,
		.now = net.now,
	};
	enum fake_verdict v = FAKE_DELIVER;
	uint64_t extra = 0, due = net.now + net.latency;

	if (c->bpf && (pkt_hdr(p)->flags & SGC_F_FANOUT))
		return fake_fan_out(c, p);
	/* As a send in the kernel: the datagram is held until it completes,
	 * here at once, since the bytes are copied. */
	p->refs++;
	c->io.sends_inflight++;
	c->st.pkts_sent++;
	net.st.sent++;
	if (!to) {
		net.st.unroutable++;
	} else if (rank_dead(info.from) || rank_dead(info.to)) {
		net.st.dropped++;
	} else {
		if (net.policy)
			v = net.policy(&info, &extra, net.policy_arg);
		switch (v) {
		case FAKE_DROP:
			net.st.dropped++;
			break;
		case FAKE_DUP:
			net.st.duplicated++;
			if (info.hdr->type == SGC_MSG_CONTRIB || info.hdr->type == SGC_MSG_RESULT)
				net.st.duplicated_data++;
			enqueue(to, &c->self, p->data, p->len, due);
			enqueue(to, &c->self, p->data, p->len, due + extra);
			break;
		case FAKE_DELAY:
			net.st.delayed++;
			enqueue(to, &c->self, p->data, p->len, due + extra);
			break;
		default:
			enqueue(to, &c->self, p->data, p->len, due);
			break;
		}
	}
	c->io.sends_inflight--;
	pkt_put(c, p);
	return 0;
}

/* Every send goes at once here anyway. */
int io_send_now(struct sgc_comm *c, struct sgc_pkt *p, const struct sockaddr_in *dst)
{
	return io_send(c, p, dst);
}

void io_tx_flush(struct sgc_comm *c)
{
}

void io_flush(struct sgc_comm *c)
{
}

/* Every send is delivered as it is made: there is nothing to hold. */
void io_cork(struct sgc_comm *c, uint64_t until)
{
}

uint64_t io_cork_due(const struct sgc_comm *c)
{
	return 0;
}

bool io_queued(const struct sgc_comm *c, const struct sgc_pkt *p, const struct sockaddr_in *dst)
{
	return false;
}

/* Deliver what is due for @c now.  With @wait_ns and nothing due, the
 * clock first moves to @c's next datagram, or by @wait_ns: a comm that
 * runs a loop of its own (the rendezvous) sees time pass, alone. */
int io_poll_flags(struct sgc_comm *c, uint64_t wait_ns, bool enter, uint64_t since)
{
	struct fake_node *n = node_of(c);
	struct fake_dgram *due = NULL, **tail = &due, *d;

	io_watch_drain(c);
	if (!n || rank_dead(c->rank))
		return 0;
	if (wait_ns && !(n->head && n->head->due <= net.now))
		net.now = n->head && n->head->due < net.now + wait_ns ? n->head->due
								     : net.now + wait_ns;
	c->now = net.now;	/* as io.c: handlers time what they see by it */
	/* Take the due ones off first: handlers send, and may queue more. */
	while ((d = n->head) && d->due <= net.now) {
		n->head = d->next;
		if (n->head)
			n->head->prev = NULL;
		else
			n->tail = NULL;
		d->next = NULL;
		*tail = d;
		tail = &d->next;
	}
	while ((d = due)) {
		due = d->next;
		deliver(c, d);
		free(d);
	}
	return 0;
}

int io_poll(struct sgc_comm *c, uint64_t wait_ns)
{
	return io_poll_flags(c, wait_ns, false, c->io.events);
}

void io_arm_timer(struct sgc_comm *c, uint64_t when)
{
	if (!c->io.timer_at || when < c->io.timer_at)
		c->io.timer_at = when;
}

void io_watch(struct sgc_comm *c, int fd, sgc_watch_fn fn)
{
	c->io.watch_fd = fn ? fd : -1;
	c->io.watch = fd >= 0 ? fn : NULL;
}

/* ---------------- the driver ---------------- */

static void run_round(void)
{
	int i;

	for (i = 0; i < net.nnodes; i++) {
		struct sgc_comm *c = net.nodes[i].c;

		if (!c || rank_dead(c->rank))
			continue;
		engine_progress(c, 0);
		if (c->rank && c->sg.serving)
			sg_worker_process(c);
	}
}

/* The earliest delivery or timer after this round. */
static uint64_t next_event(void)
{
	uint64_t t = UINT64_MAX;
	int i;

	for (i = 0; i < net.nnodes; i++) {
		struct fake_node *n = &net.nodes[i];

		if (!n->c || rank_dead(n->c->rank))
			continue;
		if (n->head)
			t = min_u64(t, n->head->due);
		if (n->c->colls.next_timer)
			t = min_u64(t, n->c->colls.next_timer);
		if (n->c->io.timer_at)
			t = min_u64(t, n->c->io.timer_at);
	}
	return t;
}

bool fake_run_until(bool (*done)(void *arg), void *arg, uint64_t max_ns)
{
	uint64_t end = net.now + max_ns, t;
	long step;

	for (step = 0; step < FAKE_MAX_STEPS; step++) {
		run_round();
		if (done(arg))
			return true;
		if (net.now >= end)
			return false;
		t = next_event();
		if (t > end)
			t = end;
		/* A timer due now that did not move: still advance, or a
		 * state machine that never re-arms would spin forever. */
		net.now = t > net.now ? t : net.now + 1000;
		for (int i = 0; i < net.nnodes; i++)
			if (net.nodes[i].c && net.nodes[i].c->io.timer_at <= net.now)
				net.nodes[i].c->io.timer_at = 0;
	}
	return false;
}

/* ---------------- a joined job ---------------- */

void fake_addr(struct sockaddr_in *a, int rank)
{
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(0x7f0a0001u + (uint32_t)rank);
	a->sin_port = htons((uint16_t)(7000 + rank));
}

static void comm_free(struct sgc_comm *c)
{
	if (!c)
		return;
	sg_free(c);
	coll_free_all(c);
	io_close(c);
	free(c->peers);
	free(c);
}

/* As sgc_init() leaves a rank after the rendezvous (see fuzz/fuzz_rx.c). */
static struct sgc_comm *comm_new(const struct fake_world_opts *o, int rank)
{
	struct sgc_comm *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return NULL;
	c->rank = c->cfg.rank = rank;
	c->world = c->cfg.world = o->world;
	c->cfg.accel = SGC_ACCEL_OFF;
	c->cfg.timeout_ms = o->timeout_ms;
	c->cfg.waitmode = SGC_WAITMODE_BLOCK;
	fake_addr(&c->cfg.coord, 0);
	fake_addr(&c->self, rank);
	c->cfg.bind = c->self;
	c->rtt.timeout_ns = o->timeout_ms * 1000000ULL;
	c->rtt.rto_ns = o->rto_ns;
	c->rtt.rto_max_ns = 250 * 1000000ULL;
	c->chunk_bytes = o->chunk_bytes;
	c->job_id = FAKE_JOB_ID;
	comm_set_handlers(c);
	c->peers = calloc((size_t)o->world, sizeof(*c->peers));
	if (!c->peers || io_open(c)) {
		free(c->peers);
		free(c);
		return NULL;
	}
	for (r = 0; r < o->world; r++) {
		fake_addr(&c->peers[r].addr, r);
		c->peers[r].joined = true;
		c->peers[r].ready = true;
	}
	c->joined = true;
	c->now = now_ns();
	return c;
}

int fake_world_new(const struct fake_world_opts *o, struct sgc_comm **out)
{
	int r;

	if (o->world < 1 || o->world > FAKE_MAX_RANKS)
		return -EINVAL;
	for (r = 0; r < o->world; r++) {
		out[r] = comm_new(o, r);
		if (!out[r]) {
			fake_world_free(out, r);
			return -ENOMEM;
		}
	}
	/* The coordinator paces; workers learn the credit from the WELCOME. */
	pull_pacing(out[0], false);
	if (o->push_credit)
		out[0]->pace.push_credit = o->push_credit;
	for (r = 1; r < o->world; r++) {
		out[r]->pace.push_credit = out[0]->pace.push_credit;
		out[r]->pace.budget = out[0]->pace.budget;
	}
	return 0;
}

void fake_world_free(struct sgc_comm **cs, int world)
{
	int r;

	for (r = 0; r < world; r++) {
		comm_free(cs[r]);
		cs[r] = NULL;
	}
	fake_net_free();
}
