// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The coordinator's eBPF fast path: loading, attaching and talking to
 * scatter_prog, gather_prog and notify_prog (libsgcoll/bpf/sgc.bpf.c,
 * embedded as a skeleton, so no object file is needed at run time).
 *
 * tcx attachments are links, which vanish with the process, even on
 * SIGKILL; gather_prog goes into a slot of the interface's XDP dispatcher,
 * shared with other coordinators (xdp_dispatch.c).
 * The hot path makes no map-update syscalls: per-request parameters ride
 * in the datagrams, the window lives in the mmap'ed .bss, and results come
 * back through the ring buffer or the socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "comm.h"
#include "io.h"
#include "mac.h"
#include "path_bpf.h"
#include "sgc_common.h"
#include "sgc.skel.h"
#include "xdp_dispatch.h"

#ifndef BPF_TCX_INGRESS
#define BPF_TCX_INGRESS 46
#define BPF_TCX_EGRESS 47
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

#define FRAME_HDR (ETH_HLEN + sizeof(struct iphdr) + sizeof(struct udphdr))
#define FRAME_MAX (FRAME_HDR + SGC_HDR_SIZE + SGC_MAX_BODY + SGC_MAC_TAG_SIZE)
#define FRAME(b) ((uint8_t *)(b)->frame_buf + 2)

struct sgc_bpf {
	struct sgc *skel;
	struct bpf_object *custom;	/* the application's SGC_CUSTOM program */
	struct bpf_program *custom_xdp;	/* its reduction, in custom */
	struct xdp_slot xdp;		/* gather_prog's slot in the interface's dispatcher */
	int tc_in, tc_out;	/* tcx link fds (libbpf 1.1 has no tcx API) */
	struct ring_buffer *rb;
	int ifindex;
	uint16_t cfg_flags;
	uint32_t kernel_colls;	/* cfg.kernel_colls: see kernel_colls() */
	bool hooks_later;	/* the hooks wait for the first query (bpf_path_engage()) */
	uint32_t result_token;	/* cfg.result_token: see kernel_result_authentic() */
	uint8_t frame_hdr[FRAME_HDR];
	struct sgc_bpf_slot slot;	/* bpf_path_slot()'s copy: no allocation per look */
	/* The crafted frame starts 2 bytes into an 8-aligned buffer so that
	 * its IP and UDP headers are aligned (NET_IP_ALIGN). */
	uint64_t frame_buf[(FRAME_MAX + 2) / 8 + 1];
	uint8_t out[FRAME_MAX + 64];
};

static const char *const stat_names[SGC_ST_MAX] = {
	[SGC_ST_PASS_FOREIGN] = "pass_foreign",
	[SGC_ST_PASS_CONTROL] = "pass_control",
	[SGC_ST_PASS_USER] = "pass_user",
	[SGC_ST_DROP_MALFORMED] = "drop_malformed",
	[SGC_ST_DROP_JOB] = "drop_job",
	[SGC_ST_DROP_RANK] = "drop_rank",
	[SGC_ST_DROP_SOURCE] = "drop_source",
	[SGC_ST_DROP_FIELD] = "drop_field",
	[SGC_ST_DROP_WINDOW] = "drop_window",
	[SGC_ST_DROP_STALE] = "drop_stale",
	[SGC_ST_DROP_LATE] = "drop_late",
	[SGC_ST_DROP_DUP] = "drop_dup",
	[SGC_ST_DROP_MISMATCH] = "drop_mismatch",
	[SGC_ST_REDUCED] = "reduced",
	[SGC_ST_COMPLETED] = "completed",
	[SGC_ST_RINGBUF_FULL] = "ringbuf_full",
	[SGC_ST_FANOUT_CLONES] = "fanout_clones",
	[SGC_ST_FANOUT_ERR] = "fanout_err",
	[SGC_ST_DELIVERED] = "delivered",
	[SGC_ST_DROP_IP] = "drop_ip",
	[SGC_ST_DROP_BUSY] = "drop_busy",
	[SGC_ST_DROP_MAC] = "drop_mac",
	[SGC_ST_FANOUT_PACED] = "fanout_paced",
	[SGC_ST_PASS_MISMATCH] = "pass_mismatch",
};

const char *sgc_bpf_stat_name(int i)
{
	return i >= 0 && i < SGC_ST_MAX && stat_names[i] ? stat_names[i] : NULL;
}

