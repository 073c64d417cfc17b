// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Every eBPF-path coordinator on an interface (any job, any communicator)
 * shares its one XDP hook through libsgcoll's dispatcher (bpf/dispatch.bpf.c
 * says how it runs and why it is not libxdp's): this file finds or attaches
 * the dispatcher, puts a coordinator's gather_prog into a free slot, frees
 * the slots of processes that died, and takes the dispatcher off when the
 * last coordinator leaves.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "comm.h"
#include "xdp_dispatch.h"
#include "dispatch.skel.h"

/*
 * The interface carries one sgc_dispatch, attached through netlink so that
 * it outlives the job that put it there; each coordinator writes its
 * gather_prog into a free slot of `gather_slots` and its address into
 * `jobs`.  The last coordinator to leave cleanly takes the dispatcher
 * off; after a crash an empty one stays, passes everything, and the next
 * job replaces it.  One lock file orders joining and leaving across
 * processes and network namespaces (/run is shared by `ip netns exec`),
 * so a job never joins a dispatcher another is taking off.
 */
#define XDP_LOCK_PATH		"/run/lock/libsgcoll-xdp.lock"
#define XDP_LOCK_FALLBACK	"/tmp/libsgcoll-xdp.lock"
#define DISPATCH_NAME		"sgc_dispatch"

static int xdp_lock(void)
{
	int fd = open(XDP_LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0)
		fd = open(XDP_LOCK_FALLBACK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		pr_debug("eBPF path: no lock file (%s): joining the interface unlocked\n",
			 strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX) && errno == EINTR)
		;
	return fd;
}

static void xdp_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* Is a live link holding the XDP program of @ifindex? */
static bool xdp_link_held(int ifindex)
{
	__u32 id;

	for (id = 0; !bpf_link_get_next_id(id, &id);) {
		struct bpf_link_info li = {};
		__u32 llen = sizeof(li);
		int lfd = bpf_link_get_fd_by_id(id);
		int err;

		if (lfd < 0)
			continue;
		err = bpf_obj_get_info_by_fd(lfd, &li, &llen);
		close(lfd);
		if (!err && li.type == BPF_LINK_TYPE_XDP && li.xdp.ifindex == (__u32)ifindex)
			return true;
	}
	return false;
}

/*
 * The program on @ifindex: none (0, *fd = -1), libsgcoll's dispatcher (0,
 * *fd its fd), or another program (-EBUSY naming it).
 */
static int iface_xdp(struct sgc_comm *c, int ifindex, int *fd, __u32 *mode)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int pfd;

	*fd = -1;
	if (bpf_xdp_query(ifindex, 0, &q) || !q.prog_id)
		return 0;
	if (mode)
		*mode = q.attach_mode;
	pfd = bpf_prog_get_fd_by_id(q.prog_id);
	if (pfd < 0)
		return 0;	/* gone since the query */
	if (bpf_obj_get_info_by_fd(pfd, &info, &len)) {
		close(pfd);
		return 0;
	}
	if (!strcmp(info.name, DISPATCH_NAME)) {
		*fd = pfd;
		return 0;
	}
	close(pfd);
	if (xdp_link_held(ifindex))
		return sgc_err(-EBUSY, "interface %s already has an XDP program (%s, id %u) held "
			       "by a running process that is not libsgcoll's; use another "
			       "interface, or SGC_ACCEL=off for this job", c->cfg.ifname, info.name,
			       q.prog_id);
	return sgc_err(-EBUSY, "interface %s has another XDP program attached (%s, id %u): "
		       "detach it (ip link set dev %s %s off) or use SGC_ACCEL=off",
		       c->cfg.ifname, info.name, q.prog_id, c->cfg.ifname,
		       q.attach_mode == XDP_ATTACHED_SKB ? "xdpgeneric" :
		       q.attach_mode == XDP_ATTACHED_HW ? "xdpoffload" : "xdpdrv");
}

/*
 * Free the slots of coordinators whose process is gone (a crash skips
 * xdp_slot_leave()); return the slots still in use as a bit mask.
 */
