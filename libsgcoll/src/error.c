/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Logging, the per-thread detailed error and sgc_strerror().
 *
 * The print hook is one atomic pointer: sgc_set_print() may race with
 * sgc_pr() on other threads and each caller sees either the old or the new
 * function, never a torn value.  The detailed error lives in thread-local
 * storage so concurrent communicators do not overwrite each other's text.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sgc_internal.h"

#define SGC_ERR_BUF 512

static int default_print(enum sgc_print_level level, const char *fmt, va_list ap);

static _Atomic(sgc_print_fn) print_fn = default_print;

/* -1: not looked at yet, 0: off, 1: SGC_DEBUG=1. */
static atomic_int debug_enabled = -1;

static _Thread_local char last_err[SGC_ERR_BUF];

static bool debug_on(void)
{
	int on = atomic_load_explicit(&debug_enabled, memory_order_relaxed);

	if (on < 0) {
		const char *v = getenv("SGC_DEBUG");

		on = v && strcmp(v, "1") == 0;
		atomic_store_explicit(&debug_enabled, on, memory_order_relaxed);
	}
	return on;
}

/*
 * Format the whole line first and write it with one call, so lines of
 * concurrent threads do not interleave mid-line.  Callers may or may not
 * end their format with '\n'; exactly one is printed.
 */
static int default_print(enum sgc_print_level level, const char *fmt, va_list ap)
{
	char line[1024];
	int n;

	if (level == SGC_DEBUG && !debug_on())
		return 0;

	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return n;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	return fprintf(stderr, "libsgcoll: %s\n", line);
}

sgc_print_fn sgc_set_print(sgc_print_fn fn)
{
	return atomic_exchange(&print_fn, fn);
}

void sgc_pr(enum sgc_print_level level, const char *fmt, ...)
{
	sgc_print_fn fn = atomic_load_explicit(&print_fn, memory_order_acquire);
	int saved_errno = errno;
	va_list ap;

	if (!fn)
		return;
	va_start(ap, fmt);
	fn(level, fmt, ap);
	va_end(ap);
	errno = saved_errno;
}

int sgc_err(int err, const char *fmt, ...)
{
	int saved_errno = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_err, sizeof(last_err), fmt, ap);
	va_end(ap);
	pr_debug("error %d: %s", err, last_err);
	errno = saved_errno;
	return err;
}

void sgc_err_clear(void)
{
	last_err[0] = '\0';
}

const char *sgc_last_error(void)
{
	return last_err;
}

int sgc_set_last_error(int err, const char *msg)
{
	/* sgc_set_last_error(e, sgc_last_error()): already there, and
	 * formatting a buffer into itself is undefined. */
	if (msg == last_err)
		return err;
	return sgc_err(err, "%s", msg ? msg : "");
}

/*
 * One sentence per code the library returns: what most likely went wrong
 * in libsgcoll's terms, and what to do about it.
 */