static bool has_cap(int cap)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2] = {};

	if (syscall(__NR_capget, &h, d))
		return geteuid() == 0;
	return d[cap / 32].effective & (1u << (cap % 32));
}

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[512];

	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	pr_debug("%s", buf);
	return 0;
}

/* The next-hop MAC of @ip on @ifname, from the neighbour table. */
static int neigh_mac(const char *ifname, uint32_t ip, uint8_t mac[6])
{
	struct arpreq req = {};
	struct sockaddr_in *sin = (struct sockaddr_in *)&req.arp_pa;
	int fd, err = -ENOENT;

	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = ip;
	snprintf(req.arp_dev, sizeof(req.arp_dev), "%s", ifname);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, SIOCGARP, &req) == 0 && (req.arp_flags & ATF_COM)) {
		memcpy(mac, req.arp_ha.sa_data, 6);
		err = 0;
	}
	close(fd);
	return err;
}

/*
 * Entries usually exist: a worker's ARP request for the coordinator leaves
 * one behind.  A slow start-up can outlive it (the neighbour GC drops stale
 * entries past gc_thresh1), so the missing are resolved again: a zero-length
 * datagram to the discard port of each such host makes the kernel ask by
 * ARP (the host drops it; no rank sees it), then the table is polled for
 * at most NEIGH_WAIT_MS.
 */
#define NEIGH_WAIT_MS	3000
#define NEIGH_POLL_MS	10
#define DISCARD_PORT	9

static int neigh_resolve(const char *ifname, const uint32_t *ips, int n, uint8_t (*macs)[6],
			 int *unresolved)
{
	int fd, i, left = n, t;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname));
	for (i = 0; i < n; i++) {
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(DISCARD_PORT),
					  .sin_addr.s_addr = ips[i] };

		sendto(fd, "", 0, MSG_DONTWAIT, (struct sockaddr *)&sa, sizeof(sa));
	}
	close(fd);
	for (t = 0; left && t < NEIGH_WAIT_MS; t += NEIGH_POLL_MS) {
		usleep(NEIGH_POLL_MS * 1000);
		for (left = 0, i = 0; i < n; i++)
			if (neigh_mac(ifname, ips[i], macs[i]))
				unresolved[left++] = i;
	}
	return left;
}

/*
 * notify_prog's clones per CPU at once (sgc.bpf.c): an eighth of the
 * per-CPU backlog, net.core.netdev_max_backlog, which a clone may fill
 * twice over on its way (two veths on a bridge) while other traffic uses
 * it too.  At the default of 1000 that is 125: 64 collectives in flight at
 * 33 ranks clone with no backlog drop (bursts of 512 dropped thousands),
 * and a single result to 64 workers goes out whole.
 */
#define FAN_BURST_SHARE		8
#define FAN_BURST_MIN		16

static __u32 fan_burst(void)
{
	unsigned long burst = io_netdev_backlog() / FAN_BURST_SHARE;

	if (burst < FAN_BURST_MIN)
		burst = FAN_BURST_MIN;
	return burst > UINT16_MAX ? UINT16_MAX : (__u32)burst;
}

/*
 * Which collectives the kernel reduces.  SGC_ACCEL=ebpf: all of them.
 * SGC_ACCEL=auto: scatter-gather only (and allreduce and reduce when a
 * custom reduction is loaded, which only the kernel runs), because on
 * this machine the eBPF path's allreduce never had the user-space path's
 * throughput, in either topology, 8 to 128 workers (bench/results/accel*):
 * half of it with 16 in flight (F=8, 363 x int32: 13,600 against
 * 26,300/s), a fifth at 64 KiB, where the user-space path has GRO; p50
 * equal for one datagram up to 32 workers, 10-15% lower at 128, 3-5x
 * higher at 64 KiB.  The rest go up to user space through gather_prog
 * and are reduced and sent as with SGC_ACCEL=off.
 */
static uint32_t kernel_colls(const struct sgc_comm *c)
{
	uint32_t k = 1u << SGC_COLL_QUERY;

	if (c->cfg.flags & SGC_CFG_KEEP_RESPONSES)
		return 0;	/* every contribution goes up */
	if (c->cfg.accel == SGC_ACCEL_EBPF)
		return SGC_BPF_KERNEL_ALL;
	if (c->cfg.custom_bpf[0])
		k |= 1u << SGC_COLL_ALLREDUCE | 1u << SGC_COLL_REDUCE;
	return k;
}

