// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * sgc_bench - libsgcoll's side of the benchmarks.  Every rank runs it
 * (tools/sgc-cluster run ... -- sgc_bench ...; sgc_init_env() reads the
 * rank, world and coordinator from the environment); rank 0 prints one
 * RESULT line (bench_util.h).
 *
 * Workloads:
 *   ar1 ar363 ar64k ar1m   sgc_allreduce of 1, 363, 16384, 262144 int32 SUM
 *   ar256k                 65536 int32 SUM (256 KiB: between the star's and the
 *                          sharded algorithm's sizes)
 *   ar16m ar64m            4194304 and 16777216 int32 SUM (16 and 64 MiB)
 *   sg363                  sgbpf's workload: rank 0 sgc_scatter_gather() of 363
 *                          int32 SUM, WAIT_ALL; workers answer in sgc_serve()
 *                          (or the XDP responder answers for them: run
 *                          sgc-responder on the cluster and pass --responder)
 * Modes:
 *   lat    one operation at a time.  Allreduce: barrier, then time the call
 *          on every rank; an iteration's latency is the maximum over ranks.
 *          With --max-s the run also ends on time (bench/loss.py: under
 *          heavy loss an operation may take a second): the barrier is then
 *          a 1-element MAX allreduce that carries rank 0's "time is up", so
 *          every rank stops after the same operation.
 *   tput   allreduce: --window sgc_iallreduce in flight (at most 64), a new
 *          one per completion; scatter-gather is blocking in libsgcoll's API,
 *          so its throughput is back-to-back calls (window 1).
 * Coordinator-bound allreduce (--responder, tput): the workers join, take
 * part in the first barrier and wait in sgc_serve(); the XDP responder
 * contributes for them (bench_proto.h), answering the result of collective
 * s with the contribution to s + window.  Contribution ids are the
 * collectives' seqs: the barrier is seq 0, allreduce k (from 0) is k + 1.
 * Only rank 0 checks results then, and the run ends without the final
 * allreduces (the responder has contributed to collectives past the last).
 * Every result is checked on every rank (bench_proto.h's contributions:
 * rank r gives bench_contrib(r, id, i) for element i of operation id), and
 * a run reports verified=1 only if all were right.  Rank 0's datagrams sent
 * and sent again (struct sgc_stats) are in the result line, warm-up
 * included.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sgcoll.h>
#include <sgcoll/abi.h>

#include "bench_proto.h"
#include "bench_util.h"

/* responder.bpf.c answers int32 queries by these values. */
_Static_assert(SGC_INT32 == 4 && SGC_UINT32 == 5, "responder.bpf.c's DT_INT32/DT_UINT32");

#define MAX_WINDOW	SGC_MAX_INFLIGHT
#define TPUT_MEM_CAP	(64u << 20)	/* send + receive buffers of a window */

struct opts {
	const char *name;	/* contender label */
	const char *workload;
	bool sg, tput, responder;
	size_t count;
	long ops, warmup;
	double max_s;		/* lat allreduce: stop measuring after this */
	long min_ops;		/* ... but not before this many are measured */
	int window, sample;
	unsigned serve_idle_ms;
	size_t query_bytes;	/* sg: query payload, zero-padded */
};

static int rank, world;
static long handler_calls;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sgc_bench --workload ar1|ar363|ar64k|ar256k|ar1m|ar16m|ar64m|sg363 [options]\n"
		"  --mode lat|tput     (default lat)\n"
		"  --ops N             measured operations (default 5000 lat, 8000 tput)\n"
		"  --warmup N          unmeasured operations first (default 200)\n"
		"  --max-s S           lat allreduce: stop after S seconds of measuring, once\n"
		"                      --min-ops N (default 1) are measured\n"
		"  --window W          allreduce tput: operations in flight, <= %d (default 16)\n"
		"  --sample N          throughput sample every N completions (default 200)\n"
		"  --name LABEL        contender name in the result (default sgc-user/sgc-ebpf)\n"
		"  --responder         the XDP responder answers for the workers: sg363, or an\n"
		"                      allreduce of one chunk in tput mode (rank 0 only measures;\n"
		"                      run sgc-responder --allreduce-window W --allreduce-count N\n"
		"                      with this --window and the workload's count)\n"
		"  --serve-idle-ms T   workers' sgc_serve() idle timeout (default 600000)\n"
		"  --query-bytes N     sg: query payload, zero-padded (default: the answer's size,\n"
		"                      so that the XDP responder answers in place)\n"
		"Run on every rank, e.g. tools/sgc-cluster session --hosts 4 --ranks 9 -- sgc_bench ...\n",
		MAX_WINDOW);
}

