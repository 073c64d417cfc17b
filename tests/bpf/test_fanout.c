/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * scatter_prog and notify_prog on a real link: two private network
 * namespaces (sgcbpf<pid>c for the coordinator, sgcbpf<pid>w for the
 * workers) joined by a veth pair.
 *
 *  - scatter: an SGC_F_FANOUT datagram from the coordinator's socket
 *    comes out as one clone per rank of its range (checked on the wire
 *    with AF_PACKET and by the workers' UDP sockets, with transmit checksum
 *    offload on and off, so the UDP checksums must be right), never as
 *    the original.
 *  - notify, end to end: gather_prog as native XDP and notify_prog on tcx
 *    ingress; rank 0 contributes through BPF_PROG_RUN as the library does,
 *    workers send real datagrams; the completed result is cloned to each
 *    collective's receivers and delivered to the coordinator's socket (or
 *    ring buffer).  Every clone on the wire and the coordinator's copy
 *    (on a raw socket) carry a right UDP checksum, whether the workers
 *    offload theirs (the coordinator's skbs then defer it) or not.
 *
 * Namespaces are removed on exit, also on failure or a signal; BPF
 * attachments are links, which go with the process.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <time.h>
#include <linux/ethtool.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "harness.h"
#include "sgc_internal.h"

#ifndef BPF_TCX_INGRESS
#define BPF_TCX_INGRESS 46
#define BPF_TCX_EGRESS 47
#endif

#define NW 8			/* workers: ranks 1..8 */
#define COORD_IP "10.77.0.1"
#define COORD_PORT 7000

static char ns_c[32], ns_w[32];
static int nsfd_c = -1, nsfd_w = -1;
static int ifindex_c, ifindex_w;
static uint8_t mac_c[6], mac_w[6];
static int csock = -1, wsock[NW + 1];
static int psock = -1;		/* AF_PACKET on the workers' end */
static int rsock = -1;		/* raw UDP in the coordinator's namespace */

static uint32_t w_ip(int r)
{
	return htonl(0x0a4d000au + (uint32_t)r);	/* 10.77.0.(10 + r) */
}

static uint16_t w_port(int r)
{
	return htons((uint16_t)(9000 + r));
}

/* ------------------------------------------------------------ namespaces */

static void ns_cleanup(void)
{
	char cmd[128];

	if (ns_c[0]) {
		snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", ns_c);
		if (system(cmd)) {}
	}
	if (ns_w[0]) {
		snprintf(cmd, sizeof(cmd), "ip netns del %s 2>/dev/null", ns_w);
		if (system(cmd)) {}
	}
	ns_c[0] = ns_w[0] = 0;
}

static void on_signal(int sig)
{
	ns_cleanup();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc)
		fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
	return rc;
}

static void enter(int fd)
{
	if (setns(fd, CLONE_NEWNET)) {
		fprintf(stderr, "setns: %s\n", strerror(errno));
		abort();
	}
}

static int iface(const char *name, int *ifindex, uint8_t mac[6])
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM, 0), rc;

	if (fd < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	rc = ioctl(fd, SIOCGIFHWADDR, &ifr);
	if (!rc)
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	*ifindex = (int)if_nametoindex(name);
	close(fd);
	return rc || !*ifindex ? -1 : 0;
}

/* Checksum offload on @name (current namespace): @cmd ETHTOOL_STXCSUM
 * or ETHTOOL_SRXCSUM. */
static int csum_offload(const char *name, __u32 cmd, int on)
{
	struct ethtool_value ev = { .cmd = cmd, .data = (__u32)on };
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM, 0), rc;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_data = (void *)&ev;
	rc = ioctl(fd, SIOCETHTOOL, &ifr);
	close(fd);
	return rc;
}

/*
 * How the workers' datagrams reach the coordinator decides what the UDP
 * checksum field of the result notify_prog clones means (skb->ip_summed):
 *   offloaded  veth's default: the workers' stack leaves the checksum to
 *              the device (CHECKSUM_PARTIAL), the field is a seed, and
 *              nobody on this host ever finishes it;
 *   software   the workers compute it, and no veth end marks anything as
 *              verified (CHECKSUM_NONE): the coordinator's and the
 *              workers' sockets check every checksum themselves and drop
 *              a wrong one.
 */
struct csum_regime {
	const char *name;
	int worker_tx;		/* vw: ETHTOOL_STXCSUM */
	int worker_rx;		/* vw: ETHTOOL_SRXCSUM */
	int coord_rx;		/* vc: ETHTOOL_SRXCSUM */
	int deferred;		/* the coordinator's copy holds a seed */
};

static const struct csum_regime regimes[] = {
	{ "offloaded", 1, 1, 1, 1 },
	{ "software", 0, 0, 0, 0 },
};
#define NREGIMES (int)(sizeof(regimes) / sizeof(regimes[0]))
static const struct csum_regime *csum_regime = &regimes[0];

static int regime_apply(const struct csum_regime *rg)
{
	int err;

	enter(nsfd_w);
	err = csum_offload("vw", ETHTOOL_STXCSUM, rg->worker_tx) |
	      csum_offload("vw", ETHTOOL_SRXCSUM, rg->worker_rx);
	enter(nsfd_c);
	err |= csum_offload("vc", ETHTOOL_SRXCSUM, rg->coord_rx) |
	       csum_offload("vc", ETHTOOL_STXCSUM, 1);
	csum_regime = rg;
	return err;
}

