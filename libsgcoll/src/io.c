// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The socket and its io_uring: one UDP socket per rank, a multishot
 * recvmsg fed from a provided-buffer ring (no per-packet re-arming and no
 * buffer replenish stalls), and batched sends submitted once per round.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "comm.h"
#include "mac.h"
#include "io.h"

/*
 * The kernel fills the provided receive buffers asynchronously (io_uring),
 * which valgrind's memcheck cannot see: without this every received byte
 * reads as uninitialised.  Marks exactly the bytes a completion reports;
 * a no-op (a few instructions) when not running under valgrind.
 */
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define SGC_KERNEL_WROTE(p, n) VALGRIND_MAKE_MEM_DEFINED(p, n)
#else
#define SGC_KERNEL_WROTE(p, n) ((void)0)
#endif

#define TAG_RECV	1ULL
#define TAG_TIMER	2ULL
#define TAG_WATCH	3ULL
#define TAG_CANCEL	4ULL
#define BGID		0
#define RX_BUF_SIZE	4096	/* recvmsg_out + name + largest datagram */
#define RX_BUF_GRO	(68 * 1024)	/* ... + the GRO cmsg + a coalesced 64 KiB */
#define RX_BOUNCE_SIZE	4096	/* largest valid datagram, see below */
_Static_assert(SGC_HDR_SIZE + SGC_MAX_BODY <= RX_BOUNCE_SIZE, "bounce buffer too small");
#define SOCK_BUF_BYTES	(8 << 20)
/* io_close() waits this long at most for the kernel to give back every
 * request (sends complete in microseconds, cancellations as fast). */
#define QUIESCE_NS	(1000 * 1000000ULL)

/* UDP GSO (Linux 4.18): one send of up to GSO_MAX_SEGS (io.h)
 * datagrams of equal size (the last may be shorter) to one peer; the stack
 * splits it as late as it can, on veth often only at the receiving socket. */
#define GSO_MAX_BYTES	65000	/* a UDP payload is at most 65507 bytes */

struct gso_send {
	struct msghdr msg;
	struct sockaddr_in dst;
	unsigned n, niov;
	struct iovec iov[2 * GSO_MAX_SEGS];	/* a header and an attached body each */
	struct sgc_pkt *pkts[GSO_MAX_SEGS];
	/* Last: struct cmsghdr ends in a flexible array, which clang allows
	 * only at the end of a struct. */
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} cm;
};

uint64_t io_wall_age(uint64_t wall)
{
	uint64_t now = clock_ns(CLOCK_REALTIME);

	return now > wall ? now - wall : 0;
}

uint64_t io_rx_age(const struct sgc_comm *c)
{
	return c->io.rx_wall ? io_wall_age(c->io.rx_wall) : 0;
}

uint64_t now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static void sock_bufs(int fd)
{
	int v = SOCK_BUF_BYTES;

	/* FORCE variants ignore rmem_max/wmem_max but need CAP_NET_ADMIN;
	 * fall back to what an unprivileged process may ask for. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
}

static int open_socket(struct sgc_comm *c)
{
	char a[32];
	socklen_t len = sizeof(c->self);
	int fd, err;

	if (c->io.prebound) {
		fd = c->io.fd;
	} else {
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			return sgc_err(-errno, "cannot create a UDP socket: %s", strerror(errno));
	}
	sock_bufs(fd);
	c->io.gso = c->cfg.gso && !setsockopt(fd, SOL_UDP, UDP_SEGMENT, &(int){ 0 }, sizeof(int));
	/*
	 * UDP GRO (Linux 5.0): a GSO burst from one peer stays one skb up to
	 * this socket and arrives as one completion, split here by the size
	 * the kernel reports.  Not where the owner says no (c->io.no_gro).
	 */
	c->io.gro = c->io.gso && !c->io.no_gro &&
		 !setsockopt(fd, SOL_UDP, UDP_GRO, &(int){ 1 }, sizeof(int));
	/*
	 * The coordinator's input may queue for milliseconds when its CPU is
	 * what limits the job; a NACK read then can be older than the result
	 * it asks for, and the kernel's receive time tells (coord_rx_nack()).
	 */
	c->io.rx_stamp = c->rank == 0 &&
			 !setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &(int){ 1 }, sizeof(int));
	if (!c->io.prebound && bind(fd, (struct sockaddr *)&c->self, sizeof(c->self))) {
		err = -errno;
		sgc_addr_str(&c->self, a, sizeof(a));
		close(fd);
		if (err == -EADDRINUSE)
			return sgc_err(err, "cannot bind rank %d to %s: the port is in use (another job or rank "
				       "already has it); choose another port in SGC_COORDINATOR/SGC_BIND",
				       c->rank, a);
		if (err == -EADDRNOTAVAIL)
			return sgc_err(err, "cannot bind rank %d to %s: that address is not on this host; "
				       "set SGC_BIND (or bind_addr) to one of this host's addresses",
				       c->rank, a);
		return sgc_err(err, "cannot bind rank %d to %s: %s", c->rank, a, strerror(-err));
	}
	getsockname(fd, (struct sockaddr *)&c->self, &len);
	c->io.fd = fd;
	return 0;
}

