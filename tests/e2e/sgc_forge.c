// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sgc_forge: well-formed forgeries for a running job, from inside a
 * worker host of the virtual cluster (tests/e2e/forgery.sh runs it).
 *
 * sgc_hostile sends datagrams that are broken in one field; these are
 * whole and plausible, each wrong only in what a receiver must not take
 * from a stranger: a forged source, a kernel-only flag, an IP shape the
 * kernel path does not parse, a completion policy, a join message with
 * the wrong nonce, job id, port or world size, another job's traffic.
 * Frames go out through an AF_PACKET socket on IFNAME with this host's
 * MAC, whatever IP source they claim (a forged source MAC would move the
 * bridge's idea of where a host is); they carry TTL FORGED_TTL, so that
 * the tap, which sees real traffic, can tell our own frames from it.
 *
 *   sgc_forge -m capture -i IFNAME -c COORD_IP:PORT -d SECONDS -o FRAMES
 *       every job datagram this host sends to or gets from the
 *       coordinator, for SECONDS or until SIGTERM, into FRAMES.
 *   sgc_forge -m attack -i IFNAME -c COORD_IP:PORT -W WORLD -d SECONDS
 *             -o COUNTS [-r FRAMES] [-K] [-x] [-A AHEAD] [-t TAG] [-p PORT] [-J FILE]
 *       started before the job: watches the join (the WELCOME gives the
 *       job id, roster and chunk size), forges join messages while it
 *       runs, then for SECONDS from the first contribution forges
 *       against the running collectives.  -r replays FRAMES (an earlier
 *       job's) into this one.  -K: the job has a key (SGC_KEY), which we
 *       do not know: forged datagrams carry SGC_F_MAC and a random tag
 *       (one in four neither), and the spoofed-source classes are sent.
 *       -x: the coordinator runs the eBPF path, which must drop a
 *       fragmented or optioned contribution whatever it holds, so those
 *       are sent without a key too.  -A: how many collectives ahead the
 *       forged contributions go (robust_check -m run repeats its calls'
 *       shapes every 15).  -t: robust_check's tag (-k), so that a forged
 *       scatter-gather answer carries the true values.  -p: the port of
 *       the stranger that sends the join messages and reads the answers.
 *       -J: FILE is created once the coordinator answers a HELLO.
 *
 * COUNTS gets "CLASS SENT" for every class, "ans:CLASS N" for the answers
 * of the expected kind to each HELLO class, and "leak", "claimed" and
 * "bad_answer" lines (answers that must never come).  Exit 0, or 1 with
 * the reason when the job could not be followed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "robust_input.h"
#include "sgcoll.h"
#include "sgcoll/wire.h"

/* The job key's interface (issue 16), for a wire.h that predates it. */
#ifndef SGC_F_MAC
#define SGC_F_MAC	0x0080
#endif
#define TAG_LEN		8	/* the MAC tag after the body */

#define L2L4		(sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr))
#define FRAME_MAX	9216
#define DGRAM_MAX	(SGC_HDR_SIZE + SGC_MAX_BODY + TAG_LEN)
#define FORGED_TTL	61
#define IP_MF		0x2000
#define IP_OFFMASK	0x1fff
#define MAX_RANKS	64
#define MAX_RECS	4000
#define NONCE_MARK	0xf0u	/* top byte of every nonce we send */

enum cls {
	/* Spoofed sources: a registered rank's (or the coordinator's)
	 * address and port, the real job id, in the window, a wrong
	 * payload.  Only with a key (without one, the documented limit). */
	C_SPOOF_AHEAD,	/* a local rank's contribution, AHEAD collectives early */
	C_SPOOF_RACE,	/* a remote rank's contribution, racing the real one */
	C_SPOOF_RESULT,	/* a RESULT to a remote rank, from the coordinator */
	/* A contribution as C_SPOOF_AHEAD in IP fragments, with IP options:
	 * with a key, or on the eBPF path. */
	C_FRAG_CONTRIB,
	C_OPT_CONTRIB,
	/* SGC_F_KERNEL RESULT to the coordinator from a registered rank */
	C_KERNEL,
	C_FRAG_KERNEL,
	C_OPT_KERNEL,
	/* an answer marked WAIT_ANY to a WAIT_ALL query, true values */
	C_WAITANY,
	/* after the join */
	C_HELLO_WORLD,	/* another world size */
	C_HELLO_RANK0,	/* rank 0 */
	C_HELLO_TAKEN,	/* a confirmed rank, from another port */
	C_HELLO_JOB,	/* a HELLO with a job id */
	C_READY_JOB,	/* READY with all right but the job id */
	C_READY_NONCE,	/* all right but the nonce, from the rank's address */
	C_READY_PORT,	/* all right, from another port */
	C_READY_RANK0,	/* READY for rank 0 */
	/* during the join */
	C_JOIN_HELLO_WORLD,
	C_JOIN_HELLO_RANK0,
	C_JOIN_HELLO_TAKEN,	/* once the rank's READY has gone out */
	C_JOIN_HELLO_JOB,
	C_JOIN_READY_JOB,
	C_JOIN_READY_NONCE,	/* as soon as the WELCOME arrives: first */
	C_JOIN_READY_PORT,
	/* an earlier job's datagrams */
	C_OLDJOB,	/* to the coordinator, from the rank that sent them */
	C_OLDJOB_HELLO,	/* its HELLOs, to the coordinator */
	C_OLDJOB_W2,	/* what the coordinator sent, to a remote rank */
	C_MAX
};

static const char *const cls_name[C_MAX] = {
	"spoof_ahead", "spoof_race", "spoof_result", "frag_contrib", "opt_contrib",
	"kernel", "frag_kernel", "opt_kernel", "waitany",
	"hello_world", "hello_rank0", "hello_taken", "hello_job",
	"ready_job", "ready_nonce", "ready_port", "ready_rank0",
	"join_hello_world", "join_hello_rank0", "join_hello_taken", "join_hello_job",
	"join_ready_job", "join_ready_nonce", "join_ready_port",
	"oldjob", "oldjob_hello", "oldjob_w2",
};

/* How a datagram goes on the wire. */
enum shape { SH_PLAIN, SH_FRAG, SH_OPTS };

struct ep {
	uint32_t ip;	/* network order */
	uint16_t port;	/* network order */
};

/* A datagram of the earlier job, as the capture wrote it. */
struct rec {
	uint8_t out;	/* 1: a local rank's, to the coordinator */
	uint8_t pad;
	uint16_t len;
	struct ep src, dst;
	uint8_t data[];
} __attribute__((packed));

static struct {
	int ps, as, ifindex;
	size_t mtu;
	bool key, ebpf;
	int world, ahead;
	unsigned tag;
	struct ep coord, self, stranger;
	uint8_t my_mac[ETH_ALEN], coord_mac[ETH_ALEN];
	bool have_my_mac, have_coord_mac;
	/* learnt from the join */
	uint64_t job_id;
	uint32_t chunk_bytes;
	uint16_t push_credit;
	bool welcomed;
	struct ep rank_ep[MAX_RANKS];
	bool rank_known[MAX_RANKS], rank_local[MAX_RANKS];
	uint8_t rank_mac[MAX_RANKS][ETH_ALEN];
	bool rank_mac_ok[MAX_RANKS], rank_mac_tried[MAX_RANKS];
	uint32_t nonce[MAX_RANKS];	/* of the local ranks' HELLOs */
	bool ready_out[MAX_RANKS];	/* their READY has gone out */
	uint32_t wm[MAX_RANKS];		/* their last watermark */
	/* the last collective contribution of a local rank */
	uint8_t tmpl[DGRAM_MAX];
	size_t tmpl_len;		/* header + body, no tag */
	struct ep tmpl_src;
	/* counts */
	unsigned long sent[C_MAX], ans[C_MAX], errs, leak, claimed, bad_answer;
	unsigned long mac_seq;
	uint32_t nonce_seq;
	/* capture / replay */
	uint8_t *recs;
	size_t recs_len, nrecs, rec_off;
	unsigned next_w2;
} g;

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint32_t rnd32(void)
{
	uint32_t v = 0;

	if (getrandom(&v, sizeof(v), 0) != sizeof(v))
		v = (uint32_t)rand();
	return v;
}

static uint16_t ip_csum(const void *hdr, size_t len)
{
	const uint16_t *p = hdr;
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i < len / 2; i++)
		sum += p[i];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* ------------------------------------------------------------ sending */

/*
 * One IPv4 frame: @l4len bytes of @l4 (a UDP datagram or a piece of
 * one) after @optlen bytes of IP options (NOPs, then an end of list),
 * with @frag as the flags and offset field.  0 when it went out.
 */
static int send_ip(const uint8_t *dmac, uint32_t sip, uint32_t dip, const uint8_t *l4,
		   size_t l4len, size_t optlen, uint16_t frag, uint16_t id)
{
	static uint8_t buf[FRAME_MAX + 2] __attribute__((aligned(8)));
	uint8_t *f = buf + 2;	/* the IP header 4-aligned */
	struct ethhdr *eth = (struct ethhdr *)f;
	struct iphdr *ip = (struct iphdr *)(eth + 1);
	struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP),
				  .sll_ifindex = g.ifindex, .sll_halen = ETH_ALEN };
	size_t len = sizeof(*eth) + sizeof(*ip) + optlen + l4len;

	if (len > FRAME_MAX)
		return -1;
	memcpy(eth->h_dest, dmac, ETH_ALEN);
	memcpy(eth->h_source, g.my_mac, ETH_ALEN);
	eth->h_proto = htons(ETH_P_IP);
	memset(ip, 0, sizeof(*ip));
	ip->version = 4;
	ip->ihl = (unsigned)((sizeof(*ip) + optlen) / 4);
	ip->tot_len = htons((uint16_t)(sizeof(*ip) + optlen + l4len));
	ip->id = htons(id);
	ip->frag_off = htons(frag);
	ip->ttl = FORGED_TTL;
	ip->protocol = IPPROTO_UDP;
	ip->saddr = sip;
	ip->daddr = dip;
	if (optlen) {
		memset(ip + 1, 1, optlen);	/* IPOPT_NOOP */
		((uint8_t *)(ip + 1))[optlen - 1] = 0;	/* IPOPT_END */
	}
	ip->check = ip_csum(ip, sizeof(*ip) + optlen);
	memcpy((uint8_t *)(ip + 1) + optlen, l4, l4len);
	memcpy(ll.sll_addr, dmac, ETH_ALEN);
	if (sendto(g.ps, f, len, 0, (struct sockaddr *)&ll, sizeof(ll)) != (ssize_t)len) {
		if (!g.errs++)
			perror("sgc_forge: send (the first failure; the rest are counted)");
		return -1;
	}
	return 0;
}

