// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Sharded collectives: reduce_scatter, allgather and the sharded
 * allreduce, in user space on every rank (mesh.h says how).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coll.h"
#include "mesh.h"
#include "request.h"
#include "util.h"

/* A stream's window: at least this many chunks, at most that many. */
#define MESH_WIN_MIN		8
#define MESH_WIN_MAX		128
/* The loss check waits at least this many retransmission floors: a rank
 * that many others send to at once, on a shared CPU, is often silent
 * that long without losing anything. */
#define MESH_RTO_FLOORS		20
/* Data of a collective this rank has not called yet is taken this far
 * ahead of its own calls, no further. */
#define MESH_AHEAD		SGC_MAX_INFLIGHT

/* This rank to one peer, in one phase. */
struct mesh_tx {
	const uint8_t *data;	/* the stream's first element */
	size_t count;
	uint32_t nchunks;
	uint32_t next;		/* first chunk never sent */
	uint32_t acked;		/* the peer has every chunk below */
	uint64_t bits;		/* and these of acked + 1 .. acked + 64 */
	uint64_t timer;		/* next loss check; 0 = nothing out */
	unsigned backoff;
	uint64_t *sent_at;	/* [MESH_WIN_MAX]: when chunk i was last sent, at i % MESH_WIN_MAX */
	bool started;
	bool resent;		/* something went again: no more delay samples */
};

/* One peer to this rank, in one phase. */
struct mesh_rx {
	uint32_t nchunks;
	uint32_t low;		/* every chunk below came */
	uint32_t acked_low;	/* the low mark last acknowledged */
	uint32_t unacked;	/* chunks that came since the last acknowledgement */
	uint8_t *got;		/* bitmap of chunks */
};

enum mesh_state { MESH_OPEN, MESH_DONE, MESH_FAILED };

struct mesh_coll {
	uint32_t seq;
	uint8_t kind, dtype, op, state;
	bool posted;
	int world;
	bool gathering;		/* allreduce: the gather phase has begun */
	size_t count;		/* the call's count */
	size_t elsz;
	uint32_t ce;		/* elements per chunk */
	const uint8_t *sendbuf;
	uint8_t *recvbuf;
	size_t own_lo, own_n;	/* this rank's shard */
	uint8_t *acc;		/* where phase-0 data reduces */
	uint8_t *stage0;	/* acc before the call */
	uint8_t *filled;	/* stage0: chunks holding a contribution */
	uint8_t *stage1;	/* allgather: blocks that came before the call */
	struct mesh_rx *rx[2];	/* [phase][rank]; NULL: no such phase */
	struct mesh_tx *tx[2];
	int rx_left[2];		/* streams not complete */
	int tx_left;		/* streams started and not all acknowledged */
	uint64_t deadline;
	/* The caller's buffers, which chunks are sent from in place: the
	 * call is not done while a send of them is in flight.  NULL: chunks
	 * are copied. */
	struct sgc_pin *pin;
	struct sgc_request *req;
	int first_rank;		/* whose datagram made the state; -1: this rank's call */
	int odd_rank;		/* before the call: a datagram that differed, -1 */
	struct coll_args odd;
};

static bool has_phase(const struct mesh_coll *m, int ph)
{
	return ph == 0 ? m->kind != SGC_COLL_ALLGATHER : m->kind != SGC_COLL_RSCATTER;
}

static const char *mesh_name(int kind)
{
	return kind == SGC_COLL_ALLREDUCE ? "sharded allreduce" : coll_kind_name(kind);
}

/* Rank @o's shard: elements [*lo, *lo + *n) of the vector that phase 0
 * sends from (allreduce: the vector; reduce_scatter: block o of the
 * send buffer) and phase 1 fills (allgather: block o of the result). */
static void shard_range(const struct mesh_coll *m, int world, int o, size_t *lo, size_t *n)
{
	if (m->kind != SGC_COLL_ALLREDUCE) {
		*lo = (size_t)o * m->count;
		*n = m->count;
		return;
	}
	mesh_shard_of(m->count, m->ce, world, o, lo, n);
}

void mesh_shard_of(size_t count, size_t ce, int world, int o, size_t *lo, size_t *n)
{
	uint64_t nch = count ? (count + ce - 1) / ce : 0, a, b, hi;

	/* On chunk boundaries, so that every full chunk is a full datagram. */
	a = nch * (uint64_t)o / (uint64_t)world;
	b = nch * (uint64_t)(o + 1) / (uint64_t)world;
	*lo = (size_t)(a * ce);
	hi = b * ce < count ? b * ce : count;
	*n = hi > *lo ? (size_t)hi - *lo : 0;
	if (*lo > count)
		*lo = count;
}

static const struct sockaddr_in *peer_addr(const struct sgc_comm *c, int r)
{
	return r ? &c->peers[r].addr : &c->cfg.coord;
}

static unsigned win_clamp(unsigned long w)
{
	return w < MESH_WIN_MIN ? MESH_WIN_MIN : w > MESH_WIN_MAX ? MESH_WIN_MAX : (unsigned)w;
}

/* @room chunks shared by every peer that sends to this rank. */
static unsigned win_share(const struct sgc_comm *c, unsigned long room)
{
	return win_clamp(c->world > 1 ? room / (unsigned long)(c->world - 1) : MESH_WIN_MAX);
}

/* Chunks a stream may have unacknowledged when every datagram is a
 * packet of its own all the way: the receive room every peer shares,
 * socket and per-CPU backlog, as the star's PULL budget (found once: it
 * costs a syscall).  A sender's window before the receiver has said
 * its own, and what the receiver acknowledges by. */
