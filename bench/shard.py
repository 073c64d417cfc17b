#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Gradient-sized allreduce: libsgcoll's default choice against Open MPI and Gloo.

Every contender in the same run, per (world size, vector): libsgcoll's
default algorithm (sharded from 1 MiB) on the user-space and the eBPF path,
its star (SGC_ALGO=star) for reference, Open MPI 4.1 ob1 over tcp and over
shared memory (vader, the one-host ceiling), Gloo's ring.  Contenders take
turns within each repeat, so that drifts of the machine hit all alike.

Topologies: libsgcoll runs on the virtual cluster either with one rank per
worker host ("per-host": world - 1 worker namespaces, every stream crosses
a veth) or with every worker on one host ("one-host": the workers talk
over that namespace's loopback).  Open MPI's tcp runs in the same places
as libsgcoll's ranks ("openmpi-tcp-cluster", bench/mpi_netns.sh: rank 0 in
the coordinator's namespace, rank r in worker host (r - 1) % hosts + 1, tcp
over eth0), and also, as before, with every rank in the coordinator's
namespace over loopback ("openmpi-tcp", 64 KiB segments, no veth or
switch: its best case here).  Open MPI over shared memory and Gloo run on
loopback only; those rows are the same in both tables.

Each run is sgc_bench / mpi_allreduce / gloo_allreduce --mode lat: the
latency of an operation is its maximum over ranks; a run's p50 is the median
over its operations.  results.md gives the median over repeats of the
run p50s, their spread, bus bandwidth as nccl-tests define it
(2 (p - 1) / p x bytes / time) and, for libsgcoll, the bytes the busiest
rank sent per allreduce over the vector's bytes.

  bench/shard.py --build build --out bench/results/shard-DATE
      [--worlds 9,17,33] [--workloads ar1m,ar16m,ar64m] [--reps 3]
      [--topology per-host,one-host] [--contenders LIST]
  bench/shard.py --replot --out bench/results/shard-DATE

Plots (gnuplot, beside results.md): bus bandwidth against the vector's
size, one per world size and topology, a line per contender with the
spread of the repeats as error bars.  --replot draws them again from an
earlier run's runs.csv, without running anything.

