// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sgc_hostile: hostile datagrams for a running job, from inside a worker
 * host of the virtual cluster (tests/e2e/hostile.sh runs it).
 *
 * It captures one real CONTRIB of a collective that a rank on this host
 * sends to the coordinator (AF_PACKET on IFNAME), then, for SECONDS, sends
 * variants of it: each class once per round, paced.  Frames are injected
 * on IFNAME with the registered rank's own MAC, address and port unless
 * the class is about the source, so the library's later checks (fields,
 * window) are the ones that must catch them.  Datagrams larger than the
 * MTU go through a UDP socket (the kernel fragments them).
 *
 *   sgc_hostile -i IFNAME -c COORD_IP:PORT -W WORLD -d SECONDS -o COUNTS
 *
 * COUNTS gets one "CLASS SENT" line per class; exit 0, or 1 with the
 * reason when nothing could be captured or sent.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sgcoll/wire.h"

#define L2L4 (sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr))
#define FRAME_MAX 9216

enum cls {
	C_JOB,		/* wrong job id */
	C_UNREG,	/* from an address no rank has */
	C_PORT,		/* the rank's address, another port */
	C_RANKSWAP,	/* claims another registered rank */
	C_SHORT,	/* shorter than the header */
	C_BODY,		/* header fine, body shorter than count says */
	C_COUNT,	/* count larger than a chunk */
	C_OVERSIZED,	/* larger than the MTU (fragmented, UDP socket) */
	C_CHUNK,	/* chunk >= nchunks */
	C_RANK,		/* rank >= world */
	C_DTYPE,	/* unknown dtype */
	C_OP,		/* unknown op */
	C_COLL,		/* unknown collective kind */
	C_NCHUNKS,	/* nchunks 0 */
	C_TYPE,		/* unknown message type */
	C_MAGIC,	/* bad magic */
	C_VERSION,	/* bad version */
	C_RESULT,	/* a RESULT sent to the coordinator */
	C_REPLAY,	/* the captured datagram again, collectives later */
	C_WORKER,	/* a RESULT to the rank, from another port */
	C_MAX
};

static const char *const cls_name[C_MAX] = {
	"job", "unreg", "port", "rankswap", "short", "body", "count", "oversized", "chunk",
	"rank", "dtype", "op", "coll", "nchunks", "type", "magic", "version", "result",
	"replay", "worker",
};

/* Frames start 2 bytes into 8-aligned buffers, so that the IPv4 header
 * after the 14-byte Ethernet header is 4-aligned. */
static uint8_t tmpl_buf[FRAME_MAX + 2] __attribute__((aligned(8)));
static uint8_t frame_buf[FRAME_MAX + 2] __attribute__((aligned(8)));
static uint8_t *const tmpl = tmpl_buf + 2;
static size_t tmpl_len;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint16_t ip_csum(const struct iphdr *ip)
{
	const uint16_t *p = (const uint16_t *)ip;
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i < sizeof(*ip) / 2; i++)
		sum += p[i];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static struct iphdr *f_ip(uint8_t *f)
{
	return (struct iphdr *)(f + sizeof(struct ethhdr));
}

static struct udphdr *f_udp(uint8_t *f)
{
	return (struct udphdr *)(f + sizeof(struct ethhdr) + sizeof(struct iphdr));
}

static struct sgc_hdr *f_hdr(uint8_t *f)
{
	return (struct sgc_hdr *)(f + L2L4);
}

/* Lengths and checksums for a frame whose payload is @plen bytes.  UDP
 * checksum 0 (none): a captured outgoing frame may carry only the partial
 * sum the NIC was to finish. */
static size_t f_fix(uint8_t *f, size_t plen)
{
	struct iphdr *ip = f_ip(f);
	struct udphdr *udp = f_udp(f);

	ip->tot_len = htons((uint16_t)(sizeof(*ip) + sizeof(*udp) + plen));
	ip->check = 0;
	ip->check = ip_csum(ip);
	udp->len = htons((uint16_t)(sizeof(*udp) + plen));
	udp->check = 0;
	return L2L4 + plen;
}

