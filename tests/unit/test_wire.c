/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * sgc_wire_check(): a valid datagram of every kind passes, and tables of
 * {kind, mutation, expected reject} cover every reason for every type it
 * applies to, in the documented order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "sgc_internal.h"

#define JOB	0x1122334455667788ULL
#define WORLD	4
#define CB	64	/* the job's chunk_bytes */

/* Valid datagrams to start from; RESULT_DONE is a RESULT with SGC_F_DONE. */
enum kind {
	K_HELLO, K_WELCOME, K_READY, K_CONTRIB, K_RESULT, K_RESULT_DONE, K_PULL,
	K_QUERY, K_NACK, K_ABORT, K_BYE, K_BYE_ACK, K_JOIN_ABORT, K_WAIT, K_SHARD, K_SHARD_ACK,
	K_MAX
};

static const char *const kind_names[K_MAX] = {
	"HELLO", "WELCOME", "READY", "CONTRIB", "RESULT", "RESULT_DONE", "PULL",
	"QUERY", "NACK", "ABORT", "BYE", "BYE_ACK", "JOIN_ABORT", "WAIT", "SHARD", "SHARD_ACK",
};

struct pkt {
	uint64_t buf[(SGC_HDR_SIZE + 512) / 8];	/* 8-aligned, as received */
	size_t len;
};

static struct sgc_hdr *hdr(struct pkt *p)
{
	return (struct sgc_hdr *)p->buf;
}

static uint8_t *body(struct pkt *p)
{
	return (uint8_t *)p->buf + SGC_HDR_SIZE;
}

static void fill_body(struct pkt *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		body(p)[i] = (uint8_t)(i * 7 + 1);
	p->len = SGC_HDR_SIZE + n;
}

static void build(enum kind k, struct pkt *p)
{
	struct sgc_hdr *h = hdr(p);

	memset(p, 0, sizeof(*p));
	switch (k) {
	case K_HELLO:
		sgc_hdr_init(h, SGC_MSG_HELLO, 0);
		h->rank = 2;
		h->arg = WORLD;
		h->aux = 0xdeadbeef;
		p->len = SGC_HDR_SIZE;
		break;
	case K_WELCOME: {
		struct sgc_welcome w = {
			.chunk_bytes = CB, .world = WORLD, .push_credit = 4, .timeout_ms = 10000,
		};
		struct sgc_roster_ent r[2] = {
			{ .addr = 0x0100007f, .port = 0x8813, .rank = 0 },
			{ .addr = 0x0200007f, .port = 0x8913, .rank = 1 },
		};

		sgc_hdr_init(h, SGC_MSG_WELCOME, JOB);
		h->rank = 1;
		h->arg = WORLD;
		h->chunk = 0;
		h->nchunks = 2;
		h->count = 2;
		memcpy(body(p), &w, sizeof(w));
		memcpy(body(p) + sizeof(w), r, sizeof(r));
		p->len = SGC_HDR_SIZE + sizeof(w) + sizeof(r);
		break;
	}
	case K_READY:
		sgc_hdr_init(h, SGC_MSG_READY, JOB);
		h->rank = 3;
		h->aux = 0xdeadbeef;
		p->len = SGC_HDR_SIZE;
		break;
	case K_CONTRIB:
		sgc_hdr_init(h, SGC_MSG_CONTRIB, JOB);
		h->seq = 7;
		h->coll = SGC_COLL_ALLREDUCE;
		h->chunk = 1;
		h->nchunks = 3;
		h->rank = 2;
		h->count = 12;
		h->dtype = SGC_INT32;
		h->op = SGC_SUM;
		fill_body(p, 12 * 4);
		break;
	case K_RESULT:
		sgc_hdr_init(h, SGC_MSG_RESULT, JOB);
		h->seq = 8;
		h->coll = SGC_COLL_REDUCE;
		h->chunk = 2;
		h->nchunks = 3;
		h->rank = 1;
		h->count = 5;
		h->dtype = SGC_INT64;
		h->op = SGC_MAX;
		fill_body(p, 5 * 8);
		break;
	case K_RESULT_DONE:
		sgc_hdr_init(h, SGC_MSG_RESULT, JOB);
		h->seq = 9;
		h->coll = SGC_COLL_BARRIER;
		h->chunk = 0;
		h->nchunks = 1;
		h->rank = 3;
		h->flags = SGC_F_DONE;
		p->len = SGC_HDR_SIZE;
		break;
	case K_PULL:
		sgc_hdr_init(h, SGC_MSG_PULL, JOB);
		h->seq = 10;
		h->coll = SGC_COLL_ALLREDUCE;
		h->chunk = 1;
		h->nchunks = 4;
		h->aux = 2;
		h->rank = 3;
		p->len = SGC_HDR_SIZE;
		break;
	case K_QUERY:
		sgc_hdr_init(h, SGC_MSG_QUERY, JOB);
		h->seq = 11;
		h->coll = SGC_COLL_QUERY;
		h->nchunks = 2;
		h->count = 16;
		h->dtype = SGC_UINT32;
		h->op = SGC_BOR;
		h->policy = SGC_WIRE_WAIT_N;
		h->arg = 2;
		h->rank = 1;
		fill_body(p, 20);
		break;
	case K_NACK:
		sgc_hdr_init(h, SGC_MSG_NACK, JOB);
		h->seq = 12;
		h->coll = SGC_COLL_REDUCE;
		h->chunk = 2;
		h->nchunks = 20;
		h->arg = 10;
		h->rank = 3;
		fill_body(p, 2);
		break;
	case K_ABORT:
		sgc_hdr_init(h, SGC_MSG_ABORT, JOB);
		h->seq = 5;
		h->coll = SGC_COLL_ALLREDUCE;
		h->aux = 110;
		p->len = SGC_HDR_SIZE;
		break;
	case K_BYE:
		sgc_hdr_init(h, SGC_MSG_BYE, JOB);
		h->rank = 3;
		p->len = SGC_HDR_SIZE;
		break;
	case K_BYE_ACK:
		sgc_hdr_init(h, SGC_MSG_BYE_ACK, JOB);
		h->rank = 3;
		p->len = SGC_HDR_SIZE;
		break;
	case K_JOIN_ABORT: {
		/* The join given up: rank 3 of 4 missing. */
		struct sgc_join_abort w = { .timeout_ms = 1500, .world = WORLD, .missing = 1,
					    .nbits = WORLD };

		sgc_hdr_init(h, SGC_MSG_ABORT, JOB);
		h->aux = 110;
		memcpy(body(p), &w, sizeof(w));
		body(p)[sizeof(w)] = 1 << 3;
		p->len = SGC_HDR_SIZE + sizeof(w) + 1;
		break;
	}
	case K_WAIT:
		sgc_hdr_init(h, SGC_MSG_WAIT, JOB);
		h->rank = 3;
		h->arg = 1;
		h->aux = 1200;
		p->len = SGC_HDR_SIZE;
		break;
	case K_SHARD:
		sgc_hdr_init(h, SGC_MSG_SHARD, JOB);
		h->seq = 3;
		h->coll = SGC_COLL_RSCATTER;
		h->policy = 0;
		h->arg = 2;
		h->chunk = 1;
		h->nchunks = 3;
		h->rank = 1;
		h->count = 6;
		h->dtype = SGC_UINT16;
		h->op = SGC_BXOR;
		h->total = 700;
		fill_body(p, 6 * 2);
		break;
	case K_SHARD_ACK:
		sgc_hdr_init(h, SGC_MSG_SHARD_ACK, JOB);
		h->seq = 3;
		h->coll = SGC_COLL_ALLGATHER;
		h->policy = 1;
		h->arg = 1;
		h->chunk = 3;
		h->nchunks = 3;
		h->rank = 2;
		h->dtype = SGC_INT8;
		h->op = SGC_SUM;
		fill_body(p, 8);
		break;
	default:
		fail();
	}
}