static int setup_buf_ring(struct sgc_comm *c)
{
	struct io_uring_buf_reg reg = {};
	unsigned i, mask;
	int err;

	/* GRO buffers are 17 times larger, so there are fewer; the pages a
	 * small datagram does not reach are never touched.  A ring that runs
	 * dry only stops the receive until the next round (ENOBUFS): the
	 * datagrams wait in the socket. */
	if (c->io.gro) {
		c->io.br_entries = c->rank == 0 ? 1024 : 128;
		c->io.buf_size = RX_BUF_GRO;
	} else {
		c->io.br_entries = c->rank == 0 ? 4096 : 512;
		c->io.buf_size = RX_BUF_SIZE;
	}
	c->io.br_size = c->io.br_entries * sizeof(struct io_uring_buf);
	c->io.br = mmap(NULL, c->io.br_size, PROT_READ | PROT_WRITE,
		     MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (c->io.br == MAP_FAILED) {
		c->io.br = NULL;
		return sgc_err(-ENOMEM, "cannot map the receive buffer ring");
	}
	c->io.bufs = aligned_alloc(4096, (size_t)c->io.br_entries * c->io.buf_size);
	if (!c->io.bufs)
		return sgc_err(-ENOMEM, "cannot allocate %u receive buffers", c->io.br_entries);

	reg.ring_addr = (unsigned long)c->io.br;
	reg.ring_entries = c->io.br_entries;
	reg.bgid = BGID;
	err = io_uring_register_buf_ring(&c->io.ring, &reg, 0);
	if (err)
		return sgc_err(err, "io_uring cannot register a provided-buffer ring (%s): "
			       "kernel 5.19 or newer is needed", strerror(-err));
	io_uring_buf_ring_init(c->io.br);
	mask = io_uring_buf_ring_mask(c->io.br_entries);
	for (i = 0; i < c->io.br_entries; i++)
		io_uring_buf_ring_add(c->io.br, c->io.bufs + (size_t)i * c->io.buf_size,
				      c->io.buf_size, i, mask, i);
	io_uring_buf_ring_advance(c->io.br, c->io.br_entries);
	return 0;
}

int io_open(struct sgc_comm *c)
{
	struct io_uring_params p = {};
	int err;

	if (!c->io.prebound)
		c->io.fd = -1;
	c->pkts.size = sizeof(struct sgc_pkt) + SGC_HDR_SIZE + SGC_MAX_BODY + SGC_MAC_TAG_SIZE;
	c->io.fan_cpus = c->cfg.fanout_cpus;	/* sgc_cfg_env(): 1..64 */
	err = open_socket(c);
	if (err)
		return err;

	p.flags = IORING_SETUP_CQSIZE;
	if (c->cfg.waitmode != SGC_WAITMODE_BUSYPOLL)
		p.flags |= IORING_SETUP_COOP_TASKRUN;
	p.cq_entries = 16384;
	err = io_uring_queue_init_params(1024, &c->io.ring, &p);
	if (err == -EINVAL) {
		p.flags &= ~IORING_SETUP_COOP_TASKRUN;
		err = io_uring_queue_init_params(1024, &c->io.ring, &p);
	}
	if (err) {
		if (err == -EPERM || err == -ENOSYS)
			return sgc_err(err, "io_uring is not available (%s): it may be disabled by "
				       "sysctl kernel.io_uring_disabled or a seccomp profile; "
				       "allow io_uring for this process", strerror(-err));
		return sgc_err(err, "cannot set up io_uring: %s", strerror(-err));
	}
	c->io.ring_ok = true;

	err = setup_buf_ring(c);
	if (err)
		return err;
	if (c->io.gso) {
		c->io.txq = calloc(SGC_TXQ, sizeof(*c->io.txq));
		c->io.gso = c->io.txq != NULL;
	}

	memset(&c->io.rx_msg, 0, sizeof(c->io.rx_msg));
	c->io.rx_msg.msg_namelen = sizeof(struct sockaddr_in);
	if (c->io.gro) {
		c->io.rx_bounce = aligned_alloc(64, RX_BOUNCE_SIZE);
		if (!c->io.rx_bounce)
			return sgc_err(-ENOMEM, "cannot allocate a receive bounce buffer");
		c->io.rx_msg.msg_controllen = CMSG_SPACE(sizeof(int));
	}
	if (c->io.rx_stamp)
		c->io.rx_msg.msg_controllen += CMSG_SPACE(sizeof(struct timespec));
	return 0;
}

unsigned long io_netdev_backlog(void)
{
	unsigned long v = 1000;
	FILE *f = fopen("/proc/sys/net/core/netdev_max_backlog", "re");

	if (f) {
		if (fscanf(f, "%lu", &v) != 1)
			v = 1000;
		fclose(f);
	}
	return v;
}

unsigned long io_sock_room(struct sgc_comm *c)
{
	socklen_t len = sizeof(int);
	int rcvbuf = 0;

	if (getsockopt(c->io.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &len))
		rcvbuf = 0;
	return (unsigned long)rcvbuf / 4096;
}

unsigned long io_rx_room(struct sgc_comm *c)
{
	unsigned long room = io_sock_room(c), backlog = io_netdev_backlog() * 3 / 4;

	return room < backlog ? room : backlog;
}

static void rx_ignore(struct sgc_comm *c, const struct sgc_rx *rx)
{
}

static struct io_uring_sqe *get_sqe(struct sgc_comm *c)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&c->io.ring);

	if (!sqe) {
		/* SQ full: push the batch to the kernel now; completions are
		 * reaped at the next io_poll() (the CQ does not drop). */
		io_uring_submit(&c->io.ring);
		c->io.nsq = 0;
		sqe = io_uring_get_sqe(&c->io.ring);
	}
	return sqe;
}

