// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * base_naive - sgbpf's naive baseline: blocking I/O, one connected
 * UDP socket per worker.  Scatter: send() on every worker's socket.
 * Gather: blocking recv() on each worker's socket in turn, for the oldest
 * unfinished operation (answers to other operations read on the way count
 * for those).  2F system calls per operation.
 *
 * The blocking recv() wakes up every millisecond (SO_RCVTIMEO) so that the
 * frame's retransmission timers run; bench_base.h has the rest.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "bench_base.h"
#include "bench_util.h"

struct naive {
	int *fd;			/* [F + 1], connected to rank r */
	unsigned char buf[8192];
	unsigned char *query;		/* header + padding, rebuilt per send */
};

static int naive_open(struct base_ctx *b)
{
	struct timeval tick = { .tv_usec = 1000 };
	struct naive *n = calloc(1, sizeof(*n));
	int r;

	if (!n)
		return -ENOMEM;
	b->priv = n;
	n->fd = calloc((size_t)b->a.workers + 1, sizeof(*n->fd));
	n->query = calloc(1, (size_t)b->a.query_bytes);
	if (!n->fd || !n->query)
		return -ENOMEM;
	for (r = 1; r <= b->a.workers; r++) {
		int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		n->fd[r] = fd;
		if (fd < 0)
			return -errno;
		/* Room for a window of answers on every socket. */
		base_sockbuf(fd, 1 << 20, 0);
		if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof(tick)) ||
		    connect(fd, (const struct sockaddr *)&b->addr[r], sizeof(b->addr[r])))
			return -errno;
	}
	return 0;
}

static int naive_send(struct base_ctx *b, int slot, const int *ranks, int cnt)
{
	struct naive *n = b->priv;
	int i, err = 0;

	for (i = 0; i < cnt; i++) {
		int r = ranks[i];

		memcpy(n->query, base_qmsg(b, slot, r), sizeof(struct bench_msg));
		if (send(n->fd[r], n->query, (size_t)b->a.query_bytes, 0) < 0)
			err = -errno;
	}
	return err;
}

static struct base_op *oldest(struct base_ctx *b)
{
	struct base_op *o = NULL;
	int i;

	for (i = 0; i < b->nslots; i++)
		if (b->ops[i].id && !b->ops[i].complete && (!o || b->ops[i].t0 < o->t0))
			o = &b->ops[i];
	return o;
}

static int naive_poll(struct base_ctx *b, uint64_t deadline)
{
	struct naive *n = b->priv;
	struct base_op *op = oldest(b);
	int r;

	if (!op)
		return 0;
	for (r = 1; r <= b->a.workers; r++) {
		while (!op->seen[r] && !op->complete) {
			ssize_t len = recv(n->fd[r], n->buf, sizeof(n->buf), 0);

			if (len >= 0) {
				base_rx(b, n->buf, (size_t)len, NULL, r);
				if (b->ndone || b->failed)
					return 0;
				continue;
			}
			/* ECONNREFUSED: an ICMP error from a host without a
			 * responder; the retransmission timer handles it. */
			if (errno != EAGAIN && errno != EINTR && errno != ECONNREFUSED)
				return -errno;
			if (bench_now_ns() >= deadline)
				return 0;
		}
	}
	return 0;
}

static void naive_close(struct base_ctx *b)
{
	struct naive *n = b->priv;
	int r;

	if (!n)
		return;
	for (r = 1; n->fd && r <= b->a.workers; r++)
		if (n->fd[r] > 0)
			close(n->fd[r]);
	free(n->fd);
	free(n->query);
	free(n);
	b->priv = NULL;
}

static const struct base_io naive_io = {
	.name = "base_naive",
	.open = naive_open,
	.send = naive_send,
	.poll = naive_poll,
	.close = naive_close,
};

int main(int argc, char **argv)
{
	return base_main(argc, argv, &naive_io);
}
