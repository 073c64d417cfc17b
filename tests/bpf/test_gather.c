/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * gather_prog and the reduction programs, run with BPF_PROG_RUN on crafted
 * frames (no network): fixture tables of {frame, verdict, counters, slot
 * state}, every dtype x op against libsgcoll's own sgc_reduce_into(), and
 * the delivery modes.  Needs root; exits 77 otherwise.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "harness.h"
#include "mac.h"
#include "agg_saturating_sum.skel.h"
#include "sgc_internal.h"

/* The main fixture: world 5, socket delivery, no re-broadcast. */
#define W 5
static struct sgc *S;
static int gather_fd;
static uint64_t seed = 0x5eed5eed12345678ULL;

/* ------------------------------------------------------------ helpers */

struct expect {
	uint32_t verdict;
	int stat[4];		/* counters that go up by one; -1 ends */
	int untouched;		/* data_out must equal the frame */
};

#define EXPECT(v, ...) ((struct expect){ .verdict = (v), .stat = { __VA_ARGS__, -1 } })

static struct t_run run;
static uint8_t frame[4096];

static const char *verdict_name(uint32_t v)
{
	switch (v) {
	case XDP_ABORTED: return "XDP_ABORTED";
	case XDP_DROP: return "XDP_DROP";
	case XDP_PASS: return "XDP_PASS";
	case XDP_TX: return "XDP_TX";
	default: return "?";
	}
}

/* Run one frame; check verdict and that exactly the expected counters
 * moved, by one each.  Returns the frame length. */
static size_t step_on(struct sgc *s, int fd, const struct t_frame *f, const struct expect *e,
		      const char *what)
{
	uint64_t before[SGC_ST_MAX], after[SGC_ST_MAX], want[SGC_ST_MAX] = { 0 };
	size_t len = t_build(f, frame);
	int i, err, bad = 0;

	for (i = 0; i < 4 && e->stat[i] >= 0; i++)
		want[e->stat[i]]++;
	t_stats(s, before);
	err = t_run_xdp(fd, frame, len, &run);
	assert_int_equal(err, 0);
	t_stats(s, after);
	if (run.retval != e->verdict) {
		print_error("%s: verdict %s, expected %s\n", what, verdict_name(run.retval),
			    verdict_name(e->verdict));
		bad = 1;
	}
	for (i = 0; i < SGC_ST_MAX; i++) {
		if (after[i] - before[i] != want[i]) {
			print_error("%s: counter %s moved by %llu, expected %llu\n", what,
				    t_stat_names[i], (unsigned long long)(after[i] - before[i]),
				    (unsigned long long)want[i]);
			bad = 1;
		}
	}
	if (e->untouched && (run.meta_len || run.out_len != len || memcmp(run.out, frame, len))) {
		print_error("%s: the frame was modified\n", what);
		bad = 1;
	}
	if (bad)
		fail_msg("%s", what);
	return len;
}

static size_t step(const struct t_frame *f, struct expect e, const char *what)
{
	return step_on(S, gather_fd, f, &e, what);
}

static void set_query(struct sgc *s, uint32_t seq, uint32_t policy, uint32_t want)
{
	s->bss->win.query = sgc_bpf_query_word(seq, policy, want);
}

/* The collective window, and query @qseq in progress as WAIT_ALL. */
static void set_window(struct sgc *s, uint32_t base, uint32_t qseq)
{
	s->bss->win.base = base;
	set_query(s, qseq, SGC_WIRE_WAIT_ALL, W - 1);
}

static void fill_int32(struct t_frame *f, int32_t v)
{
	uint32_t i;

	for (i = 0; i < f->h.count; i++)
		memcpy(f->body + 4 * i, &v, 4);
}

/* Random elements, a quarter of them extremes of the type. */
static void fill_random(uint8_t *p, uint32_t count, uint8_t dtype)
{
	size_t sz = sgc_wire_dtype_size(dtype);
	int sign = !(dtype & 1);
	uint32_t i;

	for (i = 0; i < count; i++) {
		uint64_t r = t_rand(&seed), v;
		uint64_t top = sz == 8 ? ~0ULL : (1ULL << (8 * sz)) - 1;
		uint64_t smax = top >> 1, smin = smax + 1;

		switch (r % 16) {
		case 0: v = 0; break;
		case 1: v = top; break;				/* -1 / UMAX */
		case 2: v = 1; break;
		case 3: v = sign ? smax : top; break;		/* MAX */
		case 4: v = sign ? smin : 0; break;		/* MIN */
		case 5: v = sign ? smin + 1 : top - 1; break;
		default: v = t_rand(&seed) & top;
		}
		memcpy(p + i * sz, &v, sz);	/* little-endian */
	}
}

static void check_slot(struct sgc *s, __u32 idx, uint16_t nseen, uint8_t state,
		       const int *ranks, int nranks, const void *body, size_t blen, const char *what)
{
	struct sgc_bpf_slot sl;
	uint64_t seen[SGC_BPF_SEEN_WORDS] = { 0 };
	int i;

	assert_int_equal(t_slot(s, idx, &sl), 0);
	for (i = 0; i < nranks; i++)
		seen[ranks[i] / 64] |= 1ULL << (ranks[i] % 64);
	if (sl.nseen != nseen || sl.state != state || memcmp(sl.seen, seen, sizeof(seen)) ||
	    (blen && memcmp(sl.body, body, blen)))
		fail_msg("%s: slot %u: nseen %u state %u (expected %u, %u)%s%s", what, idx,
			 sl.nseen, sl.state, nseen, state,
			 memcmp(sl.seen, seen, sizeof(seen)) ? ", seen bits differ" : "",
			 blen && memcmp(sl.body, body, blen) ? ", body differs" : "");
}

/* data_out of a run that completed a chunk: metadata, then the RESULT. */
static void check_result_frame(const struct t_frame *last, size_t len, __u32 slot,
			       const void *body, size_t blen, uint16_t flags)
{
	const struct sgc_bpf_meta *m = (const void *)run.out;
	const uint8_t *fr = run.out + run.meta_len;
	struct sgc_hdr h, want = last->h;
	char why[128];

	assert_int_equal(run.meta_len, sizeof(*m));
	assert_int_equal(m->magic, SGC_BPF_META_MAGIC);
	assert_int_equal(m->slot, slot);
	assert_int_equal(run.out_len, run.meta_len + len);
	/* L2/L3 as they came, and a UDP checksum of the RESULT. */
	assert_memory_equal(fr, frame, 14 + 20 + 6);
	if (t_udp_csum_check(fr + 14, len - 14, 0, why, sizeof(why)))
		fail_msg("the RESULT's %s", why);
	memcpy(&h, fr + 42, sizeof(h));
	want.type = SGC_MSG_RESULT;
	want.flags = flags;
	want.rank = 0;
	want.aux = 0;
	assert_memory_equal(&h, &want, sizeof(h));
	if (blen)
		assert_memory_equal(fr + 42 + SGC_HDR_SIZE, body, blen);
}

/* ------------------------------------------------------------ fixtures */

static int setup_main(void **state)
{
	struct sgc_bpf_cfg c = t_cfg(W, 0);

	(void)state;
	S = t_load(&c);
	if (!S)
		return -1;
	gather_fd = bpf_program__fd(S->progs.gather_prog);
	return 0;
}

static int teardown_main(void **state)
{
	(void)state;
	sgc__destroy(S);
	return 0;
}

static int reset(void **state)
{
	struct sgc_bpf_rank e = { .ip = t_rank_ip(4), .port = t_rank_port(4) };
	__u32 k = 4;

	(void)state;
	t_rank_mac(4, e.mac);
	bpf_map_update_elem(bpf_map__fd(S->maps.ranks), &k, &e, BPF_ANY);
	t_slot_clear(S);
	set_window(S, 100, 40);
	return 0;
}

/* ------------------------------------------------------------ foreign */