static int prep_send(struct sgc_comm *c, struct sgc_pkt *p, const struct sockaddr_in *dst)
{
	struct io_uring_sqe *sqe = get_sqe(c);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_send(sqe, c->io.fd, p->data, p->len, 0);
	io_uring_prep_send_set_addr(sqe, (const struct sockaddr *)dst, sizeof(*dst));
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)p);
	if (c->io.send_async)
		sqe->flags |= IOSQE_ASYNC;
	c->io.nsq++;
	return 0;
}

/*
 * With a job key, (re)write the datagram's tag.  A datagram goes out
 * again (to every rank, and as a resend) and its header may change in
 * between: the tag is made again only when the header is not the one it
 * was made for.  A length that no longer ends in the tag we wrote means
 * the body was rebuilt, and the tag goes after it.
 */
static void seal(struct sgc_comm *c, struct sgc_pkt *p)
{
	if (p->tag_at && p->len == p->tag_at + SGC_MAC_TAG_SIZE &&
	    !memcmp(p->data, &p->tag_hdr, sizeof(p->tag_hdr)))
		return;
	if (!p->tag_at || p->len != p->tag_at + SGC_MAC_TAG_SIZE)
		p->tag_at = p->len;
	sgc_mac_seal(c->mac, p->data, p->tag_at);
	memcpy(&p->tag_hdr, p->data, sizeof(p->tag_hdr));
	p->len = p->tag_at + SGC_MAC_TAG_SIZE;
}

