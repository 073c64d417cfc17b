/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Building, checking and chunking datagrams.
 *
 * sgc_wire_check() is the one gate every received datagram passes before
 * any other code looks at it: after it returns SGC_REJ_NONE the header's
 * fields are in range for their type and the body length matches them, so
 * the receive paths can index by chunk and copy count elements without
 * further checks.  The checks run in a fixed order (framing, identity,
 * then per-type fields) so that each reject reason counts the first thing
 * wrong with a datagram.
 */
#include <stdint.h>
#include <string.h>

#include "sgc_internal.h"

void sgc_hdr_init(struct sgc_hdr *h, uint8_t type, uint64_t job_id)
{
	memset(h, 0, sizeof(*h));
	h->magic = SGC_WIRE_MAGIC;
	h->version = SGC_WIRE_VERSION;
	h->type = type;
	h->job_id = job_id;
}

static bool coll_valid(unsigned int coll)
{
	return coll >= 1 && coll <= SGC_COLL_QUERY;
}

/* CONTRIB and RESULT: one chunk of a vector. */
static int check_data(const struct sgc_hdr *h, size_t body, uint32_t chunk_bytes)
{
	uint64_t bytes;

	if (!coll_valid(h->coll))
		return SGC_REJ_COLL;
	if (!sgc_dtype_valid(h->dtype))
		return SGC_REJ_DTYPE;
	if (!sgc_op_valid(h->op) && h->op != SGC_CUSTOM)
		return SGC_REJ_OP;
	if (h->nchunks < 1 || h->chunk >= h->nchunks)
		return SGC_REJ_CHUNK;

	bytes = (uint64_t)h->count * sgc_wire_dtype_size(h->dtype);
	if (chunk_bytes && bytes > chunk_bytes)
		return SGC_REJ_COUNT;
	if (h->type == SGC_MSG_RESULT && (h->flags & SGC_F_DONE)) {
		if (h->count)
			return SGC_REJ_COUNT;
		return body ? SGC_REJ_LEN : SGC_REJ_NONE;
	}
	return body == bytes ? SGC_REJ_NONE : SGC_REJ_LEN;
}

/* A PULL names its collective (dtype and op too): a worker that has not
 * called it yet makes its state from these fields. */
static int check_pull(const struct sgc_hdr *h, size_t body)
{
	if (!coll_valid(h->coll))
		return SGC_REJ_COLL;
	if (!sgc_dtype_valid(h->dtype))
		return SGC_REJ_DTYPE;
	if (!sgc_op_valid(h->op) && h->op != SGC_CUSTOM)
		return SGC_REJ_OP;
	if (h->chunk >= h->nchunks || h->aux < 1 ||
	    (uint64_t)h->chunk + h->aux > h->nchunks)
		return SGC_REJ_CHUNK;
	return body ? SGC_REJ_LEN : SGC_REJ_NONE;
}

static int check_query(const struct sgc_hdr *h, size_t body, uint32_t chunk_bytes)
{
	if (!sgc_dtype_valid(h->dtype))
		return SGC_REJ_DTYPE;
	if (!sgc_op_valid(h->op) && h->op != SGC_CUSTOM)
		return SGC_REJ_OP;
	if (h->nchunks < 1)
		return SGC_REJ_CHUNK;
	if (h->policy > SGC_WIRE_WAIT_ANY)
		return SGC_REJ_FIELD;
	if (chunk_bytes && body > chunk_bytes)
		return SGC_REJ_LEN;
	return SGC_REJ_NONE;
}

/* The bitmap covers arg chunks from chunk on, all inside the vector. */
static int check_nack(const struct sgc_hdr *h, size_t body)
{
	if (!coll_valid(h->coll))
		return SGC_REJ_COLL;
	if (h->chunk >= h->nchunks || h->arg < 1 ||
	    (uint64_t)h->chunk + h->arg > h->nchunks)
		return SGC_REJ_CHUNK;
	return body == ((size_t)h->arg + 7) / 8 ? SGC_REJ_NONE : SGC_REJ_LEN;
}

