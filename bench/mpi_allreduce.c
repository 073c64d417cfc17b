// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mpi_allreduce - the Open MPI peer: MPI_Allreduce of int32 SUM with the
 * workloads and modes of sgc_bench (same contributions, same checks).
 *
 *   mpirun --allow-run-as-root --oversubscribe --bind-to none \
 *          --mca pml ob1 --mca btl self,tcp --mca btl_tcp_if_include lo \
 *          --mca oob_tcp_if_include lo --mca mpi_yield_when_idle 1 \
 *          -np N mpi_allreduce --workload ar363 [--mode lat|tput] ...
 *
 * (Debian's Open MPI ignores a --mca btl list unless pml is ob1; on 2 cores
 * oversubscribed ranks must yield or busy polling collapses, DESIGN.md 6.)
 * lat: barrier, then time MPI_Allreduce on every rank; an iteration's
 * latency is the maximum over ranks.  tput: --window MPI_Iallreduce in
 * flight, the oldest waited for and replaced.  lat with --max-s (as in
 * sgc_bench): the barrier is a 1-element MAX allreduce carrying rank 0's
 * "time is up", so every rank stops after the same operation.  The MCA
 * parameters in effect
 * (mpirun passes them as OMPI_MCA_* variables) are printed in the result.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "bench_proto.h"
#include "bench_util.h"
#include "peer_args.h"

extern char **environ;

static int rank, size;

static void fill(uint32_t *v, size_t n, uint32_t id)
{
	uint32_t step = 2 * id + 1, x = bench_rank_term((uint32_t)rank) + step;
	size_t i;

	for (i = 0; i < n; i++, x += step)
		v[i] = x;
}

static int right(const uint32_t *v, size_t n, uint32_t id, uint32_t rank_sum)
{
	uint32_t step = 2 * id + 1;
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i] != rank_sum + (uint32_t)size * ((uint32_t)(i + 1) * step))
			return 0;
	return 1;
}

/* "pml:ob1;btl:self,tcp;..." from the OMPI_MCA_* environment. */
static void mca_flags(char *out, size_t len)
{
	size_t off = 0;
	char **e;

	out[0] = 0;
	for (e = environ; *e && off + 2 < len; e++) {
		const char *s = *e, *eq;

		if (strncmp(s, "OMPI_MCA_", 9))
			continue;
		s += 9;
		eq = strchr(s, '=');
		if (!eq || strchr(s, ' '))
			continue;
		/* mpirun's own bookkeeping, not a setting the user chose */
		if (!strncmp(s, "orte_", 5) || !strncmp(s, "ess", 3) || !strncmp(s, "pmix", 4) ||
		    !strncmp(s, "initial_wdir", 12) || !strncmp(s, "mpi_oversubscribe", 17) ||
		    !strncmp(s, "rmaps_", 6) || !strncmp(s, "hwloc_", 6) || !strncmp(s, "shmem_", 6))
			continue;
		off += (size_t)snprintf(out + off, len - off, "%s%.*s:%s", off ? ";" : "",
					(int)(eq - s), s, eq + 1);
	}
	if (off >= len)
		out[len - 1] = 0;
}