static uint32_t reap_slots(struct xdp_slot *x)
{
	struct sgc_xdp_job_key keys[SGC_XDP_SLOTS];
	struct sgc_xdp_job jobs[SGC_XDP_SLOTS];
	bool alive[SGC_XDP_SLOTS];
	uint32_t used = 0;
	int n = xdp_jobs_list(x->jobs_fd, keys, jobs, SGC_XDP_SLOTS), ndead = 0, i;

	for (i = 0; i < n; i++) {
		alive[i] = xdp_job_alive(&jobs[i]);
		if (alive[i])
			used |= 1u << jobs[i].slot;
	}
	for (i = 0; i < n; i++) {
		if (alive[i])
			continue;
		if (jobs[i].slot < SGC_XDP_SLOTS && !(used & 1u << jobs[i].slot))
			bpf_map_delete_elem(x->slots_fd, &jobs[i].slot);
		bpf_map_delete_elem(x->jobs_fd, &keys[i]);
		ndead++;
	}
	if (ndead)
		pr_info("eBPF path: freed %d slot(s) of coordinators that ended without "
			"leaving\n", ndead);
	return used;
}

/* The dispatcher's maps, from its fd. */
static int dispatcher_maps(struct sgc_comm *c, struct xdp_slot *x)
{
	x->slots_fd = xdp_prog_map(x->disp_fd, "gather_slots");
	x->jobs_fd = xdp_prog_map(x->disp_fd, "jobs");
	if (x->slots_fd >= 0 && x->jobs_fd >= 0)
		return 0;
	return sgc_err(-EPROTO, "the XDP dispatcher on %s lacks its maps: a different libsgcoll "
		       "version? Let its jobs end, or use SGC_ACCEL=off", c->cfg.ifname);
}

/*
 * Put our own dispatcher on the interface, in place of @old_fd (-1: none)
 * unless someone was faster.  We hold its skeleton until we leave: the
 * kernel empties a prog array, later and asynchronously, once no process
 * holds it, so a fresh one must never pass through that state.
 */
static int attach_dispatcher(struct sgc_comm *c, struct xdp_slot *x, int old_fd)
{
	LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = old_fd >= 0 ? old_fd : 0);
	int err;

	/* Through netlink, not a link: it stays while other jobs use it. */
	err = bpf_xdp_attach(x->ifindex, bpf_program__fd(x->own->progs.sgc_dispatch),
			     old_fd >= 0 ? 0 : XDP_FLAGS_UPDATE_IF_NOEXIST, &o);
	if (err == -EEXIST || err == -EBUSY)
		return 0;	/* a process that does not take the lock was faster */
	if (err)
		return sgc_err(err, "cannot attach XDP to %s (%s): the driver may lack XDP "
			       "support; use a veth or a NIC with XDP, or SGC_ACCEL=off",
			       c->cfg.ifname, strerror(-err));
	return 0;
}

