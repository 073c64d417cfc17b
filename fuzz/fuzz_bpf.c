/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Kernel parser fuzzing: generated frames through gather_prog (XDP) and the
 * tc programs (scatter_prog, notify_prog) with BPF_PROG_RUN, every one
 * checked against a reference model written here from the wire contract.
 *
 * Generation is structured random with a fixed seed (reproducible: a
 * failure prints the seed and packet number): valid contributions of
 * live collectives (every kind, dtype and op, duplicates, several chunks
 * per slot), the same with 1-3 mutations (every header field, IPv4/UDP
 * lengths, truncation, IP options and fragments, ports, addresses,
 * ethertype, random byte flips), other message types, and random bytes.
 * The window moves as user space would move it.  With a job key (phase
 * E) the generator seals what it sends with sgc_mac_seal(), as a keyed
 * rank does, mostly before its mutations (so they break the tag), and
 * adds the forgeries of a sender without the key: a wrong tag, another
 * key's, no tag, the flag without a tag, a tag cut short.
 *
 * The model is an independent parser of the raw frame plus a mirror of
 * the slot state machine (sgcoll/agg.bpf.h) that reduces with libsgcoll's
 * sgc_reduce_into().  For every packet it predicts the verdict and exactly
 * which counters move; for a completing contribution, the RESULT frame (or
 * ring-buffer record) and its reduced body; every 4096 packets, and at
 * the end, every slot's tag, state, seen bits and body.  A frame the
 * model calls foreign, control or user-bound must leave unchanged.  After
 * every packet, the ranks' watermarks and the collectives' activity
 * records are what the model says: only a contribution that passed every
 * check (the tag's included) moves them.  The model checks a tag with
 * libsgcoll's mac.c, the kernel with mac.bpf.h: a keyed frame one accepts
 * and the other does not is a disagreement.
 *
 * Phases (each loads the object afresh with its configuration):
 *   A  world 6, socket delivery, gather + scatter + notify
 *   B  world 5, ring-buffer delivery, cfg.ifindex = lo (rank 0 from the
 *      wire is forged), gather only (scatter would really send on lo)
 *   C  world 70 (seen bitmaps span words), re-broadcast + ring buffer,
 *      gather + scatter + notify
 *   D  world 4, keep mode (every contribution to user space)
 *   E  world 7, job key (SGC_BPF_CFG_MAC, the mac_key map filled; chunks
 *      8 bytes smaller for the tag, as sgc_init() makes them), socket
 *      delivery, gather + scatter + notify
 *
 * Usage: fuzz_bpf [-n packets] [-s seed]; exit 0 = no disagreement,
 * 1 = disagreement (details on stderr), 77 = no BPF here.
 */
#include <getopt.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <time.h>
#include <linux/pkt_cls.h>

#include "harness.h"
#include "mac.h"
#include "sgc_internal.h"

/* Used by one of the two mains only. */
#define SGC_MAYBE_UNUSED __attribute__((unused))
#define MAX_COLLS	24
#define FRAME_MAX	3520	/* XDP BPF_PROG_RUN's linear data limit */
#define XDP_INGRESS_IFINDEX 1	/* BPF_PROG_RUN runs XDP "on" lo */
#ifndef TCX_NEXT
#define TCX_NEXT	-1	/* as libsgcoll/bpf/fanout.bpf.h: "not ours" */
#endif

/* ------------------------------------------------------------ state */

struct mslot {
	uint8_t state, coll, dtype, op;
	uint32_t seq, chunk;
	uint16_t nseen, need, count, arg;
	uint32_t total;
	uint64_t seen[SGC_BPF_SEEN_WORDS];
	uint8_t body[SGC_MAX_BODY];
};

struct live {
	uint8_t coll, dtype, op, policy;
	uint32_t seq, nchunks;
	uint16_t arg;
	uint16_t count[40];
};

struct phase {
	const char *name;
	int world;
	uint16_t flags;
	uint32_t ifindex;
	int tc;			/* run scatter/notify too */
	double share;		/* of the packets */
	uint32_t kernel_colls;	/* cfg.kernel_colls; 0: SGC_BPF_KERNEL_ALL */
};

static const struct phase phases[] = {
	{ "A", 6, 0, 999999, 1, 0.20, 0 },
	{ "B", 5, SGC_BPF_CFG_RINGBUF, XDP_INGRESS_IFINDEX, 0, 0.20, 0 },
	{ "C", 70, SGC_BPF_CFG_RINGBUF | SGC_BPF_CFG_ALLGATHER, 999999, 1, 0.20, 0 },
	{ "D", 4, SGC_BPF_CFG_KEEP, 999999, 0, 0.10, 0 },
	{ "E", 7, SGC_BPF_CFG_MAC, 999999, 1, 0.20, 0 },
	/* SGC_ACCEL=auto: only scatter-gather in the kernel */
	{ "F", 5, 0, 999999, 1, 0.10, 1u << SGC_COLL_QUERY },
};

/* The job key of phase E, and another job's (a sender that has a key,
 * not this one). */
static const uint8_t job_key[SGC_KEY_BYTES] = { 0x6b, 0x65, 0x79, 0x2d, 0x66, 0x75, 0x7a, 0x7a,
						0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef };
static struct sgc_mac_key job_mk, other_mk;	/* sgc_mac_derive()d */

static struct sgc_bpf_cfg cfg;
static struct sgc *S;
static struct mslot *model;	/* [SGC_BPF_SLOTS] */
static uint8_t *touched;	/* slots the model has written */
static struct live colls[MAX_COLLS];
static int ncolls;
static uint32_t base, qbase;	/* qbase: the query in progress */
static uint8_t qpolicy;		/* ...its policy and answers wanted */
static uint16_t qwant;
static uint64_t rng;
static uint64_t npkt, nfail, stat_runs[3], outcome[SGC_ST_MAX], completed, tc_refused;
static int outcome_last, completed_last;	/* of the last gather_prog run */
static int gather_fd, scatter_fd, notify_fd;
static struct ring_buffer *ring;

/* What only a contribution that passed every check moves, as the model
 * has it (sgc_gather_commit): each rank's watermark, and the seq in each
 * collective's activity record; model_act is the record the packet in
 * hand moves, -1 none. */
static uint32_t model_wm[SGC_MAX_WORLD];
static uint32_t model_act_seq[SGC_BPF_RING_SEQ];
static int model_act;

/* The ring-buffer record the model expects next. */
static struct {
	int want;
	int got;
	struct sgc_hdr hdr;
	uint32_t slot;
	uint16_t nseen;
	uint64_t seen[SGC_BPF_SEEN_WORDS];
	uint8_t body[SGC_MAX_BODY];
	uint32_t blen;
} ev_expect;

static uint64_t rnd(void)
{
	return t_rand(&rng);
}

static uint32_t below(uint32_t n)
{
	return n ? (uint32_t)(rnd() % n) : 0;
}

/* The query in progress, as user space publishes it. */
static void publish_query(void)
{
	S->bss->win.query = sgc_bpf_query_word(qbase, qpolicy, qwant);
}

static void disagree(const char *fmt, ...) SGC_PRINTF(1, 2);
static void disagree(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_bpf: packet %llu: ", (unsigned long long)npkt);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
#ifdef SGC_FUZZ_LIBFUZZER
	abort();	/* libFuzzer keeps the input */
#endif
	if (++nfail >= 20) {
		fprintf(stderr, "fuzz_bpf: too many disagreements, stopping\n");
		exit(1);
	}
}

/* ------------------------------------------------------------ model */

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t ne32(const uint8_t *p)	/* network order, as stored */
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static uint16_t ne16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static const struct sgc_bpf_rank *rank_entry(uint32_t r)
{
	static struct sgc_bpf_rank e;

	memset(&e, 0, sizeof(e));
	if (r < cfg.world) {
		e.ip = t_rank_ip((int)r);
		e.port = t_rank_port((int)r);
	}
	return &e;
}

static uint32_t need_for(uint32_t coll, uint32_t policy, uint32_t arg)
{
	uint32_t workers = cfg.world ? cfg.world - 1u : 0;

	switch (coll) {
	case SGC_COLL_BCAST:
		return 1;
	case SGC_COLL_QUERY:
		if (policy == SGC_WIRE_WAIT_ANY)
			return 1;
		if (policy == SGC_WIRE_WAIT_N)
			return (arg < 1 ? 1 : arg) < workers ? (arg < 1 ? 1 : arg) : workers;
		return workers;
	default:
		return cfg.world;
	}
}

enum { M_PARSE, M_REDUCE };

struct predict {
	uint32_t verdict;
	int stat[4];		/* -1 ends */
	int untouched;
	int complete;		/* result frame to check */
	int ring;		/* result in the ring buffer */
	uint32_t slot;
	struct sgc_hdr res;	/* expected RESULT header */
	uint32_t blen;
};

static void pred(struct predict *p, uint32_t verdict, int st)
{
	memset(p, 0, sizeof(*p));
	p->verdict = verdict;
	p->stat[0] = st;
	p->stat[1] = -1;
	p->untouched = verdict == XDP_PASS;
}

/* The job key's tag of the contribution at @f (IPv4 without options)
 * with a body of @bytes, computed by libsgcoll's mac.c: right or not. */
static bool model_tag_ok(const uint8_t *f, uint32_t bytes)
{
	uint64_t tag;

	memcpy(&tag, f + 42 + SGC_HDR_SIZE + bytes, sizeof(tag));
	return sgc_mac_tag(&job_mk, f + 42, f + 42 + SGC_HDR_SIZE, bytes) == tag;
}

/* A contribution passed every check: its collective was active now, and
 * its sender's watermark moves forward (serial order). */
static void model_commit(const struct sgc_hdr *h)
{
	uint32_t r = h->rank & (SGC_MAX_WORLD - 1);

	if (h->coll != SGC_COLL_QUERY) {
		model_act = (int)(h->seq % SGC_BPF_RING_SEQ);
		model_act_seq[model_act] = h->seq;
	}
	if ((int32_t)(h->aux - model_wm[r]) > 0)
		model_wm[r] = h->aux;
}

/* gather_prog, as the contract says it behaves. */
static void model_gather(const uint8_t *f, size_t len, struct predict *p)
{
	struct sgc_hdr h;
	uint32_t ulen, tot, body, bytes, rank, elsz, idx, bit, w, uoff;
	struct mslot *s;
	int d, cmp;

	model_act = -1;
	pred(p, XDP_PASS, SGC_ST_PASS_FOREIGN);
	if (len < 14 || be16(f + 12) != ETH_P_IP || len < 34)
		return;
	if (f[14] >> 4 != 4 || (f[14] & 15) < 5 || f[14 + 9] != IPPROTO_UDP ||
	    ne32(f + 14 + 16) != cfg.coord_ip)
		return;
	/* A later fragment: no port to tell by. */
	if (be16(f + 14 + 6) & 0x1fff)
		return;
	uoff = 14 + (f[14] & 15) * 4u;
	if (len < uoff + 8 || ne16(f + uoff + 2) != cfg.coord_port)
		return;
	/* Ours, but a first fragment or with IP options: never parsed. */
	pred(p, XDP_DROP, SGC_ST_DROP_IP);
	if ((f[14] & 15) != 5 || (be16(f + 14 + 6) & 0x2000))
		return;

	pred(p, XDP_DROP, SGC_ST_DROP_MALFORMED);
	ulen = be16(f + 38);
	tot = be16(f + 16);
	if (ulen < 8 + SGC_HDR_SIZE || tot != 20 + ulen || 14 + tot > len || 42 + SGC_HDR_SIZE > len)
		return;
	body = ulen - 8 - SGC_HDR_SIZE;
	memcpy(&h, f + 42, sizeof(h));
	if (h.magic != SGC_WIRE_MAGIC || h.version != SGC_WIRE_VERSION || h.type < 1 ||
	    h.type >= SGC_MSG_MAX)
		return;
	if (h.type == SGC_MSG_HELLO) {
		pred(p, XDP_PASS, SGC_ST_PASS_CONTROL);
		return;
	}
	if (h.job_id != cfg.job_id) {
		pred(p, XDP_DROP, SGC_ST_DROP_JOB);
		return;
	}
	rank = h.rank;
	if (rank >= cfg.world) {
		pred(p, XDP_DROP, SGC_ST_DROP_RANK);
		return;
	}
	pred(p, XDP_DROP, SGC_ST_DROP_SOURCE);
	if (!rank_entry(rank)->ip || rank_entry(rank)->ip != ne32(f + 14 + 12) ||
	    rank_entry(rank)->port != ne16(f + 34))
		return;
	if (rank == 0 && XDP_INGRESS_IFINDEX == cfg.ifindex)
		return;
	pred(p, XDP_DROP, SGC_ST_DROP_FIELD);
	if ((h.flags & (SGC_F_FANOUT | SGC_F_KERNEL)) || h.type == SGC_MSG_RESULT)
		return;
	if (h.type != SGC_MSG_CONTRIB) {
		pred(p, XDP_PASS, SGC_ST_PASS_CONTROL);
		return;
	}
	if (h.coll < 1 || h.coll > SGC_COLL_QUERY || h.dtype >= 8 || h.op > SGC_OP_CUSTOM ||
	    h.nchunks < 1 || h.chunk >= h.nchunks || h.stamp)
		return;
	elsz = sgc_wire_dtype_size(h.dtype);
	bytes = (uint32_t)h.count * elsz;
	/* With a job key, the flag and room for the tag after the body come
	 * before the lengths; without one, a tag is one nobody can check. */
	if (cfg.flags & SGC_BPF_CFG_MAC) {
		if (!(h.flags & SGC_F_MAC) || body < SGC_MAC_TAG_SIZE) {
			pred(p, XDP_DROP, SGC_ST_DROP_MAC);
			return;
		}
		body -= SGC_MAC_TAG_SIZE;
	} else if (h.flags & SGC_F_MAC) {
		pred(p, XDP_DROP, SGC_ST_DROP_MAC);
		return;
	}
	if (bytes != body || bytes > cfg.chunk_bytes || bytes > SGC_MAX_BODY)
		return;
	if (h.coll == SGC_COLL_QUERY) {
		if (h.policy > SGC_WIRE_WAIT_ANY)
			return;
		/* Only the query in progress, by its own rule. */
		pred(p, XDP_DROP, SGC_ST_DROP_WINDOW);
		if (h.seq != qbase)
			return;
		pred(p, XDP_DROP, SGC_ST_DROP_MISMATCH);
		if (h.policy != qpolicy || h.arg != qwant)
			return;
	} else if (h.arg >= cfg.world || (h.coll == SGC_COLL_BCAST && rank != h.arg)) {
		return;
	} else {
		pred(p, XDP_DROP, SGC_ST_DROP_WINDOW);
		d = (int)(h.seq - base);
		if (d < 0 || d >= SGC_BPF_RING_SEQ)
			return;
	}
	/* The tag, once every field passed (a frame that fails a check of
	 * its own is counted for that), and before anything changes. */
	if ((cfg.flags & SGC_BPF_CFG_MAC) && !model_tag_ok(f, bytes)) {
		pred(p, XDP_DROP, SGC_ST_DROP_MAC);
		return;
	}
	model_commit(&h);
	if ((cfg.flags & SGC_BPF_CFG_KEEP) || !(cfg.kernel_colls >> h.coll & 1) ||
	    (h.coll == SGC_COLL_QUERY && (h.nchunks != 1 || (h.flags & SGC_F_DECLINE)))) {
		pred(p, XDP_PASS, SGC_ST_PASS_USER);
		return;
	}
	if (h.op == SGC_OP_CUSTOM) {	/* no custom program loaded */
		pred(p, XDP_PASS, SGC_ST_PASS_USER);
		return;
	}

	/* ---- the reduction program: the slot state machine ---- */
	idx = sgc_slot_index(h.coll, h.seq, h.chunk);
	s = &model[idx];
	touched[idx] = 1;
	bit = rank & (SGC_MAX_WORLD - 1);
	d = (int)(h.seq - s->seq);
	cmp = d ? (d > 0 ? 1 : -1) : h.chunk == s->chunk ? 0 : h.chunk > s->chunk ? 1 : -1;
	pred(p, XDP_DROP, SGC_ST_REDUCED);
	if (s->state == SGC_SLOT_OPEN && cmp > 0 && s->seq == h.seq) {
		p->stat[0] = SGC_ST_DROP_BUSY;	/* an open chunk keeps its slot */
		return;
	} else if (s->state == SGC_SLOT_FREE || cmp > 0) {
		s->seq = h.seq;
		s->chunk = h.chunk;
		s->coll = h.coll;
		s->dtype = h.dtype;
		s->op = h.op;
		s->state = SGC_SLOT_OPEN;
		s->nseen = 0;
		s->need = (uint16_t)need_for(h.coll, h.policy, h.arg);
		s->count = h.count;
		s->arg = h.arg;
		s->total = h.coll == SGC_COLL_QUERY ? 0 : h.total;
		for (w = 0; w < (cfg.world + 63u) / 64; w++)
			s->seen[w] = 0;
		memcpy(s->body, f + 42 + SGC_HDR_SIZE, bytes);
	} else if (cmp < 0) {
		p->stat[0] = SGC_ST_DROP_STALE;
		return;
	} else if (s->state == SGC_SLOT_DONE) {
		p->stat[0] = SGC_ST_DROP_LATE;
		return;
	} else if (s->coll != h.coll || s->dtype != h.dtype || s->op != h.op ||
		   s->count != h.count || s->arg != h.arg ||
		   s->total != (h.coll == SGC_COLL_QUERY ? 0 : h.total)) {
		/* A collective's goes up to user space, untouched, to be named. */
		if (h.coll == SGC_COLL_QUERY)
			p->stat[0] = SGC_ST_DROP_MISMATCH;
		else
			pred(p, XDP_PASS, SGC_ST_PASS_MISMATCH);
		return;
	} else if (s->seen[bit / 64] & (1ULL << (bit % 64))) {
		p->stat[0] = SGC_ST_DROP_DUP;
		return;
	} else {
		uint64_t in[SGC_MAX_BODY / 8];

		memcpy(in, f + 42 + SGC_HDR_SIZE, bytes);
		sgc_reduce_into(s->body, in, h.count, (enum sgc_dtype)h.dtype, (enum sgc_op)h.op);
	}
	s->seen[bit / 64] |= 1ULL << (bit % 64);
	s->nseen++;
	if (s->nseen < s->need)
		return;
	s->state = SGC_SLOT_DONE;
	p->stat[1] = SGC_ST_COMPLETED;
	p->stat[2] = -1;
	p->complete = 1;
	p->slot = idx;
	p->blen = bytes;
	p->res = h;
	p->res.type = SGC_MSG_RESULT;
	p->res.flags = SGC_F_KERNEL | (h.coll == SGC_COLL_BARRIER ? SGC_F_DONE : 0);
	p->res.rank = 0;
	p->res.aux = 0;
	p->res.fan_first = 0;
	p->res.fan_end = 0;
	p->res.stamp = 0;
	if ((cfg.flags & SGC_BPF_CFG_RINGBUF) && !(cfg.flags & SGC_BPF_CFG_ALLGATHER)) {
		p->stat[2] = SGC_ST_DELIVERED;
		p->stat[3] = -1;
		p->ring = 1;
	} else {
		p->verdict = XDP_PASS;
	}
}

/* ------------------------------------------------------------ frames */

static void random_body(uint8_t *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i += 8) {
		uint64_t v = rnd();

		/* Some extremes: zero, all ones, top bits. */
		switch (v & 15) {
		case 0: v = 0; break;
		case 1: v = ~0ULL; break;
		case 2: v = 0x8080808080808080ULL; break;
		case 3: v = 0x7f7f7f7f7f7f7f7fULL; break;
		}
		memcpy(b + i, &v, n - i < 8 ? n - i : 8);
	}
}