static unsigned mesh_window(struct sgc_comm *c)
{
	if (!c->mesh.win)
		c->mesh.win = win_share(c, io_rx_room(c));
	return c->mesh.win;
}

/*
 * The window this rank offers each stream into it.  A socket with UDP
 * GRO takes a peer's GSO burst as one packet (veth passes it whole to
 * the socket), so the backlog counts bursts, not chunks, and only the
 * socket's room bounds the window: at 33 ranks 128 chunks where the
 * backlog allowed 23, which left a 16 MiB allreduce waiting on
 * acknowledgements (690 against 470 ms).  Without GRO (the eBPF-path
 * coordinator: its XDP program takes single datagrams, so the bursts are
 * cut before they reach it) every chunk is a packet and the backlog
 * bounds it as before.
 */
static unsigned mesh_rx_window(struct sgc_comm *c)
{
	if (!c->mesh.rx_win)
		c->mesh.rx_win = c->io.gro ? win_share(c, io_sock_room(c)) : mesh_window(c);
	return c->mesh.rx_win;
}

/* Chunks this rank may have unacknowledged in a stream to rank @to: what
 * @to offers, once it has said; without GSO each chunk is a packet
 * (every one a backlog entry), so never more than mesh_window(). */
static unsigned tx_window(struct sgc_comm *c, int to)
{
	unsigned w = c->mesh.peer_win ? c->mesh.peer_win[to] : 0;

	if (!w || (!c->io.gso && w > mesh_window(c)))
		return mesh_window(c);
	return win_clamp(w);
}

/*
 * The loss check's delay.  What it must outwait is a chunk's trip and
 * its acknowledgement's, and the receiver's time off the CPU in between:
 * learned from the streams themselves (the chunk that completed an
 * acknowledged run, to its acknowledgement; none from a stream that
 * resent anything), srtt + 4 rttvar, as TCP does.  At 65 ranks on 2 CPUs
 * a receiver is often off the CPU for longer than the floor, and 4% of
 * what rank 0 sent were probes that nothing had called for.
 */
static uint64_t mesh_rto(const struct sgc_comm *c)
{
	return rto_at_least(&c->rtt, max_u64(rto_now(&c->rtt), rtt_learned(&c->mesh.rtt)),
			    MESH_RTO_FLOORS * c->rtt.rto_ns);
}

/* The arguments a collective is matched by (coll.h), from its state, a
 * datagram or a call. */
static void mesh_args(struct coll_args *a, uint64_t count, uint8_t kind, uint8_t dtype, uint8_t op)
{
	*a = (struct coll_args){ .count = count, .kind = kind, .dtype = dtype, .op = op };
}

/* ---- state ---- */

static void mesh_release(struct mesh_coll *m)
{
	int ph, r;

	for (ph = 0; ph < 2; ph++) {
		if (m->rx[ph])
			for (r = 0; m->rx[ph][r].nchunks; r++)
				free(m->rx[ph][r].got);
		free(m->rx[ph]);
		for (r = 0; m->tx[ph] && r < m->world; r++)
			free(m->tx[ph][r].sent_at);
		free(m->tx[ph]);
		m->rx[ph] = NULL;
		m->tx[ph] = NULL;
	}
	pin_put(m->pin);
	m->pin = NULL;
	free(m->stage0);
	free(m->filled);
	free(m->stage1);
	m->stage0 = m->filled = m->stage1 = NULL;
	m->acc = NULL;
}

static void mesh_free(struct sgc_comm *c, struct mesh_coll *m)
{
	struct mesh_coll **slot = &c->mesh.slots[m->seq % SGC_MESH_RING];

	if (*slot == m)
		*slot = NULL;
	if (m->req) {
		m->req->mesh = NULL;
		m->req = NULL;
	}
	mesh_release(m);
	free(m);
}

/* The streams into this rank of phase @ph: one per rank (a sentinel
 * entry with nchunks 0 ends the array). */
static int rx_alloc(struct sgc_comm *c, struct mesh_coll *m, int ph)
{
	size_t lo, n;
	int r;

	m->rx[ph] = calloc((size_t)c->world + 1, sizeof(struct mesh_rx));
	m->tx[ph] = calloc((size_t)c->world, sizeof(struct mesh_tx));
	if (!m->rx[ph] || !m->tx[ph])
		return -ENOMEM;
	for (r = 0; r < c->world; r++) {
		struct mesh_rx *s = &m->rx[ph][r];

		shard_range(m, c->world, ph == 0 ? c->rank : r, &lo, &n);
		s->nchunks = sgc_nchunks(n, m->elsz, c->chunk_bytes);
		s->got = calloc(bitmap_bytes(s->nchunks), 1);
		if (!s->got)
			return -ENOMEM;
		if (r != c->rank) {
			m->tx[ph][r].sent_at = calloc(MESH_WIN_MAX, sizeof(uint64_t));
			if (!m->tx[ph][r].sent_at)
				return -ENOMEM;
		}
		if (r == c->rank) {
			/* Our own part is in our hands. */
			memset(s->got, 0xff, bitmap_bytes(s->nchunks));
			s->low = s->nchunks;
		} else {
			m->rx_left[ph]++;
		}
	}
	return 0;
}

