// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * base_uring - io_uring baseline, batched: one unconnected UDP socket.
 * Scatter: one sendmsg SQE per worker (completions skipped on success),
 * submitted together with the wait in one io_uring_enter().  Gather: one
 * multishot recvmsg over a provided-buffer ring, armed once; buffers go
 * back to the ring as soon as an answer is summed, so the ring never runs
 * dry and never needs sgbpf's 2^16-buffer re-provisioning.  About one
 * system call per operation.
 *
 * The ring runs with SINGLE_ISSUER | COOP_TASKRUN (as libsgcoll's does;
 * DEFER_TASKRUN measured no better here, and less steady).  liburing 2.3.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <liburing.h>

#include "bench_base.h"
#include "bench_util.h"

#define SQ_ENTRIES	4096
#define CQ_ENTRIES	32768
#define NBUFS		4096	/* power of two */
#define BUF_SIZE	4096	/* recvmsg_out + name + largest answer */
#define BGID		7
#define TAG_RECV	1
#define TAG_SEND	2

struct uring {
	int fd;
	struct io_uring ring;
	bool ring_ok;
	struct io_uring_buf_ring *br;
	size_t br_size;
	unsigned char *bufs;
	struct msghdr rmsg;		/* template of the multishot recvmsg */
	struct msghdr *smsg;		/* [slots][F + 1] */
	struct iovec *siov;		/* [slots][F + 1][2] */
	bool armed;
	unsigned long long rearms;
};

static int arm(struct uring *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (!sqe) {
		io_uring_submit(&u->ring);
		sqe = io_uring_get_sqe(&u->ring);
		if (!sqe)
			return -EBUSY;
	}
	io_uring_prep_recvmsg_multishot(sqe, u->fd, &u->rmsg, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, TAG_RECV);
	u->armed = true;
	return 0;
}

static int uring_open(struct base_ctx *b)
{
	struct io_uring_params p = {
		.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER |
			 IORING_SETUP_COOP_TASKRUN,
		.cq_entries = CQ_ENTRIES,
	};
	struct io_uring_buf_reg reg = {};
	size_t per = (size_t)b->a.workers + 1;
	struct uring *u = calloc(1, sizeof(*u));
	unsigned i;
	int err;

	if (!u)
		return -ENOMEM;
	b->priv = u;
	u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (u->fd < 0)
		return -errno;
	base_sockbuf(u->fd, 64 << 20, 8 << 20);

	err = io_uring_queue_init_params(SQ_ENTRIES, &u->ring, &p);
	if (err == -EINVAL) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = CQ_ENTRIES;
		err = io_uring_queue_init_params(SQ_ENTRIES, &u->ring, &p);
	}
	if (err)
		return err;
	u->ring_ok = true;

	u->br_size = NBUFS * sizeof(struct io_uring_buf);
	u->br = mmap(NULL, u->br_size, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (u->br == MAP_FAILED) {
		u->br = NULL;
		return -ENOMEM;
	}
	u->bufs = aligned_alloc(4096, (size_t)NBUFS * BUF_SIZE);
	if (!u->bufs)
		return -ENOMEM;
	reg.ring_addr = (unsigned long)u->br;
	reg.ring_entries = NBUFS;
	reg.bgid = BGID;
	err = io_uring_register_buf_ring(&u->ring, &reg, 0);
	if (err)
		return err;
	io_uring_buf_ring_init(u->br);
	for (i = 0; i < NBUFS; i++)
		io_uring_buf_ring_add(u->br, u->bufs + (size_t)i * BUF_SIZE, BUF_SIZE, (unsigned short)i,
				      io_uring_buf_ring_mask(NBUFS), (int)i);
	io_uring_buf_ring_advance(u->br, NBUFS);

	u->rmsg.msg_namelen = sizeof(struct sockaddr_in);
	u->smsg = calloc((size_t)b->nslots * per, sizeof(*u->smsg));
	u->siov = calloc((size_t)b->nslots * per * 2, sizeof(*u->siov));
	if (!u->smsg || !u->siov)
		return -ENOMEM;
	return arm(u);
}

