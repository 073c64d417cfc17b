/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Parsing and validation: the contribution check gather_prog runs on every
 * frame (XDP, direct packet access, every read checked against data_end),
 * and the frame image the TC programs read with bpf_skb_load_bytes (they
 * never write packet memory directly, so the verifier adds no unclone
 * prologue and foreign skbs are left exactly as they were).
 */
#ifndef SGC_PARSE_BPF_H
#define SGC_PARSE_BPF_H

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "maps.bpf.h"
#include "mac.bpf.h"
#include "udp4.bpf.h"

/*
 * The wire header is packed (alignment 1), so clang reads its fields a
 * byte at a time.  A copy at an 8-aligned address read through this type
 * gets plain loads: offsets are what they are, only the alignment grows.
 */
typedef struct sgc_hdr sgc_hdr_a8 __attribute__((aligned(8)));

/* gather_prog's decision for a frame. */
enum {
	SGC_GATHER_PASS = XDP_PASS,
	SGC_GATHER_DROP = XDP_DROP,
	SGC_GATHER_REDUCE = 100,	/* checked: reduce it (job filled) */
	SGC_GATHER_USER = 101,		/* checked: pass it to user space */
};

static __always_inline __u32 sgc_need(__u32 coll, __u32 policy, __u32 arg)
{
	__u32 world = cfg.world, workers = world ? world - 1 : 0;

	switch (coll) {
	case SGC_COLL_BCAST:
		return 1;
	case SGC_COLL_QUERY:
		if (policy == SGC_WIRE_WAIT_ANY)
			return 1;
		if (policy == SGC_WIRE_WAIT_N) {
			if (arg < 1)
				arg = 1;
			return arg < workers ? arg : workers;
		}
		return workers;
	default:	/* ALLREDUCE, REDUCE, BARRIER: the coordinator too */
		return world;
	}
}

/* 0 when the contribution's tag is right; its body (job->bytes) is then
 * in job->ev.  (The length is read back from the record so that the
 * verifier sees its bound checked on the register the helper gets.) */
static __always_inline int sgc_gather_mac(struct xdp_md *ctx, struct sgc_agg_job *job)
{
	const struct sgc_mac_key *k;
	__u32 zero = 0, bytes;
	struct sgc_nh nh;
	__u64 tag;

	k = bpf_map_lookup_elem(&mac_key, &zero);
	bytes = *(volatile __u32 *)&job->bytes;
	if (!k || bytes > SGC_MAX_BODY)
		return -1;
	if (bytes && bpf_xdp_load_bytes(ctx, SGC_AGG_BODY_OFF, job->ev.body, bytes))
		return -1;
	if (bpf_xdp_load_bytes(ctx, SGC_AGG_BODY_OFF + bytes, &tag, sizeof(tag)))
		return -1;
	__builtin_memset(nh.tail, 0, sizeof(nh.tail));
	if ((bytes & 15) && bpf_xdp_load_bytes(ctx, SGC_AGG_BODY_OFF + (bytes & ~15u), nh.tail,
					       bytes & 15))
		return -1;
	if (sgc_mac_body(&job->ev, k, bytes, &nh))
		return -1;
	return sgc_mac_hdr_tag(k, &job->ev.hdr, bytes, &nh) == tag ? 0 : -1;
}

/*
 * What a checked contribution (its header in job->ev.hdr) changes before
 * it is reduced or passed up: its collective's activity time, the latest
 * collective its sender sent for, and its sender's watermark, forward
 * moves only (without it the window would not
 * move when every contribution is reduced here).  Only from a datagram
 * that passed every check, the tag included: a replay from below the
 * window or a forged one must not retire results a worker still needs.
 */
static __always_inline void sgc_gather_commit(struct sgc_agg_job *job)
{
	const sgc_hdr_a8 *h = (const sgc_hdr_a8 *)&job->ev.hdr;
	__u32 rank = h->rank & (SGC_MAX_WORLD - 1);

	if (h->coll != SGC_COLL_QUERY) {
		coll_rx[h->seq % SGC_BPF_RING_SEQ].ns = bpf_ktime_get_ns();
		coll_rx[h->seq % SGC_BPF_RING_SEQ].seq = h->seq;
		if ((__s32)(h->seq - rank_hi[rank]) > 0)
			rank_hi[rank] = h->seq;
	}
	if ((__s32)(h->aux - rank_wm[rank]) > 0)
		rank_wm[rank] = h->aux;
}

