/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libFuzzer target: the receive path of a joined communicator, coordinator
 * or worker, user-space path (no eBPF).  Each input builds a fresh
 * communicator the way sgc_init() leaves it after the rendezvous (real
 * UDP socket on 127.0.0.1 and io_uring, peers at unused 127.66.0.x
 * addresses, so whatever it sends goes nowhere), posts a few collectives,
 * then delivers a sequence of datagrams exactly as io.c's handle_datagram()
 * does (pkt_deliver(): the job key's check, sgc_wire_check(), then
 * c->io.rx), interleaved with progress rounds and timer runs at
 * fuzz-chosen virtual times.  The communicator may have a job key (as
 * cfg.key gives it); the harness can then seal the datagrams with the
 * same key, as a keyed rank sends them, so that they get past the tag.
 *
 * Input: 6 bytes of setup, then records [ctl][len lo][len hi][bytes...]:
 *   setup[0]  bit 0: coordinator (1) or worker; bits 1-3: world - 2;
 *             bit 4: the communicator has the job key; bit 5: every
 *             datagram of at least a header without SGC_F_MAC is sealed
 *             with that key first (one with the flag goes as it is: a
 *             wrong tag, or none)
 *   setup[1]  bits 0-2: collectives to post; bits 3-4: chunk size;
 *             bit 5: a worker serves queries (handler as in sgc_serve())
 *   setup[2]  kinds of the posted collectives (2 bits each)
 *   setup[3]  dtype (bits 0-2), op (bits 3-5)
 *   setup[4]  elements per collective; setup[5]: root
 *   ctl       bits 0-2 sender (see sender()); bit 3: progress round;
 *             bit 4: run the timers (bits 5-7) * 300 ms later
 * A collective's recvbuf is exactly its size, so ASan sees an overrun.
 * The job key's check has an oracle: in a keyed communicator only a
 * datagram the harness sealed reaches the handlers (nobody guesses a
 * 64-bit tag), in one without a key only one without SGC_F_MAC.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "coll.h"
#include "coord.h"
#include "mac.h"
#include "progress.h"
#include "rendezvous.h"
#include "sg.h"
#include "worker.h"
#include "fuzz_common.h"

#define MAX_POST 6
#define MAX_RECORDS 256

static const uint32_t chunk_sizes[] = { 64, 128, 256, 3424 };
static const uint8_t job_key[SGC_KEY_BYTES] = { 0x66, 0x75, 0x7a, 0x7a, 0x2d, 0x72, 0x78, 0x2d,
						0x6b, 0x65, 0x79, 0x5a, 0xa5, 0x0f, 0xf0, 0x01 };
static struct sgc_mac_key job_mk;	/* the senders' copy of it */
static const uint8_t kinds[] = { SGC_COLL_ALLREDUCE, SGC_COLL_REDUCE, SGC_COLL_BCAST,
				 SGC_COLL_BARRIER };

static void fake_addr(struct sockaddr_in *a, uint32_t host, uint16_t port)
{
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(host);
	a->sin_port = htons(port);
}

/*
 * The socket, ring and buffers (io.c's part of the communicator) are made
 * once and lent to each input's communicator: setting up an io_uring per
 * input would make the target 100 times slower, and the I/O layer is not
 * what is fuzzed here.
 */
static struct sgc_comm io_tmpl;
static bool io_ready;

static void io_lend(struct sgc_comm *to, struct sgc_comm *from)
{
	to->io = from->io;
	to->pkts = from->pkts;
	to->self = from->self;
}

static void rx_none(struct sgc_comm *c, const struct sgc_rx *rx)
{
}

/* During the harness's pkt_deliver(): may that datagram reach the
 * handlers (1), or must the job key's check drop it (0); -1 outside. */
static int may_pass = -1;

static void rx_checked(struct sgc_comm *c, const struct sgc_rx *rx)
{
	if (!may_pass) {
		fprintf(stderr, "fuzz_rx: the job key's check let through a datagram it must drop "
			"(rank %d %s a key; type %u, flags %#x, %u body bytes)\n", c->rank,
			c->mac ? "with" : "without", rx->hdr->type, rx->hdr->flags, rx->body_len);
		abort();
	}
	engine_rx(c, rx);
}

static int io_setup_once(void)
{
	if (io_ready)
		return 0;
	/* The diagnostics forged datagrams provoke would flood the output
	 * (FUZZ_RX_VERBOSE=1 keeps them). */
	if (!getenv("FUZZ_RX_VERBOSE"))
		sgc_set_print(NULL);
	io_tmpl.io.fd = -1;
	io_tmpl.io.watch_fd = -1;
	io_tmpl.cfg.waitmode = SGC_WAITMODE_BLOCK;
	fake_addr(&io_tmpl.self, 0x7f000001, 0);
	if (sgc_cfg_env(&io_tmpl.cfg) || io_open(&io_tmpl)) {
		fprintf(stderr, "fuzz_rx: io_open: %s\n", sgc_last_error());
		abort();
	}
	io_ready = true;
	return 0;
}

