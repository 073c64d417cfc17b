/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Configuration: address parsing, the environment, and validation of a
 * caller's struct sgc_config into the library's struct sgc_cfg.
 *
 * Every failure records a message for sgc_last_error() that quotes the bad
 * value and says what is expected, because a job that will not start is
 * almost always a configuration mistake.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sgc_internal.h"

#define SGC_TIMEOUT_MAX_MS 3600000u

/* Re-record the current detailed error with @what in front of it. */
static int err_prefix(int err, const char *what)
{
	char msg[400];

	snprintf(msg, sizeof(msg), "%s", sgc_last_error());
	return sgc_err(err, "%s: %s", what, msg);
}

/*
 * Read a decimal number of at most @maxdigits digits with no sign, no
 * leading zero (except "0" itself) and nothing else.  Returns the number of
 * characters consumed, 0 if there is no valid number at @s.
 */
static int parse_dec(const char *s, int maxdigits, unsigned long *val)
{
	unsigned long v = 0;
	int n = 0;

	while (s[n] >= '0' && s[n] <= '9') {
		if (n == maxdigits)
			return 0;
		v = v * 10 + (unsigned long)(s[n] - '0');
		n++;
	}
	if (n > 1 && s[0] == '0')
		return 0;	/* "010": octal to inet_aton, decimal to people */
	*val = v;
	return n;
}

int sgc_parse_addr(const char *s, struct sockaddr_in *out, int need_port)
{
	const char *form = need_port ? "\"a.b.c.d:port\"" : "\"a.b.c.d\" or \"a.b.c.d:port\"";
	const char *p = s;
	unsigned long v, port = 0;
	uint32_t ip = 0;
	int i, n;

	if (!s || !*s)
		return sgc_err(-EINVAL, "empty IPv4 address: expected %s with port 1..65535", form);

	for (i = 0; i < 4; i++) {
		n = parse_dec(p, 3, &v);
		if (!n)
			return sgc_err(-EINVAL,
				       "bad IPv4 address \"%.64s\": octet %d is not a decimal number; expected %s",
				       s, i + 1, form);
		if (v > 255)
			return sgc_err(-EINVAL,
				       "bad IPv4 address \"%.64s\": octet %d is %lu, above 255; expected %s",
				       s, i + 1, v, form);
		ip = ip << 8 | (uint32_t)v;
		p += n;
		if (i < 3) {
			if (*p != '.')
				return sgc_err(-EINVAL,
					       "bad IPv4 address \"%.64s\": needs four dot-separated octets; expected %s",
					       s, form);
			p++;
		}
	}

	if (*p == ':') {
		p++;
		n = parse_dec(p, 5, &port);
		if (!n || p[n] != '\0')
			return sgc_err(-EINVAL,
				       "bad port in \"%.64s\": not a decimal number; expected %s with port 1..65535",
				       s, form);
		if (port < 1 || port > 65535)
			return sgc_err(-EINVAL,
				       "bad port in \"%.64s\": %lu is not in 1..65535; expected %s",
				       s, port, form);
	} else if (*p != '\0') {
		return sgc_err(-EINVAL,
			       "bad IPv4 address \"%.64s\": unexpected text after the address; expected %s",
			       s, form);
	} else if (need_port) {
		return sgc_err(-EINVAL, "address \"%.64s\" has no port: expected %s with port 1..65535",
			       s, form);
	}

	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_addr.s_addr = htonl(ip);
	out->sin_port = htons((uint16_t)port);
	return 0;
}

/*
 * A host name as a resolver takes it: dot-separated labels of letters,
 * digits, '-' and '_', none empty or beginning or ending with '-', at most
 * 253 characters (a final dot allowed).  Anything else never reaches
 * getaddrinfo(), so a typo gives a message about its form, not a DNS
 * query for it.
 */