static int parse(struct opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "workload", required_argument, NULL, 'l' },
		{ "mode", required_argument, NULL, 'm' },
		{ "ops", required_argument, NULL, 'n' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "max-s", required_argument, NULL, 'T' },
		{ "min-ops", required_argument, NULL, 'M' },
		{ "window", required_argument, NULL, 'W' },
		{ "sample", required_argument, NULL, 'S' },
		{ "name", required_argument, NULL, 'N' },
		{ "responder", no_argument, NULL, 'R' },
		{ "serve-idle-ms", required_argument, NULL, 'i' },
		{ "query-bytes", required_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	static const struct { const char *name; size_t count; bool sg; } wl[] = {
		{ "ar1", 1, false }, { "ar363", 363, false }, { "ar64k", 16384, false },
		{ "ar256k", 65536, false }, { "ar1m", 262144, false }, { "ar16m", 4194304, false },
		{ "ar64m", 16777216, false },
		{ "sg363", BENCH_COUNT, true },
	};
	int opt;
	size_t i;

	*o = (struct opts){ .ops = -1, .warmup = 200, .window = 16, .sample = 200,
			    .serve_idle_ms = 600000, .min_ops = 1 };
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'l': o->workload = optarg; break;
		case 'm':
			if (strcmp(optarg, "lat") && strcmp(optarg, "tput"))
				return -1;
			o->tput = !strcmp(optarg, "tput");
			break;
		case 'n': o->ops = atol(optarg); break;
		case 'w': o->warmup = atol(optarg); break;
		case 'T': o->max_s = atof(optarg); break;
		case 'M': o->min_ops = atol(optarg); break;
		case 'W': o->window = atoi(optarg); break;
		case 'S': o->sample = atoi(optarg); break;
		case 'N': o->name = optarg; break;
		case 'R': o->responder = true; break;
		case 'i': o->serve_idle_ms = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'q': o->query_bytes = strtoul(optarg, NULL, 10); break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	for (i = 0; o->workload && i < sizeof(wl) / sizeof(wl[0]); i++) {
		if (!strcmp(o->workload, wl[i].name)) {
			o->count = wl[i].count;
			o->sg = wl[i].sg;
			break;
		}
	}
	if (!o->count)
		return -1;
	if (o->ops < 0)
		o->ops = o->tput ? 8000 : 5000;
	if (!o->query_bytes)
		o->query_bytes = o->count * 4;
	if (o->query_bytes < sizeof(struct bench_sg_query))
		o->query_bytes = sizeof(struct bench_sg_query);
	if (o->ops < 1 || o->warmup < 0 || o->window < 1 || o->window > MAX_WINDOW ||
	    o->sample < 1 || o->max_s < 0 || o->min_ops < 1)
		return -1;
	if (o->responder && !o->sg && !o->tput) {
		fprintf(stderr, "sgc_bench: --responder with an allreduce needs --mode tput (the "
			"responder answers each result with the contribution to the collective "
			"--window later)\n");
		return -1;
	}
	if (o->max_s > 0 && (o->tput || o->sg)) {
		fprintf(stderr, "sgc_bench: --max-s is for allreduce in lat mode\n");
		return -1;
	}
	return 0;
}

static int check(const char *what, int rc)
{
	if (rc)
		fprintf(stderr, "rank %d: %s: %s\n  %s\n", rank, what, sgc_strerror(rc),
			sgc_last_error());
	return rc;
}

/* ---- allreduce ---- */

static void fill(int32_t *v, size_t n, uint32_t id)
{
	uint32_t step = 2 * id + 1, x = bench_rank_term((uint32_t)rank) + step;
	size_t i;

	for (i = 0; i < n; i++, x += step)
		v[i] = (int32_t)x;
}