static int udp_sock(uint32_t ip, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = ip, .sin_port = port };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Namespaces an earlier run left behind when it was killed outright. */
static void reap_stale(void)
{
	FILE *p = popen("ip netns list 2>/dev/null", "r");
	char line[128], cmd[160];
	int pid;
	char side;

	if (!p)
		return;
	while (fgets(line, sizeof(line), p)) {
		if (sscanf(line, "sgcbpf%d%c", &pid, &side) != 2 || (side != 'c' && side != 'w'))
			continue;
		if (pid == (int)getpid() || kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(cmd, sizeof(cmd), "ip netns del sgcbpf%d%c 2>/dev/null", pid, side);
		if (system(cmd)) {}
	}
	pclose(p);
}

static int setup_net(void **state)
{
	char path[64];
	int r;

	(void)state;
	reap_stale();
	snprintf(ns_c, sizeof(ns_c), "sgcbpf%dc", (int)getpid());
	snprintf(ns_w, sizeof(ns_w), "sgcbpf%dw", (int)getpid());
	atexit(ns_cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGABRT, on_signal);
	if (sh("ip netns add %s", ns_c) || sh("ip netns add %s", ns_w) ||
	    sh("ip link add vc netns %s type veth peer name vw netns %s", ns_c, ns_w) ||
	    sh("ip -n %s link set lo up && ip -n %s link set vc up", ns_c, ns_c) ||
	    sh("ip -n %s addr add " COORD_IP "/24 dev vc", ns_c) ||
	    sh("ip -n %s link set lo up && ip -n %s link set vw up", ns_w, ns_w))
		return -1;
	for (r = 1; r <= NW; r++)
		if (sh("ip -n %s addr add 10.77.0.%d/24 dev vw", ns_w, 10 + r))
			return -1;
	snprintf(path, sizeof(path), "/run/netns/%s", ns_c);
	nsfd_c = open(path, O_RDONLY);
	snprintf(path, sizeof(path), "/run/netns/%s", ns_w);
	nsfd_w = open(path, O_RDONLY);
	if (nsfd_c < 0 || nsfd_w < 0)
		return -1;

	enter(nsfd_w);
	if (iface("vw", &ifindex_w, mac_w))
		return -1;
	for (r = 1; r <= NW; r++) {
		wsock[r] = udp_sock(w_ip(r), w_port(r));
		if (wsock[r] < 0)
			return -1;
	}
	psock = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
	{
		struct sockaddr_ll ll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
					  .sll_ifindex = ifindex_w };
		int one = 1;

		if (psock < 0 || bind(psock, (struct sockaddr *)&ll, sizeof(ll)) ||
		    setsockopt(psock, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)))
			return -1;
	}
	enter(nsfd_c);
	if (iface("vc", &ifindex_c, mac_c))
		return -1;
	csock = udp_sock(inet_addr(COORD_IP), htons(COORD_PORT));
	if (csock < 0)
		return -1;
	/* A copy of every UDP datagram the coordinator's stack takes in, IP
	 * header and all, as it is after notify_prog (AF_PACKET would show
	 * it before tcx ingress). */
	rsock = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_UDP);
	if (rsock < 0)
		return -1;
	/* Static neighbours: no ARP in the way of the first datagrams. */
	for (r = 1; r <= NW; r++)
		if (sh("ip -n %s neigh replace 10.77.0.%d lladdr %02x:%02x:%02x:%02x:%02x:%02x dev vc",
		       ns_c, 10 + r, mac_w[0], mac_w[1], mac_w[2], mac_w[3], mac_w[4], mac_w[5]))
			return -1;
	if (sh("ip -n %s neigh replace " COORD_IP " lladdr %02x:%02x:%02x:%02x:%02x:%02x dev vw",
	       ns_w, mac_c[0], mac_c[1], mac_c[2], mac_c[3], mac_c[4], mac_c[5]))
		return -1;
	return 0;
}

static int teardown_net(void **state)
{
	int r;

	(void)state;
	for (r = 1; r <= NW; r++)
		if (wsock[r] > 0)
			close(wsock[r]);
	if (csock >= 0)
		close(csock);
	if (psock >= 0)
		close(psock);
	if (rsock >= 0)
		close(rsock);
	ns_cleanup();
	return 0;
}

/* ------------------------------------------------------------ BPF side */

struct coord {
	struct sgc *s;
	struct bpf_link *xdp;
	int notify_link, scatter_link;
};

static struct sgc_bpf_cfg fan_cfg(int world, uint16_t flags)
{
	struct sgc_bpf_cfg c = {
		.job_id = T_JOB,
		.coord_ip = inet_addr(COORD_IP),
		.coord_port = htons(COORD_PORT),
		.world = (uint16_t)world,
		.chunk_bytes = 1424,	/* MTU 1500 - IPv4 - UDP - our header */
		.ifindex = (uint32_t)ifindex_c,
		.flags = flags,
		.result_token = 0x70c3e11u,
		.kernel_colls = SGC_BPF_KERNEL_ALL,
	};

	memcpy(c.coord_mac, mac_c, 6);
	return c;
}

/* Load and attach in the coordinator's namespace: scatter always, gather
 * and notify when @gather. */