static int check(struct pkt *p)
{
	return sgc_wire_check(p->buf, p->len, JOB, WORLD, CB);
}

/* ---- mutations ---- */

struct mut {
	uint16_t off;	/* byte offset in the datagram */
	uint8_t size;
	uint64_t val;
};

#define M(field, v) \
	{ offsetof(struct sgc_hdr, field), sizeof(((struct sgc_hdr *)0)->field), (v) }
#define MJ(field, v)								\
	{ SGC_HDR_SIZE + offsetof(struct sgc_join_abort, field),		\
	  sizeof(((struct sgc_join_abort *)0)->field), (v) }
#define MW(field, v)								\
	{ SGC_HDR_SIZE + offsetof(struct sgc_welcome, field),			\
	  sizeof(((struct sgc_welcome *)0)->field), (v) }

struct row {
	enum kind kind;
	const char *what;
	struct mut m[3];
	long len_delta;		/* added to the datagram's length */
	int expect;
};

static void apply(struct pkt *p, const struct row *r)
{
	for (int i = 0; i < 3 && r->m[i].size; i++)
		memcpy((uint8_t *)p->buf + r->m[i].off, &r->m[i].val, r->m[i].size);
	p->len = (size_t)((long)p->len + r->len_delta);
}

static void run_rows(const struct row *rows, size_t n)
{
	struct pkt p;
	int got;

	for (size_t i = 0; i < n; i++) {
		build(rows[i].kind, &p);
		apply(&p, &rows[i]);
		got = check(&p);
		if (got != rows[i].expect) {
			print_error("row %zu %s/%s: got %s, want %s\n", i,
				    kind_names[rows[i].kind], rows[i].what,
				    sgc_reject_name(got), sgc_reject_name(rows[i].expect));
			fail();
		}
	}
}

