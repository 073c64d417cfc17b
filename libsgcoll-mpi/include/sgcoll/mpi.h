/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libsgcoll-mpi: a libsgcoll job over the ranks of an MPI communicator,
 * with no coordinator address to hand out.  A library of its own so that
 * libsgcoll itself never depends on MPI.  Compile with mpicc and link
 * with $(pkg-config --libs sgcoll-mpi).
 */
#ifndef SGCOLL_MPI_H
#define SGCOLL_MPI_H

#include <mpi.h>
#include <sgcoll.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * sgc_init_mpi() - sgc_init() for every rank of @mc; collective over @mc.
 * @mc: an intracommunicator; its rank 0 is the coordinator, and rank and
 *      world size are @mc's (those in @cfg or the environment are ignored).
 * @cfg: settings as for sgc_init(), cfg->sz set; NULL reads them from the
 *       environment as sgc_init_env() does (SGC_ACCEL, SGC_TIMEOUT_MS,
 *       SGC_KEY, ...).
 * @out: receives the communicator (NULL on failure).
 *
 * Rank 0 takes the coordinator address the user named (cfg->coordinator;
 * with @cfg NULL, SGC_COORDINATOR or SGC_COORDINATOR_FILE), else picks
 * one: the IPv4 address of cfg->bind_addr (SGC_BIND) if it is not
 * 0.0.0.0, else the first IPv4 address of cfg->ifname (SGC_IFNAME), else
 * its host name's first IPv4 address; the port of the bind address, else
 * SGC_PORT, else one the kernel picks as free.  It binds the port once to
 * check it, and sends "ipv4:port" to the other ranks with MPI_Bcast.
 *
 * Every rank returns the same result: when any rank fails (its settings,
 * rank 0's address or port, or sgc_init() itself), all of them return the
 * error of the lowest failing rank, and sgc_last_error() gives that rank's
 * message on every rank.  Failures before sgc_init() are reported at once;
 * a failure inside sgc_init() as soon as every rank's sgc_init() returned
 * (a worker whose coordinator failed waits for its own timeout).
 */
SGC_API int sgc_init_mpi(MPI_Comm mc, const struct sgc_config *cfg, sgc_comm **out);

#ifdef __cplusplus
}
#endif

#endif /* SGCOLL_MPI_H */