static int coord_up(struct coord *co, const struct sgc_bpf_cfg *cfg, int gather)
{
	int r;

	memset(co, 0, sizeof(*co));
	co->notify_link = co->scatter_link = -1;
	enter(nsfd_c);
	co->s = sgc__open();
	if (!co->s)
		return -1;
	co->s->rodata->cfg = *cfg;
	bpf_program__set_expected_attach_type(co->s->progs.notify_prog, BPF_TCX_INGRESS);
	bpf_program__set_expected_attach_type(co->s->progs.scatter_prog, BPF_TCX_EGRESS);
	if (sgc__load(co->s))
		return -1;
	for (r = 0; r < cfg->world; r++) {
		struct sgc_bpf_rank e = { .ip = r ? w_ip(r) : cfg->coord_ip,
					  .port = r ? w_port(r) : cfg->coord_port };
		__u32 k = (__u32)r;

		memcpy(e.mac, r ? mac_w : mac_c, 6);
		if (bpf_map_update_elem(bpf_map__fd(co->s->maps.ranks), &k, &e, BPF_ANY))
			return -1;
	}
	co->scatter_link = bpf_link_create(bpf_program__fd(co->s->progs.scatter_prog), ifindex_c,
					   BPF_TCX_EGRESS, NULL);
	if (co->scatter_link < 0) {
		fprintf(stderr, "tcx egress link: %s\n", strerror(errno));
		return -1;
	}
	if (!gather)
		return 0;
	co->notify_link = bpf_link_create(bpf_program__fd(co->s->progs.notify_prog), ifindex_c,
					  BPF_TCX_INGRESS, NULL);
	if (co->notify_link < 0) {
		fprintf(stderr, "tcx ingress link: %s\n", strerror(errno));
		return -1;
	}
	co->xdp = bpf_program__attach_xdp(co->s->progs.gather_prog, ifindex_c);
	if (!co->xdp) {
		fprintf(stderr, "XDP link: %s\n", strerror(errno));
		return -1;
	}
	return 0;
}

static void coord_down(struct coord *co)
{
	if (co->xdp)
		bpf_link__destroy(co->xdp);
	if (co->notify_link >= 0)
		close(co->notify_link);
	if (co->scatter_link >= 0)
		close(co->scatter_link);
	sgc__destroy(co->s);
	memset(co, 0, sizeof(*co));
	co->notify_link = co->scatter_link = -1;
}

/* The one coordinator of the running test; taken down after it, pass or
 * fail (a failed assertion leaves the test function early). */
static struct coord co;

static int coord_teardown(void **state)
{
	(void)state;
	coord_down(&co);
	/* veth's defaults again, also after a test that failed half-way. */
	regime_apply(&regimes[0]);
	return 0;
}

/* ------------------------------------------------------------ traffic */

static void drain(void)
{
	uint8_t buf[4096];
	int r;

	for (r = 1; r <= NW; r++)
		while (recv(wsock[r], buf, sizeof(buf), 0) > 0)
			;
	while (recv(csock, buf, sizeof(buf), 0) > 0)
		;
	while (recv(psock, buf, sizeof(buf), 0) > 0)
		;
	while (recv(rsock, buf, sizeof(buf), 0) > 0)
		;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct got {
	int n;			/* datagrams */
	uint8_t buf[4][2048];
	size_t len[4];
	struct sockaddr_in from[4];
};

/* Everything that arrives within @ms on the worker sockets, the
 * coordinator's socket, the capture on the workers' end, and the raw
 * socket on the coordinator's (UDP datagrams not from the coordinator, IP
 * header first). */
static struct got wgot[NW + 1], cgot;
static struct {
	int n;
	uint64_t f[64][2048 / 8 + 1];	/* frames at +2: IP headers 4-aligned */
	size_t len[64];
	uint32_t status[64];	/* tpacket_auxdata.tp_status */
} cap;
#define CAP(i) ((uint8_t *)cap.f[i] + 2)
static struct {
	int n;
	uint64_t d[4][2048 / 8];
	size_t len[4];
} rawc;

static void take(int fd, struct got *g)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	uint8_t b[2048];
	ssize_t n;

	while ((n = recvfrom(fd, b, sizeof(b), 0, (struct sockaddr *)&a, &al)) > 0) {
		if (g->n < 4) {
			memcpy(g->buf[g->n], b, (size_t)n);
			g->len[g->n] = (size_t)n;
			g->from[g->n] = a;
		}
		g->n++;
		al = sizeof(a);
	}
}