static int iface_mac(const char *ifname, uint8_t mac[6])
{
	struct ifreq ifr = {};
	int fd, err = 0;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, SIOCGIFHWADDR, &ifr))
		err = -errno;
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	close(fd);
	return err;
}

static int fill_reduce_progs(struct sgc_comm *c, struct sgc_bpf *b)
{
	int map_fd = bpf_map__fd(b->skel->maps.reduce_progs);
	struct bpf_program *prog;
	int dt, op, n = 0;

	for (dt = 0; dt < SGC_BPF_NDTYPES; dt++) {
		for (op = 0; op < SGC_BPF_NOPS; op++) {
			char name[64];
			__u32 key = (__u32)SGC_BPF_REDUCE_INDEX(dt, op);
			int fd;

			snprintf(name, sizeof(name), "reduce_%s_%s", sgc_dtype_name(dt),
				 sgc_op_name(op));
			prog = bpf_object__find_program_by_name(b->skel->obj, name);
			if (!prog)
				return sgc_err(-ENOENT, "the eBPF object lacks %s", name);
			fd = bpf_program__fd(prog);
			if (bpf_map_update_elem(map_fd, &key, &fd, BPF_ANY))
				return sgc_err(-errno, "cannot install %s: %s", name, strerror(errno));
			n++;
		}
	}
	pr_debug("installed %d reduction programs\n", n);
	return 0;
}

static int fill_ranks(struct sgc_comm *c, struct sgc_bpf *b)
{
	int fd = bpf_map__fd(b->skel->maps.ranks);
	struct sgc_bpf_rank *e = calloc((size_t)c->world, sizeof(*e));
	uint32_t *ips = calloc((size_t)c->world, sizeof(*ips));
	uint8_t (*macs)[6] = calloc((size_t)c->world, sizeof(*macs));
	int *who = calloc((size_t)c->world, sizeof(*who));
	int *left = calloc((size_t)c->world, sizeof(*left));
	int r, i, n = 0, err = 0;
	char a[32];

	if (!e || !ips || !macs || !who || !left) {
		err = -ENOMEM;
		goto out;
	}
	for (r = 0; r < c->world; r++) {
		e[r].ip = c->peers[r].addr.sin_addr.s_addr;
		e[r].port = c->peers[r].addr.sin_port;
		if (r == 0) {
			memcpy(e[r].mac, b->skel->rodata->cfg.coord_mac, 6);
		} else if (e[r].ip == c->peers[0].addr.sin_addr.s_addr) {
			/* No ARP would answer for our own address. */
			err = sgc_err(-EHOSTUNREACH, "rank %d (%s) is on the coordinator's own host: its "
				      "datagrams never cross %s, where the eBPF path is; the path "
				      "needs every worker on another host", r,
				      sgc_addr_str(&c->peers[r].addr, a, sizeof(a)), c->cfg.ifname);
			goto out;
		} else if (neigh_mac(c->cfg.ifname, e[r].ip, e[r].mac)) {
			who[n] = r;
			ips[n++] = e[r].ip;
		}
	}
	if (n) {
		pr_debug("%d workers have no neighbour entry on %s yet: resolving\n", n,
			 c->cfg.ifname);
		err = neigh_resolve(c->cfg.ifname, ips, n, macs, left);
		if (err > 0) {
			r = who[left[0]];
			err = sgc_err(-EHOSTUNREACH, "no neighbour entry on %s for rank %d (%s) and %d "
				      "more after %d ms of ARP: the eBPF path needs every worker on the "
				      "coordinator's link", c->cfg.ifname, r,
				      sgc_addr_str(&c->peers[r].addr, a, sizeof(a)), err - 1,
				      NEIGH_WAIT_MS);
			goto out;
		}
		if (err < 0)
			goto out;
		for (i = 0; i < n; i++)
			memcpy(e[who[i]].mac, macs[i], 6);
	}
	for (r = 0; r < c->world; r++) {
		__u32 key = (__u32)r;

		if (bpf_map_update_elem(fd, &key, &e[r], BPF_ANY)) {
			err = sgc_err(-errno, "cannot fill the ranks map: %s", strerror(errno));
			goto out;
		}
	}
out:
	free(e);
	free(ips);
	free(macs);
	free(who);
	free(left);
	return err;
}