/* A UDP datagram of @pl from @src to @dst, shaped @sh; counted in @cls
 * when every frame of it went out.  UDP checksum 0: none. */
static void emit(enum cls c, enum shape sh, const uint8_t *dmac, struct ep src, struct ep dst,
		 const uint8_t *pl, size_t plen)
{
	static uint8_t u[DGRAM_MAX + sizeof(struct udphdr)];
	struct udphdr *udp = (struct udphdr *)u;
	size_t ulen = sizeof(*udp) + plen, first;
	uint16_t id = (uint16_t)rnd32();
	int rc;

	if (plen > DGRAM_MAX)
		return;
	udp->source = src.port;
	udp->dest = dst.port;
	udp->len = htons((uint16_t)ulen);
	udp->check = 0;
	memcpy(udp + 1, pl, plen);
	switch (sh) {
	case SH_FRAG:
		/* Two pieces, the first with the UDP header and about half,
		 * cut on an 8-byte boundary as IP requires. */
		first = ulen / 2 / 8 * 8;
		if (first < 8)
			first = 8;
		rc = send_ip(dmac, src.ip, dst.ip, u, first, 0, IP_MF, id);
		if (!rc)
			rc = send_ip(dmac, src.ip, dst.ip, u + first, ulen - first, 0,
				     (uint16_t)(first / 8), id);
		break;
	case SH_OPTS:
		/* Too long with the options: the first of two fragments has
		 * them. */
		if (sizeof(struct iphdr) + 4 + ulen <= g.mtu) {
			rc = send_ip(dmac, src.ip, dst.ip, u, ulen, 4, 0, id);
			break;
		}
		first = ulen / 2 / 8 * 8;
		rc = send_ip(dmac, src.ip, dst.ip, u, first, 4, IP_MF, id);
		if (!rc)
			rc = send_ip(dmac, src.ip, dst.ip, u + first, ulen - first, 0,
				     (uint16_t)(first / 8), id);
		break;
	default:
		/* A full chunk with our tag may not fit the MTU (the
		 * library's own datagrams leave room for theirs): not sent. */
		if (sizeof(struct iphdr) + ulen > g.mtu)
			return;
		rc = send_ip(dmac, src.ip, dst.ip, u, ulen, 0, 0x4000 /* DF */, id);
		break;
	}
	if (!rc)
		g.sent[c]++;
}

