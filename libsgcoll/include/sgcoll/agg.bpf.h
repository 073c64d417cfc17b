/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * sgcoll/agg.bpf.h: write your own in-kernel reduction for libsgcoll.
 *
 * libsgcoll's gather_prog (XDP, on the coordinator's interface) checks every
 * contribution datagram (job, registered source, window, lengths), loads its
 * body into a per-CPU hand-off record and tail-calls a reduction program:
 * one of its 56 built-in dtype x op programs, or yours when the datagram's
 * op is SGC_OP_CUSTOM (7).  A reduction program only combines bytes; this
 * header does the rest: slot ownership, duplicate and late detection,
 * counting, completion, and delivery of the result.
 *
 *	#include <sgcoll/agg.bpf.h>
 *
 *	SEC("xdp")
 *	int my_reduce(struct xdp_md *ctx)
 *	{
 *		struct sgc_agg a;
 *		__s32 *acc;
 *		const __s32 *in;
 *		__u32 i;
 *
 *		SGC_AGG_INTRO(a, ctx);		// returns on a bad hand-off
 *		if (sgc_agg_acquire(&a)) {	// slot locked, a.in to combine
 *			acc = a.acc;
 *			in = a.in;
 *			for (i = 0; i < SGC_AGG_MAX_ELEMS(__s32); i++) {
 *				if (i >= a.count)
 *					break;
 *				acc[i] = my_op(acc[i], in[i]);
 *			}
 *		}
 *		sgc_agg_release(&a);		// seen, count, complete, unlock
 *		return sgc_agg_outro(&a);	// drop, or carry the result on
 *	}
 *	char LICENSE[] SEC("license") = "Dual BSD/GPL";
 *
 * Between sgc_agg_acquire() and sgc_agg_release() the slot's bpf_spin_lock
 * is held: no function calls there (helpers or non-inlined functions), only
 * __always_inline code; loops need a constant bound (SGC_AGG_MAX_ELEMS)
 * with a break on a.count (one such loop: a second loop on the same a.count
 * is walked by the verifier once per exit of the first).  Maps of your own
 * are looked up before sgc_agg_acquire().  The first contribution of a
 * chunk is copied into the slot by the library, so your code only ever
 * combines.
 * a.acc and a.in are 8-byte aligned and SGC_MAX_BODY bytes long; a.dtype
 * is the datagram's dtype, a.count its element count, a.bytes its body
 * length (count * element size).
 *
 * Loading: your object declares the maps below (slots, stats, events,
 * jobs); the loader makes them the library's own with bpf_map__reuse_fd()
 * before loading it, then puts the program at index SGC_BPF_CUSTOM_INDEX
 * (56) of the library's reduce_progs.  Your program needs no configuration.
 *
 * The types a custom program shares with the library (the slot, the result
 * record, the counters, the reduce_progs index) come from <sgcoll/abi.h>,
 * the header libsgcoll's own programs and loader are built against.
 */
#ifndef SGCOLL_AGG_BPF_H
#define SGCOLL_AGG_BPF_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/types.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include <sgcoll/abi.h>

/* ---------------------------------------------------------------- types */

#define SGC_AGG_EVENTS_BYTES	(4u << 20)

/* Elements of type T that fit a slot body: the constant loop bound. */
#define SGC_AGG_MAX_ELEMS(T)	(SGC_MAX_BODY / sizeof(T))

/*
 * The names this header gave the shared types before <sgcoll/abi.h> held
 * them, for programs written against those.
 */
