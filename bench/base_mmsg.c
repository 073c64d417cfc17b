// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * base_mmsg - sendmmsg/recvmmsg baseline: one unconnected UDP socket.
 * Scatter: one sendmmsg() per 1024 workers (UIO_MAXIOV).  Gather:
 * recvmmsg() of up to 256 datagrams per call, blocking for the first
 * (MSG_WAITFORONE).  About F/256 + 1 system calls per operation.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "bench_base.h"
#include "bench_util.h"

#define SEND_BATCH	1024
#define RECV_BATCH	256
#define RECV_BUF	4096

struct mmsg {
	int fd;
	struct mmsghdr smsg[SEND_BATCH];
	struct iovec siov[SEND_BATCH][2];
	struct mmsghdr rmsg[RECV_BATCH];
	struct iovec riov[RECV_BATCH];
	struct sockaddr_in rname[RECV_BATCH];
	unsigned char rbuf[RECV_BATCH][RECV_BUF];
};

static int mmsg_open(struct base_ctx *b)
{
	struct timeval tick = { .tv_usec = 1000 };
	struct mmsg *m = calloc(1, sizeof(*m));
	int i;

	if (!m)
		return -ENOMEM;
	b->priv = m;
	m->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (m->fd < 0)
		return -errno;
	/* Every answer of a full window fits in the receive buffer. */
	base_sockbuf(m->fd, 64 << 20, 8 << 20);
	if (setsockopt(m->fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick)))
		return -errno;
	for (i = 0; i < RECV_BATCH; i++) {
		m->riov[i].iov_base = m->rbuf[i];
		m->riov[i].iov_len = RECV_BUF;
		m->rmsg[i].msg_hdr.msg_iov = &m->riov[i];
		m->rmsg[i].msg_hdr.msg_iovlen = 1;
		m->rmsg[i].msg_hdr.msg_name = &m->rname[i];
	}
	return 0;
}

static int mmsg_send(struct base_ctx *b, int slot, const int *ranks, int cnt)
{
	struct mmsg *m = b->priv;
	int off = 0, err = 0;

	while (off < cnt) {
		int n = cnt - off < SEND_BATCH ? cnt - off : SEND_BATCH, i, sent = 0;

		for (i = 0; i < n; i++) {
			int r = ranks[off + i];

			m->siov[i][0].iov_base = base_qmsg(b, slot, r);
			m->siov[i][0].iov_len = sizeof(struct bench_msg);
			m->siov[i][1].iov_base = b->pad;
			m->siov[i][1].iov_len = b->pad_len;
			m->smsg[i].msg_hdr = (struct msghdr){
				.msg_name = &b->addr[r], .msg_namelen = sizeof(b->addr[r]),
				.msg_iov = m->siov[i], .msg_iovlen = b->pad_len ? 2 : 1,
			};
		}
		/* sendmmsg() may stop early; a failing datagram is skipped and
		 * left to the retransmission timer. */
		while (sent < n) {
			int k = sendmmsg(m->fd, m->smsg + sent, (unsigned)(n - sent), 0);

			if (k < 0) {
				if (errno == EINTR)
					continue;
				err = -errno;
				k = 1;
			}
			sent += k;
		}
		off += n;
	}
	return err;
}

static int mmsg_poll(struct base_ctx *b, uint64_t deadline)
{
	struct mmsg *m = b->priv;

	for (;;) {
		int n, i;

		for (i = 0; i < RECV_BATCH; i++)
			m->rmsg[i].msg_hdr.msg_namelen = sizeof(m->rname[i]);
		n = recvmmsg(m->fd, m->rmsg, RECV_BATCH, MSG_WAITFORONE, NULL);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		for (i = 0; i < n; i++) {
			if (m->rmsg[i].msg_hdr.msg_flags & MSG_TRUNC ||
			    m->rmsg[i].msg_hdr.msg_namelen != sizeof(m->rname[i])) {
				b->bad++;
				continue;
			}
			base_rx(b, m->rbuf[i], m->rmsg[i].msg_len, &m->rname[i], 0);
		}
		if (b->ndone || b->failed || bench_now_ns() >= deadline)
			return 0;
	}
}

static void mmsg_close(struct base_ctx *b)
{
	struct mmsg *m = b->priv;

	if (!m)
		return;
	if (m->fd > 0)
		close(m->fd);
	free(m);
	b->priv = NULL;
}

static const struct base_io mmsg_io = {
	.name = "base_mmsg",
	.open = mmsg_open,
	.send = mmsg_send,
	.poll = mmsg_poll,
	.close = mmsg_close,
};

int main(int argc, char **argv)
{
	return base_main(argc, argv, &mmsg_io);
}
