/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Internal declarations shared by the library's source files.  Never
 * installed.  Leaf modules (error, config, wire, reduce) first, then the
 * communicator and the collective engine.
 */
#ifndef SGC_INTERNAL_H
#define SGC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <net/if.h>
#include <netinet/in.h>

#include "sgcoll.h"
#include "sgcoll/wire.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "libsgcoll's wire format is little-endian; big-endian hosts are not supported"
#endif

#define SGC_HIDDEN __attribute__((visibility("hidden")))
#define SGC_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* ---- error.c: logging and the per-thread detailed error ---- */

SGC_HIDDEN void sgc_pr(enum sgc_print_level level, const char *fmt, ...) SGC_PRINTF(2, 3);
#define pr_warn(...)  sgc_pr(SGC_WARN, __VA_ARGS__)
#define pr_info(...)  sgc_pr(SGC_INFO, __VA_ARGS__)
#define pr_debug(...) sgc_pr(SGC_DEBUG, __VA_ARGS__)

/*
 * sgc_err() - record a detailed message for sgc_last_error() and return
 * @err (a negative code) so callers can write `return sgc_err(-EINVAL, ...)`.
 */
SGC_HIDDEN int sgc_err(int err, const char *fmt, ...) SGC_PRINTF(2, 3);
SGC_HIDDEN void sgc_err_clear(void);
/* "3, 7, 12 and 5 more": the ranks in [first, end) where @pred holds, for
 * error messages that name who did not answer. */
SGC_HIDDEN void sgc_rank_list(char *buf, size_t len, int first, int end,
			      bool (*pred)(const void *arg, int rank), const void *arg);
/* The same, naming rank r as (r + @base) % @end (kshard.c's groups, whose
 * ranks are numbered from their owner on: comm.h's rank_base). */
SGC_HIDDEN void sgc_rank_list_base(char *buf, size_t len, int first, int end, int base,
				   bool (*pred)(const void *arg, int rank), const void *arg);

/* ---- config.c: options structs that can grow ---- */

/*
 * Every public struct whose first member is `size_t sz` is read and written
 * through these macros, never through sz by hand (the libbpf scheme):
 *
 * - A caller built against an older sgcoll.h has a smaller struct and says
 *   so in sz.  Fields past its sz are not read (OPTS_GET gives the
 *   fallback, the value the field's zero means) and not written (OPTS_SET).
 * - sz must reach at least the end of the struct as first released: its
 *   minimal size is offsetofend(struct T, T__min_field), with T__min_field
 *   defined below.  These never change once released; a field added later
 *   goes after them and is read with OPTS_GET.
 * - A caller built against a newer sgcoll.h has a bigger struct.  The
 *   bytes past what this library knows must be zero: a newer field that is
 *   set would otherwise be silently ignored.
 *
 * OPTS_VALID(opts, T) - true for NULL and for a valid @opts of struct T;
 * otherwise false, with sgc_last_error() naming the struct, its sz and
 * the fix.  Callers return -EINVAL when it is false.
 */
#ifndef offsetofend
#define offsetofend(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))
#endif

#define sgc_config__min_field		timeout_ms	/* delivery.. are optional */
#define sgc_sg_opts__min_field		timeout_ms
#define sgc_sg_status__min_field	answered
#define sgc_serve_opts__min_field	idle_timeout_ms

#define OPTS_MIN_SZ(T) offsetofend(struct T, T##__min_field)

/* A struct's sz above this is taken for an sz that was never set. */
#define SGC_OPTS_MAX_SZ 4096

SGC_HIDDEN bool sgc_opts_valid(const void *opts, size_t sz, size_t min_sz, size_t known_sz,
			       const char *type);

#define OPTS_VALID(opts, T) ({							\
	_Static_assert(__builtin_types_compatible_p(__typeof__(*(opts)), struct T), \
		       "OPTS_VALID: " #opts " is not a struct " #T " pointer");	\
	!(opts) || sgc_opts_valid((opts), (opts)->sz, OPTS_MIN_SZ(T),		\
				  sizeof(struct T), #T);			\
})