#define sgc_agg_slot			sgc_bpf_slot
#define sgc_agg_event			sgc_bpf_event
#define sgc_agg_meta			sgc_bpf_meta
#define SGC_AGG_SLOTS			SGC_BPF_SLOTS
#define SGC_AGG_SEEN_WORDS		SGC_BPF_SEEN_WORDS
#define SGC_AGG_CUSTOM_OP		SGC_OP_CUSTOM
#define SGC_AGG_CUSTOM_INDEX		SGC_BPF_CUSTOM_INDEX
#define SGC_AGG_META_MAGIC		SGC_BPF_META_MAGIC
#define SGC_AGG_FREE			SGC_SLOT_FREE
#define SGC_AGG_OPEN			SGC_SLOT_OPEN
#define SGC_AGG_DONE			SGC_SLOT_DONE
#define SGC_AGG_ST_DROP_MALFORMED	SGC_ST_DROP_MALFORMED
#define SGC_AGG_ST_DROP_STALE		SGC_ST_DROP_STALE
#define SGC_AGG_ST_DROP_LATE		SGC_ST_DROP_LATE
#define SGC_AGG_ST_DROP_DUP		SGC_ST_DROP_DUP
#define SGC_AGG_ST_DROP_MISMATCH	SGC_ST_DROP_MISMATCH
#define SGC_AGG_ST_REDUCED		SGC_ST_REDUCED
#define SGC_AGG_ST_COMPLETED		SGC_ST_COMPLETED
#define SGC_AGG_ST_RINGBUF_FULL		SGC_ST_RINGBUF_FULL
#define SGC_AGG_ST_FANOUT_ERR		SGC_ST_FANOUT_ERR
#define SGC_AGG_ST_DELIVERED		SGC_ST_DELIVERED
#define SGC_AGG_ST_MAX			SGC_ST_MAX
#define SGC_AGG_DELIVER_RINGBUF		SGC_BPF_CFG_RINGBUF
#define SGC_AGG_DELIVER_ALLGATHER	SGC_BPF_CFG_ALLGATHER

/* Frame layout gather_prog accepts: Ethernet, IPv4 without options, UDP. */
#define SGC_AGG_IP_OFF		14
#define SGC_AGG_UDP_OFF		(SGC_AGG_IP_OFF + 20)
#define SGC_AGG_HDR_OFF		(SGC_AGG_UDP_OFF + 8)
#define SGC_AGG_BODY_OFF	(SGC_AGG_HDR_OFF + SGC_HDR_SIZE)

/*
 * The hand-off from gather_prog to the reduction program it tail-calls
 * (`jobs`, per-CPU, one entry).  Everything in it has been checked; `ev`
 * is the record the result will be delivered as: its header is the
 * contribution's, its body the contribution's body, replaced by the result
 * when the contribution completes the chunk.
 */
#define SGC_AGG_ARMED		0x6a6f6221	/* set by gather_prog, consumed once */
struct sgc_agg_job {
	__u32 armed;
	__u32 slot;		/* index into `slots` */
	__u32 seq;		/* tag: (coll, seq, chunk) */
	__u32 chunk;
	__u16 rank;
	__u16 need;		/* contributions that complete the chunk */
	__u16 count;		/* elements */
	__u16 arg;		/* root, or wait_n for queries */
	__u32 bytes;		/* body bytes: count * element size */
	__u16 seen_words;	/* words of seen[] the world uses */
	__u8 coll;
	__u8 dtype;
	__u8 op;
	__u8 deliver;		/* SGC_BPF_CFG_RINGBUF, SGC_BPF_CFG_ALLGATHER */
	__u16 reserved;
	__u32 total;		/* the sender's whole vector (hdr.total) */
	struct sgc_bpf_event ev;
};

/* ----------------------------------------------------------------- maps */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SGC_BPF_SLOTS);
	__type(key, __u32);
	__type(value, struct sgc_bpf_slot);
} slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SGC_ST_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, SGC_AGG_EVENTS_BYTES);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sgc_agg_job);
} jobs SEC(".maps");

/* ------------------------------------------------------------- helpers */

static __always_inline void sgc_agg_count(__u32 stat, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &stat);

	if (v)
		*v += n;
}

/* Serial order of tags: is (seq, chunk) newer than (sseq, schunk)? */
static __always_inline int sgc_agg_tag_cmp(__u32 seq, __u32 chunk, __u32 sseq, __u32 schunk)
{
	int d = (int)(seq - sseq);

	if (d)
		return d > 0 ? 1 : -1;
	if (chunk == schunk)
		return 0;
	return chunk > schunk ? 1 : -1;
}

/* Hide a value from the optimiser (keeps clang from turning a word loop
 * into a memset/memcpy call, which BPF does not have). */
#define SGC_AGG_OPAQUE(x) asm volatile("" : "+r"(x))