static struct mesh_coll *mesh_new(struct sgc_comm *c, uint32_t seq, uint8_t kind, uint8_t dtype,
				  uint8_t op, size_t count)
{
	struct mesh_coll *m = calloc(1, sizeof(*m));
	int ph;

	if (!m)
		return NULL;
	m->seq = seq;
	m->kind = kind;
	m->dtype = dtype;
	m->op = op;
	m->count = count;
	m->elsz = sgc_dtype_size(dtype);
	m->ce = (uint32_t)(c->chunk_bytes / m->elsz);
	m->odd_rank = -1;
	m->first_rank = -1;
	m->world = c->world;
	shard_range(m, c->world, c->rank, &m->own_lo, &m->own_n);
	for (ph = 0; ph < 2; ph++)
		if (has_phase(m, ph) && rx_alloc(c, m, ph))
			goto fail;
	if (has_phase(m, 0) && m->own_n) {
		m->stage0 = malloc(m->own_n * m->elsz);
		m->filled = calloc(bitmap_bytes(sgc_nchunks(m->own_n, m->elsz, c->chunk_bytes)), 1);
		if (!m->stage0 || !m->filled)
			goto fail;
		m->acc = m->stage0;
	}
	c->mesh.slots[seq % SGC_MESH_RING] = m;
	return m;
fail:
	mesh_release(m);
	free(m);
	return NULL;
}

/* ---- sending ---- */

static void mesh_hdr(struct sgc_comm *c, const struct mesh_coll *m, struct sgc_hdr *h,
		     uint8_t type, int ph, int owner)
{
	sgc_hdr_init(h, type, c->job_id);
	h->seq = m->seq;
	h->coll = m->kind;
	h->dtype = m->dtype;
	h->op = m->op;
	h->policy = (uint8_t)ph;
	h->arg = (uint16_t)owner;
	h->rank = (uint16_t)c->rank;
	h->total = (uint32_t)m->count;
}

/* Chunk @i of @t, sent at @now (what loss detection compares). */
static void send_chunk(struct sgc_comm *c, const struct mesh_coll *m, int ph, int to,
		       struct mesh_tx *t, uint32_t i, bool again, uint64_t now)
{
	size_t n = sgc_chunk_elems(t->count, m->elsz, c->chunk_bytes, i);
	/* The body goes from the caller's buffer where the socket can. */
	bool attach = n && m->pin && c->io.gso && !c->mac;
	struct sgc_pkt *p = attach ? pkt_alloc_small(c) : pkt_alloc(c);
	const uint8_t *src;
	struct sgc_hdr *h;

	if (!p)
		return;		/* sent again on the loss check */
	h = pkt_hdr(p);
	mesh_hdr(c, m, h, SGC_MSG_SHARD, ph, ph == 0 ? to : c->rank);
	h->chunk = i;
	h->nchunks = t->nchunks;
	h->count = (uint16_t)n;
	h->aux = tx_window(c, to);
	if (again)
		h->flags |= SGC_F_RETX;
	src = t->data + (size_t)i * m->ce * m->elsz;
	if (attach) {
		pkt_attach(p, src, (uint32_t)(n * m->elsz), m->pin);
	} else {
		if (n)
			memcpy(pkt_body(p), src, n * m->elsz);
		p->len = (uint32_t)(SGC_HDR_SIZE + n * m->elsz);
	}
	io_send(c, p, peer_addr(c, to));
	pkt_put(c, p);
	t->sent_at[i % MESH_WIN_MAX] = now;
}

/* What came of stream @s from rank @to, for the sender. */
static void send_ack_fields(struct sgc_comm *c, const struct sgc_hdr *data, uint32_t low,
			    uint64_t bits, int to)
{
	struct sgc_pkt *p = pkt_alloc_small(c);
	struct sgc_hdr *h;

	if (!p)
		return;
	h = pkt_hdr(p);
	*h = *data;
	h->type = SGC_MSG_SHARD_ACK;
	h->flags &= SGC_F_RETX;
	h->rank = (uint16_t)c->rank;
	h->chunk = low;
	h->count = (uint16_t)mesh_rx_window(c);
	if (data->type != SGC_MSG_SHARD_ACK)
		h->aux = 0;
	memcpy(pkt_body(p), &bits, sizeof(bits));
	p->len = SGC_HDR_SIZE + sizeof(bits);
	io_send(c, p, peer_addr(c, to));
	pkt_put(c, p);
}

/* @s's state for rank @from, answering its datagram @h: a resend or
 * probe (SGC_F_RETX) is answered with SGC_F_RETX and its chunk + 1 in
 * aux, so that the sender knows what this state comes after. */
static void send_ack(struct sgc_comm *c, const struct mesh_coll *m, int ph, int from,
		     struct mesh_rx *s, const struct sgc_hdr *ans)
{
	struct sgc_hdr h;
	uint64_t bits = 0;
	uint32_t j;

	for (j = 0; j < 64 && s->low + 1 + j < s->nchunks; j++)
		if (bit_test(s->got, s->low + 1 + j))
			bits |= 1ULL << j;
	mesh_hdr(c, m, &h, SGC_MSG_SHARD_ACK, ph, ph == 0 ? c->rank : from);
	h.nchunks = s->nchunks;
	if (ans->flags & SGC_F_RETX) {
		h.flags = SGC_F_RETX;
		h.aux = ans->chunk + 1;
	}
	s->acked_low = s->low;
	s->unacked = 0;
	send_ack_fields(c, &h, s->low, bits, from);
}

/* Send what stream @t's window allows. */
static void pump_stream(struct sgc_comm *c, struct mesh_coll *m, int ph, int to,
			struct mesh_tx *t, uint64_t now)
{
	unsigned win = tx_window(c, to);