/* Rejects every kind shares: framing and identity. */
static void test_common_rejects(void **state)
{
	static const struct {
		const char *what;
		struct mut m;
		int expect;
	} common[] = {
		{ "magic swapped", M(magic, 0x5347), SGC_REJ_MAGIC },
		{ "magic 0", M(magic, 0), SGC_REJ_MAGIC },
		{ "version 0", M(version, 0), SGC_REJ_VERSION },
		{ "version 1 (before the stamp)", M(version, 1), SGC_REJ_VERSION },
		{ "version one past ours", M(version, SGC_WIRE_VERSION + 1), SGC_REJ_VERSION },
		{ "type 0", M(type, 0), SGC_REJ_TYPE },
		{ "type MAX", M(type, SGC_MSG_MAX), SGC_REJ_TYPE },
		{ "type 255", M(type, 255), SGC_REJ_TYPE },
		{ "rank = world", M(rank, WORLD), SGC_REJ_RANK },
		{ "rank 65535", M(rank, 65535), SGC_REJ_RANK },
	};
	struct pkt p;

	for (int k = 0; k < K_MAX; k++) {
		for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++) {
			struct row r = { .kind = k, .what = common[i].what,
					 .m = { common[i].m }, .expect = common[i].expect };

			run_rows(&r, 1);
		}
		/* Another job's id; a hello must carry none at all. */
		build(k, &p);
		hdr(&p)->job_id = k == K_HELLO ? 1 : JOB + 1;
		assert_int_equal(check(&p), SGC_REJ_JOB);
		hdr(&p)->job_id = k == K_HELLO ? JOB : 0;
		assert_int_equal(check(&p), SGC_REJ_JOB);
	}
	(void)state;
}

/* The first failing check decides, in the documented order. */
static const struct row order_rows[] = {
	{ K_CONTRIB, "magic before version", { M(magic, 1), M(version, 9) }, 0, SGC_REJ_MAGIC },
	{ K_CONTRIB, "version before type", { M(version, 9), M(type, 0) }, 0, SGC_REJ_VERSION },
	{ K_CONTRIB, "type before job", { M(type, 0), M(job_id, 1) }, 0, SGC_REJ_TYPE },
	{ K_CONTRIB, "job before rank", { M(job_id, 1), M(rank, WORLD) }, 0, SGC_REJ_JOB },
	{ K_CONTRIB, "rank before coll", { M(rank, WORLD), M(coll, 0) }, 0, SGC_REJ_RANK },
	{ K_CONTRIB, "coll before dtype", { M(coll, 0), M(dtype, 8) }, 0, SGC_REJ_COLL },
	{ K_CONTRIB, "dtype before op", { M(dtype, 8), M(op, 7) }, 0, SGC_REJ_DTYPE },
	{ K_CONTRIB, "op before chunk", { M(op, 8), M(nchunks, 0) }, 0, SGC_REJ_OP },
	{ K_CONTRIB, "chunk before count", { M(chunk, 3), M(count, 1000) }, 0, SGC_REJ_CHUNK },
	{ K_CONTRIB, "count before len", { M(count, CB / 4 + 1) }, 5, SGC_REJ_COUNT },
	{ K_CONTRIB, "fan-out flag from the wire", { M(flags, SGC_F_FANOUT) }, 0, SGC_REJ_FIELD },
	{ K_RESULT, "fan-out flag from the wire", { M(flags, SGC_F_FANOUT) }, 0, SGC_REJ_FIELD },
	{ K_PULL, "stamp on a PULL", { M(stamp, 1) }, 0, SGC_REJ_NONE },
	{ K_RESULT, "stamp on a RESULT", { M(stamp, 0xffffffffu) }, 0, SGC_REJ_NONE },
	{ K_NACK, "stamp on a NACK", { M(stamp, 7) }, 0, SGC_REJ_NONE },
	{ K_CONTRIB, "stamp on a CONTRIB", { M(stamp, 1) }, 0, SGC_REJ_FIELD },
	{ K_BYE, "stamp on a BYE", { M(stamp, 0x80000000u) }, 0, SGC_REJ_FIELD },
	{ K_HELLO, "field before rank", { M(rank, WORLD), M(arg, 1) }, 0, SGC_REJ_FIELD },
	{ K_HELLO, "rank >= its own world", { M(rank, WORLD + 3), M(arg, WORLD + 3) }, 0, SGC_REJ_RANK },
	{ K_HELLO, "rank past the job's world parses", { M(rank, WORLD + 2), M(arg, WORLD + 3) }, 0,
	  SGC_REJ_NONE },
	{ K_HELLO, "field before len", { M(arg, 1) }, 1, SGC_REJ_FIELD },
	{ K_PULL, "coll before chunk", { M(coll, 0), M(aux, 0) }, 1, SGC_REJ_COLL },
	{ K_PULL, "chunk before len", { M(aux, 0) }, 1, SGC_REJ_CHUNK },
	{ K_QUERY, "dtype before op", { M(dtype, 8), M(op, 7) }, 0, SGC_REJ_DTYPE },
	{ K_QUERY, "op before chunk", { M(op, 8), M(nchunks, 0) }, 0, SGC_REJ_OP },
	{ K_QUERY, "chunk before field", { M(nchunks, 0), M(policy, 3) }, 0, SGC_REJ_CHUNK },
	{ K_QUERY, "field before len", { M(policy, 3) }, CB, SGC_REJ_FIELD },
	{ K_NACK, "coll before chunk", { M(coll, 0), M(arg, 0) }, 0, SGC_REJ_COLL },
	{ K_NACK, "chunk before len", { M(arg, 0) }, 1, SGC_REJ_CHUNK },
	{ K_WELCOME, "len before chunk", { M(chunk, 5) }, 1, SGC_REJ_LEN },
	{ K_WELCOME, "chunk before field", { M(chunk, 5), M(arg, 1) }, 0, SGC_REJ_CHUNK },
};