static void new_coll(struct live *l)
{
	static const uint8_t kinds[] = { SGC_COLL_ALLREDUCE, SGC_COLL_REDUCE, SGC_COLL_BCAST,
					 SGC_COLL_BARRIER, SGC_COLL_QUERY, SGC_COLL_ALLREDUCE };
	uint32_t ch, cap;

	memset(l, 0, sizeof(*l));
	l->coll = kinds[below(sizeof(kinds))];
	l->dtype = (uint8_t)below(8);
	l->op = below(40) ? (uint8_t)below(7) : SGC_OP_CUSTOM;
	if (l->coll == SGC_COLL_QUERY) {
		if (below(4)) {		/* the query in progress */
			l->seq = qbase;
			l->policy = qpolicy;
			l->arg = qwant;
		} else {
			l->seq = qbase + below(SGC_BPF_QUERY_SEQ + 1);
			l->policy = (uint8_t)below(3);
			l->arg = (uint16_t)below(cfg.world + 1u);
		}
		l->nchunks = below(4) ? 1 : 1 + below(3);
	} else {
		l->seq = base + (below(16) ? below(SGC_BPF_RING_SEQ) : below(2 * SGC_BPF_RING_SEQ));
		l->arg = l->coll == SGC_COLL_ALLREDUCE || l->coll == SGC_COLL_BARRIER ?
			 0 : (uint16_t)below(cfg.world);
		l->nchunks = below(3) ? 1 + below(4) : 1 + below(40);
	}
	cap = cfg.chunk_bytes / sgc_wire_dtype_size(l->dtype);
	for (ch = 0; ch < l->nchunks; ch++) {
		if (l->coll == SGC_COLL_BARRIER)
			l->count[ch] = 0;
		else
			l->count[ch] = (uint16_t)(below(4) ? 1 + below(64) : below(cap + 1));
	}
}

