// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Communicator life cycle: sgc_init() validates the configuration, opens
 * the socket and ring, and joins the job; sgc_finalize() says goodbye so
 * that the coordinator keeps answering retransmission requests until
 * every worker is done, then releases everything.
 */
#define _GNU_SOURCE	/* ppoll */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coll.h"
#include "mac.h"
#include "coord.h"
#include "progress.h"
#include "rendezvous.h"
#include "transport.h"
#include "sg.h"
#include "worker.h"

#define RTO_MAX_MS 250
#define BYE_WAIT_MS 2000

static unsigned iface_mtu(const char *ifname)
{
	struct ifreq ifr = {};
	int fd, mtu = 1500;

	if (!ifname || !ifname[0])
		return 1500;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 1500;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0)
		mtu = ifr.ifr_mtu;
	close(fd);
	return (unsigned)mtu;
}

void comm_set_handlers(struct sgc_comm *c)
{
	c->io.rx = engine_rx;
	c->rxt.unjoined = rdv_handle;
	c->rxt.early[SGC_MSG_HELLO] = rdv_handle;
	c->rxt.early[SGC_MSG_WELCOME] = rdv_handle;
	/* Late, after the WELCOME: nothing to do, but not a stranger's. */
	c->rxt.early[SGC_MSG_WAIT] = rdv_handle;
	if (c->rank == 0) {
		/* A READY confirms a rank's claim, before and after the join. */
		c->rxt.early[SGC_MSG_READY] = rdv_handle;
		coord_rx_table(&c->rxt);
		c->on_kernel_result = coord_kernel_result;
	} else {
		worker_rx_table(&c->rxt);
	}
	mesh_rx_table(&c->rxt);
}

static void *bpf_load_thread(void *arg)
{
	struct sgc_comm *c = arg;

	c->bpf_err = bpf_path_load(c);
	if (c->bpf_err)
		snprintf(c->bpf_why, sizeof(c->bpf_why), "%s", sgc_last_error());
	return NULL;
}

/*
 * The load runs in a thread of its own.  Completions for this thread's
 * other communicators, which may be receiving meanwhile, queue io_uring
 * task work on it that looks like a pending signal: the verifier gives up
 * with EAGAIN when it sees one during a long verification.  A new thread
 * has no such work.
 */
static void bpf_load(struct sgc_comm *c)
{
	pthread_t t;

	if (pthread_create(&t, NULL, bpf_load_thread, c)) {
		bpf_load_thread(c);
		return;
	}
	pthread_join(t, NULL);
}

int comm_start(struct sgc_comm *c)
{
	bool kernel_bulk;
	int err;

	c->rank = c->cfg.rank;
	c->world = c->cfg.world;
	c->rtt.timeout_ns = c->cfg.timeout_ms * 1000000ULL;
	c->rtt.rto_ns = c->cfg.rto_us * 1000ULL;
	c->rtt.rto_max_ns = RTO_MAX_MS * 1000000ULL;

	c->peers = calloc((size_t)c->world, sizeof(*c->peers));
	if (!c->peers)
		return sgc_err(-ENOMEM, "sgc_init: out of memory for %d peers", c->world);
	c->self = c->rank == 0 ? c->cfg.coord : c->cfg.bind;
	/* Every datagram's tag comes out of the chunk's room. */
	if (c->rank == 0)
		c->chunk_bytes = sgc_chunk_bytes_for_mtu(iface_mtu(c->cfg.ifname) -
							 (c->mac ? SGC_MAC_TAG_SIZE : 0));
	comm_set_handlers(c);
	if (c->rank == 0) {
		c->job_id = random_job_id();
		if (c->world > 1 && c->cfg.accel != SGC_ACCEL_OFF)
			bpf_load(c);
	}
	/*
	 * Whether the kernel takes the contributions of allreduce and the
	 * like (SGC_ACCEL=ebpf, or a custom reduction), not only one-datagram
	 * scatter-gather answers.  Then the socket gets no GRO, as the tc
	 * programs read one datagram per skb (a result built in XDP carries
	 * metadata, which GRO never merges with a datagram that has none),
	 * and PULLs are paced by the kernel's budget, not the socket's.
	 */
	kernel_bulk = c->rank == 0 && kernel_reduces_kind(c, SGC_COLL_ALLREDUCE);
	c->io.no_gro = kernel_bulk;
	err = io_open(c);
	if (err)
		return err;
	if (c->rank == 0)
		pull_pacing(c, kernel_bulk);
	return 0;
}

int comm_join(struct sgc_comm *c)
{
	int err;

	err = c->rank == 0 ? rdv_coordinator(c) : rdv_worker(c);
	if (err)
		return err;
	pr_debug("rank %d of %d joined job %016llx: %u-byte chunks, push credit %u\n", c->rank,
		 c->world, (unsigned long long)c->job_id, c->chunk_bytes, c->pace.push_credit);
	return 0;
}