/* The sum over ranks 0..world-1 of bench_contrib(r, id, i). */
static bool right(const int32_t *v, size_t n, uint32_t id, uint32_t rank_sum, uint32_t nranks)
{
	uint32_t step = 2 * id + 1;
	size_t i;

	for (i = 0; i < n; i++)
		if ((uint32_t)v[i] != rank_sum + nranks * ((uint32_t)(i + 1) * step))
			return false;
	return true;
}

static uint32_t rank_sum_upto(int last)
{
	uint32_t s = 0;
	int r;

	for (r = 0; r <= last; r++)
		s += bench_rank_term((uint32_t)r);
	return s;
}

/*
 * The barrier before an operation.  With --max-s it also tells every rank
 * whether rank 0 found the time up, after @measured operations.
 */
static int lat_sync(sgc_comm *c, const struct opts *o, long measured, uint64_t t_meas,
		    bool *stop)
{
	int64_t up = 0;
	int err;

	if (o->max_s <= 0)
		return check("barrier", sgc_barrier(c));
	if (rank == 0 && measured >= o->min_ops &&
	    (double)(bench_now_ns() - t_meas) > o->max_s * 1e9)
		up = 1;
	err = check("barrier (allreduce of the stop flag)",
		    sgc_allreduce(c, &up, &up, 1, SGC_INT64, SGC_MAX));
	*stop = !err && up;
	return err;
}

static int allreduce_lat(sgc_comm *c, const struct opts *o, struct bench_result *res, long *bad)
{
	long total = o->warmup + o->ops, k;
	int32_t *send = malloc(o->count * 4), *recv = malloc(o->count * 4);
	uint64_t *lat = calloc((size_t)o->ops, sizeof(*lat)), cpu0 = 0, t_meas = 0;
	uint32_t rs = rank_sum_upto(world - 1);
	bool stop = false;
	int err = -ENOMEM;

	if (!send || !recv || !lat)
		goto out;
	for (k = 0; k < total; k++) {
		uint64_t t0;

		if (k == o->warmup) {
			cpu0 = bench_cpu_ns();
			t_meas = bench_now_ns();
		}
		fill(send, o->count, (uint32_t)k + 1);
		err = lat_sync(c, o, k - o->warmup, t_meas, &stop);
		if (err)
			goto out;
		if (stop)
			break;
		t0 = bench_now_ns();
		err = check("allreduce", sgc_allreduce(c, send, recv, o->count, SGC_INT32, SGC_SUM));
		if (err)
			goto out;
		if (k >= o->warmup)
			lat[k - o->warmup] = bench_now_ns() - t0;
		if (!right(recv, o->count, (uint32_t)k + 1, rs, (uint32_t)world))
			(*bad)++;
	}
	/* every rank stopped after the same operation */
	res->ops = k - o->warmup;
	if (res->ops < 1) {
		fprintf(stderr, "sgc_bench: the time was up before any operation was measured\n");
		err = -ETIMEDOUT;
		goto out;
	}
	res->cpu_us_per_op = (double)(bench_cpu_ns() - cpu0) / 1e3 / (double)res->ops;
	/* An iteration takes as long as its slowest rank. */
	err = check("allreduce (max of latencies)",
		    sgc_allreduce(c, lat, lat, (size_t)res->ops, SGC_UINT64, SGC_MAX));
	if (!err && rank == 0)
		bench_lat_summary(res, lat, (size_t)res->ops);
out:
	free(send);
	free(recv);
	free(lat);
	return err;
}