/*
 * Loop bounds re-read from the hand-off record, never reused from an
 * earlier loop: a loop that breaks on `w >= n` teaches the verifier that n
 * equals w on every exit, and a later loop bounded by that same n would
 * then be walked once per exit of the first (quadratic).  A fresh load from
 * map memory is a fresh unknown, so each loop is walked once.
 */
static __always_inline __u64 sgc_agg_job_words(const struct sgc_agg_job *j)
{
	return ((__u64)*(const volatile __u32 *)&j->bytes + 7) / 8;
}

static __always_inline __u64 sgc_agg_job_seen_words(const struct sgc_agg_job *j)
{
	return *(const volatile __u16 *)&j->seen_words;
}

/* 8-byte words from @src to @dst; both are map values SGC_MAX_BODY long. */
static __always_inline void sgc_agg_copy_words(__u64 *dst, const __u64 *src, __u64 nwords)
{
	__u64 w, v;

	for (w = 0; w < SGC_MAX_BODY / 8; w++) {
		if (w >= nwords)
			break;
		v = src[w];
		SGC_AGG_OPAQUE(v);
		dst[w] = v;
	}
}

/* ------------------------------------------------------------ checksum */

/* Ones' complement addition of 32-bit partial sums (end-around carry). */
static __always_inline __u32 sgc_agg_csum_add(__u32 sum, __u32 v)
{
	sum += v;
	return sum + (sum < v);
}

/* A partial sum folded to the 16 bits of a checksum field, complemented. */
static __always_inline __u16 sgc_agg_csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/*
 * Add @n bytes of @p, map memory SGC_MAX_BODY long (a slot's or a
 * record's body), to the partial sum @sum.  bpf_csum_diff takes whole
 * words, at most 512 bytes a call; the last 1-3 bytes of an odd-sized body
 * go in as a word padded with zeros (whatever the record holds past the
 * body is masked off; the first bytes are the low ones, little-endian as
 * the wire header is).  Every sum here is of 16-bit words as they lie in
 * memory, so the folded result is stored as it is (RFC 1071).
 */
static __always_inline __u32 sgc_agg_csum_body(__u32 sum, const __u8 *p, __u32 n)
{
	/* 64-bit, so that clang needs no zero-extension between a bound
	 * check and the access, which the verifier would not follow. */
	__u64 words, off, len, lim;
	__u32 last;
	int i;

	if (n > SGC_MAX_BODY)
		n = SGC_MAX_BODY;
	words = n & ~3ull;
#pragma unroll
	for (i = 0; i < (SGC_MAX_BODY + 511) / 512; i++) {
		off = i * 512;
		if (off >= words)
			break;
		/* The piece's length, bounded where the verifier sees it:
		 * clang would drop a bound it can prove from words, and the
		 * verifier does not follow words - off. */
		lim = SGC_MAX_BODY - off < 512 ? SGC_MAX_BODY - off : 512;
		len = words - off;
		SGC_AGG_OPAQUE(len);
		if (len > lim)
			len = lim;
		sum = (__u32)bpf_csum_diff(NULL, 0, (__be32 *)(p + off), len, sum);
	}
	if (n & 3) {
		/* words <= SGC_MAX_BODY - 4 here; the bound is for the
		 * verifier, which does not know it (and opaque, or clang,
		 * which does, drops it). */
		off = words;
		SGC_AGG_OPAQUE(off);
		if (off > SGC_MAX_BODY - 4)
			off = SGC_MAX_BODY - 4;
		last = *(const __u32 *)(p + off);
		last &= (1u << (8 * (n & 3))) - 1;	/* the first n & 3 bytes */
		sum = sgc_agg_csum_add(sum, last);
	}
	return sum;
}

/*
 * The UDP checksum of a datagram built in the kernel, ready to store: the
 * pseudo-header, the UDP header (checksum field 0) and our header, read
 * from the packet at @ip (IPv4 without options, checked by the caller to
 * run to the end of our header), then @n bytes of body from @body (see
 * sgc_agg_csum_body()).  0 is sent as 0xffff: a UDP checksum of 0 means
 * "none" (RFC 768).
 */