static int on_event(void *ctx, void *data, size_t len)
{
	struct sgc_comm *c = ctx;
	const struct sgc_bpf_event *ev = data;

	if (len < offsetof(struct sgc_bpf_event, body) || !c->on_kernel_result)
		return 0;
	c->on_kernel_result(c, &ev->hdr, ev->body, ev->seen);
	return 0;
}

/* The ring buffer's fd is readable, or a wait is about to begin: hand
 * every queued result up. */
static int ring_consume(struct sgc_comm *c)
{
	struct sgc_bpf *b = c->bpf;

	return b && b->rb ? ring_buffer__consume(b->rb) : 0;
}

static void build_frame_header(struct sgc_comm *c, struct sgc_bpf *b)
{
	struct ethhdr *eth = (struct ethhdr *)FRAME(b);
	struct iphdr *ip = (struct iphdr *)(eth + 1);
	struct udphdr *udp = (struct udphdr *)(ip + 1);

	memset(FRAME(b), 0, sizeof(b->frame_hdr));
	memcpy(eth->h_dest, b->skel->rodata->cfg.coord_mac, 6);
	memcpy(eth->h_source, b->skel->rodata->cfg.coord_mac, 6);
	eth->h_proto = htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->saddr = c->self.sin_addr.s_addr;
	ip->daddr = c->self.sin_addr.s_addr;
	udp->source = c->self.sin_port;
	udp->dest = c->self.sin_port;
	memcpy(b->frame_hdr, FRAME(b), sizeof(b->frame_hdr));
}

/*
 * libbpf reports some failures with its own codes (4000 and up), which
 * strerror() does not know and which overlap libsgcoll's: name the cause
 * with libbpf_strerror() and hand back a plain errno.
 */
static int libbpf_why(int err, char *buf, size_t size)
{
	if (libbpf_strerror(err, buf, size))
		snprintf(buf, size, "libbpf error %d", -err);
	return -err >= __LIBBPF_ERRNO__START ? -EINVAL : err;
}

/*
 * The application's reduction for SGC_CUSTOM: its object shares our slot,
 * counter, ring and hand-off maps, and its XDP program becomes the last entry
 * of reduce_progs (install_custom()), which gather_prog tail-calls for op
 * SGC_OP_CUSTOM. Loaded with our own object, before the socket exists, for
 * the reason given below.
 */
static int load_custom(struct sgc_comm *c, struct sgc_bpf *b)
{
	static const char *const shared[] = { "slots", "stats", "events", "jobs" };
	struct bpf_program *prog;
	char why[128];
	size_t i;
	int err;

	b->custom = bpf_object__open_file(c->cfg.custom_bpf, NULL);
	if (!b->custom) {
		err = libbpf_why(-errno, why, sizeof(why));
		return sgc_err(err, "cannot open the custom reduction %s (%s): give a BPF object "
			       "built against <sgcoll/agg.bpf.h> with clang -target bpf",
			       c->cfg.custom_bpf, why);
	}
	for (i = 0; i < sizeof(shared) / sizeof(shared[0]); i++) {
		struct bpf_map *m = bpf_object__find_map_by_name(b->custom, shared[i]);
		struct bpf_map *ours = bpf_object__find_map_by_name(b->skel->obj, shared[i]);

		if (m && ours && bpf_map__reuse_fd(m, bpf_map__fd(ours)))
			return sgc_err(-EINVAL, "the custom reduction %s has a map %s that does not match "
				       "libsgcoll's: rebuild it against this version's <sgcoll/agg.bpf.h>",
				       c->cfg.custom_bpf, shared[i]);
	}
	bpf_object__for_each_program(prog, b->custom) {
		if (bpf_program__type(prog) == BPF_PROG_TYPE_XDP) {
			b->custom_xdp = prog;
			break;
		}
	}
	if (!b->custom_xdp)
		return sgc_err(-EINVAL, "the custom reduction %s has no XDP program (SEC(\"xdp\"))",
			       c->cfg.custom_bpf);
	err = bpf_object__load(b->custom);
	if (err) {
		err = libbpf_why(err, why, sizeof(why));
		return sgc_err(err, "the kernel refused the custom reduction %s (%s); run with "
			       "SGC_DEBUG=1 for the verifier's log", c->cfg.custom_bpf, why);
	}
	return 0;
}

