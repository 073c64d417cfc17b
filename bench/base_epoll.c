// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * base_epoll - sgbpf's epoll baseline: one connected, non-blocking UDP
 * socket per worker, all in one epoll set.  Scatter: send() on every
 * worker's socket.  Gather: epoll_pwait2() for readiness, then recv() on
 * each ready socket until it would block.  F + (F..2F) system calls per
 * operation.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "bench_base.h"
#include "bench_util.h"

#define MAX_EVENTS 1024

struct epl {
	int ep;
	int *fd;			/* [F + 1], connected to rank r */
	struct epoll_event ev[MAX_EVENTS];
	unsigned char buf[8192];
	unsigned char *query;		/* header + padding, rebuilt per send */
};

static int epl_open(struct base_ctx *b)
{
	struct epl *e = calloc(1, sizeof(*e));
	int r;

	if (!e)
		return -ENOMEM;
	b->priv = e;
	e->fd = calloc((size_t)b->a.workers + 1, sizeof(*e->fd));
	e->query = calloc(1, (size_t)b->a.query_bytes);
	if (!e->fd || !e->query)
		return -ENOMEM;
	e->ep = epoll_create1(EPOLL_CLOEXEC);
	if (e->ep < 0)
		return -errno;
	for (r = 1; r <= b->a.workers; r++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)r };
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

		e->fd[r] = fd;
		if (fd < 0)
			return -errno;
		base_sockbuf(fd, 1 << 20, 0);
		if (connect(fd, (const struct sockaddr *)&b->addr[r], sizeof(b->addr[r])) ||
		    epoll_ctl(e->ep, EPOLL_CTL_ADD, fd, &ev))
			return -errno;
	}
	return 0;
}

static int epl_send(struct base_ctx *b, int slot, const int *ranks, int cnt)
{
	struct epl *e = b->priv;
	int i, err = 0;

	for (i = 0; i < cnt; i++) {
		int r = ranks[i];

		/* A full send buffer loses the query; the timer resends it. */
		memcpy(e->query, base_qmsg(b, slot, r), sizeof(struct bench_msg));
		if (send(e->fd[r], e->query, (size_t)b->a.query_bytes, 0) < 0)
			err = -errno;
	}
	return err;
}

static int epl_poll(struct base_ctx *b, uint64_t deadline)
{
	struct epl *e = b->priv;

	for (;;) {
		uint64_t now = bench_now_ns(), left = deadline > now ? deadline - now : 0;
		struct timespec ts = { .tv_sec = (time_t)(left / 1000000000ull),
				       .tv_nsec = (long)(left % 1000000000ull) };
		int n = epoll_pwait2(e->ep, e->ev, MAX_EVENTS, &ts, NULL), i;

		if (n < 0)
			return errno == EINTR ? 0 : -errno;
		for (i = 0; i < n; i++) {
			int r = (int)e->ev[i].data.u32;

			for (;;) {
				ssize_t len = recv(e->fd[r], e->buf, sizeof(e->buf), 0);

				if (len < 0) {
					if (errno == EAGAIN || errno == EINTR || errno == ECONNREFUSED)
						break;
					return -errno;
				}
				base_rx(b, e->buf, (size_t)len, NULL, r);
			}
		}
		if (b->ndone || b->failed || n == 0 || bench_now_ns() >= deadline)
			return 0;
	}
}

static void epl_close(struct base_ctx *b)
{
	struct epl *e = b->priv;
	int r;

	if (!e)
		return;
	for (r = 1; e->fd && r <= b->a.workers; r++)
		if (e->fd[r] > 0)
			close(e->fd[r]);
	if (e->ep > 0)
		close(e->ep);
	free(e->fd);
	free(e->query);
	free(e);
	b->priv = NULL;
}

static const struct base_io epl_io = {
	.name = "base_epoll",
	.open = epl_open,
	.send = epl_send,
	.poll = epl_poll,
	.close = epl_close,
};

int main(int argc, char **argv)
{
	return base_main(argc, argv, &epl_io);
}