	if (!t->started)
		return;
	/* Out: sent and not acknowledged; the bitmap's count too. */
	while (t->next < t->nchunks && t->next - t->acked < MESH_WIN_MAX &&
	       t->next - t->acked - (uint32_t)__builtin_popcountll(t->bits) < win) {
		send_chunk(c, m, ph, to, t, t->next, false, now);
		t->next++;
	}
	if (t->acked < t->next && !t->timer)
		t->timer = now + mesh_rto(c);
}

/* Send what the window of every started stream allows. */
static void mesh_pump(struct sgc_comm *c, struct mesh_coll *m)
{
	/* c->now is from before this round's wait: not that. */
	uint64_t now = now_ns();
	int ph, k, to;

	for (ph = 0; ph < 2; ph++) {
		if (!m->tx[ph])
			continue;
		for (k = 1; k < c->world; k++) {
			to = (c->rank + k) % c->world;
			pump_stream(c, m, ph, to, &m->tx[ph][to], now);
		}
	}
}

/* Phase @ph's streams from this rank begin. */
static void start_phase(struct sgc_comm *c, struct mesh_coll *m, int ph)
{
	size_t lo, n;
	int r;

	for (r = 0; r < c->world; r++) {
		struct mesh_tx *t = &m->tx[ph][r];

		if (r == c->rank)
			continue;
		if (ph == 0) {
			shard_range(m, c->world, r, &lo, &n);
			t->data = m->sendbuf + lo * m->elsz;
		} else {
			lo = m->own_lo;
			n = m->own_n;
			t->data = m->recvbuf + lo * m->elsz;
		}
		t->count = n;
		t->nchunks = sgc_nchunks(n, m->elsz, c->chunk_bytes);
		t->started = true;
		m->tx_left++;
	}
	if (ph == 1)
		m->gathering = true;
}

/* ---- completion ---- */

static void mesh_fail(struct sgc_comm *c, struct mesh_coll *m, int err, const char *msg)
{
	struct sgc_request *req = m->req;

	if (m->state != MESH_OPEN)
		return;
	m->state = MESH_FAILED;
	pr_debug("rank %d: %s\n", c->rank, msg);
	/* The call returns now.  Chunks of its buffers still queued go to
	 * the kernel, which copies them as it takes them (unless the socket
	 * is full: then the kernel may read them after the return). */
	if (pin_busy(m->pin))
		io_flush(c);
	if (req) {
		m->req = NULL;
		req->mesh = NULL;
		req_complete(c, req, err, msg);
		if (err == -ETIMEDOUT)
			c->st.timeouts++;
	}
	mesh_release(m);
}

static void mesh_check_done(struct sgc_comm *c, struct mesh_coll *m)
{
	struct sgc_request *req = m->req;

	if (m->state != MESH_OPEN || !m->posted || m->tx_left || pin_busy(m->pin) ||
	    (has_phase(m, 0) && m->rx_left[0]) || (has_phase(m, 1) && m->rx_left[1]) ||
	    (m->kind == SGC_COLL_ALLREDUCE && !m->gathering))
		return;
	m->state = MESH_DONE;
	c->st.collectives++;
	if (req) {
		m->req = NULL;
		req->mesh = NULL;
		req_complete(c, req, 0, "");
	}
	/* The slot stays, to answer late duplicates, until it is reused. */
	mesh_release(m);
}

/* Every contribution to this rank's shard is in, and this rank called it. */
static void shard_complete(struct sgc_comm *c, struct mesh_coll *m)
{
	if (m->kind == SGC_COLL_ALLREDUCE && !m->gathering) {
		start_phase(c, m, 1);
		mesh_pump(c, m);
	}
}

static void mismatch(struct sgc_comm *c, struct mesh_coll *m, int rank, const struct coll_args *a)
{
	struct coll_args mine;
	char msg[400];

	if (!m->posted) {
		if (m->odd_rank < 0) {
			m->odd_rank = rank;
			m->odd = *a;
		}
		return;
	}
	mesh_args(&mine, m->count, m->kind, m->dtype, m->op);
	coll_mismatch_text(msg, sizeof(msg), m->seq, rank, a, c->rank, &mine, c->rank);
	mesh_fail(c, m, -SGC_EMISMATCH, msg);
}

/* ---- loss ---- */

/*
 * Send again the chunks below @upto that the peer lacks and that went out
 * no later than @before, up to a window.  A chunk sent later may still be
 * on its way: sends pass each other (io_uring punts one that would block
 * to a worker; the sender moves between CPUs, each with its own backlog),
 * so only time tells a lost chunk from a late one (as TCP's RACK does).
 */
static void resend_holes(struct sgc_comm *c, struct mesh_coll *m, int ph, int to,
			 struct mesh_tx *t, uint32_t upto, uint64_t before)
{
	unsigned win = tx_window(c, to), sent = 0;
	uint64_t now = now_ns();
	uint32_t i;

	for (i = t->acked; i < upto && sent < win; i++) {
		if (i > t->acked && i - t->acked <= 64 && ((t->bits >> (i - t->acked - 1)) & 1))
			continue;
		if (t->sent_at[i % MESH_WIN_MAX] > before)
			continue;
		send_chunk(c, m, ph, to, t, i, true, now);
		c->st.retransmits++;
		t->resent = true;
		sent++;
	}
}