/* A CONTRIB of a collective (not a query) with a body, to the coordinator. */
static bool capture(int ps, uint32_t cip, uint16_t cport, double deadline)
{
	struct sockaddr_ll from;
	socklen_t flen;

	while (now_s() < deadline) {
		struct pollfd pfd = { .fd = ps, .events = POLLIN };
		struct sgc_hdr *h;
		struct iphdr *ip;
		struct udphdr *udp;
		ssize_t n;

		if (poll(&pfd, 1, 200) <= 0)
			continue;
		flen = sizeof(from);
		n = recvfrom(ps, tmpl, FRAME_MAX, 0, (struct sockaddr *)&from, &flen);
		if (n < (ssize_t)(L2L4 + SGC_HDR_SIZE) || from.sll_pkttype != PACKET_OUTGOING ||
		    ntohs(from.sll_protocol) != ETH_P_IP)
			continue;
		ip = f_ip(tmpl);
		udp = f_udp(tmpl);
		h = f_hdr(tmpl);
		if (ip->version != 4 || ip->ihl != 5 || ip->protocol != IPPROTO_UDP ||
		    ip->daddr != cip || udp->dest != cport || (ip->frag_off & htons(0x3fff)))
			continue;
		if ((size_t)n != sizeof(struct ethhdr) + ntohs(ip->tot_len))
			continue;
		if (h->magic != SGC_WIRE_MAGIC || h->type != SGC_MSG_CONTRIB ||
		    h->coll != SGC_COLL_ALLREDUCE || h->count < 8 || h->nchunks < 1 ||
		    (size_t)n < L2L4 + SGC_HDR_SIZE + h->count * sgc_wire_dtype_size(h->dtype))
			continue;
		/* A UDP GSO send is seen here before it is split: keep its
		 * first datagram (the lengths are rewritten when sending). */
		tmpl_len = L2L4 + SGC_HDR_SIZE + h->count * sgc_wire_dtype_size(h->dtype);
		return true;
	}
	return false;
}

