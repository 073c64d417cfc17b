/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libsgcoll: MPI-style collectives over UDP with an eBPF fast path.
 *
 * One coordinator (rank 0) and world_size - 1 workers.  Every rank calls
 * the collectives in the same order (as in MPI); each call is matched
 * across ranks by its position in that order.
 *
 * Return values: 0 (or a count) on success, a negative errno-style code on
 * failure.  sgc_strerror() turns a code into a sentence naming the cause
 * and the fix; sgc_last_error() gives the detailed message of the calling
 * thread's last failure (which ranks did not answer, which field was bad).
 *
 * Arithmetic: integer reductions wrap around modulo 2^bits (SUM and PROD
 * of signed types are computed as two's-complement, so overflow wraps and
 * is never undefined).  MIN/MAX compare as the signed or unsigned type.
 *
 * Threads: a communicator and its requests belong to one thread at a time
 * (no internal locking): calls on one communicator, or on its requests,
 * from two threads at once are undefined; handing a communicator to
 * another thread with the usual synchronisation (a mutex, a join) is fine.
 * Different communicators may be created, used and finalized from
 * different threads concurrently.  sgc_set_print(), sgc_strerror() and
 * sgc_bpf_stat_name() are safe from any thread; sgc_last_error() is per
 * thread (it describes the calling thread's last failure).  Process-wide:
 * the eBPF path installs the library's libbpf print callback at sgc_init(),
 * and one interface takes up to 8 eBPF-path coordinators through
 * libsgcoll's XDP dispatcher (a ninth, or an interface with another XDP
 * program, fails with -EBUSY naming the cause; use SGC_ACCEL=auto to fall
 * back to the user-space path, or another interface).
 *
 * Lost ranks: there is no membership change.  Once a worker has crashed or
 * stopped answering, every call that needs all ranks fails within its
 * timeout and keeps failing: collectives (blocking or not), barriers,
 * WAIT_ALL scatter-gather and sgc_serve_stop() return -ETIMEDOUT on the
 * coordinator, with sgc_last_error() naming the ranks that did not answer
 * (only those that left a requested chunk out, not the ones held up behind
 * them); on the other workers collectives fail with -SGC_EABORTED (the
 * coordinator gave up) or -ETIMEDOUT.  What still works: scatter-gather
 * with SGC_WAIT_N (wait_n at most the live workers) and SGC_WAIT_ANY,
 * with exact results over the ranks @status names, and sgc_serve() on the
 * live workers.  No result is ever partial: a call returns 0 with the
 * exact answer or an error.  To go on with the survivors, sgc_finalize()
 * (the coordinator waits up to the timeout for the lost rank's goodbye)
 * and start a new job.  A lost coordinator: each worker call fails within
 * its timeout with -ETIMEDOUT naming the coordinator's address, and
 * sgc_serve() returns -ETIMEDOUT after its idle timeout; the eBPF path's
 * programs, maps and links belong to the coordinator's process and go
 * with it, however it ends.
 */
#ifndef SGCOLL_H
#define SGCOLL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SGC_API __attribute__((visibility("default")))

#define SGCOLL_VERSION_MAJOR 0
#define SGCOLL_VERSION_MINOR 2

/* Default per-call timeout when sgc_config.timeout_ms is 0. */
#define SGC_DEFAULT_TIMEOUT_MS 10000

typedef struct sgc_comm sgc_comm;	/* opaque */
typedef struct sgc_request sgc_request;	/* opaque */

enum sgc_dtype {
	SGC_INT8, SGC_UINT8, SGC_INT16, SGC_UINT16,
	SGC_INT32, SGC_UINT32, SGC_INT64, SGC_UINT64,
};

enum sgc_op {
	SGC_SUM, SGC_PROD, SGC_MIN, SGC_MAX, SGC_BAND, SGC_BOR, SGC_BXOR,
	/* The application's own in-kernel reduction: an XDP program written
	 * against <sgcoll/agg.bpf.h>, given to the coordinator as an object
	 * file in sgc_config.custom_bpf (SGC_CUSTOM_BPF).  eBPF path only;
	 * sgc_allreduce/sgc_reduce and single-datagram scatter-gather answers. */
	SGC_CUSTOM,
};

/*
 * SGC_ACCEL_AUTO: the eBPF path when the coordinator can load it, with
 * scatter-gather (and SGC_CUSTOM allreduce/reduce) in the kernel and the
 * other collectives in user space; SGC_ACCEL_EBPF: every collective in
 * the kernel, and no eBPF path is an error; SGC_ACCEL_OFF: user space.
 */
enum sgc_accel { SGC_ACCEL_AUTO, SGC_ACCEL_EBPF, SGC_ACCEL_OFF };

/* eBPF path: how the coordinator gets results from the kernel. */
enum sgc_delivery {
	SGC_DELIVER_RINGBUF,	/* BPF ring buffer, no socket on the way (default) */
	SGC_DELIVER_SOCKET,	/* the completing datagram, rewritten, to the socket */
};

/* How blocking calls wait for the network. */
enum sgc_waitmode {
	SGC_WAITMODE_BLOCK,	/* sleep in the kernel until something arrives (default) */
	SGC_WAITMODE_BUSYPOLL,	/* spin on the completion queue: lowest latency, one core busy */
};

/*
 * Which allreduce algorithm (SGC_ALGO=auto|star|shard|shard-kernel).
 * Every rank must choose alike: a rank on another algorithm waits until
 * the timeout.
 */
enum sgc_algo {
	SGC_ALGO_AUTO,		/* shard from SGC_SHARD_MIN_BYTES up to SGC_SHARD_AUTO_MAX_WORLD
				 * ranks, else star (default) */
	SGC_ALGO_STAR,		/* every chunk through rank 0 (and its eBPF path) */
	SGC_ALGO_SHARD,		/* rank r reduces shard r in user space and sends it to
				 * every rank */
	SGC_ALGO_SHARD_KERNEL,	/* the same, each owner with SGC_ACCEL=ebpf reducing its
				 * shard on its own eBPF path (a star per shard); slower
				 * than SGC_ALGO_SHARD on veth here: README, Limits */
};

/* SGC_ALGO_AUTO: vectors of at least this many bytes take the sharded
 * algorithm (measured crossover: bench/results/shard-2026-12-05). */
#define SGC_SHARD_MIN_BYTES	(1024 * 1024)
/* ... in jobs of at most this many ranks, the most measured
 * (bench/results/shard-large-2026-12-06); SGC_ALGO=shard goes further. */
#define SGC_SHARD_AUTO_MAX_WORLD	129

/* sgc_config.flags */
#define SGC_CFG_KEEP_RESPONSES	0x1	/* eBPF path: pass individual contributions to user
					 * space, which reduces them (sgbpf's ALLOW_PK) */
#define SGC_CFG_NO_KERNEL_FANOUT 0x2	/* eBPF path: user space, not the kernel
					 * (notify_prog), sends each result to the
					 * workers; SGC_KERNEL_FANOUT=0 */
/* Deprecated: the old name of SGC_CFG_NO_KERNEL_FANOUT (it is not the
 * allgather collective). */
#define SGC_CFG_NO_ALLGATHER	SGC_CFG_NO_KERNEL_FANOUT

struct sgc_config {
	size_t sz;		/* sizeof(struct sgc_config): lets the struct grow */
	int rank;		/* 0 = coordinator */
	int world_size;		/* ranks including the coordinator */
	const char *coordinator; /* rank 0's "ipv4:port" or "hostname:port" */
	const char *bind_addr;	/* this rank's "ipv4" or "ipv4:port"; NULL = chosen from the route to the coordinator */
	const char *ifname;	/* coordinator's interface for the eBPF path; NULL = from the route */
	enum sgc_accel accel;
	unsigned timeout_ms;	/* per blocking call; 0 = SGC_DEFAULT_TIMEOUT_MS */
	/* Optional: a struct that ends before here (sz) gets the defaults,
	 * and zero values are the defaults too. */
	enum sgc_delivery delivery;	/* SGC_DELIVERY=ringbuf|socket */
	enum sgc_waitmode waitmode;	/* SGC_WAITMODE=block|busypoll */
	unsigned flags;		/* SGC_CFG_*; SGC_KEEP_RESPONSES=1, SGC_KERNEL_FANOUT=0 */
	const char *custom_bpf;	/* coordinator: BPF object for SGC_CUSTOM (SGC_CUSTOM_BPF) */
	/* The job key, SGC_KEY_BYTES bytes (SGC_KEY, SGC_KEY_FILE); NULL = none.
	 * With a key every datagram carries a MAC that every rank checks
	 * before it acts on it; every rank needs the same key.  Copied. */
	const uint8_t *key;
	enum sgc_algo algo;	/* SGC_ALGO=auto|star|shard|shard-kernel */
};

#define SGC_KEY_BYTES 16

/* Error codes beyond errno (all negative when returned). */
#define SGC_EMISMATCH	4001	/* ranks disagree on a collective's arguments */
#define SGC_EABORTED	4002	/* the coordinator abandoned this collective */

/**
 * sgc_init() - join a job and build a communicator.
 * @cfg: settings; cfg->sz must be set.  Strings are copied.
 * @out: receives the communicator.
 *
 * Rank 0 binds cfg->coordinator, waits for every worker's hello, picks a
 * random 64-bit job id and sends it with the roster.  Workers announce
 * themselves until welcomed.  When the job is not complete in timeout_ms,
 * rank 0 fails with -ETIMEDOUT naming the missing ranks in
 * sgc_last_error(), or with what kept them out: -EPROTO for a rank started
 * with another world size, -EADDRINUSE for a rank claimed from two
 * addresses (both named).  It tells every worker that came which ranks are
 * missing and why; those workers fail with the same sentence, the rank
 * with the wrong world size with -EPROTO, the two claimants of one rank
 * with -EADDRINUSE.  A worker that rank 0 has answered waits for that
 * verdict past its own timeout if need be, at most 2 x timeout_ms in all.
 * The socket is closed when sgc_init() fails: the port can be bound again
 * at once.
 */
SGC_API int sgc_init(const struct sgc_config *cfg, sgc_comm **out);

/**
 * sgc_init_env() - sgc_init() from the environment.
 *
 * Reads SGC_RANK, SGC_WORLD_SIZE, SGC_COORDINATOR, SGC_BIND, SGC_IFNAME,
 * SGC_ACCEL=auto|ebpf|off, SGC_TIMEOUT_MS, SGC_DELIVERY=ringbuf|socket,
 * SGC_WAITMODE=block|busypoll, SGC_KEEP_RESPONSES=0|1, SGC_KERNEL_FANOUT=0|1
 * (its old name SGC_ALLGATHER=0|1 still works; both set must agree),
 * SGC_CUSTOM_BPF.  Without SGC_COORDINATOR, SGC_COORDINATOR_FILE names a
 * file whose first line is the coordinator's "ipv4:port" or "hostname:port"
 * (a name is resolved to its first IPv4 address).  Launchers' variables count when the SGC_* ones are unset, each looked
 * up on its own, in this order: Open MPI (OMPI_COMM_WORLD_RANK/SIZE), PMI
 * (PMI_RANK/SIZE), torchrun (RANK, WORLD_SIZE; coordinator MASTER_ADDR,
 * port MASTER_PORT + 1), Slurm (SLURM_PROCID, SLURM_NTASKS; coordinator
 * the first host of SLURM_STEP_NODELIST, else SLURM_JOB_NODELIST, port
 * 20000 + 10 * (SLURM_JOB_ID mod 1000) + SLURM_STEP_ID mod 10).  SGC_PORT
 * sets the port of a coordinator from MASTER_ADDR or Slurm.
 */
SGC_API int sgc_init_env(sgc_comm **out);

/**
 * sgc_config_from_env() - fill @cfg from the environment as sgc_init_env()
 * does, without joining.  String fields point into the environment, or
 * (a coordinator from a file, MASTER_ADDR or Slurm) into a per-thread
 * buffer that the next call on the thread overwrites.
 * Set cfg->sz = sizeof(*cfg) first: it is read, so that a caller built
 * with an older, smaller struct gets no more than its size written.  An sz
 * smaller than the first struct sgc_config (0 included) fails with -EINVAL
 * and nothing is written; a bigger one gets this library's fields and
 * cfg->sz set to their size.
 */
SGC_API int sgc_config_from_env(struct sgc_config *cfg);

/* sgc_config_from_env_flags() flags */
#define SGC_ENV_NO_JOB	0x1	/* rank, world size: the caller's; coordinator only
				 * from SGC_COORDINATOR(_FILE), else NULL */

/**
 * sgc_config_from_env_flags() - sgc_config_from_env() for launchers that
 * know part of the job themselves (sgc_init_mpi()).  With SGC_ENV_NO_JOB,
 * cfg->rank and cfg->world_size are kept as the caller set them and no
 * rank or world size variable is read or needed; the coordinator is taken
 * from SGC_COORDINATOR or SGC_COORDINATOR_FILE only (not from MASTER_ADDR
 * or Slurm), and cfg->coordinator is NULL when neither is set.  Flags 0:
 * sgc_config_from_env().  Unknown flags: -EINVAL.
 */
SGC_API int sgc_config_from_env_flags(struct sgc_config *cfg, unsigned flags);

/**
 * sgc_finalize() - leave the job and free everything; accepts NULL.  The
 * socket is closed when it returns: a new sgc_init() may bind the same
 * port at once.
 */
SGC_API void sgc_finalize(sgc_comm *c);

/* sgc_comm_split()'s color for a rank that joins no new communicator
 * (MPI_UNDEFINED's value in MPICH). */
#define SGC_UNDEFINED (-32766)

/**
 * sgc_comm_split() - MPI_Comm_split: collective over @c (every rank calls
 * it, in the same place of the call order).  The ranks that pass the same
 * @color (0 or more) form one new communicator, ranked by (@key, rank in
 * @c); *@out gets it.  A rank with @color SGC_UNDEFINED joins none: *@out
 * = NULL and 0 is returned.  Each group's new rank 0 is its coordinator,
 * on a port of its address the kernel chooses; the ports go round through
 * @c (two sgc_allgather() calls), then each group joins as sgc_init()
 * does.  The new communicator has @c's settings (accel, timeout, delivery,
 * wait mode, algo, flags, job key) and its own socket: @c keeps working,
 * and calls on @c and on the new communicators may interleave.  Finalize
 * each with sgc_finalize(), in any order.
 *
 * eBPF path: one interface takes one eBPF coordinator, so a group whose
 * coordinator's interface already has one (@c's, for a group whose rank 0
 * is @c's rank 0) runs on the user-space path with SGC_ACCEL=auto, and
 * fails with -EBUSY with SGC_ACCEL=ebpf (sgc_last_error() names the
 * interface; choose keys that give the groups' rank 0 to ranks on other
 * hosts).  As for any job, the path needs the group's other ranks on
 * hosts other than its coordinator's (with SGC_ACCEL=auto, a group that has
 * one on the same host runs on the user-space path).
 *
 * Errors: a NULL @c fails with -EINVAL at once, and that rank takes no
 * part: the others' call fails as a collective with a rank missing does
 * (-ETIMEDOUT, -SGC_EABORTED).  A NULL @out, or a @color below 0 other
 * than SGC_UNDEFINED, still takes part, and every rank fails with -EINVAL
 * naming the rank.  When a rank of a group cannot set up its part (out of
 * memory, the eBPF path with SGC_ACCEL=ebpf), every rank of that group
 * fails alike, naming it, and the other groups go on.  @c stays usable
 * after every failure but the first kind.
 */
SGC_API int sgc_comm_split(sgc_comm *c, int color, int key, sgc_comm **out);

/**
 * sgc_comm_dup() - MPI_Comm_dup: sgc_comm_split(@c, 0, rank, @out), a new
 * communicator of the same ranks in the same order.  Its coordinator is on
 * @c's rank 0's interface, which @c's eBPF path holds, so with
 * SGC_ACCEL=auto it runs on the user-space path, and with SGC_ACCEL=ebpf
 * it fails with -EBUSY.
 */
SGC_API int sgc_comm_dup(sgc_comm *c, sgc_comm **out);

SGC_API int sgc_rank(const sgc_comm *c);
SGC_API int sgc_world_size(const sgc_comm *c);
/**
 * sgc_accelerated() - 1 when the eBPF path is active on this rank.  With
 * SGC_ACCEL=auto its programs are attached at the first scatter-gather;
 * if that fails, the coordinator goes on in user space and this turns 0.
 */
SGC_API int sgc_accelerated(const sgc_comm *c);

/**
 * sgc_allreduce() - reduce @count elements across all ranks; every rank
 * gets the result in @recvbuf.  @sendbuf may equal @recvbuf.
 */
SGC_API int sgc_allreduce(sgc_comm *c, const void *sendbuf, void *recvbuf,
			  size_t count, enum sgc_dtype dt, enum sgc_op op);

/**
 * sgc_reduce() - like sgc_allreduce() but only @root gets the result;
 * @recvbuf is ignored (may be NULL) on other ranks.
 */
SGC_API int sgc_reduce(sgc_comm *c, const void *sendbuf, void *recvbuf,
		       size_t count, enum sgc_dtype dt, enum sgc_op op, int root);

/**
 * sgc_broadcast() - copy @root's @buf to every rank's @buf.  No rank
 * returns before every rank has called it alike, the root included.
 */
SGC_API int sgc_broadcast(sgc_comm *c, void *buf, size_t count,
			  enum sgc_dtype dt, int root);

/** sgc_barrier() - return once every rank has entered the barrier. */
SGC_API int sgc_barrier(sgc_comm *c);

/**
 * sgc_iallreduce() - non-blocking sgc_allreduce().  The buffers must stay
 * valid until sgc_test() reports done or sgc_wait() returns.  Up to
 * SGC_MAX_INFLIGHT collectives may be outstanding per communicator; more
 * returns -EBUSY.
 */
SGC_API int sgc_iallreduce(sgc_comm *c, const void *sendbuf, void *recvbuf,
			   size_t count, enum sgc_dtype dt, enum sgc_op op,
			   sgc_request **req);

/** sgc_ibroadcast() - non-blocking sgc_broadcast(). */
SGC_API int sgc_ibroadcast(sgc_comm *c, void *buf, size_t count,
			   enum sgc_dtype dt, int root, sgc_request **req);

/**
 * sgc_ireduce() - non-blocking sgc_reduce().  @recvbuf (at @root) and
 * @sendbuf must stay valid until the request finishes.
 */
SGC_API int sgc_ireduce(sgc_comm *c, const void *sendbuf, void *recvbuf,
			size_t count, enum sgc_dtype dt, enum sgc_op op, int root,
			sgc_request **req);

/**
 * sgc_ibarrier() - non-blocking sgc_barrier(): the request finishes once
 * every rank has entered the barrier.
 */
SGC_API int sgc_ibarrier(sgc_comm *c, sgc_request **req);

#define SGC_MAX_INFLIGHT 64

/**
 * sgc_reduce_scatter() - MPI_Reduce_scatter_block: @sendbuf holds
 * world_size * @count elements; rank r gets in @recvbuf the reduction of
 * every rank's block r (@count elements).  Every rank reduces its own
 * block from the others' (the sharded algorithm's first phase).  The
 * buffers must not overlap.
 */
SGC_API int sgc_reduce_scatter(sgc_comm *c, const void *sendbuf, void *recvbuf, size_t count,
			       enum sgc_dtype dt, enum sgc_op op);

/**
 * sgc_allgather() - MPI_Allgather: every rank's @count elements of
 * @sendbuf, in rank order, in every rank's @recvbuf (world_size * @count
 * elements).  In place: @sendbuf may be @recvbuf + rank * @count elements.
 */
SGC_API int sgc_allgather(sgc_comm *c, const void *sendbuf, void *recvbuf, size_t count,
			  enum sgc_dtype dt);

/** sgc_ireduce_scatter() - non-blocking sgc_reduce_scatter(). */
SGC_API int sgc_ireduce_scatter(sgc_comm *c, const void *sendbuf, void *recvbuf, size_t count,
				enum sgc_dtype dt, enum sgc_op op, sgc_request **req);

/** sgc_iallgather() - non-blocking sgc_allgather(). */
SGC_API int sgc_iallgather(sgc_comm *c, const void *sendbuf, void *recvbuf, size_t count,
			   enum sgc_dtype dt, sgc_request **req);

/**
 * sgc_test() - make progress; *done = 1 when @req finished, in which case
 * @req is freed and the return value is the collective's result.
 */
SGC_API int sgc_test(sgc_request *req, int *done);

/** sgc_wait() - block until @req finishes (or times out); frees @req. */
SGC_API int sgc_wait(sgc_request *req);

/**
 * sgc_waitall() - block until every request in @reqs[0..@n) finishes; each
 * is freed and its entry set to NULL.  NULL entries are skipped.
 * @statuses (may be NULL): @n ints, each request's result (0 for a NULL
 * entry).  Returns 0 when all succeeded, else the first failure in array
 * order, which sgc_last_error() describes with its index.  The requests
 * may belong to different communicators (all the calling thread's): every
 * one of them makes progress while the call waits.  (Calls on one
 * communicator, sgc_wait() and the blocking collectives, drive that one
 * only: meanwhile the others answer no peer's request to send a lost
 * datagram again.)  -EINVAL for @n < 0, a NULL @reqs with @n > 0, or a
 * request in the array twice; then nothing is freed.
 */
SGC_API int sgc_waitall(int n, sgc_request **reqs, int *statuses);

/**
 * sgc_testany() - make progress without blocking; when a request in
 * @reqs[0..@n) has finished, *@done = 1, *@index = its index, it is freed,
 * its entry set to NULL, and the return value is its result.  Otherwise
 * *@done = 0, *@index = -1 and the return value is 0 or an error of the
 * progress step.  NULL entries are skipped; an array with none left
 * (@n = 0 included) gives *@done = 1 and *@index = -1, as MPI_Testany does.
 * The requests may belong to different communicators; wait for the
 * sgc_fd() of each between calls.  -EINVAL as for sgc_waitall(), and for
 * a NULL @index or @done.
 */
SGC_API int sgc_testany(int n, sgc_request **reqs, int *index, int *done);

/**
 * sgc_fd() - a file descriptor that becomes readable when sgc_test() can
 * make progress (packets arrived or a retransmit timer fired).  Add it to
 * your epoll set for POLLIN; never read it yourself.
 */
SGC_API int sgc_fd(const sgc_comm *c);

/* ---- Fixed point: float gradients through integer reductions ---- */

/**
 * sgc_fixed_scale() - the scale for quantising values of magnitude at most
 * @max_abs so that the sum over @world ranks fits in @dt (SGC_INT32 or
 * SGC_INT64): the largest power of two s with max_abs * s at most
 * M / world - 1, where M is the type's maximum (capped at 2^53 for int64,
 * so the doubles that carry the values stay exact); the spare unit per rank
 * absorbs rounding up.  Returns 0 for bad arguments, and when @max_abs is
 * so small that s would overflow a double.
 *
 * Error bound: each quantised element is within 0.5 / s of the original,
 * so a sum over the ranks is within world * 0.5 / s of the exact sum and an
 * average within 0.5 / s, as long as no input exceeded @max_abs.
 */
SGC_API double sgc_fixed_scale(int world, double max_abs, enum sgc_dtype dt);

/**
 * sgc_quantize_f32() / sgc_quantize_f64() - out[i] = round(in[i] * scale)
 * as @dt (SGC_INT32 or SGC_INT64), saturated at +-@limit (the caller's
 * max_abs * scale; 0 = the type's range).  NaN becomes 0 and counts as
 * saturated.  Returns how many elements were saturated (the overflow
 * flag), or a negative error code.
 */
SGC_API long sgc_quantize_f32(const float *in, void *out, size_t n, enum sgc_dtype dt,
			      double scale, double limit);
SGC_API long sgc_quantize_f64(const double *in, void *out, size_t n, enum sgc_dtype dt,
			      double scale, double limit);

/** sgc_dequantize_f32() / _f64() - out[i] = in[i] / (scale * divisor). */
SGC_API int sgc_dequantize_f32(const void *in, float *out, size_t n, enum sgc_dtype dt,
			       double scale, double divisor);
SGC_API int sgc_dequantize_f64(const void *in, double *out, size_t n, enum sgc_dtype dt,
			       double scale, double divisor);

/**
 * sgc_allreduce_float() - sum (@average 0) or average (1) float vectors over
 * all ranks: quantise to int32 with sgc_fixed_scale(world, max_abs), reduce
 * as integers (in the kernel on the eBPF path), dequantise.  Every rank must
 * pass the same @max_abs.  *@nsaturated (may be NULL) gets how many of this
 * rank's inputs exceeded max_abs and were clamped.  In place works.
 */
SGC_API int sgc_allreduce_float(sgc_comm *c, const float *sendbuf, float *recvbuf, size_t count,
				double max_abs, int average, size_t *nsaturated);
/** sgc_allreduce_double() - the same for doubles, through int64. */
SGC_API int sgc_allreduce_double(sgc_comm *c, const double *sendbuf, double *recvbuf,
				 size_t count, double max_abs, int average, size_t *nsaturated);

/* ---- The raw scatter-gather primitive (sgbpf's API) ---- */

enum sgc_policy {
	SGC_WAIT_ALL,	/* every worker answers */
	SGC_WAIT_N,	/* the first wait_n workers to answer */
	SGC_WAIT_ANY,	/* the first worker to answer */
};

struct sgc_sg_opts {
	size_t sz;		/* sizeof(struct sgc_sg_opts) */
	enum sgc_policy policy;
	unsigned wait_n;	/* for SGC_WAIT_N: 1 .. world_size - 1 */
	unsigned timeout_ms;	/* 0 = the communicator's timeout */
};

struct sgc_sg_status {
	size_t sz;		/* sizeof(struct sgc_sg_status) */
	int nanswered;		/* out: workers whose responses were reduced */
	int ndeclined;		/* out: workers whose handler declined */
	unsigned char *answered; /* in: NULL or world_size bytes; out: 1 per
				  * rank whose response is in the result */
};

/**
 * sgc_scatter_gather() - coordinator only: send @query (at most
 * sgc_max_query() bytes) to every worker, gather each worker's response of
 * @count elements of @dt and reduce them with @op into @result, completing
 * as @opts says.  With WAIT_N/WAIT_ANY the first ranks to answer the first
 * chunk are the ones reduced, for every chunk.  @status (may be NULL)
 * tells how many and which ranks answered; it is filled on timeout too.
 */
SGC_API int sgc_scatter_gather(sgc_comm *c, const void *query, size_t query_len,
			       void *result, size_t count, enum sgc_dtype dt,
			       enum sgc_op op, const struct sgc_sg_opts *opts,
			       struct sgc_sg_status *status);

/** sgc_max_query() - the largest query payload, in bytes. */
SGC_API size_t sgc_max_query(const sgc_comm *c);

/**
 * sgc_handler_fn - a worker's answer to one query.
 * Fill @response (@count elements of @dt, zeroed on entry) and return 0 to
 * answer, 1 to decline (the coordinator counts it as declined), or a
 * negative code to stop sgc_serve() with that code.
 */
typedef int (*sgc_handler_fn)(const void *query, size_t query_len,
			      void *response, size_t count, enum sgc_dtype dt,
			      void *arg);

struct sgc_serve_opts {
	size_t sz;		/* sizeof(struct sgc_serve_opts) */
	unsigned idle_timeout_ms; /* 0 = the communicator's timeout */
};

/**
 * sgc_serve() - worker only: answer queries with @fn until the coordinator
 * calls sgc_serve_stop() (returns 0), nothing arrives for the idle timeout
 * (-ETIMEDOUT), or @fn returns a negative code (that code).
 */
SGC_API int sgc_serve(sgc_comm *c, sgc_handler_fn fn, void *arg,
		      const struct sgc_serve_opts *opts);

/** sgc_serve_stop() - coordinator only: make every worker's sgc_serve()
 * return 0; waits until all workers have seen it. */
SGC_API int sgc_serve_stop(sgc_comm *c);

/* ---- Errors, logging, statistics ---- */

/** sgc_strerror() - a sentence naming the cause of @err and the fix. */
SGC_API const char *sgc_strerror(int err);

/** sgc_last_error() - details of this thread's last failed call ("" if none). */
SGC_API const char *sgc_last_error(void);

/**
 * sgc_set_last_error() - record @msg as the calling thread's
 * sgc_last_error() and return @err.  For libraries built on libsgcoll
 * (libsgcoll-mpi), whose failures should read like libsgcoll's own: a
 * rank that fails because another rank did gets that rank's message.
 * @msg may be NULL (the empty message).
 */
SGC_API int sgc_set_last_error(int err, const char *msg);

enum sgc_print_level { SGC_WARN, SGC_INFO, SGC_DEBUG };
typedef int (*sgc_print_fn)(enum sgc_print_level level, const char *fmt, va_list ap);

/**
 * sgc_set_print() - route the library's log lines (default: WARN and INFO
 * to stderr, DEBUG when SGC_DEBUG=1).  NULL silences it.  Returns the
 * previous function.
 */
SGC_API sgc_print_fn sgc_set_print(sgc_print_fn fn);

struct sgc_stats {
	uint64_t collectives;	/* completed collectives and queries */
	uint64_t pkts_sent;
	uint64_t pkts_recv;
	uint64_t retransmits;	/* datagrams sent again after a timeout */
	uint64_t duplicates;	/* datagrams already counted, ignored */
	uint64_t rejected;	/* datagrams that failed validation */
	uint64_t foreign;	/* datagrams of another job or unknown source */
	uint64_t late;		/* datagrams for finished collectives */
	uint64_t timeouts;	/* calls that ended with -ETIMEDOUT */
	uint64_t bad_mac;	/* datagrams whose MAC was missing or wrong (job key) */
	uint64_t bytes_sent;	/* UDP payload bytes sent (headers and tags included) */
	/* Sharded allreduces whose shard this rank reduced on its own eBPF
	 * path (SGC_ACCEL=ebpf).  With them, the counters above include
	 * the shards' groups (one communicator per shard owner). */
	uint64_t shards_in_kernel;
};

/** sgc_get_stats() - copy this rank's counters into @st (@sz = sizeof). */
SGC_API int sgc_get_stats(const sgc_comm *c, struct sgc_stats *st, size_t sz);

/**
 * sgc_bpf_stats() - the eBPF path's counters (summed over CPUs), one per
 * reason a datagram was passed, dropped or reduced; sgc_bpf_stat_name(i)
 * names entry i.  Returns how many were written, or -EOPNOTSUPP when the
 * eBPF path is not active on this rank.  `sgc-bpfstat IFNAME` prints the
 * same for a running coordinator.
 */
SGC_API int sgc_bpf_stats(const sgc_comm *c, uint64_t *out, int n);
SGC_API const char *sgc_bpf_stat_name(int i);

/* ---- Version ---- */

/**
 * sgc_version() - the version of the libsgcoll that is running,
 * "MAJOR.MINOR.PATCH" (a static string).  SGCOLL_VERSION_MAJOR and
 * SGCOLL_VERSION_MINOR above are the version of the header a program was
 * built with; the two differ when the program runs against another build of
 * the library.
 */
SGC_API const char *sgc_version(void);

/**
 * sgc_version_number() - the same as one number for comparisons,
 * MAJOR * 10000 + MINOR * 100 + PATCH (0.2.0 is 200, 1.3.12 is 10312).
 */
SGC_API int sgc_version_number(void);

#ifdef __cplusplus
}
#endif

#endif /* SGCOLL_H */
