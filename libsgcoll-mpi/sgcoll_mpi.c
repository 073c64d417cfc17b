/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * sgc_init_mpi(): rank 0 of an MPI communicator picks the coordinator
 * address and MPI_Bcast()s it, so that a job under mpirun needs no
 * SGC_COORDINATOR.
 *
 * No rank may be left waiting for another that has given up, so each step
 * that can fail on some ranks only is followed by agree(): the ranks learn
 * together whether any failed and all return the lowest failing rank's
 * error and message.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sgcoll/mpi.h"

/* "hostname:port" at its longest (253 + 1 + 5), and a NUL. */
#define COORD_LEN 260
/* sgc_last_error() keeps 511 characters. */
#define MSG_LEN 512
/* Past any struct sgc_config: an sz above it was never set. */
#define CFG_SZ_MAX 4096

/* One rank's outcome of a step, as sent to the others. */
struct verdict {
	int err;
	char msg[MSG_LEN];
};

static int fail(struct verdict *v, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct verdict *v, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->msg, sizeof(v->msg), fmt, ap);
	va_end(ap);
	v->err = err;
	return err;
}

/* A libsgcoll call failed: keep its code and message. */
static int fail_sgc(struct verdict *v, int err)
{
	return fail(v, err, "%s", sgc_last_error());
}

/*
 * An MPI call failed.  With MPI's default handler (MPI_ERRORS_ARE_FATAL)
 * the job is gone before this runs; with MPI_ERRORS_RETURN the ranks may
 * no longer agree on anything, so this rank reports for itself.
 */
static int mpi_err(int rc, const char *call)
{
	char why[MPI_MAX_ERROR_STRING] = "";
	char msg[MSG_LEN];
	int len = 0;

	MPI_Error_string(rc, why, &len);
	snprintf(msg, sizeof(msg), "sgc_init_mpi: %s failed (%s): the MPI job is broken; "
		 "check the MPI launch first", call, why);
	return sgc_set_last_error(-EIO, msg);
}

/*
 * Whether any rank's @v holds a failure; if so, every rank returns the
 * lowest failing rank's code with its message.
 */
static int agree(MPI_Comm mc, int rank, int size, struct verdict *v)
{
	int mine = v->err ? rank : size, first, rc;
	char msg[MSG_LEN + 64];

	rc = MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, mc);
	if (rc != MPI_SUCCESS)
		return mpi_err(rc, "MPI_Allreduce");
	if (first == size)
		return 0;
	rc = MPI_Bcast(v, sizeof(*v), MPI_BYTE, first, mc);
	if (rc != MPI_SUCCESS)
		return mpi_err(rc, "MPI_Bcast");
	v->msg[sizeof(v->msg) - 1] = '\0';
	snprintf(msg, sizeof(msg), "sgc_init_mpi: rank %d failed: %s", first, v->msg);
	return sgc_set_last_error(v->err ? v->err : -EIO, msg);
}

/*
 * This rank's settings: the caller's @cfg (a copy at least as big as this
 * header's struct, so the fields set here exist), or the environment's.
 */
static struct sgc_config *local_config(const struct sgc_config *cfg, int rank, int size,
				       struct verdict *v)
{
	size_t sz = sizeof(struct sgc_config);
	struct sgc_config *c;
	int err;

	if (cfg) {
		/* The first struct sgc_config ends before delivery. */
		if (cfg->sz < offsetof(struct sgc_config, delivery) || cfg->sz > CFG_SZ_MAX) {
			fail(v, -EINVAL, "cfg->sz is %zu, not the size of a struct sgc_config%s: set "
			     "cfg->sz = sizeof(struct sgc_config), or pass NULL to read the "
			     "environment", cfg->sz, cfg->sz ? "" : " (not set?)");
			return NULL;
		}
		if (cfg->sz > sz)
			sz = cfg->sz;
	}
	c = calloc(1, sz);
	if (!c) {
		fail(v, -ENOMEM, "out of memory for a struct sgc_config");
		return NULL;
	}
	if (cfg)
		memcpy(c, cfg, cfg->sz);
	c->sz = sz;
	c->rank = rank;
	c->world_size = size;
	if (!cfg) {
		err = sgc_config_from_env_flags(c, SGC_ENV_NO_JOB);
		if (err) {
			fail_sgc(v, err);
			free(c);
			return NULL;
		}
		/* sgc_config_from_env_flags() wrote at most its own struct. */
		c->sz = sz;
	}
	return c;
}

