// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * responder.bpf.c - an in-kernel worker for coordinator-bound benchmarks.
 *
 * Attached to a worker host's eth0, it answers each query datagram in
 * place: the frame is turned around (MACs, IPs and ports swapped), resized
 * to the answer and filled with the deterministic contribution of
 * bench_proto.h.  No process runs, so the coordinator is what a benchmark
 * measures.  One datagram in, one out: the coordinator addresses every rank
 * separately (one datagram per rank, also when libsgcoll's eBPF path clones
 * them), so a host answers for all the ranks it holds, each by its port.
 *
 *  - simple protocol: port simple_port + r, struct bench_msg;
 *  - libsgcoll: port sgc_port + r.  A QUERY (not STOP) of one chunk of
 *    int32/uint32 is answered by a CONTRIB of chunk 0 when the job's push
 *    credit lets a worker answer unasked, or when the query carries
 *    SGC_F_ASK (libsgcoll's query rounds when there is no credit); a
 *    query with neither is held per rank and the coordinator's PULL gets
 *    the CONTRIB, as a worker process would do it.  The job id, push credit
 *    and chunk size come from the WELCOME that passes here when the worker
 *    processes join.  Everything else (HELLO/WELCOME/READY, STOP, ACK
 *    probes, multi-chunk queries) goes up to the worker process, which
 *    answers the same values with its own handler.
 *
 * Two programs share that logic (one source, a constant `xdp` flag):
 *
 *  responder_prog  native XDP, answers by XDP_TX.  The answer is built in
 *                  the query's own buffer, and on veth that buffer has next
 *                  to no tailroom (measured here: growing a 60-byte query by
 *                  1.4 KB always fails, by a few hundred bytes sometimes), so
 *                  the benchmarks pad their queries to the answer's size and
 *                  the frame never grows.  A frame that cannot be resized
 *                  passes on (counted as grow_failed) to:
 *  responder_tc    tcx ingress on the same eth0: grows the skb with
 *                  bpf_skb_change_tail() and sends it back out of eth0 with
 *                  bpf_redirect().  It answers what XDP could not: the PULLs
 *                  of the credit-0 regime (48 bytes, libsgcoll's size), and
 *                  unpadded queries.
 *
 * pass_prog goes on the switch side of each worker's veth pair: a frame
 * sent by XDP_TX into a veth is dropped unless its peer runs XDP.
 *
 * UDP checksums of the answers are 0 (none, legal for IPv4): like a NIC
 * with receive checksum offload, the coordinator does not verify them.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "sgcoll/wire.h"
#include "bench_proto.h"

/* enum sgc_dtype values (sgcoll.h is not for BPF; sgc_bench.c checks). */
#define DT_INT32	4
#define DT_UINT32	5
#define L2L3L4		(sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr))

/* Drop verdict per hook. */
#define V_DROP(x)	((x) ? XDP_DROP : TC_ACT_SHOT)

const volatile struct bench_resp_cfg cfg = {
	.sgc_port = BENCH_SGC_PORT,
	.simple_port = BENCH_SIMPLE_PORT,
	.max_rank = SGC_MAX_WORLD - 1,
	.flags = BENCH_RESP_SIMPLE | BENCH_RESP_SGC,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, BENCH_RST_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct bench_resp_job);
} job SEC(".maps");

/* libsgcoll datagrams passed up to the worker processes, by message type
 * (index SGC_MSG_*; 0 = not parsed): what the processes still have to do. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SGC_MSG_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sgc_passed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SGC_MAX_WORLD);
	__type(key, __u32);
	__type(value, struct bench_resp_pending);
} pending SEC(".maps");

/* What the answer needs from the query, read before the frame changes. */
struct answer {
	__u32 rank;
	__u32 id;
	__u32 count;
	/* libsgcoll only */
	__u64 job_id;
	__u32 seq;
	__u32 wm;	/* CONTRIB aux: the watermark */
	__u16 arg;
	__u8 dtype;
	__u8 op;
	__u8 policy;
	__u8 coll;
};

static __always_inline void count(__u32 what)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &what);

	if (v)
		*v += 1;
}

static __always_inline int count_as(__u32 what, int verdict)
{
	count(what);
	return verdict;
}

