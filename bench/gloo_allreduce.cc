// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * gloo_allreduce - the Gloo peer: gloo::allreduce of uint32 SUM over the
 * tcp transport, with the workloads and modes of sgc_bench (same
 * contributions, same checks).  bench/run.py starts N of these:
 *
 *   GLOO_RANK=r GLOO_SIZE=N GLOO_STORE=DIR [GLOO_HOST=127.0.0.1] \
 *       gloo_allreduce --workload ar363 [--mode lat|tput] ...
 *
 * Rendezvous: gloo::rendezvous::FileStore in DIR (which must exist; use a
 * fresh one per run), then a full mesh of TCP connections.
 * lat: gloo::barrier, then time gloo::allreduce on every rank; an
 * iteration's latency is the maximum over ranks.  tput: Gloo has no
 * non-blocking allreduce, so back-to-back calls (window 1).
 *
 * Read its times with more ranks than CPUs as scheduler ticks, not Gloo:
 * the tcp transport's event-loop thread spins on a level-triggered epoll
 * while the application thread holds a pair's lock (Pair::handleEvents
 * only trylocks), so a descheduled lock holder costs a whole tick per hop,
 * whatever the size (bench/results/gloo-2026-12-05/NOTE.md).
 */
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/file_store.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/transport/tcp/device.h>

#include "bench_proto.h"
#include "bench_util.h"
#include "peer_args.h"

namespace {

int rank_, size_;

void fill(uint32_t *v, size_t n, uint32_t id)
{
	uint32_t step = 2 * id + 1, x = bench_rank_term((uint32_t)rank_) + step;

	for (size_t i = 0; i < n; i++, x += step)
		v[i] = x;
}

bool right(const uint32_t *v, size_t n, uint32_t id, uint32_t rank_sum)
{
	uint32_t step = 2 * id + 1;

	for (size_t i = 0; i < n; i++)
		if (v[i] != rank_sum + (uint32_t)size_ * ((uint32_t)(i + 1) * step))
			return false;
	return true;
}

template <typename T>
void reduce(const std::shared_ptr<gloo::Context> &ctx, T *in, T *out, size_t n,
	    void (*fn)(void *, const void *, const void *, size_t))
{
	gloo::AllreduceOptions o(ctx);

	if (in != out)	/* the output alone is reduced in place */
		o.setInput(in, n);
	o.setOutput(out, n);
	o.setReduceFunction(fn);
	gloo::allreduce(o);
}

void barrier(const std::shared_ptr<gloo::Context> &ctx)
{
	gloo::BarrierOptions o(ctx);

	gloo::barrier(o);
}

int env_int(const char *k, int dflt)
{
	const char *v = getenv(k);

	return v && *v ? atoi(v) : dflt;
}

} // namespace

int main(int argc, char **argv)
{
	struct peer_args a;
	const char *store_dir = getenv("GLOO_STORE");
	const char *host = getenv("GLOO_HOST");
	const char *prefix = getenv("GLOO_PREFIX");

	rank_ = env_int("GLOO_RANK", -1);
	size_ = env_int("GLOO_SIZE", -1);
	/* --max-s is mpi_allreduce's only */
	if (peer_parse(&a, argc, argv, "gloo-tcp") || rank_ < 0 || size_ < 2 || rank_ >= size_ ||
	    !store_dir || a.max_s > 0) {
		peer_usage(argv[0]);
		fprintf(stderr, "environment: GLOO_RANK, GLOO_SIZE (>= 2), GLOO_STORE (a directory that "
				"exists), GLOO_HOST (default 127.0.0.1), GLOO_PREFIX\n");
		return 2;
	}

	struct bench_result res = {};
	uint32_t rank_sum = 0;
	long bad = 0, total = a.warmup + a.ops;
	std::vector<uint32_t> send(a.count), recv(a.count);
	std::vector<uint64_t> lat((size_t)a.ops), stamps((size_t)(a.ops / a.sample + 1));
	uint64_t cpu0 = 0, t0 = 0, t_end = 0;
	long nstamps = 0;
	char extra[128];

	for (int r = 0; r < size_; r++)
		rank_sum += bench_rank_term((uint32_t)r);
	try {
		gloo::transport::tcp::attr attr(host ? host : "127.0.0.1");
		auto dev = gloo::transport::tcp::CreateDevice(attr);
		gloo::rendezvous::FileStore fs(store_dir);
		gloo::rendezvous::PrefixStore store(prefix ? prefix : "bench", fs);
		auto ctx = std::make_shared<gloo::rendezvous::Context>(rank_, size_);

		ctx->setTimeout(std::chrono::milliseconds(120000));
		ctx->connectFullMesh(store, dev);

		barrier(ctx);
		if (!a.warmup) {
			t0 = bench_now_ns();
			cpu0 = bench_cpu_ns();
		}
		for (long k = 0; k < total; k++) {
			uint64_t ts;

			fill(send.data(), a.count, (uint32_t)k + 1);
			if (!a.tput)
				barrier(ctx);
			if (k == a.warmup && !a.tput)
				cpu0 = bench_cpu_ns();
			ts = bench_now_ns();
			reduce<uint32_t>(ctx, send.data(), recv.data(), a.count, &gloo::sum<uint32_t>);
			uint64_t t1 = bench_now_ns();

			if (k >= a.warmup)
				lat[(size_t)(k - a.warmup)] = t1 - ts;
			if (a.tput) {
				if (k + 1 == a.warmup) {
					t0 = t1;
					cpu0 = bench_cpu_ns();
				} else if (k + 1 > a.warmup && (k + 1 - a.warmup) % a.sample == 0) {
					stamps[(size_t)nstamps++] = t1;
				}
				t_end = t1;
			}
			bad += !right(recv.data(), a.count, (uint32_t)k + 1, rank_sum);
		}
		res.cpu_us_per_op = (double)(bench_cpu_ns() - cpu0) / 1e3 / (double)a.ops;
		if (a.tput) {
			bench_tput_summary(&res, stamps.data(), (size_t)nstamps, t0, a.sample, a.ops,
					   t_end);
		} else {
			reduce<uint64_t>(ctx, lat.data(), lat.data(), lat.size(), &gloo::max<uint64_t>);
			if (rank_ == 0)
				bench_lat_summary(&res, lat.data(), lat.size());
		}
		int64_t allbad = bad, sumbad = 0;
		reduce<int64_t>(ctx, &allbad, &sumbad, 1, &gloo::sum<int64_t>);
		bad = (long)sumbad;
	} catch (const std::exception &e) {
		fprintf(stderr, "gloo_allreduce: rank %d: %s\n", rank_, e.what());
		return 1;
	}
	if (rank_ == 0) {
		snprintf(extra, sizeof(extra), "transport=tcp host=%s store=file",
			 host ? host : "127.0.0.1");
		res.contender = a.name;
		res.workload = a.workload;
		res.mode = a.tput ? "tput" : "lat";
		res.fanout = size_ - 1;
		res.window = 1;
		res.ops = a.ops;
		res.verified = bad == 0;
		res.extra = extra;
		if (bad)
			fprintf(stderr, "gloo_allreduce: FAILED: %ld wrong results\n", bad);
		bench_print_result(&res);
	}
	return bad ? 1 : 0;
}
