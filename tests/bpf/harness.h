/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Shared by the bpf tests: loading the skeleton with a test configuration,
 * crafting Ethernet/IPv4/UDP frames, running programs with BPF_PROG_RUN,
 * reading counters and slots.  Header-only; each test is one executable.
 */
#ifndef SGC_TEST_BPF_HARNESS_H
#define SGC_TEST_BPF_HARNESS_H

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/if_ether.h>
#include <netinet/ip.h>
#include <netinet/udp.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "mac.h"
#include "sgc_common.h"
#include "sgc.skel.h"

#define SKIP_CODE 77

/* The test world: rank 0 is the coordinator, ranks r >= 1 live at
 * 10.9.1.r:(9000 + r).  Frames carry made-up MACs. */
#define T_COORD_IP	"10.9.0.1"
#define T_COORD_PORT	7000
#define T_JOB		0x1122334455667788ULL

static inline uint32_t t_rank_ip(int r)
{
	if (r == 0)
		return inet_addr(T_COORD_IP);
	return htonl(0x0a090100u + (uint32_t)r);
}

static inline uint16_t t_rank_port(int r)
{
	return htons((uint16_t)(r == 0 ? T_COORD_PORT : 9000 + r));
}

static const uint8_t t_coord_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };

static inline void t_rank_mac(int r, uint8_t mac[6])
{
	const uint8_t m[6] = { 0x02, 0, 0, 0, (uint8_t)(r >> 8), (uint8_t)(r + 0x10) };

	memcpy(mac, m, 6);
}

static inline void t_skip(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "SKIP: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(SKIP_CODE);
}

static int t_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || !getenv("SGC_TEST_VERBOSE"))
		return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
	return vfprintf(stderr, fmt, ap);
}

/* Exit 77 unless BPF programs can be loaded here. */
static inline void t_require_bpf(void)
{
	if (geteuid() != 0)
		t_skip("needs root (BPF_PROG_LOAD, BPF_PROG_RUN)");
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_XDP, NULL) != 1)
		t_skip("the kernel does not load XDP programs");
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SCHED_CLS, NULL) != 1)
		t_skip("the kernel does not load TC programs");
	libbpf_set_print(t_libbpf_print);
}

static inline struct sgc_bpf_cfg t_cfg(int world, uint16_t flags)
{
	struct sgc_bpf_cfg c = {
		.job_id = T_JOB,
		.coord_ip = inet_addr(T_COORD_IP),
		.coord_port = htons(T_COORD_PORT),
		.world = (uint16_t)world,
		.chunk_bytes = 3424,
		.ifindex = 999999,	/* not lo: BPF_PROG_RUN frames come "from" lo */
		.flags = flags,
		.result_token = 0x70c3e11u,
		.kernel_colls = SGC_BPF_KERNEL_ALL,
	};

	memcpy(c.coord_mac, t_coord_mac, 6);
	return c;
}

/* Open and load the object with @cfg; registers ranks 0..world-1. */
static inline struct sgc *t_load(const struct sgc_bpf_cfg *cfg)
{
	struct sgc *s = sgc__open();
	int r;

	if (!s) {
		fprintf(stderr, "sgc__open: %s\n", strerror(errno));
		return NULL;
	}
	s->rodata->cfg = *cfg;
	if (sgc__load(s)) {
		fprintf(stderr, "sgc__load: %s\n", strerror(errno));
		sgc__destroy(s);
		return NULL;
	}
	for (r = 0; r < cfg->world; r++) {
		struct sgc_bpf_rank e = { .ip = t_rank_ip(r), .port = t_rank_port(r) };
		__u32 k = (__u32)r;

		if (r == 0)
			memcpy(e.mac, cfg->coord_mac, 6);
		else
			t_rank_mac(r, e.mac);
		if (bpf_map_update_elem(bpf_map__fd(s->maps.ranks), &k, &e, BPF_ANY)) {
			fprintf(stderr, "ranks[%d]: %s\n", r, strerror(errno));
			sgc__destroy(s);
			return NULL;
		}
	}
	return s;
}