static void test_foreign(void **state)
{
	struct t_frame f;
	struct expect e = EXPECT(XDP_PASS, SGC_ST_PASS_FOREIGN);
	uint64_t b[SGC_ST_MAX], a[SGC_ST_MAX];

	(void)state;
	e.untouched = 1;

	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 100, 0, 1, SGC_INT32, SGC_SUM, 4);
	f.ip_proto = IPPROTO_ICMP;
	step(&f, e, "ICMP");

	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 100, 0, 1, SGC_INT32, SGC_SUM, 4);
	f.ip_proto = IPPROTO_TCP;
	step(&f, e, "TCP");

	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 100, 0, 1, SGC_INT32, SGC_SUM, 4);
	f.dport = htons(T_COORD_PORT + 1);
	step(&f, e, "other UDP port");

	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 100, 0, 1, SGC_INT32, SGC_SUM, 4);
	f.daddr = inet_addr("10.9.0.2");
	step(&f, e, "other IP");

	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 100, 0, 1, SGC_INT32, SGC_SUM, 4);
	f.eth_proto = ETH_P_ARP;
	step(&f, e, "ARP");

	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 100, 0, 1, SGC_INT32, SGC_SUM, 4);
	f.eth_proto = ETH_P_IPV6;
	step(&f, e, "IPv6 ethertype");

	/* Fragments and IP options: test_ip_layer. */
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 100, 0, 1, SGC_INT32, SGC_SUM, 4);
	f.frag_off = 0x0010;	/* later fragment */
	step(&f, e, "later IP fragment");

	/* Shorter than an Ethernet + IPv4 header. */
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 100, 0, 1, SGC_INT32, SGC_SUM, 4);
	t_build(&f, frame);
	t_stats(S, b);
	assert_int_equal(t_run_xdp(gather_fd, frame, 30, &run), 0);
	t_stats(S, a);
	assert_int_equal(run.retval, XDP_PASS);
	assert_int_equal(a[SGC_ST_PASS_FOREIGN] - b[SGC_ST_PASS_FOREIGN], 1);
	assert_int_equal(run.out_len, 30);
	assert_memory_equal(run.out, frame, 30);
}

/* ------------------------------------------------------------ malformed */

typedef void (*mutate_fn)(struct t_frame *f);

static void m_short(struct t_frame *f) { f->payload_len = 20; }
static void m_short47(struct t_frame *f) { f->payload_len = SGC_HDR_SIZE - 1; }
static void m_magic(struct t_frame *f) { f->h.magic = 0x4754; }
static void m_version(struct t_frame *f) { f->h.version = SGC_WIRE_VERSION + 1; }
static void m_type0(struct t_frame *f) { f->h.type = 0; }
static void m_type_max(struct t_frame *f) { f->h.type = SGC_MSG_MAX; }
static void m_udp_len_long(struct t_frame *f) { f->udp_len_delta = 1; }
static void m_udp_len_short(struct t_frame *f) { f->udp_len_delta = -1; }
static void m_ip_len_long(struct t_frame *f) { f->ip_len_delta = 4; f->udp_len_delta = 4; }
static void m_job(struct t_frame *f) { f->h.job_id ^= 1; }
static void m_rank(struct t_frame *f) { f->h.rank = W; }
static void m_rank_big(struct t_frame *f) { f->h.rank = 0xffff; }
static void m_src_ip(struct t_frame *f) { f->saddr = t_rank_ip(3); }
static void m_src_port(struct t_frame *f) { f->sport = htons(9999); }
static void m_coll0(struct t_frame *f) { f->h.coll = 0; }
static void m_coll_max(struct t_frame *f) { f->h.coll = SGC_COLL_MAX; }
static void m_dtype(struct t_frame *f) { f->h.dtype = 8; }
static void m_op(struct t_frame *f) { f->h.op = 8; }
static void m_chunk(struct t_frame *f) { f->h.chunk = f->h.nchunks; }
static void m_nchunks0(struct t_frame *f) { f->h.nchunks = 0; f->h.chunk = 0; }
static void m_count_up(struct t_frame *f) { f->h.count++; }
static void m_count_down(struct t_frame *f) { f->h.count--; }
static void m_body_up(struct t_frame *f) { f->blen++; }
static void m_too_big(struct t_frame *f)
{
	f->h.count = 3424 / 4 + 1;
	f->blen = (size_t)f->h.count * 4;
}
static void m_result(struct t_frame *f) { f->h.type = SGC_MSG_RESULT; }
static void m_fanout(struct t_frame *f) { f->h.flags = SGC_F_FANOUT; }
static void m_kernel(struct t_frame *f) { f->h.flags = SGC_F_KERNEL; }
static void m_stamp(struct t_frame *f) { f->h.stamp = 1; }
static void m_root(struct t_frame *f) { f->h.arg = W; }
static void m_bcast_nonroot(struct t_frame *f) { f->h.coll = SGC_COLL_BCAST; f->h.arg = 3; }
static void m_policy(struct t_frame *f) { f->h.coll = SGC_COLL_QUERY; f->h.seq = 40; f->h.policy = 3; }
static void m_unregistered(struct t_frame *f)
{
	f->h.rank = 4;
	f->saddr = t_rank_ip(4);
	f->sport = t_rank_port(4);
}

static void test_malformed(void **state)
{
	static const struct {
		const char *what;
		mutate_fn mut;
		int stat;
	} cases[] = {
		{ "UDP payload shorter than the header", m_short, SGC_ST_DROP_MALFORMED },
		{ "UDP payload one byte short of the header", m_short47, SGC_ST_DROP_MALFORMED },
		{ "bad magic", m_magic, SGC_ST_DROP_MALFORMED },
		{ "bad version", m_version, SGC_ST_DROP_MALFORMED },
		{ "type 0", m_type0, SGC_ST_DROP_MALFORMED },
		{ "type SGC_MSG_MAX", m_type_max, SGC_ST_DROP_MALFORMED },
		{ "UDP length one more than the datagram", m_udp_len_long, SGC_ST_DROP_MALFORMED },
		{ "UDP length one less than the datagram", m_udp_len_short, SGC_ST_DROP_MALFORMED },
		{ "IPv4 length past the frame", m_ip_len_long, SGC_ST_DROP_MALFORMED },
		{ "another job", m_job, SGC_ST_DROP_JOB },
		{ "rank == world", m_rank, SGC_ST_DROP_RANK },
		{ "rank 65535", m_rank_big, SGC_ST_DROP_RANK },
		{ "source IP of another rank", m_src_ip, SGC_ST_DROP_SOURCE },
		{ "source port not the rank's", m_src_port, SGC_ST_DROP_SOURCE },
		{ "unregistered rank", m_unregistered, SGC_ST_DROP_SOURCE },
		{ "coll 0", m_coll0, SGC_ST_DROP_FIELD },
		{ "coll SGC_COLL_MAX", m_coll_max, SGC_ST_DROP_FIELD },
		{ "dtype 8", m_dtype, SGC_ST_DROP_FIELD },
		{ "op 8", m_op, SGC_ST_DROP_FIELD },
		{ "chunk == nchunks", m_chunk, SGC_ST_DROP_FIELD },
		{ "nchunks 0", m_nchunks0, SGC_ST_DROP_FIELD },
		{ "count one more than the body", m_count_up, SGC_ST_DROP_FIELD },
		{ "count one less than the body", m_count_down, SGC_ST_DROP_FIELD },
		{ "body one byte longer than count", m_body_up, SGC_ST_DROP_FIELD },
		{ "count * size > chunk_bytes", m_too_big, SGC_ST_DROP_FIELD },
		{ "forged RESULT", m_result, SGC_ST_DROP_FIELD },
		{ "SGC_F_FANOUT from the wire", m_fanout, SGC_ST_DROP_FIELD },
		{ "SGC_F_KERNEL from the wire", m_kernel, SGC_ST_DROP_FIELD },
		{ "stamp on a contribution", m_stamp, SGC_ST_DROP_FIELD },
		{ "root >= world", m_root, SGC_ST_DROP_FIELD },
		{ "broadcast from a rank that is not the root", m_bcast_nonroot, SGC_ST_DROP_FIELD },
		{ "query policy 3", m_policy, SGC_ST_DROP_FIELD },
	};
	struct sgc_bpf_slot before, after;
	__u32 idx = sgc_slot_index(SGC_COLL_ALLREDUCE, 100, 0);
	struct t_frame f;
	size_t i;

	(void)state;
	/* rank 4 unregistered for one case */
	{
		struct sgc_bpf_rank z = { 0 };
		__u32 k = 4;

		assert_int_equal(bpf_map_update_elem(bpf_map__fd(S->maps.ranks), &k, &z, BPF_ANY), 0);
	}
	/* A slot with one contribution in it must come out unchanged. */
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 100, 0, 1, SGC_INT32, SGC_SUM, 8);
	fill_int32(&f, 7);
	step(&f, EXPECT(XDP_DROP, SGC_ST_REDUCED), "first contribution");
	assert_int_equal(t_slot(S, idx, &before), 0);

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct expect e = EXPECT(XDP_DROP, cases[i].stat);

		t_contrib(&f, 2, SGC_COLL_ALLREDUCE, 100, 0, 1, SGC_INT32, SGC_SUM, 8);
		fill_int32(&f, 1000);
		cases[i].mut(&f);
		step(&f, e, cases[i].what);
		assert_int_equal(t_slot(S, idx, &after), 0);
		if (memcmp(&before, &after, sizeof(before)))
			fail_msg("%s: the slot changed", cases[i].what);
	}
}

