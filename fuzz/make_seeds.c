/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Writes the seed corpora of the fuzz targets: valid datagrams of every
 * message type (fuzz_wire), whole exchanges a coordinator and a worker see
 * during collectives (fuzz_rx), and working environments (fuzz_config).
 * Usage: make_seeds DIR  (creates DIR/wire, DIR/rx, DIR/config).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"
#include "sgc_internal.h"

struct buf {
	uint8_t b[16384];
	size_t n;
};

static const char *outdir;
static int nwritten;

static void put(struct buf *b, const void *p, size_t n)
{
	if (b->n + n > sizeof(b->b)) {
		fprintf(stderr, "make_seeds: seed too large\n");
		exit(1);
	}
	memcpy(b->b + b->n, p, n);
	b->n += n;
}

static void put8(struct buf *b, uint8_t v)
{
	put(b, &v, 1);
}

static void save(const char *sub, const char *name, const struct buf *b)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, sub);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, sub, name);
	f = fopen(path, "wb");
	if (!f || fwrite(b->b, 1, b->n, f) != b->n || fclose(f)) {
		fprintf(stderr, "make_seeds: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	nwritten++;
}

/*
 * A fuzz_rx seed, and its twin where the communicator has the job key and
 * the harness seals the datagrams with it (setup[0] bits 4 and 5), so the
 * keyed corpus starts from exchanges that get past the tag.
 */
static void save_rx(const char *name, struct buf *b)
{
	char keyed[64];

	save("rx", name, b);
	snprintf(keyed, sizeof(keyed), "%s-keyed", name);
	b->b[0] |= 0x30;
	save("rx", keyed, b);
	b->b[0] &= (uint8_t)~0x30;
}

/* A datagram: header plus @blen bytes of patterned body. */
static size_t dgram(uint8_t *out, const struct sgc_hdr *h, const void *body, size_t blen)
{
	memcpy(out, h, SGC_HDR_SIZE);
	if (body)
		memcpy(out + SGC_HDR_SIZE, body, blen);
	else
		for (size_t i = 0; i < blen; i++)
			out[SGC_HDR_SIZE + i] = (uint8_t)(i * 13 + 5);
	return SGC_HDR_SIZE + blen;
}

static struct sgc_hdr hdr(uint8_t type)
{
	struct sgc_hdr h;

	sgc_hdr_init(&h, type, FUZZ_JOB);
	return h;
}

static struct sgc_hdr data_hdr(uint8_t type, uint8_t coll, uint32_t seq, uint32_t chunk,
			       uint32_t nchunks, uint16_t rank, uint16_t count)
{
	struct sgc_hdr h = hdr(type);

	h.coll = coll;
	h.seq = seq;
	h.chunk = chunk;
	h.nchunks = nchunks;
	h.rank = rank;
	h.count = count;
	h.dtype = SGC_INT32;
	h.op = SGC_SUM;
	return h;
}

/* ---- fuzz_wire: [world][chunk size][job mode] datagram ---- */

static void wire_seed(const char *name, const struct sgc_hdr *h, size_t blen)
{
	struct buf b = { .n = 0 };
	uint8_t d[SGC_HDR_SIZE + 4096];

	put8(&b, 2);	/* world 4 */
	put8(&b, 4);	/* chunk_bytes 3424 */
	put8(&b, 0);	/* job FUZZ_JOB */
	put(&b, d, dgram(d, h, NULL, blen));
	save("wire", name, &b);
}

/* The join given up: rank 3 of 4 missing, a world size to blame. */
static void join_abort_seed(void)
{
	struct sgc_join_abort w = { .timeout_ms = 1500, .world = 4, .missing = 1, .nbits = 4,
				    .cause = EPROTO, .cause_rank = 3, .cause_world = 5 };
	struct buf b = { .n = 0 };
	uint8_t d[SGC_HDR_SIZE + sizeof(w) + 1], body[sizeof(w) + 1];
	struct sgc_hdr h = hdr(SGC_MSG_ABORT);

	h.aux = ETIMEDOUT;
	memcpy(body, &w, sizeof(w));
	body[sizeof(w)] = 1 << 3;
	put8(&b, 2);	/* world 4 */
	put8(&b, 4);	/* chunk_bytes 3424 */
	put8(&b, 0);	/* job FUZZ_JOB */
	put(&b, d, dgram(d, &h, body, sizeof(body)));
	save("wire", "join_abort", &b);
}

static void wire_seeds(void)
{
	struct sgc_hdr h;
	uint8_t wb[sizeof(struct sgc_welcome) + 3 * sizeof(struct sgc_roster_ent)] = { 0 };
	struct sgc_welcome w = { .chunk_bytes = 3424, .world = 4, .push_credit = 8,
				 .timeout_ms = 30000 };
	struct buf b = { .n = 0 };
	uint8_t d[SGC_HDR_SIZE + sizeof(wb)];
	int r;

	sgc_hdr_init(&h, SGC_MSG_HELLO, 0);
	h.rank = 2;
	h.arg = 4;
	h.aux = 0xabcd;
	wire_seed("hello", &h, 0);

	h = hdr(SGC_MSG_WELCOME);
	h.arg = 4;
	h.nchunks = 1;
	h.count = 3;
	memcpy(wb, &w, sizeof(w));
	for (r = 1; r < 4; r++) {
		struct sgc_roster_ent e = { .addr = 0x0100000a + ((uint32_t)r << 24),
					    .port = (uint16_t)(9000 + r), .rank = (uint16_t)r };

		memcpy(wb + sizeof(w) + (r - 1) * sizeof(e), &e, sizeof(e));
	}
	put8(&b, 2);
	put8(&b, 4);
	put8(&b, 0);
	put(&b, d, dgram(d, &h, wb, sizeof(wb)));
	save("wire", "welcome", &b);

	h = hdr(SGC_MSG_READY);
	h.rank = 1;
	wire_seed("ready", &h, 0);
	h = data_hdr(SGC_MSG_CONTRIB, SGC_COLL_ALLREDUCE, 7, 1, 3, 2, 16);
	wire_seed("contrib", &h, 64);
	h = data_hdr(SGC_MSG_RESULT, SGC_COLL_REDUCE, 7, 0, 1, 1, 8);
	wire_seed("result", &h, 32);
	h = data_hdr(SGC_MSG_RESULT, SGC_COLL_REDUCE, 7, 0, 1, 1, 0);
	h.flags = SGC_F_DONE;
	wire_seed("result_done", &h, 0);
	h = data_hdr(SGC_MSG_PULL, SGC_COLL_ALLREDUCE, 7, 1, 4, 3, 0);
	h.aux = 2;
	wire_seed("pull", &h, 0);
	h = data_hdr(SGC_MSG_QUERY, 0, 2, 0, 1, 0, 0);
	h.aux = 4;
	h.policy = SGC_WIRE_WAIT_N;
	h.arg = 2;
	wire_seed("query", &h, 20);
	h = data_hdr(SGC_MSG_NACK, SGC_COLL_BCAST, 9, 1, 12, 2, 0);
	h.arg = 10;
	wire_seed("nack", &h, 2);
	h = hdr(SGC_MSG_ABORT);
	h.seq = 3;
	h.coll = SGC_COLL_ALLREDUCE;
	h.aux = ETIMEDOUT;
	wire_seed("abort", &h, 0);
	h.aux = SGC_EMISMATCH;
	wire_seed("abort_mismatch", &h, sizeof(struct sgc_mismatch));
	h = hdr(SGC_MSG_BYE);
	h.rank = 3;
	wire_seed("bye", &h, 0);
	h = hdr(SGC_MSG_BYE_ACK);
	h.rank = 3;
	wire_seed("bye_ack", &h, 0);
	h = hdr(SGC_MSG_ACK);
	h.rank = 1;
	h.aux = 5;
	wire_seed("ack", &h, 0);
	h = hdr(SGC_MSG_WAIT);
	h.rank = 2;
	h.arg = 1;
	h.aux = 1200;
	wire_seed("wait", &h, 0);
	join_abort_seed();
}

/* ---- fuzz_rx: setup, then [ctl][len lo][len hi][datagram] ---- */

static void rx_rec(struct buf *b, uint8_t ctl, const struct sgc_hdr *h, const void *body,
		   size_t blen)
{
	uint8_t d[SGC_HDR_SIZE + 4096];
	size_t n = dgram(d, h, body, blen);

	put8(b, ctl);
	put8(b, (uint8_t)n);
	put8(b, (uint8_t)(n >> 8));
	put(b, d, n);
}

static void rx_setup(struct buf *b, int coord, int world, int npost, int chunk_sel,
		     uint8_t kinds, uint8_t dtype_op, uint8_t count, uint8_t root)
{
	b->n = 0;
	put8(b, (uint8_t)((coord ? 1 : 0) | (world - 2) << 1));
	put8(b, (uint8_t)(npost | chunk_sel << 3));
	put8(b, kinds);
	put8(b, dtype_op);
	put8(b, count);
	put8(b, root);
}

/* The coordinator of 4 ranks, two all-reduces of 20 int32 in 64-byte
 * chunks (2 chunks each): every worker's contributions, some twice. */
static void rx_seeds_coord(void)
{
	struct buf b;
	struct sgc_hdr h;
	uint32_t seq, ch;
	uint16_t r;
	int kind;

	rx_setup(&b, 1, 4, 2, 0, 0x00, SGC_INT32 | SGC_SUM << 3, 20, 0);
	for (seq = 0; seq < 2; seq++)
		for (ch = 0; ch < 2; ch++)
			for (r = 1; r < 4; r++) {
				h = data_hdr(SGC_MSG_CONTRIB, SGC_COLL_ALLREDUCE, seq, ch, 2, r,
					     ch ? 4 : 16);
				h.aux = seq;
				h.total = 20;	/* the whole vector: as posted */
				rx_rec(&b, (uint8_t)((r - 1) | (r == 3 ? 0x08 : 0)), &h, NULL,
				       ch ? 16 : 64);
			}
	h = data_hdr(SGC_MSG_NACK, SGC_COLL_ALLREDUCE, 0, 0, 2, 2, 0);
	h.arg = 2;
	rx_rec(&b, 1, &h, (uint8_t[]){ 3 }, 1);
	h = hdr(SGC_MSG_ACK);
	h.rank = 1;
	h.aux = 2;
	rx_rec(&b, 0x08, &h, NULL, 0);
	h = hdr(SGC_MSG_BYE);
	h.rank = 2;
	h.aux = 2;
	rx_rec(&b, 0x19, &h, NULL, 0);
	save_rx("coord_allreduce", &b);

	/* One of each kind (allreduce, reduce, bcast, barrier), root 1,
	 * only half the contributions, then timers far ahead. */
	rx_setup(&b, 1, 4, 4, 1, 0xe4, SGC_UINT8 | SGC_MAX << 3, 100, 1);
	for (kind = 0; kind < 4; kind++) {
		static const uint8_t kinds[] = { SGC_COLL_ALLREDUCE, SGC_COLL_REDUCE,
						 SGC_COLL_BCAST, SGC_COLL_BARRIER };
		uint16_t cnt = kinds[kind] == SGC_COLL_BARRIER ? 0 : 100;

		for (r = 1; r < 3; r++) {
			if (kinds[kind] == SGC_COLL_BCAST && r != 1)
				continue;
			h = data_hdr(SGC_MSG_CONTRIB, kinds[kind], (uint32_t)kind, 0, 1, r, cnt);
			h.total = cnt;
			h.dtype = SGC_UINT8;
			h.op = SGC_MAX;
			h.arg = kinds[kind] == SGC_COLL_ALLREDUCE || kinds[kind] == SGC_COLL_BARRIER ?
				0 : 1;
			rx_rec(&b, (uint8_t)(r - 1), &h, NULL, cnt);
		}
	}
	h = hdr(SGC_MSG_ACK);
	h.rank = 3;
	rx_rec(&b, 0x3a, &h, NULL, 0);
	h.aux = 1;
	rx_rec(&b, 0xfa, &h, NULL, 0);
	save_rx("coord_kinds", &b);

	/* Scatter-gather answers (no query posted: stray ones). */
	rx_setup(&b, 1, 3, 0, 0, 0, 0, 0, 0);
	h = data_hdr(SGC_MSG_CONTRIB, SGC_COLL_QUERY, 0, 0, 1, 1, 4);
	h.policy = SGC_WIRE_WAIT_ANY;
	rx_rec(&b, 0x08, &h, NULL, 16);
	save_rx("coord_query", &b);
}

/* Worker rank 1 of 4: the coordinator pulls, sends results, probes. */
static void rx_seeds_worker(void)
{
	struct buf b;
	struct sgc_hdr h;
	uint32_t ch;

	rx_setup(&b, 0, 4, 2, 0, 0x00, SGC_INT32 | SGC_SUM << 3, 40, 0);
	h = data_hdr(SGC_MSG_PULL, SGC_COLL_ALLREDUCE, 0, 0, 3, 1, 0);
	h.aux = 3;
	rx_rec(&b, 0x08, &h, NULL, 0);
	for (ch = 0; ch < 3; ch++) {
		h = data_hdr(SGC_MSG_RESULT, SGC_COLL_ALLREDUCE, 0, ch, 3, 1, ch < 2 ? 16 : 8);
		rx_rec(&b, ch == 2 ? 0x08 : 0, &h, NULL, ch < 2 ? 64 : 32);
	}
	h = hdr(SGC_MSG_ACK);
	h.rank = 1;
	rx_rec(&b, 0, &h, NULL, 0);
	h = data_hdr(SGC_MSG_ACK, SGC_COLL_ALLREDUCE, 1, 0, 3, 1, 0);
	rx_rec(&b, 0x10, &h, NULL, 0);
	h = hdr(SGC_MSG_ABORT);
	h.seq = 1;
	h.coll = SGC_COLL_ALLREDUCE;
	h.aux = ETIMEDOUT;
	rx_rec(&b, 0x08, &h, NULL, 0);
	h = hdr(SGC_MSG_BYE_ACK);
	h.rank = 1;
	rx_rec(&b, 0, &h, NULL, 0);
	save_rx("worker_allreduce", &b);

	/* Reduce to root 2 (DONE for rank 1), a broadcast from root 0. */
	rx_setup(&b, 0, 4, 2, 0, 0x09, SGC_INT64 | SGC_PROD << 3, 10, 0x02);
	h = data_hdr(SGC_MSG_RESULT, SGC_COLL_REDUCE, 0, 0, 2, 1, 0);
	h.dtype = SGC_INT64;
	h.op = SGC_PROD;
	h.flags = SGC_F_DONE;
	h.arg = 2;
	rx_rec(&b, 0, &h, NULL, 0);
	h = data_hdr(SGC_MSG_RESULT, SGC_COLL_BCAST, 1, 0, 2, 1, 8);
	h.dtype = SGC_INT64;
	h.op = SGC_PROD;
	h.arg = 2;
	rx_rec(&b, 0x08, &h, NULL, 64);
	h.chunk = 1;
	h.count = 2;
	rx_rec(&b, 0x30, &h, NULL, 16);
	save_rx("worker_kinds", &b);

	/* Queries, answered (as in sgc_serve()), then the job-wide abort. */
	rx_setup(&b, 0, 3, 0, 4, 0, 0, 0, 0);
	h = data_hdr(SGC_MSG_QUERY, 0, 0, 0, 1, 1, 0);
	h.aux = 4;
	rx_rec(&b, 0, &h, (uint8_t[12]){ 2, 4, 6 }, 12);
	h = data_hdr(SGC_MSG_QUERY, 0, 1, 0, 3, 1, 0);
	h.aux = 100;
	h.dtype = SGC_UINT16;
	rx_rec(&b, 0x08, &h, NULL, 12);
	h = data_hdr(SGC_MSG_PULL, SGC_COLL_QUERY, 0, 0, 1, 1, 0);
	h.aux = 1;
	rx_rec(&b, 0x08, &h, NULL, 0);
	h = hdr(SGC_MSG_ABORT);
	h.aux = ESHUTDOWN;
	rx_rec(&b, 0x08, &h, NULL, 0);
	save_rx("worker_query_abort", &b);
}

/* ---- fuzz_config: NUL-separated values, in fuzz_config.c's order ---- */

static void config_seed(const char *name, const char *const *vals, int n)
{
	struct buf b = { .n = 0 };
	int i;

	for (i = 0; i < n; i++)
		put(&b, vals[i], strlen(vals[i]) + 1);
	save("config", name, &b);
}

static void config_seeds(void)
{
	static const char *const coord[] = { "0", "4", "127.0.0.1:7000", "", "lo", "off",
					     "socket", "busypoll", "1", "0", "2500" };
	static const char *const worker[] = { "3", "4", "127.0.0.1:7000", "127.0.0.1:9003", "",
					      "auto", "ringbuf", "block", "0", "1", "0" };
	static const char *const mpi[] = { "", "", "10.0.0.1:6000", "", "", "ebpf", "", "", "",
					   "", "", "", "5", "8" };
	static const char *const file[] = { "1", "2", "", "", "", "", "", "", "", "", "", "", "",
					    "", "", "", "127.0.0.1:7100\n" };
	/* A job key: SGC_KEY, and SGC_KEY_FILE (content). */
	static const char *const key[] = { "2", "3", "127.0.0.1:7000", "", "", "", "", "", "", "",
					   "", "", "", "", "", "", "",
					   "00112233445566778899aabbccddeeff" };
	static const char *const key_file[] = { "0", "3", "127.0.0.1:7000", "", "", "", "", "", "",
						"", "", "", "", "", "", "", "", "",
						"0123456789ABCDEF0123456789abcdef\n" };

	config_seed("coordinator", coord, 11);
	config_seed("worker", worker, 11);
	config_seed("mpirun", mpi, 14);
	config_seed("coordinator_file", file, 17);
	config_seed("key", key, 18);
	config_seed("key_file", key_file, 19);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	outdir = argv[1];
	mkdir(outdir, 0755);
	wire_seeds();
	rx_seeds_coord();
	rx_seeds_worker();
	config_seeds();
	printf("make_seeds: %d seeds in %s\n", nwritten, outdir);
	return 0;
}