static __always_inline __u16 sgc_agg_udp_csum(const void *ip, const __u8 *body, __u32 n)
{
	const __u16 *ulen = ip + 20 + 4;
	__u32 sum;
	__u16 csum;

	/* Protocol and UDP length complete the pseudo-header; addresses,
	 * UDP header and our header lie in a row in the packet. */
	sum = bpf_htons(IPPROTO_UDP) + *ulen;
	sum = (__u32)bpf_csum_diff(NULL, 0, (__be32 *)(ip + 12), 4 + 4 + 8 + SGC_HDR_SIZE, sum);
	sum = sgc_agg_csum_body(sum, body, n);
	csum = sgc_agg_csum_fold(sum);
	return csum ? csum : 0xffff;
}

/* --------------------------------------------------------- the program */

enum {
	SGC_AGG_REJECT = 0,	/* not reduced: stat says why */
	SGC_AGG_TAKE = 1,	/* first of its tag: copied into the slot */
	SGC_AGG_COMBINE = 2,	/* combined by the caller's code */
};

struct sgc_agg {
	struct xdp_md *xdp;
	struct sgc_agg_job *job;
	struct sgc_bpf_slot *slot;
	void *acc;		/* the slot's running result */
	const void *in;		/* this contribution's body */
	__u32 count;		/* elements */
	__u32 bytes;		/* body bytes */
	__u32 nwords;		/* ceil(bytes / 8) */
	__u32 stat;		/* counter for a rejected contribution */
	__u8 dtype;
	__u8 action;		/* SGC_AGG_REJECT / TAKE / COMBINE */
	__u8 done;		/* this contribution completed the chunk */
	__u8 ok;		/* the hand-off was good */
};

/*
 * Pick up gather_prog's hand-off.  False when there is none (the program
 * was run on its own) or it does not describe this packet.
 */
static __always_inline int sgc_agg_begin(struct sgc_agg *a, struct xdp_md *xdp)
{
	void *data = (void *)(long)xdp->data;
	void *data_end = (void *)(long)xdp->data_end;
	struct sgc_hdr *ph = data + SGC_AGG_HDR_OFF;
	struct sgc_agg_job *j;
	__u32 zero = 0, idx;

	a->xdp = xdp;
	a->action = SGC_AGG_REJECT;
	a->done = 0;
	a->ok = 0;
	a->stat = SGC_ST_DROP_MALFORMED;
	j = bpf_map_lookup_elem(&jobs, &zero);
	if (!j)
		return 0;
	a->job = j;
	if (j->armed != SGC_AGG_ARMED)
		return 0;
	j->armed = 0;
	if ((void *)(ph + 1) > data_end)
		return 0;
	if (ph->seq != j->seq || ph->chunk != j->chunk || ph->rank != j->rank)
		return 0;
	if (j->bytes > SGC_MAX_BODY || j->rank >= SGC_MAX_WORLD)
		return 0;
	idx = j->slot;
	a->slot = bpf_map_lookup_elem(&slots, &idx);
	if (!a->slot)
		return 0;
	a->acc = a->slot->body;
	a->in = j->ev.body;
	a->count = j->count;
	a->bytes = j->bytes;
	a->nwords = (j->bytes + 7) / 8;
	a->dtype = j->dtype;
	a->ok = 1;
	return 1;
}

/*
 * Lock the slot and decide what this contribution is: the first of a newer
 * tag (the slot is taken over and it is copied in at release), one more to
 * combine (returns true: combine a.in into a.acc now), or a reject
 * (stale, late, mismatched, duplicate, or a slot busy with an open chunk
 * of the same collective).  A collective's contribution whose arguments
 * differ from the slot's goes to user space, which fails the collective
 * and names the ranks: every other reject is dropped.  The lock is held
 * on return either way; sgc_agg_release() drops it.
 */
