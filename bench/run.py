#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""bench/run.py - libsgcoll's benchmarks against the thesis's baselines, Open
MPI and Gloo, in one run, on one topology.

One driver, one scenario table (SCENARIOS below): workload x contender x
fan-out.  For each fan-out it brings up a virtual cluster (tools/sgc-cluster:
a coordinator namespace and worker namespaces joined by veth through a
bridge), runs every scenario of that fan-out REPEATS times (repeats
interleaved, so slow drifts of the machine hit every contender alike), and
tears the cluster down.  Three kinds of runs:

  responder  the workers are bench/sgc-responder (XDP, answering in the
             kernel), so the coordinator is what is measured: the baselines
             (base_naive, base_epoll, base_mmsg, base_uring) and libsgcoll's
             sgc_scatter_gather (sgc_bench --responder);
  procs      real worker processes: libsgcoll's allreduce and scatter-gather
             (sgc_bench on every rank);
  peers      Open MPI (mpirun) and Gloo (N processes, FileStore rendezvous),
             all ranks in the coordinator's namespace over loopback tcp.

Every program checks every result and prints verified=1 only if all were
right; a run that did not verify is recorded as failed and never counted.

Output (bench/results/, or --out): runs.csv (every run), summary.csv
(median and min/max over repeats), results.md (tables and method), PNG plots
(latency, throughput and coordinator CPU per operation vs fan-out),
machine.json (machine, kernel, versions), logs/ (output of failed runs).

Usage (root: network namespaces):
  bench/run.py                  the standard set (`make bench`)
  bench/run.py --quick          a small subset, under a minute, for development
  bench/run.py --list           the scenario table and the time estimate
  bench/run.py --fanouts 8,32 --contenders base_mmsg,sgc-user+xdp --repeats 5