static int allreduce_tput(sgc_comm *c, const struct opts *o, struct bench_result *res, long *bad)
{
	long total = o->warmup + o->ops, launched = 0, completed = 0, nstamps = 0;
	size_t bytes = o->count * 4;
	int w = o->window, i, err = 0;
	int32_t **send, **recv;
	sgc_request **req;
	uint64_t *stamps = calloc((size_t)(o->ops / o->sample + 1), sizeof(*stamps));
	uint64_t t0 = 0, cpu0 = 0, t_end = 0;
	uint32_t rs = rank_sum_upto(world - 1);

	while (w > 1 && (size_t)w * bytes * 2 > TPUT_MEM_CAP)
		w /= 2;
	res->window = w;
	send = calloc((size_t)w, sizeof(*send));
	recv = calloc((size_t)w, sizeof(*recv));
	req = calloc((size_t)w, sizeof(*req));
	if (!send || !recv || !req || !stamps) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < w; i++) {
		send[i] = malloc(bytes);
		recv[i] = malloc(bytes);
		if (!send[i] || !recv[i]) {
			err = -ENOMEM;
			goto out;
		}
	}
	/* Start together, so that the warm-up is not spent waiting. */
	err = check("barrier", sgc_barrier(c));
	if (err)
		goto out;
	if (!o->warmup) {
		t0 = bench_now_ns();
		cpu0 = bench_cpu_ns();
	}
	for (; launched < w && launched < total; launched++) {
		fill(send[launched], o->count, (uint32_t)launched + 1);
		err = check("iallreduce", sgc_iallreduce(c, send[launched], recv[launched], o->count,
							 SGC_INT32, SGC_SUM, &req[launched]));
		if (err)
			goto out;
	}
	while (completed < total) {
		int s = (int)(completed % w);
		uint64_t now;

		err = check("wait", sgc_wait(req[s]));
		req[s] = NULL;
		if (err)
			goto out;
		now = bench_now_ns();
		completed++;
		if (!right(recv[s], o->count, (uint32_t)completed, rs, (uint32_t)world))
			(*bad)++;
		if (completed == o->warmup) {
			t0 = now;
			cpu0 = bench_cpu_ns();
		} else if (completed > o->warmup && (completed - o->warmup) % o->sample == 0) {
			stamps[nstamps++] = now;
		}
		t_end = now;
		if (launched < total) {
			fill(send[s], o->count, (uint32_t)launched + 1);
			err = check("iallreduce", sgc_iallreduce(c, send[s], recv[s], o->count,
								 SGC_INT32, SGC_SUM, &req[s]));
			if (err)
				goto out;
			launched++;
		}
	}
	res->cpu_us_per_op = (double)(bench_cpu_ns() - cpu0) / 1e3 / (double)o->ops;
	bench_tput_summary(res, stamps, (size_t)nstamps, t0, o->sample, o->ops, t_end);
out:
	for (i = 0; req && i < w; i++)
		if (req[i])
			sgc_wait(req[i]);	/* frees it; the run has failed anyway */
	for (i = 0; send && recv && i < w; i++) {
		free(send[i]);
		free(recv[i]);
	}
	free(send);
	free(recv);
	free(req);
	free(stamps);
	return err;
}

/* ---- scatter-gather ---- */

static int answer(const void *query, size_t len, void *resp, size_t count, enum sgc_dtype dt,
		  void *arg)
{
	struct bench_sg_query q;
	uint32_t *v = resp, step, x;
	size_t i;

	(void)arg;
	if (len < sizeof(q) || (dt != SGC_INT32 && dt != SGC_UINT32))
		return -EINVAL;
	memcpy(&q, query, sizeof(q));
	if (q.magic != BENCH_SGQ_MAGIC)
		return -EINVAL;
	handler_calls++;
	step = 2 * q.id + 1;
	x = bench_rank_term((uint32_t)rank) + step;
	for (i = 0; i < count; i++, x += step)
		v[i] = x;
	return 0;
}