/*
 * A forged datagram: header @h and @blen bytes of @body.  With a key,
 * three in four claim SGC_F_MAC and end with a random tag, the fourth has
 * neither: both must fail the check we cannot pass.
 */
static void forge(enum cls c, enum shape sh, const uint8_t *dmac, struct ep src, struct ep dst,
		  const struct sgc_hdr *h, const void *body, size_t blen)
{
	static uint8_t pl[DGRAM_MAX];
	struct sgc_hdr *ph = (struct sgc_hdr *)pl;
	size_t len = SGC_HDR_SIZE + blen;

	if (len + TAG_LEN > sizeof(pl))
		return;
	memcpy(pl, h, SGC_HDR_SIZE);
	if (blen)
		memcpy(pl + SGC_HDR_SIZE, body, blen);
	ph->flags &= (uint16_t)~SGC_F_MAC;
	if (g.key && g.mac_seq++ % 4 != 3) {
		uint32_t t[2] = { rnd32(), rnd32() };

		ph->flags |= SGC_F_MAC;
		memcpy(pl + len, t, TAG_LEN);
		len += TAG_LEN;
	}
	emit(c, sh, dmac, src, dst, pl, len);
}

static uint32_t next_nonce(enum cls c)
{
	return NONCE_MARK << 24 | (uint32_t)c << 16 | (g.nonce_seq++ & 0xffff);
}

static void hdr_init(struct sgc_hdr *h, uint8_t type, uint64_t job)
{
	memset(h, 0, sizeof(*h));
	h->magic = SGC_WIRE_MAGIC;
	h->version = SGC_WIRE_VERSION;
	h->type = type;
	h->job_id = job;
}

/* A HELLO for @rank of @world from the stranger, its nonce naming @c. */
static void hello(enum cls c, int rank, int world, uint64_t job)
{
	struct sgc_hdr h;

	hdr_init(&h, SGC_MSG_HELLO, job);
	h.rank = (uint16_t)rank;
	h.arg = (uint16_t)world;
	h.aux = next_nonce(c);
	forge(c, SH_PLAIN, g.coord_mac, g.stranger, g.coord, &h, NULL, 0);
}

static void ready(enum cls c, int rank, uint64_t job, uint32_t nonce, struct ep from)
{
	struct sgc_hdr h;

	hdr_init(&h, SGC_MSG_READY, job);
	h.rank = (uint16_t)rank;
	h.aux = nonce;
	forge(c, SH_PLAIN, g.coord_mac, from, g.coord, &h, NULL, 0);
}

/* The k-th local rank whose HELLO we saw; -1 when there is none. */
static int local_rank(unsigned k)
{
	int r, n = 0, cand[MAX_RANKS];

	for (r = 1; r < g.world && r < MAX_RANKS; r++)
		if (g.rank_local[r] && g.nonce[r])
			cand[n++] = r;
	return n ? cand[k % (unsigned)n] : -1;
}

static struct ep other_port(struct ep e)
{
	e.port = htons((uint16_t)(ntohs(e.port) + 500));
	return e;
}

/* ------------------------------------------------------------ the join */

/* While the coordinator waits for ranks: join messages it must refuse. */
static void join_tick(unsigned k)
{
	int r = (int)(k % (unsigned)(g.world - 1)) + 1, lr = local_rank(k);
	uint64_t job = g.job_id ? g.job_id : ((uint64_t)rnd32() << 32 | rnd32());

	hello(C_JOIN_HELLO_WORLD, r, g.world + 1, 0);
	hello(C_JOIN_HELLO_RANK0, 0, g.world, 0);
	hello(C_JOIN_HELLO_JOB, r, g.world, job);
	if (lr > 0)
		ready(C_JOIN_READY_JOB, lr, job ^ 0x5a5a5a5aULL, g.nonce[lr], g.rank_ep[lr]);
}

/*
 * The coordinator welcomed local rank @r: before its READY can be back,
 * READYs that are right in all but one thing (the nonce; the port; the
 * job id).  None may confirm the claim, nor keep the real one from it.
 */
static void join_welcomed(int r)
{
	if (r <= 0 || r >= MAX_RANKS || !g.nonce[r])
		return;
	ready(C_JOIN_READY_NONCE, r, g.job_id, g.nonce[r] ^ 0x10001u, g.rank_ep[r]);
	ready(C_JOIN_READY_PORT, r, g.job_id, g.nonce[r], other_port(g.rank_ep[r]));
	ready(C_JOIN_READY_JOB, r, g.job_id ^ 0x5a5a5a5aULL, g.nonce[r], g.rank_ep[r]);
}