Run on a quiet machine (nothing else: 2 cores); the load average at the
start and the end goes into results.md.
"""
import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import run  # noqa: E402  the cluster tool, result lines, MPI flags, machine facts

BYTES = {"ar1": 4, "ar363": 1452, "ar64k": 65536, "ar256k": 256 << 10, "ar1m": 1 << 20, "ar16m": 16 << 20,
         "ar64m": 64 << 20}
OPS = {"ar1": 2000, "ar363": 2000, "ar64k": 300, "ar256k": 100, "ar1m": 40, "ar16m": 6, "ar64m": 3}
# run.py's contenders where it has them; the star and shared memory are ours.
CON = {
    "sgc-user": run.C["sgc-user"],
    "sgc-ebpf": run.Contender("sgc-ebpf", "sgc", "sgc_bench", accel="ebpf"),
    "sgc-auto": run.C["sgc-auto"],
    "sgc-star-user": run.Contender("sgc-star-user", "sgc", "sgc_bench", env={"SGC_ALGO": "star"}),
    # Sharded whatever auto would choose (auto keeps the star past SGC_SHARD_AUTO_MAX_WORLD).
    "sgc-shard-user": run.Contender("sgc-shard-user", "sgc", "sgc_bench", env={"SGC_ALGO": "shard"}),
    "sgc-shard-ebpf": run.Contender("sgc-shard-ebpf", "sgc", "sgc_bench", accel="ebpf",
                                    env={"SGC_ALGO": "shard"}),
    # Each owner reducing its shard on its own eBPF path (a star per shard).
    "sgc-shard-kernel": run.Contender("sgc-shard-kernel", "sgc", "sgc_bench", accel="ebpf",
                                      env={"SGC_ALGO": "shard-kernel"}),
    "openmpi-tcp": run.C["openmpi-tcp"],
    # Open MPI's tcp placed as libsgcoll's ranks are (bench/mpi_netns.sh).
    "openmpi-tcp-cluster": run.Contender("openmpi-tcp-cluster", "mpi", "mpi_allreduce"),
    "openmpi-sm": run.Contender("openmpi-sm", "mpi", "mpi_allreduce"),
    "gloo": run.C["gloo-tcp"],
}
CONTENDERS = [k for k in CON if not k.startswith("sgc-shard-")]  # the forced ones on request


def placed(con):
    """Runs on the virtual cluster in each topology (the others on loopback)."""
    return con.startswith("sgc") or con == "openmpi-tcp-cluster"
TIMEOUT_S = 900




def on_cluster(cmd, name, hosts):
    """run.py's mpirun command for Open MPI on loopback in NAME-c, turned into
    one whose ranks sit where libsgcoll's do (bench/mpi_netns.sh): tcp and
    mpirun's own channels over eth0."""
    i = cmd.index("mpirun")
    out = cmd[:i] + ["env", "PMIX_MCA_ptl_tcp_remote_connections=1",
                     "PMIX_MCA_ptl_tcp_if_include=eth0"]
    rest = cmd[i:]
    for k in ("btl_tcp_if_include", "oob_tcp_if_include"):
        rest[rest.index(k) + 1] = "eth0"
    np_at = rest.index("-np")
    rest[np_at:np_at] = ["-x", f"SGC_NS_CLUSTER={name}", "-x", f"SGC_NS_HOSTS={hosts}"]
    np_at = rest.index("-np")
    rest.insert(np_at + 2, os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_netns.sh"))
    return out + rest


def one(a, name, hosts, world, wl, con):
    t0 = time.time()
    c, cl = CON[con], types.SimpleNamespace(name=name)
    args = (a, cl, c, wl, "lat", world - 1, OPS[wl], 1, 1, TIMEOUT_S)
    if c.kind == "gloo":
        _, out, _, _ = run.run_gloo(*args)
    else:
        cmd, _ = run.build_cmd(*args)
        if con == "openmpi-sm":
            cmd = ["self,vader" if f == "self,tcp" else f for f in cmd]
        if con == "openmpi-tcp-cluster":
            cmd = on_cluster(cmd, name, hosts)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S + 100)
        out = r.stdout + r.stderr
    kv = run.parse_result(out)
    if not kv or kv.get("verified") != "1":
        raise RuntimeError(f"{con} {wl} world {world} failed:\n{out[-3000:]}")
    row = {"world": world, "hosts": hosts, "workload": wl, "contender": con,
           "p50_us": float(kv["p50_us"]), "p99_us": float(kv["p99_us"]),
           "retx": kv.get("retx", ""), "accel": kv.get("accel", ""),
           "busiest_per_n": kv.get("busiest_per_n", ""), "seconds": round(time.time() - t0, 1)}
    print(f"  {con:14s} {wl:6s} world {world:3d} hosts {hosts:3d}: p50 {row['p50_us'] / 1e3:9.2f} ms"
          f"  busiest/N {row['busiest_per_n'] or '-'}", flush=True)
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build")
    p.add_argument("--out", required=True)
    p.add_argument("--replot", action="store_true",
                   help="only draw the plots again from OUT/runs.csv")
    p.add_argument("--worlds", default="9,17,33")
    p.add_argument("--workloads", default="ar1m,ar16m,ar64m")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--topology", default="per-host,one-host")
    p.add_argument("--contenders", default=",".join(CONTENDERS))
    a = p.parse_args()
    if a.replot:
        if not os.path.exists(os.path.join(a.out, "runs.csv")):
            p.error(f"--replot: no runs.csv in {a.out} (the --out of an earlier shard.py run)")
        return 0 if make_plots(a.out, read_runs(a.out)) else 1
    if not a.build:
        p.error("--build is required (the CMake build directory), unless --replot")
    a.build = os.path.join(os.path.abspath(a.build), "bench")   # as run.py has it
    a.rank_logs, a.small_queries = tempfile.mkdtemp(prefix="sgc-shard-ranks."), False
    os.makedirs(a.out, exist_ok=True)
    cons = a.contenders.split(",")
    rows, load0, started, failed = [], run.loadavg(), time.time(), {}
    for world in (int(w) for w in a.worlds.split(",")):
        for topo in a.topology.split(","):
            hosts = world - 1 if topo == "per-host" else 1
            name = f"shb{os.getpid() % 10000}"
            cl = run.Cluster(name, hosts)
            cl.up()
            try:
                for wl in a.workloads.split(","):
                    for rep in range(a.reps):
                        for con in cons:
                            # the peers' topology is the same in both tables: once
                            if not placed(con) and topo != a.topology.split(",")[0]:
                                continue
                            if con == "gloo" and world > 17:
                                continue  # run.py's LIMITS: a full TCP mesh on 2 cores
                            point = (con, wl, world, topo)
                            if point in failed:
                                continue  # failed once here: its other repeats too, likely
                            try:
                                r = one(a, name, hosts, world, wl, con)
                            except RuntimeError as e:
                                failed[point] = why_failed(str(e))
                                print(f"  {con:14s} {wl:6s} world {world:3d} hosts {hosts:3d}: "
                                      f"FAILED: {failed[point]}", flush=True)
                                continue
                            r["topology"] = topo if placed(con) else "one-host (loopback)"
                            r["rep"] = rep
                            rows.append(r)
            finally:
                cl.down()
    fields = ["world", "topology", "hosts", "workload", "contender", "rep", "p50_us", "p99_us",
              "retx", "accel", "busiest_per_n", "seconds"]
    with open(os.path.join(a.out, "runs.csv"), "w") as fh:
        fh.write(",".join(fields) + "\n")
        for r in rows:
            fh.write(",".join(str(r.get(f, "")) for f in fields) + "\n")
    write_md(a, rows, load0, run.loadavg(), time.time() - started, failed)
    make_plots(a.out, rows)
    return 0


def read_runs(out):
    """An earlier run's rows from OUT/runs.csv, typed as main() makes them."""
    with open(os.path.join(out, "runs.csv")) as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["world"] = int(r["world"])
        r["p50_us"] = float(r["p50_us"])
    return rows