/* ------------------------------------------------------------ control */

static void test_control(void **state)
{
	static const uint8_t types[] = { SGC_MSG_NACK, SGC_MSG_ACK, SGC_MSG_BYE, SGC_MSG_READY,
					 SGC_MSG_ABORT, SGC_MSG_PULL };
	struct expect e = EXPECT(XDP_PASS, SGC_ST_PASS_CONTROL);
	struct t_frame f;
	size_t i;

	(void)state;
	e.untouched = 1;
	t_contrib(&f, 3, 0, 0, 0, 0, 0, 0, 0);
	f.h.type = SGC_MSG_HELLO;
	f.h.job_id = 0;
	f.h.arg = W;
	step(&f, e, "HELLO (job id 0)");
	/* A hello passes even from an address nobody registered. */
	f.saddr = inet_addr("10.9.7.7");
	step(&f, e, "HELLO from a new address");

	for (i = 0; i < sizeof(types); i++) {
		t_contrib(&f, 2, SGC_COLL_ALLREDUCE, 100, 0, 1, 0, 0, 0);
		f.h.type = types[i];
		step(&f, e, "control message");
	}
	/* ...but not from someone else's address. */
	t_contrib(&f, 2, SGC_COLL_ALLREDUCE, 100, 0, 1, 0, 0, 0);
	f.h.type = SGC_MSG_NACK;
	f.sport = htons(1);
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_SOURCE), "NACK from a wrong port");
}

/* ------------------------------------------------------------ sweeps */

/* One chunk of (@dt, @op) from every rank of @world in random order,
 * checked step by step against sgc_reduce_into(). */
static void sweep_one(struct sgc *s, int fd, int world, int dt, int op, uint32_t seq,
		      uint32_t chunk_bytes)
{
	static uint8_t ref[SGC_MAX_BODY];
	size_t sz = sgc_wire_dtype_size((uint8_t)dt);
	uint32_t maxc = chunk_bytes / (uint32_t)sz, count;
	__u32 idx = sgc_slot_index(SGC_COLL_ALLREDUCE, seq, 0);
	int order[8], seen[8], k, n;
	struct t_frame f;
	char what[96];
	size_t len;

	/* Some fixed shapes (one element, a partial word, the maximum),
	 * then random counts. */
	switch ((dt * 7 + op) % 5) {
	case 0: count = 1; break;
	case 1: count = 8 / (uint32_t)sz + 1; break;
	case 2: count = maxc; break;
	default: count = 1 + (uint32_t)(t_rand(&seed) % maxc);
	}
	set_window(s, seq - 5, 0);
	for (k = 0; k < world; k++)
		order[k] = k;
	for (k = world - 1; k > 0; k--) {
		int j = (int)(t_rand(&seed) % (uint64_t)(k + 1)), t = order[k];

		order[k] = order[j];
		order[j] = t;
	}
	for (n = 0; n < world; n++) {
		int r = order[n], last = n + 1 == world;

		t_contrib(&f, r, SGC_COLL_ALLREDUCE, seq, 0, 1, (uint8_t)dt, (uint8_t)op,
			  (uint16_t)count);
		fill_random(f.body, count, (uint8_t)dt);
		if (n == 0)
			memcpy(ref, f.body, f.blen);
		else
			sgc_reduce_into(ref, f.body, count, dt, op);
		seen[n] = r;
		snprintf(what, sizeof(what), "world %d %s %s x%u: contribution %d (rank %d)", world,
			 sgc_dtype_name(dt), sgc_op_name(op), count, n, r);
		len = step_on(s, fd, &f, last ? &EXPECT(XDP_PASS, SGC_ST_REDUCED, SGC_ST_COMPLETED)
					       : &EXPECT(XDP_DROP, SGC_ST_REDUCED), what);
		check_slot(s, idx, (uint16_t)(n + 1), last ? SGC_SLOT_DONE : SGC_SLOT_OPEN, seen,
			   n + 1, ref, f.blen, what);
		if (last)
			check_result_frame(&f, len, idx, ref, f.blen, SGC_F_KERNEL);
	}
}

/* Every dtype x op with @world contributors (the coordinator included). */
static void sweep(int world)
{
	struct sgc_bpf_cfg c = t_cfg(world, 0);
	struct sgc *s = t_load(&c);
	uint32_t seq = 1000;
	int fd, dt, op;

	assert_non_null(s);
	fd = bpf_program__fd(s->progs.gather_prog);
	for (dt = 0; dt < 8; dt++)
		for (op = 0; op < 7; op++)
			sweep_one(s, fd, world, dt, op, seq++, c.chunk_bytes);
	sgc__destroy(s);
}

static void test_sweep_2(void **state) { (void)state; sweep(2); }
static void test_sweep_3(void **state) { (void)state; sweep(3); }
static void test_sweep_4(void **state) { (void)state; sweep(4); }
static void test_sweep_5(void **state) { (void)state; sweep(5); }

/* ------------------------------------------------------------ slot rules */

static void test_dup_late_mismatch(void **state)
{
	__u32 idx = sgc_slot_index(SGC_COLL_ALLREDUCE, 101, 2);
	int32_t sum[16];
	struct t_frame f;
	int r, i;

	(void)state;
	for (r = 0; r < 3; r++) {
		t_contrib(&f, r, SGC_COLL_ALLREDUCE, 101, 2, 3, SGC_INT32, SGC_SUM, 16);
		fill_int32(&f, 10 + r);
		step(&f, EXPECT(XDP_DROP, SGC_ST_REDUCED), "contribution");
	}
	for (i = 0; i < 16; i++)
		sum[i] = 10 + 11 + 12;

	/* The same rank again, with other data: dropped, result unchanged. */
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 101, 2, 3, SGC_INT32, SGC_SUM, 16);
	fill_int32(&f, 5000);
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_DUP), "duplicate");
	check_slot(S, idx, 3, SGC_SLOT_OPEN, (int[]){ 0, 1, 2 }, 3, sum, sizeof(sum), "after dup");

	/* Same tag, different dtype / op / count / root / vector length:
	 * mismatches, which go up to user space to be named. */
	t_contrib(&f, 3, SGC_COLL_ALLREDUCE, 101, 2, 3, SGC_UINT32, SGC_SUM, 16);
	step(&f, EXPECT(XDP_PASS, SGC_ST_PASS_MISMATCH), "other dtype");
	t_contrib(&f, 3, SGC_COLL_ALLREDUCE, 101, 2, 3, SGC_INT32, SGC_MAX, 16);
	step(&f, EXPECT(XDP_PASS, SGC_ST_PASS_MISMATCH), "other op");
	t_contrib(&f, 3, SGC_COLL_ALLREDUCE, 101, 2, 3, SGC_INT32, SGC_SUM, 15);
	step(&f, EXPECT(XDP_PASS, SGC_ST_PASS_MISMATCH), "other count");
	t_contrib(&f, 3, SGC_COLL_REDUCE, 101, 2, 3, SGC_INT32, SGC_SUM, 16);
	step(&f, EXPECT(XDP_PASS, SGC_ST_PASS_MISMATCH), "other collective");
	t_contrib(&f, 3, SGC_COLL_ALLREDUCE, 101, 2, 3, SGC_INT32, SGC_SUM, 16);
	f.h.arg = 1;
	step(&f, EXPECT(XDP_PASS, SGC_ST_PASS_MISMATCH), "other root");
	t_contrib(&f, 3, SGC_COLL_ALLREDUCE, 101, 2, 3, SGC_INT32, SGC_SUM, 16);
	f.h.total = 2 * 16 + 1;
	step(&f, EXPECT(XDP_PASS, SGC_ST_PASS_MISMATCH), "other vector length");
	check_slot(S, idx, 3, SGC_SLOT_OPEN, (int[]){ 0, 1, 2 }, 3, sum, sizeof(sum),
		   "after mismatches");

	for (r = 3; r < W; r++) {
		t_contrib(&f, r, SGC_COLL_ALLREDUCE, 101, 2, 3, SGC_INT32, SGC_SUM, 16);
		fill_int32(&f, 10 + r);
		step(&f, EXPECT(r + 1 < W ? XDP_DROP : XDP_PASS, SGC_ST_REDUCED,
				r + 1 < W ? -1 : SGC_ST_COMPLETED), "contribution");
	}
	/* Retransmissions after completion are late. */
	t_contrib(&f, 4, SGC_COLL_ALLREDUCE, 101, 2, 3, SGC_INT32, SGC_SUM, 16);
	fill_int32(&f, 14);
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_LATE), "late retransmission");
	t_contrib(&f, 2, SGC_COLL_ALLREDUCE, 101, 2, 3, SGC_INT32, SGC_SUM, 16);
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_LATE), "late duplicate");
}