static void test_order(void **state)
{
	run_rows(order_rows, sizeof(order_rows) / sizeof(order_rows[0]));
	(void)state;
}

/* Per-type fields: every reason for every type it applies to. */
#define DATA_ROWS(K, elsz)								\
	{ K, "coll 0", { M(coll, 0) }, 0, SGC_REJ_COLL },				\
	{ K, "coll MAX", { M(coll, SGC_COLL_MAX) }, 0, SGC_REJ_COLL },			\
	{ K, "coll 255", { M(coll, 255) }, 0, SGC_REJ_COLL },				\
	{ K, "dtype 8", { M(dtype, 8) }, 0, SGC_REJ_DTYPE },				\
	{ K, "dtype 255", { M(dtype, 255) }, 0, SGC_REJ_DTYPE },			\
	{ K, "op 7 (SGC_CUSTOM)", { M(op, 7) }, 0, SGC_REJ_NONE },			\
	{ K, "op 8", { M(op, 8) }, 0, SGC_REJ_OP },					\
	{ K, "op 255", { M(op, 255) }, 0, SGC_REJ_OP },					\
	{ K, "nchunks 0", { M(nchunks, 0), M(chunk, 0) }, 0, SGC_REJ_CHUNK },		\
	{ K, "chunk = nchunks", { M(chunk, 3) }, 0, SGC_REJ_CHUNK },			\
	{ K, "chunk max", { M(chunk, 0xffffffff) }, 0, SGC_REJ_CHUNK },		\
	{ K, "count over chunk", { M(count, CB / (elsz) + 1) },				\
	  (long)(elsz) * (CB / (elsz) + 1) - (long)(p_len_##K), SGC_REJ_COUNT },	\
	{ K, "count 65535", { M(count, 65535) }, 0, SGC_REJ_COUNT },			\
	{ K, "body +1", { { 0 } }, 1, SGC_REJ_LEN },					\
	{ K, "body -1", { { 0 } }, -1, SGC_REJ_LEN },					\
	{ K, "body +elsz", { { 0 } }, (elsz), SGC_REJ_LEN },				\
	{ K, "count +1", { M(count, p_count_##K + 1) }, 0, SGC_REJ_LEN },		\
	{ K, "count -1", { M(count, p_count_##K - 1) }, 0, SGC_REJ_LEN },		\
	{ K, "count 0, body kept", { M(count, 0) }, 0, SGC_REJ_LEN },			\
	{ K, "empty body", { { 0 } }, -(long)(p_len_##K), SGC_REJ_LEN },		\
	{ K, "count 0, no body", { M(count, 0) }, -(long)(p_len_##K), SGC_REJ_NONE },	\
	{ K, "count -1, body -elsz", { M(count, p_count_##K - 1) }, -(long)(elsz),	\
	  SGC_REJ_NONE }

/* Body bytes and counts of the valid CONTRIB and RESULT above. */
#define p_len_K_CONTRIB 48
#define p_count_K_CONTRIB 12
#define p_len_K_RESULT 40
#define p_count_K_RESULT 5

static const struct row type_rows[] = {
	DATA_ROWS(K_CONTRIB, 4),
	{ K_CONTRIB, "wider dtype, same count", { M(dtype, SGC_INT64) }, 48, SGC_REJ_COUNT },
	{ K_CONTRIB, "narrower dtype", { M(dtype, SGC_UINT16) }, 0, SGC_REJ_LEN },
	{ K_CONTRIB, "narrower dtype, body fits", { M(dtype, SGC_UINT16) }, -24, SGC_REJ_NONE },
	{ K_CONTRIB, "decline, no body", { M(flags, SGC_F_DECLINE), M(count, 0) }, -48,
	  SGC_REJ_NONE },
	{ K_CONTRIB, "DONE only means something on RESULT", { M(flags, SGC_F_DONE) }, 0,
	  SGC_REJ_NONE },
	{ K_CONTRIB, "count fills the chunk", { M(count, CB / 4) }, CB - 48, SGC_REJ_NONE },

	DATA_ROWS(K_RESULT, 8),
	{ K_RESULT, "count 8 of int64 fills the chunk", { M(count, 8) }, 24, SGC_REJ_NONE },

	{ K_RESULT_DONE, "coll 0", { M(coll, 0) }, 0, SGC_REJ_COLL },
	{ K_RESULT_DONE, "dtype 8", { M(dtype, 8) }, 0, SGC_REJ_DTYPE },
	{ K_RESULT_DONE, "op 8", { M(op, 8) }, 0, SGC_REJ_OP },
	{ K_RESULT_DONE, "nchunks 0", { M(nchunks, 0) }, 0, SGC_REJ_CHUNK },
	{ K_RESULT_DONE, "chunk 1 of 1", { M(chunk, 1) }, 0, SGC_REJ_CHUNK },
	{ K_RESULT_DONE, "count 1", { M(count, 1) }, 0, SGC_REJ_COUNT },
	{ K_RESULT_DONE, "count 1 with its body", { M(count, 1) }, 1, SGC_REJ_COUNT },
	{ K_RESULT_DONE, "count over chunk", { M(count, CB + 1) }, 0, SGC_REJ_COUNT },
	{ K_RESULT_DONE, "body 1", { { 0 } }, 1, SGC_REJ_LEN },
	{ K_RESULT_DONE, "body 8", { { 0 } }, 8, SGC_REJ_LEN },
	{ K_RESULT_DONE, "other flags too", { M(flags, SGC_F_DONE | SGC_F_RETX) }, 0,
	  SGC_REJ_NONE },

	{ K_PULL, "coll 0", { M(coll, 0) }, 0, SGC_REJ_COLL },
	{ K_PULL, "coll MAX", { M(coll, SGC_COLL_MAX) }, 0, SGC_REJ_COLL },
	{ K_PULL, "chunk = nchunks", { M(chunk, 4), M(aux, 1) }, 0, SGC_REJ_CHUNK },
	{ K_PULL, "nchunks 0", { M(nchunks, 0), M(chunk, 0) }, 0, SGC_REJ_CHUNK },
	{ K_PULL, "span 0", { M(aux, 0) }, 0, SGC_REJ_CHUNK },
	{ K_PULL, "chunk + span = nchunks + 1", { M(aux, 4) }, 0, SGC_REJ_CHUNK },
	{ K_PULL, "span 65535", { M(aux, 65535) }, 0, SGC_REJ_CHUNK },
	{ K_PULL, "chunk + span wraps 32 bits", { M(chunk, 0xfffffffe), M(nchunks, 0xffffffff) }, 0,
	  SGC_REJ_CHUNK },
	{ K_PULL, "chunk + span = nchunks", { M(aux, 3) }, 0, SGC_REJ_NONE },
	{ K_PULL, "all of 2^32-1 chunks", { M(chunk, 0), M(nchunks, 0xffffffff), M(aux, 65535) },
	  0, SGC_REJ_NONE },
	{ K_PULL, "body 1", { { 0 } }, 1, SGC_REJ_LEN },
	{ K_PULL, "body 8", { { 0 } }, 8, SGC_REJ_LEN },

	{ K_QUERY, "dtype 8", { M(dtype, 8) }, 0, SGC_REJ_DTYPE },
	{ K_QUERY, "op 7 (SGC_CUSTOM)", { M(op, 7) }, 0, SGC_REJ_NONE },
	{ K_QUERY, "op 8", { M(op, 8) }, 0, SGC_REJ_OP },
	{ K_QUERY, "nchunks 0", { M(nchunks, 0) }, 0, SGC_REJ_CHUNK },
	{ K_QUERY, "policy 3", { M(policy, 3) }, 0, SGC_REJ_FIELD },
	{ K_QUERY, "policy 255", { M(policy, 255) }, 0, SGC_REJ_FIELD },
	{ K_QUERY, "policy WAIT_ANY", { M(policy, SGC_WIRE_WAIT_ANY) }, 0, SGC_REJ_NONE },
	{ K_QUERY, "policy WAIT_ALL", { M(policy, SGC_WIRE_WAIT_ALL) }, 0, SGC_REJ_NONE },
	{ K_QUERY, "body = chunk_bytes", { { 0 } }, CB - 20, SGC_REJ_NONE },
	{ K_QUERY, "body = chunk_bytes + 1", { { 0 } }, CB - 20 + 1, SGC_REJ_LEN },
	{ K_QUERY, "no body", { { 0 } }, -20, SGC_REJ_NONE },
	{ K_QUERY, "stop", { M(flags, SGC_F_STOP) }, -20, SGC_REJ_NONE },

	{ K_NACK, "coll 0", { M(coll, 0) }, 0, SGC_REJ_COLL },
	{ K_NACK, "coll MAX", { M(coll, SGC_COLL_MAX) }, 0, SGC_REJ_COLL },
	{ K_NACK, "chunk = nchunks", { M(chunk, 20), M(arg, 1) }, -1, SGC_REJ_CHUNK },
	{ K_NACK, "nchunks 0", { M(nchunks, 0), M(chunk, 0) }, 0, SGC_REJ_CHUNK },
	{ K_NACK, "arg 0", { M(arg, 0) }, -2, SGC_REJ_CHUNK },
	{ K_NACK, "bitmap past the vector", { M(arg, 19) }, 1, SGC_REJ_CHUNK },
	{ K_NACK, "bitmap to the last chunk", { M(arg, 18) }, 1, SGC_REJ_NONE },
	{ K_NACK, "body +1", { { 0 } }, 1, SGC_REJ_LEN },
	{ K_NACK, "body -1", { { 0 } }, -1, SGC_REJ_LEN },
	{ K_NACK, "no body", { { 0 } }, -2, SGC_REJ_LEN },
	{ K_NACK, "arg 16 still 2 bytes", { M(arg, 16) }, 0, SGC_REJ_NONE },
	{ K_NACK, "arg 17 needs 3 bytes", { M(arg, 17) }, 0, SGC_REJ_LEN },
	{ K_NACK, "arg 9 needs 2 bytes", { M(arg, 9) }, 0, SGC_REJ_NONE },
	{ K_NACK, "arg 8 needs 1 byte", { M(arg, 8) }, 0, SGC_REJ_LEN },
	{ K_NACK, "arg 8, 1 byte", { M(arg, 8) }, -1, SGC_REJ_NONE },
	{ K_NACK, "arg 1, 1 byte", { M(arg, 1) }, -1, SGC_REJ_NONE },

	{ K_WELCOME, "body +1", { { 0 } }, 1, SGC_REJ_LEN },
	{ K_WELCOME, "body -1", { { 0 } }, -1, SGC_REJ_LEN },
	{ K_WELCOME, "one roster entry too many", { { 0 } }, 8, SGC_REJ_LEN },
	{ K_WELCOME, "count +1", { M(count, 3) }, 0, SGC_REJ_LEN },
	{ K_WELCOME, "count -1", { M(count, 1) }, 0, SGC_REJ_LEN },
	{ K_WELCOME, "count -1 and body -8", { M(count, 1) }, -8, SGC_REJ_NONE },
	{ K_WELCOME, "no roster", { M(count, 0) }, -16, SGC_REJ_NONE },
	{ K_WELCOME, "welcome cut short", { M(count, 0) }, -17, SGC_REJ_LEN },
	{ K_WELCOME, "no body", { M(count, 0) }, -32, SGC_REJ_LEN },
	{ K_WELCOME, "chunk = nchunks", { M(chunk, 2) }, 0, SGC_REJ_CHUNK },
	{ K_WELCOME, "nchunks 0", { M(nchunks, 0) }, 0, SGC_REJ_CHUNK },
	{ K_WELCOME, "world 1", { M(arg, 1), MW(world, 1) }, 0, SGC_REJ_FIELD },
	{ K_WELCOME, "world 4097", { M(arg, 4097), MW(world, 4097) }, 0, SGC_REJ_FIELD },
	{ K_WELCOME, "world 4096", { M(arg, 4096), MW(world, 4096) }, 0, SGC_REJ_NONE },
	{ K_WELCOME, "welcome.world != arg", { MW(world, WORLD + 1) }, 0, SGC_REJ_FIELD },
	{ K_WELCOME, "chunk_bytes 0", { MW(chunk_bytes, 0) }, 0, SGC_REJ_FIELD },
	{ K_WELCOME, "chunk_bytes 68", { MW(chunk_bytes, 68) }, 0, SGC_REJ_FIELD },
	{ K_WELCOME, "chunk_bytes 56", { MW(chunk_bytes, 56) }, 0, SGC_REJ_FIELD },
	{ K_WELCOME, "chunk_bytes 64", { MW(chunk_bytes, 64) }, 0, SGC_REJ_NONE },
	{ K_WELCOME, "chunk_bytes max + 8", { MW(chunk_bytes, SGC_MAX_BODY + 8) }, 0,
	  SGC_REJ_FIELD },
	{ K_WELCOME, "chunk_bytes max", { MW(chunk_bytes, SGC_MAX_BODY) }, 0, SGC_REJ_NONE },

	{ K_HELLO, "world 1", { M(arg, 1), M(rank, 1) }, 0, SGC_REJ_FIELD },
	{ K_HELLO, "world 0", { M(arg, 0) }, 0, SGC_REJ_FIELD },
	{ K_HELLO, "world 4097", { M(arg, 4097) }, 0, SGC_REJ_FIELD },
	{ K_HELLO, "world 4096", { M(arg, 4096) }, 0, SGC_REJ_NONE },
	/* These parse: the coordinator's hello handler explains them. */
	{ K_HELLO, "rank 0", { M(rank, 0) }, 0, SGC_REJ_NONE },
	{ K_HELLO, "another world size", { M(arg, WORLD + 1) }, 0, SGC_REJ_NONE },
	{ K_HELLO, "body 1", { { 0 } }, 1, SGC_REJ_LEN },
	{ K_HELLO, "body 8", { { 0 } }, 8, SGC_REJ_LEN },

	{ K_READY, "body 1", { { 0 } }, 1, SGC_REJ_LEN },
	{ K_READY, "body 40", { { 0 } }, 40, SGC_REJ_LEN },
	{ K_ABORT, "body 1", { { 0 } }, 1, SGC_REJ_LEN },
	{ K_ABORT, "whole job", { M(seq, 0), M(coll, 0) }, 0, SGC_REJ_NONE },
	/* A mismatch may say which rank's call differs, and how. */
	{ K_ABORT, "mismatch with its body", { M(aux, SGC_EMISMATCH) },
	  sizeof(struct sgc_mismatch), SGC_REJ_NONE },
	{ K_ABORT, "mismatch body short", { M(aux, SGC_EMISMATCH) },
	  sizeof(struct sgc_mismatch) - 1, SGC_REJ_LEN },
	/* Read as a join failure's body, whose world of 0 is no world. */
	{ K_ABORT, "mismatch body for another errno", { { 0 } }, sizeof(struct sgc_mismatch),
	  SGC_REJ_FIELD },
	{ K_BYE, "body 1", { { 0 } }, 1, SGC_REJ_LEN },
	{ K_BYE_ACK, "body 1", { { 0 } }, 1, SGC_REJ_LEN },

	{ K_JOIN_ABORT, "bitmap +1", { { 0 } }, 1, SGC_REJ_LEN },
	{ K_JOIN_ABORT, "no bitmap", { { 0 } }, -1, SGC_REJ_LEN },
	{ K_JOIN_ABORT, "cut short", { { 0 } }, -2, SGC_REJ_LEN },
	{ K_JOIN_ABORT, "nbits 0, no bitmap", { MJ(nbits, 0) }, -1, SGC_REJ_NONE },
	{ K_JOIN_ABORT, "nbits > world", { MJ(nbits, WORLD + 1) }, 0, SGC_REJ_FIELD },
	{ K_JOIN_ABORT, "missing > world", { MJ(missing, WORLD + 1) }, 0, SGC_REJ_FIELD },
	{ K_JOIN_ABORT, "world 1", { MJ(world, 1), MJ(nbits, 1), MJ(missing, 0) }, 0,
	  SGC_REJ_FIELD },
	{ K_JOIN_ABORT, "world 4097", { MJ(world, 4097) }, 0, SGC_REJ_FIELD },
	{ K_JOIN_ABORT, "nbits 9 needs 2 bytes", { MJ(world, 9), MJ(nbits, 9) }, 0, SGC_REJ_LEN },
	{ K_JOIN_ABORT, "nbits 9, 2 bytes", { MJ(world, 9), MJ(nbits, 9) }, 1, SGC_REJ_NONE },
	{ K_WAIT, "body 1", { { 0 } }, 1, SGC_REJ_LEN },

	{ K_SHARD, "allreduce", { M(coll, SGC_COLL_ALLREDUCE) }, 0, SGC_REJ_NONE },
	{ K_SHARD, "allgather", { M(coll, SGC_COLL_ALLGATHER) }, 0, SGC_REJ_NONE },
	{ K_SHARD, "reduce (a star kind)", { M(coll, SGC_COLL_REDUCE) }, 0, SGC_REJ_COLL },
	{ K_SHARD, "query", { M(coll, SGC_COLL_QUERY) }, 0, SGC_REJ_COLL },
	{ K_SHARD, "coll MAX", { M(coll, SGC_COLL_MAX) }, 0, SGC_REJ_COLL },
	{ K_SHARD, "dtype 8", { M(dtype, 8) }, 0, SGC_REJ_DTYPE },
	{ K_SHARD, "op SGC_CUSTOM", { M(op, SGC_CUSTOM) }, 0, SGC_REJ_OP },
	{ K_SHARD, "phase 2", { M(policy, 2) }, 0, SGC_REJ_FIELD },
	{ K_SHARD, "owner = world", { M(arg, WORLD) }, 0, SGC_REJ_FIELD },
	{ K_SHARD, "chunk = nchunks", { M(chunk, 3) }, 0, SGC_REJ_CHUNK },
	{ K_SHARD, "nchunks 0", { M(nchunks, 0), M(chunk, 0) }, 0, SGC_REJ_CHUNK },
	{ K_SHARD, "count over chunk", { M(count, CB / 2 + 1) }, 0, SGC_REJ_COUNT },
	{ K_SHARD, "body +1", { { 0 } }, 1, SGC_REJ_LEN },
	{ K_SHARD, "body -2", { { 0 } }, -2, SGC_REJ_LEN },
	{ K_SHARD, "empty chunk", { M(count, 0) }, -12, SGC_REJ_NONE },
	{ K_SHARD_ACK, "chunk > nchunks", { M(chunk, 4) }, 0, SGC_REJ_CHUNK },
	{ K_SHARD_ACK, "none yet", { M(chunk, 0) }, 0, SGC_REJ_NONE },
	{ K_SHARD_ACK, "nchunks 0", { M(nchunks, 0), M(chunk, 0) }, 0, SGC_REJ_CHUNK },
	{ K_SHARD_ACK, "window 128", { M(count, 128) }, 0, SGC_REJ_NONE },
	{ K_SHARD_ACK, "bitmap short", { { 0 } }, -1, SGC_REJ_LEN },
	{ K_SHARD_ACK, "bitmap long", { { 0 } }, 1, SGC_REJ_LEN },
	{ K_SHARD_ACK, "phase 2", { M(policy, 2) }, 0, SGC_REJ_FIELD },
};

static void test_type_rejects(void **state)
{
	run_rows(type_rows, sizeof(type_rows) / sizeof(type_rows[0]));
	(void)state;
}

static void test_valid_each_kind(void **state)
{
	struct pkt p;

	for (int k = 0; k < K_MAX; k++) {
		build(k, &p);
		if (check(&p) != SGC_REJ_NONE) {
			print_error("%s: %s\n", kind_names[k], sgc_reject_name(check(&p)));
			fail();
		}
	}
	(void)state;
}

static void test_truncated(void **state)
{
	struct pkt p;

	assert_int_equal(sgc_wire_check(NULL, 100, JOB, WORLD, CB), SGC_REJ_SHORT);
	for (int k = 0; k < K_MAX; k++) {
		build(k, &p);
		for (size_t len = 0; len < SGC_HDR_SIZE; len++)
			assert_int_equal(sgc_wire_check(p.buf, len, JOB, WORLD, CB), SGC_REJ_SHORT);
	}
	(void)state;
}

/* job 0, world 0 and chunk_bytes 0 each turn one check off. */
static void test_skipped_checks(void **state)
{
	struct pkt p;

	/* job_id 0: a worker before its welcome takes any job's datagram ... */
	build(K_WELCOME, &p);
	hdr(&p)->job_id = 0x99;
	assert_int_equal(sgc_wire_check(p.buf, p.len, 0, WORLD, CB), SGC_REJ_NONE);
	assert_int_equal(sgc_wire_check(p.buf, p.len, JOB, WORLD, CB), SGC_REJ_JOB);
	/* ... but a hello is held to job id 0 whatever the argument. */
	build(K_HELLO, &p);
	assert_int_equal(sgc_wire_check(p.buf, p.len, 0, WORLD, CB), SGC_REJ_NONE);
	hdr(&p)->job_id = 5;
	assert_int_equal(sgc_wire_check(p.buf, p.len, 0, WORLD, CB), SGC_REJ_JOB);
	assert_int_equal(sgc_wire_check(p.buf, p.len, 5, WORLD, CB), SGC_REJ_JOB);

	/* world 0: any rank. */
	build(K_CONTRIB, &p);
	hdr(&p)->rank = 4000;
	assert_int_equal(sgc_wire_check(p.buf, p.len, JOB, 0, CB), SGC_REJ_NONE);
	assert_int_equal(sgc_wire_check(p.buf, p.len, JOB, 4001, CB), SGC_REJ_NONE);
	assert_int_equal(sgc_wire_check(p.buf, p.len, JOB, 4000, CB), SGC_REJ_RANK);
	/* A hello's rank is held to the world size it claims, not ours. */
	build(K_HELLO, &p);
	hdr(&p)->rank = 100;
	assert_int_equal(sgc_wire_check(p.buf, p.len, 0, 0, CB), SGC_REJ_RANK);
	assert_int_equal(sgc_wire_check(p.buf, p.len, 0, WORLD, CB), SGC_REJ_RANK);
	hdr(&p)->arg = 200;
	assert_int_equal(sgc_wire_check(p.buf, p.len, 0, WORLD, CB), SGC_REJ_NONE);

	/* chunk_bytes 0: no count limit, but the length must still match. */
	build(K_CONTRIB, &p);
	hdr(&p)->count = 100;
	fill_body(&p, 400);
	assert_int_equal(sgc_wire_check(p.buf, p.len, JOB, WORLD, CB), SGC_REJ_COUNT);
	assert_int_equal(sgc_wire_check(p.buf, p.len, JOB, WORLD, 0), SGC_REJ_NONE);
	assert_int_equal(sgc_wire_check(p.buf, p.len - 1, JOB, WORLD, 0), SGC_REJ_LEN);
	assert_int_equal(sgc_wire_check(p.buf, p.len, JOB, WORLD, 400), SGC_REJ_NONE);
	assert_int_equal(sgc_wire_check(p.buf, p.len, JOB, WORLD, 399), SGC_REJ_COUNT);
	build(K_QUERY, &p);
	fill_body(&p, 300);
	assert_int_equal(sgc_wire_check(p.buf, p.len, JOB, WORLD, CB), SGC_REJ_LEN);
	assert_int_equal(sgc_wire_check(p.buf, p.len, JOB, WORLD, 0), SGC_REJ_NONE);
	(void)state;
}

/* Datagrams arrive at any offset when callers slice buffers. */
static void test_unaligned(void **state)
{
	uint8_t raw[sizeof(struct pkt) + 8];
	struct pkt p;

	for (int k = 0; k < K_MAX; k++) {
		build(k, &p);
		for (int off = 1; off < 8; off++) {
			memcpy(raw + off, p.buf, p.len);
			assert_int_equal(sgc_wire_check(raw + off, p.len, JOB, WORLD, CB),
					 SGC_REJ_NONE);
		}
	}
	(void)state;
}

static void test_hdr_init(void **state)
{
	uint8_t zero[SGC_HDR_SIZE] = { 0 };
	struct sgc_hdr h;

	memset(&h, 0xa5, sizeof(h));
	sgc_hdr_init(&h, SGC_MSG_CONTRIB, JOB);
	assert_int_equal(h.magic, SGC_WIRE_MAGIC);
	assert_int_equal(h.version, SGC_WIRE_VERSION);
	assert_int_equal(h.type, SGC_MSG_CONTRIB);
	assert_true(h.job_id == JOB);
	/* 'S' 'G' on the wire */
	assert_int_equal(((uint8_t *)&h)[0], 'S');
	assert_int_equal(((uint8_t *)&h)[1], 'G');
	h.magic = 0;
	h.version = 0;
	h.type = 0;
	h.job_id = 0;
	assert_memory_equal(&h, zero, sizeof(zero));
	(void)state;
}

static void test_reject_names(void **state)
{
	for (int i = 0; i < SGC_REJ_MAX; i++) {
		const char *a = sgc_reject_name(i);

		assert_non_null(a);
		assert_true(strlen(a) > 0);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(a, sgc_reject_name(j));
	}
	assert_string_equal(sgc_reject_name(SGC_REJ_SHORT), "short");
	assert_string_equal(sgc_reject_name(SGC_REJ_MAGIC), "bad magic");
	assert_non_null(sgc_reject_name(-1));
	assert_non_null(sgc_reject_name(SGC_REJ_MAX));
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_each_kind),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_common_rejects),
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_type_rejects),
		cmocka_unit_test(test_skipped_checks),
		cmocka_unit_test(test_unaligned),
		cmocka_unit_test(test_hdr_init),
		cmocka_unit_test(test_reject_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