/*
 * The loss check: nothing acknowledged for a retransmission delay.  The
 * peer may only be busy outside the library, its socket holding all we
 * sent; so send one probe, the first chunk it lacks, which it answers at
 * once, and let the answer say what to send again.
 */
static void probe(struct sgc_comm *c, struct mesh_coll *m, int ph, int to, struct mesh_tx *t)
{
	uint64_t now = now_ns();

	send_chunk(c, m, ph, to, t, t->acked, true, now);
	c->st.retransmits++;
	t->resent = true;
	if (t->backoff < RETX_BACKOFF_MAX)
		t->backoff++;
	t->timer = now + (mesh_rto(c) << t->backoff);
}

/* ---- receiving ---- */

/* A datagram from rank @r's registered address, not from this rank. */
static bool from_peer(struct sgc_comm *c, const struct sgc_rx *rx)
{
	int r = rx->hdr->rank;

	if (r == c->rank || (r && !c->peers[r].joined) || !sockaddr_eq(peer_addr(c, r), &rx->from)) {
		c->st.foreign++;
		return false;
	}
	return true;
}

/*
 * The collective @h is about.  NULL with *old set: this rank finished it
 * long ago; NULL otherwise: too far ahead, no room or no memory.
 */
static struct mesh_coll *mesh_lookup(struct sgc_comm *c, const struct sgc_hdr *h, bool create,
				     bool *old)
{
	struct mesh_coll *m = c->mesh.slots[h->seq % SGC_MESH_RING];
	int32_t d = (int32_t)(h->seq - c->mesh.next_seq);

	*old = false;
	if (m && m->seq == h->seq)
		return m;
	if (d < 0) {
		*old = true;
		return NULL;
	}
	if (!create || d >= MESH_AHEAD)
		return NULL;
	if (m) {
		if (m->state == MESH_OPEN)
			return NULL;
		mesh_free(c, m);
	}
	m = mesh_new(c, h->seq, h->coll, h->dtype, h->op, h->total);
	if (m)
		m->first_rank = h->rank;
	return m;
}

/* Chunk @i of phase @ph's stream, @n elements, into the shard at @lo. */
static void place_data(struct mesh_coll *m, int ph, size_t lo, uint32_t i, const uint8_t *body,
		       size_t n)
{
	size_t off = (size_t)i * m->ce * m->elsz;

	if (ph == 0) {
		if (!m->posted && !bit_test(m->filled, i)) {
			memcpy(m->acc + off, body, n * m->elsz);
			bit_set(m->filled, i);
		} else {
			sgc_reduce_into(m->acc + off, body, n, m->dtype, m->op);
		}
		return;
	}
	memcpy((m->posted ? m->recvbuf : m->stage1) + lo * m->elsz + off, body, n * m->elsz);
}

/* Acknowledge a stream every quarter of the sender's window (it says
 * it in aux; before it did, the smallest it may have). */
static uint32_t ack_every(struct sgc_comm *c, const struct sgc_hdr *h)
{
	uint32_t w = h->aux ? h->aux : mesh_window(c);

	if (w > mesh_rx_window(c))
		w = mesh_rx_window(c);
	return w >= 4 ? w / 4 : 1;
}

static void mesh_on_shard(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_hdr *h = rx->hdr;
	struct coll_args theirs, mine;
	struct mesh_coll *m;
	struct mesh_rx *s;
	int ph = h->policy, r = h->rank;
	size_t lo, n;
	bool old;

	if (!from_peer(c, rx))
		return;
	m = mesh_lookup(c, h, true, &old);
	if (!m) {
		if (old) {
			c->st.late++;
			send_ack_fields(c, h, h->nchunks, 0, r);
		}
		return;
	}
	mesh_args(&theirs, h->total, h->coll, h->dtype, h->op);
	mesh_args(&mine, m->count, m->kind, m->dtype, m->op);
	if (coll_args_diff(&theirs, &mine)) {
		if (m->state == MESH_OPEN)
			mismatch(c, m, r, &theirs);
		return;
	}
	if (m->state == MESH_DONE) {
		c->st.late++;
		send_ack_fields(c, h, h->nchunks, 0, r);
		return;
	}
	if (m->state != MESH_OPEN || !has_phase(m, ph) || h->arg != (ph == 0 ? c->rank : r)) {
		c->st.rejected++;
		return;
	}
	s = &m->rx[ph][r];
	shard_range(m, c->world, ph == 0 ? c->rank : r, &lo, &n);
	if (h->nchunks != s->nchunks || h->count != sgc_chunk_elems(n, m->elsz, c->chunk_bytes, h->chunk) ||
	    (ph == 1 && !m->posted && m->kind == SGC_COLL_ALLREDUCE)) {
		c->st.rejected++;
		return;
	}
	if (bit_test(s->got, h->chunk)) {
		c->st.duplicates++;
		send_ack(c, m, ph, r, s, h);
		return;
	}
	if (ph == 1 && !m->posted && !m->stage1) {
		m->stage1 = malloc(m->count * m->elsz * (size_t)c->world);
		if (!m->stage1)
			return;		/* sent again */
	}
	bit_set(s->got, h->chunk);
	if (h->count)
		place_data(m, ph, lo, h->chunk, rx->body, h->count);
	while (s->low < s->nchunks && bit_test(s->got, s->low))
		s->low++;
	if (s->low == s->nchunks) {
		m->rx_left[ph]--;
		send_ack(c, m, ph, r, s, h);
	} else if (++s->unacked >= ack_every(c, h) || (h->flags & SGC_F_RETX)) {
		/* Counted in chunks that came, not by the low mark: a chunk
		 * that is late must not hold the acknowledgements back. */
		send_ack(c, m, ph, r, s, h);
	}
	if (ph == 0 && !m->rx_left[0] && m->posted)
		shard_complete(c, m);
	mesh_check_done(c, m);
}