/* The roster and the job's parameters from a WELCOME to a local rank. */
static void on_welcome(const struct sgc_hdr *h, const uint8_t *body, size_t blen)
{
	const struct sgc_welcome *w = (const void *)body;
	const struct sgc_roster_ent *e = (const void *)(w + 1);
	uint32_t i;

	if (blen < sizeof(*w) + (size_t)h->count * sizeof(*e))
		return;
	g.job_id = h->job_id;
	g.chunk_bytes = w->chunk_bytes;
	g.push_credit = w->push_credit;
	for (i = 0; i < h->count; i++) {
		int r = e[i].rank;

		if (r >= MAX_RANKS || r >= g.world)
			continue;
		g.rank_ep[r].ip = e[i].addr;
		g.rank_ep[r].port = e[i].port;
		g.rank_known[r] = true;
		g.rank_local[r] = r && e[i].addr == g.self.ip;
	}
	g.welcomed = true;
}

/* ------------------------------------------------------------ collectives */

static bool remote_rank(int r)
{
	return r > 0 && r < g.world && r < MAX_RANKS && g.rank_known[r] && !g.rank_local[r] &&
	       g.rank_mac_ok[r];
}

/* A wrong payload of @n bytes, different each time. */
static const uint8_t *junk(size_t n)
{
	static uint8_t b[SGC_MAX_BODY];
	static uint8_t k;
	size_t i;

	k++;
	for (i = 0; i < n && i < sizeof(b); i++)
		b[i] = (uint8_t)(0xa5 ^ k ^ i);
	return b;
}

/*
 * A local rank's contribution went out: forge what races it.  Without a
 * key a spoofed source is the documented limit, so only the IP-shape
 * classes go, and only to the eBPF path, whose kernel must drop them.
 */
static void on_contrib_out(void)
{
	static double last;
	struct sgc_hdr h;
	size_t blen = g.tmpl_len - SGC_HDR_SIZE;
	double t = now_s();
	int q;

	if (t - last < 0.004)	/* about 250 sets a second */
		return;
	last = t;
	memcpy(&h, g.tmpl, SGC_HDR_SIZE);
	h.seq += (uint32_t)g.ahead;
	if (g.key) {
		forge(C_SPOOF_AHEAD, SH_PLAIN, g.coord_mac, g.tmpl_src, g.coord, &h, junk(blen), blen);
		memcpy(&h, g.tmpl, SGC_HDR_SIZE);
		for (q = 1; q < g.world; q++) {
			if (!remote_rank(q))
				continue;
			h.type = SGC_MSG_CONTRIB;
			h.rank = (uint16_t)q;
			forge(C_SPOOF_RACE, SH_PLAIN, g.coord_mac, g.rank_ep[q], g.coord, &h, junk(blen),
			      blen);
			/* The same collective's result, to that rank, before
			 * the coordinator can have it. */
			h.type = SGC_MSG_RESULT;
			h.aux = 0;
			forge(C_SPOOF_RESULT, SH_PLAIN, g.rank_mac[q], g.coord, g.rank_ep[q], &h, junk(blen),
			      blen);
			memcpy(&h, g.tmpl, SGC_HDR_SIZE);
		}
		h.seq += (uint32_t)g.ahead;
	}
	if (g.key || g.ebpf) {
		forge(C_FRAG_CONTRIB, SH_FRAG, g.coord_mac, g.tmpl_src, g.coord, &h, junk(blen), blen);
		forge(C_OPT_CONTRIB, SH_OPTS, g.coord_mac, g.tmpl_src, g.coord, &h, junk(blen), blen);
	}
}

/*
 * A WAIT_ALL query reached local rank @r: answer for it at once, with the
 * values it will send (robust_check's handler), but marked WAIT_ANY with
 * wait_n 1.  Whichever of the two is taken, the values are the same: what
 * must not change is that the query waits for every worker.
 */
static void on_query(const struct sgc_hdr *qh, const uint8_t *body, size_t blen, int r)
{
	static uint64_t v[SGC_MAX_BODY / 8];
	static double last;
	double t = now_s();
	uint32_t ch, credit, elems, salt;
	struct sgc_hdr h;
	size_t i, n;

	if ((qh->flags & SGC_F_STOP) || qh->policy != SGC_WIRE_WAIT_ALL || blen < 4 ||
	    qh->dtype != SGC_INT64 || !g.chunk_bytes || t - last < 0.004)
		return;
	last = t;
	memcpy(&salt, body, sizeof(salt));
	elems = g.chunk_bytes / 8;
	/* What the rank sends unasked, at most 4 chunks of it. */
	credit = g.push_credit < qh->nchunks ? g.push_credit : qh->nchunks;
	if (!credit && (qh->flags & SGC_F_ASK))
		credit = 1;
	if (credit > 4)
		credit = 4;
	for (ch = 0; ch < credit; ch++) {
		n = ch + 1 < qh->nchunks ? elems : qh->aux - (size_t)ch * elems;
		if (n > elems)
			return;
		for (i = 0; i < n; i++)
			v[i] = input(g.tag, r, (size_t)ch * elems + i, salt);
		hdr_init(&h, SGC_MSG_CONTRIB, g.job_id);
		h.seq = qh->seq;
		h.coll = SGC_COLL_QUERY;
		h.chunk = ch;
		h.nchunks = qh->nchunks;
		h.rank = (uint16_t)r;
		h.count = (uint16_t)n;
		h.dtype = qh->dtype;
		h.op = qh->op;
		h.policy = SGC_WIRE_WAIT_ANY;
		h.arg = 1;
		h.aux = g.wm[r];
		forge(C_WAITANY, SH_PLAIN, g.coord_mac, g.rank_ep[r], g.coord, &h, v, n * 8);
	}
}