int main(int argc, char **argv)
{
	struct bench_result res = { 0 };
	struct peer_args a;
	uint32_t rank_sum = 0;
	long bad = 0, total, k, allbad = 0;
	uint64_t *lat = NULL, cpu0 = 0, t0 = 0, t_end = 0, *stamps = NULL;
	long nstamps = 0;
	uint32_t **send = NULL, **recv = NULL;
	MPI_Request *req = NULL;
	char flags[512], extra[768];
	int r, w = 1, i;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	if (peer_parse(&a, argc, argv, "openmpi-tcp")) {
		if (rank == 0)
			peer_usage(argv[0]);
		MPI_Finalize();
		return 2;
	}
	for (r = 0; r < size; r++)
		rank_sum += bench_rank_term((uint32_t)r);
	total = a.warmup + a.ops;
	if (a.tput) {
		w = a.window;
		while (w > 1 && (size_t)w * a.count * 8 > (64u << 20))
			w /= 2;
	}
	send = calloc((size_t)w, sizeof(*send));
	recv = calloc((size_t)w, sizeof(*recv));
	req = calloc((size_t)w, sizeof(*req));
	lat = calloc((size_t)a.ops, sizeof(*lat));
	stamps = calloc((size_t)(a.ops / a.sample + 1), sizeof(*stamps));
	if (!send || !recv || !req || !lat || !stamps)
		MPI_Abort(MPI_COMM_WORLD, 1);
	for (i = 0; i < w; i++) {
		send[i] = malloc(a.count * 4);
		recv[i] = malloc(a.count * 4);
		if (!send[i] || !recv[i])
			MPI_Abort(MPI_COMM_WORLD, 1);
	}

	if (!a.tput) {
		uint64_t t_meas = 0;

		for (k = 0; k < total; k++) {
			uint64_t ts;

			if (k == a.warmup) {
				cpu0 = bench_cpu_ns();
				t_meas = bench_now_ns();
			}
			fill(send[0], a.count, (uint32_t)k + 1);
			if (a.max_s > 0) {
				int up = rank == 0 && k - a.warmup >= a.min_ops &&
					 (double)(bench_now_ns() - t_meas) > a.max_s * 1e9;

				MPI_Allreduce(MPI_IN_PLACE, &up, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
				if (up)
					break;
			} else {
				MPI_Barrier(MPI_COMM_WORLD);
			}
			ts = bench_now_ns();
			MPI_Allreduce(send[0], recv[0], (int)a.count, MPI_UINT32_T, MPI_SUM,
				      MPI_COMM_WORLD);
			if (k >= a.warmup)
				lat[k - a.warmup] = bench_now_ns() - ts;
			bad += !right(recv[0], a.count, (uint32_t)k + 1, rank_sum);
		}
		/* every rank stopped after the same operation */
		a.ops = k - a.warmup;
		res.cpu_us_per_op = (double)(bench_cpu_ns() - cpu0) / 1e3 / (double)a.ops;
		MPI_Allreduce(MPI_IN_PLACE, lat, (int)a.ops, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
		if (rank == 0)
			bench_lat_summary(&res, lat, (size_t)a.ops);
	} else {
		long launched = 0, completed = 0;

		MPI_Barrier(MPI_COMM_WORLD);
		if (!a.warmup) {
			t0 = bench_now_ns();
			cpu0 = bench_cpu_ns();
		}
		for (; launched < w && launched < total; launched++) {
			fill(send[launched], a.count, (uint32_t)launched + 1);
			MPI_Iallreduce(send[launched], recv[launched], (int)a.count, MPI_UINT32_T,
				       MPI_SUM, MPI_COMM_WORLD, &req[launched]);
		}
		while (completed < total) {
			int s = (int)(completed % w);
			uint64_t now;

			MPI_Wait(&req[s], MPI_STATUS_IGNORE);
			now = bench_now_ns();
			completed++;
			bad += !right(recv[s], a.count, (uint32_t)completed, rank_sum);
			if (completed == a.warmup) {
				t0 = now;
				cpu0 = bench_cpu_ns();
			} else if (completed > a.warmup && (completed - a.warmup) % a.sample == 0) {
				stamps[nstamps++] = now;
			}
			t_end = now;
			if (launched < total) {
				fill(send[s], a.count, (uint32_t)launched + 1);
				MPI_Iallreduce(send[s], recv[s], (int)a.count, MPI_UINT32_T, MPI_SUM,
					       MPI_COMM_WORLD, &req[s]);
				launched++;
			}
		}
		res.cpu_us_per_op = (double)(bench_cpu_ns() - cpu0) / 1e3 / (double)a.ops;
		bench_tput_summary(&res, stamps, (size_t)nstamps, t0, a.sample, a.ops, t_end);
	}
	MPI_Allreduce(&bad, &allbad, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);

	if (rank == 0) {
		mca_flags(flags, sizeof(flags));
		snprintf(extra, sizeof(extra), "openmpi=%d.%d.%d mca=%s", OMPI_MAJOR_VERSION,
			 OMPI_MINOR_VERSION, OMPI_RELEASE_VERSION, flags[0] ? flags : "none");
		res.contender = a.name;
		res.workload = a.workload;
		res.mode = a.tput ? "tput" : "lat";
		res.fanout = size - 1;
		res.window = w;
		res.ops = a.ops;
		res.verified = allbad == 0;
		res.extra = extra;
		if (allbad)
			fprintf(stderr, "mpi_allreduce: FAILED: %ld wrong results\n", allbad);
		bench_print_result(&res);
	}
	for (i = 0; i < w; i++) {
		free(send[i]);
		free(recv[i]);
	}
	free(send);
	free(recv);
	free(req);
	free(lat);
	free(stamps);
	MPI_Finalize();
	return allbad ? 1 : 0;
}