/* A valid contribution to @l from a rank it wants. */
static void contrib_frame(const struct live *l, struct t_frame *f)
{
	uint32_t ch = below(l->nchunks);
	int r;

	if (l->coll == SGC_COLL_BCAST)
		r = l->arg;
	else if (l->coll == SGC_COLL_QUERY)
		r = 1 + (int)below(cfg.world - 1u);
	else
		r = (int)below(cfg.world);
	t_contrib(f, r, l->coll, l->seq, ch, l->nchunks, l->dtype, l->op, l->count[ch]);
	f->h.arg = l->arg;
	f->h.policy = l->policy;
	f->h.aux = base;
	if (l->coll == SGC_COLL_QUERY && !below(20))
		f->h.flags |= SGC_F_DECLINE;
	random_body(f->body, f->blen);
}

/* One mutation of a frame description. */
static void mutate_fields(struct t_frame *f)
{
	uint8_t *hb = (uint8_t *)&f->h;

	switch (below(22)) {
	case 0: f->h.magic ^= (uint16_t)(1u << below(16)); break;
	case 1: f->h.version = (uint8_t)rnd(); break;
	case 2: f->h.type = (uint8_t)below(16); break;
	case 3: f->h.seq += (uint32_t)below(400) - 200; break;
	case 4: f->h.job_id ^= 1ULL << below(64); break;
	case 5: f->h.chunk = below(3) ? f->h.chunk + 1 : (uint32_t)rnd(); break;
	case 6: f->h.nchunks = below(3) ? below(3) : (uint32_t)rnd(); break;
	case 7: f->h.rank = below(2) ? (uint16_t)below(cfg.world + 2u) : (uint16_t)rnd(); break;
	case 8: f->h.count = (uint16_t)(below(2) ? f->h.count + below(3) - 1 : rnd()); break;
	case 9: f->h.dtype = (uint8_t)below(12); break;
	case 10: f->h.op = (uint8_t)below(10); break;
	case 11: f->h.coll = (uint8_t)below(8); break;
	case 12: f->h.policy = (uint8_t)below(5); break;
	case 13: f->h.arg = (uint16_t)below(cfg.world + 3u); break;
	case 14: f->h.flags ^= (uint16_t)(1u << below(8)); break;
	case 15: f->h.stamp = (uint32_t)rnd(); break;
	case 16: f->h.fan_first = (uint16_t)below(8); f->h.fan_end = (uint16_t)below(80); break;
	case 17: f->udp_len_delta = (int)below(9) - 4; break;
	case 18: f->ip_len_delta = (int)below(9) - 4; break;
	case 19: f->payload_len = (int)below(SGC_HDR_SIZE + (uint32_t)f->blen + 1); break;
	case 20:
		switch (below(10)) {
		case 0: f->eth_proto = (uint16_t)(below(2) ? ETH_P_ARP : ETH_P_IPV6); break;
		case 1: f->ip_proto = (uint8_t)(below(2) ? IPPROTO_TCP : IPPROTO_ICMP); break;
		case 2: f->ihl = (uint8_t)(6 + below(10)); break;	/* options */
		case 3: f->frag_off = below(2) ? 0x2000 : (uint16_t)(1 + below(0x1fff)); break;
		case 4: f->frag_off = 0x4000; break;	/* DF: still ours */
		case 5: f->dport = htons((uint16_t)(T_COORD_PORT + 1)); break;
		case 6: f->daddr = inet_addr("10.9.0.2"); break;
		case 7: f->sport = htons((uint16_t)(ntohs(f->sport) + 1)); break;
		case 8: f->saddr = t_rank_ip((int)below(cfg.world)); break;
		default: f->saddr = htonl(0x0a090900u + below(256)); break;
		}
		break;
	default:
		hb[below(SGC_HDR_SIZE)] = (uint8_t)rnd();
	}
}