/* An SGC_F_KERNEL RESULT for the collective of the template, from the
 * rank that sent it: a guessed token, fan-out from rank 1. */
static void kernel_result(enum cls c, enum shape sh)
{
	struct sgc_hdr h;
	size_t blen = g.tmpl_len - SGC_HDR_SIZE;

	memcpy(&h, g.tmpl, SGC_HDR_SIZE);
	h.type = SGC_MSG_RESULT;
	h.flags = SGC_F_KERNEL;
	h.aux = rnd32();
	h.fan_first = 1;
	h.fan_end = (uint16_t)g.world;
	forge(c, sh, g.coord_mac, g.tmpl_src, g.coord, &h, junk(blen), blen);
}

/* The next datagrams of the earlier job, as they were. */
static void replay(int n)
{
	while (n-- > 0 && g.nrecs) {
		const struct rec *rc = (const struct rec *)(g.recs + g.rec_off);
		const struct sgc_hdr *h = (const struct sgc_hdr *)rc->data;
		unsigned k;
		int q;

		g.rec_off += sizeof(*rc) + rc->len;
		if (g.rec_off >= g.recs_len)
			g.rec_off = 0;
		if (rc->out) {
			emit(h->type == SGC_MSG_HELLO ? C_OLDJOB_HELLO : C_OLDJOB, SH_PLAIN, g.coord_mac,
			     rc->src, g.coord, rc->data, rc->len);
			continue;
		}
		/* To a rank on another host: ours cannot be reached from here. */
		for (k = 0; k < (unsigned)g.world; k++) {
			q = (int)((g.next_w2 + k) % (unsigned)g.world);
			if (remote_rank(q))
				break;
		}
		if (k == (unsigned)g.world)
			continue;
		g.next_w2 = (unsigned)q + 1;
		emit(C_OLDJOB_W2, SH_PLAIN, g.rank_mac[q], g.coord, g.rank_ep[q], rc->data, rc->len);
	}
}

static void run_tick(unsigned k)
{
	int r = (int)(k % (unsigned)(g.world - 1)) + 1, lr = local_rank(k);

	if (g.tmpl_len) {
		kernel_result(C_KERNEL, SH_PLAIN);
		kernel_result(C_FRAG_KERNEL, SH_FRAG);
		kernel_result(C_OPT_KERNEL, SH_OPTS);
	}
	if (k % 2 == 0 && lr > 0) {
		ready(C_READY_JOB, lr, g.job_id ^ 0x5a5a5a5aULL, g.nonce[lr], g.rank_ep[lr]);
		ready(C_READY_NONCE, lr, g.job_id, g.nonce[lr] ^ 0x10001u, g.rank_ep[lr]);
		ready(C_READY_PORT, lr, g.job_id, g.nonce[lr], other_port(g.rank_ep[lr]));
	}
	if (k % 4 == 0) {
		ready(C_READY_RANK0, 0, g.job_id, rnd32(), g.stranger);
		hello(C_HELLO_WORLD, r, g.world + 2, 0);
		hello(C_HELLO_RANK0, 0, g.world, 0);
		hello(C_HELLO_TAKEN, r, g.world, 0);
		hello(C_HELLO_JOB, r, g.world, g.job_id);
	}
	replay(2);
}

/* ------------------------------------------------------------ the tap */

enum phase { P_WAIT, P_JOIN, P_RUN };

static enum phase g_phase;
static double g_run_end;
static int g_secs_run;
static const char *g_join_file;

/* Record one datagram of the capture. */
static void record(bool out, struct ep src, struct ep dst, const uint8_t *p, size_t len)
{
	struct rec *rc;

	if (g.nrecs >= MAX_RECS || len > DGRAM_MAX)
		return;
	rc = (struct rec *)(g.recs + g.recs_len);
	rc->out = out;
	rc->pad = 0;
	rc->len = (uint16_t)len;
	rc->src = src;
	rc->dst = dst;
	memcpy(rc->data, p, len);
	g.recs_len += sizeof(*rc) + len;
	g.nrecs++;
}

/* A local rank's datagram to the coordinator. */
static void to_coord(const struct sgc_hdr *h, const uint8_t *body, size_t blen, struct ep src)
{
	int r = h->rank, k;

	if (r <= 0 || r >= MAX_RANKS || r >= g.world)
		return;
	g.rank_ep[r] = src;
	g.rank_known[r] = g.rank_local[r] = true;
	switch (h->type) {
	case SGC_MSG_HELLO:
		g.nonce[r] = h->aux;
		return;
	case SGC_MSG_READY:
		/* Rank r's claim is confirmed once this arrives, and a HELLO
		 * for it from elsewhere, sent after it, must be refused
		 * (one that comes before the confirmation may take an open
		 * claim: join_spoof.sh). */
		if (!g.ready_out[r] && g.welcomed)
			for (k = 0; k < 3; k++)
				hello(C_JOIN_HELLO_TAKEN, r, g.world, 0);
		g.ready_out[r] = true;
		return;
	case SGC_MSG_CONTRIB:
	case SGC_MSG_ACK:
	case SGC_MSG_NACK:
		g.wm[r] = h->aux;
		break;
	default:
		return;
	}
	if (h->type != SGC_MSG_CONTRIB || h->coll == SGC_COLL_QUERY || h->job_id != g.job_id ||
	    !g.welcomed)
		return;
	memcpy(g.tmpl, h, SGC_HDR_SIZE);
	memcpy(g.tmpl + SGC_HDR_SIZE, body, blen);
	g.tmpl_len = SGC_HDR_SIZE + blen;
	g.tmpl_src = src;
	if (g_phase != P_RUN) {
		g_phase = P_RUN;
		g_run_end = now_s() + g_secs_run;
	}
	on_contrib_out();
}