/* Whether every rank of @mc shares one host (and so can reach loopback). */
static int one_host(MPI_Comm mc, int size, int *yes)
{
	MPI_Comm node;
	int n, rc;

	rc = MPI_Comm_split_type(mc, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
	if (rc != MPI_SUCCESS)
		return mpi_err(rc, "MPI_Comm_split_type");
	rc = MPI_Comm_size(node, &n);
	MPI_Comm_free(&node);
	if (rc != MPI_SUCCESS)
		return mpi_err(rc, "MPI_Comm_size");
	*yes = n == size;
	return 0;
}

/* "a.b.c.d" or "a.b.c.d:port" (cfg->bind_addr), strictly. */
static int parse_bind(const char *s, struct in_addr *ip, unsigned *port, struct verdict *v)
{
	char host[INET_ADDRSTRLEN];
	const char *colon = strchr(s, ':');
	size_t len = colon ? (size_t)(colon - s) : strlen(s);
	unsigned long p = 0;
	char *end;

	if (len >= sizeof(host))
		goto bad;
	memcpy(host, s, len);
	host[len] = '\0';
	if (inet_pton(AF_INET, host, ip) != 1)
		goto bad;
	if (colon) {
		if (colon[1] < '1' || colon[1] > '9')
			goto bad;
		p = strtoul(colon + 1, &end, 10);
		if (*end || p > 65535)
			goto bad;
	}
	*port = (unsigned)p;
	return 0;
bad:
	return fail(v, -EINVAL, "bind address \"%.64s\" (SGC_BIND, cfg.bind_addr) is not "
		    "\"a.b.c.d\" or \"a.b.c.d:port\" with port 1..65535", s);
}

/* The first IPv4 address of interface @name. */
static int iface_ipv4(const char *name, struct in_addr *ip, struct verdict *v)
{
	struct ifaddrs *ifa, *i;
	int found = 0, err;

	if (!if_nametoindex(name))
		return fail(v, -ENODEV, "interface \"%.32s\" (SGC_IFNAME, cfg.ifname) does not exist "
			    "on rank 0's host: name one that `ip link` shows there, or leave it "
			    "unset", name);
	if (getifaddrs(&ifa) < 0) {
		err = -errno;
		return fail(v, err, "cannot list the addresses of rank 0's interfaces: %s",
			    strerror(-err));
	}
	for (i = ifa; i && !found; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || strcmp(i->ifa_name, name))
			continue;
		*ip = ((const struct sockaddr_in *)i->ifa_addr)->sin_addr;
		found = 1;
	}
	freeifaddrs(ifa);
	if (!found)
		return fail(v, -EADDRNOTAVAIL, "interface \"%.32s\" (SGC_IFNAME, cfg.ifname) has no "
			    "IPv4 address on rank 0's host: give it one, or name the interface "
			    "the ranks reach rank 0 through", name);
	return 0;
}

/* The host name's first IPv4 address, as libsgcoll resolves a coordinator name. */
static int host_ipv4(struct in_addr *ip, char *host, size_t len, struct verdict *v)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_DGRAM };
	struct addrinfo *res = NULL;
	int rc;

	if (gethostname(host, len) < 0 || !host[0]) {
		snprintf(host, len, "?");
		return fail(v, -EADDRNOTAVAIL, "rank 0's host has no host name: set SGC_IFNAME to "
			    "the interface the ranks reach rank 0 through, or SGC_COORDINATOR");
	}
	host[len - 1] = '\0';
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc || !res) {
		if (res)
			freeaddrinfo(res);
		return fail(v, rc == EAI_AGAIN ? -EAGAIN : -EADDRNOTAVAIL,
			    "rank 0's host name \"%.64s\" does not resolve to an IPv4 address (%s): "
			    "set SGC_IFNAME to the interface the ranks reach rank 0 through, SGC_BIND "
			    "to rank 0's address there, or SGC_COORDINATOR", host,
			    rc ? gai_strerror(rc) : "no address");
	}
	*ip = ((const struct sockaddr_in *)res->ai_addr)->sin_addr;
	freeaddrinfo(res);
	return 0;
}