static bool host_name_ok(const char *h, size_t len)
{
	size_t i, label = 0;

	if (!len || len > 253 || h[0] == '.')
		return false;
	for (i = 0; i < len; i++) {
		char ch = h[i];

		if (ch == '.') {
			if (!label || h[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return false;
		if (ch == '-' && !label)
			return false;
		if (++label > 63)
			return false;
	}
	return h[len - 1] != '-';
}

int sgc_resolve_addr(const char *s, struct sockaddr_in *out)
{
	static const char form[] = "expected \"a.b.c.d:port\" or \"hostname:port\"";
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_DGRAM };
	struct addrinfo *res = NULL;
	const char *colon;
	unsigned long port;
	char host[256];
	struct in_addr lax;
	size_t hlen;
	int n, rc;

	if (!s || !*s)
		return sgc_err(-EINVAL, "empty address: %s with port 1..65535", form);
	colon = strrchr(s, ':');
	if (!colon)
		return sgc_err(-EINVAL, "address \"%.64s\" has no port: %s with port 1..65535",
			       s, form);
	hlen = (size_t)(colon - s);
	/* Digits and dots only: an IPv4 address, read strictly (and its
	 * message says what is wrong with it). */
	if (hlen && strspn(s, "0123456789.") == hlen)
		return sgc_parse_addr(s, out, 1);
	if (memchr(s, ':', hlen))
		return sgc_err(-EINVAL, "address \"%.64s\" has more than one ':' (libsgcoll speaks "
			       "IPv4 only): %s", s, form);
	if (!host_name_ok(s, hlen))
		return sgc_err(-EINVAL, "\"%.64s\": \"%.*s\" is neither an IPv4 address nor a host "
			       "name: %s", s, (int)(hlen < 64 ? hlen : 64), s, form);
	n = parse_dec(colon + 1, 5, &port);
	if (!n || colon[1 + n] || port < 1 || port > 65535)
		return sgc_err(-EINVAL, "bad port in \"%.64s\": not a decimal number in 1..65535; %s",
			       s, form);
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	/* The resolver would read "127.1" or "0x7f.0.0.1" as addresses;
	 * people read them otherwise. */
	if (inet_aton(host, &lax))
		return sgc_err(-EINVAL, "\"%.64s\": \"%s\" is not an IPv4 address in the usual "
			       "form a.b.c.d (four decimal numbers 0..255): %s", s, host, form);

	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc || !res) {
		int err = rc == EAI_AGAIN ? -EAGAIN :
			  rc == EAI_SYSTEM && errno ? -errno :
			  rc == EAI_MEMORY ? -ENOMEM : -EINVAL;

		if (res)
			freeaddrinfo(res);
		return sgc_err(err, "cannot resolve the host name \"%s\" to an IPv4 address (%s): "
			       "give rank 0's IPv4 address, or a name that resolves to it on every "
			       "host", host, rc ? gai_strerror(rc) : "no address");
	}
	/* The first answer, as every other program would pick it. */
	memcpy(out, res->ai_addr, sizeof(*out));
	out->sin_port = htons((uint16_t)port);
	freeaddrinfo(res);
	return 0;
}

/*
 * Slurm's host lists: comma-separated items, each a name in which a
 * bracket stands for a list of numbers and ranges ("node[01-04,07],gpu1",
 * "rack[1-2]-n[3,5]").  The first host is each bracket's first number as
 * written (zero padding kept): node01, rack1-n3.  Only the first item is
 * read, and checked whole.
 */
int sgc_hostlist_first(const char *list, char *host, size_t len)
{
	const char *p = list;
	size_t n = 0;

	if (!list || !*list)
		return sgc_err(-EINVAL, "empty Slurm host list: expected names such as "
			       "\"node[01-04,07],gpu1\"");
	for (; *p && *p != ','; p++) {
		const char *first, *q;
		size_t k;

		if (*p == ']')
			goto bad;
		if (*p != '[') {
			if (n + 1 >= len)
				goto long_name;
			host[n++] = *p;
			continue;
		}
		/* [a-b,c,...]: numbers and ranges of numbers, nothing else */
		first = q = ++p;
		for (;;) {
			k = strspn(q, "0123456789");
			if (!k)
				goto bad;
			q += k;
			if (*q == '-') {
				k = strspn(++q, "0123456789");
				if (!k)
					goto bad;
				q += k;
			}
			if (*q == ']')
				break;
			if (*q++ != ',')
				goto bad;
		}
		k = strspn(first, "0123456789");
		if (n + k >= len)
			goto long_name;
		memcpy(host + n, first, k);
		n += k;
		p = q;
	}
	if (!n)
		goto bad;
	host[n] = '\0';
	return 0;
bad:
	return sgc_err(-EINVAL, "bad Slurm host list \"%.200s\": expected names such as "
		       "\"node[01-04,07],gpu1\" (brackets hold numbers and ranges)", list);
long_name:
	return sgc_err(-EINVAL, "the first host of the Slurm host list \"%.200s\" is longer "
		       "than %zu characters", list, len - 1);
}

const char *sgc_addr_str(const struct sockaddr_in *a, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN];

	if (!buf || !len)
		return buf;
	if (!a || !inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip)))
		snprintf(buf, len, "(none)");
	else
		snprintf(buf, len, "%s:%u", ip, ntohs(a->sin_port));
	return buf;
}

/* ---- options structs (OPTS_VALID in sgc_internal.h) ---- */

bool sgc_opts_valid(const void *opts, size_t sz, size_t min_sz, size_t known_sz,
		    const char *type)
{
	const unsigned char *p = opts;
	size_t i;

	if (sz < min_sz) {
		sgc_err(-EINVAL,
			"struct %s has sz %zu, less than the %zu bytes of its first version%s: set sz = sizeof(struct %s)",
			type, sz, min_sz, sz ? "" : " (sz not set?)", type);
		return false;
	}
	if (sz > SGC_OPTS_MAX_SZ) {
		sgc_err(-EINVAL,
			"struct %s has sz %zu, far more than any version of it (sz not set?): set sz = sizeof(struct %s)",
			type, sz, type);
		return false;
	}
	/* A newer caller's struct: what this library does not know must be zero. */
	for (i = known_sz; i < sz; i++) {
		if (p[i]) {
			sgc_err(-EINVAL,
				"struct %s has sz %zu but this libsgcoll knows only its first %zu bytes, and byte %zu is not zero: "
				"a field of a newer sgcoll.h is set; leave it zero or use a newer libsgcoll",
				type, sz, known_sz, i);
			return false;
		}
	}
	return true;
}

/* ---- the environment ---- */