/*
 * Load before the socket receives anything: io_uring completions queue
 * task work that looks like a pending signal, and the verifier gives up
 * (EAGAIN) when it sees one during a long verification.
 */
int bpf_path_load(struct sgc_comm *c)
{
	struct sgc_bpf *b;
	struct utsname u;
	char why[128];
	int err, ifindex;

	if (c->rank != 0)
		return sgc_err(-EOPNOTSUPP, "the eBPF path runs on the coordinator only");
	if (!c->cfg.ifname[0])
		return sgc_err(-ENODEV, "no interface for the eBPF path: no local interface holds the "
			       "coordinator address; set SGC_IFNAME");
	ifindex = (int)if_nametoindex(c->cfg.ifname);
	if (!ifindex)
		return sgc_err(-ENODEV, "interface %s is gone", c->cfg.ifname);
	if (!strcmp(c->cfg.ifname, "lo"))
		return sgc_err(-EOPNOTSUPP, "the eBPF path needs a real or veth interface, not lo "
			       "(generic XDP there skips datagrams that TC redirected)");
	if (!has_cap(CAP_BPF) && geteuid() != 0)
		return sgc_err(-EPERM, "the eBPF path needs root or CAP_BPF + CAP_NET_ADMIN");
	if (!has_cap(CAP_NET_ADMIN))
		return sgc_err(-EPERM, "the eBPF path needs CAP_NET_ADMIN to attach to %s",
			       c->cfg.ifname);
	if (access("/sys/kernel/btf/vmlinux", R_OK))
		return sgc_err(-EOPNOTSUPP, "the kernel has no BTF (/sys/kernel/btf/vmlinux): "
			       "the eBPF path needs a kernel built with CONFIG_DEBUG_INFO_BTF");
	err = xdp_slot_check(c, ifindex);
	if (err)
		return err;

	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	c->bpf = b;
	b->ifindex = ifindex;
	b->tc_in = b->tc_out = -1;
	libbpf_set_print(print_libbpf);
	err = xdp_slot_init(&b->xdp, ifindex);
	if (err)
		goto fail;

	b->skel = sgc__open();
	if (!b->skel) {
		err = sgc_err(-errno ? -errno : -EINVAL, "cannot open the embedded eBPF object");
		goto fail;
	}
	b->skel->rodata->cfg.job_id = c->job_id;
	b->skel->rodata->cfg.coord_ip = c->self.sin_addr.s_addr;
	b->skel->rodata->cfg.coord_port = c->self.sin_port;
	b->skel->rodata->cfg.world = (__u16)c->world;
	b->skel->rodata->cfg.chunk_bytes = c->chunk_bytes;
	b->skel->rodata->cfg.ifindex = (__u32)ifindex;
	b->skel->rodata->cfg.fan_burst = fan_burst();
	err = iface_mac(c->cfg.ifname, b->skel->rodata->cfg.coord_mac);
	if (err) {
		err = sgc_err(err, "cannot read the MAC address of %s", c->cfg.ifname);
		goto fail;
	}
	b->cfg_flags = 0;
	if (c->cfg.delivery == SGC_DELIVER_RINGBUF)
		b->cfg_flags |= SGC_BPF_CFG_RINGBUF;
	if (!(c->cfg.flags & SGC_CFG_NO_KERNEL_FANOUT))
		b->cfg_flags |= SGC_BPF_CFG_ALLGATHER;
	if (c->cfg.flags & SGC_CFG_KEEP_RESPONSES)
		b->cfg_flags |= SGC_BPF_CFG_KEEP;
	if (c->mac)
		b->cfg_flags |= SGC_BPF_CFG_MAC;
	b->skel->rodata->cfg.flags = b->cfg_flags;
	b->kernel_colls = kernel_colls(c);
	b->skel->rodata->cfg.kernel_colls = b->kernel_colls;
	do {
		if (getrandom(&b->result_token, sizeof(b->result_token), 0) !=
		    sizeof(b->result_token)) {
			err = sgc_err(-errno, "cannot draw the kernel results' token: %s",
				      strerror(errno));
			goto fail;
		}
	} while (!b->result_token);
	b->skel->rodata->cfg.result_token = b->result_token;
	c->kernel_token = b->result_token;
	bpf_program__set_expected_attach_type(b->skel->progs.notify_prog, BPF_TCX_INGRESS);
	bpf_program__set_expected_attach_type(b->skel->progs.scatter_prog, BPF_TCX_EGRESS);

	err = sgc__load(b->skel);
	if (err) {
		uname(&u);
		err = libbpf_why(err, why, sizeof(why));
		err = sgc_err(err, "the kernel (%s) refused the eBPF programs (%s): it needs BPF "
			      "spin locks, ring buffers and bpf_loop (5.17+); run with SGC_DEBUG=1 for "
			      "the verifier's log", u.release, why);
		goto fail;
	}
	if (c->mac) {
		__u32 zero = 0;

		if (bpf_map_update_elem(bpf_map__fd(b->skel->maps.mac_key), &zero, c->mac, BPF_ANY)) {
			err = sgc_err(-errno, "cannot give the eBPF programs the job key: %s",
				      strerror(errno));
			goto fail;
		}
	}
	if (c->cfg.custom_bpf[0]) {
		err = load_custom(c, b);
		if (err)
			goto fail;
	}
	return 0;
fail:
	bpf_path_close(c);
	return err;
}

