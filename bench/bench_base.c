// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The measurement frame of the baseline coordinators: arguments, request
 * table, validation, retransmission, verification and the two loops.
 * See bench_base.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "bench_base.h"
#include "bench_util.h"

#define BACKOFF_MAX 6

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s --subnet A.B --hosts H --workers F [options]\n"
		"  --port P           rank r answers at A.B.1.h:(P + r) (default %d)\n"
		"  --count N          int32 per answer (default %d)\n"
		"  --query-bytes N    query size, zero-padded (default: the answer's size)\n"
		"  --mode lat|tput    one at a time, or --window in flight (default lat)\n"
		"  --ops N            measured operations (default 5000 lat, 8000 tput)\n"
		"  --warmup N         unmeasured operations first (default 200)\n"
		"  --window W         operations in flight in tput mode (default 16)\n"
		"  --sample N         throughput sample every N completions (default 200)\n"
		"  --rto-us U         first retransmission after U us of silence (default 4000)\n"
		"  --op-timeout-ms T  an operation not complete after T ms fails the run (default 5000)\n"
		"  --max-s S          give up after S seconds in all (default 600)\n",
		prog, BENCH_SIMPLE_PORT, BENCH_COUNT);
}

static int parse(struct base_args *a, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "subnet", required_argument, NULL, 's' },
		{ "hosts", required_argument, NULL, 'H' },
		{ "workers", required_argument, NULL, 'F' },
		{ "port", required_argument, NULL, 'p' },
		{ "count", required_argument, NULL, 'c' },
		{ "query-bytes", required_argument, NULL, 'q' },
		{ "mode", required_argument, NULL, 'm' },
		{ "ops", required_argument, NULL, 'n' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "window", required_argument, NULL, 'W' },
		{ "sample", required_argument, NULL, 'S' },
		{ "rto-us", required_argument, NULL, 'r' },
		{ "op-timeout-ms", required_argument, NULL, 'T' },
		{ "max-s", required_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int opt;

	*a = (struct base_args){
		.port = BENCH_SIMPLE_PORT, .count = BENCH_COUNT, .ops = -1, .warmup = 200,
		.window = 16, .sample = 200, .rto_us = 4000, .op_timeout_ms = 5000, .max_s = 600,
	};
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': a->subnet = optarg; break;
		case 'H': a->hosts = atoi(optarg); break;
		case 'F': a->workers = atoi(optarg); break;
		case 'p': a->port = atoi(optarg); break;
		case 'c': a->count = atoi(optarg); break;
		case 'q': a->query_bytes = atoi(optarg); break;
		case 'm':
			if (strcmp(optarg, "lat") && strcmp(optarg, "tput")) {
				fprintf(stderr, "%s: --mode is lat or tput\n", argv[0]);
				return -1;
			}
			a->tput = !strcmp(optarg, "tput");
			break;
		case 'n': a->ops = atol(optarg); break;
		case 'w': a->warmup = atol(optarg); break;
		case 'W': a->window = atoi(optarg); break;
		case 'S': a->sample = atoi(optarg); break;
		case 'r': a->rto_us = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'T': a->op_timeout_ms = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'M': a->max_s = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'h': usage(stdout, argv[0]); exit(0);
		default: usage(stderr, argv[0]); return -1;
		}
	}
	if (a->ops < 0)
		a->ops = a->tput ? 8000 : 5000;
	if (!a->query_bytes)
		a->query_bytes = (int)sizeof(struct bench_msg) + 4 * a->count;
	if (!a->tput)
		a->window = 1;
	if (!a->subnet || a->hosts < 1 || a->hosts > 254 || a->workers < 1 ||
	    a->workers > BENCH_MAX_WORKERS || a->port < 1 || a->port + a->workers > 65535 ||
	    a->count < 1 || a->count > BENCH_MAX_ELEMS || a->ops < 1 ||
	    a->query_bytes < (int)sizeof(struct bench_msg) || a->query_bytes > 8192 || a->warmup < 0 ||
	    a->window < 1 || a->window > 256 || a->sample < 1 || a->rto_us < 100 ||
	    a->op_timeout_ms < 1 || a->max_s < 1) {
		usage(stderr, argv[0]);
		return -1;
	}
	return 0;
}