static int io_send_how(struct sgc_comm *c, struct sgc_pkt *p, const struct sockaddr_in *dst,
		       bool queue)
{
	int err;

	/* A body sent in place needs sendmsg, which only the GSO sends use,
	 * and a tag is made over one buffer. */
	if (p->ext && (c->mac || !c->io.gso || (pkt_hdr(p)->flags & SGC_F_FANOUT))) {
		err = pkt_flatten(p);
		if (err)
			return err;	/* lost: sent again by its owner's loss check */
	}
	if (c->mac)
		seal(c, p);

	/* Fan-out requests stay single: scatter_prog reads one header. */
	if (queue && c->io.gso && !(pkt_hdr(p)->flags & SGC_F_FANOUT)) {
		if (c->io.ntxq == SGC_TXQ)
			io_tx_flush(c);
		c->io.txq[c->io.ntxq].p = p;
		c->io.txq[c->io.ntxq].dst = dst;
		c->io.ntxq++;
		c->io.nsq++;
	} else {
		err = prep_send(c, p, dst);
		if (err)
			return err;
	}
	p->refs++;
	c->io.sends_inflight++;
	c->st.pkts_sent++;
	c->st.bytes_sent += pkt_wire_len(p);
	return 0;
}

int io_send(struct sgc_comm *c, struct sgc_pkt *p, const struct sockaddr_in *dst)
{
	return io_send_how(c, p, dst, true);
}

int io_send_now(struct sgc_comm *c, struct sgc_pkt *p, const struct sockaddr_in *dst)
{
	return io_send_how(c, p, dst, false);
}

static void gso_add(struct gso_send *g, struct sgc_pkt *p)
{
	g->iov[g->niov].iov_base = p->data;
	g->iov[g->niov++].iov_len = p->len;
	if (p->ext) {
		g->iov[g->niov].iov_base = (void *)p->ext;
		g->iov[g->niov++].iov_len = p->ext_len;
	}
	g->pkts[g->n++] = p;
}

static void gso_submit(struct sgc_comm *c, struct gso_send *g, const struct sockaddr_in *dst,
		       uint16_t seg)
{
	struct io_uring_sqe *sqe = get_sqe(c);
	struct cmsghdr *cm;
	unsigned k;

	if (!sqe) {
		for (k = 0; k < g->n; k++) {
			c->io.sends_inflight--;
			pkt_put(c, g->pkts[k]);
		}
		free(g);
		return;
	}
	g->dst = *dst;
	g->msg.msg_name = &g->dst;
	g->msg.msg_namelen = sizeof(g->dst);
	g->msg.msg_iov = g->iov;
	g->msg.msg_iovlen = g->niov;
	g->msg.msg_control = g->cm.buf;
	g->msg.msg_controllen = sizeof(g->cm.buf);
	g->msg.msg_flags = 0;
	cm = CMSG_FIRSTHDR(&g->msg);
	cm->cmsg_level = SOL_UDP;
	cm->cmsg_type = UDP_SEGMENT;
	cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
	memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
	io_uring_prep_sendmsg(sqe, c->io.fd, &g->msg, 0);
	/* Packets are 8-aligned, so bit 0 marks a GSO send. */
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)g | 1);
	c->io.nsq++;
}

static struct gso_send *gso_new(struct sgc_pkt *first)
{
	struct gso_send *g = malloc(sizeof(*g));

	if (g) {
		g->n = g->niov = 0;
		gso_add(g, first);
	}
	return g;
}

void io_cork(struct sgc_comm *c, uint64_t until)
{
	if (c->io.gso && !c->io.cork_until)
		c->io.cork_until = until;
}

uint64_t io_cork_due(const struct sgc_comm *c)
{
	return c->io.ntxq ? c->io.cork_until : 0;
}