"""

import argparse
import csv
import datetime
import json
import math
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER = os.path.join(REPO, "tools", "sgc-cluster")

# The smallest MTU at which libsgcoll carries 363 x int32 in one datagram
# (28 + 48-byte header + 1452 bytes, bodies in multiples of 8): the thesis's
# "one packet per response" for every contender.
MTU = 1532
HOSTS_MAX = 250  # sgc-cluster's limit (one /24 of worker addresses)

MPI_FLAGS = ["--allow-run-as-root", "--oversubscribe", "--bind-to", "none",
             "--mca", "pml", "ob1", "--mca", "btl", "self,tcp",
             "--mca", "btl_tcp_if_include", "lo", "--mca", "oob_tcp_if_include", "lo",
             "--mca", "mpi_yield_when_idle", "1"]

# ---------------------------------------------------------------------------
# Contenders
# ---------------------------------------------------------------------------


class Contender:
    def __init__(self, name, kind, prog, env=None, accel="off", note=""):
        self.name = name    # label in every table
        self.kind = kind    # base | sgc-resp | sgc | mpi | gloo
        self.prog = prog    # binary in BUILD/bench
        self.env = env or {}
        self.accel = accel  # SGC_ACCEL for libsgcoll
        self.note = note


C = {c.name: c for c in [
    Contender("base_naive", "base", "base_naive",
              note="blocking sendto + recv, one socket per worker"),
    Contender("base_epoll", "base", "base_epoll",
              note="non-blocking sockets, one per worker, epoll"),
    Contender("base_mmsg", "base", "base_mmsg", note="one socket, sendmmsg + recvmmsg"),
    Contender("base_uring", "base", "base_uring",
              note="one socket, io_uring: batched sendmsg, multishot recvmsg, buffer ring"),
    Contender("sgc-user+xdp", "sgc-resp", "sgc_bench", accel="off",
              note="libsgcoll user-space path, XDP responder workers"),
    Contender("sgc-auto+xdp", "sgc-resp", "sgc_bench", accel="auto",
              note="SGC_ACCEL=auto (the default), XDP responder workers"),
    Contender("sgc-ebpf-ringbuf+xdp", "sgc-resp", "sgc_bench", accel="ebpf",
              env={"SGC_DELIVERY": "ringbuf"}, note="eBPF path, ring-buffer delivery"),
    Contender("sgc-ebpf-socket+xdp", "sgc-resp", "sgc_bench", accel="ebpf",
              env={"SGC_DELIVERY": "socket"}, note="eBPF path, socket delivery"),
    Contender("sgc-ebpf-busypoll+xdp", "sgc-resp", "sgc_bench", accel="ebpf",
              env={"SGC_DELIVERY": "ringbuf", "SGC_WAITMODE": "busypoll",
                   "SGC_BENCH_COORD_ONLY_WAITMODE": "1"},
              note="eBPF path, ring buffer, busy polling at the coordinator"),
    Contender("sgc-ebpf-keep+xdp", "sgc-resp", "sgc_bench", accel="ebpf",
              env={"SGC_KEEP_RESPONSES": "1"},
              note="eBPF path, answers passed up and reduced in user space (thesis's ALLOW_PK)"),
    Contender("sgc-user", "sgc", "sgc_bench", accel="off",
              note="libsgcoll user-space path, worker processes"),
    Contender("sgc-auto", "sgc", "sgc_bench", accel="auto",
              note="SGC_ACCEL=auto, the default: eBPF path attached, scatter-gather in the kernel, "
                   "allreduce and the like in user space"),
    Contender("sgc-ebpf-ringbuf", "sgc", "sgc_bench", accel="ebpf",
              env={"SGC_DELIVERY": "ringbuf"}, note="eBPF path, ring buffer, worker processes"),
    Contender("sgc-ebpf-socket", "sgc", "sgc_bench", accel="ebpf",
              env={"SGC_DELIVERY": "socket"}, note="eBPF path, socket, worker processes"),
    Contender("openmpi-tcp", "mpi", "mpi_allreduce",
              note="MPI_Allreduce / MPI_Iallreduce, ob1 + tcp over loopback"),
    Contender("gloo-tcp", "gloo", "gloo_allreduce",
              note="gloo::allreduce (default algorithm), tcp over loopback, FileStore"),
]}

# Allreduces the XDP responder contributes to (one chunk of int32).
AR_COUNT = {"ar1": 1, "ar363": 363}

BASELINES = ["base_naive", "base_epoll", "base_mmsg", "base_uring"]
SGC_RESP = ["sgc-user+xdp", "sgc-ebpf-ringbuf+xdp", "sgc-ebpf-socket+xdp",
            "sgc-ebpf-busypoll+xdp", "sgc-ebpf-keep+xdp"]
SGC_PROC = ["sgc-user", "sgc-auto", "sgc-ebpf-ringbuf", "sgc-ebpf-socket"]
PEERS = ["openmpi-tcp", "gloo-tcp"]
# Coordinator-bound allreduce: the responder contributes for the workers.
AR_RESP = ["sgc-user+xdp", "sgc-auto+xdp", "sgc-ebpf-ringbuf+xdp"]

# ---------------------------------------------------------------------------
# The scenario table: workload, contenders, fan-outs, modes.
#
# Fan-outs 8, 32, 128, 512, 1024 as the issue asks; 15 (16 ranks) for the
# allreduce rows because the target is stated at 16 ranks; 16, 64
# and 256 for issue 15's worlds of 17, 65 and 257 ranks (and the no-cliff
# comparison of 65 with 257).  Where a
# row stops short, LIMITS says why.
# ---------------------------------------------------------------------------

ALL_F = [8, 32, 128, 512, 1024]
AR_F = [8, 15, 16, 32, 64, 128, 256, 512, 1024]
SCENARIOS = [
    # the thesis's workload, coordinator-bound: in-kernel responder workers
    ("sg363", BASELINES + SGC_RESP, ALL_F, ("lat", "tput")),
    # the same, end to end with worker processes answering in sgc_serve()
    ("sg363", SGC_PROC, ALL_F, ("lat", "tput")),
    # allreduce, every rank a process
    ("ar1", SGC_PROC + PEERS, AR_F, ("lat", "tput")),
    ("ar363", SGC_PROC + PEERS, AR_F, ("lat", "tput")),
    ("ar64k", SGC_PROC + PEERS, AR_F, ("lat", "tput")),
    ("ar1m", SGC_PROC + PEERS, AR_F, ("lat", "tput")),
    # allreduce, coordinator-bound: the XDP responder contributes for every
    # worker (throughput only: it answers a result with the next operation)
    ("ar1", AR_RESP, [32, 64, 128, 256], ("tput",)),
    ("ar363", AR_RESP, [32, 64, 128, 256], ("tput",)),
]

# (contender kind or name, workload or "*") -> largest fan-out, and why.
LIMITS = [
    ("gloo-tcp", "*", 32,
     "Gloo connects a full TCP mesh and, with every rank on 2 cores, took 148 ms per "
     "363 x int32 allreduce at 33 ranks (measured here): 128 ranks would take hours"),
    ("openmpi-tcp", "*", 128,
     "beyond 129 oversubscribed ranks mpirun's start-up and tcp wire-up dominate "
     "(10 s at 129 ranks, measured here) and a repeat takes minutes"),
    ("sgc", "ar64k", 128, "every rank a process on 2 cores: 64 KiB x 512 ranks per operation "
     "is past what the standard run's time budget holds"),
    ("openmpi-tcp", "ar64k", 32, "see sgc ar64k; MPI is slower still"),
    ("sgc", "ar1m", 32, "1 MiB from every rank per operation: 32 MiB per operation at 32 "
     "workers already takes a large share of the budget"),
    ("openmpi-tcp", "ar1m", 32, "as sgc ar1m"),
    ("sgc", "ar1", 512, "1,025 processes on 2 cores: the one run tried (user-space path, before "
     "5819cdd fixed sends misdirected past 256 per round) was stopped after 164 s "
     "without a result; not retried within the standard run's time"),
    ("sgc", "ar363", 512, "as ar1"),
    ("gloo-tcp", "ar64k", 15, "see Gloo above"),
    ("gloo-tcp", "ar1m", 8, "see Gloo above"),
]


def limit_for(con, workload):
    best = None
    for who, wl, fmax, why in LIMITS:
        if who not in (con.name, con.kind) or wl not in ("*", workload):
            continue
        if best is None or fmax < best[0]:
            best = (fmax, why)
    return best


# Rough cost of one operation in microseconds, measured on this machine with
# short runs; only used to size the runs (ops) and their timeouts.
def est_op_us(con, workload, fanout):
    kb = {"sg363": 1.45, "ar1": 0.004, "ar363": 1.45, "ar64k": 64, "ar1m": 1024}[workload]
    if con.kind in ("base", "sgc-resp"):
        return 12 * fanout + 40
    if con.kind == "sgc":
        return fanout * (25 + 2.0 * kb) + 100
    if con.kind == "mpi":
        return fanout * (120 + 3.0 * kb) + 100
    return fanout * (4500 + 20 * kb)  # gloo


THESIS_OPS = {"lat": 5000, "tput": 8000}


def plan_ops(con, workload, mode, fanout, target_s, quick):
    """Operations, warm-up and sample interval of one run."""
    full = THESIS_OPS[mode] if not quick else {"lat": 300, "tput": 600}[mode]
    est = est_op_us(con, workload, fanout)
    if mode == "tput" and con.kind in ("base", "mpi"):
        est /= 3  # operations overlap (libsgcoll's are not assumed to: its
        #           scatter-gather is blocking, and its allreduce retransmits
        #           heavily under load at large fan-outs)
    ops = int(target_s * 1e6 / est)
    floor = 50 if quick else (100 if mode == "lat" else 200)
    ops = max(floor, min(full, ops))
    ops = int(math.ceil(ops / 10.0) * 10)
    warm = max(10, min(200, ops // 10))
    sample = max(5, ops // 40)  # 40 samples, as the thesis's 8000 / 200
    return ops, warm, sample


def window_for(fanout):
    """Operations in flight in tput mode, the same for every contender that
    has non-blocking operations: at most 16, and about 4096 answers in flight
    (the burst a receive path holds without loss here)."""
    return max(2, min(16, 4096 // max(1, fanout)))


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

RUNNING = []  # Popen objects of our children, killed on the way out


def log(msg):
    print(msg, flush=True)


def kill_tree(p, grace=5.0):
    """Stops a child started with start_new_session=True: SIGTERM to its
    process group (sgc-cluster stops its ranks on SIGTERM), then SIGKILL."""
    if p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + grace
    while time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


def run_cmd(cmd, timeout, env=None):
    """Runs @cmd in its own session; returns (rc, stdout, stderr, seconds).
    rc is None on timeout."""
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env, start_new_session=True)
    RUNNING.append(p)
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        kill_tree(p)
        out, err = p.communicate()
        rc = None
    except BaseException:
        # interrupted (SIGINT, or SIGTERM turned into KeyboardInterrupt):
        # the caller's clean-up no longer sees @p in RUNNING, so stop it here
        kill_tree(p)
        raise
    finally:
        RUNNING.remove(p)
    return rc, out, err, time.time() - t0


def parse_result(text):
    for line in text.splitlines():
        if line.startswith("RESULT "):
            kv = {}
            for tok in line.split()[1:]:
                k, _, v = tok.partition("=")
                kv[k] = v
            return kv
    return None


class Cluster:
    def __init__(self, name, hosts):
        self.name, self.hosts, self.subnet = name, hosts, None
        self.resp = None

    def up(self):
        subprocess.run([CLUSTER, "down", self.name], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        r = subprocess.run([CLUSTER, "up", self.name, "--hosts", str(self.hosts), "--mtu",
                            str(MTU)], capture_output=True, text=True, timeout=600)
        if r.returncode:
            raise RuntimeError(f"sgc-cluster up failed: {r.stderr.strip()}")
        r = subprocess.run([CLUSTER, "list"], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            f = line.split()
            if f and f[0] == self.name:
                self.subnet = f[1].split("=", 1)[1]
        if not self.subnet:
            raise RuntimeError("sgc-cluster list does not show the cluster")

    def start_responder(self, build, max_rank, timeout_s, ar=None):
        """ar: (window, count) to contribute to allreduces as well."""
        cmd = [os.path.join(build, "sgc-responder"), "--cluster", self.name, "--hosts",
               str(self.hosts), "--max-rank", str(max_rank), "--deadline", str(int(timeout_s))]
        if ar:
            cmd += ["--allreduce-window", str(ar[0]), "--allreduce-count", str(ar[1])]
        self.resp = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True)
        RUNNING.append(self.resp)
        # "ready" once attached; warnings may come first; an error ends it.
        seen, deadline, line = [], time.time() + 120, ""
        while time.time() < deadline:
            r, _, _ = select.select([self.resp.stdout], [], [], 1.0)
            if not r:
                continue
            line = self.resp.stdout.readline()
            if not line or "sgc-responder: ready" in line:
                break
            seen.append(line.strip())
        if not line or "sgc-responder: ready" not in line:
            self.stop_responder()
            raise RuntimeError("sgc-responder did not start: " + " / ".join(seen[-5:]))

    def stop_responder(self):
        if not self.resp:
            return ""
        p, self.resp = self.resp, None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            out, _ = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            kill_tree(p)
            out = ""
        if p in RUNNING:
            RUNNING.remove(p)
        return out or ""

    def down(self):
        self.stop_responder()
        subprocess.run([CLUSTER, "down", self.name], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=120)


# ---------------------------------------------------------------------------
# One run of one contender
# ---------------------------------------------------------------------------


def build_cmd(a, cl, con, workload, mode, fanout, ops, warm, sample, timeout_s):
    """The command line of one run, and its environment (None: inherit)."""
    prog = os.path.join(a.build, con.prog)
    common = ["--mode", mode, "--ops", str(ops), "--warmup", str(warm), "--sample", str(sample)]
    win = str(window_for(fanout))
    if con.kind == "base":
        cmd = [prog, "--subnet", cl.subnet, "--hosts", str(cl.hosts), "--workers", str(fanout),
               "--max-s", str(int(timeout_s)), "--window", win] + common
        if a.small_queries:
            cmd += ["--query-bytes", "16"]
        return [CLUSTER, "exec", cl.name, "c", "--"] + cmd, None
    if con.kind in ("sgc", "sgc-resp"):
        cmd = [CLUSTER, "run", cl.name, "--ranks", str(fanout + 1), "--accel", con.accel,
               "--timeout-ms", "30000", "--deadline", str(int(timeout_s)),
               "--logdir", a.rank_logs]
        for k, v in con.env.items():
            cmd += ["--env", f"{k}={v}"]
        cmd += ["--", prog, "--workload", workload, "--name", con.name, "--window", win,
                "--serve-idle-ms", str(int(timeout_s * 1000))] + common
        if con.kind == "sgc-resp":
            cmd += ["--responder"]
            if a.small_queries:
                cmd += ["--query-bytes", "8"]
        return cmd, None
    if con.kind == "mpi":
        cmd = ["ip", "netns", "exec", f"{cl.name}-c", "mpirun"] + MPI_FLAGS + \
            ["-np", str(fanout + 1), prog, "--workload", workload, "--window", win] + common
        return cmd, None
    raise ValueError(con.kind)


def run_gloo(a, cl, con, workload, mode, fanout, ops, warm, sample, timeout_s):
    """Gloo has no launcher: start fanout + 1 processes in the coordinator's
    namespace, rendezvous through a fresh FileStore directory."""
    store = tempfile.mkdtemp(prefix="sgc-bench-gloo.")
    procs, t0 = [], time.time()
    args = ["--workload", workload, "--mode", mode, "--ops", str(ops), "--warmup", str(warm),
            "--sample", str(sample)]
    try:
        for r in range(fanout + 1):
            env = dict(os.environ, GLOO_RANK=str(r), GLOO_SIZE=str(fanout + 1),
                       GLOO_STORE=store, GLOO_HOST="127.0.0.1")
            p = subprocess.Popen(["ip", "netns", "exec", f"{cl.name}-c",
                                  os.path.join(a.build, con.prog)] + args,
                                 stdout=subprocess.PIPE if r == 0 else subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True, env=env,
                                 start_new_session=True)
            procs.append(p)
            RUNNING.append(p)
        out, err, rc = "", "", 0
        deadline = t0 + timeout_s
        for i, p in enumerate(procs):
            try:
                o, e = p.communicate(timeout=max(1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                rc = None
                break
            if i == 0:
                out = o or ""
            if e:
                err += e
            if p.returncode and rc is not None:
                rc = p.returncode
        return rc, out, err, time.time() - t0
    finally:
        for p in procs:
            kill_tree(p, grace=1)
            if p in RUNNING:
                RUNNING.remove(p)
        shutil.rmtree(store, ignore_errors=True)


def one_run(a, cl, con, workload, mode, fanout, rep, state):
    ops, warm, sample = plan_ops(con, workload, mode, fanout, a.target_s, a.quick)
    est_s = (ops + warm) * est_op_us(con, workload, fanout) / 1e6
    timeout_s = max(60, 10 * est_s + 30 + fanout / 10)
    row = {"workload": workload, "mode": mode, "contender": con.name, "fanout": fanout,
           "rep": rep, "ops": ops, "status": "", "seconds": 0}
    if con.accel == "ebpf" and state.get("ebpf_missing"):
        row["status"] = "skipped: " + state["ebpf_missing"]
        return row
    if not os.access(os.path.join(a.build, con.prog), os.X_OK):
        row["status"] = f"skipped: {con.prog} not built"
        return row
    if con.kind == "gloo":
        rc, out, err, secs = run_gloo(a, cl, con, workload, mode, fanout, ops, warm, sample,
                                      timeout_s)
        cmd = ["gloo_allreduce", "x", str(fanout + 1)]
    else:
        # sgc-cluster keeps the rank logs of a failed run: in our own
        # directory, so that they are copied to results/logs or removed.
        a.rank_logs = tempfile.mkdtemp(prefix="sgc-bench-ranks.")
        cmd, env = build_cmd(a, cl, con, workload, mode, fanout, ops, warm, sample, timeout_s)
        rc, out, err, secs = run_cmd(cmd, timeout_s + 30, env)
    row["seconds"] = round(secs, 1)
    res = parse_result(out)
    if res:
        row.update(res)
        row["contender"] = con.name
    if rc is None:
        row["status"] = f"timeout after {timeout_s:.0f} s"
    elif rc == 77 or (con.accel == "ebpf" and res and res.get("accel") == "0"):
        why = "eBPF path not available"
        m = re.search(r"sgc_init_env: ([^:\n]*)", out + err)
        if m:
            why += " (" + m.group(1).strip()[:60] + ")"
        state["ebpf_missing"] = why
        row["status"] = "skipped: " + why
    elif con.accel == "ebpf" and not res and "sgc_init_env:" in out:
        # The eBPF path exists but does not start: say so once, with the
        # log, and do not spend the run on every other eBPF scenario.
        m = re.search(r"sgc_init_env: ([^\n]*)", out)
        why = m.group(1).strip()[:80] if m else "init failed"
        state["ebpf_missing"] = f"the eBPF path failed to start earlier ({why})"
        row["status"] = f"failed: eBPF path did not start: {why}"
    elif rc == 0 and res and res.get("verified") == "1":
        row["status"] = "ok"
        if con.kind == "sgc-resp" and int(res.get("worker_answers", "0") or 0) > ops:
            row["status"] = "ok (responder bypassed: worker processes answered)"
    else:
        row["status"] = "failed" + (f" (exit {rc})" if rc else "") + \
            ("" if res else ": no result line")
    if not row["status"].startswith(("ok", "skipped")):
        os.makedirs(os.path.join(a.out, "logs"), exist_ok=True)
        fn = os.path.join(a.out, "logs", f"{workload}-{mode}-{con.name}-F{fanout}-r{rep}.log")
        with open(fn, "w") as f:
            f.write("$ " + " ".join(cmd) + "\n--- stdout\n" + out + "\n--- stderr\n" + err)
            # rank 0's log and a few others, in full
            logs = sorted(os.listdir(a.rank_logs), key=lambda n: int(re.sub(r"\D", "", n) or 0)) \
                if a.rank_logs and os.path.isdir(a.rank_logs) else []
            for name in logs[:4]:
                with open(os.path.join(a.rank_logs, name), errors="replace") as g:
                    f.write(f"\n--- {name}\n" + g.read()[-20000:])
        row["status"] += f" [log: {os.path.relpath(fn, REPO)}]"
    if a.rank_logs:
        shutil.rmtree(a.rank_logs, ignore_errors=True)
        a.rank_logs = None
    return row


# ---------------------------------------------------------------------------
# Planning and the main loop
# ---------------------------------------------------------------------------


def selected(a):
    """(fanout, kind-phase, workload, contender, mode) of every run planned."""
    plan, dropped = [], {}
    for workload, cons, fanouts, modes in SCENARIOS:
        if a.workloads and workload not in a.workloads:
            continue
        for cname in cons:
            if a.contenders and cname not in a.contenders:
                continue
            con = C[cname]
            lim = limit_for(con, workload)
            for f in fanouts:
                if a.fanouts and f not in a.fanouts:
                    continue
                if lim and f > lim[0]:
                    dropped[(cname, workload)] = lim
                    continue
                for m in modes:
                    if a.modes and m not in a.modes:
                        continue
                    plan.append((f, con, workload, m))
    return plan, dropped


PHASE = {"base": 0, "sgc-resp": 0, "sgc": 1, "mpi": 2, "gloo": 2}


def estimate_s(a, plan):
    total = 0.0
    for f, con, wl, m in plan:
        ops, warm, _ = plan_ops(con, wl, m, f, a.target_s, a.quick)
        per = est_op_us(con, wl, f) / {"base": 1.5, "mpi": 3}.get(con.kind, 1) \
            if m == "tput" else est_op_us(con, wl, f)
        if con.kind == "gloo" and wl in ("ar1", "ar1m"):
            per *= 0.15
        if con.kind == "sgc" and wl in ("ar64k", "ar1m"):
            # Fitted to the committed run: many-datagram allreduces slow
            # down with fan-out faster than est_op_us says (retransmits).
            per *= max(2.0, f / 10)
        startup = {"base": 0.1, "sgc-resp": 0.3 + f / 200,
                   "sgc": 0.3 + f / 200 + (f / 64 if wl != "sg363" and f >= 512 else 0),
                   "mpi": 0.3 + f / 12, "gloo": 0.5 + f / 10}[con.kind]
        total += ((ops + warm) * per / 1e6 + startup) * a.repeats
    fans = sorted({p[0] for p in plan})
    total += sum(2 + min(f, HOSTS_MAX) / 50 for f in fans)
    return total


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(REPO, "build"),
                    help="CMake build directory (its bench/ holds the programs)")
    ap.add_argument("--out", help="results directory (default bench/results, "
                    "bench/results/quick with --quick)")
    ap.add_argument("--quick", action="store_true", help="fan-out 8, short runs, 2 repeats")
    ap.add_argument("--repeats", type=int, help="runs per scenario (default 3)")
    ap.add_argument("--target-s", type=float,
                    help="aim for runs of about this many seconds (default 4; "
                    "the thesis's 5000/8000 operations cap every run)")
    ap.add_argument("--fanouts", help="comma-separated subset, e.g. 8,32")
    ap.add_argument("--contenders", help="comma-separated subset of: " + ",".join(C))
    ap.add_argument("--workloads", help="comma-separated subset of: sg363,ar1,ar363,ar64k,ar1m")
    ap.add_argument("--modes", help="lat,tput")
    ap.add_argument("--small-queries", action="store_true",
                    help="unpadded queries (16/56 bytes): the responder then answers from "
                    "its TC program instead of XDP_TX")
    ap.add_argument("--topology", choices=("per-host", "one-host"), default="per-host",
                    help="per-host: one worker rank per worker host (up to 250 hosts); one-host: "
                         "every worker rank on one worker host, as on a multi-GPU machine")
    ap.add_argument("--list", action="store_true", help="print the plan and exit")
    a = ap.parse_args()

    a.build = os.path.join(os.path.abspath(a.build), "bench")
    a.rank_logs = None
    a.out = os.path.abspath(a.out or os.path.join(REPO, "bench", "results",
                                                   "quick" if a.quick else ""))
    a.repeats = a.repeats or (2 if a.quick else 3)
    a.target_s = a.target_s or (0.5 if a.quick else 4.0)
    split = (lambda s, conv=str: [conv(x) for x in s.split(",") if x])
    a.fanouts = split(a.fanouts, int) if a.fanouts else ([8] if a.quick else None)
    a.contenders = split(a.contenders) if a.contenders else None
    a.workloads = split(a.workloads) if a.workloads else \
        (["sg363", "ar1", "ar363"] if a.quick else None)
    a.modes = split(a.modes) if a.modes else None
    for c in a.contenders or []:
        if c not in C:
            ap.error(f"unknown contender {c}")

    plan, dropped = selected(a)
    est = estimate_s(a, plan)
    if a.list:
        log(f"{len(plan)} scenarios x {a.repeats} repeats, estimated {est / 60:.0f} min")
        for f, con, wl, m in plan:
            ops, warm, sample = plan_ops(con, wl, m, f, a.target_s, a.quick)
            log(f"  F={f:<5} {wl:<6} {m:<5} {con.name:<22} ops={ops} warmup={warm}")
        for (cname, wl), (fmax, why) in sorted(dropped.items()):
            log(f"  stops at fan-out {fmax}: {cname} {wl}: {why}")
        return 0
    if os.geteuid() != 0:
        log("run.py: needs root (network namespaces); run it as root")
        return 1
    if not plan:
        log("run.py: nothing selected")
        return 1
    for prog in ("sgc-responder", "sgc_bench", "base_mmsg"):
        if not os.access(os.path.join(a.build, prog), os.X_OK):
            log(f"run.py: {a.build}/{prog} missing: build first (make build, or cmake --build)")
            return 1

    os.makedirs(a.out, exist_ok=True)
    shutil.rmtree(os.path.join(a.out, "logs"), ignore_errors=True)
    started = time.time()
    a.load_start = loadavg()
    log(f"run.py: {len(plan)} scenarios x {a.repeats} repeats on {platform.node()}, "
        f"estimated {est / 60:.0f} min; results in {os.path.relpath(a.out, os.getcwd())}")

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    rows, state, done = [], {}, 0
    total = len(plan) * a.repeats
    by_f = {}
    for p in plan:
        by_f.setdefault(p[0], []).append(p)
    cl = None
    interrupted = False
    try:
        for f in sorted(by_f):
            cl = Cluster(f"sgcb{os.getpid() % 100000}f{f}",
                         1 if a.topology == "one-host" else min(f, HOSTS_MAX))
            log(f"== fan-out {f}: cluster {cl.name}, {cl.hosts} worker hosts, mtu {MTU}")
            runs = sorted(by_f[f], key=lambda p: PHASE[p[1].kind])
            try:
                cl.up()
            except (RuntimeError, subprocess.SubprocessError) as e:
                log(f"   cannot bring the cluster up: {e}")
                runs = []
                for (_, con, wl, m) in by_f[f]:
                    for rep in range(1, a.repeats + 1):
                        rows.append({"workload": wl, "mode": m, "contender": con.name,
                                     "fanout": f, "rep": rep, "ops": "", "seconds": 0,
                                     "status": f"failed: cluster: {e}"})
                        done += 1
            for phase in (0, 1, 2):
                pending = [p for p in runs if PHASE[p[1].kind] == phase]
                if not pending:
                    continue
                # The responder contributes to one allreduce size at a
                # time: a group per allreduce workload, with the
                # responder's (window, count), scatter-gather with the first.
                groups = [(None, pending)]
                if phase == 0:
                    ar_wls = sorted({p[2] for p in pending if p[2] in AR_COUNT})
                    groups = [((window_for(f), AR_COUNT[w]),
                               [p for p in pending if p[2] == w or
                                (p[2] not in AR_COUNT and i == 0)])
                              for i, w in enumerate(ar_wls)] or groups
                for ar, group in groups:
                    why = None
                    if phase == 0:
                        try:
                            cl.start_responder(a.build, f, 24 * 3600, ar)
                            log(f"   XDP responder attached to {cl.hosts} hosts" +
                                (f" (allreduce window {ar[0]}, {ar[1]} x int32)" if ar else ""))
                        except RuntimeError as e:
                            why = f"failed: {e}"
                            log(f"   {why}")
                    for rep in range(1, a.repeats + 1):
                        for (_, con, wl, m) in group:
                            if why:
                                row = {"workload": wl, "mode": m, "contender": con.name,
                                       "fanout": f, "rep": rep, "ops": "", "seconds": 0,
                                       "status": why}
                            else:
                                row = one_run(a, cl, con, wl, m, f, rep, state)
                            rows.append(row)
                            done += 1
                            log(progress_line(row, done, total, started))
                    if phase == 0 and not why:
                        counters = cl.stop_responder().strip()
                        for line in counters.splitlines():
                            log("   " + line)
            cl.down()
            cl = None
            write_all(a, rows, dropped, started, partial=True)
    except KeyboardInterrupt as e:
        interrupted = True
        log(f"run.py: interrupted ({e or 'SIGINT'}); cleaning up and writing what was measured")
    finally:
        for p in list(RUNNING):
            kill_tree(p, grace=2)
        if cl:
            cl.down()
        if a.rank_logs:
            shutil.rmtree(a.rank_logs, ignore_errors=True)
    write_all(a, rows, dropped, started, partial=interrupted)
    log(f"run.py: done in {(time.time() - started) / 60:.1f} min: "
        f"{sum(r['status'] == 'ok' for r in rows)} ok, "
        f"{sum(r['status'].startswith('skipped') for r in rows)} skipped, "
        f"{sum(not r['status'].startswith(('ok', 'skipped')) for r in rows)} failed; "
        f"see {os.path.relpath(os.path.join(a.out, 'results.md'), os.getcwd())}")
    return 130 if interrupted else 0


def fmt(v, unit=""):
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "-"
    if x >= 100:
        return f"{x:.0f}{unit}"
    return f"{x:.1f}{unit}" if x >= 10 else f"{x:.2f}{unit}"


def progress_line(row, done, total, started):
    el = time.time() - started
    head = f"[{done}/{total} {el / 60:4.1f} min] F={row['fanout']:<4} {row['workload']:<6} " \
           f"{row['mode']:<4} {row['contender']:<22} rep {row['rep']}: "
    if row["status"].startswith("ok"):
        if row["mode"] == "lat":
            what = f"p50 {fmt(row.get('p50_us'))} us p99 {fmt(row.get('p99_us'))} us"
        else:
            what = f"{fmt(row.get('tput_ops'))} ops/s"
        what += f", cpu {fmt(row.get('cpu_us_per_op'))} us/op, retx {row.get('retx', 0)}"
        if row["status"] != "ok":
            what += " " + row["status"]
        return head + what + f" ({row['seconds']} s)"
    return head + row["status"] + f" ({row['seconds']} s)"


# ---------------------------------------------------------------------------
# Output: CSV, markdown, plots
# ---------------------------------------------------------------------------

RUN_FIELDS = ["workload", "mode", "contender", "fanout", "rep", "status", "ops", "window",
              "p50_us", "p99_us", "mean_us", "min_us", "max_us", "tput_ops", "tput_med",
              "cpu_us_per_op", "retx", "lost", "dup", "verified", "seconds"]
SUM_FIELDS = ["workload", "mode", "contender", "fanout", "runs_ok", "runs", "ops", "window",
              "p50_us", "p50_min", "p50_max", "p99_us", "tput_ops", "tput_min", "tput_max",
              "cpu_us_per_op", "retx", "lost", "status"]


def loadavg(stamp=False):
    """The 1, 5 and 15 minute load averages ("" if unreadable); with stamp,
    the time of day after them, as " (HH:MM UTC)"."""
    try:
        with open("/proc/loadavg") as fh:
            la = " ".join(fh.read().split()[:3])
    except OSError:
        return ""
    return la + time.strftime(" (%H:%M UTC)", time.gmtime()) if stamp else la


def machine_info():
    def sh(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10,
                                  shell=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    mem = sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    pkgs = {}
    for p in ("libopenmpi-dev", "libgloo-dev", "liburing-dev", "libbpf-dev", "clang"):
        pkgs[p] = sh(f"dpkg-query -W -f='${{Version}}' {p} 2>/dev/null")
    rev = sh(f"git -C {REPO} rev-parse --short HEAD")
    # The results being written are not a change to what is measured.
    dirty = sh(f"git -C {REPO} status --porcelain -- libsgcoll bpf bench tools "
               f"':!bench/results' | head -1")
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": platform.node(), "kernel": platform.release(), "cpu": cpu,
        "cpus": os.cpu_count(), "memory": mem,
        "debian": sh("cat /etc/debian_version"),
        "git": rev + ("-dirty" if dirty else ""), "packages": pkgs,
        "mtu": MTU, "hosts_max": HOSTS_MAX, "mpirun_flags": " ".join(MPI_FLAGS),
    }


def summarize(rows):
    groups = {}
    for r in rows:
        groups.setdefault((r["workload"], r["mode"], r["contender"], int(r["fanout"])),
                          []).append(r)
    out = []
    for (wl, m, cname, f), rs in sorted(groups.items(),
                                         key=lambda kv: (kv[0][0], kv[0][1], kv[0][2],
                                                         kv[0][3])):
        ok = [r for r in rs if r["status"].startswith("ok")]
        s = {"workload": wl, "mode": m, "contender": cname, "fanout": f, "runs_ok": len(ok),
             "runs": len(rs), "ops": rs[0].get("ops", ""), "window": rs[0].get("window", "")}

        def col(k):
            v = []
            for r in ok:
                try:
                    v.append(float(r.get(k)))
                except (TypeError, ValueError):
                    pass
            return v
        if ok:
            p50, p99, tp, cpu = col("p50_us"), col("p99_us"), col("tput_ops"), col("cpu_us_per_op")
            if m == "lat" and p50:
                s.update(p50_us=statistics.median(p50), p50_min=min(p50), p50_max=max(p50),
                         p99_us=statistics.median(p99) if p99 else "")
            if m == "tput" and tp:
                s.update(tput_ops=statistics.median(tp), tput_min=min(tp), tput_max=max(tp))
            if cpu:
                s["cpu_us_per_op"] = statistics.median(cpu)
            s["retx"] = int(sum(col("retx")))
            s["lost"] = int(sum(col("lost")))
            s["status"] = "ok" if len(ok) == len(rs) else f"{len(rs) - len(ok)} run(s) not ok"
        else:
            s["status"] = rs[0]["status"]
        out.append(s)
    return out


def write_csv(path, fields, rows, meta, tool="bench/run.py", note=""):
    """@rows as CSV under a comment line saying which @tool ran where."""
    with open(path, "w", newline="") as fh:
        fh.write(f"# libsgcoll {tool} {meta['date']} host {meta['host']} kernel "
                 f"{meta['kernel']} cpu {meta['cpu']} x{meta['cpus']} mem {meta['memory']} "
                 f"git {meta['git']}{note}\n")
        w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)


def write_all(a, rows, dropped, started, partial):
    meta = machine_info()
    meta["minutes"] = round((time.time() - started) / 60, 1)
    meta["repeats"] = a.repeats
    meta["partial"] = partial
    meta["load_start"], meta["load_end"] = getattr(a, "load_start", ""), loadavg()
    summ = summarize(rows)
    a.rows = rows
    write_csv(os.path.join(a.out, "runs.csv"), RUN_FIELDS, rows, meta)
    write_csv(os.path.join(a.out, "summary.csv"), SUM_FIELDS, summ, meta)
    with open(os.path.join(a.out, "machine.json"), "w") as fh:
        json.dump(meta, fh, indent=2)
        fh.write("\n")
    plots = make_plots(a, summ)
    write_md(a, summ, dropped, meta, plots)


def table(summ, wl, mode, key, lo, hi, unit_fmt):
    rows = [s for s in summ if s["workload"] == wl and s["mode"] == mode]
    if not rows:
        return []
    fans = sorted({s["fanout"] for s in rows})
    cons = []
    for s in rows:
        if s["contender"] not in cons:
            cons.append(s["contender"])
    cons.sort(key=lambda c: list(C).index(c) if c in C else 99)
    lines = ["| contender | " + " | ".join(f"F={f}" for f in fans) + " |",
             "|---|" + "---|" * len(fans)]
    for c in cons:
        if all(x["status"].startswith("skipped") for x in rows if x["contender"] == c):
            continue  # listed under "Skipped"
        cells = []
        for f in fans:
            s = next((x for x in rows if x["contender"] == c and x["fanout"] == f), None)
            if not s:
                cells.append("")
            elif s.get(key) in (None, ""):
                st = s["status"]
                cells.append("skipped" if st.startswith("skipped") else
                             "failed" if not st.startswith("ok") else "-")
            else:
                cell = unit_fmt(s[key])
                if lo and s.get(lo) not in (None, "") and s["runs_ok"] > 1:
                    cell += f" ({unit_fmt(s[lo])}–{unit_fmt(s[hi])})"
                if s["runs_ok"] < s["runs"]:
                    cell += f" [{s['runs_ok']}/{s['runs']} ok]"
                cells.append(cell)
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return lines


WL_TITLE = {
    "sg363": "Scatter-gather, 363 x int32 per answer, WaitAll (the thesis's workload)",
    "ar1": "Allreduce, 1 x int32", "ar363": "Allreduce, 363 x int32",
    "ar64k": "Allreduce, 64 KiB (16384 x int32)", "ar1m": "Allreduce, 1 MiB (262144 x int32)",
}


def md_failed(rows, describe):
    """results.md lines listing the runs of @rows that failed, each named by
    @describe(row)."""
    failed = [r for r in rows if not r["status"].startswith(("ok", "skipped"))]
    if not failed:
        return []
    return ["## Failed runs (not counted)", ""] + \
        [f"- {describe(r)}: {r['status']}" for r in failed] + [""]


def md_skipped(rows):
    """results.md lines naming each contender @rows say was skipped, and why."""
    skipped = sorted({(r["contender"], r["status"]) for r in rows
                      if r["status"].startswith("skipped")})
    if not skipped:
        return []
    return ["## Skipped", ""] + [f"- {c}: {st[9:]}" for c, st in skipped] + [""]


def write_md(a, summ, dropped, meta, plots):
    L = [f"# libsgcoll benchmarks{' (quick, not final)' if a.quick else ''}", "",
         f"{meta['date']}: {meta['cpu']}, {meta['cpus']} CPUs, {meta['memory']}, "
         f"kernel {meta['kernel']}, Debian {meta['debian']}, git {meta['git']}, "
         f"{meta['repeats']} repeat(s), {meta['minutes']} min; load average "
         f"{meta['load_start']} at the start, {meta['load_end']} at the end"
         f"{', INTERRUPTED: partial results' if meta['partial'] else ''}.", "",
         "Produced by `bench/run.py` (`make bench`); every figure is the median over the "
         "repeats with the min–max range in parentheses; runs that did not verify their "
         "results are not counted (see runs.csv for every run).", ""]
    for wl in ("sg363", "ar1", "ar363", "ar64k", "ar1m"):
        if not any(s["workload"] == wl for s in summ):
            continue
        L += [f"## {WL_TITLE[wl]}", ""]
        lat = table(summ, wl, "lat", "p50_us", "p50_min", "p50_max", fmt)
        if lat:
            L += ["Latency p50, µs (one operation at a time):", ""] + lat + [""]
        p99 = table(summ, wl, "lat", "p99_us", None, None, fmt)
        if p99:
            L += ["Latency p99, µs:", ""] + p99 + [""]
        tp = table(summ, wl, "tput", "tput_ops", "tput_min", "tput_max", fmt)
        if tp:
            L += ["Throughput under load, operations/s:", ""] + tp + [""]
        cpu = table(summ, wl, "tput", "cpu_us_per_op", None, None, fmt)
        if cpu:
            L += ["Coordinator (rank 0) CPU time per operation under load, µs:", ""] + cpu + [""]
        for p in plots.get(wl, []):
            L += [f"![{p}]({p})", ""]
    L += ["## Method", "",
          f"- Topology {a.topology}: `tools/sgc-cluster`, coordinator namespace + "
          + ("1 worker namespace carrying every worker rank" if a.topology == "one-host"
             else f"min(F, {HOSTS_MAX}) worker namespaces")
          + f" on veth pairs through a Linux bridge, MTU {MTU} (the smallest at which "
          "libsgcoll's 48-byte header and 363 x int32 fit one datagram, so every contender "
          "sends one datagram per answer); rank r on host ((r-1) mod H)+1, port 7000+r "
          "(libsgcoll) or 20000+r (baselines).",
          "- Coordinator-bound runs (`+xdp`, `base_*`): `bench/sgc-responder` answers every "
          "query in the worker hosts' kernel (native XDP, XDP_TX; a tcx program answers what "
          "XDP cannot grow, e.g. libsgcoll's 48-byte PULLs of the second and later chunks); "
          "worker processes of libsgcoll only join the job. Queries are "
          "padded to the answer's size" + (" (off in this run: --small-queries)"
                                           if a.small_queries else "") +
          ": native XDP on veth cannot grow a small frame into a 1.5 KB answer.",
          "- Everything runs on the same 2 CPUs: softirq work (veth, bridge, the responder) "
          "is often charged to the coordinator's process, so its CPU time per operation "
          "includes part of the network's; it is comparable between contenders, not an "
          "absolute cost.",
          "- Latency: one operation at a time; allreduce iterations start after a barrier and "
          "take the maximum over ranks. Throughput: operations in flight "
          "(window min(16, 4096/F), a new one per completion; libsgcoll's scatter-gather and "
          "Gloo are blocking, so window 1), rate over the measured part.",
          "- Operations per run: the thesis's 5000 (latency) / 8000 (throughput), fewer "
          f"where a run would exceed about {a.target_s:g} s (column ops in summary.csv); "
          "warm-up 10% (at most 200) first.",
          f"- Open MPI {meta['packages'].get('libopenmpi-dev', '')}: `mpirun "
          f"{meta['mpirun_flags']} -np F+1` in the coordinator's namespace, tcp over "
          "loopback.",
          f"- Gloo {meta['packages'].get('libgloo-dev', '')}: tcp transport on 127.0.0.1, "
          "`FileStore` rendezvous in a fresh directory, default allreduce algorithm, "
          "F+1 processes in the coordinator's namespace. With more ranks than CPUs its "
          "times are scheduler ticks, flat in size, not Gloo's communication: its event "
          "loop spins while a rank's other thread holds the lock it needs "
          "(`bench/results/gloo-2026-12-05/NOTE.md`); use them for no ratio.",
          "- Baselines (`bench/base_*.c`): written fresh; every answer checked (request id, "
          "rank against source address, length), sums verified, silent ranks asked again "
          "after an RTO of max(4 ms, 2 x smoothed latency), doubled per retry.", ""]
    if dropped:
        L += ["## Where rows stop", ""]
        for (cname, wl), (fmax, why) in sorted(dropped.items()):
            L.append(f"- {cname}, {wl}: up to fan-out {fmax}: {why}.")
        L.append("")
    L += md_failed(a.rows, lambda r: f"F={r['fanout']} {r['workload']} {r['mode']} "
                   f"{r['contender']} rep {r['rep']}")
    L += md_skipped(summ)
    with open(os.path.join(a.out, "results.md"), "w") as fh:
        fh.write("\n".join(L))


def gnuplot_lines(png, title, xlabel, ylabel, series, settings=()):
    """Draw @series, [(name, [(x, y, y_low, y_high), ...]), ...], as lines
    with error bars into the PNG file @png; @settings: more gnuplot lines
    (axes, ranges).  Returns whether gnuplot drew it (it says why not)."""
    tmp = tempfile.mkdtemp(prefix="sgc-bench-plot.")
    try:
        files = []
        for i, (name, pts) in enumerate(series):
            fn = os.path.join(tmp, f"{i}.dat")
            with open(fn, "w") as fh:
                fh.writelines(" ".join(f"{v:g}" for v in pt) + "\n" for pt in pts)
            files.append((name, fn))
        plot = ", ".join(f"'{fn}' using 1:2:3:4 with yerrorlines title '{name}' lw 2"
                         for name, fn in files)
        script = "\n".join([
            "set terminal pngcairo noenhanced size 1100,700 font ',10'",
            f"set output '{png}'", f"set title \"{title}\"", f"set xlabel '{xlabel}'",
            f"set ylabel '{ylabel}'", *settings, "set grid", "set key outside right top",
            f"plot {plot}", ""])
        r = subprocess.run(["gnuplot"], input=script, text=True, capture_output=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if r.returncode:
        log(f"gnuplot failed for {os.path.basename(png)}: {r.stderr.strip()[:200]}")
    return r.returncode == 0


def make_plots(a, summ):
    """PNG plots with gnuplot: p50 latency, throughput, CPU per operation
    against fan-out, one line per contender, min-max error bars."""
    if not shutil.which("gnuplot"):
        log("run.py: gnuplot not found (apt-get install gnuplot-nox): no plots")
        return {}
    plots = {}
    for wl in ("sg363", "ar1", "ar363", "ar64k", "ar1m"):
        for kind, mode, key, lo, hi, ylabel in (
                ("lat", "lat", "p50_us", "p50_min", "p50_max", "p50 latency (us)"),
                ("tput", "tput", "tput_ops", "tput_min", "tput_max", "operations/s"),
                ("cpu", "tput", "cpu_us_per_op", None, None,
                 "coordinator CPU per operation (us)")):
            rows = [s for s in summ if s["workload"] == wl and s["mode"] == mode and
                    s.get(key) not in (None, "")]
            if not rows:
                continue
            series = [(c, sorted((s["fanout"], s[key], s.get(lo) or s[key], s.get(hi) or s[key])
                                 for s in rows if s["contender"] == c)) for c in C]
            fans = sorted({s["fanout"] for s in rows})
            png = f"{kind}_{wl}.png"
            if gnuplot_lines(os.path.join(a.out, png), f"{WL_TITLE[wl]}: {ylabel}",
                             "fan-out (workers)", ylabel, [x for x in series if x[1]],
                             ["set logscale x 2", "set logscale y",
                              "set xtics (" + ", ".join(str(f) for f in fans) + ")",
                              f"set xrange [{min(fans) / 1.3}:{max(fans) * 1.3}]"]):
                plots.setdefault(wl, []).append(png)
    return plots

if __name__ == "__main__":
    sys.exit(main())