static void test_window(void **state)
{
	struct t_frame f;

	(void)state;
	set_window(S, 100, 40);
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 99, 0, 1, SGC_INT32, SGC_SUM, 4);
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_WINDOW), "replay of base - 1");
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 100 + 128, 0, 1, SGC_INT32, SGC_SUM, 4);
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_WINDOW), "base + 128");
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 100 + 0x80000000u, 0, 1, SGC_INT32, SGC_SUM, 4);
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_WINDOW), "half the sequence space away");
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 100 + 127, 0, 1, SGC_INT32, SGC_SUM, 4);
	step(&f, EXPECT(XDP_DROP, SGC_ST_REDUCED), "base + 127");
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 100, 0, 1, SGC_INT32, SGC_SUM, 4);
	step(&f, EXPECT(XDP_DROP, SGC_ST_REDUCED), "base");

	/* Queries: only the one in progress (40, WAIT_ALL). */
	t_contrib(&f, 1, SGC_COLL_QUERY, 39, 0, 1, SGC_INT32, SGC_SUM, 4);
	f.h.arg = W - 1;
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_WINDOW), "query before the one in progress");
	f.h.seq = 41;
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_WINDOW), "query after the one in progress");
	f.h.seq = 40;
	step(&f, EXPECT(XDP_DROP, SGC_ST_REDUCED), "query in progress");
	S->bss->win.query = 0;
	f.h.seq = 0;
	f.h.rank = 2;
	f.saddr = t_rank_ip(2);
	f.sport = t_rank_port(2);
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_WINDOW), "query with none in progress");

	/* Wrap-around: base near 2^32. */
	set_window(S, 0xfffffff0u, 40);
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 5, 0, 1, SGC_INT32, SGC_SUM, 4);
	step(&f, EXPECT(XDP_DROP, SGC_ST_REDUCED), "sequence wrapped past 0");
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 0xffffffefu, 0, 1, SGC_INT32, SGC_SUM, 4);
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_WINDOW), "before a wrapped base");
}

static void test_stale_takeover(void **state)
{
	__u32 idx = sgc_slot_index(SGC_COLL_ALLREDUCE, 100, 1);
	struct sgc_bpf_slot sl;
	struct t_frame f;
	uint32_t gen;
	int r;

	(void)state;
	assert_int_equal(sgc_slot_index(SGC_COLL_ALLREDUCE, 100, 33), idx);
	assert_int_equal(sgc_slot_index(SGC_COLL_ALLREDUCE, 228, 1), idx);

	/* chunk 1 of seq 100 opens the slot and completes... */
	for (r = 0; r < W; r++) {
		t_contrib(&f, r, SGC_COLL_ALLREDUCE, 100, 1, 40, SGC_INT32, SGC_SUM, 4);
		fill_int32(&f, 1);
		step(&f, r + 1 < W ? EXPECT(XDP_DROP, SGC_ST_REDUCED) :
				     EXPECT(XDP_PASS, SGC_ST_REDUCED, SGC_ST_COMPLETED), "chunk 1");
	}
	assert_int_equal(t_slot(S, idx, &sl), 0);
	gen = sl.gen;
	/* ...chunk 33 (same slot, newer) takes it over (an open chunk 1
	 * would keep it: test_slot_busy)... */
	t_contrib(&f, 2, SGC_COLL_ALLREDUCE, 100, 33, 40, SGC_INT32, SGC_SUM, 4);
	fill_int32(&f, 33);
	step(&f, EXPECT(XDP_DROP, SGC_ST_REDUCED), "chunk 33 takes the slot");
	assert_int_equal(t_slot(S, idx, &sl), 0);
	assert_int_equal(sl.chunk, 33);
	assert_int_equal(sl.gen, gen + 1);
	check_slot(S, idx, 1, SGC_SLOT_OPEN, (int[]){ 2 }, 1, f.body, f.blen, "after takeover");
	/* ...and chunk 1 is stale from then on. */
	t_contrib(&f, 3, SGC_COLL_ALLREDUCE, 100, 1, 40, SGC_INT32, SGC_SUM, 4);
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_STALE), "chunk 1 after chunk 33");

	/* A newer collective in the same slot (seq + 128) takes over too. */
	set_window(S, 101, 40);
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 228, 1, 2, SGC_INT32, SGC_SUM, 4);
	fill_int32(&f, 228);
	step(&f, EXPECT(XDP_DROP, SGC_ST_REDUCED), "seq + 128 takes the slot");
	assert_int_equal(t_slot(S, idx, &sl), 0);
	assert_int_equal(sl.seq, 228);
	assert_int_equal(sl.gen, gen + 2);
	check_slot(S, idx, 1, SGC_SLOT_OPEN, (int[]){ 1 }, 1, f.body, f.blen, "after seq takeover");
	/* An older seq in the window but behind the slot's: stale. */
	set_window(S, 100, 40);
	t_contrib(&f, 2, SGC_COLL_ALLREDUCE, 100, 33, 40, SGC_INT32, SGC_SUM, 4);
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_STALE), "seq 100 behind seq 228");
}

static void test_out_of_order_chunks(void **state)
{
	static const uint32_t order[] = { 3, 0, 2, 1 };
	struct t_frame f;
	int r;
	size_t i;

	(void)state;
	/* Every rank sends chunks 3, 0, 2, 1; ranks interleave. */
	for (r = 0; r < W; r++) {
		for (i = 0; i < 4; i++) {
			uint32_t ch = order[(i + (size_t)r) % 4];
			int last = r == W - 1;

			t_contrib(&f, r, SGC_COLL_ALLREDUCE, 102, ch, 4, SGC_UINT16, SGC_MAX,
				  ch == 3 ? 5 : 100);
			{
				uint32_t k;

				for (k = 0; k < f.h.count; k++) {
					uint16_t v = (uint16_t)(r * 1000 + ch * 10 + k);

					memcpy(f.body + 2 * k, &v, 2);
				}
			}
			if (last) {
				size_t len = step(&f, EXPECT(XDP_PASS, SGC_ST_REDUCED, SGC_ST_COMPLETED),
						  "last contribution of a chunk");
				uint16_t want[100];
				uint32_t k;

				for (k = 0; k < f.h.count; k++)
					want[k] = (uint16_t)((W - 1) * 1000 + ch * 10 + k);
				check_result_frame(&f, len, sgc_slot_index(SGC_COLL_ALLREDUCE, 102, ch),
						   want, f.blen, SGC_F_KERNEL);
			} else {
				step(&f, EXPECT(XDP_DROP, SGC_ST_REDUCED), "contribution");
			}
		}
	}
}

/* ------------------------------------------------------------ collectives */

static void test_kinds(void **state)
{
	struct t_frame f;
	size_t len;
	int r;

	(void)state;
	/* Barrier: empty bodies from everyone; the RESULT says DONE. */
	for (r = 0; r < W; r++) {
		t_contrib(&f, r, SGC_COLL_BARRIER, 103, 0, 1, SGC_UINT8, SGC_SUM, 0);
		if (r + 1 < W) {
			step(&f, EXPECT(XDP_DROP, SGC_ST_REDUCED), "barrier");
		} else {
			len = step(&f, EXPECT(XDP_PASS, SGC_ST_REDUCED, SGC_ST_COMPLETED),
				   "barrier done");
			check_result_frame(&f, len, sgc_slot_index(SGC_COLL_BARRIER, 103, 0), NULL, 0,
					   SGC_F_KERNEL | SGC_F_DONE);
		}
	}
	/* Broadcast from root 3: its one contribution completes the chunk. */
	t_contrib(&f, 3, SGC_COLL_BCAST, 104, 0, 1, SGC_INT64, SGC_SUM, 3);
	f.h.arg = 3;
	fill_random(f.body, 3, SGC_INT64);
	len = step(&f, EXPECT(XDP_PASS, SGC_ST_REDUCED, SGC_ST_COMPLETED), "broadcast");
	check_result_frame(&f, len, sgc_slot_index(SGC_COLL_BCAST, 104, 0), f.body, f.blen,
			   SGC_F_KERNEL);
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_LATE), "broadcast again");
	/* Reduce to root 2 needs everyone, like allreduce. */
	for (r = 0; r < W; r++) {
		t_contrib(&f, r, SGC_COLL_REDUCE, 105, 0, 1, SGC_INT8, SGC_MIN, 9);
		f.h.arg = 2;
		fill_random(f.body, 9, SGC_INT8);
		step(&f, EXPECT(r + 1 < W ? XDP_DROP : XDP_PASS, SGC_ST_REDUCED,
				r + 1 < W ? -1 : SGC_ST_COMPLETED), "reduce");
	}
}