/* A sealed contribution made into what a sender without the job key, or
 * with another one, can send. */
static void key_fault(struct t_frame *f)
{
	switch (below(7)) {
	case 0: f->tag ^= 1ULL << below(64); break;
	case 1: t_seal(f, &other_mk); break;
	case 2: f->tagged = 0; f->h.flags &= (uint16_t)~SGC_F_MAC; break;
	case 3: f->tagged = 0; break;		/* the flag, no tag */
	case 4:					/* the tag cut short */
		f->payload_len = (int)(SGC_HDR_SIZE + f->blen + below(SGC_MAC_TAG_SIZE));
		break;
	case 5:					/* a replay with a new watermark */
		f->h.aux += 1 + below(1000);
		break;
	default:				/* the body changed under the tag */
		if (f->blen)
			f->body[below((uint32_t)f->blen)] ^= (uint8_t)(1u << below(8));
		else
			f->h.seq++;
	}
}

/* Build the next frame to feed; returns its length. */
static size_t next_frame(uint8_t *out, struct t_frame *f)
{
	uint32_t roll = below(100), n, i;
	bool keyed = cfg.flags & SGC_BPF_CFG_MAC, sealed = false;
	size_t len;

	if (!ncolls || !below(64)) {	/* replace a collective */
		if (ncolls < MAX_COLLS)
			new_coll(&colls[ncolls++]);
		else
			new_coll(&colls[below(MAX_COLLS)]);
	}
	if (roll < 4) {			/* random bytes, sometimes IPv4/UDP to us */
		t_contrib(f, 1, SGC_COLL_ALLREDUCE, base, 0, 1, SGC_INT32, SGC_SUM, 0);
		len = t_build(f, out);
		n = 14 + below(FRAME_MAX - 14);
		for (i = below(2) ? (uint32_t)len : 0; i < n; i++)
			out[i] = (uint8_t)rnd();
		return n;
	}
	/* Half to the newest collective, so that chunks complete. */
	contrib_frame(&colls[below(2) ? ncolls - 1 : (int)below((uint32_t)ncolls)], f);
	if (roll < 10) {		/* another message type, valid-looking */
		static const uint8_t types[] = { SGC_MSG_HELLO, SGC_MSG_READY, SGC_MSG_NACK,
						 SGC_MSG_ACK, SGC_MSG_BYE, SGC_MSG_RESULT,
						 SGC_MSG_ABORT, SGC_MSG_PULL };
		f->h.type = types[below(sizeof(types))];
		if (f->h.type == SGC_MSG_HELLO)
			f->h.job_id = 0;
	} else if (roll < 55) {		/* mutated contribution */
		/* With a key, mostly sealed first, so that the mutations
		 * break the tag; a third with a right tag on wrong fields. */
		if (keyed && below(3)) {
			t_seal(f, &job_mk);
			sealed = true;
		}
		n = 1 + below(3);
		for (i = 0; i < n; i++)
			mutate_fields(f);
	}
	if (keyed && !sealed) {
		t_seal(f, &job_mk);
		if (roll >= 63 && !below(4))	/* a forgery of a valid one */
			key_fault(f);
	}
	len = t_build(f, out);
	if (roll >= 55 && roll < 60) {	/* byte flips in the built frame */
		n = 1 + below(4);
		for (i = 0; i < n; i++)
			out[below((uint32_t)len)] ^= (uint8_t)(1u << below(8));
	} else if (roll >= 60 && roll < 63 && len + 16 < FRAME_MAX) {
		n = 1 + below(16);	/* trailing padding: tolerated */
		for (i = 0; i < n; i++)
			out[len + i] = (uint8_t)rnd();
		len += n;
	}
	return len;
}

