// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * mpi_init_check: sgc_init_mpi() under mpirun, then one allreduce checked
 * against the sum every rank can compute.  Run by tests/e2e/mpi_init.sh.
 *
 *   mpi_init_check [-s] [-c] [-f RANK]
 *     -s       two jobs at once: MPI_COMM_WORLD split into even and odd ranks
 *     -c       pass a struct sgc_config (accel off) instead of NULL
 *     -f RANK  that rank gets SGC_ACCEL=bogus: a settings error on one rank
 *
 * Every rank prints "rank R: ok" or "rank R: sgc_init_mpi: CODE: MESSAGE";
 * rank 0 of each job prints "mpi_init_check: N ranks, allreduce exact".
 * Exit status: 0 all good, 2 sgc_init_mpi failed, 1 anything else.
 */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sgcoll/mpi.h>

enum { N = 1000 };

int main(int argc, char **argv)
{
	struct sgc_config cfg = { .sz = sizeof(cfg), .accel = SGC_ACCEL_OFF };
	int split = 0, use_cfg = 0, fail_rank = -1, wrank, rank, size, opt, err, bad = 0, i;
	int64_t send[N], got[N];
	MPI_Comm mc = MPI_COMM_WORLD;
	sgc_comm *c;

	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &wrank);
	while ((opt = getopt(argc, argv, "scf:")) != -1) {
		if (opt == 's')
			split = 1;
		else if (opt == 'c')
			use_cfg = 1;
		else if (opt == 'f')
			fail_rank = atoi(optarg);
	}
	if (split)
		MPI_Comm_split(MPI_COMM_WORLD, wrank % 2, wrank, &mc);
	MPI_Comm_rank(mc, &rank);
	MPI_Comm_size(mc, &size);
	if (wrank == fail_rank)
		setenv("SGC_ACCEL", "bogus", 1);
	if (use_cfg)
		cfg.timeout_ms = getenv("SGC_TIMEOUT_MS") ? (unsigned)atoi(getenv("SGC_TIMEOUT_MS")) : 0;

	err = sgc_init_mpi(mc, use_cfg ? &cfg : NULL, &c);
	if (err) {
		printf("rank %d: sgc_init_mpi: %d: %s\n", wrank, err, sgc_last_error());
		fflush(stdout);
		if (c)
			printf("rank %d: a communicator despite the failure\n", wrank);
		MPI_Finalize();
		return 2;
	}
	if (sgc_rank(c) != rank || sgc_world_size(c) != size) {
		printf("rank %d: libsgcoll sees rank %d of %d, MPI %d of %d\n", wrank, sgc_rank(c),
		       sgc_world_size(c), rank, size);
		bad = 1;
	}
	/* A rank's own numbers, and their sum that every rank can compute. */
	for (i = 0; i < N; i++)
		send[i] = (int64_t)(rank + 1) * 1000003 + i;
	err = sgc_allreduce(c, send, got, N, SGC_INT64, SGC_SUM);
	if (err) {
		printf("rank %d: sgc_allreduce: %s\n", wrank, sgc_last_error());
		bad = 1;
	}
	for (i = 0; i < N && !err; i++) {
		int64_t want = (int64_t)size * (size + 1) / 2 * 1000003 + (int64_t)size * i;

		if (got[i] != want) {
			printf("rank %d: element %d is %lld, not %lld\n", wrank, i, (long long)got[i],
			       (long long)want);
			bad = 1;
			break;
		}
	}
	MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, mc);
	printf("rank %d: %s\n", wrank, bad ? "WRONG" : "ok");
	if (rank == 0 && !bad)
		printf("mpi_init_check: %d ranks, allreduce exact\n", size);
	sgc_finalize(c);
	if (split)
		MPI_Comm_free(&mc);
	MPI_Finalize();
	return bad;
}