/*
 * The UDP checksum of the RESULT gather_prog builds (check_result_frame()
 * verifies it): bodies of every length mod 4 and across the 512-byte
 * pieces the body is summed in; and a RESULT whose checksum comes out 0,
 * which must go out as 0xffff (0 is "no checksum").  Broadcasts, whose one
 * contribution is the result.
 */
static void test_result_csum(void **state)
{
	static const uint16_t counts[] = { 1, 2, 3, 4, 5, 6, 7, 510, 511, 512, 513, 514,
					   1023, 1025, 2047, 3071, 3073, 3423, 3424 };
	uint32_t seq = 106;
	struct t_frame f;
	uint8_t fr[4096];
	uint32_t sum;
	uint16_t x;
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++, seq++) {
		t_contrib(&f, 3, SGC_COLL_BCAST, seq, 0, 1, SGC_UINT8, SGC_SUM, counts[i]);
		f.h.arg = 3;
		fill_random(f.body, counts[i], SGC_UINT8);
		len = step(&f, EXPECT(XDP_PASS, SGC_ST_REDUCED, SGC_ST_COMPLETED), "broadcast");
		check_result_frame(&f, len, sgc_slot_index(SGC_COLL_BCAST, seq, 0), f.body, f.blen,
				   SGC_F_KERNEL);
	}

	/* A body whose last 16-bit word is what makes the sum 0xffff: the
	 * RESULT of the next broadcast, summed here with that word 0. */
	t_contrib(&f, 3, SGC_COLL_BCAST, seq, 0, 1, SGC_UINT16, SGC_SUM, 8);
	f.h.arg = 3;
	fill_random(f.body, 8, SGC_UINT16);
	memset(f.body + 14, 0, 2);
	len = t_build(&f, fr);
	{
		struct sgc_hdr *h = (struct sgc_hdr *)(fr + 42);

		h->type = SGC_MSG_RESULT;
		h->flags = SGC_F_KERNEL;
		h->rank = 0;
		h->aux = 0;
	}
	sum = t_sum16(0, fr + 14 + 12, 8) + IPPROTO_UDP + (uint32_t)(len - 34);
	x = (uint16_t)~t_fold(t_sum16(sum, fr + 34, len - 34));
	f.body[14] = (uint8_t)(x >> 8);		/* as the sum reads it: big-endian */
	f.body[15] = (uint8_t)x;
	len = step(&f, EXPECT(XDP_PASS, SGC_ST_REDUCED, SGC_ST_COMPLETED), "checksum 0");
	check_result_frame(&f, len, sgc_slot_index(SGC_COLL_BCAST, seq, 0), f.body, f.blen,
			   SGC_F_KERNEL);
	assert_int_equal(run.out[run.meta_len + 40], 0xff);
	assert_int_equal(run.out[run.meta_len + 41], 0xff);
}

static void test_query(void **state)
{
	struct t_frame f;
	size_t len;
	int r;
	__u32 idx;

	(void)state;
	set_window(S, 100, 40);
	set_query(S, 40, SGC_WIRE_WAIT_N, 2);
	/* WAIT_N 2: two workers complete it, the rest are late. */
	idx = sgc_slot_index(SGC_COLL_QUERY, 40, 0);
	for (r = 1; r < W; r++) {
		t_contrib(&f, r, SGC_COLL_QUERY, 40, 0, 1, SGC_UINT32, SGC_BOR, 2);
		f.h.policy = SGC_WIRE_WAIT_N;
		f.h.arg = 2;
		fill_random(f.body, 2, SGC_UINT32);
		if (r == 1) {
			step(&f, EXPECT(XDP_DROP, SGC_ST_REDUCED), "query WAIT_N first");
		} else if (r == 2) {
			len = step(&f, EXPECT(XDP_PASS, SGC_ST_REDUCED, SGC_ST_COMPLETED),
				   "query WAIT_N second");
			check_slot(S, idx, 2, SGC_SLOT_DONE, (int[]){ 1, 2 }, 2, NULL, 0, "WAIT_N 2");
			(void)len;
		} else {
			step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_LATE), "query WAIT_N after completion");
		}
	}
	/* WAIT_ANY: the first answer is it. */
	set_query(S, 41, SGC_WIRE_WAIT_ANY, 1);
	t_contrib(&f, 3, SGC_COLL_QUERY, 41, 0, 1, SGC_UINT32, SGC_BOR, 2);
	f.h.policy = SGC_WIRE_WAIT_ANY;
	f.h.arg = 1;
	step(&f, EXPECT(XDP_PASS, SGC_ST_REDUCED, SGC_ST_COMPLETED), "query WAIT_ANY");
	/* WAIT_ALL: every worker, not the coordinator. */
	set_query(S, 42, SGC_WIRE_WAIT_ALL, W - 1);
	for (r = 1; r < W; r++) {
		t_contrib(&f, r, SGC_COLL_QUERY, 42, 0, 1, SGC_UINT32, SGC_BOR, 2);
		f.h.arg = W - 1;
		step(&f, EXPECT(r + 1 < W ? XDP_DROP : XDP_PASS, SGC_ST_REDUCED,
				r + 1 < W ? -1 : SGC_ST_COMPLETED), "query WAIT_ALL");
	}
	/* WAIT_N above the workers is clamped to them; 0 to 1. */
	set_query(S, 43, SGC_WIRE_WAIT_N, 100);
	for (r = 1; r < W; r++) {
		t_contrib(&f, r, SGC_COLL_QUERY, 43, 0, 1, SGC_UINT32, SGC_BOR, 2);
		f.h.policy = SGC_WIRE_WAIT_N;
		f.h.arg = 100;
		step(&f, EXPECT(r + 1 < W ? XDP_DROP : XDP_PASS, SGC_ST_REDUCED,
				r + 1 < W ? -1 : SGC_ST_COMPLETED), "query WAIT_N 100");
	}
	/* Multi-chunk answers and declines are user space's. */
	{
		struct expect e = EXPECT(XDP_PASS, SGC_ST_PASS_USER);

		e.untouched = 1;
		set_query(S, 44, SGC_WIRE_WAIT_ALL, W - 1);
		t_contrib(&f, 1, SGC_COLL_QUERY, 44, 0, 2, SGC_UINT32, SGC_BOR, 2);
		f.h.arg = W - 1;
		step(&f, e, "query answer in two chunks");
		t_contrib(&f, 1, SGC_COLL_QUERY, 44, 0, 1, SGC_UINT32, SGC_BOR, 0);
		f.h.arg = W - 1;
		f.h.flags = SGC_F_DECLINE;
		step(&f, e, "query decline");
	}
}

static void test_custom_absent(void **state)
{
	struct expect e = EXPECT(XDP_PASS, SGC_ST_PASS_USER);
	struct t_frame f;

	(void)state;
	e.untouched = 1;
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 106, 0, 1, SGC_INT32, SGC_OP_CUSTOM, 4);
	step(&f, e, "custom op with no program loaded");
}

/* A reduction program run without gather_prog's hand-off does nothing. */
static void test_variant_alone(void **state)
{
	struct t_frame f;
	int fd = bpf_program__fd(S->progs.reduce_int32_sum);

	(void)state;
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 107, 0, 1, SGC_INT32, SGC_SUM, 4);
	step_on(S, fd, &f, &EXPECT(XDP_DROP, SGC_ST_DROP_MALFORMED), "reduce_int32_sum run alone");
	check_slot(S, sgc_slot_index(SGC_COLL_ALLREDUCE, 107, 0), 0, SGC_SLOT_FREE, NULL, 0, NULL, 0,
		   "untouched slot");
}

/* ------------------------------------------------------------ other configs */

static int on_event(void *ctx, void *data, size_t len)
{
	struct sgc_bpf_event *ev = ctx;

	assert_int_equal(len, sizeof(*ev));
	memcpy(ev, data, sizeof(*ev));
	ev->reserved++;		/* count records */
	return 0;
}