/* ------------------------------------------------------------ running */

/* All counters in one syscall (t_stats() takes one per counter). */
static void read_stats(uint64_t st[SGC_ST_MAX])
{
	static uint64_t *v;
	static int ncpu;
	__u32 keys[SGC_ST_MAX], out_batch, count = SGC_ST_MAX;
	int i, c;
	LIBBPF_OPTS(bpf_map_batch_opts, o);

	if (!v) {
		ncpu = libbpf_num_possible_cpus();
		v = calloc((size_t)SGC_ST_MAX * (size_t)ncpu, sizeof(*v));
		if (!v)
			exit(1);
	}
	if (bpf_map_lookup_batch(bpf_map__fd(S->maps.stats), NULL, &out_batch, keys, v, &count, &o) &&
	    errno != ENOENT) {
		t_stats(S, st);
		return;
	}
	memset(st, 0, sizeof(uint64_t) * SGC_ST_MAX);
	for (i = 0; i < (int)count; i++)
		if (keys[i] < SGC_ST_MAX)
			for (c = 0; c < ncpu; c++)
				st[keys[i]] += v[(size_t)i * ncpu + c];
}

static int on_event(void *ctx, void *data, size_t size)
{
	const struct sgc_bpf_event *e = data;
	uint32_t w, words = (cfg.world + 63u) / 64;

	(void)ctx;
	ev_expect.got++;
	if (!ev_expect.want) {
		disagree("unexpected ring-buffer record");
		return 0;
	}
	if (size < sizeof(*e) || memcmp(&e->hdr, &ev_expect.hdr, sizeof(e->hdr)) ||
	    e->slot != ev_expect.slot || e->nseen != ev_expect.nseen ||
	    memcmp(e->body, ev_expect.body, ev_expect.blen)) {
		disagree("ring-buffer record differs from the model (slot %u/%u, nseen %u/%u)",
			 e->slot, ev_expect.slot, e->nseen, ev_expect.nseen);
		return 0;
	}
	for (w = 0; w < words; w++)
		if (e->seen[w] != ev_expect.seen[w])
			disagree("ring-buffer record: seen word %u differs", w);
	return 0;
}

static void check_slot(uint32_t idx)
{
	struct sgc_bpf_slot k;
	const struct mslot *m = &model[idx];
	uint32_t w, words = (cfg.world + 63u) / 64;

	if (t_slot(S, idx, &k)) {
		disagree("slot %u: lookup failed", idx);
		return;
	}
	if (k.state != m->state || (m->state != SGC_SLOT_FREE &&
	    (k.seq != m->seq || k.chunk != m->chunk || k.coll != m->coll || k.dtype != m->dtype ||
	     k.op != m->op || k.nseen != m->nseen || k.need != m->need || k.count != m->count ||
	     k.arg != m->arg || k.total != m->total))) {
		disagree("slot %u: kernel state %u seq %u chunk %u nseen %u need %u, model %u %u %u %u %u",
			 idx, k.state, k.seq, k.chunk, k.nseen, k.need, m->state, m->seq, m->chunk,
			 m->nseen, m->need);
		return;
	}
	if (m->state == SGC_SLOT_FREE)
		return;
	for (w = 0; w < words; w++)
		if (k.seen[w] != m->seen[w])
			disagree("slot %u: seen word %u differs", idx, w);
	if (memcmp(k.body, m->body, (size_t)m->count * sgc_wire_dtype_size(m->dtype)))
		disagree("slot %u: reduced body differs from the model", idx);
}

static void check_all_slots(void)
{
	uint32_t i;

	for (i = 0; i < SGC_BPF_SLOTS; i++)
		if (touched[i])
			check_slot(i);
}

/* The watermarks and activity records after a gather_prog run: what
 * the model says; a record moved (its time) only by the model's commit. */
static void check_commit(const struct sgc_bpf_activity *act)
{
	uint32_t i;

	for (i = 0; i < SGC_MAX_WORLD; i++)
		if (S->bss->rank_wm[i] != model_wm[i])
			disagree("rank %u's watermark is %u, model %u", i, S->bss->rank_wm[i],
				 model_wm[i]);
	for (i = 0; i < SGC_BPF_RING_SEQ; i++) {
		bool moved = S->bss->coll_rx[i].ns != act[i].ns;

		if (S->bss->coll_rx[i].seq != model_act_seq[i] || moved != ((int)i == model_act))
			disagree("activity record %u: seq %u%s, model seq %u%s", i,
				 S->bss->coll_rx[i].seq, moved ? " (moved)" : "", model_act_seq[i],
				 (int)i == model_act ? " (moved)" : "");
	}
}