static struct sgc_comm *comm_new(int rank, int world, uint32_t chunk_bytes, bool keyed)
{
	struct sgc_comm *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return NULL;
	io_setup_once();
	io_lend(c, &io_tmpl);
	c->rank = c->cfg.rank = rank;
	c->world = c->cfg.world = world;
	if (keyed) {	/* as sgc_init() makes it from cfg.key */
		c->cfg.keyed = true;
		memcpy(c->cfg.key, job_key, sizeof(c->cfg.key));
		c->mac = malloc(sizeof(*c->mac));
		if (!c->mac) {
			free(c);
			return NULL;
		}
		sgc_mac_derive(c->cfg.key, c->mac);
	}
	c->cfg.accel = SGC_ACCEL_OFF;
	c->cfg.timeout_ms = 60000;
	c->cfg.waitmode = SGC_WAITMODE_BLOCK;
	fake_addr(&c->cfg.coord, 0x7f420064, 7000);	/* 127.66.0.100 */
	c->cfg.bind = c->self;
	if (rank == 0)
		c->cfg.coord = c->self;
	c->rtt.timeout_ns = c->cfg.timeout_ms * 1000000ULL;
	/* Long enough that no real-time timer fires within one input: the
	 * target decides when timers run, so runs are reproducible. */
	c->rtt.rto_ns = 1000000000ULL;
	c->rtt.rto_max_ns = 4 * c->rtt.rto_ns;
	c->chunk_bytes = chunk_bytes;
	c->pace.push_credit = 4;
	c->pace.budget = SGC_PULL_BUDGET;
	c->job_id = FUZZ_JOB;
	c->joined = true;
	comm_set_handlers(c);
	c->io.rx = rx_checked;
	c->peers = calloc((size_t)world, sizeof(*c->peers));
	if (!c->peers) {
		free(c->mac);
		free(c);
		return NULL;
	}
	for (r = 1; r < world; r++) {
		fake_addr(&c->peers[r].addr, 0x7f420000u + (uint32_t)r, (uint16_t)(9000 + r));
		c->peers[r].joined = true;
		c->peers[r].ready = true;
	}
	c->now = now_ns();
	return c;
}

static void comm_free(struct sgc_comm *c)
{
	int i;

	sg_free(c);
	coll_free_all(c);
	/* Reap the sends, so their packets come back to the free list. */
	c->io.rx = rx_none;
	for (i = 0; i < 100 && (c->io.nsq || c->io.sends_inflight); i++)
		io_poll(c, c->io.sends_inflight ? 1000000ULL : 0);
	io_lend(&io_tmpl, c);
	free(c->peers);
	free(c->mac);
	free(c);
}

/* sgc_serve()'s handler: reads the whole query, writes the whole response
 * (ASan checks both sizes), declines when the query's first byte is odd. */
static int handler(const void *query, size_t query_len, void *response, size_t count,
		   enum sgc_dtype dt, void *arg)
{
	const uint8_t *q = query;
	uint8_t sum = 0;
	size_t i;

	for (i = 0; i < query_len; i++)
		sum = (uint8_t)(sum + q[i]);
	memset(response, sum, count * sgc_dtype_size(dt));
	if (getenv("FUZZ_RX_VERBOSE"))
		fprintf(stderr, "fuzz_rx: handler: query of %zu bytes, %zu elements\n", query_len,
			count);
	return query_len && (q[0] & 1);
}

/*
 * What a datagram may make a rank hold: state for a collective it has not
 * called is sized by the datagram's nchunks, which coll.c bounds (a
 * forged header must not make it allocate gigabytes; found by this target).
 */
#define WIRE_COLL_MAX_CHUNKS 65536

static void check_state(const struct sgc_comm *c)
{
	int i;

	for (i = 0; i < SGC_RING; i++) {
		const struct sgc_coll *co = c->colls.slots[i];

		if (co && !co->posted && co->nchunks > WIRE_COLL_MAX_CHUNKS) {
			fprintf(stderr, "fuzz_rx: a datagram made state for %u chunks of a collective "
				"not called here\n", co->nchunks);
			abort();
		}
	}
}