static void test_ringbuf(void **state)
{
	struct sgc_bpf_cfg c = t_cfg(3, SGC_BPF_CFG_RINGBUF);
	struct sgc *s = t_load(&c);
	static struct sgc_bpf_event ev;
	struct ring_buffer *rb;
	int32_t want[300];
	struct t_frame f;
	int r, fd, i;

	(void)state;
	assert_non_null(s);
	fd = bpf_program__fd(s->progs.gather_prog);
	rb = ring_buffer__new(bpf_map__fd(s->maps.events), on_event, &ev, NULL);
	assert_non_null(rb);
	set_window(s, 7, 0);
	for (i = 0; i < 300; i++)
		want[i] = 0;
	for (r = 0; r < 3; r++) {
		t_contrib(&f, r, SGC_COLL_ALLREDUCE, 9, 1, 2, SGC_INT32, SGC_SUM, 300);
		fill_random(f.body, 300, SGC_INT32);
		for (i = 0; i < 300; i++) {
			int32_t v;

			memcpy(&v, f.body + 4 * i, 4);
			want[i] = (int32_t)((uint32_t)want[i] + (uint32_t)v);
		}
		step_on(s, fd, &f, &EXPECT(XDP_DROP, SGC_ST_REDUCED, r == 2 ? SGC_ST_COMPLETED : -1,
					   r == 2 ? SGC_ST_DELIVERED : -1), "ring buffer delivery");
	}
	memset(&ev, 0, sizeof(ev));
	assert_int_equal(ring_buffer__consume(rb), 1);
	assert_int_equal(ev.reserved, 1);
	assert_int_equal(ev.hdr.type, SGC_MSG_RESULT);
	assert_int_equal(ev.hdr.flags, SGC_F_KERNEL);
	assert_int_equal(ev.hdr.seq, 9);
	assert_int_equal(ev.hdr.chunk, 1);
	assert_int_equal(ev.hdr.count, 300);
	assert_int_equal(ev.hdr.rank, 0);
	assert_int_equal(ev.slot, sgc_slot_index(SGC_COLL_ALLREDUCE, 9, 1));
	assert_int_equal(ev.nseen, 3);
	assert_int_equal(ev.seen[0], 7);
	assert_memory_equal(ev.body, want, sizeof(want));
	assert_int_equal(ring_buffer__consume(rb), 0);
	ring_buffer__free(rb);
	sgc__destroy(s);
}

/* With a job key (SGC_BPF_CFG_MAC), a contribution is reduced only with
 * the tag user space's sgc_mac_seal() gives it: the kernel's tag and
 * mac.c's agree for every body length, and every other one is dropped
 * (DROP_MAC) before it moves its rank's watermark. */
static void test_mac(void **state)
{
	static const uint8_t key[SGC_KEY_BYTES] = { 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6 };
	/* (3416: the largest body that fits a BPF_PROG_RUN frame with its tag) */
	static const uint16_t counts[] = { 1, 3, 15, 16, 17, 31, 363, 1000, 3416 };
	static struct sgc_mac_key mk, other;
	struct sgc_bpf_cfg c = t_cfg(3, SGC_BPF_CFG_MAC);
	struct sgc *s = t_load(&c);
	struct t_frame f, g;
	__u32 zero = 0;
	unsigned i, seq;
	int fd, r;

	(void)state;
	assert_non_null(s);
	fd = bpf_program__fd(s->progs.gather_prog);
	sgc_mac_derive(key, &mk);
	memcpy(&other, &mk, sizeof(other));
	other.fin[1] ^= 1;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(s->maps.mac_key), &zero, &mk, BPF_ANY), 0);
	set_window(s, 10, 0);
	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		seq = 10 + i;
		for (r = 1; r < 3; r++) {
			t_contrib(&f, r, SGC_COLL_ALLREDUCE, seq, 0, 1, SGC_INT8, SGC_SUM, counts[i]);
			fill_random(f.body, counts[i], SGC_INT8);
			f.h.aux = seq;
			t_seal(&f, &mk);
			if (r == 1) {
				/* The same contribution wrong in every way we can. */
				g = f;
				g.tagged = 0;
				g.h.flags &= (uint16_t)~SGC_F_MAC;
				step_on(s, fd, &g, &EXPECT(XDP_DROP, SGC_ST_DROP_MAC), "no tag");
				g = f;
				g.tagged = 0;
				step_on(s, fd, &g, &EXPECT(XDP_DROP, counts[i] < SGC_MAC_TAG_SIZE ?
							   SGC_ST_DROP_MAC : SGC_ST_DROP_FIELD),
					"flag, tag cut off (the body is short)");
				g = f;
				g.tag ^= 1ULL << (i * 7 % 64);
				step_on(s, fd, &g, &EXPECT(XDP_DROP, SGC_ST_DROP_MAC), "tag bit flipped");
				g = f;
				g.body[(counts[i] - 1) * i / 8] ^= 0x10;
				step_on(s, fd, &g, &EXPECT(XDP_DROP, SGC_ST_DROP_MAC), "body bit flipped");
				g = f;
				g.h.aux += 1000;
				step_on(s, fd, &g, &EXPECT(XDP_DROP, SGC_ST_DROP_MAC), "watermark changed");
				g = f;
				t_seal(&g, &other);
				step_on(s, fd, &g, &EXPECT(XDP_DROP, SGC_ST_DROP_MAC), "another key");
				assert_int_equal(s->bss->rank_wm[1], i ? seq - 1 : 0);
			}
			step_on(s, fd, &f, &EXPECT(XDP_DROP, SGC_ST_REDUCED), "tagged contribution");
			assert_int_equal(s->bss->rank_wm[r], seq);
		}
	}
	/* Without a key configured, a tagged one is not taken either. */
	sgc__destroy(s);
	c = t_cfg(3, 0);
	s = t_load(&c);
	assert_non_null(s);
	fd = bpf_program__fd(s->progs.gather_prog);
	set_window(s, 10, 0);
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 10, 0, 1, SGC_INT32, SGC_SUM, 4);
	t_seal(&f, &mk);
	step_on(s, fd, &f, &EXPECT(XDP_DROP, SGC_ST_DROP_MAC), "tag without a key");
	sgc__destroy(s);
}

/* Ring buffer with re-broadcast: the result goes on to notify_prog. */
static void test_ringbuf_allgather(void **state)
{
	struct sgc_bpf_cfg c = t_cfg(2, SGC_BPF_CFG_RINGBUF | SGC_BPF_CFG_ALLGATHER);
	struct sgc *s = t_load(&c);
	struct t_frame f;
	int fd;

	(void)state;
	assert_non_null(s);
	fd = bpf_program__fd(s->progs.gather_prog);
	set_window(s, 0, 0);
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 0, 0, 1, SGC_UINT64, SGC_BXOR, 1);
	step_on(s, fd, &f, &EXPECT(XDP_DROP, SGC_ST_REDUCED), "first");
	t_contrib(&f, 0, SGC_COLL_ALLREDUCE, 0, 0, 1, SGC_UINT64, SGC_BXOR, 1);
	step_on(s, fd, &f, &EXPECT(XDP_PASS, SGC_ST_REDUCED, SGC_ST_COMPLETED), "completing");
	assert_int_equal(run.meta_len, sizeof(struct sgc_bpf_meta));
	sgc__destroy(s);
}

static void test_keep(void **state)
{
	struct sgc_bpf_cfg c = t_cfg(W, SGC_BPF_CFG_KEEP);
	struct sgc *s = t_load(&c);
	struct expect e = EXPECT(XDP_PASS, SGC_ST_PASS_USER);
	struct t_frame f;
	int fd;

	(void)state;
	assert_non_null(s);
	fd = bpf_program__fd(s->progs.gather_prog);
	e.untouched = 1;
	set_window(s, 0, 0);
	t_contrib(&f, 2, SGC_COLL_ALLREDUCE, 3, 0, 1, SGC_INT16, SGC_PROD, 11);
	step_on(s, fd, &f, &e, "keep mode passes contributions up");
	/* ...still checked first. */
	f.h.job_id = 1;
	step_on(s, fd, &f, &EXPECT(XDP_DROP, SGC_ST_DROP_JOB), "keep mode, another job");
	check_slot(s, sgc_slot_index(SGC_COLL_ALLREDUCE, 3, 0), 0, SGC_SLOT_FREE, NULL, 0, NULL, 0,
		   "keep mode leaves slots alone");
	sgc__destroy(s);
}

/* SGC_ACCEL=auto: only scatter-gather answers are the kernel's; every
 * other kind goes up whole, still checked, and leaves its slot alone. */