/* An unset or empty variable counts as absent. */
static const char *env_get(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* First of @names that is set; *which receives its name. */
static const char *env_first(const char *const *names, const char **which)
{
	const char *v;

	for (; *names; names++) {
		v = env_get(*names);
		if (v) {
			*which = *names;
			return v;
		}
	}
	return NULL;
}

/* 32 hex digits, blanks around them allowed (a key file's newline). */
static int parse_key_hex(const char *s, uint8_t key[SGC_KEY_BYTES])
{
	unsigned i, n = 0;
	int hi = -1, d;

	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	for (; *s && !(*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'); s++) {
		d = *s >= '0' && *s <= '9' ? *s - '0' :
		    *s >= 'a' && *s <= 'f' ? *s - 'a' + 10 :
		    *s >= 'A' && *s <= 'F' ? *s - 'A' + 10 : -1;
		if (d < 0 || n == SGC_KEY_BYTES)
			return -1;
		if (hi < 0) {
			hi = d;
		} else {
			key[n++] = (uint8_t)(hi << 4 | d);
			hi = -1;
		}
	}
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	if (*s || hi >= 0 || n != SGC_KEY_BYTES)
		return -1;
	for (i = 0; i < SGC_KEY_BYTES; i++)
		if (key[i])
			return 0;
	return -2;
}

#define KEY_HOWTO "32 hex digits (128 bits), the same on every rank; draw one with " \
		  "`od -An -tx1 -N16 /dev/urandom | tr -d ' \\n'`"

/*
 * SGC_KEY (hex) or SGC_KEY_FILE (a file holding it) into @key; *set is
 * false when neither is set.
 */
static int env_key(uint8_t key[SGC_KEY_BYTES], bool *set)
{
	const char *hex = env_get("SGC_KEY"), *path = env_get("SGC_KEY_FILE");
	char buf[256];
	size_t n = 0;
	FILE *f;
	int err;

	*set = false;
	if (hex && path)
		return sgc_err(-EINVAL, "both SGC_KEY and SGC_KEY_FILE are set: set one of them");
	if (path) {
		struct stat st;

		f = fopen(path, "r");
		if (!f) {
			err = -errno;
			return sgc_err(err, "SGC_KEY_FILE=%.200s cannot be read (%s): it must hold the job key, "
				       KEY_HOWTO, path, strerrordesc_np(-err));
		}
		if (!fstat(fileno(f), &st) && (st.st_mode & 0077))
			pr_warn("SGC_KEY_FILE=%.200s can be read by other users (mode %03o): "
				"`chmod 600` it\n", path, (unsigned)(st.st_mode & 0777));
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = 0;
		hex = buf;
	}
	if (!hex)
		return 0;
	err = parse_key_hex(hex, key);
	explicit_bzero(buf, sizeof(buf));
	if (err == -2)
		return sgc_err(-EINVAL, "%s holds a key of all zeros, which anyone can guess: use "
			       KEY_HOWTO, path ? "SGC_KEY_FILE" : "SGC_KEY");
	if (err)
		return sgc_err(-EINVAL, "%s%.200s%s is not a job key: it must be " KEY_HOWTO,
			       path ? "the file SGC_KEY_FILE=" : "SGC_KEY",
			       path ? path : "", path ? "" : " (value not shown)");
	*set = true;
	return 0;
}

int sgc_env_uint(const char *name, const char *v, unsigned long max, const char *what,
		 unsigned long *out)
{
	unsigned long x;
	char *end;

	/* strtoul accepts a sign and leading blanks; numbers here do not. */
	if (v[0] < '0' || v[0] > '9')
		goto bad;
	errno = 0;
	x = strtoul(v, &end, 10);
	if (errno || *end || x > max)
		goto bad;
	*out = x;
	return 0;
bad:
	return sgc_err(-EINVAL, "%s=\"%.64s\" is not %s", name, v, what);
}

/*
 * A 0/1 variable: @name set to "1" ("0" when @inverted) sets @bit in *flags;
 * the other value clears it; unset leaves it clear.
 */
static int env_flag(const char *name, unsigned bit, bool inverted, unsigned *flags)
{
	const char *v = env_get(name);

	if (!v)
		return 0;
	if (strcmp(v, "0") && strcmp(v, "1"))
		return sgc_err(-EINVAL, "%s=\"%.64s\" must be 0 or 1", name, v);
	if ((v[0] == '1') != inverted)
		*flags |= bit;
	return 0;
}

/*
 * SGC_KERNEL_FANOUT=0: on the eBPF path user space, not notify_prog in the
 * kernel, sends each result to the workers.  SGC_ALLGATHER is its old name
 * ("allgather" read as the collective); either works, both must agree.
 */
static int env_kernel_fanout(unsigned *flags)
{
	const char *now = env_get("SGC_KERNEL_FANOUT"), *old = env_get("SGC_ALLGATHER");
	unsigned a = 0, b = 0;
	int err;

	err = env_flag("SGC_KERNEL_FANOUT", SGC_CFG_NO_KERNEL_FANOUT, true, &a);
	if (!err)
		err = env_flag("SGC_ALLGATHER", SGC_CFG_NO_KERNEL_FANOUT, true, &b);
	if (err)
		return err;
	if (now && old && a != b)
		return sgc_err(-EINVAL,
			       "SGC_KERNEL_FANOUT=%.64s and SGC_ALLGATHER=%.64s disagree: SGC_ALLGATHER is the old name of SGC_KERNEL_FANOUT; unset it",
			       now, old);
	*flags |= a | b;
	return 0;
}

/*
 * Launchers.  Where rank, world size and the coordinator come from when
 * SGC_RANK, SGC_WORLD_SIZE and SGC_COORDINATOR are unset, each looked up
 * on its own, first found first: Open MPI's mpirun, then PMI (MPICH's
 * hydra), then torchrun, then Slurm's srun.
 *
 *   rank        OMPI_COMM_WORLD_RANK, PMI_RANK, RANK, SLURM_PROCID
 *   world size  OMPI_COMM_WORLD_SIZE, PMI_SIZE, WORLD_SIZE, SLURM_NTASKS
 *   coordinator SGC_COORDINATOR_FILE; MASTER_ADDR; the first host of
 *               SLURM_STEP_NODELIST (else SLURM_JOB_NODELIST)
 *
 * The port of a coordinator from MASTER_ADDR or Slurm is SGC_PORT if set.
 * Otherwise, under torchrun, MASTER_PORT + SGC_TORCH_PORT_OFFSET: torch's
 * own rendezvous store listens on MASTER_PORT itself.  Under srun it is
 * derived from the job and step ids, so that two jobs whose first node is
 * the same host do not both want one port: SGC_SLURM_PORT_BASE +
 * 10 * (SLURM_JOB_ID mod 1000) + SLURM_STEP_ID mod 10, in 20000..29999.
 */
#define SGC_TORCH_PORT_OFFSET	1
#define SGC_SLURM_PORT_BASE	20000

static int env_port(const char *name, unsigned long max, const char *what, unsigned long *port)
{
	const char *v = env_get(name);
	int err;

	*port = 0;
	if (!v)
		return 0;
	err = sgc_env_uint(name, v, max, what, port);
	if (!err && !*port)
		err = sgc_err(-EINVAL, "%s=\"%.64s\" is not %s", name, v, what);
	return err;
}

/* An id Slurm sets as a decimal number; 0 when unset. */
static int env_slurm_id(const char *name, unsigned long *id)
{
	const char *v = env_get(name);

	*id = 0;
	return v ? sgc_env_uint(name, v, ~0UL, "a Slurm id (decimal)", id) : 0;
}

/*
 * The coordinator's "host:port" into *coord (the environment's string, or
 * a per-thread buffer), and into *from the variable it came from, for
 * messages; an error when no launcher gives one.
 */
static int env_coordinator(const char **coord, const char **from)
{
	static _Thread_local char buf[320];
	unsigned long port = 0, job, step;
	const char *v, *path;
	char host[256];
	int err, n;

	*from = "SGC_COORDINATOR";
	*coord = env_get("SGC_COORDINATOR");
	if (*coord)
		return 0;

	path = env_get("SGC_COORDINATOR_FILE");
	if (path) {
		/* One line "host:port" in a file, for launchers (mpirun) that
		 * pass files more easily than per-job environment. */
		FILE *f = fopen(path, "r");

		if (!f || !fgets(buf, sizeof(buf), f)) {
			err = -errno ? -errno : -EINVAL;
			if (f)
				fclose(f);
			return sgc_err(err, "SGC_COORDINATOR_FILE=%.200s cannot be read: it must hold "
				       "one line \"a.b.c.d:port\" or \"hostname:port\"", path);
		}
		fclose(f);
		buf[strcspn(buf, "\r\n \t")] = 0;
		*from = "SGC_COORDINATOR_FILE";
		*coord = buf;
		return 0;
	}

	err = env_port("SGC_PORT", 65535, "a UDP port (decimal 1..65535)", &port);
	if (err)
		return err;

	/* torchrun */
	v = env_get("MASTER_ADDR");
	if (v) {
		if (!port) {
			if (!env_get("MASTER_PORT"))
				return sgc_err(-EINVAL, "MASTER_ADDR=%.64s is set but MASTER_PORT is not: "
					       "set MASTER_PORT (libsgcoll uses the port after it) or "
					       "SGC_PORT", v);
			err = env_port("MASTER_PORT", 65535 - SGC_TORCH_PORT_OFFSET,
				       "a port with a free one after it (decimal 1..65534; libsgcoll "
				       "uses MASTER_PORT + 1); or set SGC_PORT", &port);
			if (err)
				return err;
			port += SGC_TORCH_PORT_OFFSET;
		}
		n = snprintf(buf, sizeof(buf), "%s:%lu", v, port);
		if (n < 0 || (size_t)n >= sizeof(buf))
			return sgc_err(-EINVAL, "MASTER_ADDR=%.64s... is too long for a host name", v);
		*from = "MASTER_ADDR";
		*coord = buf;
		return 0;
	}

	/* srun: rank 0 runs on the first node of the step */
	*from = "SLURM_STEP_NODELIST";
	v = env_get(*from);
	if (!v) {
		*from = "SLURM_JOB_NODELIST";
		v = env_get(*from);
	}
	if (v) {
		err = sgc_hostlist_first(v, host, sizeof(host));
		if (err)
			return err_prefix(err, *from);
		if (!port) {
			err = env_slurm_id("SLURM_JOB_ID", &job);
			if (!err)
				err = env_slurm_id("SLURM_STEP_ID", &step);
			if (err)
				return err;
			port = SGC_SLURM_PORT_BASE + 10 * (job % 1000) + step % 10;
		}
		snprintf(buf, sizeof(buf), "%s:%lu", host, port);
		*coord = buf;
		return 0;
	}

	*from = "SGC_COORDINATOR";
	return sgc_err(-EINVAL,
		       "SGC_COORDINATOR is not set: set SGC_COORDINATOR=a.b.c.d:port (or hostname:port), "
		       "rank 0's address and UDP port, on every rank (or SGC_COORDINATOR_FILE to a file "
		       "holding it); under torchrun or srun it comes from MASTER_ADDR or "
		       "SLURM_STEP_NODELIST");
}

/* Rank, world size and the coordinator, from SGC_* or a launcher's variables. */
static int env_job(struct sgc_config *c)
{
	/* In the order of the launchers above. */
	static const char *const rank_vars[] = {
		"SGC_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "RANK", "SLURM_PROCID", NULL
	};
	static const char *const size_vars[] = {
		"SGC_WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "WORLD_SIZE", "SLURM_NTASKS", NULL
	};
	struct sockaddr_in tmp;
	const char *v, *name;
	unsigned long x = 0;	/* -O3 cannot see that sgc_env_uint() sets it on success */
	int err;

	v = env_first(rank_vars, &name);
	if (!v)
		return sgc_err(-EINVAL,
			       "no rank in the environment: set SGC_RANK to this process's rank, 0 for the coordinator (mpirun, torchrun and srun set OMPI_COMM_WORLD_RANK, PMI_RANK, RANK or SLURM_PROCID, which count too)");
	err = sgc_env_uint(name, v, SGC_MAX_WORLD - 1, "a rank (decimal 0..4095)", &x);
	if (err)
		return err;
	c->rank = (int)x;

	v = env_first(size_vars, &name);
	if (!v)
		return sgc_err(-EINVAL,
			       "no world size in the environment: set SGC_WORLD_SIZE to the number of ranks including the coordinator (mpirun, torchrun and srun set OMPI_COMM_WORLD_SIZE, PMI_SIZE, WORLD_SIZE or SLURM_NTASKS, which count too)");
	err = sgc_env_uint(name, v, SGC_MAX_WORLD, "a world size (decimal 1..4096)", &x);
	if (err)
		return err;
	if (x < 1)
		return sgc_err(-EINVAL, "%s=\"%s\": the world size must be 1..%d", name, v,
			       SGC_MAX_WORLD);
	c->world_size = (int)x;

	err = env_coordinator(&c->coordinator, &name);
	if (err)
		return err;
	err = sgc_resolve_addr(c->coordinator, &tmp);
	return err ? err_prefix(err, name) : 0;
}

/*
 * SGC_ENV_NO_JOB: the caller (sgc_init_mpi) knows rank and world size, and
 * picks a coordinator itself unless the user named one: only
 * SGC_COORDINATOR and SGC_COORDINATOR_FILE count, not the addresses
 * derived from torchrun's or Slurm's variables, which describe another
 * launcher's idea of rank 0.
 */
static int env_job_given(const struct sgc_config *cfg, struct sgc_config *c)
{
	struct sockaddr_in tmp;
	const char *name;
	int err;

	c->rank = cfg->rank;
	c->world_size = cfg->world_size;
	if (!env_get("SGC_COORDINATOR") && !env_get("SGC_COORDINATOR_FILE"))
		return 0;
	err = env_coordinator(&c->coordinator, &name);
	if (err)
		return err;
	err = sgc_resolve_addr(c->coordinator, &tmp);
	return err ? err_prefix(err, name) : 0;
}

int sgc_config_from_env(struct sgc_config *cfg)
{
	return sgc_config_from_env_flags(cfg, 0);
}

int sgc_config_from_env_flags(struct sgc_config *cfg, unsigned flags)
{
	struct sgc_config c = { .sz = sizeof(c) };
	struct sockaddr_in tmp;
	const char *v;
	unsigned long x = 0;	/* -O3 cannot see that sgc_env_uint() sets it on success */
	int err;

	if (!cfg)
		return sgc_err(-EINVAL, "sgc_config_from_env: cfg is NULL");
	/* Below the first version's size (0: never set) the caller's struct
	 * may be smaller than anything we would write: write nothing. */
	if (cfg->sz < OPTS_MIN_SZ(sgc_config))
		return sgc_err(-EINVAL,
			       "sgc_config_from_env: cfg->sz is %zu, less than the %zu bytes of the first struct sgc_config%s: set cfg->sz = sizeof(struct sgc_config) first",
			       cfg->sz, OPTS_MIN_SZ(sgc_config), cfg->sz ? "" : " (not set?)");
	if (flags & ~(unsigned)SGC_ENV_NO_JOB)
		return sgc_err(-EINVAL, "sgc_config_from_env_flags: unknown flags %#x (known: "
			       "SGC_ENV_NO_JOB)", flags & ~(unsigned)SGC_ENV_NO_JOB);

	err = flags & SGC_ENV_NO_JOB ? env_job_given(cfg, &c) : env_job(&c);
	if (err)
		return err;

	c.bind_addr = env_get("SGC_BIND");
	if (c.bind_addr) {
		err = sgc_parse_addr(c.bind_addr, &tmp, 0);
		if (err)
			return err_prefix(err, "SGC_BIND");
	}

	c.ifname = env_get("SGC_IFNAME");

	v = env_get("SGC_ACCEL");
	if (!v || !strcasecmp(v, "auto"))
		c.accel = SGC_ACCEL_AUTO;
	else if (!strcasecmp(v, "ebpf"))
		c.accel = SGC_ACCEL_EBPF;
	else if (!strcasecmp(v, "off"))
		c.accel = SGC_ACCEL_OFF;
	else
		return sgc_err(-EINVAL, "SGC_ACCEL=\"%.64s\" is not one of auto, ebpf, off", v);

	v = env_get("SGC_ALGO");
	if (!v || !strcasecmp(v, "auto"))
		c.algo = SGC_ALGO_AUTO;
	else if (!strcasecmp(v, "star"))
		c.algo = SGC_ALGO_STAR;
	else if (!strcasecmp(v, "shard"))
		c.algo = SGC_ALGO_SHARD;
	else if (!strcasecmp(v, "shard-kernel"))
		c.algo = SGC_ALGO_SHARD_KERNEL;
	else
		return sgc_err(-EINVAL, "SGC_ALGO=\"%.64s\" is not one of auto, star, shard, "
			       "shard-kernel", v);

	v = env_get("SGC_DELIVERY");
	if (!v || !strcasecmp(v, "ringbuf"))
		c.delivery = SGC_DELIVER_RINGBUF;
	else if (!strcasecmp(v, "socket"))
		c.delivery = SGC_DELIVER_SOCKET;
	else
		return sgc_err(-EINVAL, "SGC_DELIVERY=\"%.64s\" is not one of ringbuf, socket", v);

	v = env_get("SGC_WAITMODE");
	if (!v || !strcasecmp(v, "block"))
		c.waitmode = SGC_WAITMODE_BLOCK;
	else if (!strcasecmp(v, "busypoll"))
		c.waitmode = SGC_WAITMODE_BUSYPOLL;
	else
		return sgc_err(-EINVAL, "SGC_WAITMODE=\"%.64s\" is not one of block, busypoll", v);

	err = env_flag("SGC_KEEP_RESPONSES", SGC_CFG_KEEP_RESPONSES, false, &c.flags);
	if (!err)
		err = env_kernel_fanout(&c.flags);
	if (err)
		return err;

	c.custom_bpf = env_get("SGC_CUSTOM_BPF");

	{
		/* The struct holds a pointer: the bytes live here, per thread. */
		static _Thread_local uint8_t env_key_buf[SGC_KEY_BYTES];
		bool set;

		err = env_key(env_key_buf, &set);
		if (err)
			return err;
		c.key = set ? env_key_buf : NULL;
	}

	v = env_get("SGC_TIMEOUT_MS");
	if (v) {
		err = sgc_env_uint("SGC_TIMEOUT_MS", v, SGC_TIMEOUT_MAX_MS,
			       "a timeout in milliseconds (decimal 0..3600000, 0 = default)", &x);
		if (err)
			return err;
		c.timeout_ms = (unsigned)x;
	}

	/*
	 * A caller built against an older, smaller struct sgc_config says so
	 * in cfg->sz: write no more than that.  A bigger sz (a newer caller)
	 * gets the fields this library knows, and sz says how far they go.
	 */
	c.sz = cfg->sz < sizeof(c) ? cfg->sz : sizeof(c);
	sgc_copy_sized(cfg, c.sz, &c, sizeof(c));
	return 0;
}

/* ---- settings only the environment has ---- */

/* Out of range is a warning, not an error: the default still works. */
static unsigned env_rto_us(void)
{
	const char *s = env_get("SGC_RTO_US");
	unsigned long v;
	char *end;

	if (!s)
		return SGC_DEFAULT_RTO_US;
	v = strtoul(s, &end, 10);
	if (*end || v < SGC_RTO_US_MIN || v > SGC_RTO_US_MAX) {
		pr_warn("ignoring SGC_RTO_US=%s: expected microseconds between %u and %u\n", s,
			SGC_RTO_US_MIN, SGC_RTO_US_MAX);
		return SGC_DEFAULT_RTO_US;
	}
	return (unsigned)v;
}

/*
 * eBPF fan-out: how many CPUs share the clones of one long fan-out (1 =
 * all from the calling thread); by default the CPUs this process may run
 * on, at most SGC_FANOUT_CPUS_DEFAULT.
 */
static int env_fanout_cpus(unsigned *out)
{
	static const char what[] =
		"a CPU count (decimal 1..64; 1 sends every fan-out from the calling thread)";
	const char *v = env_get("SGC_FANOUT_CPUS");
	unsigned long x = 0;
	cpu_set_t set;
	long n;
	int err;

	if (v) {
		err = sgc_env_uint("SGC_FANOUT_CPUS", v, SGC_FANOUT_CPUS_MAX, what, &x);
		if (!err && x < 1)
			err = sgc_err(-EINVAL, "SGC_FANOUT_CPUS=\"%.64s\" is not %s", v, what);
		if (err)
			return err;
		*out = (unsigned)x;
		return 0;
	}
	n = sched_getaffinity(0, sizeof(set), &set) ? 1 : CPU_COUNT(&set);
	*out = n < 1 ? 1 : n > SGC_FANOUT_CPUS_DEFAULT ? SGC_FANOUT_CPUS_DEFAULT : (unsigned)n;
	return 0;
}

int sgc_cfg_env(struct sgc_cfg *out)
{
	const char *v;

	out->rto_us = env_rto_us();
	/* SGC_GSO=0 turns coalescing off: one send and one receive per datagram. */
	v = env_get("SGC_GSO");
	out->gso = !v || strcmp(v, "0");
	return env_fanout_cpus(&out->fanout_cpus);
}

/* ---- validation ---- */

/*
 * The source address the kernel would use towards the coordinator:
 * connect() on a UDP socket only selects a route, nothing is sent.
 */
static int route_source(const struct sockaddr_in *coord, struct sockaddr_in *src)
{
	socklen_t alen = sizeof(*src);
	char cs[32], ip[INET_ADDRSTRLEN];
	int fd, err = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		return sgc_err(err, "cannot create a UDP socket to find the route to the coordinator: %s",
			       strerrordesc_np(-err));
	}
	if (connect(fd, (const struct sockaddr *)coord, sizeof(*coord)) < 0) {
		err = -errno;
		inet_ntop(AF_INET, &coord->sin_addr, ip, sizeof(ip));
		sgc_err(err,
			"cannot reach the coordinator %s from this host (%s): check SGC_COORDINATOR and `ip route get %s`, or set SGC_BIND",
			sgc_addr_str(coord, cs, sizeof(cs)), strerrordesc_np(-err),
			ip);
		goto out;
	}
	if (getsockname(fd, (struct sockaddr *)src, &alen) < 0) {
		err = -errno;
		sgc_err(err, "cannot read the source address towards the coordinator %s: %s",
			sgc_addr_str(coord, cs, sizeof(cs)), strerrordesc_np(-err));
		goto out;
	}
	src->sin_port = 0;
out:
	close(fd);
	return err;
}

/* The interface holding @addr, or "" if none does (not an error here:
 * binding will say so, and only the eBPF path needs the interface). */
void sgc_iface_of(const struct in_addr *addr, char *name, size_t len)
{
	struct ifaddrs *ifa, *i;

	name[0] = '\0';
	if (getifaddrs(&ifa) < 0) {
		pr_debug("getifaddrs: %s", strerrordesc_np(errno));
		return;
	}
	for (i = ifa; i; i = i->ifa_next) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)i->ifa_addr;

		if (!sin || sin->sin_family != AF_INET || !i->ifa_name)
			continue;
		if (sin->sin_addr.s_addr == addr->s_addr) {
			snprintf(name, len, "%s", i->ifa_name);
			break;
		}
	}
	freeifaddrs(ifa);
}