static void run_gather(const uint8_t *frame, size_t len)
{
	uint64_t before[SGC_ST_MAX], after[SGC_ST_MAX], want[SGC_ST_MAX] = { 0 };
	static struct sgc_bpf_activity act[SGC_BPF_RING_SEQ];
	static struct t_run run;
	struct predict p;
	int i, err;

	read_stats(before);
	for (i = 0; i < SGC_BPF_RING_SEQ; i++)
		act[i].ns = S->bss->coll_rx[i].ns;
	model_gather(frame, len, &p);
	err = t_run_xdp(gather_fd, frame, len, &run);
	stat_runs[0]++;
	if (err) {
		disagree("gather_prog: BPF_PROG_RUN failed: %s (len %zu)", strerror(-err), len);
		return;
	}
	read_stats(after);
	check_commit(act);
	for (i = 0; i < 4 && p.stat[i] >= 0; i++)
		want[p.stat[i]]++;
	outcome[p.stat[0]]++;
	outcome_last = p.stat[0];
	completed += p.complete;
	completed_last = p.complete ? model[p.slot].nseen : 0;
	if (run.retval != XDP_PASS && run.retval != XDP_DROP)
		disagree("gather_prog returned %u", run.retval);
	else if (run.retval != p.verdict)
		disagree("gather_prog verdict %u, model %u (model counter %s)", run.retval, p.verdict,
			 t_stat_names[p.stat[0]]);
	for (i = 0; i < SGC_ST_MAX; i++)
		if (after[i] - before[i] != want[i])
			disagree("gather_prog moved %s by %llu, model %llu (model counter %s)",
				 t_stat_names[i], (unsigned long long)(after[i] - before[i]),
				 (unsigned long long)want[i], t_stat_names[p.stat[0]]);
	if (p.untouched && !p.complete &&
	    (run.meta_len || run.out_len != len || memcmp(run.out, frame, len)))
		disagree("gather_prog changed a frame it passed (%s)", t_stat_names[p.stat[0]]);
	if (p.complete && !p.ring) {
		const struct sgc_bpf_meta *m = (const void *)run.out;
		const uint8_t *fr = run.out + run.meta_len;

		if (run.meta_len != sizeof(*m) || m->magic != SGC_BPF_META_MAGIC || m->slot != p.slot ||
		    run.out_len != run.meta_len + len)
			disagree("completing frame: bad metadata");
		else if (memcmp(fr, frame, 40) || memcmp(fr + 42, &p.res, SGC_HDR_SIZE) ||
			 memcmp(fr + 42 + SGC_HDR_SIZE, model[p.slot].body, p.blen))
			disagree("completing frame differs from the model's RESULT");
	}
	if (p.ring) {
		ev_expect.want = 1;
		ev_expect.got = 0;
		ev_expect.hdr = p.res;
		ev_expect.slot = p.slot;
		ev_expect.nseen = model[p.slot].nseen;
		memcpy(ev_expect.seen, model[p.slot].seen, sizeof(ev_expect.seen));
		memcpy(ev_expect.body, model[p.slot].body, p.blen);
		ev_expect.blen = p.blen;
	} else {
		ev_expect.want = 0;
		ev_expect.got = 0;
	}
	if (ring) {
		ring_buffer__consume(ring);
		if (ev_expect.got != ev_expect.want)
			disagree("%d ring-buffer records, model %d", ev_expect.got, ev_expect.want);
	}
}

static int run_tc(int fd, const uint8_t *frame, size_t len, uint8_t *out, uint32_t *out_len,
		  uint32_t *retval)
{
	LIBBPF_OPTS(bpf_test_run_opts, o,
		.data_in = frame,
		.data_size_in = (__u32)len,
		.data_out = out,
		.data_size_out = 4096,
		.repeat = 1,
	);

	if (bpf_prog_test_run_opts(fd, &o))
		return -errno;
	*out_len = o.data_size_out;
	*retval = o.retval;
	return 0;
}

/* With a job key, scatter_prog tags every clone (sgc_fan_mac_setup() in
 * fanout.bpf.h): the frame must hold the body its UDP length says and a
 * tag after it, or the request fails whole. */
static bool fan_can_tag(const uint8_t *frame, size_t len)
{
	uint32_t ulen = be16(frame + 38), n;

	if (ulen < 8 + SGC_HDR_SIZE + SGC_MAC_TAG_SIZE)
		return false;
	n = ulen - 8 - SGC_HDR_SIZE - SGC_MAC_TAG_SIZE;
	return n <= SGC_MAX_BODY && 42 + SGC_HDR_SIZE + n + SGC_MAC_TAG_SIZE <= len;
}

/* scatter_prog on an egress frame, notify_prog on the same (no metadata:
 * BPF_PROG_RUN of a tc program has none, so it must leave it alone). */