/*
 * Bind UDP @bind_ip:*port once, so that a taken port is reported now, to
 * every rank, rather than when the workers time out; *port 0 takes the
 * port the kernel gives.  The socket is closed again for sgc_init() to
 * bind: in between another process could take an ephemeral port, which
 * sgc_init() then reports as -EADDRINUSE to every rank through agree().
 */
static int probe_port(struct in_addr bind_ip, unsigned *port, int from_env, struct verdict *v)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr = bind_ip,
				 .sin_port = htons((uint16_t)*port) };
	socklen_t alen = sizeof(a);
	char ip[INET_ADDRSTRLEN];
	int fd, err = 0;

	inet_ntop(AF_INET, &bind_ip, ip, sizeof(ip));
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		return fail(v, err, "rank 0 cannot create a UDP socket: %s", strerror(-err));
	}
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		err = -errno;
		if (err == -EADDRINUSE)
			fail(v, err, "rank 0 cannot listen on UDP %s:%u: another process holds the "
			     "port (`ss -uanp 'sport = :%u'` names it): %s", ip, *port, *port,
			     from_env ? "set SGC_PORT to a free port, or unset it to let the kernel "
					"pick one" :
					"give a free port in the bind address, or none to let "
					"the kernel pick one");
		else
			fail(v, err, "rank 0 cannot bind UDP %s:%u (%s): give an address of rank 0's "
			     "host in SGC_BIND, or unset it", ip, *port, strerror(-err));
		goto out;
	}
	if (getsockname(fd, (struct sockaddr *)&a, &alen) < 0) {
		err = -errno;
		fail(v, err, "rank 0 cannot read the port it bound: %s", strerror(-err));
		goto out;
	}
	*port = ntohs(a.sin_port);
out:
	close(fd);
	return err;
}

/* Rank 0: the "ipv4:port" (or the user's "host:port") the workers are sent. */
static int choose_coordinator(const struct sgc_config *c, int same_host, char *coord,
			      struct verdict *v)
{
	struct in_addr ip = { 0 }, bind_ip = { htonl(INADDR_ANY) };
	char host[256] = "", ips[INET_ADDRSTRLEN];
	const char *from = NULL, *env;
	unsigned port = 0;
	int from_env = 0, err;
	unsigned long p;
	char *end;

	if (c->coordinator) {
		if (strlen(c->coordinator) >= COORD_LEN)
			return fail(v, -EINVAL, "coordinator \"%.64s...\" is longer than a "
				    "\"hostname:port\" can be", c->coordinator);
		snprintf(coord, COORD_LEN, "%s", c->coordinator);
		return 0;
	}

	if (c->bind_addr) {
		err = parse_bind(c->bind_addr, &bind_ip, &port, v);
		if (err)
			return err;
		if (bind_ip.s_addr != htonl(INADDR_ANY)) {
			ip = bind_ip;
			from = "the bind address (SGC_BIND)";
		}
	}
	if (!from && c->ifname) {
		err = iface_ipv4(c->ifname, &ip, v);
		if (err)
			return err;
		from = "the interface (SGC_IFNAME)";
	}
	if (!from) {
		err = host_ipv4(&ip, host, sizeof(host), v);
		if (err)
			return err;
		from = "the host name";
	}
	inet_ntop(AF_INET, &ip, ips, sizeof(ips));
	/* Debian's /etc/hosts maps a host's own name to 127.0.1.1: fine for
	 * one host, unreachable from any other. */
	if ((ntohl(ip.s_addr) >> 24) == 127 && !same_host)
		return fail(v, -EADDRNOTAVAIL, "rank 0's address from %s%s%s%s is %s, a loopback "
			    "address that the ranks on other hosts cannot reach: set SGC_IFNAME to "
			    "the interface they reach rank 0 through, SGC_BIND to rank 0's address "
			    "there, or SGC_COORDINATOR", from, host[0] ? " \"" : "", host,
			    host[0] ? "\"" : "", ips);