static void test_kernel_colls(void **state)
{
	struct sgc_bpf_cfg c = t_cfg(W, 0);
	struct expect e = EXPECT(XDP_PASS, SGC_ST_PASS_USER);
	struct t_frame f;
	struct sgc *s;
	int fd, kind;

	(void)state;
	c.kernel_colls = 1u << SGC_COLL_QUERY;
	s = t_load(&c);
	assert_non_null(s);
	fd = bpf_program__fd(s->progs.gather_prog);
	e.untouched = 1;
	set_window(s, 0, 7);
	set_query(s, 7, SGC_WIRE_WAIT_ALL, W - 1);
	for (kind = SGC_COLL_ALLREDUCE; kind <= SGC_COLL_BARRIER; kind++) {
		t_contrib(&f, 2, kind, 3, 0, 1, SGC_INT32, SGC_SUM, kind == SGC_COLL_BARRIER ? 0 : 4);
		if (kind == SGC_COLL_BCAST)
			f.h.arg = 2;	/* the root contributes */
		step_on(s, fd, &f, &e, "a kind the kernel does not reduce goes up");
		check_slot(s, sgc_slot_index(kind, 3, 0), 0, SGC_SLOT_FREE, NULL, 0, NULL, 0,
			   "and leaves its slot alone");
	}
	t_contrib(&f, 2, SGC_COLL_ALLREDUCE, 3, 0, 1, SGC_INT32, SGC_SUM, 4);
	f.h.job_id = 1;
	step_on(s, fd, &f, &EXPECT(XDP_DROP, SGC_ST_DROP_JOB), "still checked first");
	t_contrib(&f, 1, SGC_COLL_QUERY, 7, 0, 1, SGC_UINT32, SGC_SUM, 2);
	f.h.policy = SGC_WIRE_WAIT_ALL;
	f.h.arg = W - 1;
	step_on(s, fd, &f, &EXPECT(XDP_DROP, SGC_ST_REDUCED), "a scatter-gather answer is reduced");
	sgc__destroy(s);
}

/* BPF_PROG_RUN frames arrive "on" lo: with cfg.ifindex = lo, a rank-0
 * contribution looks like one from the coordinator's wire: forged. */
static void test_rank0_from_wire(void **state)
{
	struct sgc_bpf_cfg c = t_cfg(W, 0);
	struct sgc *s;
	struct t_frame f;
	int fd;

	(void)state;
	c.ifindex = if_nametoindex("lo");
	s = t_load(&c);
	assert_non_null(s);
	fd = bpf_program__fd(s->progs.gather_prog);
	set_window(s, 0, 0);
	t_contrib(&f, 0, SGC_COLL_ALLREDUCE, 1, 0, 1, SGC_INT32, SGC_SUM, 4);
	step_on(s, fd, &f, &EXPECT(XDP_DROP, SGC_ST_DROP_SOURCE), "rank 0 on the wire");
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 1, 0, 1, SGC_INT32, SGC_SUM, 4);
	step_on(s, fd, &f, &EXPECT(XDP_DROP, SGC_ST_REDUCED), "rank 1 on the wire");
	sgc__destroy(s);
}

/* The example custom program, loaded the way the loader must do it. */
static void test_custom(void **state)
{
	struct sgc_bpf_cfg c = t_cfg(3, 0);
	struct sgc *s = t_load(&c);
	struct agg_saturating_sum *u;
	static const int32_t in[3][4] = {
		{ 0x7fffff00, -0x7fffff00, 5, -1 },
		{ 0x100, -0x200, 7, -2 },
		{ 0x7fffffff, -0x100, -12, -3 },
	};
	static const int32_t want[4] = { 0x7fffffff, -0x7fffffff - 1, 0, -6 };
	__u32 key = SGC_BPF_CUSTOM_INDEX;
	struct t_frame f;
	size_t len;
	int fd, pfd, r;

	(void)state;
	assert_non_null(s);
	u = agg_saturating_sum__open();
	assert_non_null(u);
	assert_int_equal(bpf_map__reuse_fd(u->maps.slots, bpf_map__fd(s->maps.slots)), 0);
	assert_int_equal(bpf_map__reuse_fd(u->maps.stats, bpf_map__fd(s->maps.stats)), 0);
	assert_int_equal(bpf_map__reuse_fd(u->maps.events, bpf_map__fd(s->maps.events)), 0);
	assert_int_equal(bpf_map__reuse_fd(u->maps.jobs, bpf_map__fd(s->maps.jobs)), 0);
	assert_int_equal(agg_saturating_sum__load(u), 0);
	pfd = bpf_program__fd(u->progs.agg_saturating_sum);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(s->maps.reduce_progs), &key, &pfd,
					     BPF_ANY), 0);

	fd = bpf_program__fd(s->progs.gather_prog);
	set_window(s, 0, 0);
	for (r = 0; r < 3; r++) {
		t_contrib(&f, r, SGC_COLL_ALLREDUCE, 2, 0, 1, SGC_INT32, SGC_OP_CUSTOM, 4);
		memcpy(f.body, in[r], sizeof(in[r]));
		len = step_on(s, fd, &f, &EXPECT(r < 2 ? XDP_DROP : XDP_PASS, SGC_ST_REDUCED,
						 r < 2 ? -1 : SGC_ST_COMPLETED),
			      "custom saturating sum");
	}
	check_result_frame(&f, len, sgc_slot_index(SGC_COLL_ALLREDUCE, 2, 0), want, sizeof(want),
			   SGC_F_KERNEL);
	agg_saturating_sum__destroy(u);
	sgc__destroy(s);
}

/* ------------------------------------------- forged and out-of-rule frames */

/*
 * gather_prog parses exactly what user space would: a fragment or a
 * header with IP options for the coordinator's port is dropped unparsed
 * (counted), whatever it carries; frames for other ports stay untouched.
 */
static void test_ip_layer(void **state)
{
	struct expect foreign = EXPECT(XDP_PASS, SGC_ST_PASS_FOREIGN);
	struct t_frame f;

	(void)state;
	foreign.untouched = 1;

	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 100, 0, 1, SGC_INT32, SGC_SUM, 4);
	f.frag_off = 0x2000;	/* MF, offset 0: the first fragment */
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_IP), "first IP fragment of a contribution");
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 100, 0, 1, SGC_INT32, SGC_SUM, 4);
	f.ihl = 6;
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_IP), "contribution with IP options");
	f.ihl = 15;
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_IP), "contribution with 40 bytes of IP options");

	/* A forged kernel result, in every shape. */
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 100, 0, 1, SGC_INT32, SGC_SUM, 4);
	f.h.type = SGC_MSG_RESULT;
	f.h.flags = SGC_F_KERNEL;
	f.h.fan_first = 3;
	f.ihl = 6;
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_IP), "F_KERNEL RESULT with IP options");
	f.ihl = 0;
	f.frag_off = 0x2000;
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_IP), "F_KERNEL RESULT as a first fragment");
	f.frag_off = 0x4000;	/* DF: a whole datagram */
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_FIELD), "F_KERNEL RESULT with DF");
	f.frag_off = 0;
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_FIELD), "F_KERNEL RESULT");
	f.h.flags = 0;
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_FIELD), "RESULT to the coordinator");
	f.h.flags = SGC_F_KERNEL;
	f.saddr = inet_addr("10.9.9.9");
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_SOURCE), "F_KERNEL RESULT from a stranger");

	/* Not for the coordinator's port: left alone, fragment or not. */
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 100, 0, 1, SGC_INT32, SGC_SUM, 4);
	f.dport = htons(T_COORD_PORT + 1);
	f.frag_off = 0x2000;
	step(&f, foreign, "first fragment for another port");
	f.frag_off = 0;
	f.ihl = 6;
	step(&f, foreign, "IP options, another port");
	/* A later fragment has no UDP header, so no port to tell; without
	 * its first fragment it is never reassembled. */
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 100, 0, 1, SGC_INT32, SGC_SUM, 4);
	f.frag_off = 0x0010;
	step(&f, foreign, "later IP fragment");
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 100, 0, 1, SGC_INT32, SGC_SUM, 4);
	f.ihl = 4;		/* not an IPv4 header: the stack drops it */
	step(&f, foreign, "IPv4 header length 16");
}

/* Issue 16, item 6: a datagram moves its rank's watermark only once it
 * has passed every check. */