static void mesh_on_ack(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_hdr *h = rx->hdr;
	int ph = h->policy, r = h->rank;
	struct mesh_coll *m;
	struct mesh_tx *t;
	uint64_t bits, now;
	uint32_t was;
	bool old;

	if (!from_peer(c, rx))
		return;
	if (h->count && r < c->world) {
		if (!c->mesh.peer_win)
			c->mesh.peer_win = calloc((size_t)c->world, sizeof(*c->mesh.peer_win));
		if (c->mesh.peer_win)
			c->mesh.peer_win[r] = h->count;
	}
	m = mesh_lookup(c, h, false, &old);
	if (!m || m->state != MESH_OPEN || !m->posted || h->coll != m->kind || !m->tx[ph] ||
	    h->arg != (ph == 0 ? r : c->rank))
		return;
	t = &m->tx[ph][r];
	if (!t->started || h->nchunks != t->nchunks || h->chunk > t->next) {
		c->st.rejected++;
		return;
	}
	memcpy(&bits, rx->body, sizeof(bits));
	if (h->chunk < t->acked)
		return;		/* an older view */
	now = now_ns();
	was = t->acked;
	if (h->chunk > t->acked || bits != t->bits) {
		t->backoff = 0;
		t->timer = 0;
	}
	if (h->chunk > t->acked) {
		/* The chunk that completed the run, sent once, to now. */
		uint64_t sent = t->sent_at[(h->chunk - 1) % MESH_WIN_MAX];

		if (!t->resent && !(h->flags & SGC_F_RETX) && sent && now > sent)
			rtt_sample(&c->mesh.rtt, now - sent);
		t->acked = h->chunk;
		if (t->acked == t->nchunks)
			m->tx_left--;
	}
	t->bits = bits;
	if ((h->flags & SGC_F_RETX) && h->aux > was && h->aux <= t->next) {
		/* The answer to a probe or a resend: the chunks that went out
		 * before it (by a quarter of the delay) and have not come are
		 * lost.  Compared with the low mark from before this answer:
		 * the probed chunk itself usually moves it up to aux, and the
		 * holes above are what the answer is for. */
		resend_holes(c, m, ph, r, t, t->next,
			     t->sent_at[(h->aux - 1) % MESH_WIN_MAX] - mesh_rto(c) / 4);
	} else if (bits) {
		/* A hole below a chunk that came: lost if it went out well
		 * before that chunk (a quarter of the delay). */
		uint32_t top = t->acked + 64 - (uint32_t)__builtin_clzll(bits);

		resend_holes(c, m, ph, r, t, top, t->sent_at[top % MESH_WIN_MAX] - mesh_rto(c) / 4);
	}
	/* Only this stream's window moved. */
	pump_stream(c, m, ph, r, t, now);
	mesh_check_done(c, m);
}

void mesh_rx_table(struct sgc_rx_table *t)
{
	t->early[SGC_MSG_SHARD] = mesh_on_shard;
	t->early[SGC_MSG_SHARD_ACK] = mesh_on_ack;
}

/* ---- timers ---- */

struct missing {
	const struct mesh_coll *m;
	bool tx;
};

static bool rank_missing(const void *arg, int r)
{
	const struct missing *w = arg;
	int ph;

	for (ph = 0; ph < 2; ph++) {
		if (w->tx && w->m->tx[ph] && w->m->tx[ph][r].started &&
		    w->m->tx[ph][r].acked < w->m->tx[ph][r].nchunks)
			return true;
		if (!w->tx && w->m->rx[ph] && w->m->rx[ph][r].low < w->m->rx[ph][r].nchunks)
			return true;
	}
	return false;
}

static void mesh_timeout(struct sgc_comm *c, struct mesh_coll *m)
{
	struct missing in = { m, false }, out = { m, true };
	char from[120] = "", to[120] = "", msg[400];

	sgc_rank_list(from, sizeof(from), 0, c->world, rank_missing, &in);
	sgc_rank_list(to, sizeof(to), 0, c->world, rank_missing, &out);
	snprintf(msg, sizeof(msg), "%s #%u: not finished within %u ms: %s%s%s%s%s%s; every rank must "
		 "call it alike (with the same SGC_ALGO: a rank on the star algorithm never answers)",
		 mesh_name(m->kind), m->seq, c->cfg.timeout_ms,
		 from[0] ? "data missing from ranks " : "", from, from[0] && to[0] ? "; " : "",
		 to[0] ? "not acknowledged by ranks " : "", to,
		 !from[0] && !to[0] ? "waiting" : "");
	mesh_fail(c, m, -ETIMEDOUT, msg);
}

uint64_t mesh_timers(struct sgc_comm *c, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	int i, ph, r;

	for (i = 0; i < SGC_MESH_RING; i++) {
		struct mesh_coll *m = c->mesh.slots[i];

		if (!m || m->state != MESH_OPEN || !m->posted)
			continue;
		/* Done but for sends from the caller's buffers, which have
		 * completed since. */
		mesh_check_done(c, m);
		if (m->state != MESH_OPEN)
			continue;
		if (now >= m->deadline) {
			mesh_timeout(c, m);
			continue;
		}
		next = min_u64(next, m->deadline);
		for (ph = 0; ph < 2; ph++) {
			if (!m->tx[ph])
				continue;
			for (r = 0; r < c->world; r++) {
				struct mesh_tx *t = &m->tx[ph][r];

				if (!t->started || t->acked >= t->next || !t->timer)
					continue;
				if (now >= t->timer)
					probe(c, m, ph, r, t);
				next = min_u64(next, t->timer);
			}
		}
	}
	return next;
}