/* Not answered here.  Counted by XDP only: TC sees what XDP passed. */
static __always_inline int pass_as(__u32 what, const bool xdp)
{
	if (!xdp)
		return TC_ACT_UNSPEC;
	return count_as(what, XDP_PASS);
}

/* The frame could not be resized: XDP hands it to TC, TC to the stack. */
static __always_inline int too_small(const bool xdp)
{
	return xdp ? count_as(BENCH_RST_XDP_SMALL, XDP_PASS) :
		     count_as(BENCH_RST_TC_GROW_FAIL, TC_ACT_UNSPEC);
}

static __always_inline void *pkt_data(void *ctx, const bool xdp)
{
	if (xdp)
		return (void *)(long)((struct xdp_md *)ctx)->data;
	return (void *)(long)((struct __sk_buff *)ctx)->data;
}

static __always_inline void *pkt_end(void *ctx, const bool xdp)
{
	if (xdp)
		return (void *)(long)((struct xdp_md *)ctx)->data_end;
	return (void *)(long)((struct __sk_buff *)ctx)->data_end;
}

/* Resizes the frame to @len bytes from the Ethernet header on. */
static __always_inline int resize(void *ctx, __u32 len, const bool xdp)
{
	if (xdp) {
		int delta = (int)len - (int)(pkt_end(ctx, xdp) - pkt_data(ctx, xdp));

		return delta ? bpf_xdp_adjust_tail(ctx, delta) : 0;
	}
	if (bpf_skb_change_tail(ctx, len, 0))
		return -1;
	return bpf_skb_pull_data(ctx, 0);	/* all of it linear, for direct access */
}

static __always_inline int answered(void *ctx, __u32 what, const bool xdp)
{
	count(what);
	if (xdp)
		return XDP_TX;
	count(BENCH_RST_TC);
	return bpf_redirect(((struct __sk_buff *)ctx)->ifindex, 0);
}

static __always_inline __u16 ip_csum(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;
	int i;

	for (i = 0; i < (int)(sizeof(*ip) / 2); i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/*
 * Turns the frame around and sizes it for @payload bytes of UDP payload.
 * Returns the payload pointer, or NULL if the frame cannot be resized; the
 * headers are rewritten only after a successful resize, so a NULL frame
 * can still go on (to the TC program or the worker process).
 */
static __always_inline void *turn_around(void *ctx, __u32 payload, const bool xdp)
{
	unsigned char mac[ETH_ALEN];
	void *data, *end;
	struct ethhdr *eth;
	struct iphdr *ip;
	struct udphdr *udp;
	__u32 addr;
	__u16 port;

	if (resize(ctx, L2L3L4 + payload, xdp))
		return NULL;
	data = pkt_data(ctx, xdp);
	end = pkt_end(ctx, xdp);
	eth = data;
	ip = (void *)(eth + 1);
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > end)
		return NULL;

	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);

	addr = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = addr;
	ip->tot_len = bpf_htons(sizeof(*ip) + sizeof(*udp) + payload);
	ip->ttl = 64;
	ip->frag_off = 0;
	ip->check = 0;
	ip->check = ip_csum(ip);

	port = udp->source;
	udp->source = udp->dest;
	udp->dest = port;
	udp->len = bpf_htons(sizeof(*udp) + payload);
	udp->check = 0;
	return udp + 1;
}

/* Writes a->count elements of rank a->rank's answer to request a->id. */
static __always_inline bool fill(void *ctx, __u32 off, const struct answer *a, const bool xdp)
{
	void *end = pkt_end(ctx, xdp);
	__u32 *v = pkt_data(ctx, xdp) + off;
	__u32 step = 2 * a->id + 1;
	__u32 x = bench_rank_term(a->rank) + step;	/* element 0 */
	__u32 i;

	for (i = 0; i < BENCH_MAX_ELEMS; i++) {
		if (i >= a->count)
			break;
		if ((void *)(v + i + 1) > end)
			return false;
		v[i] = x;
		x += step;
	}
	return true;
}