/* The coordinator answers: the join is on.  -J's file says so (a rank
 * of forgery.sh's job waits for it, so that the join lasts). */
static void join_started(void)
{
	FILE *f;

	g_phase = P_JOIN;
	if (g_join_file && (f = fopen(g_join_file, "w")))
		fclose(f);
}

/* The local rank at @e, 0 if none. */
static int rank_at(struct ep e)
{
	int r;

	for (r = 1; r < g.world && r < MAX_RANKS; r++)
		if (g.rank_local[r] && g.rank_ep[r].ip == e.ip && g.rank_ep[r].port == e.port)
			return r;
	return 0;
}

static void from_coord(const struct sgc_hdr *h, const uint8_t *body, size_t blen, struct ep dst)
{
	int r = h->rank;

	if ((h->type == SGC_MSG_WAIT || h->type == SGC_MSG_WELCOME) && g_phase == P_WAIT)
		join_started();
	if (h->type == SGC_MSG_WELCOME && h->chunk == 0) {
		on_welcome(h, body, blen);
		if (g_phase == P_JOIN && g.have_my_mac)
			join_welcomed(r);
	}
	/* One QUERY goes to every worker: its rank field names none. */
	if (h->type == SGC_MSG_QUERY && g_phase == P_RUN && h->job_id == g.job_id &&
	    (r = rank_at(dst)))
		on_query(h, body, blen, r);
}

/* The length of the datagram @h starts (header, body, tag), 0 if none. */
static size_t dgram_len(const struct sgc_hdr *h, size_t left)
{
	size_t n;

	if (left < SGC_HDR_SIZE || h->magic != SGC_WIRE_MAGIC || h->version != SGC_WIRE_VERSION)
		return 0;
	switch (h->type) {
	case SGC_MSG_CONTRIB:
	case SGC_MSG_RESULT:
		n = SGC_HDR_SIZE + (size_t)h->count * sgc_wire_dtype_size(h->dtype);
		break;
	default:
		/* Control messages go alone, never coalesced: all of it. */
		return left;
	}
	if (h->flags & SGC_F_MAC)
		n += TAG_LEN;
	return n <= left ? n : 0;
}

static void on_frame(uint8_t *f, size_t n, int pkttype, bool capture)
{
	struct ethhdr *eth = (struct ethhdr *)f;
	struct iphdr *ip = (struct iphdr *)(eth + 1);
	struct udphdr *udp;
	struct ep src, dst;
	bool out = pkttype == PACKET_OUTGOING;
	size_t off, len, dl;

	if (n < L2L4 + SGC_HDR_SIZE || eth->h_proto != htons(ETH_P_IP) || ip->version != 4 ||
	    ip->ihl != 5 || ip->protocol != IPPROTO_UDP || ip->ttl == FORGED_TTL ||
	    (ip->frag_off & htons(IP_MF | IP_OFFMASK)))
		return;
	udp = (struct udphdr *)(ip + 1);
	src = (struct ep){ ip->saddr, udp->source };
	dst = (struct ep){ ip->daddr, udp->dest };
	if (out && (dst.ip != g.coord.ip || dst.port != g.coord.port))
		return;
	if (!out && (pkttype != PACKET_HOST || src.ip != g.coord.ip || src.port != g.coord.port))
		return;
	if (out) {
		memcpy(g.my_mac, eth->h_source, ETH_ALEN);
		memcpy(g.coord_mac, eth->h_dest, ETH_ALEN);
	} else {
		memcpy(g.my_mac, eth->h_dest, ETH_ALEN);
		memcpy(g.coord_mac, eth->h_source, ETH_ALEN);
	}
	g.have_my_mac = g.have_coord_mac = true;
	/* A UDP GSO send is seen whole here: walk its datagrams. */
	len = ntohs(ip->tot_len);
	if (len > n - sizeof(*eth))
		len = n - sizeof(*eth);
	if (len < sizeof(*ip) + sizeof(*udp))
		return;
	len -= sizeof(*ip) + sizeof(*udp);
	for (off = 0; (dl = dgram_len((const struct sgc_hdr *)((uint8_t *)(udp + 1) + off),
				      len - off)); off += dl) {
		const uint8_t *p = (uint8_t *)(udp + 1) + off;
		const struct sgc_hdr *h = (const struct sgc_hdr *)p;
		size_t blen = dl - SGC_HDR_SIZE - ((h->flags & SGC_F_MAC) ? TAG_LEN : 0);

		if ((h->type == SGC_MSG_CONTRIB || h->type == SGC_MSG_RESULT) &&
		    (size_t)h->count * sgc_wire_dtype_size(h->dtype) != blen)
			blen = (size_t)h->count * sgc_wire_dtype_size(h->dtype);
		if (capture)
			record(out, src, dst, p, dl);
		else if (out)
			to_coord(h, p + SGC_HDR_SIZE, blen, src);
		else
			from_coord(h, p + SGC_HDR_SIZE, blen, dst);
	}
}

/* Answers to the stranger: only ABORTs, under our nonce, with the code
 * its class expects; never the job id, never a claim. */