int sgc_init(const struct sgc_config *cfg, sgc_comm **out)
{
	struct sgc_comm *c;
	int err;

	sgc_err_clear();
	if (!out)
		return sgc_err(-EINVAL, "sgc_init: out must not be NULL");
	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return sgc_err(-ENOMEM, "sgc_init: out of memory");
	c->io.fd = -1;
	err = sgc_cfg_validate(cfg, &c->cfg);
	if (err)
		goto fail;
	if (c->cfg.keyed) {
		c->mac = malloc(sizeof(*c->mac));
		if (!c->mac) {
			err = sgc_err(-ENOMEM, "sgc_init: out of memory for the job key");
			goto fail;
		}
		sgc_mac_derive(c->cfg.key, c->mac);
		explicit_bzero(c->cfg.key, sizeof(c->cfg.key));
	}
	err = comm_start(c);
	if (!err)
		err = comm_join(c);
	if (err)
		goto fail;
	*out = c;
	return 0;
fail:
	c->joined = false;
	sgc_finalize(c);
	return err;
}

int sgc_init_env(sgc_comm **out)
{
	/* sz is read: uninitialised, it could make a partial fill. */
	struct sgc_config cfg = { .sz = sizeof(cfg) };
	int err;

	if (out)
		*out = NULL;
	err = sgc_config_from_env(&cfg);
	if (err)
		return err;
	return sgc_init(&cfg, out);
}

/* A HELLO to a coordinator that is finalizing: every worker of this job
 * has joined (its READY came back before sgc_init() returned), so it comes
 * from the next job on this port, which that job's coordinator will
 * answer.  Answered here, its worker would be told that its rank is taken
 * or its world size wrong. */
static void hello_next_job(struct sgc_comm *c, const struct sgc_rx *rx)
{
	c->st.foreign++;
}

/*
 * After sharded collectives the coordinator answers the workers' BYEs only
 * once every worker has said it (coord.c): until then a worker may still
 * be asked to acknowledge a peer's last chunks again.  Send the answers,
 * then stay a few retransmission delays for BYEs whose answer was lost.
 */
static void bye_all(struct sgc_comm *c)
{
	uint64_t until = now_ns() + 4 * rto_now(&c->rtt);
	struct sgc_hdr a;
	int r;

	for (r = 1; r < c->world; r++) {
		sgc_hdr_init(&a, SGC_MSG_BYE_ACK, c->job_id);
		a.rank = (uint16_t)r;
		send_to_rank(c, &a, r);
	}
	while (now_ns() < until)
		if (engine_progress(c, until))
			break;
}

struct comm_bye {
	uint64_t deadline, next, gap;
	int left;		/* coordinator: workers that have not said it */
	bool done;
};

/*
 * Saying goodbye, in steps, so that several communicators can say it at
 * once (comm_goodbye_all()).  A worker says it is done until the
 * coordinator acknowledges; if every BYE_ACK is lost the coordinator has
 * most likely left already, so it does not wait out the whole timeout for
 * it.  The coordinator waits for every worker's BYE, at most the timeout.
 */
static void bye_start(struct sgc_comm *c, struct comm_bye *b)
{
	uint64_t now = now_ns();

	b->deadline = now + c->rtt.timeout_ns;
	b->next = 0;
	b->gap = c->rtt.rto_ns;
	b->left = 0;
	b->done = false;
	if (c->rank != 0)
		b->deadline = min_u64(b->deadline, now + BYE_WAIT_MS * 1000000ULL);
	else
		c->rxt.early[SGC_MSG_HELLO] = hello_next_job;
}

/* Send what is due; true once @c is done saying goodbye.  b->next is
 * when to look again. */
static bool bye_step(struct sgc_comm *c, struct comm_bye *b, uint64_t now)
{
	struct sgc_hdr h;
	int r;

	if (c->rank != 0) {
		if (c->bye_acked || c->dead || now >= b->deadline)
			return true;
		if (now >= b->next) {
			sgc_hdr_init(&h, SGC_MSG_BYE, c->job_id);
			h.rank = (uint16_t)c->rank;
			h.aux = c->colls.base;
			send_hdr(c, &h, &c->cfg.coord);
			b->next = now + b->gap;
			b->gap = min_u64(b->gap * 2, c->rtt.rto_max_ns);
		}
		b->next = min_u64(b->next, b->deadline);
		return false;
	}
	for (b->left = 0, r = 1; r < c->world; r++)
		b->left += !c->peers[r].bye;
	b->next = b->deadline;
	return !b->left || now >= b->deadline;
}

static void bye_finish(struct sgc_comm *c, struct comm_bye *b)
{
	if (c->rank == 0 && c->mesh.used)
		bye_all(c);
	io_flush(c);
	if (c->rank == 0 && b->left)
		pr_debug("coordinator finalized with %d workers not yet finalized\n", b->left);
}