/*
 * Classify one frame.  Returns XDP_PASS or XDP_DROP with *stat the
 * counter for it; or, for a contribution that passed every check but the
 * tag's, SGC_GATHER_USER (job->ev.hdr and job->bytes filled) or
 * SGC_GATHER_REDUCE with the hand-off record filled in (all but the body
 * and the armed mark).  Nothing changes state here.
 */
static __always_inline int sgc_gather_check(struct xdp_md *ctx, struct sgc_agg_job **jobp,
					    __u32 *stat)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	const struct sgc_bpf_rank *rk;
	const sgc_hdr_a8 *h;
	struct sgc_agg_job *job;
	struct udphdr *udp;
	struct iphdr *ip;
	__u32 ulen, tot, body, bytes, rank, zero = 0;
	const __u64 *src;
	__u64 query;
	__u64 *dst;
	int d;

	/* ---- not addressed to the coordinator's port: leave it alone ----
	 * (A later fragment has no UDP header, so no port to tell by; the
	 * first fragment of a datagram for us is dropped below, so it is
	 * never reassembled.) */
	*stat = SGC_ST_PASS_FOREIGN;
	udp = sgc_udp4(data, data_end, &ip);
	if (!udp || ip->daddr != cfg.coord_ip || udp->dest != cfg.coord_port)
		return XDP_PASS;
	/* For us, but not a frame we parse: user space would get it whole
	 * (reassembled, or past the options) and must not see what we never
	 * checked, so we parse exactly what it may receive. */
	if (ip->ihl != 5 || (ip->frag_off & bpf_htons(SGC_IP_MF))) {
		*stat = SGC_ST_DROP_IP;
		return XDP_DROP;
	}
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end)
		return XDP_DROP;

	/* ---- ours: lengths ---- */
	*stat = SGC_ST_DROP_MALFORMED;
	ulen = bpf_ntohs(udp->len);
	tot = bpf_ntohs(ip->tot_len);
	if (ulen < sizeof(*udp) + SGC_HDR_SIZE || tot != sizeof(*ip) + ulen)
		return XDP_DROP;
	/* Trailing bytes after the IP datagram (padding) are tolerated. */
	if (data + sizeof(*eth) + tot > data_end)
		return XDP_DROP;
	src = (void *)(udp + 1);
	if ((void *)(src + SGC_HDR_SIZE / 8) > data_end)
		return XDP_DROP;
	body = ulen - sizeof(*udp) - SGC_HDR_SIZE;

	job = bpf_map_lookup_elem(&jobs, &zero);
	if (!job)
		return XDP_DROP;
	*jobp = job;
	dst = (__u64 *)&job->ev.hdr;
	dst[0] = src[0];
	dst[1] = src[1];
	dst[2] = src[2];
	dst[3] = src[3];
	dst[4] = src[4];
	dst[5] = src[5];
	h = (const sgc_hdr_a8 *)&job->ev.hdr;

	if (h->magic != SGC_WIRE_MAGIC || h->version != SGC_WIRE_VERSION ||
	    h->type < 1 || h->type >= SGC_MSG_MAX)
		return XDP_DROP;
	/* A hello comes before the job id exists. */
	if (h->type == SGC_MSG_HELLO) {
		*stat = SGC_ST_PASS_CONTROL;
		return XDP_PASS;
	}

	/* ---- who sent it ---- */
	if (h->job_id != cfg.job_id) {
		*stat = SGC_ST_DROP_JOB;
		return XDP_DROP;
	}
	rank = h->rank;
	if (rank >= cfg.world) {
		*stat = SGC_ST_DROP_RANK;
		return XDP_DROP;
	}
	*stat = SGC_ST_DROP_SOURCE;
	rk = bpf_map_lookup_elem(&ranks, &rank);
	if (!rk || !rk->ip || rk->ip != ip->saddr || rk->port != udp->source)
		return XDP_DROP;
	/* Rank 0 is the coordinator, whose contribution comes through
	 * BPF_PROG_RUN: one from its own wire is forged. */
	if (rank == 0 && ctx->ingress_ifindex == cfg.ifindex)
		return XDP_DROP;

	/* ---- what it is ---- */
	*stat = SGC_ST_DROP_FIELD;
	if ((h->flags & (SGC_F_FANOUT | SGC_F_KERNEL)) || h->type == SGC_MSG_RESULT)
		return XDP_DROP;
	if (h->type != SGC_MSG_CONTRIB) {
		*stat = SGC_ST_PASS_CONTROL;
		return XDP_PASS;
	}
	if (h->coll < 1 || h->coll > SGC_COLL_QUERY || h->dtype >= 8 || h->op > SGC_OP_CUSTOM ||
	    h->nchunks < 1 || h->chunk >= h->nchunks || h->stamp)
		return XDP_DROP;
	bytes = (__u32)h->count * sgc_wire_dtype_size(h->dtype);
	if (cfg.flags & SGC_BPF_CFG_MAC) {
		if (!(h->flags & SGC_F_MAC) || body < SGC_MAC_TAG_SIZE) {
			*stat = SGC_ST_DROP_MAC;
			return XDP_DROP;
		}
		body -= SGC_MAC_TAG_SIZE;
	} else if (h->flags & SGC_F_MAC) {
		*stat = SGC_ST_DROP_MAC;
		return XDP_DROP;
	}
	if (bytes != body || bytes > cfg.chunk_bytes || bytes > SGC_MAX_BODY)
		return XDP_DROP;
	if (h->coll == SGC_COLL_QUERY) {
		if (h->policy > SGC_WIRE_WAIT_ANY)
			return XDP_DROP;
		/* The query's own rule, as user space published it; an
		 * answer that claims another does not choose it. */
		query = win.query;
		if (!(query & SGC_BPF_QUERY_VALID) || h->seq != sgc_bpf_query_seq(query)) {
			*stat = SGC_ST_DROP_WINDOW;
			return XDP_DROP;
		}
		if (h->policy != sgc_bpf_query_policy(query) || h->arg != sgc_bpf_query_want(query)) {
			*stat = SGC_ST_DROP_MISMATCH;
			return XDP_DROP;
		}
	} else {
		/* arg is the root; a broadcast has one contributor, the root. */
		if (h->arg >= cfg.world || (h->coll == SGC_COLL_BCAST && rank != h->arg))
			return XDP_DROP;
	}

	/* ---- when it is ---- */
	/* (a query's is its seq, checked with its policy above) */
	if (h->coll != SGC_COLL_QUERY) {
		*stat = SGC_ST_DROP_WINDOW;
		d = (int)(h->seq - win.base);
		if (d < 0 || d >= SGC_BPF_RING_SEQ)
			return XDP_DROP;
	}

	/* ---- user space reduces these itself (after sgc_gather_commit) ---- */
	job->bytes = bytes;
	if ((cfg.flags & SGC_BPF_CFG_KEEP) || !sgc_bpf_in_kernel(cfg.kernel_colls, h->coll) ||
	    (h->coll == SGC_COLL_QUERY && (h->nchunks != 1 || (h->flags & SGC_F_DECLINE)))) {
		*stat = SGC_ST_PASS_USER;
		return SGC_GATHER_USER;
	}

	job->slot = sgc_slot_index(h->coll, h->seq, h->chunk);
	job->seq = h->seq;
	job->chunk = h->chunk;
	job->rank = rank;
	/* For a query, h->policy and h->arg are the published ones. */
	job->need = sgc_need(h->coll, h->policy, h->arg);
	job->count = h->count;
	job->arg = h->arg;
	job->total = h->coll == SGC_COLL_QUERY ? 0 : h->total;
	job->bytes = bytes;
	job->seen_words = (cfg.world + 63) / 64;
	job->coll = h->coll;
	job->dtype = h->dtype;
	job->op = h->op;
	job->deliver = cfg.flags & (SGC_BPF_CFG_RINGBUF | SGC_BPF_CFG_ALLGATHER);
	return SGC_GATHER_REDUCE;
}

