#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""bench/loss.py - allreduce under injected packet loss: libsgcoll's two
paths beside Open MPI tcp, in one run, on one topology (issue 17's targets).

For each rank count it brings up a virtual cluster (tools/sgc-cluster) and,
for every repeat, workload and loss rate, runs each contender once in
latency mode (one allreduce at a time, p50 and p99 of the maximum over
ranks) while tools/sgc-faultinj drops packets at that rate:

  sgc-off, sgc-ebpf, sgc-auto  sgc_bench on every rank (SGC_ACCEL=off / ebpf / auto, and
                     SGC_GSO=0: the injector must see datagrams, not GSO
                     bursts).  One injector per worker host, on the switch
                     side of its link, both directions, UDP only: every
                     datagram between the coordinator and a worker passes
                     it once.
  openmpi-tcp        bench/mpi_allreduce under mpirun in the coordinator's
                     namespace, tcp over lo (run.py's flags).  The injector
                     sits on that lo, TCP only, on ingress: a packet crosses
                     lo's ingress once, and a drop there is silent like one
                     on a wire (a drop at egress returns an error to the
                     sending TCP, which sends again at once: at 1% loss,
                     488 drops gave 36 retransmissions, against 250 and 224
                     on ingress).  lo gets the cluster's MTU and one
                     segment per skb, so that a "packet" is a wire-sized
                     one, as for libsgcoll (otherwise a 64 KiB message is
                     one or two packets), and RPS, which keeps a flow's
                     packets in order (lo_like_wire()).

An injector runs in every run, at rate 0 too, so the runs of a table
differ in the rate only.  Its counters are recorded per run; a run at a
rate above 0 whose injector dropped nothing is failed (the injection did
not work), and so is one whose injector saw no packet at all.  Every
program checks every result; a run that did not verify is failed too.

Runs end on time: the programs stop measuring after --max-s seconds once
--min-ops operations are measured (their --max-s option), or after
--max-ops operations.  The load average is read at the start and the end
of every run.

Output (--out, default bench/results/loss): results.md (a table per rank
count and workload, the ratios issue 17 sets targets on, injector counters
and resends), runs.csv (every run), machine.json, logs/ (failed runs).

Usage (root: network namespaces and BPF):
  bench/loss.py                 the whole matrix (make bench-loss)
  bench/loss.py --list          the plan and its time estimate
  bench/loss.py --ranks 17 --workloads ar363 --losses 0,0.01 --max-s 3
"""

import argparse
import json
import math
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import run  # noqa: E402  bench/run.py: the cluster, commands, result lines

CONTENDERS = {
    "sgc-off": ("sgc", "off", "libsgcoll, user-space path (SGC_ACCEL=off)"),
    "sgc-ebpf": ("sgc", "ebpf", "libsgcoll, eBPF path (SGC_ACCEL=ebpf, default delivery)"),
    "sgc-auto": ("sgc", "auto", "libsgcoll, the default (SGC_ACCEL=auto: allreduce on the user-space "
                 "path, the eBPF programs loaded)"),
    "openmpi-tcp": ("mpi", None, "MPI_Allreduce, ob1 + tcp over lo"),
}
WORKLOADS = {"ar363": "allreduce of 363 x int32", "ar64k": "allreduce of 64 KiB (16384 x int32)"}
DEFAULTS = {"ranks": "17,65", "workloads": "ar363,ar64k", "losses": "0,0.001,0.01,0.1",
            "contenders": "sgc-off,sgc-ebpf,openmpi-tcp"}
SGC_BODY = run.MTU - 28 - 48  # libsgcoll's payload per datagram at the cluster MTU

# ---------------------------------------------------------------------------
# Planning: only the warm-up, the timeouts and the printed estimate depend
# on these guesses; the programs stop on time by themselves.
# ---------------------------------------------------------------------------


def est_op_s(kind, workload, ranks, loss):
    """Rough seconds per iteration (the barrier and the allreduce)."""
    f = ranks - 1
    base = run.est_op_us(run.C["sgc-user" if kind == "sgc" else "openmpi-tcp"], workload, f)
    base = 2 * base / 1e6
    chunks = math.ceil({"ar363": 363 * 4, "ar64k": 65536}[workload] / SGC_BODY)
    # packets per iteration: contributions, results and the barrier's;
    # TCP adds its ACKs and Open MPI's algorithms more hops (2.5 x, as
    # counted by the injectors)
    pkts = 2 * f * (chunks + 1) * (1 if kind == "sgc" else 2.5)
    # Drops of one iteration are mostly recovered together, so the time
    # lost grows with the log of their number; the factor was fitted to
    # short runs here (17 and 65 ranks, 1% and 10% loss, 2 busy CPUs).
    k = 0.004 + (0.41 * loss if kind == "sgc" else 80 * loss * loss)
    return base + k * math.log1p(loss * pkts)


def startup_s(kind, ranks, loss):
    if kind == "sgc":
        return 0.5 + ranks / 100 + 10 * loss
    # mpirun's wire-up runs under loss too: 20-40 s at 65 ranks and 10%
    return 0.5 + ranks / 12 + 4 * loss * ranks


def plan_run(a, kind, workload, ranks, loss):
    """Warm-up, expected seconds and timeout of one run."""
    est = est_op_s(kind, workload, ranks, loss)
    warm = max(3, min(50, int(1.0 / est)))
    measured = min(a.max_ops * est, max(a.max_s, a.min_ops * est))
    expect = startup_s(kind, ranks, loss) + (warm + 1) * est + measured + 1
    timeout = 60 + startup_s(kind, ranks, loss) * 3 + (warm + 1) * est * 5 + \
        max(a.max_s, a.min_ops * est * 5)
    return warm, expect, timeout


def plan(a):
    """Every run, in order: rank counts outermost (one cluster each), then
    repeats, workloads, loss rates and contenders, so that slow drifts of
    the machine hit every contender and rate alike."""
    runs = []
    for ranks in a.ranks:
        for rep in range(1, a.repeats + 1):
            for wl in a.workloads:
                for loss in a.losses:
                    for cname in a.contenders:
                        runs.append((ranks, rep, wl, loss, cname))
    return runs


def hosts_for(a, ranks):
    return 1 if a.topology == "one-host" else min(ranks - 1, run.HOSTS_MAX)


# ---------------------------------------------------------------------------
# Fault injectors
# ---------------------------------------------------------------------------

FI_LINE = re.compile(r"^faultinj: (.*)$", re.M)


class Injectors:
    """sgc-faultinj processes, one per device, started before a run and
    stopped after it; stop() returns their counters, summed."""

    def __init__(self, cluster, fi, where, args):
        self.cmds = [[run.CLUSTER, "exec", cluster, ns, "--", fi, "--dev", dev] + args
                     for ns, dev in where]
        self.procs, self.outs = [], []

    def start(self, timeout=60):
        """Returns once every injector has printed "attached"."""
        for cmd in self.cmds:
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 bufsize=0, start_new_session=True)
            self.procs.append(p)
            run.RUNNING.append(p)
            self.outs.append("")
        waiting, deadline = set(range(len(self.procs))), time.time() + timeout
        while waiting and time.time() < deadline:
            fds = {self.procs[i].stdout.fileno(): i for i in waiting}
            ready, _, _ = select.select(list(fds), [], [], 1.0)
            for fd in ready:
                i = fds[fd]
                data = os.read(fd, 4096).decode(errors="replace")
                self.outs[i] += data
                if re.search(r"^attached$", self.outs[i], re.M):
                    waiting.discard(i)
                elif not data:  # exited before attaching
                    raise RuntimeError("sgc-faultinj did not attach: " +
                                       self.outs[i].strip()[-300:])
        if waiting:
            raise RuntimeError(f"{len(waiting)} sgc-faultinj did not attach within {timeout} s")

    def stop(self):
        total = {}
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for i, p in enumerate(self.procs):
            try:
                out, _ = p.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                run.kill_tree(p, grace=1)
                out = ""
            if p in run.RUNNING:
                run.RUNNING.remove(p)
            self.outs[i] += (out or b"").decode(errors="replace")
            m = FI_LINE.search(self.outs[i])
            if not m:
                total["missing"] = total.get("missing", 0) + 1
                continue
            for tok in m.group(1).split():
                k, _, v = tok.partition("=")
                total[k] = total.get(k, 0) + int(v)
        self.procs = []
        return total


def injectors_for(a, cl, kind, loss):
    if kind == "sgc":
        where = [("sw", f"w{h}") for h in range(1, cl.hosts + 1)]
        args = ["--dir", "both", "--proto", "udp", "--loss", str(loss)]
    else:
        where = [("c", "lo")]
        args = ["--dir", a.mpi_dir, "--proto", "tcp", "--loss", str(loss)]
    return Injectors(cl.name, a.faultinj, where, args)


def tcp_counters(cl):
    """OutSegs and RetransSegs of the coordinator's namespace (every
    Open MPI rank runs there)."""
    r = subprocess.run([run.CLUSTER, "exec", cl.name, "c", "--", "cat", "/proc/net/snmp"],
                       capture_output=True, text=True, timeout=30)
    rows = [line.split()[1:] for line in r.stdout.splitlines() if line.startswith("Tcp:")]
    if len(rows) != 2:
        return {}
    d = dict(zip(rows[0], rows[1]))
    return {"out": int(d.get("OutSegs", 0)), "retrans": int(d.get("RetransSegs", 0))}


def cpu_mask():
    """Every CPU, in the format of rps_cpus (32-bit hex words, commas)."""
    n = os.cpu_count() or 1
    words = []
    while n > 0:
        words.insert(0, f"{(1 << min(n, 32)) - 1:08x}")
        n -= 32
    return ",".join(words)


def lo_like_wire(cl):
    """The coordinator's lo made to carry TCP as a wire would: the cluster's
    MTU and one segment per skb, so that TCP hands it (and the injector)
    wire-sized packets; and RPS over every CPU, so that a flow's packets
    reach one CPU's backlog in order.  Without RPS, ranks moving between
    CPUs put consecutive segments on different backlogs, and the reordering
    made Open MPI retransmit 722 segments in about 600 allreduces (17
    ranks, no loss), against 24 with it."""
    ns = f"{cl.name}-c"
    for cmd in (["ip", "-n", ns, "link", "set", "lo", "mtu", str(run.MTU), "gso_max_segs", "1"],
                ["ip", "netns", "exec", ns, "sh", "-c",
                 f"echo {cpu_mask()} > /sys/class/net/lo/queues/rx-0/rps_cpus"]):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if r.returncode:
            raise RuntimeError("cannot set up the coordinator's lo: " + r.stderr.strip())


# ---------------------------------------------------------------------------
# One run
# ---------------------------------------------------------------------------




def others_running():
    """Processes running or runnable besides this one (the median of five
    looks at /proc/loadavg, 0.1 s apart).  Taken before a run, when none of
    ours is left, it tells whether something else keeps the CPUs busy; the
    load average cannot, as it still holds the previous run."""
    seen = []
    for _ in range(5):
        try:
            with open("/proc/loadavg") as fh:
                seen.append(int(fh.read().split()[3].split("/")[0]) - 1)
        except (OSError, ValueError, IndexError):
            return ""
        time.sleep(0.1)
    return statistics.median(seen)


def wait_quiet(a):
    """Waits while --pause-while's file exists (a shared machine's way of
    asking for quiet), at most --pause-max seconds."""
    if not a.pause_while:
        return
    t0 = time.time()
    while os.path.exists(a.pause_while):
        if time.time() - t0 > a.pause_max:
            raise RuntimeError(f"{a.pause_while} still there after {a.pause_max} s")
        time.sleep(5)


def build_cmd(a, cl, cname, wl, ranks, warm, timeout):
    kind, accel, _ = CONTENDERS[cname]
    common = ["--workload", wl, "--mode", "lat", "--ops", str(a.max_ops), "--warmup", str(warm),
              "--max-s", str(a.max_s), "--min-ops", str(a.min_ops), "--name", cname]
    if kind == "sgc":
        return [run.CLUSTER, "run", cl.name, "--ranks", str(ranks), "--accel", accel,
                "--timeout-ms", "30000", "--deadline", str(int(timeout)),
                "--logdir", a.rank_logs, "--env", "SGC_GSO=0"] + \
            [x for kv in a.env for x in ("--env", kv)] + \
            ["--", os.path.join(a.build, "sgc_bench")] + common
    return ["ip", "netns", "exec", f"{cl.name}-c", "mpirun"] + run.MPI_FLAGS + \
        ["-np", str(ranks), os.path.join(a.build, "mpi_allreduce")] + common


def one_run(a, cl, ranks, rep, wl, loss, cname, state):
    kind, accel, _ = CONTENDERS[cname]
    warm, _, timeout = plan_run(a, kind, wl, ranks, loss)
    row = {"ranks": ranks, "topology": a.topology, "hosts": cl.hosts, "workload": wl,
           "loss": loss, "contender": cname, "rep": rep, "warmup": warm, "status": "",
           "seconds": 0}
    if accel == "ebpf" and state.get("ebpf_missing"):
        row["status"] = "skipped: " + state["ebpf_missing"]
        return row
    wait_quiet(a)
    row["started"] = time.strftime("%H:%M:%S")
    row["others"] = others_running()
    row["load_start"] = run.loadavg()
    a.rank_logs = tempfile.mkdtemp(prefix="sgc-loss-ranks.")
    cmd = build_cmd(a, cl, cname, wl, ranks, warm, timeout)
    inj = injectors_for(a, cl, kind, loss)
    out = err = ""
    rc, secs, counters, tcp0 = None, 0.0, {}, {}
    try:
        inj.start()
        if kind == "mpi":
            tcp0 = tcp_counters(cl)
        rc, out, err, secs = run.run_cmd(cmd, timeout + 30)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        err += f"\n{e}"
        row["status"] = f"failed: {e}"
    finally:
        counters = inj.stop()
    row["load_end"] = run.loadavg()
    row["seconds"] = round(secs, 1)
    res = run.parse_result(out)
    if res:
        keys = ["ops", "p50_us", "p99_us", "mean_us", "max_us", "verified"]
        if kind == "sgc":  # mpi_allreduce prints these as 0
            keys += ["retx", "lost", "sent", "accel"]
        for k in keys:
            if k in res:
                row[k] = res[k]
    if kind == "mpi" and tcp0:
        tcp1 = tcp_counters(cl)
        if tcp1:
            row["tcp_out"] = tcp1["out"] - tcp0["out"]
            row["tcp_retrans"] = tcp1["retrans"] - tcp0["retrans"]
    row["inj_passed"] = counters.get("passed", "")
    row["inj_dropped"] = counters.get("dropped", "")
    seen = counters.get("passed", 0) + counters.get("dropped", 0)
    if seen:
        row["inj_loss"] = round(counters["dropped"] / seen, 5)
    if res and res.get("sent") and int(res["sent"]):
        row["resend_ratio"] = round(int(res.get("retx", 0)) / int(res["sent"]), 5)

    if row["status"]:
        pass
    elif rc is None:
        row["status"] = f"timeout after {timeout + 30:.0f} s"
    elif rc == 77 or (accel == "ebpf" and res and res.get("accel") == "0"):
        m = re.search(r"sgc_init_env: ([^\n]*)", out + err)
        why = "eBPF path not available" + (f" ({m.group(1).strip()[:60]})" if m else "")
        state["ebpf_missing"] = why
        row["status"] = "skipped: " + why
    elif counters.get("missing"):
        row["status"] = f"failed: {counters['missing']} injector(s) printed no counters"
    elif not seen:
        row["status"] = "failed: the injector saw no packet (wrong device or protocol?)"
    elif loss > 0 and not counters.get("dropped"):
        row["status"] = "failed: the injector dropped nothing (the injection did not work)"
    elif rc == 0 and res and res.get("verified") == "1":
        row["status"] = "ok"
    elif rc and res and res.get("verified") == "1":
        # Seen with mpirun at 65 ranks and 10% loss: every operation done
        # and checked, then a rank lost in the teardown.
        row["status"] = f"ok (exit {rc} after a verified result)"
    else:
        row["status"] = "failed" + (f" (exit {rc})" if rc else "") + \
            ("" if res else ": no result line")
    if row["status"] != "ok" and not row["status"].startswith("skipped"):
        save_log(a, row, cmd, out, err, inj.outs)
    shutil.rmtree(a.rank_logs, ignore_errors=True)
    a.rank_logs = None
    return row


def save_log(a, row, cmd, out, err, fi_outs):
    os.makedirs(os.path.join(a.out, "logs"), exist_ok=True)
    fn = os.path.join(a.out, "logs", f"{row['ranks']}-{row['workload']}-{row['loss']}-"
                      f"{row['contender']}-r{row['rep']}.log")
    with open(fn, "w") as f:
        f.write("$ " + " ".join(cmd) + "\n--- stdout\n" + out + "\n--- stderr\n" + err)
        f.write("\n--- injectors\n" + "\n".join(o.strip() for o in fi_outs) + "\n")
        names = sorted(os.listdir(a.rank_logs), key=lambda n: int(re.sub(r"\D", "", n) or 0)) \
            if a.rank_logs and os.path.isdir(a.rank_logs) else []
        for name in names[:4]:
            with open(os.path.join(a.rank_logs, name), errors="replace") as g:
                f.write(f"\n--- {name}\n" + g.read()[-20000:])
    row["status"] += f" [log: logs/{os.path.basename(fn)}]"


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

RUN_FIELDS = ["ranks", "topology", "hosts", "workload", "loss", "contender", "accel", "rep",
              "status",
              "ops", "warmup", "p50_us", "p99_us", "mean_us", "max_us", "retx", "sent",
              "resend_ratio", "lost", "tcp_out", "tcp_retrans", "inj_passed", "inj_dropped",
              "inj_loss", "started", "others", "load_start", "load_end", "seconds"]


def fmt_t(us):
    """A latency in µs, ms or s, three significant figures at most."""
    try:
        x = float(us)
    except (TypeError, ValueError):
        return "-"
    for div, unit in ((1e6, "s"), (1e3, "ms"), (1, "µs")):
        if x >= div or unit == "µs":
            v = x / div
            return (f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}") + \
                f" {unit}"
    return "-"


def fmt_loss(p):
    return "no loss" if p == 0 else f"{p * 100:g}%"


def median_of(rows, key):
    v = []
    for r in rows:
        try:
            v.append(float(r.get(key)))
        except (TypeError, ValueError):
            pass
    return statistics.median(v) if v else None


def ok_rows(rows, **match):
    return [r for r in rows if r["status"].startswith("ok") and
            all(r[k] == v for k, v in match.items())]


def cell_of(rows, wl, ranks, loss, cname):
    """'p50 / p99' of the runs of one cell (medians over repeats)."""
    all_ = [r for r in rows if r["workload"] == wl and r["ranks"] == ranks and
            r["loss"] == loss and r["contender"] == cname]
    if not all_:
        return ""
    ok = [r for r in all_ if r["status"].startswith("ok")]
    if not ok:
        st = all_[0]["status"]
        return "skipped" if st.startswith("skipped") else "failed"
    s = f"{fmt_t(median_of(ok, 'p50_us'))} / {fmt_t(median_of(ok, 'p99_us'))}"
    if min(int(r.get("ops") or 0) for r in ok) < 100:
        s += " *"
    if len(ok) < len(all_):
        s += f" [{len(ok)}/{len(all_)} ok]"
    return s


def ratio(rows, wl, ranks, cname, key, loss):
    num = median_of(ok_rows(rows, workload=wl, ranks=ranks, contender=cname, loss=loss), key)
    den = median_of(ok_rows(rows, workload=wl, ranks=ranks, contender=cname, loss=0.0), key)
    if num is None or not den:
        return None
    return num / den


def write_all(a, rows, started, partial):
    meta = run.machine_info()
    meta.update(minutes=round((time.time() - started) / 60, 1), repeats=a.repeats,
                partial=partial, topology=a.topology, max_s=a.max_s, min_ops=a.min_ops,
                max_ops=a.max_ops, mpi_dir=a.mpi_dir, mpi_lo_native=a.lo_native,
                command=" ".join(sys.argv))
    run.write_csv(os.path.join(a.out, "runs.csv"), RUN_FIELDS, rows, meta, tool="bench/loss.py",
                  note=f" topology {a.topology}")
    with open(os.path.join(a.out, "machine.json"), "w") as fh:
        json.dump(meta, fh, indent=2)
        fh.write("\n")
    write_md(a, rows, meta)


def write_md(a, rows, meta):
    topo = ("one worker host carrying every worker rank (as issue 17 measured)"
            if a.topology == "one-host" else "one worker host per worker rank")
    L = ["# Allreduce under injected packet loss", "",
         f"{meta['date']}: {meta['cpu']}, {meta['cpus']} CPUs, {meta['memory']}, kernel "
         f"{meta['kernel']}, git {meta['git']}, {a.repeats} repeat(s), {meta['minutes']} min"
         f"{', INTERRUPTED: partial results' if meta['partial'] else ''}. "
         f"Topology: {a.topology}, {topo}.", "",
         "Produced by `bench/loss.py` (`make bench-loss`): `" + meta["command"] + "`. "
         "Latency of one allreduce at a time, the maximum over ranks per operation, "
         "p50 / p99; medians over repeats. `*`: fewer than 100 operations measured, so the "
         "p99 is their maximum. Runs that failed (did not verify, or whose injector dropped "
         "nothing) are not counted; runs.csv has every run.", ""]
    others = [float(r["others"]) for r in rows if r.get("others") not in (None, "")]
    if others and statistics.mean(others) > 0.5:
        L += [f"**The machine was busy**: before a run, with none of this benchmark's "
              f"processes left, {statistics.mean(others):.1f} other processes were running "
              f"or runnable on average (up to {max(others):g}) on {meta['cpus']} CPUs. "
              "They shared the CPUs with every rank, so these figures and ratios say "
              "little.", ""]
    for ranks in a.ranks:
        for wl in a.workloads:
            sel = [r for r in rows if r["ranks"] == ranks and r["workload"] == wl]
            if not sel:
                continue
            cons = [c for c in a.contenders if any(r["contender"] == c for r in sel)]
            losses = [p for p in a.losses if any(r["loss"] == p for r in sel)]
            L += [f"## {ranks} ranks, {WORKLOADS[wl]}", "",
                  "| loss | " + " | ".join(f"{c} p50 / p99" for c in cons) + " |",
                  "|---|" + "---|" * len(cons)]
            for p in losses:
                L.append(f"| {fmt_loss(p)} | " +
                         " | ".join(cell_of(rows, wl, ranks, p, c) for c in cons) + " |")
            L.append("")
            if 0.0 in losses and (0.01 in losses or 0.1 in losses):
                L += ["Issue 17's targets (ratios of medians within this run):", "",
                      "| contender | p99 at 1% / no-loss p99 (target ≤ 4) | "
                      "p50 at 10% / no-loss p50 (target ≤ 5) |", "|---|---|---|"]
                for c in cons:
                    cells = []
                    for key, p, lim in (("p99_us", 0.01, 4), ("p50_us", 0.1, 5)):
                        x = ratio(rows, wl, ranks, c, key, p)
                        if x is None:
                            cells.append("-")
                        elif CONTENDERS[c][0] == "sgc":
                            cells.append(f"{x:.1f} ({'met' if x <= lim else 'not met'})")
                        else:
                            cells.append(f"{x:.1f}")
                    label = c if CONTENDERS[c][0] == "sgc" else f"{c} (for reference)"
                    L.append(f"| {label} | " + " | ".join(cells) + " |")
                L.append("")
            L += ["What the injectors did (dropped / packets seen, summed over repeats) and "
                  "the resends: libsgcoll rank 0's datagrams sent again / datagrams sent "
                  "(a fan-out datagram that the eBPF path clones counts once); Open MPI "
                  "TCP segments retransmitted / sent by all ranks:", "",
                  "| loss | " + " | ".join(f"{c}" for c in cons) + " |",
                  "|---|" + "---|" * len(cons)]
            for p in losses:
                cells = []
                for c in cons:
                    rs = [r for r in sel if r["loss"] == p and r["contender"] == c and
                          r.get("inj_dropped") not in (None, "")]
                    if not rs:
                        cells.append("-")
                        continue
                    dr = sum(int(r["inj_dropped"]) for r in rs)
                    seen = dr + sum(int(r["inj_passed"]) for r in rs)
                    s = f"{dr} / {seen}" + (f" ({dr / seen * 100:.2g}%)" if seen and dr else "")
                    if CONTENDERS[c][0] == "sgc":
                        rx = sum(int(r.get("retx") or 0) for r in rs)
                        sn = sum(int(r.get("sent") or 0) for r in rs)
                        s += f"; resends {rx} / {sn}" if sn else ""
                    else:
                        rx = sum(int(r.get("tcp_retrans") or 0) for r in rs)
                        sn = sum(int(r.get("tcp_out") or 0) for r in rs)
                        s += f"; retrans {rx} / {sn}" if sn else ""
                    cells.append(s)
                L.append(f"| {fmt_loss(p)} | " + " | ".join(cells) + " |")
            loads = [float(r[k].split()[0]) for r in sel for k in ("load_start", "load_end")
                     if r.get(k)]
            if loads:
                L += ["", f"Load average (1 min) at the start and end of these runs: "
                      f"{min(loads):.2f} to {max(loads):.2f} on {meta['cpus']} CPUs."]
            L.append("")
    L += ["## Method", "",
          f"- Cluster: `tools/sgc-cluster`, MTU {run.MTU}; topology {a.topology}: {topo}. "
          "Rank 0 runs in the coordinator's namespace.",
          "- Contenders: " + "; ".join(f"`{c}`, {CONTENDERS[c][2]}" for c in a.contenders) + ".",
          "- libsgcoll (`sgc_bench`, `SGC_GSO=0`, `SGC_TIMEOUT_MS=30000`): loss injected by "
          "`sgc-faultinj --proto udp --dir both` on the switch side of every worker host's "
          "veth, so each datagram between the coordinator and a worker meets one injector "
          "once.",
          f"- Open MPI {meta['packages'].get('libopenmpi-dev', '')} (`mpi_allreduce`, "
          f"`mpirun {' '.join(run.MPI_FLAGS)}`) in the coordinator's namespace: "
          f"`sgc-faultinj --dev lo --proto tcp --dir {a.mpi_dir}`; "
          + ("lo left as created (MTU 65536, segmentation offload)."
             if a.lo_native else
             f"that lo set to MTU {run.MTU} with `gso_max_segs 1`, so TCP hands it "
             "wire-sized segments, and RPS over every CPU, so a flow's segments stay in "
             "order (without it, ranks moving between CPUs reorder them).") +
          " Its wire-up (mpirun's start, the first connections) is under loss too.",
          "- An injector runs at rate 0 as well; each program's warm-up runs under the "
          "injector's rate.",
          f"- Each run: a warm-up (about 1 s, 3 to 50 operations), then up to {a.max_ops} "
          f"operations, stopping after {a.max_s:g} s once {a.min_ops} are measured. With "
          "this time bound, the barrier before each operation is a 1-element MAX allreduce "
          "that carries rank 0's decision to stop (`--max-s` in sgc_bench and mpi_allreduce).",
          ""]
    def describe(r):
        return (f"{r['ranks']} ranks {r['workload']} loss {fmt_loss(r['loss'])} "
                f"{r['contender']} rep {r['rep']}")

    L += run.md_failed(rows, describe)
    late = [r for r in rows if r["status"].startswith("ok (")]
    if late:
        L += ["## Counted, though a process failed after the result", ""]
        L += [f"- {describe(r)}: {r['status']}" for r in late] + [""]
    L += run.md_skipped(rows)
    with open(os.path.join(a.out, "results.md"), "w") as fh:
        fh.write("\n".join(L))


def progress_line(row, done, total, started):
    head = f"[{done}/{total} {(time.time() - started) / 60:5.1f} min] {row['ranks']} ranks " \
           f"{row['workload']:<5} {fmt_loss(row['loss']):>7} {row['contender']:<11} " \
           f"rep {row['rep']}: "
    if not row["status"].startswith("ok"):
        return head + row["status"] + f" ({row['seconds']} s)"
    what = f"p50 {fmt_t(row.get('p50_us'))} p99 {fmt_t(row.get('p99_us'))}, " \
           f"{row.get('ops')} ops, dropped {row.get('inj_dropped')}/" \
           f"{int(row.get('inj_dropped') or 0) + int(row.get('inj_passed') or 0)}"
    if row.get("sent"):
        what += f", resends {row.get('retx')}/{row.get('sent')}"
    if row.get("tcp_out"):
        what += f", tcp retrans {row.get('tcp_retrans')}/{row.get('tcp_out')}"
    if row["status"] != "ok":
        what += " " + row["status"]
    return head + what + f", load {row.get('load_start')} -> {row.get('load_end')} " \
        f"({row['seconds']} s)"


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(run.REPO, "build"),
                    help="CMake build directory (bench/ and tools/ hold the programs)")
    ap.add_argument("--out", help="results directory (default bench/results/loss)")
    ap.add_argument("--ranks", default=DEFAULTS["ranks"], help="rank counts, e.g. 17,65")
    ap.add_argument("--workloads", default=DEFAULTS["workloads"],
                    help="from: " + ",".join(WORKLOADS))
    ap.add_argument("--losses", default=DEFAULTS["losses"],
                    help="loss rates per packet, from 0 to 1 (0 is the reference)")
    ap.add_argument("--contenders", default=DEFAULTS["contenders"],
                    help="from: " + ",".join(CONTENDERS))
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--env", action="append", default=[], metavar="K=V",
                    help="extra environment for libsgcoll's ranks (repeatable), for A/B runs")
    ap.add_argument("--max-s", type=float, default=12.0,
                    help="seconds of measuring per run, once --min-ops are measured")
    ap.add_argument("--min-ops", type=int, default=20)
    ap.add_argument("--max-ops", type=int, default=5000)
    ap.add_argument("--topology", choices=("one-host", "per-host"), default="one-host",
                    help="one-host: one worker host carries every worker rank; "
                    "per-host: one worker rank per host")
    ap.add_argument("--mpi-dir", choices=("ingress", "egress"), default="ingress",
                    help="the direction of lo where Open MPI's packets are dropped (default "
                    "ingress: a drop at egress is reported to the sending TCP, which sends "
                    "again at once instead of recovering a loss)")
    ap.add_argument("--lo-native", action="store_true",
                    help="leave the coordinator's lo as created (MTU 65536, segmentation "
                    "offload, no RPS) for Open MPI")
    ap.add_argument("--pause-while", metavar="FILE",
                    help="before each run, wait while FILE exists (at most --pause-max s)")
    ap.add_argument("--pause-max", type=float, default=7200)
    ap.add_argument("--list", action="store_true", help="print the plan and exit")
    a = ap.parse_args()

    def split(s, conv=str):
        return [conv(x) for x in s.split(",") if x.strip()]
    try:
        a.ranks = split(a.ranks, int)
        a.losses = split(a.losses, float)
    except ValueError as e:
        ap.error(str(e))
    a.workloads, a.contenders = split(a.workloads), split(a.contenders)
    for x in a.workloads:
        if x not in WORKLOADS:
            ap.error(f"unknown workload {x}")
    for x in a.contenders:
        if x not in CONTENDERS:
            ap.error(f"unknown contender {x}")
    if any(not 0 <= p <= 1 for p in a.losses):
        ap.error("loss rates go from 0 to 1")
    if any(r < 2 for r in a.ranks):
        ap.error("at least 2 ranks")
    if a.topology == "per-host" and any(r - 1 > run.HOSTS_MAX for r in a.ranks):
        ap.error(f"per-host: at most {run.HOSTS_MAX} worker hosts")
    if a.repeats < 1 or a.max_s <= 0 or a.min_ops < 1 or a.max_ops < a.min_ops:
        ap.error("--repeats >= 1, --max-s > 0, 1 <= --min-ops <= --max-ops")
    a.build = os.path.abspath(a.build)
    a.faultinj = os.path.join(a.build, "tools", "sgc-faultinj")
    a.build = os.path.join(a.build, "bench")
    a.out = os.path.abspath(a.out or os.path.join(run.REPO, "bench", "results", "loss"))
    a.rank_logs = None
    return a


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    a = parse_args()
    runs = plan(a)
    est = 0.0
    for ranks, _, wl, loss, cname in runs:
        est += plan_run(a, CONTENDERS[cname][0], wl, ranks, loss)[1] + 1
    est += sum(3 + hosts_for(a, r) / 20 for r in a.ranks)
    if a.list:
        run.log(f"{len(runs)} runs, topology {a.topology}, estimated {est / 60:.0f} min")
        for ranks, rep, wl, loss, cname in runs:
            warm, expect, timeout = plan_run(a, CONTENDERS[cname][0], wl, ranks, loss)
            run.log(f"  {ranks:>3} ranks rep {rep} {wl:<5} {fmt_loss(loss):>7} {cname:<11} "
                    f"warm-up {warm:>2}, about {expect:.0f} s (timeout {timeout:.0f} s)")
        return 0
    if os.geteuid() != 0:
        run.log("loss.py: needs root (network namespaces, BPF); run it as root")
        return 1
    need = [os.path.join(a.build, "sgc_bench"), a.faultinj]
    if "openmpi-tcp" in a.contenders:
        need.append(os.path.join(a.build, "mpi_allreduce"))
    for prog in need:
        if not os.access(prog, os.X_OK):
            run.log(f"loss.py: {prog} missing: build first (make build, or cmake --build)")
            return 1

    os.makedirs(a.out, exist_ok=True)
    shutil.rmtree(os.path.join(a.out, "logs"), ignore_errors=True)
    started = time.time()
    run.log(f"loss.py: {len(runs)} runs, topology {a.topology}, estimated {est / 60:.0f} min; "
            f"results in {os.path.relpath(a.out, os.getcwd())}")

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)

    rows, state, cl, interrupted = [], {}, None, False
    try:
        for ranks in a.ranks:
            mine = [r for r in runs if r[0] == ranks]
            cl = run.Cluster(f"sgcl{os.getpid() % 100000}r{ranks}", hosts_for(a, ranks))
            run.log(f"== {ranks} ranks: cluster {cl.name}, {cl.hosts} worker host(s), "
                    f"mtu {run.MTU}")
            why = None
            try:
                wait_quiet(a)
                cl.up()
                if not a.lo_native:
                    lo_like_wire(cl)
            except (RuntimeError, subprocess.SubprocessError) as e:
                why = f"failed: cluster: {e}"
                run.log("   " + why)
            for (_, rep, wl, loss, cname) in mine:
                if why:
                    row = {"ranks": ranks, "topology": a.topology, "hosts": cl.hosts,
                           "workload": wl, "loss": loss, "contender": cname, "rep": rep,
                           "status": why, "seconds": 0}
                else:
                    row = one_run(a, cl, ranks, rep, wl, loss, cname, state)
                rows.append(row)
                run.log(progress_line(row, len(rows), len(runs), started))
                write_all(a, rows, started, partial=True)
            cl.down()
            cl = None
    except (KeyboardInterrupt, RuntimeError) as e:
        interrupted = True
        run.log(f"loss.py: stopped ({e or 'SIGINT'}); cleaning up and writing what was measured")
    finally:
        for p in list(run.RUNNING):
            run.kill_tree(p, grace=2)
        if cl:
            cl.down()
        if a.rank_logs:
            shutil.rmtree(a.rank_logs, ignore_errors=True)
    write_all(a, rows, started, partial=interrupted)
    run.log(f"loss.py: done in {(time.time() - started) / 60:.1f} min: "
            f"{sum(r['status'].startswith('ok') for r in rows)} ok, "
            f"{sum(r['status'].startswith('skipped') for r in rows)} skipped, "
            f"{sum(not r['status'].startswith(('ok', 'skipped')) for r in rows)} failed; "
            f"see {os.path.relpath(os.path.join(a.out, 'results.md'), os.getcwd())}")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