static int install_custom(struct sgc_comm *c, struct sgc_bpf *b)
{
	__u32 key = SGC_BPF_CUSTOM_INDEX;
	int fd = bpf_program__fd(b->custom_xdp);

	if (bpf_map_update_elem(bpf_map__fd(b->skel->maps.reduce_progs), &key, &fd, BPF_ANY))
		return sgc_err(-errno, "cannot install the custom reduction: %s", strerror(errno));
	pr_debug("custom reduction %s (%s) installed\n", c->cfg.custom_bpf,
		 bpf_program__name(b->custom_xdp));
	return 0;
}

bool bpf_path_has_custom(const struct sgc_comm *c)
{
	return c->bpf && c->bpf->custom;
}

/* A tcx link of @prog on @b's interface; its fd, or a negative error. */
static int attach_tcx(struct sgc_comm *c, struct sgc_bpf *b, struct bpf_program *prog,
		      enum bpf_attach_type type)
{
	int fd = bpf_link_create(bpf_program__fd(prog), b->ifindex, type, NULL);

	if (fd < 0)
		return sgc_err(-errno, "cannot attach %s to %s %s with tcx (%s): the kernel needs "
			       "tcx (6.6+)", bpf_program__name(prog), c->cfg.ifname,
			       type == BPF_TCX_INGRESS ? "ingress" : "egress", strerror(errno));
	return fd;
}

/* gather_prog on XDP (through the dispatcher), notify_prog and scatter_prog on tcx. */
static int attach_hooks(struct sgc_comm *c, struct sgc_bpf *b)
{
	int err;

	err = xdp_slot_join(c, &b->xdp, bpf_program__fd(b->skel->progs.gather_prog));
	if (err)
		return err;
	if (!b->xdp.native)
		pr_info("eBPF path: only generic XDP is available on %s; results stay exact "
			"but the fast path is slower\n", c->cfg.ifname);
	b->tc_in = attach_tcx(c, b, b->skel->progs.notify_prog, BPF_TCX_INGRESS);
	if (b->tc_in < 0)
		return b->tc_in;
	b->tc_out = attach_tcx(c, b, b->skel->progs.scatter_prog, BPF_TCX_EGRESS);
	return b->tc_out < 0 ? b->tc_out : 0;
}

void bpf_path_engage(struct sgc_comm *c)
{
	struct sgc_bpf *b = c->bpf;
	int err;

	if (!b || !b->hooks_later)
		return;
	b->hooks_later = false;
	err = fill_ranks(c, b);
	if (!err)
		err = attach_hooks(c, b);
	if (!err)
		return;
	/* SGC_ACCEL=auto: the query runs in user space, as would all later. */
	pr_info("eBPF path off, using the user-space path: %s\n", sgc_last_error());
	sgc_err_clear();
	bpf_path_close(c);
}

/* Once every rank is known: fill the maps, attach, map the ring. */
int bpf_path_roster(struct sgc_comm *c)
{
	if (!c->bpf || c->bpf->xdp.slot < 0)
		return 0;
	return fill_ranks(c, c->bpf);
}