/* ------------------------------------------------------------ TC side */

/*
 * The first 90 bytes of a frame (Ethernet, IPv4 without options, UDP, our
 * header), read into the stack 2 bytes in, so that the IPv4 header lands
 * on a 16-byte boundary and its fields load as words.
 */
struct sgc_frame {
	__u16 pad;
	struct ethhdr eth;
	struct iphdr ip;
	struct udphdr udp;
	struct sgc_hdr hdr;
} __attribute__((packed, aligned(8)));

#define SGC_L2L4_LEN	(sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr))
#define SGC_FRAME_LEN	(SGC_L2L4_LEN + SGC_HDR_SIZE)
#define SGC_OFF_IP	sizeof(struct ethhdr)
#define SGC_OFF_UDP	(SGC_OFF_IP + sizeof(struct iphdr))
#define SGC_OFF_UDP_CSUM (SGC_OFF_UDP + offsetof(struct udphdr, check))
#define SGC_OFF_HDR	SGC_L2L4_LEN
#define SGC_OFF_H(f)	(SGC_OFF_HDR + offsetof(struct sgc_hdr, f))

_Static_assert(SGC_OFF_HDR == SGC_AGG_HDR_OFF, "frame layout");
_Static_assert(offsetof(struct sgc_frame, ip) % 8 == 0, "IPv4 header aligned");

