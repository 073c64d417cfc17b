// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mpi_compare: MPI_Allreduce and sgc_allreduce side by side in one mpirun
 * launch.  sgc_init_mpi() (libsgcoll-mpi) takes rank and size from
 * MPI_COMM_WORLD, and rank 0 picks the coordinator's address and port and
 * broadcasts them, unless SGC_COORDINATOR (or the one-line file named by
 * SGC_COORDINATOR_FILE) names one.  Other settings come from the
 * environment as for sgc_init_env() (SGC_ACCEL, SGC_IFNAME, SGC_PORT, ...).
 *
 *   mpirun -np 4 ./mpi_compare [-n ITERS]
 *
 * Every iteration checks that both give the same 363 x int32 sum; rank 0
 * prints the p50 of each (maximum over ranks, after a barrier).
 */
#include <errno.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sgcoll/mpi.h>

enum { N = 363 };

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int32_t send[N], a[N], b[N];
	double *tm, *ts, t0, t1, t2, mpi_max, sgc_max;
	int iters = 200, opt, rank, size, it, i, err, bad = 0;
	sgc_comm *c;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	while ((opt = getopt(argc, argv, "n:")) != -1)
		if (opt == 'n')
			iters = atoi(optarg) > 0 ? atoi(optarg) : 1;
	err = sgc_init_mpi(MPI_COMM_WORLD, NULL, &c);
	if (err) {
		/* Every rank failed alike, with the same message: no abort needed. */
		if (rank == 0)
			fprintf(stderr, "sgc_init_mpi: %s\n  %s\n", sgc_strerror(err),
				sgc_last_error());
		MPI_Finalize();
		return 1;
	}
	if (sgc_rank(c) != rank || sgc_world_size(c) != size) {
		fprintf(stderr, "rank %d: libsgcoll sees rank %d of %d, MPI %d of %d\n", rank,
			sgc_rank(c), sgc_world_size(c), rank, size);
		bad++;
	}
	tm = calloc((size_t)iters, sizeof(*tm));
	ts = calloc((size_t)iters, sizeof(*ts));
	for (it = 0; it < iters && !bad; it++) {
		for (i = 0; i < N; i++)
			send[i] = rank * 1000003 + i * 7 + it;
		MPI_Barrier(MPI_COMM_WORLD);
		t0 = now_us();
		MPI_Allreduce(send, a, N, MPI_INT32_T, MPI_SUM, MPI_COMM_WORLD);
		sgc_barrier(c);
		t1 = now_us();
		err = sgc_allreduce(c, send, b, N, SGC_INT32, SGC_SUM);
		t2 = now_us();
		if (err) {
			fprintf(stderr, "rank %d: sgc_allreduce: %s\n", rank, sgc_last_error());
			bad++;
			break;
		}
		if (memcmp(a, b, sizeof(a))) {
			fprintf(stderr, "rank %d: iteration %d: sgc_allreduce differs from MPI_Allreduce\n",
				rank, it);
			bad++;
		}
		tm[it] = t1 - t0;
		ts[it] = t2 - t1;
		/* The time of an iteration is the slowest rank's. */
		MPI_Allreduce(&tm[it], &mpi_max, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
		MPI_Allreduce(&ts[it], &sgc_max, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
		tm[it] = mpi_max;
		ts[it] = sgc_max;
	}
	MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
	if (rank == 0) {
		qsort(tm, (size_t)it, sizeof(*tm), cmp);
		qsort(ts, (size_t)it, sizeof(*ts), cmp);
		printf("mpi_compare: %d ranks, %d x allreduce of %d int32: MPI_Allreduce p50 %.1f us, "
		       "sgc_allreduce (%s path) p50 %.1f us; %s\n", size, it, N,
		       it ? tm[it / 2] : 0, sgc_accelerated(c) ? "eBPF" : "user-space",
		       it ? ts[it / 2] : 0, bad ? "RESULTS DIFFER" : "results identical");
	}
	free(tm);
	free(ts);
	sgc_finalize(c);
	MPI_Finalize();
	return bad ? 1 : 0;
}