/* SHARD and SHARD_ACK: a chunk of a shard, or which of them came. */
static int check_shard(const struct sgc_hdr *h, size_t body, uint32_t chunk_bytes, int world)
{
	uint64_t bytes;

	if (h->coll != SGC_COLL_ALLREDUCE && h->coll != SGC_COLL_RSCATTER &&
	    h->coll != SGC_COLL_ALLGATHER)
		return SGC_REJ_COLL;
	if (!sgc_dtype_valid(h->dtype))
		return SGC_REJ_DTYPE;
	if (!sgc_op_valid(h->op))
		return SGC_REJ_OP;
	if (h->policy > 1 || (world > 0 && h->arg >= world))
		return SGC_REJ_FIELD;
	if (h->type == SGC_MSG_SHARD_ACK) {
		if (h->nchunks < 1 || h->chunk > h->nchunks)
			return SGC_REJ_CHUNK;
		return body == sizeof(__u64) ? SGC_REJ_NONE : SGC_REJ_LEN;
	}
	if (h->nchunks < 1 || h->chunk >= h->nchunks)
		return SGC_REJ_CHUNK;
	bytes = (uint64_t)h->count * sgc_wire_dtype_size(h->dtype);
	if (chunk_bytes && bytes > chunk_bytes)
		return SGC_REJ_COUNT;
	return body == bytes ? SGC_REJ_NONE : SGC_REJ_LEN;
}

/*
 * The welcome's parameters are what a worker runs the whole job with, so a
 * bad chunk size here would break every later datagram: check it too.
 */
static int check_welcome(const struct sgc_hdr *h, const void *pkt, size_t body)
{
	struct sgc_welcome w;

	if (body < sizeof(w) || body - sizeof(w) != (size_t)h->count * sizeof(struct sgc_roster_ent))
		return SGC_REJ_LEN;
	if (h->chunk >= h->nchunks)
		return SGC_REJ_CHUNK;
	memcpy(&w, (const uint8_t *)pkt + SGC_HDR_SIZE, sizeof(w));
	if (h->arg < 2 || h->arg > SGC_MAX_WORLD || w.world != h->arg)
		return SGC_REJ_FIELD;
	/* The range sgc_chunk_bytes_for_mtu() gives. */
	if (w.chunk_bytes < 64 || w.chunk_bytes > SGC_MAX_BODY || w.chunk_bytes % 8)
		return SGC_REJ_FIELD;
	return SGC_REJ_NONE;
}

/* An ABORT is a header, or (a join given up) a header, a struct
 * sgc_join_abort and a bitmap of its nbits ranks. */
static int check_abort(const void *pkt, size_t body)
{
	struct sgc_join_abort a;

	if (!body)
		return SGC_REJ_NONE;
	if (body < sizeof(a))
		return SGC_REJ_LEN;
	memcpy(&a, (const uint8_t *)pkt + SGC_HDR_SIZE, sizeof(a));
	if (a.world < 2 || a.world > SGC_MAX_WORLD || a.nbits > a.world || a.missing > a.world)
		return SGC_REJ_FIELD;
	return body == sizeof(a) + ((size_t)a.nbits + 7) / 8 ? SGC_REJ_NONE : SGC_REJ_LEN;
}