static void on_answer(void)
{
	static uint8_t b[DGRAM_MAX];
	struct sgc_hdr h;
	ssize_t n;
	unsigned c;

	while ((n = recv(g.as, b, sizeof(b), MSG_DONTWAIT)) > 0) {
		if (n < SGC_HDR_SIZE)
			continue;
		memcpy(&h, b, SGC_HDR_SIZE);
		if (g.job_id && h.job_id == g.job_id) {
			g.leak++;
			fprintf(stderr, "sgc_forge: LEAK: a type %u answer to the stranger carries the job id\n",
				h.type);
		}
		if (h.type == SGC_MSG_WELCOME || h.type == SGC_MSG_WAIT) {
			g.claimed++;
			fprintf(stderr, "sgc_forge: CLAIMED: a type %u answer to the stranger (rank %u)\n",
				h.type, h.rank);
			continue;
		}
		c = (unsigned)(h.job_id >> 16) & 0xff;
		if (h.type != SGC_MSG_ABORT || h.job_id >> 24 != NONCE_MARK || c >= C_MAX) {
			g.bad_answer++;
			continue;
		}
		switch (c) {
		case C_HELLO_WORLD:
		case C_JOIN_HELLO_WORLD:
			if (h.aux == EPROTO && h.arg == g.world)
				g.ans[c]++;
			else
				g.bad_answer++;
			break;
		case C_HELLO_RANK0:
		case C_JOIN_HELLO_RANK0:
		case C_HELLO_TAKEN:
		case C_JOIN_HELLO_TAKEN:
			if (h.aux == EADDRINUSE)
				g.ans[c]++;
			else
				g.bad_answer++;
			break;
		default:
			g.bad_answer++;
			fprintf(stderr, "sgc_forge: an answer (type %u, code %u) to a %s forgery\n", h.type,
				h.aux, cls_name[c]);
			break;
		}
	}
}

/* The MAC address of @ip: a datagram to it makes the kernel ask (ARP). */
static bool resolve_mac(uint32_t ip, uint8_t *mac)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr.s_addr = ip, .sin_port = htons(9) };
	char want[32], line[256], a[32], hw[32];
	double end = now_s() + 2;
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	inet_ntop(AF_INET, &ip, want, sizeof(want));
	while (now_s() < end) {
		FILE *f = fopen("/proc/net/arp", "r");
		unsigned m[ETH_ALEN];
		int i;

		while (f && fgets(line, sizeof(line), f)) {
			if (sscanf(line, "%31s %*s %*s %31s", a, hw) != 2 || strcmp(a, want) ||
			    sscanf(hw, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6 ||
			    !(m[0] | m[1] | m[2] | m[3] | m[4] | m[5]))
				continue;
			for (i = 0; i < ETH_ALEN; i++)
				mac[i] = (uint8_t)m[i];
			fclose(f);
			if (s >= 0)
				close(s);
			return true;
		}
		if (f)
			fclose(f);
		if (s >= 0)
			sendto(s, "?", 1, 0, (struct sockaddr *)&to, sizeof(to));
		usleep(20000);
	}
	if (s >= 0)
		close(s);
	return false;
}

static void resolve_remotes(void)
{
	int r, q;

	for (r = 1; r < g.world && r < MAX_RANKS; r++) {
		if (!g.rank_known[r] || g.rank_local[r] || g.rank_mac_tried[r])
			continue;
		g.rank_mac_tried[r] = true;
		for (q = 1; q < r; q++)
			if (g.rank_mac_ok[q] && g.rank_ep[q].ip == g.rank_ep[r].ip)
				break;
		if (q < r) {
			memcpy(g.rank_mac[r], g.rank_mac[q], ETH_ALEN);
			g.rank_mac_ok[r] = true;
		} else {
			g.rank_mac_ok[r] = resolve_mac(g.rank_ep[r].ip, g.rank_mac[r]);
		}
	}
}

static int open_sockets(const char *ifname, bool answers)
{
	struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct ifreq ifr = { 0 };

	g.ifindex = (int)if_nametoindex(ifname);
	/* ETH_P_ALL: taps for one protocol see only what comes in. */
	g.ps = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	if (!g.ifindex || g.ps < 0) {
		perror("sgc_forge: AF_PACKET socket");
		return -1;
	}
	ll.sll_ifindex = g.ifindex;
	if (bind(g.ps, (struct sockaddr *)&ll, sizeof(ll))) {
		perror("sgc_forge: bind AF_PACKET");
		return -1;
	}
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ifr.ifr_addr.sa_family = AF_INET;
	if (ioctl(g.ps, SIOCGIFADDR, &ifr)) {
		perror("sgc_forge: the address of the interface");
		return -1;
	}
	g.self.ip = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr.s_addr;
	g.mtu = ioctl(g.ps, SIOCGIFMTU, &ifr) ? 1500 : (size_t)ifr.ifr_mtu;
	if (!answers)
		return 0;
	g.as = socket(AF_INET, SOCK_DGRAM, 0);
	sa.sin_port = g.stranger.port;
	if (g.as < 0 || bind(g.as, (struct sockaddr *)&sa, sizeof(sa))) {
		perror("sgc_forge: the stranger's port");
		return -1;
	}
	g.stranger.ip = g.self.ip;
	return 0;
}

static int load_recs(const char *path)
{
	FILE *f = fopen(path, "rb");
	size_t off = 0;
	long sz;

	if (!f || fseek(f, 0, SEEK_END) || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		perror(path);
		return -1;
	}
	g.recs = malloc((size_t)sz + 1);
	if (!g.recs || fread(g.recs, 1, (size_t)sz, f) != (size_t)sz) {
		perror(path);
		return -1;
	}
	fclose(f);
	g.recs_len = (size_t)sz;
	while (off + sizeof(struct rec) <= g.recs_len) {
		const struct rec *rc = (const struct rec *)(g.recs + off);

		if (off + sizeof(*rc) + rc->len > g.recs_len || rc->len < SGC_HDR_SIZE)
			break;
		off += sizeof(*rc) + rc->len;
		g.nrecs++;
	}
	g.recs_len = off;
	return g.nrecs ? 0 : -1;
}

static int write_counts(const char *path)
{
	FILE *out = fopen(path, "w");
	int c;

	if (!out) {
		perror(path);
		return -1;
	}
	for (c = 0; c < C_MAX; c++)
		fprintf(out, "%s %lu\n", cls_name[c], g.sent[c]);
	for (c = 0; c < C_MAX; c++)
		if (g.ans[c])
			fprintf(out, "ans:%s %lu\n", cls_name[c], g.ans[c]);
	fprintf(out, "leak %lu\nclaimed %lu\nbad_answer %lu\n", g.leak, g.claimed, g.bad_answer);
	return fclose(out);
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s -m capture|attack -i IFNAME -c COORD_IP:PORT -d SECONDS -o FILE "
		"[-W WORLD] [-r FRAMES] [-K] [-x] [-A AHEAD] [-t TAG] [-p PORT] [-J FILE]\n", prog);
}