/* ------------------------------------------------------------ frames */

/* Everything a test may want to get wrong in a frame. */
struct t_frame {
	uint16_t eth_proto;	/* host order; 0 = IPv4 */
	uint8_t ip_proto;	/* 0 = UDP */
	uint8_t ihl;		/* 0 = 5 */
	uint16_t frag_off;	/* host order */
	uint32_t saddr, daddr;	/* network order */
	uint16_t sport, dport;	/* network order */
	int udp_len_delta;	/* added to the UDP length field */
	int ip_len_delta;	/* added to the IPv4 total length field */
	int payload_len;	/* bytes of hdr+body to put in; -1 = all */
	int tagged;		/* a job-key tag follows the body: */
	uint64_t tag;
	struct sgc_hdr h;
	uint8_t body[SGC_MAX_BODY];
	size_t blen;
};

static inline uint16_t t_ip_csum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t s = 0;
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(b[i] << 8 | b[i + 1]);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return htons((uint16_t)~s);
}

/* Ones' complement sum of @n bytes as big-endian 16-bit words (an odd
 * last byte padded with zero), added to @s; fold with t_fold(). */
static inline uint32_t t_sum16(uint32_t s, const void *p, size_t n)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (n & 1)
		s += (uint32_t)b[n - 1] << 8;
	return s;
}

static inline uint16_t t_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/*
 * Check the UDP checksum of the IPv4 datagram at @ip (@len bytes from its
 * IP header on): 0 when it is right, else -1 with the reason in @why.  A
 * zero field (no checksum) is wrong here.  @deferred: the checksum is
 * still to be finished by whoever sends the frame (CHECKSUM_PARTIAL; an
 * AF_PACKET capture says TP_STATUS_CSUMNOTREADY): the field holds the sum
 * of the pseudo-header, and the check is of the checksum a device that
 * finishes it would send (the complement of the UDP header and data, seed
 * field included, summed).
 */
static inline int t_udp_csum_check(const void *ip, size_t len, int deferred, char *why,
				   size_t whylen)
{
	const struct iphdr *iph = ip;
	const uint8_t *seg = (const uint8_t *)ip + iph->ihl * 4u;
	uint16_t ulen, field, fin;
	uint32_t pseudo;

	if (len < sizeof(*iph) || len < iph->ihl * 4u + 8) {
		snprintf(why, whylen, "too short for IPv4 + UDP (%zu bytes)", len);
		return -1;
	}
	ulen = (uint16_t)(seg[4] << 8 | seg[5]);
	field = (uint16_t)(seg[6] << 8 | seg[7]);
	if (ulen < 8 || iph->ihl * 4u + ulen > len) {
		snprintf(why, whylen, "UDP length %u does not fit %zu bytes", ulen, len);
		return -1;
	}
	if (!field) {
		snprintf(why, whylen, "no UDP checksum (0)");
		return -1;
	}
	pseudo = t_sum16(0, &iph->saddr, 8) + IPPROTO_UDP + ulen;
	if (deferred) {
		/* What the device writes over the seed, then the check of the
		 * datagram with it: pseudo + segment - seed + fin. */
		fin = (uint16_t)~t_fold(t_sum16(0, seg, ulen));
		if (t_fold(pseudo + t_sum16(0, seg, ulen) + (uint16_t)~field + fin) != 0xffff) {
			snprintf(why, whylen, "deferred checksum: seed 0x%04x is not the "
				 "pseudo-header sum 0x%04x", field, t_fold(pseudo));
			return -1;
		}
		return 0;
	}
	if (t_fold(pseudo + t_sum16(0, seg, ulen)) != 0xffff) {
		snprintf(why, whylen, "UDP checksum 0x%04x is wrong (sum 0x%04x, not 0xffff)",
			 field, t_fold(pseudo + t_sum16(0, seg, ulen)));
		return -1;
	}
	return 0;
}