int bpf_path_attach(struct sgc_comm *c)
{
	struct sgc_bpf *b = c->bpf;
	int err;

	err = fill_reduce_progs(c, b);
	if (err)
		goto fail;
	err = fill_ranks(c, b);
	if (err)
		goto fail;
	if (b->custom) {
		err = install_custom(c, b);
		if (err)
			goto fail;
	}
	bpf_path_window(c, c->colls.base);
	b->skel->bss->win.query = 0;

	/* XDP on a veth costs the traffic it does not take: GSO bursts are
	 * cut into datagrams before it.  With only scatter-gather for the
	 * kernel (SGC_ACCEL=auto) the hooks wait for the first query; until
	 * then a 64 KiB allreduce ran at a third of its speed for nothing. */
	if (b->kernel_colls == 1u << SGC_COLL_QUERY)
		b->hooks_later = true;
	else if ((err = attach_hooks(c, b)))
		goto fail;

	if (c->cfg.delivery == SGC_DELIVER_RINGBUF) {
		b->rb = ring_buffer__new(bpf_map__fd(b->skel->maps.events), on_event, c, NULL);
		if (!b->rb) {
			err = sgc_err(-errno, "cannot map the result ring buffer");
			goto fail;
		}
		io_watch(c, bpf_map__fd(b->skel->maps.events), ring_consume);
	}
	build_frame_header(c, b);
	return 0;
fail:
	bpf_path_close(c);
	return err;
}

void bpf_path_close(struct sgc_comm *c)
{
	struct sgc_bpf *b = c->bpf;

	if (!b)
		return;
	if (b->rb)
		io_watch(c, -1, NULL);
	ring_buffer__free(b->rb);
	if (b->tc_out >= 0)
		close(b->tc_out);
	if (b->tc_in >= 0)
		close(b->tc_in);
	xdp_slot_leave(&b->xdp);
	bpf_object__close(b->custom);
	sgc__destroy(b->skel);
	free(b);
	c->bpf = NULL;
	c->kernel_token = 0;
}

int bpf_path_contribute(struct sgc_comm *c, const struct sgc_hdr *h, const void *body,
			struct sgc_pkt **result)
{
	struct sgc_bpf *b = c->bpf;
	size_t blen = (size_t)h->count * sgc_dtype_size(h->dtype);
	size_t off = sizeof(b->frame_hdr);
	size_t len = off + SGC_HDR_SIZE + blen + (c->mac ? SGC_MAC_TAG_SIZE : 0);
	struct iphdr *ip = (struct iphdr *)(FRAME(b) + ETH_HLEN);
	struct udphdr *udp = (struct udphdr *)(ip + 1);
	LIBBPF_OPTS(bpf_test_run_opts, opts,
		.data_in = FRAME(b),
		.data_size_in = (__u32)len,
		.data_out = b->out,
		.data_size_out = sizeof(b->out),
		.repeat = 1,
	);
	const struct sgc_hdr *rh;
	int err;

	*result = NULL;
	memcpy(FRAME(b) + off, h, SGC_HDR_SIZE);
	if (blen)
		memcpy(FRAME(b) + off + SGC_HDR_SIZE, body, blen);
	if (c->mac)
		sgc_mac_seal(c->mac, FRAME(b) + off, SGC_HDR_SIZE + blen);
	ip->tot_len = htons((uint16_t)(len - ETH_HLEN));
	udp->len = htons((uint16_t)(len - ETH_HLEN - sizeof(*ip)));
	err = bpf_prog_test_run_opts(bpf_program__fd(b->skel->progs.gather_prog), &opts);
	if (err)
		return sgc_err(-errno, "running gather_prog for rank 0's contribution failed: %s",
			       strerror(errno));
	if (opts.retval != XDP_PASS || opts.data_size_out < len)
		return 0;
	/* The datagram came back as the chunk's RESULT: ours completed it.
	 * data_out starts with the XDP metadata (struct sgc_bpf_meta).  Back
	 * as it went in: the kernel refused it, its arguments differ from the
	 * slot's (pass_mismatch; nothing else passes rank 0's contribution
	 * up, as rank 0 calls a custom op only with its program loaded). */
	rh = (const struct sgc_hdr *)(b->out + (opts.data_size_out - len) + off);
	if (rh->type == SGC_MSG_CONTRIB)
		return 2;
	if (rh->type != SGC_MSG_RESULT || !(rh->flags & SGC_F_KERNEL))
		return 0;
	*result = pkt_alloc(c);
	if (!*result)
		return -ENOMEM;
	memcpy((*result)->data, rh, SGC_HDR_SIZE + blen);
	(*result)->len = (uint32_t)(SGC_HDR_SIZE + blen);
	return 1;
}