/* One frame from the capture, with the kernel's word on its checksum. */
static ssize_t recv_frame(uint8_t *b, size_t len, struct sockaddr_ll *ll, uint32_t *status)
{
	union {
		struct cmsghdr h;
		uint8_t buf[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
	} ctl;
	struct iovec iov = { .iov_base = b, .iov_len = len };
	struct msghdr m = { .msg_name = ll, .msg_namelen = sizeof(*ll), .msg_iov = &iov,
			    .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof(ctl) };
	struct cmsghdr *c;
	ssize_t n = recvmsg(psock, &m, 0);

	*status = 0;
	for (c = n > 0 ? CMSG_FIRSTHDR(&m) : NULL; c; c = CMSG_NXTHDR(&m, c)) {
		struct tpacket_auxdata aux;

		if (c->cmsg_level != SOL_PACKET || c->cmsg_type != PACKET_AUXDATA)
			continue;
		memcpy(&aux, CMSG_DATA(c), sizeof(aux));
		*status = aux.tp_status;
	}
	return n;
}

static void collect(int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	int r;

	memset(wgot, 0, sizeof(wgot));
	memset(&cgot, 0, sizeof(cgot));
	cap.n = 0;
	rawc.n = 0;
	while (now_ms() < end) {
		struct sockaddr_ll ll;
		/* The IP header at b + 14 lands 4-aligned (as with NET_IP_ALIGN). */
		static uint64_t raw[2048 / 8 + 1];
		uint8_t *b = (uint8_t *)raw + 2;
		uint32_t status;
		ssize_t n;

		usleep(2000);
		for (r = 1; r <= NW; r++)
			take(wsock[r], &wgot[r]);
		take(csock, &cgot);
		while ((n = recv_frame(b, 2048, &ll, &status)) > 0) {
			const struct iphdr *ip = (const void *)(b + 14);
			const struct udphdr *udp = (const void *)(b + 34);

			/* UDP frames from the coordinator arriving at vw. */
			if (ll.sll_pkttype == PACKET_OUTGOING || n < 42 + SGC_HDR_SIZE ||
			    b[12] != 0x08 || b[13] != 0 || ip->protocol != IPPROTO_UDP ||
			    ip->saddr != inet_addr(COORD_IP) || udp->source != htons(COORD_PORT))
				continue;
			if (cap.n < 64) {
				memcpy(CAP(cap.n), b, (size_t)n);
				cap.len[cap.n] = (size_t)n;
				cap.status[cap.n] = status;
			}
			cap.n++;
		}
		while ((n = recv(rsock, b, 2048, 0)) > 0) {
			const struct iphdr *ip = (const void *)b;

			if (n < 28 + SGC_HDR_SIZE || ip->saddr == inet_addr(COORD_IP))
				continue;
			if (rawc.n < 4) {
				memcpy(rawc.d[rawc.n], b, (size_t)n);
				rawc.len[rawc.n] = (size_t)n;
			}
			rawc.n++;
		}
	}
}

static void hdr_init(struct sgc_hdr *h, uint8_t type, uint32_t seq)
{
	memset(h, 0, sizeof(*h));
	h->magic = SGC_WIRE_MAGIC;
	h->version = SGC_WIRE_VERSION;
	h->type = type;
	h->seq = seq;
	h->job_id = T_JOB;
	h->nchunks = 1;
}

static void send_from(int fd, uint32_t ip, uint16_t port, const void *buf, size_t len)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = ip, .sin_port = port };

	assert_int_equal(sendto(fd, buf, len, 0, (struct sockaddr *)&a, sizeof(a)), (ssize_t)len);
}

static uint64_t stat_of(struct sgc *s, int st)
{
	uint64_t v[SGC_ST_MAX];

	t_stats(s, v);
	return v[st];
}

/* The UDP checksum of a captured frame: a finished one right, or, when
 * the capture says the sender left it to be finished (CHECKSUM_PARTIAL),
 * the seed that finishes right. */
static void check_udp_csum(const uint8_t *ip, size_t len, uint32_t status, const char *what,
			   int rank)
{
	char why[128];

	if (t_udp_csum_check(ip, len, !!(status & TP_STATUS_CSUMNOTREADY), why, sizeof(why)))
		fail_msg("%s to rank %d: %s (tp_status 0x%x)", what, rank, why, status);
}

/* ------------------------------------------------------------ scatter */

static void scatter_once(struct coord *co, uint16_t first, uint16_t end, int lo, int hi)
{
	uint8_t pkt[SGC_HDR_SIZE + 100];
	struct sgc_hdr *h = (struct sgc_hdr *)pkt;
	uint64_t clones0 = stat_of(co->s, SGC_ST_FANOUT_CLONES);
	int r, i, want = hi - lo;

	hdr_init(h, SGC_MSG_QUERY, 77);
	h->flags = SGC_F_FANOUT | SGC_F_RETX;
	h->fan_first = first;
	h->fan_end = end;
	h->aux = 12345;
	h->rank = 0;
	for (i = 0; i < 100; i++)
		pkt[SGC_HDR_SIZE + i] = (uint8_t)(i * 7 + 1);
	drain();
	enter(nsfd_c);
	/* Sent to rank lo's address: the original must not get there. */
	send_from(csock, w_ip(lo), w_port(lo), pkt, sizeof(pkt));
	collect(150);

	assert_int_equal(cap.n, want);
	for (i = 0; i < cap.n && i < 64; i++) {
		const uint8_t *f = CAP(i);
		const struct iphdr *ip = (const void *)(f + 14);
		const struct udphdr *udp = (const void *)(f + 34);
		struct sgc_hdr g;

		memcpy(&g, f + 42, sizeof(g));
		r = g.rank;
		assert_true(r >= lo && r < hi);
		assert_memory_equal(f, mac_w, 6);
		assert_memory_equal(f + 6, mac_c, 6);
		assert_int_equal(ip->daddr, w_ip(r));
		assert_int_equal(t_ip_csum(ip, 20), 0);	/* sums to 0 with its checksum */
		assert_int_equal(udp->dest, w_port(r));
		assert_int_equal(g.flags, SGC_F_RETX);
		assert_int_equal(g.fan_first, 0);
		assert_int_equal(g.fan_end, 0);
		assert_int_equal(cap.len[i], 42 + sizeof(pkt));
		assert_memory_equal(f + 42 + SGC_HDR_SIZE, pkt + SGC_HDR_SIZE, 100);
		check_udp_csum(f + 14, cap.len[i] - 14, cap.status[i], "scatter clone", r);
	}
	/* The workers' sockets (which check UDP checksums when the sender
	 * computed them) got exactly theirs. */
	for (r = 1; r <= NW; r++) {
		struct sgc_hdr g;

		if (r < lo || r >= hi) {
			assert_int_equal(wgot[r].n, 0);
			continue;
		}
		if (wgot[r].n != 1)
			fail_msg("rank %d received %d datagrams, expected 1", r, wgot[r].n);
		memcpy(&g, wgot[r].buf[0], sizeof(g));
		assert_int_equal(g.rank, r);
		assert_int_equal(g.flags, SGC_F_RETX);
		assert_int_equal(wgot[r].from[0].sin_addr.s_addr, inet_addr(COORD_IP));
		assert_int_equal(wgot[r].from[0].sin_port, htons(COORD_PORT));
	}
	assert_int_equal(stat_of(co->s, SGC_ST_FANOUT_CLONES) - clones0, (uint64_t)want);
}