static int sg_coord(sgc_comm *c, const struct opts *o, struct bench_result *res, long *bad)
{
	long total = o->warmup + o->ops, k, nstamps = 0;
	int32_t *sum = malloc(o->count * 4);
	unsigned char *answered = calloc((size_t)world, 1);
	uint64_t *lat = calloc((size_t)o->ops, sizeof(*lat));
	uint64_t *stamps = calloc((size_t)(o->ops / o->sample + 1), sizeof(*stamps));
	uint64_t cpu0 = 0, t0 = 0, t_end = 0;
	uint32_t rs = rank_sum_upto(world - 1);	/* rank 0 gives nothing here */
	struct sgc_sg_opts so = { .sz = sizeof(so), .policy = SGC_WAIT_ALL };
	unsigned char *query = calloc(1, o->query_bytes);
	int err = -ENOMEM;

	if (!sum || !answered || !lat || !stamps || !query)
		goto out;
	if (o->query_bytes > sgc_max_query(c)) {
		fprintf(stderr, "sgc_bench: --query-bytes %zu is more than the %zu a query may hold "
			"here: raise the MTU (the benchmark clusters use 1532)\n", o->query_bytes,
			sgc_max_query(c));
		err = -EMSGSIZE;
		goto out;
	}
	for (k = 0; k < total; k++) {
		struct bench_sg_query q = { .magic = BENCH_SGQ_MAGIC, .id = (uint32_t)k + 1 };
		struct sgc_sg_status st = { .sz = sizeof(st), .answered = answered };
		uint64_t t1, ts;

		if (k == o->warmup) {
			cpu0 = bench_cpu_ns();
			t0 = bench_now_ns();
		}
		memcpy(query, &q, sizeof(q));
		ts = bench_now_ns();
		err = check("scatter_gather", sgc_scatter_gather(c, query, o->query_bytes, sum,
								 o->count, SGC_INT32, SGC_SUM, &so, &st));
		if (err)
			goto out;
		t1 = bench_now_ns();
		if (k >= o->warmup) {
			lat[k - o->warmup] = t1 - ts;
			if ((k + 1 - o->warmup) % o->sample == 0)
				stamps[nstamps++] = t1;
			t_end = t1;
		}
		if (st.nanswered != world - 1 ||
		    !right(sum, o->count, q.id, rs, (uint32_t)world - 1))
			(*bad)++;
	}
	res->cpu_us_per_op = (double)(bench_cpu_ns() - cpu0) / 1e3 / (double)o->ops;
	bench_lat_summary(res, lat, (size_t)o->ops);
	bench_tput_summary(res, stamps, (size_t)nstamps, t0, o->sample, o->ops, t_end);
out:
	free(query);
	free(sum);
	free(answered);
	free(lat);
	free(stamps);
	return err;
}

/*
 * Allreduce with the XDP responder contributing for the workers: rank 0
 * runs the tput loop alone (its ids are the seqs, see the top), then ends
 * the workers' sgc_serve().
 */
static int ar_responder(sgc_comm *c, const struct opts *o, struct bench_result *res, long *bad)
{
	struct sgc_serve_opts so = { .sz = sizeof(so), .idle_timeout_ms = o->serve_idle_ms };
	int err, rc;

	if (rank != 0) {
		err = check("barrier", sgc_barrier(c));
		return err ? err : check("serve", sgc_serve(c, answer, NULL, &so));
	}
	err = allreduce_tput(c, o, res, bad);
	rc = check("serve_stop", sgc_serve_stop(c));
	return err ? err : rc;
}

/* The eBPF path's fan-out clones so far (0 without it): datagrams the
 * kernel sent for this rank, which sgc_stats.pkts_sent does not count. */
static uint64_t bpf_clones(const sgc_comm *c)
{
	uint64_t st[SGC_ST_MAX] = { 0 };

	if (!sgc_accelerated(c) || sgc_bpf_stats(c, st, SGC_ST_MAX) < 0)
		return 0;
	return st[SGC_ST_FANOUT_CLONES];
}