static void fail(struct base_ctx *b, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(struct base_ctx *b, int err, const char *fmt, ...)
{
	va_list ap;

	if (b->failed)
		return;
	b->failed = err ? err : EIO;
	va_start(ap, fmt);
	vsnprintf(b->why, sizeof(b->why), fmt, ap);
	va_end(ap);
}

void base_sockbuf(int fd, int rcv, int snd)
{
	if (rcv && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	if (snd && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof(snd)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd));
}

int base_rank_of(const struct base_ctx *b, const struct sockaddr_in *from)
{
	int r = (int)ntohs(from->sin_port) - b->a.port;

	if (r < 1 || r > b->a.workers || from->sin_addr.s_addr != b->addr[r].sin_addr.s_addr)
		return 0;
	return r;
}

static struct base_op *find_op(struct base_ctx *b, uint32_t id, int *slot)
{
	int i;

	for (i = 0; i < b->nslots; i++) {
		if (b->ops[i].id == id && id) {
			*slot = i;
			return &b->ops[i];
		}
	}
	return NULL;
}

static bool verify(struct base_ctx *b, struct base_op *op)
{
	uint32_t k = 2 * op->id + 1, f = (uint32_t)b->a.workers;
	int i;

	for (i = 0; i < b->a.count; i++) {
		uint32_t want = b->rank_sum + f * ((uint32_t)(i + 1) * k);

		if (op->sum[i] != want) {
			fail(b, EBADMSG, "request %u: element %d of the sum is %u, expected %u", op->id,
			     i, op->sum[i], want);
			return false;
		}
	}
	return true;
}

void base_rx(struct base_ctx *b, const void *buf, size_t len, const struct sockaddr_in *from,
	     int rank_hint)
{
	const unsigned char *p = buf;
	struct bench_msg m;
	struct base_op *op;
	int slot, r, i;

	if (len != sizeof(m) + (size_t)b->a.count * 4) {
		b->bad++;
		return;
	}
	memcpy(&m, p, sizeof(m));
	r = from ? base_rank_of(b, from) : rank_hint;
	if (m.magic != BENCH_MAGIC || !(m.flags & BENCH_F_RESP) || m.count != b->a.count ||
	    !r || m.rank != r) {
		b->bad++;
		return;
	}
	op = find_op(b, m.id, &slot);
	if (!op || op->complete) {
		b->stale++;	/* an answer to a finished request: sent twice */
		return;
	}
	if (op->seen[r]) {
		b->dup++;
		return;
	}
	op->seen[r] = 1;
	p += sizeof(m);
	for (i = 0; i < b->a.count; i++) {
		uint32_t v;

		memcpy(&v, p + 4 * i, 4);
		op->sum[i] += v;
	}
	op->t_last = bench_now_ns();
	if (++op->nrecv == b->a.workers) {
		uint64_t rtt;

		op->t_done = op->t_last;
		op->complete = true;
		rtt = op->t_done - op->t0;
		b->srtt = b->srtt ? b->srtt - b->srtt / 8 + rtt / 8 : rtt;
		if (verify(b, op))
			b->done[b->ndone++] = slot;
	}
}

/* The first retransmission delay: the configured RTO, or twice the
 * smoothed operation latency if that is longer. */
static uint64_t rto_ns(const struct base_ctx *b)
{
	uint64_t rto = (uint64_t)b->a.rto_us * 1000ull;

	return 2 * b->srtt > rto ? 2 * b->srtt : rto;
}

static int op_start(struct base_ctx *b, int slot)
{
	struct base_op *op = &b->ops[slot];
	int r;

	if (!++b->next_id)
		++b->next_id;
	op->id = b->next_id;
	op->complete = false;
	op->nrecv = 0;
	memset(op->seen, 0, (size_t)b->a.workers + 1);
	memset(op->sum, 0, (size_t)b->a.count * 4);
	for (r = 1; r <= b->a.workers; r++)
		*base_qmsg(b, slot, r) = (struct bench_msg){
			.magic = BENCH_MAGIC, .id = op->id, .rank = (uint16_t)r,
			.count = (uint16_t)b->a.count,
		};
	op->t0 = op->t_last = bench_now_ns();
	op->backoff = 0;
	op->t_timer = op->t0 + rto_ns(b);
	return b->io->send(b, slot, b->ranks, b->a.workers);
}

/* Retransmissions and operation timeouts; returns the next deadline. */
static uint64_t timers(struct base_ctx *b, uint64_t now)
{
	uint64_t next = now + 1000000000ull;
	int i, r, n;

	for (i = 0; i < b->nslots; i++) {
		struct base_op *op = &b->ops[i];
		uint64_t wait;

		if (!op->id || op->complete)
			continue;
		if (now - op->t0 > b->a.op_timeout_ms * 1000000ull) {
			fail(b, ETIMEDOUT, "request %u: %d of %d answers after %u ms (%llu resent)",
			     op->id, op->nrecv, b->a.workers, b->a.op_timeout_ms, b->retx);
			return now;
		}
		wait = rto_ns(b) << op->backoff;
		if (now >= op->t_timer) {
			if (now - op->t_last >= wait) {
				int *missing = b->ranks + b->a.workers + 1;

				for (n = 0, r = 1; r <= b->a.workers; r++)
					if (!op->seen[r])
						missing[n++] = r;
				b->retx += (unsigned long long)n;
				if (n && b->io->send(b, i, missing, n))
					b->send_err++;
				if (op->backoff < BACKOFF_MAX)
					op->backoff++;
				op->t_timer = now + (rto_ns(b) << op->backoff);
			} else {
				op->t_timer = op->t_last + wait;
			}
		}
		if (op->t_timer < next)
			next = op->t_timer;
	}
	return next;
}

static int run_lat(struct base_ctx *b, uint64_t *lat, struct bench_result *res)
{
	uint64_t cpu0 = 0, stop = bench_now_ns() + b->a.max_s * 1000000000ull;
	long k, total = b->a.warmup + b->a.ops;

	for (k = 0; k < total && !b->failed; k++) {
		struct base_op *op = &b->ops[0];
		uint64_t deadline;

		if (k == b->a.warmup)
			cpu0 = bench_cpu_ns();
		b->ndone = 0;
		if (op_start(b, 0))
			b->send_err++;
		deadline = op->t_timer;
		while (!b->failed && !b->ndone) {
			uint64_t now;
			int err = b->io->poll(b, deadline);

			if (err) {
				fail(b, -err, "%s: receive failed: %s", b->io->name, strerror(-err));
				break;
			}
			now = bench_now_ns();
			if (b->ndone)
				break;
			if (now > stop) {
				fail(b, ETIMEDOUT, "run longer than --max-s %u", b->a.max_s);
				break;
			}
			deadline = timers(b, now);
		}
		if (b->failed)
			break;
		if (k >= b->a.warmup)
			lat[k - b->a.warmup] = op->t_done - op->t0;
		op->id = 0;
	}
	if (b->failed)
		return -1;
	res->cpu_us_per_op = (double)(bench_cpu_ns() - cpu0) / 1e3 / (double)b->a.ops;
	bench_lat_summary(res, lat, (size_t)b->a.ops);
	return 0;
}

static int run_tput(struct base_ctx *b, uint64_t *lat, struct bench_result *res)
{
	long total = b->a.warmup + b->a.ops, launched = 0, completed = 0, nstamps = 0;
	uint64_t *stamps = calloc((size_t)(b->a.ops / b->a.sample + 1), sizeof(*stamps));
	uint64_t t0 = 0, cpu0 = 0, t_end = 0, deadline, stop;
	int i;

	if (!stamps)
		return -1;
	stop = bench_now_ns() + b->a.max_s * 1000000000ull;
	if (b->a.warmup == 0) {
		t0 = bench_now_ns();
		cpu0 = bench_cpu_ns();
	}
	for (i = 0; i < b->nslots && launched < total; i++, launched++)
		if (op_start(b, i))
			b->send_err++;
	deadline = bench_now_ns() + rto_ns(b);
	while (!b->failed && completed < total) {
		uint64_t now;
		int err = b->io->poll(b, deadline);

		if (err) {
			fail(b, -err, "%s: receive failed: %s", b->io->name, strerror(-err));
			break;
		}
		for (i = 0; i < b->ndone; i++) {
			struct base_op *op = &b->ops[b->done[i]];

			completed++;
			if (completed > b->a.warmup)
				lat[completed - b->a.warmup - 1] = op->t_done - op->t0;
			if (completed == b->a.warmup) {
				t0 = op->t_done;
				cpu0 = bench_cpu_ns();
			} else if (completed > b->a.warmup &&
				   (completed - b->a.warmup) % b->a.sample == 0) {
				stamps[nstamps++] = op->t_done;
			}
			t_end = op->t_done;
			op->id = 0;
			if (launched < total) {
				if (op_start(b, b->done[i]))
					b->send_err++;
				launched++;
			}
		}
		b->ndone = 0;
		now = bench_now_ns();
		if (now > stop)
			fail(b, ETIMEDOUT, "run longer than --max-s %u", b->a.max_s);
		deadline = timers(b, now);
	}
	if (!b->failed) {
		res->cpu_us_per_op = (double)(bench_cpu_ns() - cpu0) / 1e3 / (double)b->a.ops;
		bench_tput_summary(res, stamps, (size_t)nstamps, t0, b->a.sample, b->a.ops, t_end);
		bench_lat_summary(res, lat, (size_t)b->a.ops);
	}
	free(stamps);
	return b->failed ? -1 : 0;
}

static int setup(struct base_ctx *b)
{
	size_t F = (size_t)b->a.workers;
	struct rlimit rl;
	unsigned a0, a1;
	int r, i;

	if (sscanf(b->a.subnet, "%u.%u", &a0, &a1) != 2 || a0 > 255 || a1 > 255) {
		fprintf(stderr, "%s: bad --subnet '%s' (want A.B)\n", b->io->name, b->a.subnet);
		return -1;
	}
	/* The naive and epoll baselines hold a socket per worker. */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < F + 256) {
		rl.rlim_cur = rl.rlim_max < F + 256 ? rl.rlim_max : F + 256;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	b->nslots = b->a.window;
	b->addr = calloc(F + 1, sizeof(*b->addr));
	b->ops = calloc((size_t)b->nslots, sizeof(*b->ops));
	b->qmsgs = calloc((size_t)b->nslots * (F + 1), sizeof(*b->qmsgs));
	b->done = calloc((size_t)b->nslots, sizeof(*b->done));
	b->ranks = calloc(2 * (F + 1), sizeof(*b->ranks));
	b->pad_len = (size_t)b->a.query_bytes - sizeof(struct bench_msg);
	b->pad = calloc(1, b->pad_len + 1);
	if (!b->addr || !b->ops || !b->qmsgs || !b->done || !b->ranks || !b->pad)
		return -1;
	for (i = 0; i < b->nslots; i++) {
		b->ops[i].seen = calloc(F + 1, 1);
		b->ops[i].sum = calloc((size_t)b->a.count, 4);
		if (!b->ops[i].seen || !b->ops[i].sum)
			return -1;
	}
	for (r = 1; r <= b->a.workers; r++) {
		unsigned h = (unsigned)((r - 1) % b->a.hosts + 1);

		b->addr[r].sin_family = AF_INET;
		b->addr[r].sin_port = htons((uint16_t)(b->a.port + r));
		b->addr[r].sin_addr.s_addr = htonl(a0 << 24 | a1 << 16 | 1u << 8 | h);
		b->rank_sum += bench_rank_term((uint32_t)r);
		b->ranks[r - 1] = r;
	}
	return 0;
}

int base_main(int argc, char **argv, const struct base_io *io)
{
	struct base_ctx b = { .io = io };
	struct bench_result res = { .contender = io->name };
	char workload[32], extra[160];
	uint64_t *lat;
	int rc;

	if (parse(&b.a, argc, argv))
		return 2;
	if (setup(&b)) {
		fprintf(stderr, "%s: setup failed (out of memory or bad arguments)\n", io->name);
		return 1;
	}
	lat = calloc((size_t)b.a.ops, sizeof(*lat));
	if (!lat)
		return 1;
	rc = io->open(&b);
	if (rc) {
		fprintf(stderr, "%s: cannot set up the I/O: %s\n", io->name, strerror(-rc));
		return 1;
	}
	rc = b.a.tput ? run_tput(&b, lat, &res) : run_lat(&b, lat, &res);
	io->close(&b);

	snprintf(workload, sizeof(workload), "sg%d", b.a.count);
	snprintf(extra, sizeof(extra), "hosts=%d query_bytes=%d stale=%llu bad=%llu send_err=%llu%s%s",
		 b.a.hosts, b.a.query_bytes, b.stale, b.bad, b.send_err, b.failed ? " error=" : "",
		 b.failed ? strerrorname_np(b.failed) : "");
	res.workload = workload;
	res.mode = b.a.tput ? "tput" : "lat";
	res.fanout = b.a.workers;
	res.window = b.nslots;
	res.ops = b.a.ops;
	res.retx = b.retx;
	res.dup = b.dup + b.stale;
	res.verified = rc == 0 && !b.failed;
	if (b.failed) {
		int i, missing = 0;

		for (i = 0; i < b.nslots; i++)
			if (b.ops[i].id && !b.ops[i].complete)
				missing += b.a.workers - b.ops[i].nrecv;
		res.lost = (unsigned long long)missing;
		fprintf(stderr, "%s: FAILED: %s\n", io->name, b.why);
	}
	res.extra = extra;
	bench_print_result(&res);
	for (int i = 0; i < b.nslots; i++) {
		free(b.ops[i].seen);
		free(b.ops[i].sum);
	}
	free(b.ops);
	free(b.addr);
	free(b.qmsgs);
	free(b.done);
	free(b.ranks);
	free(b.pad);
	free(lat);
	return res.verified ? 0 : 1;
}