int main(int argc, char **argv)
{
	static uint8_t fbuf[FRAME_MAX + 2] __attribute__((aligned(8)));
	uint8_t *frame = fbuf + 2;
	const char *mode = "attack", *ifname = "eth0", *coord = NULL, *outpath = NULL, *frames = NULL;
	double secs = 5, t_start, t_next, t_cap;
	bool capture;
	unsigned tick = 0;
	int opt;
	char ip[32];

	g.ahead = 15;
	g.tag = 7;
	g.stranger.port = htons(6999);
	while ((opt = getopt(argc, argv, "m:i:c:W:d:o:r:KxA:t:p:J:")) != -1) {
		switch (opt) {
		case 'm': mode = optarg; break;
		case 'i': ifname = optarg; break;
		case 'c': coord = optarg; break;
		case 'W': g.world = atoi(optarg); break;
		case 'd': secs = atof(optarg); break;
		case 'o': outpath = optarg; break;
		case 'r': frames = optarg; break;
		case 'K': g.key = true; break;
		case 'x': g.ebpf = true; break;
		case 'A': g.ahead = atoi(optarg); break;
		case 't': g.tag = (unsigned)strtoul(optarg, NULL, 0); break;
		case 'p': g.stranger.port = htons((uint16_t)atoi(optarg)); break;
		case 'J': g_join_file = optarg; break;
		default:
			usage(argv[0]);
			return 2;
		}
	}
	capture = !strcmp(mode, "capture");
	if (!coord || !outpath || (!capture && strcmp(mode, "attack")) ||
	    (!capture && (g.world < 3 || g.world > MAX_RANKS)) ||
	    sscanf(coord, "%31[^:]:%hu", ip, &g.coord.port) != 2 ||
	    inet_pton(AF_INET, ip, &g.coord.ip) != 1) {
		usage(argv[0]);
		return 2;
	}
	g.coord.port = htons(g.coord.port);
	if (open_sockets(ifname, !capture))
		return 1;
	if (capture) {
		g.recs = malloc((size_t)MAX_RECS * (sizeof(struct rec) + DGRAM_MAX));
		if (!g.recs)
			return 1;
	} else if (frames && load_recs(frames)) {
		fprintf(stderr, "sgc_forge: no datagrams to replay in %s\n", frames);
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	printf("sgc_forge: %s on %s (%s), coordinator %s\n", mode, ifname,
	       inet_ntop(AF_INET, &g.self.ip, ip, sizeof(ip)), coord);
	fflush(stdout);

	g_secs_run = (int)secs;
	t_start = now_s();
	/* The job must start within 60 s; a capture lasts SECONDS. */
	t_cap = t_start + (capture ? secs : 60);
	t_next = t_start;
	while (!g_stop) {
		struct pollfd pfd[2] = { { .fd = g.ps, .events = POLLIN },
					 { .fd = capture ? -1 : g.as, .events = POLLIN } };
		double t = now_s();
		int wait_ms = (int)((t_next - t) * 1000) + 1;

		if (t >= t_cap && g_phase != P_RUN)
			break;
		if (g_phase == P_RUN && t >= g_run_end)
			break;
		if (poll(pfd, 2, wait_ms < 1 ? 0 : wait_ms > 50 ? 50 : wait_ms) > 0) {
			if (pfd[0].revents & POLLIN) {
				struct sockaddr_ll from;
				socklen_t flen = sizeof(from);
				ssize_t n = recvfrom(g.ps, frame, FRAME_MAX, MSG_DONTWAIT,
						     (struct sockaddr *)&from, &flen);

				if (n > 0 && ntohs(from.sll_protocol) == ETH_P_IP)
					on_frame(frame, (size_t)n, from.sll_pkttype, capture);
			}
			if (pfd[1].revents & POLLIN)
				on_answer();
		}
		t = now_s();
		if (capture || t < t_next || !g.have_coord_mac)
			continue;
		if (g.welcomed)
			resolve_remotes();
		if (g_phase == P_JOIN) {
			join_tick(tick++);
			t_next = t + 0.02;
		} else if (g_phase == P_RUN) {
			run_tick(tick++);
			/* A few thousand datagrams a second: hostile, not a flood
			 * that overruns the veth queues (a drop there would go
			 * uncounted). */
			t_next = t + 0.005;
		} else {
			t_next = t + 0.01;
		}
	}
	if (capture) {
		FILE *f = fopen(outpath, "wb");

		if (!f || fwrite(g.recs, 1, g.recs_len, f) != g.recs_len || fclose(f)) {
			perror(outpath);
			return 1;
		}
		printf("sgc_forge: captured %zu datagrams\n", g.nrecs);
		return g.nrecs ? 0 : 1;
	}
	/* The last answers. */
	t_cap = now_s() + 0.3;
	while (now_s() < t_cap) {
		struct pollfd pfd = { .fd = g.as, .events = POLLIN };

		if (poll(&pfd, 1, 50) > 0)
			on_answer();
	}
	if (write_counts(outpath))
		return 1;
	if (!g.welcomed || g_phase != P_RUN) {
		fprintf(stderr, "sgc_forge: the job was not followed: %s\n",
			!g.welcomed ? "no WELCOME to a rank on this host was seen (start sgc_forge before "
				      "the job)" : "no contribution went out within 60 s");
		return 1;
	}
	printf("sgc_forge: job %016llx, %lu send errors, stopped after %.1f s of collectives\n",
	       (unsigned long long)g.job_id, g.errs, secs);
	return 0;
}