static __always_inline int sgc_agg_acquire(struct sgc_agg *a)
{
	struct sgc_bpf_slot *s = a->slot;
	struct sgc_agg_job *j = a->job;
	__u32 bit = j->rank & (SGC_MAX_WORLD - 1);
	__u64 w, n, z;
	int cmp;

	bpf_spin_lock(&s->lock);
	cmp = sgc_agg_tag_cmp(j->seq, j->chunk, s->seq, s->chunk);
	/* An open chunk of the same collective (a chunk 32 further on wants
	 * its slot) is still in the window: it keeps the slot, and the newer
	 * one is asked for again once it completed.  A slot's older seq
	 * (seq - 128, or - 4 for a query) is behind the window that let this
	 * datagram in, so that one may be taken over. */
	if (s->state == SGC_SLOT_OPEN && cmp > 0 && s->seq == j->seq) {
		a->stat = SGC_ST_DROP_BUSY;
		return 0;
	}
	if (s->state == SGC_SLOT_FREE || cmp > 0) {
		s->seq = j->seq;
		s->chunk = j->chunk;
		s->coll = j->coll;
		s->dtype = j->dtype;
		s->op = j->op;
		s->state = SGC_SLOT_OPEN;
		s->nseen = 0;
		s->need = j->need;
		s->count = j->count;
		s->arg = j->arg;
		s->total = j->total;
		s->gen++;
		n = sgc_agg_job_seen_words(j);
		for (w = 0; w < SGC_BPF_SEEN_WORDS; w++) {
			if (w >= n)
				break;
			z = 0;
			SGC_AGG_OPAQUE(z);
			s->seen[w] = z;
		}
		a->action = SGC_AGG_TAKE;
		return 0;
	}
	if (cmp < 0) {
		a->stat = SGC_ST_DROP_STALE;
		return 0;
	}
	if (s->state == SGC_SLOT_DONE) {
		a->stat = SGC_ST_DROP_LATE;
		return 0;
	}
	if (s->coll != j->coll || s->dtype != j->dtype || s->op != j->op ||
	    s->count != j->count || s->arg != j->arg || s->total != j->total) {
		a->stat = j->coll == SGC_COLL_QUERY ? SGC_ST_DROP_MISMATCH : SGC_ST_PASS_MISMATCH;
		return 0;
	}
	if (s->seen[bit / 64] & (1ULL << (bit % 64))) {
		a->stat = SGC_ST_DROP_DUP;
		return 0;
	}
	a->action = SGC_AGG_COMBINE;
	return 1;
}

/* Count the contribution in, complete the chunk if it was the last one
 * needed (the result goes into the hand-off record), unlock. */
static __always_inline void sgc_agg_release(struct sgc_agg *a)
{
	struct sgc_bpf_slot *s = a->slot;
	struct sgc_agg_job *j = a->job;
	__u32 bit = j->rank & (SGC_MAX_WORLD - 1);
	__u64 w, n, v;

	if (a->action == SGC_AGG_TAKE)
		sgc_agg_copy_words((__u64 *)s->body, (const __u64 *)j->ev.body,
				   sgc_agg_job_words(j));
	if (a->action != SGC_AGG_REJECT) {
		s->seen[bit / 64] |= 1ULL << (bit % 64);
		s->nseen++;
		if (s->nseen >= s->need) {
			s->state = SGC_SLOT_DONE;
			sgc_agg_copy_words((__u64 *)j->ev.body, (const __u64 *)s->body,
					   sgc_agg_job_words(j));
			n = sgc_agg_job_seen_words(j);
			for (w = 0; w < SGC_BPF_SEEN_WORDS; w++) {
				if (w >= n)
					break;
				v = s->seen[w];
				SGC_AGG_OPAQUE(v);
				j->ev.seen[w] = v;
			}
			j->ev.nseen = s->nseen;
			a->done = 1;
		}
	}
	bpf_spin_unlock(&s->lock);
}

/* Rewrite the completing datagram into the RESULT, in place: 0, or 1
 * when it could not be marked for notify_prog, or -1. */