static __always_inline int answer_simple(void *ctx, __u32 rank, const bool xdp)
{
	void *end = pkt_end(ctx, xdp);
	struct bench_msg *m = pkt_data(ctx, xdp) + L2L3L4;
	struct answer a = {};

	if ((void *)(m + 1) > end)
		return pass_as(BENCH_RST_BAD, xdp);
	if (m->magic != BENCH_MAGIC || (m->flags & BENCH_F_RESP) || m->rank != rank ||
	    m->count > BENCH_MAX_ELEMS)
		return pass_as(BENCH_RST_BAD, xdp);
	a.rank = rank;
	a.id = m->id;
	a.count = m->count;

	m = turn_around(ctx, sizeof(*m) + a.count * 4, xdp);
	if (!m)
		return too_small(xdp);
	end = pkt_end(ctx, xdp);
	if ((void *)(m + 1) > end)
		return count_as(BENCH_RST_BAD, V_DROP(xdp));
	m->magic = BENCH_MAGIC;
	m->id = a.id;
	m->rank = (__u16)a.rank;
	m->count = (__u16)a.count;
	m->flags = BENCH_F_RESP;
	if (!fill(ctx, L2L3L4 + sizeof(*m), &a, xdp))
		return count_as(BENCH_RST_BAD, V_DROP(xdp));
	return answered(ctx, BENCH_RST_SIMPLE, xdp);
}

static __always_inline int send_contrib(void *ctx, const struct answer *a, __u32 what,
					const bool xdp)
{
	struct sgc_hdr *h = turn_around(ctx, SGC_HDR_SIZE + a->count * 4, xdp);
	void *end;

	if (!h)
		return too_small(xdp);
	end = pkt_end(ctx, xdp);
	if ((void *)(h + 1) > end)
		return count_as(BENCH_RST_BAD, V_DROP(xdp));
	h->magic = SGC_WIRE_MAGIC;
	h->version = SGC_WIRE_VERSION;
	h->type = SGC_MSG_CONTRIB;
	h->seq = a->seq;
	h->job_id = a->job_id;
	h->chunk = 0;
	h->nchunks = 1;
	h->rank = (__u16)a->rank;
	h->count = (__u16)a->count;
	h->dtype = a->dtype;
	h->op = a->op;
	h->coll = a->coll;
	h->policy = a->policy;
	h->arg = a->arg;
	h->flags = 0;
	h->aux = a->wm;	/* 0: the coordinator ignores a move backwards */
	h->total = a->coll == SGC_COLL_QUERY ? 0 : a->count;
	h->stamp = 0;
	if (!fill(ctx, L2L3L4 + SGC_HDR_SIZE, a, xdp))
		return count_as(BENCH_RST_BAD, V_DROP(xdp));
	return answered(ctx, what, xdp);
}

static __always_inline int sgc_welcome(struct sgc_hdr *h, void *end, const bool xdp)
{
	struct sgc_welcome *w = (void *)(h + 1);
	struct bench_resp_job j = {};
	__u32 zero = 0;

	if ((void *)(w + 1) > end)
		return pass_as(BENCH_RST_BAD, xdp);
	j.job_id = h->job_id;
	j.chunk_bytes = w->chunk_bytes;
	j.push_credit = w->push_credit;
	j.world = w->world;
	bpf_map_update_elem(&job, &zero, &j, BPF_ANY);
	return count_as(BENCH_RST_WELCOME, XDP_PASS);
}

/* A libsgcoll datagram for the worker process: counted by type. */
static __always_inline int sgc_pass(const struct sgc_hdr *h, const bool xdp)
{
	__u32 t = h->type < SGC_MSG_MAX ? h->type : 0;
	__u64 *v;

	if (!xdp)
		return TC_ACT_UNSPEC;
	v = bpf_map_lookup_elem(&sgc_passed, &t);
	if (v)
		*v += 1;
	return count_as(BENCH_RST_PASS, XDP_PASS);
}