static const char *sgc_explain(int code)
{
	switch (code) {
	case EINVAL:
		return "invalid argument: a parameter or configuration value is malformed or out "
		       "of range (address, rank, world size, dtype, op, count, or an options "
		       "struct whose sz is not set): sgc_last_error() names the field and the "
		       "expected form";
	case ETIMEDOUT:
		return "a rank did not answer within the timeout: check that every rank was "
		       "started with the same SGC_WORLD_SIZE and SGC_COORDINATOR, that the "
		       "network between them works, or raise SGC_TIMEOUT_MS; sgc_last_error() "
		       "names the ranks";
	case ENOMEM:
		return "out of memory while allocating communicator or collective buffers: free "
		       "memory, use smaller vectors or fewer outstanding non-blocking collectives";
	case EPERM:
		return "the eBPF path needs root or CAP_BPF+CAP_NET_ADMIN: run as root, or set "
		       "SGC_ACCEL=off/auto to use the user-space path";
	case EACCES:
		return "permission denied by the kernel (a port below 1024, a locked-down kernel "
		       "or an LSM policy refusing the socket or BPF call): use a port >= 1024 in "
		       "SGC_COORDINATOR, run as root, or set SGC_ACCEL=off";
	case EADDRINUSE:
		return "the UDP port is taken by another job or process on this host, or (at "
		       "init) two processes were started with the same SGC_RANK: choose another "
		       "port in SGC_COORDINATOR (or SGC_BIND) or stop the job that holds it; give "
		       "every process a rank of its own; sgc_last_error() says which";
	case EADDRNOTAVAIL:
		return "the address is not configured on this host: SGC_BIND (or SGC_COORDINATOR "
		       "on rank 0) must be an IPv4 address of a local interface (see `ip addr`); "
		       "leave SGC_BIND unset to pick it from the route";
	case ENETUNREACH:
		return "no route from this host to the coordinator's network: check the address "
		       "in SGC_COORDINATOR and the routing table (`ip route get <address>`)";
	case EHOSTUNREACH:
		return "the coordinator or a worker host is unreachable (no ARP answer, host down "
		       "or a router rejected it): check that the address in SGC_COORDINATOR is "
		       "right, the host is up and no firewall drops UDP";
	case ENODEV:
		return "no such network interface: SGC_IFNAME (or the interface holding the "
		       "coordinator's address) does not exist on this host; set SGC_IFNAME to an "
		       "interface shown by `ip link`, or unset it";
	case EOPNOTSUPP:
		return "not supported here: SGC_ACCEL=ebpf was requested on a kernel or interface "
		       "without XDP support, or the call is not allowed on this rank's role; set "
		       "SGC_ACCEL=auto/off, or call it from the rank it is meant for";
	case EPROTO:
		return "protocol error: at init, ranks were started with different "
		       "SGC_WORLD_SIZE; otherwise a peer sent a datagram this build cannot "
		       "interpret, most likely ranks running different libsgcoll versions: give "
		       "every rank the same world size and the same build";
	case EBUSY:
		return "busy: SGC_MAX_INFLIGHT non-blocking collectives are already pending, or "
		       "another XDP program holds the interface; complete requests with "
		       "sgc_wait()/sgc_test() first, or detach the other program";
	case EMSGSIZE:
		return "too large for the wire: the query exceeds sgc_max_query() bytes or the "
		       "vector needs more chunks than a datagram header can number; shorten the "
		       "query or split the vector";
	case ENOTCONN:
		return "the communicator is not joined: sgc_init() did not complete or the "
		       "communicator was already finalized; check sgc_init()'s result before "
		       "calling collectives";
	case ESHUTDOWN:
		return "the job is shutting down: the coordinator finalized or stopped serving, "
		       "so no more collectives can run; call sgc_finalize() on this rank";
	case ECONNREFUSED:
		return "the peer's UDP port is closed (ICMP port unreachable): the coordinator is "
		       "not running yet or already exited; start rank 0 with or before the "
		       "workers and check the port in SGC_COORDINATOR";
	case ECONNABORTED:
		return "a rank left the job in the middle of a collective: check that rank's log, "
		       "and that every rank calls the same collectives in the same order before "
		       "sgc_finalize()";
	case ECANCELED:
		return "the pending request was cancelled because the communicator was finalized "
		       "or the job aborted: finish outstanding requests with sgc_wait() before "
		       "sgc_finalize()";
	case ERANGE:
		return "a value is outside what this job allows (root >= world size, wait_n not "
		       "in 1..world_size-1, or a count beyond the wire's limits): "
		       "sgc_last_error() names the value";
	case EBADMSG:
		return "a malformed datagram reached this rank (bad length, field or job), "
		       "possibly from another program sharing the port: give each job a port of "
		       "its own in SGC_COORDINATOR";
	case SGC_EMISMATCH:
		return "ranks disagree on a collective's arguments (count, dtype, op or root "
		       "differ, or the ranks called collectives in a different order): "
		       "sgc_last_error() names the rank, the argument and both values; call the "
		       "same collectives with the same arguments on every rank";
	case SGC_EABORTED:
		return "the coordinator abandoned this collective (a rank failed or timed out): "
		       "read the coordinator's log or sgc_last_error() for the cause, then retry "
		       "or finalize";
	default:
		return NULL;
	}
}

const char *sgc_strerror(int err)
{
	const char *s;
	int code;

	if (err == 0)
		return "success";
	if (err == INT_MIN)
		return "unknown error code";
	code = err < 0 ? -err : err;

	s = sgc_explain(code);
	if (s)
		return s;
	/* Static, thread-safe text (glibc >= 2.32), unlike strerror(). */
	s = strerrordesc_np(code);
	return s ? s : "unknown error code";
}

void sgc_rank_list(char *buf, size_t len, int first, int end,
		   bool (*pred)(const void *arg, int rank), const void *arg)
{
	sgc_rank_list_base(buf, len, first, end, 0, pred, arg);
}

void sgc_rank_list_base(char *buf, size_t len, int first, int end, int base,
			bool (*pred)(const void *arg, int rank), const void *arg)
{
	size_t off = 0;
	int r, shown = 0, total = 0;

	if (!len)
		return;
	buf[0] = 0;
	for (r = first; r < end; r++) {
		if (!pred(arg, r))
			continue;
		total++;
		if (shown < 12 && off + 12 < len) {
			off += (size_t)snprintf(buf + off, len - off, "%s%d", shown ? ", " : "",
						base ? (r + base) % end : r);
			shown++;
		}
	}
	if (total > shown && off + 24 < len)
		snprintf(buf + off, len - off, " and %d more", total - shown);
}