static void run_tc_pair(const uint8_t *frame, size_t len)
{
	static uint8_t out[4096];
	uint64_t before[SGC_ST_MAX], after[SGC_ST_MAX], want[SGC_ST_MAX] = { 0 };
	struct sgc_hdr h = { 0 };
	uint32_t out_len = 0, retval = 0, r, end, errs = 0;	/* set unless run_tc fails */
	uint16_t want_flags = 0;
	size_t ip_need;
	int match, i, err;

	if (len < ETH_HLEN)
		return;
	match = len >= 90 && be16(frame + 12) == ETH_P_IP && frame[14] >> 4 == 4 &&
		(frame[14] & 15) == 5 && frame[14 + 9] == IPPROTO_UDP &&
		!(be16(frame + 14 + 6) & 0x3fff) && ne32(frame + 14 + 12) == cfg.coord_ip &&
		ne16(frame + 34) == cfg.coord_port;
	memcpy(&h, frame + 42, len >= 90 ? sizeof(h) : 0);
	match = match && h.magic == SGC_WIRE_MAGIC && h.version == SGC_WIRE_VERSION &&
		h.job_id == cfg.job_id && (h.flags & SGC_F_FANOUT);
	if (match) {
		/* Every clone fails: cfg.ifindex is no device. */
		end = h.fan_end < cfg.world ? h.fan_end : cfg.world;
		for (r = h.fan_first; r < end; r++)
			errs += r != 0;
		want_flags = h.flags & (uint16_t)~SGC_F_FANOUT;
		if (cfg.flags & SGC_BPF_CFG_MAC) {
			if (fan_can_tag(frame, len))
				want_flags |= SGC_F_MAC;
			else
				errs = 1;	/* no clone: one error */
		}
		want[SGC_ST_FANOUT_ERR] = errs;
	}
	read_stats(before);
	err = run_tc(scatter_fd, frame, len, out, &out_len, &retval);
	stat_runs[1]++;
	read_stats(after);
	/* The kernel refuses to build an skb from an IPv4 or IPv6 frame too
	 * short for its own IP header: no program sees such a frame. */
	ip_need = (size_t)(frame[14] & 15) * 4 > 20 ? (size_t)(frame[14] & 15) * 4 : 20;
	if (err == -EINVAL && ((be16(frame + 12) == ETH_P_IP && len < ETH_HLEN + ip_need) ||
			       (be16(frame + 12) == ETH_P_IPV6 && len < ETH_HLEN + 40))) {
		tc_refused++;
		return;
	}
	if (err) {
		disagree("scatter_prog: BPF_PROG_RUN failed: %s (len %zu)", strerror(-err), len);
		return;
	}
	if ((int)retval != (match ? TC_ACT_SHOT : TCX_NEXT))
		disagree("scatter_prog returned %d, model %d", (int)retval, match ? TC_ACT_SHOT : TCX_NEXT);
	for (i = 0; i < SGC_ST_MAX; i++)
		if (after[i] - before[i] != want[i])
			disagree("scatter_prog moved %s by %llu, model %llu", t_stat_names[i],
				 (unsigned long long)(after[i] - before[i]),
				 (unsigned long long)want[i]);
	if (!match && (out_len != len || memcmp(out, frame, len)))
		disagree("scatter_prog changed a frame that is not a fan-out request");
	if (match) {
		struct sgc_hdr o;

		memcpy(&o, out + 42, sizeof(o));
		if (o.flags != want_flags || o.fan_first || o.fan_end)
			disagree("scatter_prog left the fan-out request in the frame");
	}

	read_stats(before);
	err = run_tc(notify_fd, frame, len, out, &out_len, &retval);
	stat_runs[2]++;
	read_stats(after);
	if (err) {
		disagree("notify_prog: BPF_PROG_RUN failed: %s", strerror(-err));
		return;
	}
	if ((int)retval != TCX_NEXT || out_len != len || memcmp(out, frame, len) ||
	    memcmp(before, after, sizeof(before)))
		disagree("notify_prog acted on a frame without its metadata (ret %d)", (int)retval);
}

/* An egress variant of @f: from the coordinator, often a fan-out request. */
static SGC_MAYBE_UNUSED size_t egress_frame(struct t_frame *f, uint8_t *out)
{
	f->saddr = cfg.coord_ip;
	f->sport = cfg.coord_port;
	f->daddr = t_rank_ip(1 + (int)below(cfg.world - 1u));
	f->dport = t_rank_port(1);
	f->h.type = SGC_MSG_RESULT;
	if (below(4))
		f->h.flags |= SGC_F_FANOUT;
	f->h.fan_first = (uint16_t)below(4);
	f->h.fan_end = (uint16_t)(below(8) ? below(cfg.world + 3u) : rnd());
	if (!below(4))
		mutate_fields(f);
	return t_build(f, out);
}

/* ------------------------------------------------------------ phases */

static int load_phase(const struct phase *ph)
{
	uint8_t other[SGC_KEY_BYTES];
	__u32 zero = 0;

	cfg = t_cfg(ph->world, ph->flags);
	cfg.ifindex = ph->ifindex;
	if (ph->kernel_colls)
		cfg.kernel_colls = ph->kernel_colls;
	/* A keyed job's chunks leave room for the tag (sgc_init()); here,
	 * for BPF_PROG_RUN's largest frame. */
	if (ph->flags & SGC_BPF_CFG_MAC)
		cfg.chunk_bytes -= SGC_MAC_TAG_SIZE;
	S = t_load(&cfg);
	if (!S)
		return -1;
	sgc_mac_derive(job_key, &job_mk);
	memcpy(other, job_key, sizeof(other));
	other[SGC_KEY_BYTES - 1] ^= 1;
	sgc_mac_derive(other, &other_mk);
	/* What the loader writes before attaching (path_bpf.c). */
	if ((ph->flags & SGC_BPF_CFG_MAC) &&
	    bpf_map_update_elem(bpf_map__fd(S->maps.mac_key), &zero, &job_mk, BPF_ANY)) {
		fprintf(stderr, "mac_key: %s\n", strerror(errno));
		return -1;
	}
	memset(model_wm, 0, sizeof(model_wm));
	memset(model_act_seq, 0, sizeof(model_act_seq));
	gather_fd = bpf_program__fd(S->progs.gather_prog);
	scatter_fd = bpf_program__fd(S->progs.scatter_prog);
	notify_fd = bpf_program__fd(S->progs.notify_prog);
	ring = NULL;
	if (ph->flags & SGC_BPF_CFG_RINGBUF) {
		ring = ring_buffer__new(bpf_map__fd(S->maps.events), on_event, NULL, NULL);
		if (!ring) {
			fprintf(stderr, "ring_buffer__new: %s\n", strerror(errno));
			return -1;
		}
	}
	memset(model, 0, sizeof(*model) * SGC_BPF_SLOTS);
	memset(touched, 0, SGC_BPF_SLOTS);
	ncolls = 0;
	base = (uint32_t)rnd();
	/* Sometimes right below the wrap of the sequence space. */
	if (!below(2))
		base = 0u - 40;
	qbase = base / 3;
	qpolicy = (uint8_t)below(3);
	qwant = (uint16_t)below(cfg.world + 1u);
	S->bss->win.base = base;
	publish_query();
	return 0;
}

static SGC_MAYBE_UNUSED void unload_phase(void)
{
	ring_buffer__free(ring);
	ring = NULL;
	sgc__destroy(S);
	S = NULL;
}

static SGC_MAYBE_UNUSED double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The libFuzzer runs and their seeds use one fixed window. */
#define LF_BASE		1000
#define LF_QBASE	300
#define LF_QPOLICY	SGC_WIRE_WAIT_N
#define LF_QWANT	2
#define LF_FRAMES	64	/* frames per generated seed */

/* -w DIR: seeds for the libFuzzer target, sequences of generated frames
 * as [len lo][len hi][frame]. */
static SGC_MAYBE_UNUSED int write_seeds(const char *dir, int nseeds)
{
	static uint8_t frame[4096];
	struct t_frame f;
	char path[4096];
	int i, j;

	cfg = t_cfg(phases[0].world, phases[0].flags);
	cfg.ifindex = phases[0].ifindex;
	base = LF_BASE;
	qbase = LF_QBASE;
	qpolicy = LF_QPOLICY;
	qwant = LF_QWANT;
	mkdir(dir, 0755);
	for (i = 0; i < nseeds; i++) {
		FILE *out;

		snprintf(path, sizeof(path), "%s/gen-%03d", dir, i);
		out = fopen(path, "wb");
		if (!out)
			return -1;
		ncolls = 0;
		for (j = 0; j < LF_FRAMES; j++) {
			size_t len = next_frame(frame, &f);
			uint8_t hdr[2] = { (uint8_t)len, (uint8_t)(len >> 8) };

			fwrite(hdr, 1, 2, out);
			fwrite(frame, 1, len, out);
		}
		if (fclose(out))
			return -1;
	}
	return 0;
}