static void test_scatter(void **state)
{
	struct sgc_bpf_cfg c = fan_cfg(NW + 1, 0);
	uint8_t other[64] = "not ours";

	(void)state;
	/* vw verifies what it receives (veth would otherwise mark checksum-
	 * less skbs as verified). */
	enter(nsfd_w);
	assert_int_equal(csum_offload("vw", ETHTOOL_SRXCSUM, 0), 0);
	assert_int_equal(coord_up(&co, &c, 0), 0);
	/* Offloaded UDP checksums (the field holds the pseudo-header seed). */
	enter(nsfd_c);
	assert_int_equal(csum_offload("vc", ETHTOOL_STXCSUM, 1), 0);
	scatter_once(&co, 2, 7, 2, 7);
	scatter_once(&co, 0, 200, 1, NW + 1);	/* rank 0 skipped, end clamped */
	/* Software UDP checksums: the clones' must be right, or the
	 * workers' sockets drop them. */
	enter(nsfd_c);
	assert_int_equal(csum_offload("vc", ETHTOOL_STXCSUM, 0), 0);
	scatter_once(&co, 1, 4, 1, 4);
	scatter_once(&co, 3, NW + 1, 3, NW + 1);
	enter(nsfd_c);
	assert_int_equal(csum_offload("vc", ETHTOOL_STXCSUM, 1), 0);
	enter(nsfd_w);
	assert_int_equal(csum_offload("vw", ETHTOOL_SRXCSUM, 1), 0);

	/* Not a fan-out request: passes untouched, to its one destination. */
	drain();
	enter(nsfd_c);
	send_from(csock, w_ip(5), w_port(5), other, sizeof(other));
	collect(100);
	assert_int_equal(cap.n, 1);
	assert_int_equal(wgot[5].n, 1);
	assert_memory_equal(wgot[5].buf[0], other, sizeof(other));
}

/* ------------------------------------------------------------ notify */

/* Rank 0's contribution through BPF_PROG_RUN, framed as the library does:
 * Ethernet src = dst = the coordinator's MAC, IPv4 and UDP from and to the
 * coordinator's address.  Returns the verdict. */
static uint32_t coord_contribute(struct coord *co, const struct sgc_hdr *h, const void *body,
				 size_t blen, struct t_run *res)
{
	static uint64_t raw[2048 / 8 + 1];
	uint8_t *f = (uint8_t *)raw + 2;	/* IP header 4-aligned */
	struct ethhdr *eth = (struct ethhdr *)f;
	struct iphdr *ip = (struct iphdr *)(eth + 1);
	struct udphdr *udp = (struct udphdr *)(ip + 1);
	size_t len = 42 + SGC_HDR_SIZE + blen;

	memset(f, 0, 42);
	memcpy(eth->h_dest, mac_c, 6);
	memcpy(eth->h_source, mac_c, 6);
	eth->h_proto = htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->tot_len = htons((uint16_t)(len - 14));
	ip->saddr = ip->daddr = inet_addr(COORD_IP);
	ip->check = t_ip_csum(ip, 20);
	udp->source = udp->dest = htons(COORD_PORT);
	udp->len = htons((uint16_t)(len - 34));
	memcpy(f + 42, h, SGC_HDR_SIZE);
	memcpy(f + 42 + SGC_HDR_SIZE, body, blen);
	assert_int_equal(t_run_xdp(bpf_program__fd(co->s->progs.gather_prog), f, len, res), 0);
	return res->retval;
}

static void contrib_hdr(struct sgc_hdr *h, uint8_t coll, uint32_t seq, int rank, uint8_t dt,
			uint8_t op, uint16_t count, uint16_t root)
{
	hdr_init(h, SGC_MSG_CONTRIB, seq);
	h->coll = coll;
	h->rank = (uint16_t)rank;
	h->dtype = dt;
	h->op = op;
	h->count = count;
	h->arg = root;
}