/* ---- posting ---- */

bool mesh_allreduce_wanted(const struct sgc_comm *c, size_t count, enum sgc_dtype dt,
			   enum sgc_op op)
{
	size_t bytes;

	if (c->world < 2 || !sgc_op_valid(op) || !sgc_dtype_valid(dt) || count > UINT32_MAX)
		return false;
	switch (c->cfg.algo) {
	case SGC_ALGO_STAR:
		return false;
	case SGC_ALGO_SHARD:
	case SGC_ALGO_SHARD_KERNEL:
		return true;
	default:
		/* Beyond SGC_SHARD_AUTO_MAX_WORLD ranks the sharded algorithm
		 * has not been measured: the star there. */
		bytes = count * sgc_dtype_size(dt);
		return bytes >= SGC_SHARD_MIN_BYTES && c->world <= SGC_SHARD_AUTO_MAX_WORLD;
	}
}

static bool overlap(const void *a, size_t an, const void *b, size_t bn)
{
	const uint8_t *x = a, *y = b;

	return an && bn && x < y + bn && y < x + an;
}

static int post_check(struct sgc_comm *c, uint8_t kind, const void *sendbuf, void *recvbuf,
		      size_t count, enum sgc_dtype dt, enum sgc_op op)
{
	const char *what = mesh_name(kind);
	size_t elsz, w = (size_t)c->world;

	if (c->dead)
		return sgc_err(c->dead_err, "the job has ended: the coordinator aborted it or is gone");
	if (!sgc_dtype_valid(dt))
		return sgc_err(-EINVAL, "%s: unknown dtype %d (use enum sgc_dtype)", what, (int)dt);
	if (op == SGC_CUSTOM)
		return sgc_err(-EOPNOTSUPP, "%s: SGC_CUSTOM runs in the coordinator's kernel only; use "
			       "sgc_allreduce() with SGC_ALGO=star", what);
	if (!sgc_op_valid(op))
		return sgc_err(-EINVAL, "%s: unknown op %d (use enum sgc_op)", what, (int)op);
	elsz = sgc_dtype_size(dt);
	if (count > UINT32_MAX || count > SIZE_MAX / elsz / w)
		return sgc_err(-EMSGSIZE, "%s: count %zu is too large (at most 2^32 - 1 elements)",
			       what, count);
	if (count && (!sendbuf || !recvbuf))
		return sgc_err(-EINVAL, "%s: NULL buffer for %zu elements", what, count);
	if (kind == SGC_COLL_RSCATTER && overlap(sendbuf, count * w * elsz, recvbuf, count * elsz))
		return sgc_err(-EINVAL, "%s: the send and receive buffers overlap", what);
	if (kind == SGC_COLL_ALLGATHER &&
	    (uint8_t *)sendbuf != (uint8_t *)recvbuf + (size_t)c->rank * count * elsz &&
	    overlap(sendbuf, count * elsz, recvbuf, count * w * elsz))
		return sgc_err(-EINVAL, "%s: the send buffer overlaps the receive buffer other than at "
			       "this rank's block (in place: recvbuf + rank * count)", what);
	if (c->colls.nposted >= SGC_MAX_INFLIGHT)
		return sgc_err(-EBUSY, "%d collectives are already outstanding on this communicator: "
			       "finish some with sgc_wait()/sgc_test() first", SGC_MAX_INFLIGHT);
	return 0;
}

/* The collective's state for this call: the one datagrams made, checked
 * against the call, or a new one. */
static struct mesh_coll *post_state(struct sgc_comm *c, uint8_t kind, size_t count,
				    enum sgc_dtype dt, enum sgc_op op, char *msg, size_t len, int *err)
{
	uint32_t seq = c->mesh.next_seq;
	struct mesh_coll *m = c->mesh.slots[seq % SGC_MESH_RING];
	struct coll_args call, made;
	int odd_rank = -1;

	msg[0] = 0;
	mesh_args(&call, count, kind, (uint8_t)dt, (uint8_t)op);
	if (m && m->seq == seq) {
		mesh_args(&made, m->count, m->kind, m->dtype, m->op);
		if (coll_args_diff(&made, &call)) {
			/* The state came from another rank's datagram. */
			odd_rank = -2;
			coll_mismatch_text(msg, len, seq, m->first_rank, &made, c->rank, &call, c->rank);
		} else if (m->odd_rank >= 0) {
			odd_rank = m->odd_rank;
			coll_mismatch_text(msg, len, seq, m->odd_rank, &m->odd, c->rank, &call, c->rank);
		}
		if (odd_rank != -2)
			return m;
		mesh_free(c, m);
		m = NULL;
	}
	if (m) {
		if (m->state == MESH_OPEN) {
			*err = sgc_err(-EBUSY, "%s #%u: sharded collective #%u is still open in its slot",
				       mesh_name(kind), seq, m->seq);
			return NULL;
		}
		mesh_free(c, m);
	}
	m = mesh_new(c, seq, kind, (uint8_t)dt, (uint8_t)op, count);
	if (!m)
		*err = sgc_err(-ENOMEM, "%s: cannot allocate state for %zu elements", mesh_name(kind),
			       count);
	return m;
}