int sgc_wire_check(const void *pkt, size_t len, uint64_t job_id, int world,
		   uint32_t chunk_bytes)
{
	const struct sgc_hdr *h = pkt;	/* packed: any alignment is fine */
	size_t body;

	if (!pkt || len < SGC_HDR_SIZE)
		return SGC_REJ_SHORT;
	body = len - SGC_HDR_SIZE;

	if (h->magic != SGC_WIRE_MAGIC)
		return SGC_REJ_MAGIC;
	if (h->version != SGC_WIRE_VERSION)
		return SGC_REJ_VERSION;
	if (h->type < 1 || h->type >= SGC_MSG_MAX)
		return SGC_REJ_TYPE;

	/* A hello precedes the job id; every other datagram carries it. */
	if (h->type == SGC_MSG_HELLO) {
		if (h->job_id != 0)
			return SGC_REJ_JOB;
	} else if (job_id && h->job_id != job_id) {
		return SGC_REJ_JOB;
	}

	/*
	 * A hello from rank 0, or with a world size other than the job's,
	 * parses: the coordinator answers it with a diagnosis, so it must get
	 * that far.  Its rank is checked against the world size it claims.
	 */
	if (h->type == SGC_MSG_HELLO) {
		if (h->arg < 2 || h->arg > SGC_MAX_WORLD)
			return SGC_REJ_FIELD;
		if (h->rank >= h->arg)
			return SGC_REJ_RANK;
	} else if (world > 0 && h->rank >= world) {
		return SGC_REJ_RANK;
	}

	/* Fan-out requests never cross the wire: scatter_prog clears the
	 * flag on every clone.  Only three types carry a stamp. */
	if ((h->flags & SGC_F_FANOUT) ||
	    (h->stamp && h->type != SGC_MSG_RESULT && h->type != SGC_MSG_PULL &&
	     h->type != SGC_MSG_NACK))
		return SGC_REJ_FIELD;

	switch (h->type) {
	case SGC_MSG_CONTRIB:
	case SGC_MSG_RESULT:
		return check_data(h, body, chunk_bytes);
	case SGC_MSG_PULL:
		return check_pull(h, body);
	case SGC_MSG_QUERY:
		return check_query(h, body, chunk_bytes);
	case SGC_MSG_NACK:
		return check_nack(h, body);
	case SGC_MSG_WELCOME:
		return check_welcome(h, pkt, body);
	case SGC_MSG_SHARD:
	case SGC_MSG_SHARD_ACK:
		return check_shard(h, body, chunk_bytes, world);
	case SGC_MSG_ABORT:
		/* Two bodies: what a mismatch was, or why a join failed. */
		if (h->aux == SGC_EMISMATCH)
			return !body || body == sizeof(struct sgc_mismatch) ? SGC_REJ_NONE : SGC_REJ_LEN;
		return check_abort(pkt, body);
	default:	/* HELLO, READY, BYE, BYE_ACK, ACK, WAIT: header only */
		return body ? SGC_REJ_LEN : SGC_REJ_NONE;
	}
}

static const char *const reject_names[SGC_REJ_MAX] = {
	[SGC_REJ_NONE] = "ok",
	[SGC_REJ_SHORT] = "short",
	[SGC_REJ_MAGIC] = "bad magic",
	[SGC_REJ_VERSION] = "bad version",
	[SGC_REJ_TYPE] = "unknown type",
	[SGC_REJ_JOB] = "other job",
	[SGC_REJ_RANK] = "rank out of range",
	[SGC_REJ_SOURCE] = "unknown source",
	[SGC_REJ_COLL] = "unknown collective",
	[SGC_REJ_DTYPE] = "bad dtype",
	[SGC_REJ_OP] = "bad op",
	[SGC_REJ_CHUNK] = "chunk out of range",
	[SGC_REJ_COUNT] = "count too large",
	[SGC_REJ_LEN] = "bad length",
	[SGC_REJ_FIELD] = "bad field",
};

const char *sgc_reject_name(int reason)
{
	if (reason < 0 || reason >= SGC_REJ_MAX || !reject_names[reason])
		return "unknown reason";
	return reject_names[reason];
}

/* ---- chunking ---- */

/*
 * Elements per chunk.  0 when not even one element fits, which callers
 * treat as "cannot be chunked" (sgc_nchunks() returns 0).
 */
static size_t chunk_cap(size_t elsz, size_t chunk_bytes)
{
	return elsz ? chunk_bytes / elsz : 0;
}

uint32_t sgc_nchunks(size_t count, size_t elsz, size_t chunk_bytes)
{
	size_t per = chunk_cap(elsz, chunk_bytes);
	size_t n;

	if (!per)
		return 0;
	if (!count)
		return 1;
	n = count / per + (count % per != 0);
	return n > UINT32_MAX ? 0 : (uint32_t)n;
}

size_t sgc_chunk_elems(size_t count, size_t elsz, size_t chunk_bytes, uint32_t chunk)
{
	size_t per = chunk_cap(elsz, chunk_bytes);
	size_t first;

	if (!per || chunk >= count / per + (count % per != 0))
		return 0;
	first = (size_t)chunk * per;
	return count - first < per ? count - first : per;
}

uint32_t sgc_chunk_bytes_for_mtu(unsigned int mtu)
{
	const unsigned int min = 64;
	unsigned int b;

	if (mtu <= SGC_L3L4_OVERHEAD + SGC_HDR_SIZE + min)
		return min;
	b = (mtu - SGC_L3L4_OVERHEAD - SGC_HDR_SIZE) & ~7u;
	if (b > SGC_MAX_BODY)
		b = SGC_MAX_BODY;
	return b < min ? min : b;
}