int main(int argc, char **argv)
{
	struct bench_result res = { 0 };
	struct sgc_stats st0 = { 0 }, st1 = { 0 };
	uint64_t clones0, clones1;
	long bad = 0, totals[2];
	int64_t busiest;
	struct opts o;
	bool ar_resp;
	sgc_comm *c;
	char extra[256], name[64];
	int err, rc;

	if (parse(&o, argc, argv)) {
		usage(stderr);
		return 2;
	}
	ar_resp = o.responder && !o.sg;	/* the responder's allreduce (top) */
	/*
	 * Busy polling is asked of the coordinator only: on this 2-core machine
	 * every worker process spinning as well would starve the whole cluster,
	 * where a real cluster gives each worker its own core.
	 */
	{
		const char *r = getenv("SGC_RANK");

		if (r && strcmp(r, "0") && getenv("SGC_BENCH_COORD_ONLY_WAITMODE"))
			unsetenv("SGC_WAITMODE");
	}
	err = sgc_init_env(&c);
	if (err) {
		fprintf(stderr, "sgc_bench: sgc_init_env: %s\n  %s\n", sgc_strerror(err),
			sgc_last_error());
		/* The eBPF path not being there yet is a skip, not a failure. */
		return err == -EOPNOTSUPP ? 77 : 1;
	}
	rank = sgc_rank(c);
	world = sgc_world_size(c);
	if (world < 2) {
		fprintf(stderr, "sgc_bench: needs at least one worker\n");
		sgc_finalize(c);
		return 2;
	}
	if (!o.name) {
		snprintf(name, sizeof(name), "sgc-%s", sgc_accelerated(c) ? "ebpf" : "user");
		o.name = name;
	}
	res.window = o.tput && !o.sg ? o.window : 1;
	sgc_get_stats(c, &st0, sizeof(st0));
	clones0 = bpf_clones(c);

	if (ar_resp) {
		err = ar_responder(c, &o, &res, &bad);
	} else if (!o.sg) {
		err = o.tput ? allreduce_tput(c, &o, &res, &bad) : allreduce_lat(c, &o, &res, &bad);
	} else if (rank == 0) {
		err = sg_coord(c, &o, &res, &bad);
		rc = check("serve_stop", sgc_serve_stop(c));
		err = err ? err : rc;
	} else {
		struct sgc_serve_opts so = { .sz = sizeof(so), .idle_timeout_ms = o.serve_idle_ms };

		err = check("serve", sgc_serve(c, answer, NULL, &so));
	}
	sgc_get_stats(c, &st1, sizeof(st1));
	clones1 = bpf_clones(c);

	/* Everyone learns whether every rank verified everything. */
	totals[0] = bad + (err ? 1 : 0);
	totals[1] = handler_calls;
	/* The bytes the busiest rank sent (warm-up and barriers included). */
	busiest = (int64_t)(st1.bytes_sent - st0.bytes_sent);
	if (ar_resp) {
		rc = 0;	/* rank 0 alone checked; the next allreduce is the responder's */
	} else {
		rc = check("final allreduce", sgc_allreduce(c, totals, totals, 2, SGC_INT64, SGC_SUM));
		rc = rc ? rc : check("bytes allreduce", sgc_allreduce(c, &busiest, &busiest, 1,
								       SGC_INT64, SGC_MAX));
	}
	if (rank == 0) {
		res.contender = o.name;
		res.workload = o.workload;
		res.mode = o.tput ? "tput" : "lat";
		res.fanout = world - 1;
		if (!res.ops)
			res.ops = o.ops;
		res.retx = st1.retransmits - st0.retransmits;
		res.dup = st1.duplicates - st0.duplicates;
		res.lost = st1.timeouts - st0.timeouts;
		res.verified = !rc && !err && totals[0] == 0;
		snprintf(extra, sizeof(extra),
			 "accel=%d responder=%d query_bytes=%zu worker_answers=%ld bad_results=%ld "
			 "late=%llu rejected=%llu sent=%llu clones=%llu busiest_bytes_per_op=%.0f "
			 "busiest_per_n=%.3f",
			 sgc_accelerated(c), o.responder, o.sg ? o.query_bytes : 0,
			 rc ? -1 : totals[1], rc ? -1 : totals[0],
			 (unsigned long long)(st1.late - st0.late),
			 (unsigned long long)(st1.rejected - st0.rejected),
			 (unsigned long long)(st1.pkts_sent - st0.pkts_sent),
			 (unsigned long long)(clones1 - clones0),
			 (double)busiest / (double)(res.ops + o.warmup),
			 o.count ? (double)busiest / (double)(res.ops + o.warmup) / ((double)o.count * 4) : 0);
		res.extra = extra;
		if (!res.verified)
			fprintf(stderr, "sgc_bench: FAILED: %ld wrong results or failed ranks\n",
				rc ? -1 : totals[0]);
		bench_print_result(&res);
	}
	sgc_finalize(c);
	return !rc && !err && totals[0] == 0 ? 0 : 1;
}