/* This rank's own part: its contribution under the others', or its block. */
static void own_part(struct sgc_comm *c, struct mesh_coll *m)
{
	size_t lo, n, off;
	uint8_t *dst;
	uint32_t i, nch;
	int r;

	if (has_phase(m, 0) && m->own_n) {
		dst = m->kind == SGC_COLL_RSCATTER ? m->recvbuf : m->recvbuf + m->own_lo * m->elsz;
		memmove(dst, m->sendbuf + m->own_lo * m->elsz, m->own_n * m->elsz);
		nch = sgc_nchunks(m->own_n, m->elsz, c->chunk_bytes);
		for (i = 0; i < nch; i++) {
			if (!bit_test(m->filled, i))
				continue;
			off = (size_t)i * m->ce * m->elsz;
			sgc_reduce_into(dst + off, m->stage0 + off, sgc_chunk_elems(m->own_n, m->elsz, c->chunk_bytes, i),
					m->dtype, m->op);
		}
		free(m->stage0);
		free(m->filled);
		m->stage0 = m->filled = NULL;
		m->acc = dst;
	}
	if (m->kind != SGC_COLL_ALLGATHER)
		return;
	if (m->count && m->sendbuf != m->recvbuf + m->own_lo * m->elsz)
		memcpy(m->recvbuf + m->own_lo * m->elsz, m->sendbuf, m->count * m->elsz);
	if (!m->stage1)
		return;
	for (r = 0; r < c->world; r++) {
		struct mesh_rx *s = &m->rx[1][r];

		if (r == c->rank)
			continue;
		shard_range(m, c->world, r, &lo, &n);
		for (i = 0; i < s->nchunks; i++)
			if (bit_test(s->got, i) && sgc_chunk_elems(n, m->elsz, c->chunk_bytes, i)) {
				off = (lo + (size_t)i * m->ce) * m->elsz;
				memcpy(m->recvbuf + off, m->stage1 + off, sgc_chunk_elems(n, m->elsz, c->chunk_bytes, i) * m->elsz);
			}
	}
	free(m->stage1);
	m->stage1 = NULL;
}

static void mesh_req_fail(struct sgc_comm *c, struct sgc_request *req, int err, const char *msg);
static void mesh_req_detach(struct sgc_request *req);

int mesh_post(struct sgc_comm *c, uint8_t kind, const void *sendbuf, void *recvbuf, size_t count,
	      enum sgc_dtype dt, enum sgc_op op, struct sgc_request *req)
{
	struct mesh_coll *m;
	char msg[400];
	int err;

	req_reset(req, c);
	req->detach = mesh_req_detach;
	req->fail = mesh_req_fail;
	if (kind == SGC_COLL_ALLGATHER)
		op = SGC_SUM;	/* carried, not used */
	err = post_check(c, kind, sendbuf, recvbuf, count, dt, op);
	if (err)
		return err;
	m = post_state(c, kind, count, dt, op, msg, sizeof(msg), &err);
	if (!m)
		return err;
	c->mesh.next_seq++;
	c->mesh.used = true;
	c->now = now_ns();
	m->posted = true;
	m->sendbuf = sendbuf;
	m->recvbuf = recvbuf;
	m->pin = pin_new();
	m->deadline = c->now + c->rtt.timeout_ns;
	m->req = req;
	req_link(c, req, m->seq, kind, m->deadline);
	req->mesh = m;
	own_part(c, m);
	start_phase(c, m, has_phase(m, 0) ? 0 : 1);
	if (msg[0]) {
		/* Tell the others how this rank called it (one datagram each:
		 * they fail too, naming it), then fail. */
		int ph = has_phase(m, 0) ? 0 : 1, r;

		/* Copied: the call returns before they go. */
		pin_put(m->pin);
		m->pin = NULL;
		for (r = 0; r < c->world; r++)
			if (r != c->rank)
				send_chunk(c, m, ph, r, &m->tx[ph][r], 0, false, c->now);
		mesh_fail(c, m, -SGC_EMISMATCH, msg);
		return 0;
	}
	if (has_phase(m, 0) && !m->rx_left[0])
		shard_complete(c, m);
	mesh_pump(c, m);
	mesh_check_done(c, m);
	return 0;
}

static void mesh_req_fail(struct sgc_comm *c, struct sgc_request *req, int err, const char *msg)
{
	if (req->mesh)
		mesh_fail(c, req->mesh, err, msg);
}

static void mesh_req_detach(struct sgc_request *req)
{
	struct mesh_coll *m = req->mesh;

	if (m && m->req == req)
		m->req = NULL;
	req->mesh = NULL;
}

void mesh_cancel_all(struct sgc_comm *c, int err, const char *why)
{
	int i;

	for (i = 0; i < SGC_MESH_RING; i++) {
		struct mesh_coll *m = c->mesh.slots[i];
		char msg[400];

		if (!m || m->state != MESH_OPEN)
			continue;
		snprintf(msg, sizeof(msg), "%s #%u: %s", mesh_name(m->kind), m->seq, why);
		mesh_fail(c, m, err, msg);
	}
}

void mesh_free_all(struct sgc_comm *c)
{
	int i;

	for (i = 0; i < SGC_MESH_RING; i++)
		if (c->mesh.slots[i])
			mesh_free(c, c->mesh.slots[i]);
	free(c->mesh.peer_win);
	c->mesh.peer_win = NULL;
}
