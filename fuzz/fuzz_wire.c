/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libFuzzer target: sgc_wire_check(), the gate every received datagram
 * passes.  Input: 3 bytes of context (world, chunk_bytes, job mode), then
 * the datagram.  Beyond memory safety (ASan sees the datagram end exactly
 * where the input ends) it checks the gate's contract: a datagram it
 * accepts has every field in range for its type and a body of exactly the
 * length those fields say, which is what the receive paths rely on when
 * they index by chunk and copy count elements.  A contract breach aborts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "sgc_internal.h"

static const uint32_t chunk_sizes[] = { 0, 64, 256, 1024, 3424, SGC_MAX_BODY };

static void breach(const char *what, const struct sgc_hdr *h, size_t len)
{
	fprintf(stderr, "fuzz_wire: accepted datagram breaks the contract: %s "
		"(type %u, len %zu, chunk %u/%u, count %u, arg %u, aux %u)\n",
		what, h->type, len, h->chunk, h->nchunks, h->count, h->arg, h->aux);
	abort();
}

#define EXPECT(cond) do { if (!(cond)) breach(#cond, &h, len); } while (0)

/* What sgc_wire_check() promises for an accepted datagram, restated. */
static void check_contract(const uint8_t *pkt, size_t len, uint64_t job, int world,
			   uint32_t cb)
{
	struct sgc_hdr h = { 0 };
	struct sgc_welcome w;
	struct sgc_join_abort ja;
	size_t body, bytes;

	EXPECT(len >= SGC_HDR_SIZE);
	memcpy(&h, pkt, sizeof(h));
	body = len - SGC_HDR_SIZE;
	EXPECT(h.magic == SGC_WIRE_MAGIC && h.version == SGC_WIRE_VERSION);
	EXPECT(h.type >= SGC_MSG_HELLO && h.type < SGC_MSG_MAX);
	EXPECT(!(h.flags & SGC_F_FANOUT));
	EXPECT(!h.stamp || h.type == SGC_MSG_RESULT || h.type == SGC_MSG_PULL ||
	       h.type == SGC_MSG_NACK);
	if (h.type == SGC_MSG_HELLO) {
		EXPECT(h.job_id == 0);
		EXPECT(h.arg >= 2 && h.arg <= SGC_MAX_WORLD && h.rank < h.arg);
		EXPECT(body == 0);
		return;
	}
	EXPECT(!job || h.job_id == job);
	EXPECT(world <= 0 || h.rank < world);
	switch (h.type) {
	case SGC_MSG_CONTRIB:
	case SGC_MSG_RESULT:
		EXPECT(h.coll >= 1 && h.coll < SGC_COLL_MAX);
		EXPECT(sgc_dtype_valid(h.dtype));
		EXPECT(sgc_op_valid(h.op) || h.op == SGC_CUSTOM);
		EXPECT(h.nchunks >= 1 && h.chunk < h.nchunks);
		bytes = (size_t)h.count * sgc_dtype_size(h.dtype);
		EXPECT(sgc_dtype_size(h.dtype) == sgc_wire_dtype_size(h.dtype));
		EXPECT(!cb || bytes <= cb);
		EXPECT(body == bytes);
		EXPECT(!(h.type == SGC_MSG_RESULT && (h.flags & SGC_F_DONE)) || body == 0);
		break;
	case SGC_MSG_PULL:
		EXPECT(h.coll >= 1 && h.coll < SGC_COLL_MAX);
		EXPECT(sgc_dtype_valid(h.dtype));
		EXPECT(sgc_op_valid(h.op) || h.op == SGC_CUSTOM);
		EXPECT(h.aux >= 1 && h.chunk < h.nchunks && (uint64_t)h.chunk + h.aux <= h.nchunks);
		EXPECT(body == 0);
		break;
	case SGC_MSG_QUERY:
		EXPECT(sgc_dtype_valid(h.dtype));
		EXPECT(sgc_op_valid(h.op) || h.op == SGC_CUSTOM);
		EXPECT(h.nchunks >= 1 && h.policy <= SGC_WIRE_WAIT_ANY);
		EXPECT(!cb || body <= cb);
		break;
	case SGC_MSG_NACK:
		EXPECT(h.coll >= 1 && h.coll < SGC_COLL_MAX);
		EXPECT(h.arg >= 1 && h.chunk < h.nchunks && (uint64_t)h.chunk + h.arg <= h.nchunks);
		EXPECT(body == ((size_t)h.arg + 7) / 8);
		break;
	case SGC_MSG_WELCOME:
		EXPECT(body >= sizeof(w));
		EXPECT(body - sizeof(w) == (size_t)h.count * sizeof(struct sgc_roster_ent));
		EXPECT(h.chunk < h.nchunks);
		memcpy(&w, pkt + SGC_HDR_SIZE, sizeof(w));
		EXPECT(h.arg >= 2 && h.arg <= SGC_MAX_WORLD && w.world == h.arg);
		EXPECT(w.chunk_bytes >= 64 && w.chunk_bytes <= SGC_MAX_BODY && w.chunk_bytes % 8 == 0);
		break;
	case SGC_MSG_ABORT:
		if (!body)
			break;
		if (h.aux == SGC_EMISMATCH) {
			EXPECT(body == sizeof(struct sgc_mismatch));
			break;
		}
		EXPECT(body >= sizeof(ja));
		memcpy(&ja, pkt + SGC_HDR_SIZE, sizeof(ja));
		EXPECT(ja.world >= 2 && ja.world <= SGC_MAX_WORLD);
		EXPECT(ja.nbits <= ja.world && ja.missing <= ja.world);
		EXPECT(body == sizeof(ja) + ((size_t)ja.nbits + 7) / 8);
		break;
	default:
		EXPECT(body == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *pkt;
	uint64_t job;
	uint32_t cb;
	size_t len;
	int world, rej, again;

	if (size < 3)
		return 0;
	world = data[0] & 0x80 ? 0 : 2 + data[0] % 40;
	cb = chunk_sizes[data[1] % (sizeof(chunk_sizes) / sizeof(chunk_sizes[0]))];
	job = data[2] & 1 ? 0 : FUZZ_JOB;
	pkt = data + 3;
	len = size - 3;

	rej = sgc_wire_check(pkt, len, job, world, cb);
	if (rej < SGC_REJ_NONE || rej >= SGC_REJ_MAX || rej == SGC_REJ_SOURCE) {
		fprintf(stderr, "fuzz_wire: reason %d out of range\n", rej);
		abort();
	}
	if (!sgc_reject_name(rej) || !strcmp(sgc_reject_name(rej), "unknown reason")) {
		fprintf(stderr, "fuzz_wire: reason %d has no name\n", rej);
		abort();
	}
	/* Pure function of its input: the same datagram, the same verdict. */
	again = sgc_wire_check(pkt, len, job, world, cb);
	if (again != rej) {
		fprintf(stderr, "fuzz_wire: verdict %d then %d\n", rej, again);
		abort();
	}
	if (rej == SGC_REJ_NONE)
		check_contract(pkt, len, job, world, cb);
	return 0;
}