static int uring_send(struct base_ctx *b, int slot, const int *ranks, int cnt)
{
	struct uring *u = b->priv;
	int i;

	for (i = 0; i < cnt; i++) {
		int r = ranks[i];
		size_t k = (size_t)slot * (size_t)(b->a.workers + 1) + (size_t)r;
		struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

		if (!sqe) {
			io_uring_submit(&u->ring);
			sqe = io_uring_get_sqe(&u->ring);
			if (!sqe)
				return -EBUSY;
		}
		/* Stays valid until the slot is reused: the kernel may read it
		 * late if the send goes async. */
		u->siov[2 * k].iov_base = base_qmsg(b, slot, r);
		u->siov[2 * k].iov_len = sizeof(struct bench_msg);
		u->siov[2 * k + 1].iov_base = b->pad;
		u->siov[2 * k + 1].iov_len = b->pad_len;
		u->smsg[k] = (struct msghdr){
			.msg_name = &b->addr[r], .msg_namelen = sizeof(b->addr[r]),
			.msg_iov = &u->siov[2 * k], .msg_iovlen = b->pad_len ? 2 : 1,
		};
		io_uring_prep_sendmsg(sqe, u->fd, &u->smsg[k], 0);
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
		io_uring_sqe_set_data64(sqe, TAG_SEND);
	}
	return 0;
}

/* Handles every completion there is; returns how many. */
static unsigned reap(struct base_ctx *b, struct uring *u)
{
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0, recycled = 0;

	io_uring_for_each_cqe(&u->ring, head, cqe) {
		seen++;
		if (cqe->user_data == TAG_SEND) {
			b->send_err++;	/* only failures complete */
			continue;
		}
		if (!(cqe->flags & IORING_CQE_F_MORE))
			u->armed = false;
		if (cqe->res >= 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
			unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
			unsigned char *buf = u->bufs + (size_t)bid * BUF_SIZE;
			struct io_uring_recvmsg_out *o =
				io_uring_recvmsg_validate(buf, cqe->res, &u->rmsg);

			if (!o || (o->flags & MSG_TRUNC) || o->namelen != sizeof(struct sockaddr_in)) {
				b->bad++;
			} else {
				struct sockaddr_in from;

				memcpy(&from, io_uring_recvmsg_name(o), sizeof(from));
				base_rx(b, io_uring_recvmsg_payload(o, &u->rmsg),
					io_uring_recvmsg_payload_length(o, cqe->res, &u->rmsg),
					&from, 0);
			}
			io_uring_buf_ring_add(u->br, buf, BUF_SIZE, (unsigned short)bid,
					      io_uring_buf_ring_mask(NBUFS), (int)recycled++);
		}
	}
	io_uring_buf_ring_advance(u->br, (int)recycled);
	io_uring_cq_advance(&u->ring, seen);
	return seen;
}

static int uring_poll(struct base_ctx *b, uint64_t deadline)
{
	struct uring *u = b->priv;

	for (;;) {
		uint64_t now = bench_now_ns(), left = deadline > now ? deadline - now : 0;
		struct __kernel_timespec ts = { .tv_sec = (long long)(left / 1000000000ull),
						.tv_nsec = (long long)(left % 1000000000ull) };
		struct io_uring_cqe *cqe;
		int err;

		if (!u->armed) {
			/* ENOBUFS ended the multishot: the ring was empty. */
			u->rearms++;
			err = arm(u);
			if (err)
				return err;
		}
		err = io_uring_submit_and_wait_timeout(&u->ring, &cqe, 1, &ts, NULL);
		if (err < 0 && err != -ETIME && err != -EINTR && err != -EAGAIN && err != -EBUSY)
			return err;
		reap(b, u);
		if (b->ndone || b->failed || bench_now_ns() >= deadline)
			return 0;
	}
}

static void uring_close(struct base_ctx *b)
{
	struct uring *u = b->priv;

	if (!u)
		return;
	if (u->ring_ok)
		io_uring_queue_exit(&u->ring);
	if (u->fd > 0)
		close(u->fd);
	if (u->br)
		munmap(u->br, u->br_size);
	free(u->bufs);
	free(u->smsg);
	free(u->siov);
	if (u->rearms)
		fprintf(stderr, "base_uring: multishot re-armed %llu times\n", u->rearms);
	free(u);
	b->priv = NULL;
}

static const struct base_io uring_io = {
	.name = "base_uring",
	.open = uring_open,
	.send = uring_send,
	.poll = uring_poll,
	.close = uring_close,
};

int main(int argc, char **argv)
{
	return base_main(argc, argv, &uring_io);
}