/* A contribution from rank @r: CONTRIB header, no body yet. */
static inline void t_contrib(struct t_frame *f, int r, uint8_t coll, uint32_t seq, uint32_t chunk,
			     uint32_t nchunks, uint8_t dtype, uint8_t op, uint16_t count)
{
	memset(f, 0, offsetof(struct t_frame, body));
	f->saddr = t_rank_ip(r);
	f->sport = t_rank_port(r);
	f->daddr = inet_addr(T_COORD_IP);
	f->dport = htons(T_COORD_PORT);
	f->payload_len = -1;
	f->h.magic = SGC_WIRE_MAGIC;
	f->h.version = SGC_WIRE_VERSION;
	f->h.type = SGC_MSG_CONTRIB;
	f->h.seq = seq;
	f->h.job_id = T_JOB;
	f->h.chunk = chunk;
	f->h.nchunks = nchunks;
	f->h.rank = (uint16_t)r;
	f->h.count = count;
	f->h.dtype = dtype;
	f->h.op = op;
	f->h.coll = coll;
	f->blen = (size_t)count * sgc_wire_dtype_size(dtype & 7);
}

/* Lay the frame out in @out; returns its length.  It is built in a scratch
 * buffer where the IP header is 4-aligned (what NET_IP_ALIGN gives a NIC),
 * so the header structs are accessed aligned, then copied. */
static inline size_t t_build(const struct t_frame *f, uint8_t *out)
{
	static __thread uint64_t scratch[(2 + ETH_HLEN + 60 + 8 + SGC_HDR_SIZE + SGC_MAX_BODY +
					  SGC_MAC_TAG_SIZE) / 8 + 1];
	uint8_t *buf = (uint8_t *)scratch + 2;
	size_t len;
	struct ethhdr *eth = (struct ethhdr *)buf;
	struct iphdr *ip = (struct iphdr *)(eth + 1);
	uint8_t ihl = f->ihl ? f->ihl : 5;
	struct udphdr *udp = (struct udphdr *)((uint8_t *)ip + ihl * 4);
	uint8_t *pl = (uint8_t *)(udp + 1);
	size_t plen = f->payload_len >= 0 ? (size_t)f->payload_len :
		      SGC_HDR_SIZE + f->blen + (f->tagged ? SGC_MAC_TAG_SIZE : 0);
	uint8_t full[SGC_HDR_SIZE + SGC_MAX_BODY + SGC_MAC_TAG_SIZE];

	memcpy(eth->h_dest, t_coord_mac, 6);
	t_rank_mac(f->h.rank, eth->h_source);
	eth->h_proto = htons(f->eth_proto ? f->eth_proto : ETH_P_IP);
	memset(ip, 0, ihl * 4u);
	ip->version = 4;
	ip->ihl = ihl & 15;
	ip->ttl = 64;
	ip->protocol = f->ip_proto ? f->ip_proto : IPPROTO_UDP;
	ip->frag_off = htons(f->frag_off);
	ip->saddr = f->saddr;
	ip->daddr = f->daddr;
	ip->tot_len = htons((uint16_t)(ihl * 4 + sizeof(*udp) + plen + f->ip_len_delta));
	ip->check = t_ip_csum(ip, ihl * 4u);
	udp->source = f->sport;
	udp->dest = f->dport;
	udp->len = htons((uint16_t)(sizeof(*udp) + plen + f->udp_len_delta));
	udp->check = 0;
	memcpy(full, &f->h, SGC_HDR_SIZE);
	memcpy(full + SGC_HDR_SIZE, f->body, f->blen);
	if (f->tagged)
		memcpy(full + SGC_HDR_SIZE + f->blen, &f->tag, SGC_MAC_TAG_SIZE);
	if (plen > sizeof(full))
		plen = sizeof(full);
	memcpy(pl, full, plen);
	len = (size_t)(pl - buf) + plen;
	memcpy(out, buf, len);
	return len;
}

/* Seal @f under @k as a keyed rank's io_send() does: SGC_F_MAC set, then
 * the tag of the header and body, as they are now, after the body. */