struct coll_case {
	const char *what;
	uint8_t coll;
	uint16_t root;
	int coord;		/* rank 0 contributes */
	int first, last;	/* workers that contribute: [first, last] */
	int recv[NW + 1];	/* ranks that must get a copy */
};

static void run_coll(struct coord *co, const struct coll_case *cc, uint32_t seq, int world,
		     int ring)
{
	enum { N = 356 };	/* chunk_bytes / 4 */
	uint8_t pkt[SGC_HDR_SIZE + N * 4];
	struct sgc_hdr *h = (struct sgc_hdr *)pkt;
	uint64_t st0[SGC_ST_MAX], st1[SGC_ST_MAX];
	int32_t sum[N] = { 0 }, v[N];
	uint16_t count = cc->coll == SGC_COLL_BARRIER ? 0 : N;
	uint16_t flags = SGC_F_KERNEL | (cc->coll == SGC_COLL_BARRIER ? SGC_F_DONE : 0);
	size_t blen = (size_t)count * 4;
	int r, i, nrecv = 0, ncontrib = 0;
	struct t_run res;
	char what[96];

	snprintf(what, sizeof(what), "%s, %s checksums", cc->what, csum_regime->name);
	drain();
	t_stats(co->s, st0);
	if (cc->coord) {
		for (i = 0; i < N; i++)
			sum[i] = v[i] = i * 3 - 100;
		contrib_hdr(h, cc->coll, seq, 0, SGC_INT32, SGC_SUM, count, cc->root);
		assert_int_equal(coord_contribute(co, h, v, blen, &res), XDP_DROP);
		ncontrib++;
	}
	for (r = cc->first; r <= cc->last; r++) {
		contrib_hdr(h, cc->coll, seq, r, SGC_INT32, SGC_SUM, count, cc->root);
		if (cc->coll == SGC_COLL_QUERY) {
			h->policy = SGC_WIRE_WAIT_ALL;
			h->arg = (uint16_t)(world - 1);
		}
		for (i = 0; i < N; i++) {
			v[i] = (int32_t)(r * 1000 + i);
			sum[i] = (int32_t)((uint32_t)sum[i] + (uint32_t)v[i]);
		}
		memcpy(pkt + SGC_HDR_SIZE, v, blen);
		enter(nsfd_w);
		send_from(wsock[r], inet_addr(COORD_IP), htons(COORD_PORT), pkt, SGC_HDR_SIZE + blen);
		ncontrib++;
		usleep(1000);
	}
	collect(200);
	t_stats(co->s, st1);
	for (i = 0; i < SGC_ST_MAX; i++)
		if (st1[i] != st0[i] && getenv("SGC_TEST_VERBOSE"))
			fprintf(stderr, "%s: %s +%llu\n", cc->what, t_stat_names[i],
				(unsigned long long)(st1[i] - st0[i]));

	for (r = 1; r < world; r++) {
		struct sgc_hdr g;

		if (!cc->recv[r]) {
			if (wgot[r].n)
				fail_msg("%s: rank %d got %d datagrams, expected none", cc->what, r,
					 wgot[r].n);
			continue;
		}
		nrecv++;
		if (wgot[r].n != 1)
			fail_msg("%s: rank %d got %d datagrams, expected 1", cc->what, r, wgot[r].n);
		assert_int_equal(wgot[r].len[0], SGC_HDR_SIZE + blen);
		memcpy(&g, wgot[r].buf[0], sizeof(g));
		assert_int_equal(g.type, SGC_MSG_RESULT);
		assert_int_equal(g.rank, r);
		assert_int_equal(g.seq, seq);
		assert_int_equal(g.flags, flags);
		assert_int_equal(g.aux, 0);
		assert_int_equal(wgot[r].from[0].sin_addr.s_addr, inet_addr(COORD_IP));
		assert_int_equal(wgot[r].from[0].sin_port, htons(COORD_PORT));
		assert_memory_equal(wgot[r].buf[0] + SGC_HDR_SIZE, sum, blen);
	}
	/* The coordinator's own copy: on its socket, as the last contributor
	 * sent it but rewritten into the RESULT; or in the ring buffer. */
	if (ring) {
		assert_int_equal(cgot.n, 0);
	} else {
		struct sgc_hdr g;

		if (cgot.n != 1)
			fail_msg("%s: the coordinator got %d datagrams, expected 1", cc->what, cgot.n);
		memcpy(&g, cgot.buf[0], sizeof(g));
		assert_int_equal(g.type, SGC_MSG_RESULT);
		assert_int_equal(g.rank, 0);
		assert_int_equal(g.flags, flags);
		/* notify_prog's mark, which no worker sees (above: g.aux). */
		assert_int_equal(g.aux, co->s->rodata->cfg.result_token);
		assert_int_not_equal(g.aux, 0);
		assert_int_equal(cgot.from[0].sin_addr.s_addr, w_ip(cc->last));
		assert_int_equal(cgot.from[0].sin_port, w_port(cc->last));
		assert_memory_equal(cgot.buf[0] + SGC_HDR_SIZE, sum, blen);
		/* The same datagram on the raw socket, UDP checksum and all. */
		if (rawc.n != 1)
			fail_msg("%s: the raw socket got %d datagrams, expected 1", what,
				 rawc.n);
		assert_int_equal(rawc.len[0], 28 + SGC_HDR_SIZE + blen);
		assert_memory_equal((uint8_t *)rawc.d[0] + 28, cgot.buf[0], SGC_HDR_SIZE + blen);
		{
			char why[128];

			if (t_udp_csum_check(rawc.d[0], rawc.len[0], csum_regime->deferred, why,
					     sizeof(why)))
				fail_msg("%s: the coordinator's copy: %s", what, why);
		}
	}
	assert_int_equal(st1[SGC_ST_REDUCED] - st0[SGC_ST_REDUCED], (uint64_t)ncontrib);
	assert_int_equal(st1[SGC_ST_COMPLETED] - st0[SGC_ST_COMPLETED], 1);
	assert_int_equal(st1[SGC_ST_FANOUT_CLONES] - st0[SGC_ST_FANOUT_CLONES], (uint64_t)nrecv);
	assert_int_equal(st1[SGC_ST_FANOUT_ERR] - st0[SGC_ST_FANOUT_ERR], 0);
	assert_int_equal(st1[SGC_ST_DELIVERED] - st0[SGC_ST_DELIVERED], 1);
	/* Every frame on the wire went to a receiver, with its addresses. */
	assert_int_equal(cap.n, nrecv);
	for (i = 0; i < cap.n && i < 64; i++) {
		const struct iphdr *ip = (const void *)(CAP(i) + 14);
		struct sgc_hdr g;

		memcpy(&g, CAP(i) + 42, sizeof(g));
		assert_memory_equal(CAP(i), mac_w, 6);
		assert_memory_equal(CAP(i) + 6, mac_c, 6);
		assert_int_equal(ip->daddr, w_ip(g.rank));
		assert_int_equal(t_ip_csum(ip, 20), 0);
		check_udp_csum(CAP(i) + 14, cap.len[i] - 14, cap.status[i], what, g.rank);
		/* Both ways of holding it, or the test shows one of them only. */
		if (!(cap.status[i] & TP_STATUS_CSUMNOTREADY) != !csum_regime->deferred)
			fail_msg("%s: the clone to rank %d has tp_status 0x%x: the checksum is %s",
				 what, g.rank, cap.status[i],
				 csum_regime->deferred ? "finished" : "deferred");
	}
}