	env = getenv("SGC_PORT");
	if (!port && env && *env) {
		if (env[0] < '1' || env[0] > '9')
			goto bad_port;
		p = strtoul(env, &end, 10);
		if (*end || p > 65535)
			goto bad_port;
		port = (unsigned)p;
		from_env = 1;
	}
	if (c->bind_addr == NULL)
		bind_ip = ip;
	err = probe_port(bind_ip, &port, from_env, v);
	if (err)
		return err;
	snprintf(coord, COORD_LEN, "%s:%u", ips, port);
	return 0;
bad_port:
	return fail(v, -EINVAL, "SGC_PORT=\"%.64s\" is not a UDP port (decimal 1..65535): set "
		    "rank 0's port, or unset it to let the kernel pick one", env);
}

int sgc_init_mpi(MPI_Comm mc, const struct sgc_config *cfg, sgc_comm **out)
{
	struct verdict v = { 0 };
	char coord[COORD_LEN] = "";
	struct sgc_config *c;
	int rank, size, inter, same_host = 0, rc, err;

	if (!out)
		return sgc_set_last_error(-EINVAL, "sgc_init_mpi: out is NULL");
	*out = NULL;
	MPI_Initialized(&rc);
	if (!rc)
		return sgc_set_last_error(-EINVAL, "sgc_init_mpi: MPI is not initialized: call "
					  "MPI_Init() first");
	if (mc == MPI_COMM_NULL)
		return sgc_set_last_error(-EINVAL, "sgc_init_mpi: the communicator is "
					  "MPI_COMM_NULL: call it on the ranks of a real one");
	rc = MPI_Comm_test_inter(mc, &inter);
	if (rc != MPI_SUCCESS)
		return mpi_err(rc, "MPI_Comm_test_inter");
	if (inter)
		return sgc_set_last_error(-EINVAL, "sgc_init_mpi: an intercommunicator has no "
					  "single rank 0: pass an intracommunicator "
					  "(MPI_Intercomm_merge() makes one)");
	rc = MPI_Comm_rank(mc, &rank);
	if (rc == MPI_SUCCESS)
		rc = MPI_Comm_size(mc, &size);
	if (rc != MPI_SUCCESS)
		return mpi_err(rc, "MPI_Comm_rank/size");

	c = local_config(cfg, rank, size, &v);
	err = one_host(mc, size, &same_host);
	if (err) {
		free(c);
		return err;
	}
	if (rank == 0 && c)
		choose_coordinator(c, same_host, coord, &v);
	err = agree(mc, rank, size, &v);
	if (err)
		goto out;

	rc = MPI_Bcast(coord, sizeof(coord), MPI_CHAR, 0, mc);
	if (rc != MPI_SUCCESS) {
		err = mpi_err(rc, "MPI_Bcast");
		goto out;
	}
	coord[sizeof(coord) - 1] = '\0';
	c->coordinator = coord;
	err = sgc_init(c, out);
	if (err)
		fail_sgc(&v, err);
	err = agree(mc, rank, size, &v);
	if (err && *out) {
		/* Another rank failed: this one's job cannot work either.
		 * Leaving it may record errors of its own; the agreed one is
		 * what the caller gets. */
		snprintf(v.msg, sizeof(v.msg), "%s", sgc_last_error());
		sgc_finalize(*out);
		*out = NULL;
		sgc_set_last_error(err, v.msg);
	}
out:
	free(c);
	return err;
}