const struct sgc_bpf_slot *bpf_path_slot(struct sgc_comm *c, uint8_t coll, uint32_t seq,
					 uint32_t chunk)
{
	struct sgc_bpf *b = c->bpf;
	struct sgc_bpf_slot *out = &b->slot;
	__u32 key = sgc_slot_index(coll, seq, chunk);

	if (bpf_map_lookup_elem_flags(bpf_map__fd(b->skel->maps.slots), &key, out, BPF_F_LOCK))
		return NULL;
	if (out->state == SGC_SLOT_FREE || out->coll != coll || out->seq != seq || out->chunk != chunk)
		return NULL;
	return out;
}

const struct sgc_bpf_slot *bpf_path_slot_at(struct sgc_comm *c, uint32_t seq, uint32_t chunk)
{
	struct sgc_bpf *b = c->bpf;
	struct sgc_bpf_slot *out = &b->slot;
	__u32 key = sgc_slot_index(SGC_COLL_ALLREDUCE, seq, chunk);

	if (bpf_map_lookup_elem_flags(bpf_map__fd(b->skel->maps.slots), &key, out, BPF_F_LOCK))
		return NULL;
	if (out->state == SGC_SLOT_FREE || out->coll == SGC_COLL_QUERY || out->seq != seq ||
	    out->chunk != chunk)
		return NULL;
	return out;
}

/*
 * Collectives open at once from which user space, not notify_prog, sends
 * the results on (win.fan_user).  Measured at 9 ranks one per host,
 * allreduce of 363 x int32: see bench/results/fanuser-2026-12-05 (built
 * with -DSGC_FAN_USER_OPEN=N there to compare).
 */
#ifndef SGC_FAN_USER_OPEN
#define SGC_FAN_USER_OPEN	4
#endif

void bpf_path_window(struct sgc_comm *c, uint32_t base)
{
	c->bpf->skel->bss->win.base = base;
	c->bpf->skel->bss->win.fan_user = c->colls.next_seq - base >= SGC_FAN_USER_OPEN;
}

void bpf_path_query(struct sgc_comm *c, uint32_t seq, uint8_t policy, uint16_t want)
{
	/* One 8-byte store: gather_prog reads the word whole. */
	c->bpf->skel->bss->win.query = sgc_bpf_query_word(seq, policy, want);
}

uint32_t bpf_path_rank_wm(const struct sgc_comm *c, int r)
{
	return c->bpf->skel->bss->rank_wm[r];
}

uint32_t bpf_path_rank_hi(const struct sgc_comm *c, int r)
{
	return c->bpf->skel->bss->rank_hi[r];
}

uint64_t bpf_path_coll_rx(const struct sgc_comm *c, uint32_t seq)
{
	volatile struct sgc_bpf_activity *a = &c->bpf->skel->bss->coll_rx[seq % SGC_BPF_RING_SEQ];

	if (a->seq != seq)
		return 0;
	return a->ns;
}

bool bpf_path_kernel_fanout(const struct sgc_comm *c)
{
	return c->bpf && (c->bpf->cfg_flags & SGC_BPF_CFG_ALLGATHER);
}

bool bpf_path_keep(const struct sgc_comm *c)
{
	return c->bpf && (c->bpf->cfg_flags & SGC_BPF_CFG_KEEP);
}

bool bpf_path_in_kernel(const struct sgc_comm *c, unsigned int kind)
{
	return c->bpf && sgc_bpf_in_kernel(c->bpf->kernel_colls, kind);
}

int sgc_bpf_stats(const sgc_comm *c, uint64_t *out, int n)
{
	const struct sgc_bpf *b;
	int fd, ncpu, i, k;
	uint64_t *vals;

	if (!c || !out || n <= 0)
		return sgc_err(-EINVAL, "sgc_bpf_stats: bad arguments");
	b = c->bpf;
	if (!b)
		return sgc_err(-EOPNOTSUPP, "the eBPF path is not active on this rank");
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		return -EINVAL;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	fd = bpf_map__fd(b->skel->maps.stats);
	for (k = 0; k < n && k < SGC_ST_MAX; k++) {
		__u32 key = (__u32)k;

		out[k] = 0;
		if (bpf_map_lookup_elem(fd, &key, vals))
			continue;
		for (i = 0; i < ncpu; i++)
			out[k] += vals[i];
	}
	free(vals);
	return k;
}