/* @opts is not NULL and its sz covers @field. */
#define OPTS_HAS(opts, field) \
	((opts) && (opts)->sz >= offsetofend(__typeof__(*(opts)), field))
/* (opts)->field, or @fallback when @opts is NULL or too old to have it. */
#define OPTS_GET(opts, field, fallback) \
	(OPTS_HAS(opts, field) ? (opts)->field : (fallback))
/* Write an out field only when the caller's struct has it. */
#define OPTS_SET(opts, field, value)			\
	do {						\
		if (OPTS_HAS(opts, field))		\
			(opts)->field = (value);	\
	} while (0)

/*
 * Output structs without an sz member (sgc_get_stats) and the output of
 * sgc_config_from_env(): copy no more than the caller's @dst_sz nor this
 * library's @src_sz.  Returns the bytes copied.
 */
static inline size_t sgc_copy_sized(void *dst, size_t dst_sz, const void *src, size_t src_sz)
{
	size_t n = dst_sz < src_sz ? dst_sz : src_sz;

	if (n)
		__builtin_memcpy(dst, src, n);
	return n;
}

/* ---- config.c: validated configuration ---- */

struct sgc_cfg {
	int rank;
	int world;
	struct sockaddr_in coord;	/* coordinator's address and port */
	struct sockaddr_in bind;	/* this rank's address; port 0 = any */
	char ifname[IF_NAMESIZE];	/* coordinator's interface ("" = unknown) */
	enum sgc_accel accel;
	bool accel_soft;		/* SGC_ACCEL_EBPF, but a path that cannot
					 * start leaves the user-space path
					 * (kshard.c's groups) */
	enum sgc_algo algo;
	unsigned timeout_ms;		/* never 0 after validation */
	enum sgc_delivery delivery;
	enum sgc_waitmode waitmode;
	unsigned flags;			/* SGC_CFG_* */
	char custom_bpf[256];		/* "" = no custom reduction */
	bool keyed;			/* a job key was given: */
	uint8_t key[SGC_KEY_BYTES];	/* cfg.key, SGC_KEY, SGC_KEY_FILE */
	/* Only the environment sets these: sgc_cfg_env(). */
	unsigned rto_us;		/* SGC_RTO_US: first retransmission delay */
	bool gso;			/* SGC_GSO: UDP GSO/GRO wanted */
	unsigned fanout_cpus;		/* SGC_FANOUT_CPUS: eBPF fan-out CPUs, >= 1 */
};

#define SGC_DEFAULT_RTO_US	200u	/* SGC_RTO_US unset or out of range */
#define SGC_RTO_US_MIN		50u
#define SGC_RTO_US_MAX		1000000u
#define SGC_FANOUT_CPUS_MAX	64u	/* SGC_FANOUT_CPUS accepts 1..this */
#define SGC_FANOUT_CPUS_DEFAULT	4u	/* unset: the CPUs we may run on, at most this */

/* @v, the value of variable @name, as a decimal 0..@max; otherwise -EINVAL
 * with "NAME="v" is not @what". */
SGC_HIDDEN int sgc_env_uint(const char *name, const char *v, unsigned long max, const char *what,
			    unsigned long *out);

/* Parse "a.b.c.d" or "a.b.c.d:port".  need_port: 1 = port required,
 * 0 = optional (port 0 when absent). */
SGC_HIDDEN int sgc_parse_addr(const char *s, struct sockaddr_in *out, int need_port);
/* "a.b.c.d:port" as sgc_parse_addr(), or "hostname:port" resolved to its
 * first IPv4 address (getaddrinfo); a name that does not resolve fails
 * with -EINVAL naming it. */
SGC_HIDDEN int sgc_resolve_addr(const char *s, struct sockaddr_in *out);
/* The first host of a Slurm host list ("node[01-04,07],gpu1": node01)
 * into @host (@len bytes); -EINVAL for a list that is not one. */
SGC_HIDDEN int sgc_hostlist_first(const char *list, char *host, size_t len);
/* Check @in, copy it into @out, fill defaults (bind address from the
 * route to the coordinator, interface from the address), then the
 * environment-only settings with sgc_cfg_env(). */