static inline void t_seal(struct t_frame *f, const struct sgc_mac_key *k)
{
	static __thread uint64_t buf[(SGC_HDR_SIZE + SGC_MAX_BODY + SGC_MAC_TAG_SIZE) / 8];
	uint8_t *b = (uint8_t *)buf;

	memcpy(b, &f->h, SGC_HDR_SIZE);
	memcpy(b + SGC_HDR_SIZE, f->body, f->blen);
	sgc_mac_seal(k, b, SGC_HDR_SIZE + f->blen);
	memcpy(&f->h, b, SGC_HDR_SIZE);
	memcpy(&f->tag, b + SGC_HDR_SIZE + f->blen, SGC_MAC_TAG_SIZE);
	f->tagged = 1;
}

/* ------------------------------------------------------------ running */

struct t_run {
	uint32_t retval;
	uint8_t out[4096];
	uint32_t out_len;
	uint32_t meta_len;	/* bytes of XDP metadata in front of out */
};

/* BPF_PROG_RUN @fd (XDP) on @len bytes of @buf. */
static inline int t_run_xdp(int fd, const void *buf, size_t len, struct t_run *res)
{
	/* With a context out, the context in must say where the frame ends
	 * (a zeroed one is an empty frame). */
	struct xdp_md ctx_in = { .data_end = (__u32)len }, ctx_out = { 0 };
	LIBBPF_OPTS(bpf_test_run_opts, o,
		.data_in = buf,
		.data_size_in = (__u32)len,
		.data_out = res->out,
		.data_size_out = sizeof(res->out),
		.ctx_in = &ctx_in,
		.ctx_size_in = sizeof(ctx_in),
		.ctx_out = &ctx_out,
		.ctx_size_out = sizeof(ctx_out),
		.repeat = 1,
	);
	int err = bpf_prog_test_run_opts(fd, &o);

	if (err)
		return -errno;
	res->retval = o.retval;
	res->out_len = o.data_size_out;
	/* data_out starts at data_meta; ctx_out.data is where the frame is. */
	res->meta_len = ctx_out.data - ctx_out.data_meta;
	return 0;
}

static inline void t_stats(struct sgc *s, uint64_t st[SGC_ST_MAX])
{
	int ncpu = libbpf_num_possible_cpus(), i, c;
	uint64_t v[ncpu > 0 ? ncpu : 1];

	for (i = 0; i < SGC_ST_MAX; i++) {
		__u32 k = (__u32)i;

		st[i] = 0;
		if (bpf_map_lookup_elem(bpf_map__fd(s->maps.stats), &k, v))
			continue;
		for (c = 0; c < ncpu; c++)
			st[i] += v[c];
	}
}

static inline int t_slot(struct sgc *s, __u32 idx, struct sgc_bpf_slot *out)
{
	return bpf_map_lookup_elem_flags(bpf_map__fd(s->maps.slots), &idx, out, BPF_F_LOCK);
}

static inline void t_slot_clear(struct sgc *s)
{
	static struct sgc_bpf_slot zero;
	__u32 i;

	for (i = 0; i < SGC_BPF_SLOTS; i++)
		bpf_map_update_elem(bpf_map__fd(s->maps.slots), &i, &zero, BPF_F_LOCK);
}

static const char *const t_stat_names[SGC_ST_MAX] = {
	"PASS_FOREIGN", "PASS_CONTROL", "PASS_USER", "DROP_MALFORMED", "DROP_JOB",
	"DROP_RANK", "DROP_SOURCE", "DROP_FIELD", "DROP_WINDOW", "DROP_STALE",
	"DROP_LATE", "DROP_DUP", "DROP_MISMATCH", "REDUCED", "COMPLETED",
	"RINGBUF_FULL", "FANOUT_CLONES", "FANOUT_ERR", "DELIVERED", "DROP_IP",
	"DROP_BUSY", "PASS_MISMATCH", "DROP_MAC",
};

/* xorshift64*: reproducible test data. */
static inline uint64_t t_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

#endif /* SGC_TEST_BPF_HARNESS_H */