bool io_queued(const struct sgc_comm *c, const struct sgc_pkt *p, const struct sockaddr_in *dst)
{
	unsigned i;

	/* Only the owner's reference: no send of it is pending anywhere. */
	if (p->refs < 2)
		return false;
	for (i = 0; i < c->io.ntxq; i++)
		if (c->io.txq[i].p == p && sockaddr_eq(c->io.txq[i].dst, dst))
			return true;
	return false;
}

static bool io_corked(struct sgc_comm *c)
{
	if (!c->io.cork_until)
		return false;
	if (c->io.ntxq < SGC_TXQ && now_ns() < c->io.cork_until)
		return true;
	c->io.cork_until = 0;
	return false;
}

/*
 * Submit the held sends.  Per peer, in order: a run of datagrams of the
 * first one's size (ended by a shorter one, which may close it, or by a
 * longer one) goes as one GSO send; anything else goes alone.  Datagrams
 * to one peer keep their order; across peers it does not matter.
 */
void io_tx_flush(struct sgc_comm *c)
{
	unsigned i, j, n = c->io.ntxq;

	if (io_corked(c))
		return;
	c->io.ntxq = 0;
	for (i = 0; i < n; i++) {
		struct sgc_txq_ent *e = &c->io.txq[i];
		struct gso_send *g = NULL;
		uint32_t seg, total;

		if (!e->p)
			continue;
		seg = pkt_wire_len(e->p);
		total = seg;
		for (j = i + 1; j < n; j++) {
			struct sgc_txq_ent *f = &c->io.txq[j];
			uint32_t len;

			if (!f->p || !sockaddr_eq(f->dst, e->dst))
				continue;
			len = pkt_wire_len(f->p);
			if (len > seg || total + len > GSO_MAX_BYTES)
				break;
			if (!g) {
				g = gso_new(e->p);
				if (!g)
					break;
			}
			gso_add(g, f->p);
			total += len;
			if (len < seg || g->n == GSO_MAX_SEGS) {
				f->p = NULL;
				break;
			}
			f->p = NULL;
		}
		/* A lone datagram with an attached body goes by sendmsg too
		 * (a GSO send of one segment is a plain datagram). */
		if (!g && e->p->ext)
			g = gso_new(e->p);
		if (g) {
			gso_submit(c, g, e->dst, (uint16_t)seg);
		} else if (pkt_flatten(e->p) || prep_send(c, e->p, e->dst)) {
			c->io.sends_inflight--;
			pkt_put(c, e->p);
		}
		e->p = NULL;
	}
}

static void gso_done(struct sgc_comm *c, struct gso_send *g, int res)
{
	unsigned k;

	if (res < 0) {
		/* Not for this socket or route after all: resend one by one. */
		pr_debug("rank %d: GSO send of %u datagrams failed (%s); sending them singly from "
			 "now on\n", c->rank, g->n, strerror(-res));
		c->io.gso = false;
	}
	for (k = 0; k < g->n; k++) {
		if (res < 0 && !pkt_flatten(g->pkts[k]) && !prep_send(c, g->pkts[k], &g->dst))
			continue;	/* the new send owns the reference */
		c->io.sends_inflight--;
		pkt_put(c, g->pkts[k]);
	}
	free(g);
}

void io_arm_timer(struct sgc_comm *c, uint64_t when)
{
	struct io_uring_sqe *sqe;

	if (c->io.timer_at && c->io.timer_at <= when)
		return;
	sqe = get_sqe(c);
	if (!sqe)
		return;
	c->io.timer_ts.tv_sec = (long long)(when / 1000000000ULL);
	c->io.timer_ts.tv_nsec = (long long)(when % 1000000000ULL);
	io_uring_prep_timeout(sqe, &c->io.timer_ts, 0, IORING_TIMEOUT_ABS);
	io_uring_sqe_set_data64(sqe, TAG_TIMER);
	c->io.timer_at = when;
	c->io.nsq++;
}