/* Who a datagram comes from: registered senders, and spoofs of them. */
static void sender(const struct sgc_comm *c, unsigned sel, struct sockaddr_in *from)
{
	if (sel == 7) {
		fake_addr(from, 0x7f420909, 1234);
		return;
	}
	if (c->rank == 0)
		*from = c->peers[1 + sel % (unsigned)(c->world - 1)].addr;
	else
		*from = c->cfg.coord;
	if (sel == 6)	/* right address, wrong port */
		from->sin_port = htons((uint16_t)(ntohs(from->sin_port) + 1));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sgc_request req[MAX_POST];
	uint8_t *bufs[2 * MAX_POST] = { 0 };
	struct sgc_comm *c;
	int rank, world, nposted = 0, i, nrec = 0;
	static bool mk_ready;
	size_t off = 6;
	bool seal;

	if (size < 6)
		return 0;
	if (!mk_ready) {
		sgc_mac_derive(job_key, &job_mk);
		mk_ready = true;
	}
	world = 2 + ((data[0] >> 1) & 7);
	rank = data[0] & 1 ? 0 : 1 + (data[5] >> 4) % (world - 1);
	seal = data[0] & 0x20;
	c = comm_new(rank, world, chunk_sizes[(data[1] >> 3) & 3], data[0] & 0x10);
	if (!c)
		return 0;
	if (rank && (data[1] & 0x20)) {	/* as inside sgc_serve() */
		c->sg.serving = true;
		c->sg.handler = handler;
	}

	for (i = 0; i < (data[1] & 7) && i < MAX_POST; i++) {
		uint8_t kind = kinds[(data[2] >> (2 * (i & 3))) & 3];
		enum sgc_dtype dt = (enum sgc_dtype)(data[3] & 7);
		enum sgc_op op = (enum sgc_op)(((data[3] >> 3) & 7) % 7);
		size_t count = kind == SGC_COLL_BARRIER ? 0 : data[4];
		size_t bytes = count * sgc_dtype_size(dt);
		int root = kind == SGC_COLL_ALLREDUCE || kind == SGC_COLL_BARRIER ?
			   0 : (data[5] & 15) % world;

		/* malloc(0) may return NULL, which coll_post takes for "no
		 * buffer": one spare byte keeps the pointer, ASan the bound. */
		bufs[2 * i] = malloc(bytes + 1);
		bufs[2 * i + 1] = malloc(bytes + 1);
		if (!bufs[2 * i] || !bufs[2 * i + 1])
			break;
		memset(bufs[2 * i], 0x11 * (i + 1), bytes + 1);
		memset(bufs[2 * i + 1], 0, bytes + 1);
		if (coll_post(c, kind, bufs[2 * i], bufs[2 * i + 1], count, dt, op, root, &req[i]))
			break;
		nposted++;
	}

	while (off + 3 <= size && nrec++ < MAX_RECORDS) {
		uint8_t ctl = data[off];
		size_t len = (size_t)data[off + 1] | (size_t)data[off + 2] << 8;
		struct sockaddr_in from;
		uint16_t flags = 0;
		bool sealed;
		uint8_t *pkt;

		off += 3;
		if (len > size - off)
			len = size - off;
		if (len >= SGC_HDR_SIZE)
			memcpy(&flags, data + off + offsetof(struct sgc_hdr, flags), sizeof(flags));
		sealed = seal && len >= SGC_HDR_SIZE && !(flags & SGC_F_MAC);
		/* A heap copy: 8-aligned like io.c's receive buffers, and
		 * exactly as long as the datagram (with its tag), so ASan
		 * sees overreads. */
		pkt = malloc(len + (sealed ? SGC_MAC_TAG_SIZE : 0) + !len);
		if (!pkt)
			break;
		memcpy(pkt, data + off, len);
		off += len;
		if (sealed) {
			sgc_mac_seal(&job_mk, pkt, len);
			len += SGC_MAC_TAG_SIZE;
		}
		sender(c, ctl & 7, &from);
		may_pass = c->mac ? sealed : !(flags & SGC_F_MAC);
		pkt_deliver(c, &from, pkt, (uint32_t)len);
		may_pass = -1;
		check_state(c);
		free(pkt);
		if (ctl & 0x08)
			engine_progress(c, 0);
		if (ctl & 0x10)
			engine_timers(c, c->now + (uint64_t)(ctl >> 5) * 300000000ULL);
		if (nrec % 64 == 0)
			io_poll(c, 0);
	}
	engine_progress(c, 0);
	/* For looking at what a seed reaches: FUZZ_RX_VERBOSE=1. */
	if (getenv("FUZZ_RX_VERBOSE")) {
		for (i = 0; i < nposted; i++)
			fprintf(stderr, "fuzz_rx: rank %d collective %d: %s, status %d %s\n", rank, i,
				req[i].done ? "done" : "open", req[i].status, req[i].msg);
		fprintf(stderr, "fuzz_rx: rank %d%s: %llu datagrams, %llu bad MAC, %llu rejected, "
			"%llu foreign\n", rank, c->mac ? " (keyed)" : "",
			(unsigned long long)c->st.pkts_recv, (unsigned long long)c->st.bad_mac,
			(unsigned long long)c->st.rejected, (unsigned long long)c->st.foreign);
	}

	coll_cancel_all(c, -ECANCELED, "the fuzz input ended");
	comm_free(c);
	for (i = 0; i < 2 * MAX_POST; i++)
		free(bufs[i]);
	return 0;
}
