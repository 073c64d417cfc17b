// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Joining a job.  Workers send HELLO (rank, world size, nonce) to the
 * coordinator until they are welcomed.  A HELLO claims its rank for its
 * source address, provisionally.  Once every rank is claimed, the
 * coordinator sends the job id (random, picked at init) with the roster in
 * WELCOME datagrams to each claimant; a claim holds when the claimant's
 * READY brings back that job id and the nonce of the HELLO that was
 * welcomed: it got the WELCOME at the address it claimed from.  The
 * coordinator waits for every READY, sending WELCOMEs again meanwhile;
 * later HELLOs (a lost WELCOME) are answered from the engine.
 *
 * The job id is the job's only secret, so nothing said to a sender that
 * has not been welcomed carries it: an ABORT in answer to a HELLO carries
 * the HELLO's nonce in its job_id field, and a joining worker believes an
 * ABORT only if it echoes its own nonce.
 *
 * Until every rank is claimed, the coordinator answers each claim's HELLO
 * with a WAIT: it is running, how many ranks it still misses, and how long
 * it will wait for them.  The worker then waits for the verdict (a
 * WELCOME, or an ABORT that names the missing ranks) rather than give up
 * at its own timeout first.  When the coordinator gives up, every claimant
 * gets an ABORT with the ranks that did not join and the refused HELLO
 * that most likely explains them: a world size other than the job's, or
 * a rank claimed from two addresses.
 *
 * Who gets a rank: a confirmed claim keeps it (a competing HELLO is told
 * -EADDRINUSE).  An unconfirmed claim gives way to a HELLO from another
 * address or with another nonce, except for CLAIM_GRACE_NS after its first
 * WELCOME, the time its READY needs to come back.  So a HELLO with a forged
 * source, which cannot answer the WELCOME, holds a rank for at most the
 * grace, and a READY without the job id claims nothing.
 *
 * Limits, without a key: a process that reaches the coordinator from its
 * own address before the real worker does is that rank (first come, first
 * served; the real worker is told -EADDRINUSE).  An attacker who sees the
 * traffic (on the path, or on a shared segment) reads the job id in a
 * WELCOME and can confirm a claim of its own.  One that cannot see it, but knows the coordinator's
 * address, can still race the real worker with forged HELLOs (from any
 * address, or from the worker's own with another nonce) just before each
 * welcome, and so keep a rank out until the timeout: a denial of service
 * that the coordinator's error names, never a way into the job.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "progress.h"
#include "rendezvous.h"
#include "transport.h"

#define HELLO_MAX_GAP_NS (200 * 1000000ULL)
/* How long after the time a WAIT gave a worker still waits for the
 * coordinator's ABORT (its timers and the way back). */
#define VERDICT_GRACE_NS (500 * 1000000ULL)
/* How long a welcomed claim waits for its READY before a HELLO from
 * elsewhere may take the rank over. */
#define CLAIM_GRACE_NS (1000 * 1000000ULL)

/* The rendezvous in progress (c->rdv), on either side. */
struct rdv_state {
	/* worker */
	uint8_t *pieces;	/* welcome pieces seen, bitmap */
	uint32_t npieces, ngot;
	int abort_code, abort_detail;
	bool abort;
	bool why_set;		/* the ABORT had a struct sgc_join_abort: */
	struct sgc_join_abort why;
	char why_missing[200];	/* the ranks its bitmap names */
	uint64_t heard_at;	/* the last WAIT, 0 = none */
	uint32_t heard_missing;	/* ranks it said were missing */
	uint64_t verdict_at;	/* when that WAIT said the coordinator gives up,
				 * plus VERDICT_GRACE_NS */
	/* coordinator */
	uint64_t give_up_at;
	int bad_rank, bad_world; /* the last HELLO refused for its world size;
				  * bad_world 0 = none */
	struct sockaddr_in bad_from;
};

static uint64_t random_u64(void)
{
	uint64_t v = 0;

	while (getrandom(&v, sizeof(v), 0) != sizeof(v) || v == 0)
		;
	return v;
}

uint64_t random_job_id(void)
{
	return random_u64();
}

static bool is_missing(const void *arg, int r)
{
	return ((const bool *)arg)[r];
}

static void send_welcome(struct sgc_comm *c, int to)
{
	uint32_t per = (c->chunk_bytes - sizeof(struct sgc_welcome)) / sizeof(struct sgc_roster_ent);
	uint32_t npieces = (uint32_t)(c->world + (int)per - 1) / per;
	uint32_t piece;

	if (!c->peers[to].welcomed_at)
		c->peers[to].welcomed_at = now_ns();
	for (piece = 0; piece < npieces; piece++) {
		struct sgc_pkt *p = pkt_alloc(c);
		struct sgc_hdr *h;
		struct sgc_welcome *w;
		struct sgc_roster_ent *e;
		uint32_t first = piece * per, i, n;

		if (!p)
			return;
		n = (uint32_t)c->world - first < per ? (uint32_t)c->world - first : per;
		h = pkt_hdr(p);
		sgc_hdr_init(h, SGC_MSG_WELCOME, c->job_id);
		h->rank = (uint16_t)to;
		h->arg = (uint16_t)c->world;
		h->chunk = piece;
		h->nchunks = npieces;
		h->count = (uint16_t)n;
		w = (struct sgc_welcome *)pkt_body(p);
		memset(w, 0, sizeof(*w));
		w->chunk_bytes = c->chunk_bytes;
		w->world = (uint16_t)c->world;
		w->push_credit = c->pace.push_credit;
		w->timeout_ms = c->cfg.timeout_ms;
		e = (struct sgc_roster_ent *)(w + 1);
		for (i = 0; i < n; i++) {
			e[i].addr = c->peers[first + i].addr.sin_addr.s_addr;
			e[i].port = c->peers[first + i].addr.sin_port;
			e[i].rank = (uint16_t)(first + i);
		}
		p->len = SGC_HDR_SIZE + sizeof(*w) + n * sizeof(*e);
		io_send(c, p, &c->peers[to].addr);
		pkt_put(c, p);
	}
}

/* Send @p to @to, a copy of which stays in the packet, past anything a
 * datagram holds: the address must outlive the submit. */
static void send_answer(struct sgc_comm *c, struct sgc_pkt *p, const struct sockaddr_in *to)
{
	struct sockaddr_in *dst = (struct sockaddr_in *)(pkt_body(p) + SGC_MAX_BODY - sizeof(*to));

	*dst = *to;
	io_send(c, p, dst);
	pkt_put(c, p);
}

/*
 * An ABORT of the whole job to @to.  @tag goes in the job_id field: the
 * nonce of the HELLO it answers, for a sender that was not welcomed, so
 * that the answer to anyone's HELLO never gives the job id away; the job
 * id for a welcomed worker (it knows it, and checks it once joined).
 * @why (and its bitmap, @nbits ranks): why the join failed, or NULL.
 */
static void send_abort_to(struct sgc_comm *c, const struct sockaddr_in *to, uint64_t tag,
			  int code, int detail, const struct sgc_join_abort *why, const uint8_t *bits)
{
	struct sgc_pkt *p = pkt_alloc(c);
	struct sgc_hdr *h;

	if (!p)
		return;
	h = pkt_hdr(p);
	sgc_hdr_init(h, SGC_MSG_ABORT, tag);
	h->aux = (uint32_t)code;
	h->arg = (uint16_t)detail;
	if (why) {
		size_t n = bitmap_bytes(why->nbits);

		memcpy(pkt_body(p), why, sizeof(*why));
		memcpy(pkt_body(p) + sizeof(*why), bits, n);
		p->len = (uint32_t)(SGC_HDR_SIZE + sizeof(*why) + n);
	}
	send_answer(c, p, to);
}

/* A claim's HELLO while ranks are missing: the coordinator is here and
 * waits, until @left_ns from now. */
static void send_wait(struct sgc_comm *c, int r, uint64_t left_ns)
{
	struct sgc_pkt *p = pkt_alloc(c);
	struct sgc_hdr *h;
	int i, missing = 0;

	if (!p)
		return;
	for (i = 1; i < c->world; i++)
		missing += !c->peers[i].joined;
	h = pkt_hdr(p);
	sgc_hdr_init(h, SGC_MSG_WAIT, c->peers[r].nonce);
	h->rank = (uint16_t)r;
	h->arg = (uint16_t)missing;
	h->aux = (uint32_t)(left_ns / 1000000ULL);
	send_answer(c, p, &c->peers[r].addr);
}

/* Tell the claimant of rank @r that the job will not start. */
static void abort_claim(struct sgc_comm *c, int r, int code)
{
	const struct sgc_peer *p = &c->peers[r];

	send_abort_to(c, &p->addr, p->welcomed_at ? c->job_id : p->nonce, code,
		      code == EADDRINUSE ? r : 0, NULL, NULL);
}

/* Rank @r's claim stands against a HELLO from elsewhere: it is confirmed,
 * or was welcomed too recently for its READY to be back. */
static bool claim_holds(const struct sgc_comm *c, int r, uint64_t now)
{
	const struct sgc_peer *p = &c->peers[r];

	return p->joined && (p->ready || (p->welcomed_at && now - p->welcomed_at < CLAIM_GRACE_NS));
}

static void claim(struct sgc_comm *c, int r, const struct sockaddr_in *from, uint32_t nonce)
{
	struct sgc_peer *p = &c->peers[r];

	p->addr = *from;
	p->nonce = nonce;
	p->joined = true;
	p->ready = false;
	p->welcomed_at = 0;
	/* After the welcome the eBPF path holds the roster: a claim taken
	 * over must reach its ranks map. */
	if (c->joined && c->bpf && bpf_path_roster(c))
		pr_warn("rank %d's new address is not in the eBPF path's roster: %s\n", r,
			sgc_last_error());
}

static void unclaim(struct sgc_comm *c, int r)
{
	struct sgc_peer *p = &c->peers[r];

	memset(&p->addr, 0, sizeof(p->addr));
	p->nonce = 0;
	p->joined = false;
	p->ready = false;
	p->welcomed_at = 0;
	memset(&p->rival, 0, sizeof(p->rival));
	p->rival_nonce = 0;
}

/*
 * Whether a refused HELLO may be logged: anyone who reaches the port can
 * send them at packet rate, so at most one line a second, and the next
 * says how many were left out.  Each refusal counts in stats.rejected.
 */
static bool hello_warn_ok(struct sgc_comm *c, uint64_t now)
{
	c->st.rejected++;
	if (c->hello_warn_at && now - c->hello_warn_at < 1000000000ULL) {
		c->hello_warn_quiet++;
		return false;
	}
	if (c->hello_warn_quiet)
		pr_warn("(%u more refused HELLOs in the last second, not shown)\n",
			c->hello_warn_quiet);
	c->hello_warn_at = now;
	c->hello_warn_quiet = 0;
	return true;
}

static void coord_hello(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_hdr *h = rx->hdr;
	struct sgc_peer *p = &c->peers[h->rank < c->world ? h->rank : 0];
	uint64_t now = now_ns();
	uint32_t nonce = h->aux, rival_nonce = 0;
	struct sockaddr_in rival = {};
	int r = h->rank, i;
	char a[32], b[32];

	sgc_addr_str(&rx->from, a, sizeof(a));
	if (h->arg != c->world) {
		if (hello_warn_ok(c, now))
			pr_warn("worker at %s says it is rank %d of %u ranks, but this job has %d: "
				"start every rank with SGC_WORLD_SIZE=%d\n", a, r, h->arg, c->world,
				c->world);
		send_abort_to(c, &rx->from, nonce, EPROTO, c->world, NULL, NULL);
		if (c->rdv) {
			c->rdv->bad_rank = r;
			c->rdv->bad_world = h->arg;
			c->rdv->bad_from = rx->from;
		}
		return;
	}
	if (r == 0) {
		if (hello_warn_ok(c, now))
			pr_warn("a process at %s says it is rank 0, but rank 0 is the coordinator "
				"(this process)\n", a);
		send_abort_to(c, &rx->from, nonce, EADDRINUSE, 0, NULL, NULL);
		return;
	}
	for (i = 1; i < c->world; i++) {
		if (i == r || !c->peers[i].joined || !sockaddr_eq(&c->peers[i].addr, &rx->from))
			continue;
		if (c->peers[i].ready) {
			if (hello_warn_ok(c, now))
				pr_warn("%s already joined as rank %d and now says it is rank %d\n", a, i,
					r);
			send_abort_to(c, &rx->from, nonce, EADDRINUSE, (int)i, NULL, NULL);
			return;
		}
		if (claim_holds(c, i, now))
			return;	/* it asks again after the grace */
		pr_warn("%s claimed rank %d but did not confirm it, and now says it is rank %d: "
			"rank %d is open again\n", a, i, r, i);
		unclaim(c, i);
	}
	if (p->joined && !(sockaddr_eq(&p->addr, &rx->from) && p->nonce == nonce)) {
		sgc_addr_str(&p->addr, b, sizeof(b));
		if (p->ready) {
			if (hello_warn_ok(c, now))
				pr_warn("rank %d already joined from %s; a second process at %s also "
					"says it is rank %d (two processes were started with "
					"SGC_RANK=%d)\n", r, b, a, r, r);
			send_abort_to(c, &rx->from, nonce, EADDRINUSE, r, NULL, NULL);
			return;
		}
		if (claim_holds(c, r, now)) {
			pr_debug("rank %d: HELLO from %s waits, the claim from %s was just welcomed\n",
				 r, a, b);
			return;
		}
		/* Two live claimants take it from each other at every HELLO:
		 * say so once.  The same address with a new nonce is a
		 * process that started over, not a rival. */
		if (sockaddr_eq(&p->addr, &rx->from))
			pr_debug("rank %d: %s says HELLO again with a new nonce\n", r, a);
		else if (!p->rival_nonce)
			pr_warn("rank %d was claimed from %s but not confirmed; %s claims it now (two "
				"processes were started with SGC_RANK=%d, or a HELLO was forged)\n", r, b,
				a, r);
		else
			pr_debug("rank %d: %s takes it back from %s\n", r, a, b);
		rival = p->addr;
		rival_nonce = p->nonce;
		unclaim(c, r);
	}
	if (!p->joined) {
		claim(c, r, &rx->from, nonce);
		if (rival_nonce && !sockaddr_eq(&rival, &rx->from)) {
			p->rival = rival;
			p->rival_nonce = rival_nonce;
		}
		pr_debug("rank %d claimed from %s\n", r, a);
	}
	if (c->joined)
		send_welcome(c, r);
	else
		send_wait(c, r, c->rdv && c->rdv->give_up_at > now ? c->rdv->give_up_at - now : 0);
}

/* A READY confirms a welcomed claim: the job id from the WELCOME, the
 * nonce from the HELLO, the address of the claim. */
static void coord_ready(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_hdr *h = rx->hdr;
	struct sgc_peer *p = &c->peers[h->rank];	/* < world: sgc_wire_check() */

	if (!c->joined || h->job_id != c->job_id) {
		c->st.foreign++;
		return;
	}
	if (h->rank == 0 || !p->joined || !p->welcomed_at || p->nonce != h->aux ||
	    !sockaddr_eq(&p->addr, &rx->from)) {
		c->st.rejected++;
		return;
	}
	if (!p->ready)
		pr_debug("rank %d confirmed\n", h->rank);
	p->ready = true;
}

/* @missing[r]: rank r has no claim yet, or (@ready) no confirmed one. */
static int coord_count_missing(struct sgc_comm *c, bool *missing, bool ready)
{
	int i, n = 0;

	for (i = 0; i < c->world; i++) {
		missing[i] = ready ? !c->peers[i].ready : !c->peers[i].joined;
		n += missing[i];
	}
	return n;
}

/*
 * Every claim is welcomed: wait for the READYs, welcoming again the ones
 * not confirmed yet (a lost WELCOME or READY).  A claim may change hands
 * meanwhile (coord_hello()); its new claimant is welcomed at once.
 */
static int coord_wait_ready(struct sgc_comm *c, bool *missing)
{
	uint64_t now = now_ns(), deadline = now + c->rtt.timeout_ns, gap = c->rtt.rto_ns;
	uint64_t next = now + gap;
	char list[200], a[32];
	int i, n, err;

	while ((n = coord_count_missing(c, missing, true)) > 0 && now < deadline) {
		if (now >= next) {
			for (i = 1; i < c->world; i++)
				if (c->peers[i].joined && !c->peers[i].ready)
					send_welcome(c, i);
			gap = min_u64(gap * 2, HELLO_MAX_GAP_NS);
			next = now + gap;
		}
		err = engine_progress(c, min_u64(next, deadline));
		if (err)
			return err;
		now = now_ns();
	}
	if (!n)
		return 0;
	sgc_rank_list(list, sizeof(list), 0, c->world, is_missing, missing);
	err = sgc_err(-ETIMEDOUT, "%d of %d workers were welcomed but did not confirm within %u ms "
		      "(ranks: %s): their READY did not come back to %s with the job id and the nonce "
		      "of their HELLO; another process may have claimed the rank (a HELLO with a "
		      "forged address), or the network drops datagrams; raise SGC_TIMEOUT_MS if it "
		      "is slow", n, c->world - 1, c->cfg.timeout_ms, list,
		      sgc_addr_str(&c->self, a, sizeof(a)));
	for (i = 1; i < c->world; i++)
		if (c->peers[i].joined)
			abort_claim(c, i, ETIMEDOUT);
	io_flush(c);
	return err;
}

/*
 * The join timed out with @n ranks (@missing) unclaimed.  The error names
 * what most likely kept them out: a rank claimed from two addresses (two
 * processes given one SGC_RANK: -EADDRINUSE), a HELLO refused for its
 * world size (-EPROTO), or nothing seen (-ETIMEDOUT).  Every claimant is
 * told which ranks are missing and why, in an ABORT under its HELLO's
 * nonce; each of a rank's two claimants, -EADDRINUSE and the other's
 * address.
 */
static int coord_give_up(struct sgc_comm *c, const bool *missing, int n)
{
	const struct rdv_state *s = c->rdv;
	size_t room = c->chunk_bytes - sizeof(struct sgc_join_abort);
	struct sgc_join_abort why = {
		.timeout_ms = c->cfg.timeout_ms,
		.world = (uint16_t)c->world,
		.missing = (uint16_t)n,
		.nbits = (uint16_t)(8 * room < (size_t)c->world ? 8 * room : (size_t)c->world),
	};
	char list[200], self[32], a[32], b[32], rest[400];
	uint8_t *bits;
	int i, dup = 0, err;

	sgc_addr_str(&c->self, self, sizeof(self));
	sgc_rank_list(list, sizeof(list), 0, c->world, is_missing, missing);
	snprintf(rest, sizeof(rest), "%d of %d workers did not join the coordinator at %s within "
		 "%u ms (missing ranks: %s)", n, c->world - 1, self, c->cfg.timeout_ms, list);
	for (i = 1; i < c->world && !dup; i++)
		if (c->peers[i].joined && c->peers[i].rival_nonce)
			dup = i;
	if (dup) {
		why.cause = EADDRINUSE;
		why.cause_rank = (uint16_t)dup;
		err = sgc_err(-EADDRINUSE, "rank %d was claimed from two addresses, %s and %s: two "
			      "processes were started with SGC_RANK=%d (or a HELLO was forged); %s",
			      dup, sgc_addr_str(&c->peers[dup].rival, a, sizeof(a)),
			      sgc_addr_str(&c->peers[dup].addr, b, sizeof(b)), dup, rest);
	} else if (s->bad_world && (s->bad_rank >= c->world || missing[s->bad_rank])) {
		why.cause = EPROTO;
		why.cause_rank = (uint16_t)s->bad_rank;
		why.cause_world = (uint16_t)s->bad_world;
		err = sgc_err(-EPROTO, "rank %d was started with SGC_WORLD_SIZE=%d but rank 0 has %d "
			      "(its HELLO came from %s): start every rank with SGC_WORLD_SIZE=%d; %s",
			      s->bad_rank, s->bad_world, c->world,
			      sgc_addr_str(&s->bad_from, a, sizeof(a)), c->world, rest);
	} else if (c->st.bad_mac) {
		err = sgc_err(-ETIMEDOUT, "%s; %llu datagrams were dropped because %s: give every "
			      "rank the same SGC_KEY (or SGC_KEY_FILE)", rest,
			      (unsigned long long)c->st.bad_mac,
			      c->mac ? "their job-key MAC was missing or wrong" :
				       "they carry a job-key MAC and rank 0 has no key");
	} else {
		err = sgc_err(-ETIMEDOUT, "%s: start %s with SGC_COORDINATOR=%s and "
			      "SGC_WORLD_SIZE=%d, or raise SGC_TIMEOUT_MS", rest, n == 1 ? "it" : "them",
			      self, c->world);
	}

	bits = calloc(bitmap_bytes(why.nbits), 1);
	if (!bits)
		why.nbits = 0;
	for (i = 0; bits && i < why.nbits; i++)
		if (missing[i])
			bit_set(bits, (size_t)i);
	for (i = 1; i < c->world; i++) {
		struct sgc_peer *p = &c->peers[i];
		struct sgc_join_abort to = why;

		if (!p->joined)
			continue;
		if (!p->rival_nonce) {
			send_abort_to(c, &p->addr, p->nonce, ETIMEDOUT, 0, &to, bits);
			continue;
		}
		/* Each claimant of the rank learns the other's address. */
		to.other_addr = p->rival.sin_addr.s_addr;
		to.other_port = p->rival.sin_port;
		send_abort_to(c, &p->addr, p->nonce, EADDRINUSE, i, &to, bits);
		to.other_addr = p->addr.sin_addr.s_addr;
		to.other_port = p->addr.sin_port;
		send_abort_to(c, &p->rival, p->rival_nonce, EADDRINUSE, i, &to, bits);
	}
	free(bits);
	/* Send, but take nothing in: a worker told may already be back with
	 * a HELLO for the next job, which is not this one's to answer. */
	io_flush(c);
	return err;
}

int rdv_coordinator(struct sgc_comm *c)
{
	uint64_t deadline = now_ns() + c->rtt.timeout_ns;
	struct rdv_state s = { .give_up_at = deadline };
	bool *missing;
	int i, n, err;

	if (!c->job_id)
		c->job_id = random_u64();
	c->peers[0].addr = c->self;
	c->peers[0].joined = true;
	c->peers[0].ready = true;

	missing = calloc((size_t)c->world, sizeof(*missing));
	if (!missing)
		return -ENOMEM;
	c->rdv = &s;
	while ((n = coord_count_missing(c, missing, false)) > 0 && now_ns() < deadline) {
		err = engine_progress(c, deadline);
		if (err)
			goto out;
	}
	if (n > 0) {
		err = coord_give_up(c, missing, n);
		goto out;
	}
	/* Every address is known now: start the eBPF path before anyone is
	 * welcomed, so a failure can still be told to the workers. */
	if (c->world > 1 && c->cfg.accel != SGC_ACCEL_OFF) {
		err = c->bpf ? bpf_path_attach(c) : sgc_err(c->bpf_err ? c->bpf_err : -EOPNOTSUPP,
							    "%s", c->bpf_why);
		if (err && c->cfg.accel == SGC_ACCEL_EBPF && !c->cfg.accel_soft) {
			for (i = 1; i < c->world; i++)
				abort_claim(c, i, -err);
			io_flush(c);
			goto out;
		}
		if (err && c->cfg.accel_soft)
			pr_debug("eBPF path off, using the user-space path: %s\n", sgc_last_error());
		else if (err)
			pr_info("eBPF path off, using the user-space path: %s\n", sgc_last_error());
		else
			pr_debug("eBPF path active on %s\n", c->cfg.ifname);
		sgc_err_clear();
	}
	c->joined = true;
	for (i = 1; i < c->world; i++)
		send_welcome(c, i);
	io_poll(c, 0);
	err = coord_wait_ready(c, missing);
out:
	c->rdv = NULL;
	free(missing);
	return err;
}

/* ---- worker side ---- */

static bool from_coord(struct sgc_comm *c, const struct sgc_rx *rx)
{
	return sockaddr_eq(&rx->from, &c->cfg.coord);
}

static void send_ready(struct sgc_comm *c)
{
	struct sgc_hdr h;

	sgc_hdr_init(&h, SGC_MSG_READY, c->job_id);
	h.rank = (uint16_t)c->rank;
	h.aux = c->peers[c->rank].nonce;
	send_hdr(c, &h, &c->cfg.coord);
}

static void worker_welcome(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_hdr *h = rx->hdr;
	const struct sgc_welcome *w = (const void *)rx->body;
	const struct sgc_roster_ent *e = (const void *)(w + 1);
	struct rdv_state *s = c->rdv;
	uint32_t i;

	if (c->joined) {
		if (h->job_id == c->job_id)
			send_ready(c);
		return;
	}
	if (!s || w->world != c->world || h->rank != c->rank)
		return;
	if (!s->pieces) {
		if (w->chunk_bytes < 64 || w->chunk_bytes > SGC_MAX_BODY || (w->chunk_bytes & 7))
			return;
		s->npieces = h->nchunks;
		s->pieces = calloc(bitmap_bytes(s->npieces), 1);
		if (!s->pieces)
			return;
		c->job_id = h->job_id;
		c->chunk_bytes = w->chunk_bytes;
		c->pace.push_credit = w->push_credit;
	}
	if (h->job_id != c->job_id || h->nchunks != s->npieces || bit_test(s->pieces, h->chunk))
		return;
	for (i = 0; i < h->count; i++) {
		if (e[i].rank >= c->world)
			continue;
		c->peers[e[i].rank].addr.sin_family = AF_INET;
		c->peers[e[i].rank].addr.sin_addr.s_addr = e[i].addr;
		c->peers[e[i].rank].addr.sin_port = e[i].port;
		c->peers[e[i].rank].joined = true;
	}
	bit_set(s->pieces, h->chunk);
	if (++s->ngot == s->npieces) {
		c->joined = true;
		send_ready(c);
	}
}

static bool bit_is_set(const void *arg, int r)
{
	return bit_test(arg, (size_t)r);
}

/* An ABORT that says why the join failed: keep it, and the missing ranks
 * as a list (sgc_wire_check() has matched the bitmap to nbits). */
static void worker_why(struct rdv_state *s, const struct sgc_rx *rx)
{
	const uint8_t *bits = rx->body + sizeof(s->why);
	size_t len = sizeof(s->why_missing), off;
	int i, listed = 0;

	memcpy(&s->why, rx->body, sizeof(s->why));
	s->why_set = true;
	sgc_rank_list(s->why_missing, len, 0, s->why.nbits, bit_is_set, bits);
	for (i = 0; i < s->why.nbits; i++)
		listed += bit_test(bits, (size_t)i);
	off = strlen(s->why_missing);
	if (s->why.missing > listed && off + 24 < len)
		snprintf(s->why_missing + off, len - off, " (and %d more)", s->why.missing - listed);
}

void rdv_handle(struct sgc_comm *c, const struct sgc_rx *rx)
{
	const struct sgc_hdr *h = rx->hdr;
	struct rdv_state *s;

	if (c->rank == 0) {
		if (h->type == SGC_MSG_HELLO)
			coord_hello(c, rx);
		else if (h->type == SGC_MSG_READY)
			coord_ready(c, rx);
		return;
	}
	if (!from_coord(c, rx)) {
		c->st.foreign++;
		return;
	}
	if (h->type == SGC_MSG_WELCOME) {
		worker_welcome(c, rx);
		return;
	}
	if (c->joined || !(s = c->rdv) || (h->type != SGC_MSG_ABORT && h->type != SGC_MSG_WAIT))
		return;
	/* Not the answer to our HELLO: someone else's, or forged. */
	if (h->job_id != c->peers[c->rank].nonce) {
		c->st.foreign++;
		return;
	}
	if (h->type == SGC_MSG_WAIT) {
		/* The coordinator is there, and says when it gives up. */
		s->heard_at = now_ns();
		s->heard_missing = h->arg;
		s->verdict_at = s->heard_at + h->aux * 1000000ULL + VERDICT_GRACE_NS;
		return;
	}
	s->abort = true;
	s->abort_code = (int)h->aux;
	s->abort_detail = h->arg;
	if (rx->body_len)
		worker_why(s, rx);
}

/* "ranks 2, 3 did not join within 1500 ms", from the ABORT; and, with
 * @cause, the refused HELLO it names. */
static void why_str(const struct rdv_state *s, char *buf, size_t len, bool cause)
{
	const struct sgc_join_abort *w = &s->why;
	int off;

	off = snprintf(buf, len, "%s %s did not join within %u ms", w->missing == 1 ? "rank" : "ranks",
		       s->why_missing, w->timeout_ms);
	if (!cause || off < 0 || (size_t)off >= len)
		return;
	if (w->cause == EPROTO)
		snprintf(buf + off, len - (size_t)off, "; rank %u was started with SGC_WORLD_SIZE=%u "
			 "but the job has %u", w->cause_rank, w->cause_world, w->world);
	else if (w->cause == EADDRINUSE)
		snprintf(buf + off, len - (size_t)off, "; rank %u was claimed from two addresses: two "
			 "processes were started with SGC_RANK=%u", w->cause_rank, w->cause_rank);
}

/* sgc_init()'s error for the coordinator's ABORT. */
static int worker_abort_err(struct sgc_comm *c, const struct rdv_state *s, const char *a)
{
	char why[300], self[32], other[32];
	struct sockaddr_in o = { .sin_family = AF_INET };

	/* To a rank's claimant, EADDRINUSE is the cause itself. */
	if (s->why_set)
		why_str(s, why, sizeof(why), s->abort_code != EADDRINUSE);
	switch (s->abort_code) {
	case EPROTO:
		return sgc_err(-EPROTO, "the coordinator at %s runs a job of %d ranks, but rank %d was "
			       "started with SGC_WORLD_SIZE=%d: give every rank the same world size",
			       a, s->abort_detail, c->rank, c->world);
	case EADDRINUSE:
		if (s->why_set && s->why.other_port) {
			o.sin_addr.s_addr = s->why.other_addr;
			o.sin_port = s->why.other_port;
			return sgc_err(-EADDRINUSE, "the coordinator at %s gave up: rank %d was claimed both "
				       "from here (%s) and from %s: two processes were started with "
				       "SGC_RANK=%d (or a HELLO was forged); %s", a, c->rank,
				       sgc_addr_str(&c->self, self, sizeof(self)),
				       sgc_addr_str(&o, other, sizeof(other)), c->rank, why);
		}
		return sgc_err(-EADDRINUSE, "the coordinator at %s already has a rank %d from another "
			       "address: two processes were started with SGC_RANK=%d (rank 0 is the "
			       "coordinator itself)", a, c->rank, c->rank);
	case ETIMEDOUT:
		if (!s->why_set)
			return sgc_err(-ETIMEDOUT, "the coordinator at %s gave up: other ranks did not "
				       "join within its timeout (its log names them)", a);
		if (s->why.cause)
			return sgc_err(-ETIMEDOUT, "the coordinator at %s gave up: %s", a, why);
		return sgc_err(-ETIMEDOUT, "the coordinator at %s gave up: %s: start %s with "
			       "SGC_COORDINATOR=%s and SGC_WORLD_SIZE=%u, or raise SGC_TIMEOUT_MS", a, why,
			       s->why.missing == 1 ? "it" : "them", a, s->why.world);
	case EOPNOTSUPP:
	case EPERM:
	case ENODEV:
	case EBUSY:
	case EHOSTUNREACH:
		return sgc_err(-s->abort_code, "the coordinator at %s could not start its eBPF path "
			       "(SGC_ACCEL=ebpf): %s; its log says why, or use SGC_ACCEL=auto",
			       a, strerror(s->abort_code));
	default:
		return sgc_err(-ECONNABORTED, "the coordinator at %s could not start the job (%s); "
			       "its log says why", a, strerror(s->abort_code));
	}
}

/*
 * Say HELLO until welcomed or told why not.  Once the coordinator has
 * answered that it waits for other ranks, wait for its verdict (a WELCOME
 * or an ABORT that names them) past this rank's own timeout if need be,
 * but no longer than twice the timeout in all.
 */
int rdv_worker(struct sgc_comm *c)
{
	uint64_t start = now_ns(), deadline = start + c->rtt.timeout_ns, next = start, gap = c->rtt.rto_ns;
	uint64_t cap = start + 2 * c->rtt.timeout_ns, now = start;
	struct rdv_state s = {};
	char a[32];
	int err = 0;

	sgc_addr_str(&c->cfg.coord, a, sizeof(a));
	/* Never 0: an ABORT's job_id field echoes it. */
	while (!(c->peers[c->rank].nonce = (uint32_t)random_u64()))
		;
	c->rdv = &s;
	while (!c->joined && !s.abort) {
		uint64_t until = deadline;

		now = now_ns();
		if (s.verdict_at > until)
			until = min_u64(s.verdict_at, cap);
		if (now >= until)
			break;
		if (now >= next) {
			struct sgc_hdr h;

			sgc_hdr_init(&h, SGC_MSG_HELLO, 0);
			h.rank = (uint16_t)c->rank;
			h.arg = (uint16_t)c->world;
			h.aux = c->peers[c->rank].nonce;
			send_hdr(c, &h, &c->cfg.coord);
			next = now + gap;
			gap = min_u64(gap * 2, HELLO_MAX_GAP_NS);
		}
		err = io_poll(c, min_u64(next, until) - now);
		if (err)
			goto out;
	}
	if (c->joined) {
		io_poll(c, 0);
		err = 0;
	} else if (s.abort) {
		err = worker_abort_err(c, &s, a);
	} else if (s.heard_at) {
		err = sgc_err(-ETIMEDOUT, "rank %d: the coordinator at %s is running, but was still "
			      "waiting for %u other rank%s %llu ms ago, and this rank had no word from it "
			      "after %llu ms (its verdict was lost, or its timeout is longer than this "
			      "rank's %u ms): rank 0's log names the missing ranks; give every rank the "
			      "same SGC_TIMEOUT_MS", c->rank, a, s.heard_missing,
			      s.heard_missing == 1 ? "" : "s",
			      (unsigned long long)((now - s.heard_at) / 1000000ULL),
			      (unsigned long long)((now - start) / 1000000ULL), c->cfg.timeout_ms);
	} else {
		err = sgc_err(-ETIMEDOUT, "rank %d: no answer from the coordinator at %s within %u ms: "
			      "check that rank 0 is running with SGC_COORDINATOR=%s and that this host "
			      "can reach it, or raise SGC_TIMEOUT_MS%s", c->rank, a, c->cfg.timeout_ms, a,
			      c->mac ? "; this rank has a job key, so rank 0 must have the same SGC_KEY "
				       "(with another key or none it drops this rank's datagrams, and its "
				       "log says so)" :
			      c->st.bad_mac ? "; datagrams with a job key's MAC came, and this rank has "
					      "no key: set the job's SGC_KEY on every rank" : "");
	}
out:
	c->rdv = NULL;
	free(s.pieces);
	return err;
}