static void arm_recv(struct sgc_comm *c)
{
	struct io_uring_sqe *sqe;

	if (c->io.closing)
		return;
	sqe = get_sqe(c);
	if (!sqe)
		return;
	io_uring_prep_recvmsg_multishot(sqe, c->io.fd, &c->io.rx_msg, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, TAG_RECV);
	c->io.recv_armed = true;
	c->io.nsq++;
}

void io_watch(struct sgc_comm *c, int fd, sgc_watch_fn fn)
{
	c->io.watch_fd = fn ? fd : -1;
	c->io.watch = fd >= 0 ? fn : NULL;
}

/* Wake the wait when the watched fd is readable (one-shot poll). */
static void arm_watch(struct sgc_comm *c)
{
	struct io_uring_sqe *sqe;

	if (c->io.closing)
		return;
	sqe = get_sqe(c);
	if (!sqe)
		return;
	io_uring_prep_poll_add(sqe, c->io.watch_fd, POLLIN);
	io_uring_sqe_set_data64(sqe, TAG_WATCH);
	c->io.watch_armed = true;
	c->io.nsq++;
}

/* A receive's control messages: returns the segment size of a coalesced
 * (GRO) receive, 0 for one datagram; sets c->io.rx_wall. */
static uint32_t rx_cmsgs(struct sgc_comm *c, struct io_uring_recvmsg_out *out)
{
	struct cmsghdr *cm;
	struct timespec ts;
	uint32_t seg = 0;
	int v;

	c->io.rx_wall = 0;
	if (!c->io.rx_msg.msg_controllen)
		return 0;
	for (cm = io_uring_recvmsg_cmsg_firsthdr(out, &c->io.rx_msg); cm;
	     cm = io_uring_recvmsg_cmsg_nexthdr(out, &c->io.rx_msg, cm)) {
		if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
			memcpy(&v, CMSG_DATA(cm), sizeof(v));
			seg = v > 0 ? (uint32_t)v : 0;
		} else if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
			memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
			c->io.rx_wall = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
		}
	}
	return seg;
}

static void handle_datagram(struct sgc_comm *c, void *buf, int len)
{
	struct io_uring_recvmsg_out *out;
	struct sockaddr_in from;
	uint32_t plen, seg, off, n;
	uint8_t *payload;

	out = io_uring_recvmsg_validate(buf, len, &c->io.rx_msg);
	if (!out)
		return;
	payload = io_uring_recvmsg_payload(out, &c->io.rx_msg);
	plen = io_uring_recvmsg_payload_length(out, len, &c->io.rx_msg);
	if ((out->flags & (MSG_TRUNC | MSG_CTRUNC)) || out->namelen < sizeof(struct sockaddr_in)) {
		c->st.pkts_recv++;
		c->st.rejected++;
		return;
	}
	memcpy(&from, io_uring_recvmsg_name(out), sizeof(from));
	seg = rx_cmsgs(c, out);
	if (!seg || seg >= plen) {
		/* recvmsg_out (16), the name (16) and the cmsg space (0, 24
		 * for GRO, + 32 for the timestamp) keep a page-aligned
		 * buffer's payload 8-aligned. */
		pkt_deliver(c, &from, payload, plen);
		return;
	}
	c->io.rx_coalesced++;
	for (off = 0; off < plen; off += n) {
		uint8_t *p = payload + off;

		n = plen - off < seg ? plen - off : seg;
		/* Segments of a size that is not a multiple of 8 (a batch of
		 * small results) are copied to keep bodies aligned. */
		if ((uintptr_t)p & 7) {
			if (n > RX_BOUNCE_SIZE) {	/* too long to be valid */
				c->st.pkts_recv++;
				c->st.rejected++;
				continue;
			}
			memcpy(c->io.rx_bounce, p, n);
			p = c->io.rx_bounce;
		}
		pkt_deliver(c, &from, p, n);
	}
}