/* Read an IPv4/UDP frame's headers; 0 when it is one (not a fragment). */
static __always_inline int sgc_skb_frame(struct __sk_buff *skb, struct sgc_frame *f)
{
	if (bpf_skb_load_bytes(skb, 0, &f->eth, SGC_FRAME_LEN))
		return -1;
	if (f->eth.h_proto != bpf_htons(ETH_P_IP) || f->ip.version != 4 || f->ip.ihl != 5 ||
	    f->ip.protocol != IPPROTO_UDP || (f->ip.frag_off & bpf_htons(SGC_IP_MF | SGC_IP_OFFSET)))
		return -1;
	return 0;
}

static __always_inline int sgc_frame_is_sgc(const struct sgc_frame *f)
{
	return f->hdr.magic == SGC_WIRE_MAGIC && f->hdr.version == SGC_WIRE_VERSION &&
	       f->hdr.job_id == cfg.job_id;
}

/* The IPv4 header checksum, computed afresh (options-less header). */
static __always_inline __u16 sgc_ip_csum(const struct iphdr *ip)
{
	const __u16 *p = (const __u16 *)ip;
	__u32 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < (int)(sizeof(*ip) / 2); i++)
		if (i != offsetof(struct iphdr, check) / 2)
			sum += p[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/*
 * What the UDP checksum field of an skb means depends on skb->ip_summed,
 * which struct __sk_buff does not show: read through the kernel's own
 * sk_buff (bpf_cast_to_kern_ctx, 6.3+; tcx needs 6.6 anyway), with the
 * field's place taken from the running kernel's BTF (CO-RE).
 */
#define SGC_CHECKSUM_PARTIAL	3	/* include/linux/skbuff.h */

struct sk_buff___sgc {
	__u8 ip_summed:2;
} __attribute__((preserve_access_index));

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

/*
 * CHECKSUM_PARTIAL: the L4 checksum is still to be finished by the device
 * that sends the skb (or by the stack for one that cannot); until then
 * the field holds the pseudo-header's sum, the seed.  What a sender on
 * this host hands a veth is such an skb, and its clones stay one.
 */
static __always_inline int sgc_skb_csum_deferred(struct __sk_buff *skb)
{
	struct sk_buff___sgc *k = bpf_cast_to_kern_ctx(skb);

	return BPF_CORE_READ_BITFIELD(k, ip_summed) == SGC_CHECKSUM_PARTIAL;
}

/* The seed of a deferred UDP checksum: the pseudo-header's sum, folded,
 * not complemented (never 0: the protocol alone is not). */
static __always_inline __u16 sgc_udp_csum_seed(const struct sgc_frame *f)
{
	__u32 s = (f->ip.saddr & 0xffff) + (f->ip.saddr >> 16) + (f->ip.daddr & 0xffff) +
		  (f->ip.daddr >> 16) + bpf_htons(IPPROTO_UDP) + f->udp.len;

	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)s;
}

/*
 * A datagram gather_prog rewrote into a RESULT carries the full UDP
 * checksum (XDP cannot see the skb's state).  Where the skb defers its
 * checksum, put the seed there instead, in the packet and in @f, or the
 * device that finishes it would add the data to a sum that has it already.
 * From then on bpf_l4_csum_replace() keeps the field right in either
 * state.  0, or -1 when the packet could not be written.
 */
static __always_inline int sgc_skb_udp_csum_settle(struct __sk_buff *skb, struct sgc_frame *f)
{
	if (!sgc_skb_csum_deferred(skb))
		return 0;
	f->udp.check = sgc_udp_csum_seed(f);
	return bpf_skb_store_bytes(skb, SGC_OFF_UDP_CSUM, &f->udp.check, sizeof(f->udp.check), 0) ?
		       -1 : 0;
}

#endif /* SGC_PARSE_BPF_H */