static __always_inline int sgc_query(void *ctx, struct sgc_hdr *h, void *end, __u32 rank,
				     const struct bench_resp_job *j, const bool xdp)
{
	struct bench_sg_query *q = (void *)(h + 1);
	struct bench_resp_pending p = {};
	struct answer a = {};

	if ((void *)(q + 1) > end)
		return sgc_pass(h, xdp);
	if ((h->flags & (SGC_F_STOP | SGC_F_FANOUT)) || h->nchunks != 1 ||
	    (h->dtype != DT_INT32 && h->dtype != DT_UINT32) || h->aux > BENCH_MAX_ELEMS ||
	    h->aux * 4 > j->chunk_bytes || q->magic != BENCH_SGQ_MAGIC)
		return sgc_pass(h, xdp);
	a.rank = rank;
	a.id = q->id;
	a.count = h->aux;
	a.job_id = h->job_id;
	a.seq = h->seq;
	a.arg = h->arg;
	a.dtype = h->dtype;
	a.op = h->op;
	a.policy = h->policy;
	a.coll = SGC_COLL_QUERY;
	if (j->push_credit || (h->flags & SGC_F_ASK))
		return send_contrib(ctx, &a, BENCH_RST_SGC_QUERY, xdp);

	/* No push credit: a worker answers when PULLed.  Keep the query. */
	p.job_id = a.job_id;
	p.seq = a.seq;
	p.id = a.id;
	p.count = a.count;
	p.dtype = a.dtype;
	p.op = a.op;
	p.policy = a.policy;
	p.arg = a.arg;
	p.valid = 1;
	bpf_map_update_elem(&pending, &rank, &p, BPF_ANY);
	return count_as(BENCH_RST_SGC_HELD, V_DROP(xdp));
}

static __always_inline int sgc_pull(void *ctx, struct sgc_hdr *h, __u32 rank, const bool xdp)
{
	struct bench_resp_pending *p = bpf_map_lookup_elem(&pending, &rank);
	struct answer a = {};

	if (h->coll != SGC_COLL_QUERY || h->chunk != 0 || !p || !p->valid ||
	    p->job_id != h->job_id || p->seq != h->seq)
		return sgc_pass(h, xdp);
	a.rank = rank;
	a.id = p->id;
	a.count = p->count;
	a.job_id = p->job_id;
	a.seq = p->seq;
	a.arg = p->arg;
	a.dtype = p->dtype;
	a.op = p->op;
	a.policy = p->policy;
	a.coll = SGC_COLL_QUERY;
	return send_contrib(ctx, &a, BENCH_RST_SGC_PULL, xdp);
}

/*
 * Allreduce (cfg.ar_window): one chunk of int32/uint32, contribution id =
 * the collective's seq.  The RESULT of s means this rank's collectives
 * below s + 1 are complete (the watermark) and that its next allreduce,
 * s + ar_window, is posted now; a PULL of s asks for s itself (the first
 * ar_window collectives, which no result precedes, and any the
 * coordinator found missing).  Without push credit every contribution
 * waits for its PULL, as a worker process's does.
 */
static __always_inline int sgc_allreduce(void *ctx, struct sgc_hdr *h, __u32 rank,
					 const struct bench_resp_job *j, const bool xdp)
{
	bool result = h->type == SGC_MSG_RESULT;
	struct answer a = {};

	if (h->coll != SGC_COLL_ALLREDUCE || h->chunk != 0 || h->nchunks != 1 ||
	    (h->dtype != DT_INT32 && h->dtype != DT_UINT32))
		return sgc_pass(h, xdp);
	if (result) {
		if ((h->flags & SGC_F_DONE) || h->count != cfg.ar_count)
			return sgc_pass(h, xdp);
		/* No push credit (more than 192 workers): a worker sends
		 * only what it is PULLed for, and so does this one. */
		if (!j->push_credit)
			return count_as(BENCH_RST_AR_HELD, V_DROP(xdp));
		a.seq = h->seq + cfg.ar_window;
		a.wm = h->seq + 1;
	} else {
		if (h->aux != 1)
			return sgc_pass(h, xdp);
		a.seq = h->seq;
		/* A worker that posted s has completed s - ar_window: without
		 * push credit the PULL's answer is the only watermark the
		 * coordinator gets, and it retires nothing without one.  The
		 * first window's: 0, which it ignores. */
		a.wm = h->seq + 1 > cfg.ar_window ? h->seq + 1 - cfg.ar_window : 0;
	}
	a.rank = rank;
	a.id = a.seq;
	a.count = cfg.ar_count;
	a.job_id = h->job_id;
	a.arg = h->arg;
	a.dtype = h->dtype;
	a.op = h->op;
	a.coll = SGC_COLL_ALLREDUCE;
	return send_contrib(ctx, &a, result ? BENCH_RST_AR_RESULT : BENCH_RST_AR_PULL, xdp);
}