#define WORLD 5		/* rank 0 + workers 1..4 */

static void test_notify(void **state)
{
	struct sgc_bpf_cfg c = fan_cfg(WORLD, SGC_BPF_CFG_ALLGATHER);
	static const struct coll_case cases[] = {
		{ "allreduce", SGC_COLL_ALLREDUCE, 0, 1, 1, 4, { 0, 1, 1, 1, 1 } },
		{ "broadcast from 2", SGC_COLL_BCAST, 2, 0, 2, 2, { 0, 1, 0, 1, 1 } },
		{ "reduce to 3", SGC_COLL_REDUCE, 3, 1, 1, 4, { 0, 0, 0, 1, 0 } },
		{ "reduce to 0", SGC_COLL_REDUCE, 0, 1, 1, 4, { 0 } },
		{ "barrier", SGC_COLL_BARRIER, 0, 1, 1, 4, { 0, 1, 1, 1, 1 } },
		{ "query", SGC_COLL_QUERY, 0, 0, 1, 4, { 0 } },
	};
	const int ncases = (int)(sizeof(cases) / sizeof(cases[0]));
	int i, k;

	(void)state;
	assert_int_equal(coord_up(&co, &c, 1), 0);
	co.s->bss->win.base = 20;
	/* Every case under each way the kernel may hold the checksum. */
	for (k = 0; k < NREGIMES; k++) {
		if (regime_apply(&regimes[k]))
			fail_msg("cannot set checksum offloads for '%s'", regimes[k].name);
		for (i = 0; i < ncases; i++) {
			uint32_t seq = cases[i].coll == SGC_COLL_QUERY ?
					       3 + (uint32_t)k : 20 + (uint32_t)(k * ncases + i);

			if (cases[i].coll == SGC_COLL_QUERY)
				co.s->bss->win.query = sgc_bpf_query_word(seq, SGC_WIRE_WAIT_ALL,
									  WORLD - 1);
			run_coll(&co, &cases[i], seq, WORLD, 0);
		}
	}
	assert_int_equal(regime_apply(&regimes[0]), 0);

	/* rank 0's contribution completing a chunk: the RESULT comes back in
	 * data_out (8 bytes of metadata first) and nothing goes out. */
	{
		struct sgc_hdr h;
		struct t_run res;
		int32_t v = 5;
		char why[128];

		drain();
		contrib_hdr(&h, SGC_COLL_BCAST, 20 + (uint32_t)(NREGIMES * ncases), 0, SGC_INT32,
			    SGC_SUM, 1, 0);
		assert_int_equal(coord_contribute(&co, &h, &v, 4, &res), XDP_PASS);
		assert_int_equal(res.meta_len, 8);
		memcpy(&h, res.out + 8 + 42, sizeof(h));
		assert_int_equal(h.type, SGC_MSG_RESULT);
		if (t_udp_csum_check(res.out + 8 + 14, res.out_len - 8 - 14, 0, why, sizeof(why)))
			fail_msg("rank 0's RESULT: %s", why);
		collect(50);
		assert_int_equal(cap.n, 0);
	}
}