static void test_watermark_after_checks(void **state)
{
	struct t_frame f;

	(void)state;
	S->bss->rank_wm[1] = 7;
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 99, 0, 1, SGC_INT32, SGC_SUM, 4);
	f.h.aux = 1000;
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_WINDOW), "replay below the window");
	assert_int_equal(S->bss->rank_wm[1], 7);
	f.h.seq = 100 + 128;
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_WINDOW), "far future");
	assert_int_equal(S->bss->rank_wm[1], 7);
	f.h.seq = 100;
	f.h.dtype = 8;
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_FIELD), "bad dtype");
	assert_int_equal(S->bss->rank_wm[1], 7);
	f.h.dtype = SGC_INT32;
	f.h.count++;
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_FIELD), "count and body disagree");
	assert_int_equal(S->bss->rank_wm[1], 7);
	f.h.count--;
	f.h.arg = W;
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_FIELD), "root out of range");
	assert_int_equal(S->bss->rank_wm[1], 7);
	f.h.arg = 0;
	step(&f, EXPECT(XDP_DROP, SGC_ST_REDUCED), "a good contribution");
	assert_int_equal(S->bss->rank_wm[1], 1000);
}

/* Issue 16, item 6: an open chunk of a collective in the window keeps its
 * slot; a chunk 32 further on (same slot, newer tag) waits its turn. */
static void test_slot_busy(void **state)
{
	__u32 idx = sgc_slot_index(SGC_COLL_ALLREDUCE, 100, 1);
	struct sgc_bpf_slot sl;
	struct t_frame f;
	uint32_t gen;
	int r;

	(void)state;
	t_contrib(&f, 1, SGC_COLL_ALLREDUCE, 100, 1, 40, SGC_INT32, SGC_SUM, 4);
	fill_int32(&f, 1);
	step(&f, EXPECT(XDP_DROP, SGC_ST_REDUCED), "chunk 1 opens the slot");
	assert_int_equal(t_slot(S, idx, &sl), 0);
	gen = sl.gen;
	t_contrib(&f, 2, SGC_COLL_ALLREDUCE, 100, 33, 40, SGC_INT32, SGC_SUM, 4);
	fill_int32(&f, 33);
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_BUSY), "chunk 33 while chunk 1 is open");
	assert_int_equal(t_slot(S, idx, &sl), 0);
	assert_int_equal(sl.chunk, 1);
	assert_int_equal(sl.gen, gen);
	fill_int32(&f, 1);
	check_slot(S, idx, 1, SGC_SLOT_OPEN, (int[]){ 1 }, 1, f.body, f.blen, "chunk 1 kept");
	/* Chunk 1 completes... */
	for (r = 0; r < W; r++) {
		if (r == 1)
			continue;
		t_contrib(&f, r, SGC_COLL_ALLREDUCE, 100, 1, 40, SGC_INT32, SGC_SUM, 4);
		fill_int32(&f, 1);
		step(&f, r + 1 < W ? EXPECT(XDP_DROP, SGC_ST_REDUCED) :
				     EXPECT(XDP_PASS, SGC_ST_REDUCED, SGC_ST_COMPLETED),
		     "the rest of chunk 1");
	}
	/* ...and then chunk 33 may have the slot. */
	t_contrib(&f, 2, SGC_COLL_ALLREDUCE, 100, 33, 40, SGC_INT32, SGC_SUM, 4);
	fill_int32(&f, 33);
	step(&f, EXPECT(XDP_DROP, SGC_ST_REDUCED), "chunk 33 after chunk 1 completed");
	assert_int_equal(t_slot(S, idx, &sl), 0);
	assert_int_equal(sl.chunk, 33);
	assert_int_equal(sl.gen, gen + 1);
}

/* Issue 16, item 5: the completion rule is the query's, as user space
 * published it; an answer that claims another is dropped. */
static void test_query_policy(void **state)
{
	__u32 idx = sgc_slot_index(SGC_COLL_QUERY, 40, 0);
	struct t_frame f;
	int r;

	(void)state;
	set_query(S, 40, SGC_WIRE_WAIT_ALL, W - 1);
	t_contrib(&f, 1, SGC_COLL_QUERY, 40, 0, 1, SGC_UINT32, SGC_BOR, 2);
	f.h.policy = SGC_WIRE_WAIT_ANY;
	f.h.arg = 1;
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_MISMATCH), "WAIT_ANY answer to a WAIT_ALL query");
	f.h.policy = SGC_WIRE_WAIT_N;
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_MISMATCH), "WAIT_N 1 answer to a WAIT_ALL query");
	for (r = 1; r < W; r++) {
		t_contrib(&f, r, SGC_COLL_QUERY, 40, 0, 1, SGC_UINT32, SGC_BOR, 2);
		f.h.policy = SGC_WIRE_WAIT_ALL;
		f.h.arg = W - 1;
		step(&f, r + 1 < W ? EXPECT(XDP_DROP, SGC_ST_REDUCED) :
				     EXPECT(XDP_PASS, SGC_ST_REDUCED, SGC_ST_COMPLETED),
		     "WAIT_ALL answers");
	}
	check_slot(S, idx, W - 1, SGC_SLOT_DONE, (int[]){ 1, 2, 3, 4 }, W - 1, NULL, 0, "WAIT_ALL");

	set_query(S, 41, SGC_WIRE_WAIT_N, 2);
	t_contrib(&f, 1, SGC_COLL_QUERY, 41, 0, 1, SGC_UINT32, SGC_BOR, 2);
	f.h.policy = SGC_WIRE_WAIT_N;
	f.h.arg = 1;
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_MISMATCH), "WAIT_N 1 answer to a WAIT_N 2 query");
	f.h.arg = 2;
	step(&f, EXPECT(XDP_DROP, SGC_ST_REDUCED), "WAIT_N 2, first");
	t_contrib(&f, 2, SGC_COLL_QUERY, 41, 0, 1, SGC_UINT32, SGC_BOR, 2);
	f.h.policy = SGC_WIRE_WAIT_N;
	f.h.arg = 2;
	step(&f, EXPECT(XDP_PASS, SGC_ST_REDUCED, SGC_ST_COMPLETED), "WAIT_N 2, second");

	/* Only the query in progress takes answers. */
	t_contrib(&f, 1, SGC_COLL_QUERY, 42, 0, 1, SGC_UINT32, SGC_BOR, 2);
	f.h.policy = SGC_WIRE_WAIT_N;
	f.h.arg = 2;
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_WINDOW), "answer to a query not yet asked");
	t_contrib(&f, 1, SGC_COLL_QUERY, 40, 0, 1, SGC_UINT32, SGC_BOR, 2);
	f.h.policy = SGC_WIRE_WAIT_N;
	f.h.arg = 2;
	step(&f, EXPECT(XDP_DROP, SGC_ST_DROP_WINDOW), "answer to the previous query");
}

int main(void)
{
	const struct CMUnitTest main_tests[] = {
		cmocka_unit_test_setup(test_foreign, reset),
		cmocka_unit_test_setup(test_malformed, reset),
		cmocka_unit_test_setup(test_control, reset),
		cmocka_unit_test_setup(test_dup_late_mismatch, reset),
		cmocka_unit_test_setup(test_window, reset),
		cmocka_unit_test_setup(test_stale_takeover, reset),
		cmocka_unit_test_setup(test_out_of_order_chunks, reset),
		cmocka_unit_test_setup(test_kinds, reset),
		cmocka_unit_test_setup(test_result_csum, reset),
		cmocka_unit_test_setup(test_query, reset),
		cmocka_unit_test_setup(test_custom_absent, reset),
		cmocka_unit_test_setup(test_variant_alone, reset),
		cmocka_unit_test_setup(test_ip_layer, reset),
		cmocka_unit_test_setup(test_watermark_after_checks, reset),
		cmocka_unit_test_setup(test_slot_busy, reset),
		cmocka_unit_test_setup(test_query_policy, reset),
	};
	const struct CMUnitTest other_tests[] = {
		cmocka_unit_test(test_sweep_2),
		cmocka_unit_test(test_sweep_3),
		cmocka_unit_test(test_sweep_4),
		cmocka_unit_test(test_sweep_5),
		cmocka_unit_test(test_ringbuf),
		cmocka_unit_test(test_mac),
		cmocka_unit_test(test_ringbuf_allgather),
		cmocka_unit_test(test_keep),
		cmocka_unit_test(test_kernel_colls),
		cmocka_unit_test(test_rank0_from_wire),
		cmocka_unit_test(test_custom),
	};
	int fails;

	t_require_bpf();
	fprintf(stderr, "seed 0x%llx\n", (unsigned long long)seed);
	fails = cmocka_run_group_tests_name("gather (world 5)", main_tests, setup_main, teardown_main);
	fails += cmocka_run_group_tests_name("gather (other configurations)", other_tests, NULL, NULL);
	return fails ? 1 : 0;
}