#ifdef SGC_FUZZ_LIBFUZZER
/*
 * libFuzzer mode: the input is a sequence of frames ([len lo][len hi]
 * [frame]) run through phase A's programs with every model check (a
 * disagreement aborts).  The programs are not instrumented, so the
 * feedback is libFuzzer's "extra counters": one per (previous outcome,
 * outcome) pair of gather_prog's counters, and one per completion at each
 * nseen, so inputs that reach new verdict sequences are kept.
 */
__attribute__((section("__libfuzzer_extra_counters")))
static uint8_t lf_pairs[SGC_ST_MAX * SGC_ST_MAX + 64];

static void lf_reset_slots(void)
{
	static struct sgc_bpf_slot zero;
	__u32 i;

	for (i = 0; i < SGC_BPF_SLOTS; i++) {
		if (!touched[i])
			continue;
		bpf_map_update_elem(bpf_map__fd(S->maps.slots), &i, &zero, BPF_F_LOCK);
		memset(&model[i], 0, sizeof(model[i]));
		touched[i] = 0;
	}
}

static void lf_report(void)
{
	fprintf(stderr, "fuzz_bpf_lf: %llu frames through gather_prog, %llu through scatter_prog "
		"and notify_prog; %llu chunks completed\n", (unsigned long long)stat_runs[0],
		(unsigned long long)stat_runs[1], (unsigned long long)completed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t frame[FRAME_MAX];
	static bool ready;
	int prev = SGC_ST_MAX - 1;
	size_t off = 0;

	if (!ready) {
		t_require_bpf();
		rng = 1;
		model = calloc(SGC_BPF_SLOTS, sizeof(*model));
		touched = calloc(SGC_BPF_SLOTS, 1);
		if (!model || !touched || load_phase(&phases[0]))
			abort();
		atexit(lf_report);
		ready = true;
	}
	lf_reset_slots();
	base = LF_BASE;
	qbase = LF_QBASE;
	qpolicy = LF_QPOLICY;
	qwant = LF_QWANT;
	S->bss->win.base = base;
	publish_query();
	while (off + 2 <= size) {
		size_t len = (size_t)data[off] | (size_t)data[off + 1] << 8;

		off += 2;
		if (len > size - off)
			len = size - off;
		if (len > FRAME_MAX)
			len = FRAME_MAX;
		memcpy(frame, data + off, len);
		off += len;
		if (len < ETH_HLEN)
			continue;
		run_gather(frame, len);
		lf_pairs[prev * SGC_ST_MAX + outcome_last]++;
		prev = outcome_last;
		if (completed_last)
			lf_pairs[SGC_ST_MAX * SGC_ST_MAX + (completed_last & 63)]++;
		run_tc_pair(frame, len);
	}
	check_all_slots();
	return 0;
}
#else
int main(int argc, char **argv)
{
	static uint8_t frame[4096];
	uint64_t total = 200000, seed = 0x5eedf00dcafe1234ULL, n, done = 0;
	double t0;
	size_t k;
	int opt, i;

	while ((opt = getopt(argc, argv, "n:s:w:")) != -1) {
		if (opt == 'n') {
			total = strtoull(optarg, NULL, 0);
		} else if (opt == 's') {
			seed = strtoull(optarg, NULL, 0);
		} else if (opt == 'w') {
			rng = seed;
			return write_seeds(optarg, 32) ? 1 : 0;
		} else {
			fprintf(stderr, "usage: %s [-n packets] [-s seed] [-w seed-dir]\n", argv[0]);
			return 2;
		}
	}
	t_require_bpf();
	rng = seed ? seed : 1;
	model = calloc(SGC_BPF_SLOTS, sizeof(*model));
	touched = calloc(SGC_BPF_SLOTS, 1);
	if (!model || !touched)
		return 1;

	t0 = now_s();
	for (k = 0; k < sizeof(phases) / sizeof(phases[0]); k++) {
		const struct phase *ph = &phases[k];
		uint64_t count = (uint64_t)(total * ph->share) + 1, was[SGC_ST_MAX], done0 = completed;
		struct t_frame f;
		size_t len;

		memcpy(was, outcome, sizeof(was));
		if (load_phase(ph)) {
			fprintf(stderr, "fuzz_bpf: cannot load the BPF object for phase %s\n", ph->name);
			return 1;
		}
		for (n = 0; n < count; n++, done++) {
			npkt = done;
			len = next_frame(frame, &f);
			run_gather(frame, len);
			if (ph->tc && below(3) == 0) {
				len = egress_frame(&f, frame);
				run_tc_pair(frame, len);
			}
			/* User space retires collectives: the window moves. */
			if (!below(512)) {
				base += below(8);
				if (below(2)) {	/* the next query */
					qbase++;
					qpolicy = (uint8_t)below(3);
					qwant = (uint16_t)below(cfg.world + 1u);
				}
				S->bss->win.base = base;
				publish_query();
			}
			if (n % 4096 == 4095)
				check_all_slots();
		}
		check_all_slots();
		unload_phase();
		fprintf(stderr, "fuzz_bpf: phase %s (world %d, flags %#x): %llu packets:", ph->name,
			ph->world, ph->flags, (unsigned long long)count);
		for (i = 0; i < SGC_ST_MAX; i++)
			if (outcome[i] != was[i])
				fprintf(stderr, " %s=%llu", t_stat_names[i],
					(unsigned long long)(outcome[i] - was[i]));
		fprintf(stderr, "; chunks completed %llu\n", (unsigned long long)(completed - done0));
	}

	printf("fuzz_bpf: seed %#llx: %llu generated frames; %llu gather_prog, %llu scatter_prog, "
	       "%llu notify_prog runs in %.1f s; %llu disagreements with the model\n",
	       (unsigned long long)seed, (unsigned long long)done,
	       (unsigned long long)stat_runs[0], (unsigned long long)stat_runs[1],
	       (unsigned long long)stat_runs[2], now_s() - t0, (unsigned long long)nfail);
	printf("fuzz_bpf: gather_prog outcomes:");
	for (i = 0; i < SGC_ST_MAX; i++)
		if (outcome[i])
			printf(" %s=%llu", t_stat_names[i], (unsigned long long)outcome[i]);
	printf("; chunks completed %llu; tc frames the kernel refused %llu\n",
	       (unsigned long long)completed, (unsigned long long)tc_refused);
	free(model);
	free(touched);
	return nfail ? 1 : 0;
}
#endif /* SGC_FUZZ_LIBFUZZER */