static __u32 prog_id(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

static void close_dispatcher(struct xdp_slot *x)
{
	if (x->slots_fd >= 0)
		close(x->slots_fd);
	if (x->jobs_fd >= 0)
		close(x->jobs_fd);
	if (x->disp_fd >= 0)
		close(x->disp_fd);
	x->disp_fd = x->slots_fd = x->jobs_fd = -1;
}

/*
 * gather_prog into a free slot of the interface's dispatcher.  One with no
 * live coordinator in it (its last one crashed) is replaced by a fresh
 * one of ours; so is no dispatcher.  Called with the lock held.
 */
static int join_locked(struct sgc_comm *c, struct xdp_slot *x, int gfd)
{
	struct sgc_xdp_job job = {};
	__u32 mode = 0;
	uint32_t used = 0;
	int err, tries, old;

	for (tries = 0;; tries++) {
		if (tries == 4)
			return sgc_err(-EBUSY, "the XDP program on %s kept changing while this job "
				       "joined it; retry, or use SGC_ACCEL=off", c->cfg.ifname);
		err = iface_xdp(c, x->ifindex, &x->disp_fd, &mode);
		if (err)
			return err;
		if (x->disp_fd >= 0) {
			err = dispatcher_maps(c, x);
			if (err)
				return err;
			used = reap_slots(x);
			if (used || (x->own && prog_id(x->disp_fd) ==
						   prog_id(bpf_program__fd(x->own->progs.sgc_dispatch))))
				break;
		}
		old = x->disp_fd;
		x->disp_fd = -1;
		close_dispatcher(x);
		err = attach_dispatcher(c, x, old);
		if (old >= 0)
			close(old);
		if (err)
			return err;
	}
	x->native = mode == XDP_ATTACHED_DRV || mode == XDP_ATTACHED_HW;
	for (x->slot = 0; x->slot < SGC_XDP_SLOTS; x->slot++)
		if (!(used & 1u << x->slot))
			break;
	if (x->slot == SGC_XDP_SLOTS) {
		x->slot = -1;
		return sgc_err(-EBUSY, "interface %s already carries %d eBPF-path coordinators, "
			       "every slot of its XDP dispatcher; let one end, use another "
			       "interface, or SGC_ACCEL=off for this job", c->cfg.ifname,
			       SGC_XDP_SLOTS);
	}
	job.slot = (__u32)x->slot;
	job.pid = (__u32)getpid();
	job.start = xdp_proc_start(job.pid);
	job.prog_id = prog_id(gfd);
	x->key.ip = c->self.sin_addr.s_addr;
	x->key.port = c->self.sin_port;
	if (bpf_map_update_elem(x->slots_fd, &job.slot, &gfd, BPF_ANY) ||
	    bpf_map_update_elem(x->jobs_fd, &x->key, &job, BPF_ANY)) {
		err = -errno;
		bpf_map_delete_elem(x->slots_fd, &job.slot);
		x->slot = -1;
		return sgc_err(err, "cannot put gather_prog into the XDP dispatcher on %s: %s",
			       c->cfg.ifname, strerror(-err));
	}
	pr_debug("eBPF path: gather_prog in slot %d of %s's dispatcher\n", x->slot,
		 c->cfg.ifname);
	return 0;
}

int xdp_slot_join(struct sgc_comm *c, struct xdp_slot *x, int gather_fd)
{
	int lock = xdp_lock();
	int err = join_locked(c, x, gather_fd);

	xdp_unlock(lock);
	if (err)
		xdp_slot_leave(x);
	return err;
}

/* Out of the interface's dispatcher; the last one out takes it off. */
void xdp_slot_leave(struct xdp_slot *x)
{
	struct sgc_xdp_job_key any;
	struct sgc_xdp_job job;
	int lock;

	if (x->disp_fd < 0) {
		dispatch__destroy(x->own);
		x->own = NULL;
		return;
	}
	lock = xdp_lock();
	if (x->slot >= 0) {
		__u32 k = (__u32)x->slot;

		if (!bpf_map_lookup_elem(x->jobs_fd, &x->key, &job) && job.slot == k &&
		    job.pid == (__u32)getpid())
			bpf_map_delete_elem(x->jobs_fd, &x->key);
		bpf_map_delete_elem(x->slots_fd, &k);
		x->slot = -1;
	}
	reap_slots(x);
	if (bpf_map_get_next_key(x->jobs_fd, NULL, &any)) {
		LIBBPF_OPTS(bpf_xdp_attach_opts, o, .old_prog_fd = x->disp_fd);

		/* Only if it is still the one there (REPLACE with no new one). */
		bpf_xdp_detach(x->ifindex, 0, &o);
	}
	close_dispatcher(x);
	xdp_unlock(lock);
	/* Last: while we hold it, its prog array cannot be emptied under a
	 * coordinator that joins it (see attach_dispatcher()). */
	dispatch__destroy(x->own);
	x->own = NULL;
}

int xdp_slot_init(struct xdp_slot *x, int ifindex)
{
	struct utsname u;
	int err;

	*x = (struct xdp_slot){ .ifindex = ifindex, .disp_fd = -1, .slots_fd = -1, .jobs_fd = -1,
				.slot = -1 };
	x->own = dispatch__open_and_load();
	if (x->own)
		return 0;
	err = -errno;
	uname(&u);
	return sgc_err(err, "the kernel (%s) refused libsgcoll's XDP dispatcher (%s); run with "
		       "SGC_DEBUG=1 for the verifier's log", u.release, strerror(-err));
}

int xdp_slot_check(struct sgc_comm *c, int ifindex)
{
	int fd, err = iface_xdp(c, ifindex, &fd, NULL);

	if (fd >= 0)
		close(fd);
	return err;
}