void comm_sleep(struct sgc_comm **v, int n, uint64_t until)
{
	struct pollfd inline_p[8], *p = inline_p;
	uint64_t now = now_ns(), wait = until > now ? until - now : 0;
	struct timespec ts;
	int i;

	if (n > (int)(sizeof(inline_p) / sizeof(inline_p[0]))) {
		p = calloc((size_t)n, sizeof(*p));
		if (!p)
			return;	/* the caller's loop goes round without sleeping */
	}
	for (i = 0; i < n; i++) {
		if (v[i]->cfg.waitmode == SGC_WAITMODE_BUSYPOLL)
			wait = 0;
		p[i].fd = v[i]->io.ring.ring_fd;
		p[i].events = POLLIN;
		p[i].revents = 0;
	}
	ts.tv_sec = (time_t)(wait / 1000000000ULL);
	ts.tv_nsec = (long)(wait % 1000000000ULL);
	ppoll(p, (nfds_t)n, &ts, NULL);	/* EINTR: the caller's loop goes round */
	if (p != inline_p)
		free(p);
}

static void say_goodbye(struct sgc_comm *c)
{
	struct comm_bye b;

	bye_start(c, &b);
	while (!bye_step(c, &b, now_ns()))
		if (engine_progress(c, b.next))
			break;
	bye_finish(c, &b);
}

/*
 * Several communicators say goodbye at once, each driven while it has
 * not, then are finalized without saying it again.  One after the other,
 * each waiting for its peers, the coordinator of the next one could have
 * left by the time a rank got there: after a worker was lost, kshard.c's
 * 8 groups at 9 ranks took 5 to 17 s to finalize with a 3 s timeout, 2 s
 * more for each group whose coordinator was gone.
 */
void comm_goodbye_all(struct sgc_comm **v, int n)
{
	struct comm_bye *b = calloc((size_t)n, sizeof(*b));
	int i, left;

	if (!b) {
		for (i = 0; i < n; i++)
			sgc_finalize(v[i]);
		return;
	}
	for (i = 0; i < n; i++) {
		b[i].done = !(v[i]->joined && v[i]->io.ring_ok);
		if (!b[i].done)
			bye_start(v[i], &b[i]);
	}
	do {
		uint64_t now = now_ns(), next = now + 1000000000ULL;

		for (left = 0, i = 0; i < n; i++) {
			if (b[i].done)
				continue;
			if (engine_progress(v[i], 0) || bye_step(v[i], &b[i], now_ns())) {
				b[i].done = true;
				bye_finish(v[i], &b[i]);
				continue;
			}
			io_flush(v[i]);
			next = min_u64(next, b[i].next);
			left++;
		}
		if (left)
			comm_sleep(v, n, next);
	} while (left);
	for (i = 0; i < n; i++) {
		v[i]->joined = false;	/* said */
		sgc_finalize(v[i]);
	}
	free(b);
}

void sgc_finalize(sgc_comm *c)
{
	if (!c)
		return;
	if (c->kshard)
		c->kshard->close(c);
	if (c->joined && c->io.ring_ok)
		say_goodbye(c);
	pr_debug("rank %d: retransmission delay %llu us (srtt %llu us, rttvar %llu us, %llu samples)\n",
		 c->rank, (unsigned long long)(rto_now(&c->rtt) / 1000),
		 (unsigned long long)(c->rtt.srtt_ns / 1000), (unsigned long long)(c->rtt.rttvar_ns / 1000),
		 (unsigned long long)c->rtt.samples);
	bpf_path_close(c);
	sg_free(c);
	coll_free_all(c);
	mesh_free_all(c);
	io_close(c);
	free(c->peers);
	if (c->mac)
		explicit_bzero(c->mac, sizeof(*c->mac));
	explicit_bzero(c->cfg.key, sizeof(c->cfg.key));
	free(c->mac);
	free(c);
}

int sgc_rank(const sgc_comm *c)
{
	return c ? c->rank : -EINVAL;
}

int sgc_world_size(const sgc_comm *c)
{
	return c ? c->world : -EINVAL;
}

int sgc_accelerated(const sgc_comm *c)
{
	return c && c->bpf ? 1 : 0;
}

int sgc_fd(const sgc_comm *c)
{
	return c ? c->io.ring.ring_fd : -EINVAL;
}

int sgc_get_stats(const sgc_comm *c, struct sgc_stats *st, size_t sz)
{
	if (!c || !st)
		return sgc_err(-EINVAL, "sgc_get_stats: NULL argument");
	struct sgc_stats all = c->st;

	if (c->kshard)
		c->kshard->stats(c, &all);
	sgc_copy_sized(st, sz, &all, sizeof(all));
	return 0;
}