/* With a clone budget of 2 a CPU, a result to four workers is cloned to
 * ranks 1 and 2 only; the coordinator's copy says user space sends from
 * rank 3 on (fan_first), and fanout_paced counts the two left.  The
 * budget comes back within a millisecond: the next result is cloned to
 * two again (run_coll() leaves 1 ms between contributions). */
static void test_notify_paced(void **state)
{
	struct sgc_bpf_cfg c = fan_cfg(WORLD, SGC_BPF_CFG_ALLGATHER);
	static const struct coll_case paced = {
		"allreduce, paced", SGC_COLL_ALLREDUCE, 0, 1, 1, 4, { 0, 1, 1, 0, 0 }
	};
	uint64_t left0;
	struct sgc_hdr g;
	int k;

	(void)state;
	c.fan_burst = 2;
	assert_int_equal(coord_up(&co, &c, 1), 0);
	co.s->bss->win.base = 40;
	for (k = 0; k < 2; k++) {
		left0 = stat_of(co.s, SGC_ST_FANOUT_PACED);
		run_coll(&co, &paced, 40 + (uint32_t)k, WORLD, 0);
		memcpy(&g, cgot.buf[0], sizeof(g));
		assert_int_equal(g.fan_first, 3);
		assert_int_equal(stat_of(co.s, SGC_ST_FANOUT_PACED) - left0, 2);
	}
}

/* With win.fan_user set (many collectives open) notify_prog clones no
 * result: the coordinator's copy says user space sends from the first
 * receiver on, and fanout_paced counts every copy left.  Cleared, it
 * clones to every worker again. */
static void test_notify_fan_user(void **state)
{
	struct sgc_bpf_cfg c = fan_cfg(WORLD, SGC_BPF_CFG_ALLGATHER);
	static const struct coll_case cases[] = {
		{ "allreduce, user fan-out", SGC_COLL_ALLREDUCE, 0, 1, 1, 4, { 0 } },
		{ "reduce to 3, user fan-out", SGC_COLL_REDUCE, 3, 1, 1, 4, { 0 } },
		{ "allreduce, kernel fan-out", SGC_COLL_ALLREDUCE, 0, 1, 1, 4, { 0, 1, 1, 1, 1 } },
	};
	static const int first[] = { 1, 3, 0 }, left[] = { 4, 1, 0 };
	uint64_t left0;
	struct sgc_hdr g;
	int k;

	(void)state;
	assert_int_equal(coord_up(&co, &c, 1), 0);
	co.s->bss->win.base = 60;
	for (k = 0; k < 3; k++) {
		co.s->bss->win.fan_user = k < 2;
		left0 = stat_of(co.s, SGC_ST_FANOUT_PACED);
		run_coll(&co, &cases[k], 60 + (uint32_t)k, WORLD, 0);
		memcpy(&g, cgot.buf[0], sizeof(g));
		assert_int_equal(g.fan_first, first[k]);
		assert_int_equal(stat_of(co.s, SGC_ST_FANOUT_PACED) - left0, left[k]);
	}
}

static int on_event(void *ctx, void *data, size_t len)
{
	struct sgc_bpf_event *ev = ctx;

	assert_int_equal(len, sizeof(*ev));
	memcpy(ev, data, sizeof(*ev));
	ev->reserved++;
	return 0;
}

static void test_notify_ring(void **state)
{
	struct sgc_bpf_cfg c = fan_cfg(WORLD, SGC_BPF_CFG_ALLGATHER | SGC_BPF_CFG_RINGBUF);
	static const struct coll_case ar = { "allreduce, ring buffer", SGC_COLL_ALLREDUCE, 0, 1, 1, 4,
					     { 0, 1, 1, 1, 1 } };
	static struct sgc_bpf_event ev;
	struct ring_buffer *rb;

	(void)state;
	assert_int_equal(coord_up(&co, &c, 1), 0);
	co.s->bss->win.base = 50;
	rb = ring_buffer__new(bpf_map__fd(co.s->maps.events), on_event, &ev, NULL);
	assert_non_null(rb);
	run_coll(&co, &ar, 50, WORLD, 1);
	memset(&ev, 0, sizeof(ev));
	assert_int_equal(ring_buffer__consume(rb), 1);
	assert_int_equal(ev.hdr.type, SGC_MSG_RESULT);
	assert_int_equal(ev.hdr.rank, 0);
	assert_int_equal(ev.hdr.seq, 50);
	assert_int_equal(ev.nseen, WORLD);
	assert_int_equal(ev.seen[0], (1u << WORLD) - 1);
	assert_int_equal(ev.slot, sgc_slot_index(SGC_COLL_ALLREDUCE, 50, 0));
	ring_buffer__free(rb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_scatter, coord_teardown),
		cmocka_unit_test_teardown(test_notify, coord_teardown),
		cmocka_unit_test_teardown(test_notify_paced, coord_teardown),
		cmocka_unit_test_teardown(test_notify_fan_user, coord_teardown),
		cmocka_unit_test_teardown(test_notify_ring, coord_teardown),
	};

	t_require_bpf();
	if (system("ip -V >/dev/null 2>&1"))
		t_skip("needs iproute2 (ip) for the namespaces");
	return cmocka_run_group_tests_name("fanout (veth between two namespaces)", tests, setup_net,
					   teardown_net);
}