int main(int argc, char **argv)
{
	const char *ifname = "eth0", *coord = NULL, *outpath = NULL;
	double secs = 5, deadline, t_end;
	unsigned long sent[C_MAX] = { 0 }, errs = 0;
	int opt, ps, us, ifindex, world = 0, c;
	struct sockaddr_in caddr = { .sin_family = AF_INET }, raddr = { .sin_family = AF_INET };
	struct sockaddr_ll ll = { .sll_family = AF_PACKET };
	uint32_t unreg;
	size_t plen;
	FILE *out;
	char ip[32];

	while ((opt = getopt(argc, argv, "i:c:W:d:o:")) != -1) {
		switch (opt) {
		case 'i': ifname = optarg; break;
		case 'c': coord = optarg; break;
		case 'W': world = atoi(optarg); break;
		case 'd': secs = atof(optarg); break;
		case 'o': outpath = optarg; break;
		default:
			fprintf(stderr, "usage: %s -i IFNAME -c COORD_IP:PORT -W WORLD -d SECONDS -o COUNTS\n",
				argv[0]);
			return 2;
		}
	}
	if (!coord || !outpath || world < 3 || !strchr(coord, ':') ||
	    sscanf(coord, "%31[^:]:%hu", ip, &caddr.sin_port) != 2 ||
	    inet_pton(AF_INET, ip, &caddr.sin_addr) != 1) {
		fprintf(stderr, "sgc_hostile: need -c IP:PORT, -W WORLD (3+) and -o FILE\n");
		return 2;
	}
	caddr.sin_port = htons(caddr.sin_port);
	ifindex = (int)if_nametoindex(ifname);
	/* ETH_P_ALL: taps for one protocol see only what comes in. */
	ps = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
	us = socket(AF_INET, SOCK_DGRAM, 0);
	if (!ifindex || ps < 0 || us < 0) {
		perror("sgc_hostile: socket");
		return 1;
	}
	ll.sll_protocol = htons(ETH_P_ALL);
	ll.sll_ifindex = ifindex;
	if (bind(ps, (struct sockaddr *)&ll, sizeof(ll))) {
		perror("sgc_hostile: bind AF_PACKET");
		return 1;
	}
	ll.sll_protocol = htons(ETH_P_IP);
	c = IP_PMTUDISC_DONT;	/* let the kernel fragment the oversized ones */
	setsockopt(us, IPPROTO_IP, IP_MTU_DISCOVER, &c, sizeof(c));

	if (!capture(ps, caddr.sin_addr.s_addr, caddr.sin_port, now_s() + 30)) {
		fprintf(stderr, "sgc_hostile: no CONTRIB to %s seen on %s within 30 s\n", coord, ifname);
		return 1;
	}
	shutdown(ps, SHUT_RD);
	raddr.sin_addr.s_addr = f_ip(tmpl)->saddr;
	raddr.sin_port = f_udp(tmpl)->source;
	/* An address in the cluster's worker subnet that no host has. */
	unreg = htonl((ntohl(f_ip(tmpl)->saddr) & 0xffff0000u) | 0x01fa);	/* A.B.1.250 */
	plen = tmpl_len - L2L4;
	printf("sgc_hostile: captured collective #%u chunk %u/%u (%u elements) of rank %u from %s:%u; "
	       "job %016llx\n", f_hdr(tmpl)->seq, f_hdr(tmpl)->chunk, f_hdr(tmpl)->nchunks,
	       f_hdr(tmpl)->count, f_hdr(tmpl)->rank, inet_ntop(AF_INET, &raddr.sin_addr, ip, sizeof(ip)),
	       ntohs(raddr.sin_port), (unsigned long long)f_hdr(tmpl)->job_id);
	fflush(stdout);
	/* Let the job move past the captured collective: a replay is old. */
	usleep(500000);

	t_end = now_s() + secs;
	memcpy(&ll.sll_addr, tmpl, ETH_ALEN);
	ll.sll_halen = ETH_ALEN;
	while ((deadline = now_s()) < t_end) {
		for (c = 0; c < C_MAX; c++) {
			uint8_t *f = frame_buf + 2;
			struct sgc_hdr *h = f_hdr(f);
			size_t len = f_fix(memcpy(f, tmpl, tmpl_len), plen);
			ssize_t n;

			switch (c) {
			case C_JOB: h->job_id ^= 0x5a5a; break;
			case C_UNREG: f_ip(f)->saddr = unreg; f_fix(f, plen); break;
			case C_PORT: f_udp(f)->source = htons((uint16_t)(ntohs(raddr.sin_port) + 333)); break;
			case C_RANKSWAP: h->rank = (uint16_t)(h->rank % (world - 1) + 1); break;
			case C_SHORT: len = f_fix(f, 20); break;
			case C_BODY: len = f_fix(f, plen - 8); break;
			case C_COUNT: h->count = 60000; break;
			case C_CHUNK: h->chunk = h->nchunks; break;
			case C_RANK: h->rank = 4000; break;
			case C_DTYPE: h->dtype = 9; break;
			case C_OP: h->op = 12; break;
			case C_COLL: h->coll = 9; break;
			case C_NCHUNKS: h->nchunks = 0; h->chunk = 0; break;
			case C_TYPE: h->type = 99; break;
			case C_MAGIC: h->magic = 0x1234; break;
			case C_VERSION: h->version = 9; break;
			case C_RESULT: h->type = SGC_MSG_RESULT; break;
			case C_REPLAY: break;
			default: break;
			}
			if (c == C_OVERSIZED || c == C_WORKER) {
				/* Through the UDP stack: our own port. */
				static uint8_t big[8000];
				size_t blen = c == C_OVERSIZED ? sizeof(big) : plen;

				memset(big, 0x77, sizeof(big));
				memcpy(big, f_hdr(tmpl), plen);
				if (c == C_WORKER)
					((struct sgc_hdr *)big)->type = SGC_MSG_RESULT;
				n = sendto(us, big, blen, 0,
					   (struct sockaddr *)(c == C_OVERSIZED ? &caddr : &raddr),
					   sizeof(caddr));
				if (n == (ssize_t)blen)
					sent[c]++;
				else
					errs++;
				continue;
			}
			n = sendto(ps, f, len, 0, (struct sockaddr *)&ll, sizeof(ll));
			if (n == (ssize_t)len)
				sent[c]++;
			else
				errs++;
		}
		/* About 4000 datagrams a second: hostile, not a flood that
		 * overruns the veth queues (a drop there would go uncounted). */
		usleep(5000);
	}
	out = fopen(outpath, "w");
	if (!out) {
		perror(outpath);
		return 1;
	}
	for (c = 0; c < C_MAX; c++)
		fprintf(out, "%s %lu\n", cls_name[c], sent[c]);
	fclose(out);
	printf("sgc_hostile: %lu rounds in %.1f s, %lu send errors\n", sent[C_JOB], secs, errs);
	return sent[C_JOB] ? 0 : 1;
}