static __always_inline int answer_sgc(void *ctx, __u32 rank, const bool xdp)
{
	void *end = pkt_end(ctx, xdp);
	struct sgc_hdr *h = pkt_data(ctx, xdp) + L2L3L4;
	const struct bench_resp_job *j;
	__u32 zero = 0;

	if ((void *)(h + 1) > end || h->magic != SGC_WIRE_MAGIC ||
	    h->version != SGC_WIRE_VERSION)
		return pass_as(BENCH_RST_PASS, xdp);
	if (h->type == SGC_MSG_WELCOME)
		return xdp ? sgc_welcome(h, end, xdp) : TC_ACT_UNSPEC;	/* learnt by XDP */
	if (h->type != SGC_MSG_QUERY && h->type != SGC_MSG_PULL && h->type != SGC_MSG_RESULT)
		return sgc_pass(h, xdp);
	j = bpf_map_lookup_elem(&job, &zero);
	if (!j || !j->job_id || j->job_id != h->job_id)
		return sgc_pass(h, xdp);
	if (h->type == SGC_MSG_RESULT || (h->type == SGC_MSG_PULL && h->coll != SGC_COLL_QUERY)) {
		if (!cfg.ar_window || cfg.ar_count * 4 > j->chunk_bytes)
			return sgc_pass(h, xdp);
		return sgc_allreduce(ctx, h, rank, j, xdp);
	}
	if (h->type == SGC_MSG_QUERY)
		return sgc_query(ctx, h, end, rank, j, xdp);
	return sgc_pull(ctx, h, rank, xdp);
}

/* Rank 1.. of a port we answer for, shifted by the protocol; 0 if none. */
static __always_inline __u32 classify(const struct ethhdr *eth, const struct iphdr *ip,
				      const struct udphdr *udp, bool *sgc)
{
	__u32 dport = bpf_ntohs(udp->dest);

	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 || ip->protocol != IPPROTO_UDP ||
	    (ip->frag_off & bpf_htons(0x3fff)))
		return 0;
	if ((cfg.flags & BENCH_RESP_SIMPLE) && dport > cfg.simple_port &&
	    dport <= (__u32)cfg.simple_port + cfg.max_rank) {
		*sgc = false;
		return dport - cfg.simple_port;
	}
	if ((cfg.flags & BENCH_RESP_SGC) && dport > cfg.sgc_port &&
	    dport <= (__u32)cfg.sgc_port + cfg.max_rank) {
		*sgc = true;
		return dport - cfg.sgc_port;
	}
	return 0;
}

static __always_inline int dispatch(void *ctx, __u32 rank, bool sgc, const bool xdp)
{
	if (!rank)
		return pass_as(BENCH_RST_OTHER, xdp);
	return sgc ? answer_sgc(ctx, rank, xdp) : answer_simple(ctx, rank, xdp);
}

SEC("xdp")
int responder_prog(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	bool sgc = false;

	if ((void *)(udp + 1) > end)
		return XDP_PASS;	/* ARP and the like: not counted */
	return dispatch(ctx, classify(eth, ip, udp, &sgc), sgc, true);
}

SEC("tc")
int responder_tc(struct __sk_buff *skb)
{
	/* Headers copied 2 bytes in, so that the IP header is 4-aligned. */
	__u8 buf[2 + L2L3L4] __attribute__((aligned(4)));
	struct ethhdr *eth = (void *)(buf + 2);
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	bool sgc = false;
	__u32 rank;

	/* Look first, then make the whole datagram linear and writable: what
	 * is not ours passes untouched. */
	if (bpf_skb_load_bytes(skb, 0, eth, L2L3L4))
		return TC_ACT_UNSPEC;
	rank = classify(eth, ip, udp, &sgc);
	if (!rank || bpf_skb_pull_data(skb, 0))
		return TC_ACT_UNSPEC;
	return dispatch(skb, rank, sgc, false);
}

SEC("xdp")
int pass_prog(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