static void handle_cqe(struct sgc_comm *c, struct io_uring_cqe *cqe, unsigned *recycled)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);

	if (ud == TAG_RECV) {
		if (!(cqe->flags & IORING_CQE_F_MORE))
			c->io.recv_armed = false;
		if (cqe->res < 0) {
			if (cqe->res != -ENOBUFS && !(c->io.closing && cqe->res == -ECANCELED))
				pr_debug("rank %d: receive error: %s\n", c->rank, strerror(-cqe->res));
			return;
		}
		if (cqe->flags & IORING_CQE_F_BUFFER) {
			unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
			uint8_t *buf = c->io.bufs + (size_t)bid * c->io.buf_size;

			SGC_KERNEL_WROTE(buf, (size_t)cqe->res);
			c->io.events++;
			handle_datagram(c, buf, cqe->res);
			io_uring_buf_ring_add(c->io.br, buf, c->io.buf_size, bid,
					      io_uring_buf_ring_mask(c->io.br_entries), *recycled);
			(*recycled)++;
		}
		return;
	}
	if (ud == TAG_TIMER) {
		c->io.timer_at = 0;
		return;
	}
	if (ud == TAG_CANCEL) {
		c->io.cancel_pending = false;
		return;
	}
	if (ud == TAG_WATCH) {
		/* May come after io_watch() stopped it (eBPF path closed). */
		c->io.watch_armed = false;
		io_watch_drain(c);
		return;
	}
	if (ud & 1) {
		gso_done(c, (struct gso_send *)(uintptr_t)(ud & ~1ULL), cqe->res);
		return;
	}
	if (ud > TAG_CANCEL) {
		struct sgc_pkt *p = (struct sgc_pkt *)(uintptr_t)ud;

		if (cqe->res < 0)
			pr_debug("rank %d: send failed: %s\n", c->rank, strerror(-cqe->res));
		c->io.sends_inflight--;
		pkt_put(c, p);
	}
}

/* Handle every completion posted; returns how many. */
static unsigned reap(struct sgc_comm *c)
{
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0, recycled = 0;

	io_uring_for_each_cqe(&c->io.ring, head, cqe) {
		handle_cqe(c, cqe, &recycled);
		seen++;
	}
	if (recycled)
		io_uring_buf_ring_advance(c->io.br, recycled);
	io_uring_cq_advance(&c->io.ring, seen);
	return seen;
}

int io_poll(struct sgc_comm *c, uint64_t wait_ns)
{
	return io_poll_flags(c, wait_ns, false, c->io.events);
}

int io_poll_flags(struct sgc_comm *c, uint64_t wait_ns, bool enter, uint64_t since)
{
	struct io_uring_cqe *cqe;
	unsigned seen;
	int ret, rounds = 0;

	io_tx_flush(c);
	if (!c->io.recv_armed)
		arm_recv(c);
	if (c->io.watch && !c->io.watch_armed)
		arm_watch(c);
	/* Handle what the watched fd has queued already: it will not wake
	 * the wait for what was consumed here. */
	io_watch_drain(c);
	/* Something was handled since the caller's mark: the caller has work
	 * to look at (the query it waits for may be done), so do not sleep. */
	if (c->io.events != since || c->cfg.waitmode == SGC_WAITMODE_BUSYPOLL)
		wait_ns = 0;
	/* Wake for the held sends' turn. */
	if (wait_ns && io_cork_due(c)) {
		uint64_t t = now_ns();

		wait_ns = c->io.cork_until > t ? min_u64(wait_ns, c->io.cork_until - t) : 0;
	}
	if (wait_ns && c->io.side) {
		c->io.side(c->io.side_arg);
		wait_ns = min_u64(wait_ns, SGC_SIDE_WAIT_NS);
	}
	if (wait_ns) {
		struct __kernel_timespec ts = {
			.tv_sec = (long long)(wait_ns / 1000000000ULL),
			.tv_nsec = (long long)(wait_ns % 1000000000ULL),
		};

		ret = io_uring_submit_and_wait_timeout(&c->io.ring, &cqe, 1, &ts, NULL);
		if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			return sgc_err(ret, "io_uring wait failed: %s", strerror(-ret));
	} else if (c->io.nsq || enter || c->cfg.waitmode == SGC_WAITMODE_BUSYPOLL) {
		/* Busy polling still enters the kernel so that completions
		 * whose task work is pending get posted. */
		io_uring_submit_and_get_events(&c->io.ring);
	}
	c->io.nsq = 0;

	/* Reap until the CQ is empty; handlers may queue sends, which are
	 * submitted by the caller's next round.  They time what they see by
	 * c->now, which must not be from before the wait: a worker that
	 * slept (or lost its CPU) for a while took its results as heard
	 * that long ago, and NACKed them at once. */
	do {
		c->now = now_ns();
		seen = reap(c);
		if (!c->io.recv_armed)
			arm_recv(c);
	} while (seen && ++rounds < 8);
	return 0;
}