static __always_inline int sgc_agg_write_result(struct sgc_agg *a)
{
	struct xdp_md *xdp = a->xdp;
	struct sgc_agg_job *j = a->job;
	void *data = (void *)(long)xdp->data;
	void *data_end = (void *)(long)xdp->data_end;
	__u64 *dst = data + SGC_AGG_HDR_OFF;
	const __u64 *src = (const __u64 *)&j->ev.hdr;
	__u16 *udp_csum = data + SGC_AGG_UDP_OFF + 6;
	struct sgc_bpf_meta *meta;
	__u32 n = a->bytes;

	if ((void *)(dst + SGC_HDR_SIZE / 8) > data_end)
		return -1;
	dst[0] = src[0];
	dst[1] = src[1];
	dst[2] = src[2];
	dst[3] = src[3];
	dst[4] = src[4];
	dst[5] = src[5];
	/* The body changes: the UDP checksum is computed afresh, over the
	 * header just written and the result's body as the record holds it
	 * (its field is 0 while it is summed).  notify_prog keeps it right
	 * through every rewrite of a copy. */
	*udp_csum = 0;
	if (n > SGC_MAX_BODY)
		return -1;
	*udp_csum = sgc_agg_udp_csum(data + SGC_AGG_IP_OFF, j->ev.body, n);
	if (n && bpf_xdp_store_bytes(xdp, SGC_AGG_BODY_OFF, j->ev.body, n))
		return -1;
	/* Without metadata (a driver that has none) the RESULT still reaches
	 * the coordinator's socket, just not notify_prog's re-broadcast. */
	if (bpf_xdp_adjust_meta(xdp, -(int)sizeof(*meta)))
		return 1;
	meta = (void *)(long)xdp->data_meta;
	if ((void *)(meta + 1) > (void *)(long)xdp->data)
		return 1;
	meta->magic = SGC_BPF_META_MAGIC;
	meta->slot = j->slot;
	return 0;
}

/*
 * The verdict.  Not complete: XDP_DROP (early drop).  Complete: the
 * record becomes the RESULT (flags SGC_F_KERNEL, plus SGC_F_DONE for a
 * barrier; rank, aux, fan range 0) and goes to the ring buffer straight
 * from here when results are delivered by ring buffer and not
 * re-broadcast; otherwise the datagram is rewritten into the RESULT, marked
 * with metadata, and passed on to notify_prog (XDP_PASS).
 */
static __always_inline int sgc_agg_outro(struct sgc_agg *a)
{
	struct sgc_agg_job *j = a->job;
	struct sgc_hdr *h;
	int rc;

	if (!a->ok) {
		sgc_agg_count(SGC_ST_DROP_MALFORMED, 1);
		return XDP_DROP;
	}
	if (a->action == SGC_AGG_REJECT) {
		sgc_agg_count(a->stat, 1);
		return a->stat == SGC_ST_PASS_MISMATCH ? XDP_PASS : XDP_DROP;
	}
	sgc_agg_count(SGC_ST_REDUCED, 1);
	if (!a->done)
		return XDP_DROP;
	sgc_agg_count(SGC_ST_COMPLETED, 1);

	h = &j->ev.hdr;
	h->type = SGC_MSG_RESULT;
	h->flags = SGC_F_KERNEL | (j->coll == SGC_COLL_BARRIER ? SGC_F_DONE : 0);
	h->rank = 0;
	h->aux = 0;
	h->fan_first = 0;
	h->fan_end = 0;
	h->stamp = 0;
	j->ev.slot = j->slot;
	j->ev.reserved = 0;

	if ((j->deliver & SGC_BPF_CFG_RINGBUF) && !(j->deliver & SGC_BPF_CFG_ALLGATHER)) {
		if (!bpf_ringbuf_output(&events, &j->ev, sizeof(j->ev), 0)) {
			sgc_agg_count(SGC_ST_DELIVERED, 1);
			return XDP_DROP;
		}
		sgc_agg_count(SGC_ST_RINGBUF_FULL, 1);
	}
	rc = sgc_agg_write_result(a);
	if (rc < 0) {
		/* Cannot happen for a datagram gather_prog accepted. */
		sgc_agg_count(SGC_ST_DROP_MALFORMED, 1);
		return XDP_DROP;
	}
	if (rc > 0 && (j->deliver & SGC_BPF_CFG_ALLGATHER))
		sgc_agg_count(SGC_ST_FANOUT_ERR, 1);
	return XDP_PASS;
}

/* Start a reduction program: bail out (dropping the packet) when there is
 * no valid hand-off from gather_prog. */
#define SGC_AGG_INTRO(a, ctx)					\
	do {							\
		if (!sgc_agg_begin(&(a), (ctx)))		\
			return sgc_agg_outro(&(a));		\
	} while (0)

#endif /* SGCOLL_AGG_BPF_H */