def make_plots(out, rows):
    """busbw_w<world>_<topology>.png in @out: bus bandwidth against the
    vector's size per contender, min-max of the repeats as error bars.
    The rows that ran on loopback go into both topologies' plots."""
    if not shutil.which("gnuplot"):
        print("shard.py: gnuplot not found (apt-get install gnuplot-nox): no plots",
              file=sys.stderr)
        return []
    pngs = []
    topos = sorted({r["topology"] for r in rows if "loopback" not in r["topology"]})
    for world in sorted({r["world"] for r in rows}):
        for topo in topos:
            mine = [r for r in rows if r["world"] == world and
                    (r["topology"] == topo or "loopback" in r["topology"])]
            series = []
            for con in sorted({r["contender"] for r in mine}):
                pts = []
                for wl in sorted({r["workload"] for r in mine}, key=lambda w: BYTES[w]):
                    p50s = [r["p50_us"] for r in mine
                            if r["contender"] == con and r["workload"] == wl]
                    if p50s:
                        pts.append((BYTES[wl] / (1 << 20),
                                    *(2 * (world - 1) / world * BYTES[wl] / (t * 1e-6) / 1e9
                                      for t in (statistics.median(p50s), max(p50s), min(p50s)))))
                series.append((con, pts))
            png = f"busbw_w{world}_{topo}.png"
            if series and run.gnuplot_lines(
                    os.path.join(out, png),
                    f"Allreduce int32 sum, {world} ranks, {topo}: bus bandwidth "
                    "(2 (p-1)/p x bytes / p50), median of the repeats, min-max",
                    "vector (MiB)", "bus bandwidth (GB/s)", series,
                    ["set logscale x 2", "set yrange [0:*]"]):
                pngs.append(png)
    return pngs

def vs(ref, med):
    """How @med compares with the reference p50 @ref."""
    if not ref:
        return "–"
    return f"{ref / med:.2f}x faster" if med <= ref else f"{med / ref:.2f}x slower"


def why_failed(err):
    """The line of a failed run's output that says why (rank 0's error)."""
    lines = [ln.strip(" |") for ln in err.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith("rank 0:") or "did not" in ln or "timed out" in ln:
            return ln[:300]
    return lines[-1][:300] if lines else "no output"


def write_md(a, rows, load0, load1, secs, failed=None):
    groups = {}
    for r in rows:
        groups.setdefault((r["world"], r["workload"], r["topology"], r["contender"]), []).append(r)
    out = ["# Gradient-sized allreduce: libsgcoll's default choice, Open MPI, Gloo", "",
           f"bench/shard.py, {time.strftime('%Y-%m-%d')}; load average {load0} at the start, "
           f"{load1} at the end; {secs / 60:.0f} min.  Each cell: median over "
           f"{a.reps} runs of the run's p50 (maximum over ranks per operation), "
           "[min–max of the run p50s]; busbw = 2 (p-1)/p x bytes / p50.  "
           "Raw runs: runs.csv.", ""]
    for world in sorted({r["world"] for r in rows}):
        for wl in [w for w in a.workloads.split(",") if any(r["workload"] == w for r in rows)]:
            nbytes = BYTES[wl]
            out += [f"## {wl} ({nbytes} bytes), {world} ranks", "",
                    "| contender | topology | p50 ms | busbw GB/s | busiest rank bytes / N | "
                    "vs openmpi-tcp (loopback) | vs openmpi-tcp-cluster (same topology) |",
                    "|---|---|---|---|---|---|---|"]
            ref = groups.get((world, wl, "one-host (loopback)", "openmpi-tcp"))
            ref_p50 = statistics.median(r["p50_us"] for r in ref) if ref else None
            for (w, wk, topo, con), g in sorted(groups.items(), key=lambda x: x[0][2:]):
                if w != world or wk != wl:
                    continue
                p50s = [r["p50_us"] for r in g]
                med = statistics.median(p50s)
                bus = 2 * (world - 1) / world * nbytes / (med * 1e-6) / 1e9
                bn = statistics.median(float(r["busiest_per_n"]) for r in g) \
                    if g[0]["busiest_per_n"] else None
                same = groups.get((world, wl, topo, "openmpi-tcp-cluster"))
                same_p50 = statistics.median(r["p50_us"] for r in same) if same else None
                out.append(f"| {con} | {topo} | {med / 1e3:.2f} [{min(p50s) / 1e3:.2f}–"
                           f"{max(p50s) / 1e3:.2f}] | {bus:.2f} | "
                           f"{'%.2f' % bn if bn is not None else '–'} | {vs(ref_p50, med)} | "
                           f"{vs(same_p50, med)} |")
            out.append("")
    if failed:
        out += ["## Runs that failed", "",
                "A point whose first run failed was not run again.  The reason is rank 0's "
                "error (the ranks' logs are in the run's --rank-logs directory).", ""]
        out += [f"- {con}, {wl}, {world} ranks, {topo}: {why}"
                for (con, wl, world, topo), why in sorted(failed.items())]
        out.append("")
    with open(os.path.join(a.out, "results.md"), "w") as fh:
        fh.write("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    sys.exit(main())