void io_flush(struct sgc_comm *c)
{
	/* A cork outlives the call only while the caller holds requests,
	 * which it will wait for or test: with none it may not call again
	 * for long (a rank 0 that lags its workers completes each collective
	 * as it posts it, so none is outstanding here even then). */
	if (!c->colls.live)
		c->io.cork_until = 0;
	io_tx_flush(c);
	if (c->io.nsq) {
		io_uring_submit(&c->io.ring);
		c->io.nsq = 0;
	}
}

static bool io_busy(const struct sgc_comm *c)
{
	return c->io.sends_inflight || c->io.recv_armed || c->io.timer_at || c->io.watch_armed ||
	       c->io.cancel_pending;
}

/*
 * Leave nothing of ours in the kernel: let the sends complete (their
 * buffers come back), then cancel the receive, the timer and the watch,
 * and wait for every completion.  A request in flight holds the socket's
 * file; were any left, the ring's teardown, which the kernel finishes in
 * the background after io_uring_queue_exit(), would keep the port bound
 * for a while after close(), and an sgc_init() on it right after this one
 * would fail with -EADDRINUSE.
 */
static void io_quiesce(struct sgc_comm *c)
{
	uint64_t deadline = now_ns() + QUIESCE_NS;
	struct __kernel_timespec ts = { .tv_nsec = 10 * 1000000 };
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;

	c->io.rx = rx_ignore;
	c->io.closing = true;
	c->io.cork_until = 0;
	io_tx_flush(c);
	io_uring_submit(&c->io.ring);
	c->io.nsq = 0;
	while (c->io.sends_inflight && now_ns() < deadline) {
		io_uring_wait_cqe_timeout(&c->io.ring, &cqe, &ts);
		reap(c);
	}
	sqe = get_sqe(c);
	if (sqe) {
		io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY | IORING_ASYNC_CANCEL_ALL);
		io_uring_sqe_set_data64(sqe, TAG_CANCEL);
		c->io.cancel_pending = true;
		io_uring_submit(&c->io.ring);
	}
	while (io_busy(c) && now_ns() < deadline) {
		io_uring_wait_cqe_timeout(&c->io.ring, &cqe, &ts);
		reap(c);
	}
	if (io_busy(c))
		pr_warn("rank %d: io_uring requests still pending at close (%u sends%s%s%s): the "
			"port may stay bound until the kernel finishes them\n", c->rank,
			c->io.sends_inflight, c->io.recv_armed ? ", the receive" : "",
			c->io.timer_at ? ", the timer" : "", c->io.watch_armed ? ", a watch" : "");
}

void io_close(struct sgc_comm *c)
{
	if (c->io.ring_ok) {
		io_quiesce(c);
		if (c->io.br)
			io_uring_unregister_buf_ring(&c->io.ring, BGID);
		io_uring_queue_exit(&c->io.ring);
		c->io.ring_ok = false;
	}
	if (c->io.br)
		munmap(c->io.br, c->io.br_size);
	c->io.br = NULL;
	free(c->io.bufs);
	c->io.bufs = NULL;
	free(c->io.rx_bounce);
	c->io.rx_bounce = NULL;
	if (c->io.fd >= 0)
		close(c->io.fd);
	c->io.fd = -1;
	free(c->io.txq);
	c->io.txq = NULL;
	c->io.ntxq = 0;
	pkt_pool_free(c);
}