int sgc_cfg_validate(const struct sgc_config *in, struct sgc_cfg *out)
{
	struct sgc_config c;
	char cs[32];
	int err;

	if (!in)
		return sgc_err(-EINVAL, "config is NULL: pass a struct sgc_config with sz = sizeof(struct sgc_config)");
	if (!out)
		return sgc_err(-EINVAL, "internal: no output for the validated configuration");
	if (!OPTS_VALID(in, sgc_config))
		return -EINVAL;

	/* Fields a caller's older (smaller) struct lacks read as zero. */
	c = (struct sgc_config){
		.sz = sizeof(c),
		.rank = OPTS_GET(in, rank, 0),
		.world_size = OPTS_GET(in, world_size, 0),
		.coordinator = OPTS_GET(in, coordinator, NULL),
		.bind_addr = OPTS_GET(in, bind_addr, NULL),
		.ifname = OPTS_GET(in, ifname, NULL),
		.accel = OPTS_GET(in, accel, SGC_ACCEL_AUTO),
		.timeout_ms = OPTS_GET(in, timeout_ms, 0),
		.delivery = OPTS_GET(in, delivery, SGC_DELIVER_RINGBUF),
		.waitmode = OPTS_GET(in, waitmode, SGC_WAITMODE_BLOCK),
		.flags = OPTS_GET(in, flags, 0),
		.custom_bpf = OPTS_GET(in, custom_bpf, NULL),
		.key = OPTS_GET(in, key, NULL),
		.algo = OPTS_GET(in, algo, SGC_ALGO_AUTO),
	};

	memset(out, 0, sizeof(*out));

	if (c.world_size < 1 || c.world_size > SGC_MAX_WORLD)
		return sgc_err(-EINVAL, "world size %d is out of range: it must be 1..%d",
			       c.world_size, SGC_MAX_WORLD);
	if (c.rank < 0 || c.rank >= c.world_size)
		return sgc_err(-EINVAL, "rank %d is out of range for world size %d: it must be 0..%d",
			       c.rank, c.world_size, c.world_size - 1);
	out->rank = c.rank;
	out->world = c.world_size;

	if (!c.coordinator)
		return sgc_err(-EINVAL,
			       "no coordinator address: set cfg.coordinator (or SGC_COORDINATOR) to rank 0's \"a.b.c.d:port\" or \"hostname:port\"");
	err = sgc_resolve_addr(c.coordinator, &out->coord);
	if (err)
		return err_prefix(err, "coordinator");
	if (out->coord.sin_addr.s_addr == htonl(INADDR_ANY))
		return sgc_err(-EINVAL,
			       "coordinator \"%.64s\": 0.0.0.0 cannot be sent to; give rank 0's real IPv4 address",
			       c.coordinator);
	sgc_addr_str(&out->coord, cs, sizeof(cs));
	/* Rank 0 binds what the name resolves to here.  Debian's /etc/hosts
	 * maps a host's own name to 127.0.1.1: then only ranks on this host
	 * could reach it, and the others would time out. */
	if (c.rank == 0 && c.world_size > 1 && (ntohl(out->coord.sin_addr.s_addr) >> 24) == 127 &&
	    strspn(c.coordinator, "0123456789.") != strcspn(c.coordinator, ":") &&
	    strncmp(c.coordinator, "localhost:", 10))
		pr_warn("the coordinator \"%.64s\" resolves to %s on this host, a loopback address "
			"that ranks on other hosts cannot reach: if there are any, give rank 0's "
			"IPv4 address instead\n", c.coordinator, cs);

	if (c.bind_addr) {
		err = sgc_parse_addr(c.bind_addr, &out->bind, 0);
		if (err)
			return err_prefix(err, "bind address");
		if (c.rank == 0) {
			/* Workers send to the coordinator's port: listen there. */
			if (!out->bind.sin_port)
				out->bind.sin_port = out->coord.sin_port;
			else if (out->bind.sin_port != out->coord.sin_port)
				return sgc_err(-EINVAL,
					       "rank 0 binds port %u but the coordinator address %s says %u: the ports must match",
					       ntohs(out->bind.sin_port), cs,
					       ntohs(out->coord.sin_port));
		}
	} else if (c.rank == 0) {
		out->bind = out->coord;
	} else {
		err = route_source(&out->coord, &out->bind);
		if (err)
			return err;
	}

	if (c.ifname) {
		size_t len = strlen(c.ifname);

		if (len == 0 || len >= IF_NAMESIZE)
			return sgc_err(-ENODEV,
				       "interface name \"%.64s\" is not a valid name (1..%d characters): set SGC_IFNAME to one shown by `ip link`",
				       c.ifname, IF_NAMESIZE - 1);
		if (!if_nametoindex(c.ifname))
			return sgc_err(-ENODEV,
				       "interface \"%s\" does not exist on this host: set SGC_IFNAME to one shown by `ip link`, or leave it unset",
				       c.ifname);
		memcpy(out->ifname, c.ifname, len + 1);
	} else if (c.rank == 0) {
		sgc_iface_of(&out->coord.sin_addr, out->ifname, sizeof(out->ifname));
		if (!out->ifname[0])
			pr_debug("no local interface holds the coordinator address %s", cs);
	}

	switch (c.accel) {
	case SGC_ACCEL_AUTO:
	case SGC_ACCEL_EBPF:
	case SGC_ACCEL_OFF:
		out->accel = c.accel;
		break;
	default:
		return sgc_err(-EINVAL,
			       "accel %d is not SGC_ACCEL_AUTO, SGC_ACCEL_EBPF or SGC_ACCEL_OFF",
			       (int)c.accel);
	}

	out->timeout_ms = c.timeout_ms ? c.timeout_ms : SGC_DEFAULT_TIMEOUT_MS;

	if ((unsigned)c.algo > SGC_ALGO_SHARD_KERNEL)
		return sgc_err(-EINVAL, "algo %d is not SGC_ALGO_AUTO, SGC_ALGO_STAR, SGC_ALGO_SHARD "
			       "or SGC_ALGO_SHARD_KERNEL", (int)c.algo);
	out->algo = c.algo;

	if ((unsigned)c.delivery > SGC_DELIVER_SOCKET)
		return sgc_err(-EINVAL, "delivery %d is not SGC_DELIVER_RINGBUF or SGC_DELIVER_SOCKET",
			       (int)c.delivery);
	if ((unsigned)c.waitmode > SGC_WAITMODE_BUSYPOLL)
		return sgc_err(-EINVAL, "waitmode %d is not SGC_WAITMODE_BLOCK or SGC_WAITMODE_BUSYPOLL",
			       (int)c.waitmode);
	if (c.flags & ~(unsigned)(SGC_CFG_KEEP_RESPONSES | SGC_CFG_NO_KERNEL_FANOUT))
		return sgc_err(-EINVAL, "unknown bits %#x in cfg.flags (known: SGC_CFG_KEEP_RESPONSES, "
			       "SGC_CFG_NO_KERNEL_FANOUT)", c.flags);
	out->delivery = c.delivery;
	out->waitmode = c.waitmode;
	out->flags = c.flags;
	if (c.custom_bpf) {
		if (strlen(c.custom_bpf) >= sizeof(out->custom_bpf))
			return sgc_err(-ENAMETOOLONG, "custom_bpf path is longer than %zu bytes",
				       sizeof(out->custom_bpf) - 1);
		if (c.rank == 0 && access(c.custom_bpf, R_OK))
			return sgc_err(-ENOENT, "custom_bpf \"%.200s\" cannot be read: give the path of a BPF "
				       "object built against <sgcoll/agg.bpf.h> (clang -target bpf)",
				       c.custom_bpf);
		snprintf(out->custom_bpf, sizeof(out->custom_bpf), "%s", c.custom_bpf);
	}
	if (c.key) {
		static const uint8_t zero[SGC_KEY_BYTES];

		if (!memcmp(c.key, zero, sizeof(zero)))
			return sgc_err(-EINVAL, "cfg.key is all zeros, which anyone can guess: use "
				       "16 random bytes, the same on every rank");
		memcpy(out->key, c.key, SGC_KEY_BYTES);
		out->keyed = true;
	}
	return sgc_cfg_env(out);
}