SGC_HIDDEN int sgc_cfg_validate(const struct sgc_config *in, struct sgc_cfg *out);
/*
 * The settings no struct sgc_config field carries, from the environment:
 * rto_us (SGC_RTO_US, 50..1000000; otherwise a warning and the default),
 * gso (SGC_GSO: anything but "0" is on) and fanout_cpus (SGC_FANOUT_CPUS,
 * 1..64, otherwise -EINVAL; unset: the CPUs this process may run on, at
 * most 4).  sgc_cfg_validate() calls it; code that builds a communicator
 * without a struct sgc_config (unit tests, fuzz targets) calls it alone.
 */
SGC_HIDDEN int sgc_cfg_env(struct sgc_cfg *out);
/* The interface holding @addr into @name (@len bytes), "" when none does. */
SGC_HIDDEN void sgc_iface_of(const struct in_addr *addr, char *name, size_t len);
/* Format "a.b.c.d:port" into @buf (at least 24 bytes); returns buf. */
SGC_HIDDEN const char *sgc_addr_str(const struct sockaddr_in *a, char *buf, size_t len);

/* ---- reduce.c: element-wise reductions ---- */

SGC_HIDDEN size_t sgc_dtype_size(enum sgc_dtype dt);
SGC_HIDDEN bool sgc_dtype_valid(int dt);
SGC_HIDDEN bool sgc_op_valid(int op);
/* acc[i] = acc[i] op in[i] for i < count. */
SGC_HIDDEN void sgc_reduce_into(void *acc, const void *in, size_t count,
				enum sgc_dtype dt, enum sgc_op op);
SGC_HIDDEN const char *sgc_dtype_name(int dt);
SGC_HIDDEN const char *sgc_op_name(int op);

/* ---- wire.c: building, checking and chunking datagrams ---- */

enum sgc_reject {
	SGC_REJ_NONE = 0,
	SGC_REJ_SHORT,		/* shorter than the header */
	SGC_REJ_MAGIC,
	SGC_REJ_VERSION,
	SGC_REJ_TYPE,		/* unknown message type */
	SGC_REJ_JOB,		/* job id of another job */
	SGC_REJ_RANK,		/* rank out of range */
	SGC_REJ_SOURCE,		/* sender is not the registered address */
	SGC_REJ_COLL,		/* unknown collective kind */
	SGC_REJ_DTYPE,
	SGC_REJ_OP,
	SGC_REJ_CHUNK,		/* chunk >= nchunks, or nchunks == 0 */
	SGC_REJ_COUNT,		/* count too large for one chunk */
	SGC_REJ_LEN,		/* body length does not match count/type */
	SGC_REJ_FIELD,		/* another field out of range for the type */
	SGC_REJ_MAX
};

/* Fill the constant fields of @h. */
SGC_HIDDEN void sgc_hdr_init(struct sgc_hdr *h, uint8_t type, uint64_t job_id);
/*
 * sgc_wire_check() - validate the datagram @pkt of @len bytes received by a
 * rank of @world ranks in job @job_id (0 = any job: used before the
 * welcome).  @chunk_bytes is the job's data body size.  Returns
 * SGC_REJ_NONE or the reason.  Source-address checks are the caller's.
 */
SGC_HIDDEN int sgc_wire_check(const void *pkt, size_t len, uint64_t job_id,
			      int world, uint32_t chunk_bytes);
SGC_HIDDEN const char *sgc_reject_name(int reason);

/* Chunking: a vector of @count elements of @elsz bytes in chunks of
 * @chunk_bytes.  count 0 still has one (empty) chunk. */
SGC_HIDDEN uint32_t sgc_nchunks(size_t count, size_t elsz, size_t chunk_bytes);
SGC_HIDDEN size_t sgc_chunk_elems(size_t count, size_t elsz, size_t chunk_bytes,
				  uint32_t chunk);
/* Body bytes for a link of @mtu (a multiple of 8, at most SGC_MAX_BODY). */
SGC_HIDDEN uint32_t sgc_chunk_bytes_for_mtu(unsigned mtu);

#endif /* SGC_INTERNAL_H */
