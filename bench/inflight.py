#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""bench/inflight.py - many allreduces in flight without injected loss:
what libsgcoll resends when nothing was lost (issue 17: at most 1% of the
datagrams sent with 64 in flight).

For each path (SGC_ACCEL=off, ebpf) and repeat, one run of
`sgc_bench --workload W --mode tput --window 64` on a virtual cluster whose
worker ranks all sit on one worker host (--topology one-host, as issue 17
measured) or one per host (per-host).  Per run it records the collectives
per second, rank 0's resends (sgc_stats.retransmits) and datagrams sent,
the datagrams the eBPF path's kernel sent for it (its fan-out clones:
sgc_bench's clones=, the fanout_clones counter over the same span),
and the machine's softnet backlog drops over the run (/proc/net/softnet_stat:
packets a CPU's input queue refused, the veths deliver through it).

The resend share is resends / (datagrams rank 0 sent + clones): a result
the kernel clones to 32 workers is 32 datagrams on the wire, as on the
user-space path.

Output (--out): results.md, runs.csv, machine.json.

  bench/inflight.py --build build --out bench/results/inflight-DATE
      [--ranks 33] [--window 64] [--ops 8000] [--reps 3]
      [--paths off,ebpf] [--topology one-host|per-host] [--workload ar363]

Run on a quiet machine (nothing else: 2 cores); the load average at the
start and the end of every run goes into the results.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import run  # noqa: E402  the cluster tool, result lines, machine facts

FIELDS = ["path", "rep", "status", "tput_ops", "ops", "retx", "sent", "clones", "share_pct",
          "softnet_drops", "load_start", "load_end", "seconds"]


def softnet_drops():
    """Packets the CPUs' input queues refused, summed (column 2)."""
    with open("/proc/net/softnet_stat") as fh:
        return sum(int(line.split()[1], 16) for line in fh if line.strip())


def one_run(a, cl, path, rep):
    row = {"path": path, "rep": rep, "status": "", "load_start": run.loadavg()}
    cmd = [run.CLUSTER, "run", cl.name, "--ranks", str(a.ranks), "--accel", path,
           "--timeout-ms", "30000", "--deadline", str(a.timeout), "--",
           os.path.join(a.build, "bench", "sgc_bench"), "--workload", a.workload,
           "--mode", "tput", "--window", str(a.window), "--ops", str(a.ops)]
    drops0 = softnet_drops()
    rc, out, err, secs = run.run_cmd(cmd, a.timeout + 30)
    row["seconds"] = round(secs, 1)
    row["softnet_drops"] = softnet_drops() - drops0
    row["load_end"] = run.loadavg()
    res = run.parse_result(out)
    if rc or not res or res.get("verified") != "1":
        row["status"] = "failed: " + (err.strip().splitlines() or ["no result"])[-1][:200]
        return row
    row["tput_ops"] = float(res["tput_ops"])
    row["ops"] = int(res["ops"])
    row["retx"] = int(res["retx"])
    row["sent"] = int(res["sent"])
    row["clones"] = int(res.get("clones", 0))
    row["share_pct"] = round(100.0 * row["retx"] / (row["sent"] + row["clones"]), 3)
    row["status"] = "ok"
    return row


def med(rows, key):
    v = [r[key] for r in rows if r["status"] == "ok"]
    return (statistics.median(v), min(v), max(v)) if v else (None, None, None)


def write(a, rows, meta, t_start):
    os.makedirs(a.out, exist_ok=True)
    run.write_csv(os.path.join(a.out, "runs.csv"), FIELDS, rows, meta, tool="bench/inflight.py")
    with open(os.path.join(a.out, "machine.json"), "w") as fh:
        json.dump(meta, fh, indent=2)
    topo = ("one worker host carrying every worker rank" if a.topology == "one-host"
            else "one worker rank per host")
    lines = [
        f"# {a.window} allreduces in flight, no injected loss: what is resent",
        "",
        f"{meta['date']}: {meta['cpu']}, {meta['cpus']} CPUs, kernel {meta['kernel']}, "
        f"git {meta['git']}.  {a.ranks} ranks, topology {a.topology} ({topo}); "
        f"`sgc_bench --workload {a.workload} --mode tput --window {a.window} --ops {a.ops}`, "
        f"{a.reps} repeat(s) per path, median [min-max].  Produced by "
        f"`bench/inflight.py {' '.join(sys.argv[1:])}` in {(time.time() - t_start) / 60:.1f} min.",
        "",
        "| path | collectives/s | rank 0 resends | datagrams rank 0 sent | kernel clones "
        "| resends / (sent + clones) | softnet drops |",
        "|---|---|---|---|---|---|---|",
    ]
    for path in a.paths:
        rs = [r for r in rows if r["path"] == path]
        ok = [r for r in rs if r["status"] == "ok"]
        if not ok:
            lines.append(f"| {path} | failed ({len(rs)} runs) | | | | | |")
            continue

        def cell(key, fmt):
            m, lo, hi = med(rs, key)
            return f"{fmt(m)} [{fmt(lo)}-{fmt(hi)}]"
        lines.append("| {} | {} | {} | {} | {} | {} | {} |".format(
            path, cell("tput_ops", lambda v: f"{v:,.0f}"), cell("retx", lambda v: f"{v:,}"),
            cell("sent", lambda v: f"{v:,}"), cell("clones", lambda v: f"{v:,}"),
            cell("share_pct", lambda v: f"{v:.2f}%"), cell("softnet_drops", lambda v: f"{v:,}")))
    lines += ["", "Load average (1, 5, 15 min) at the start and end of each run:", ""]
    for r in rows:
        lines.append(f"- {r['path']} rep {r['rep']}: {r['load_start']} -> {r['load_end']}"
                     f" ({r['status']})")
    lines += ["", "Method: see the docstring of bench/inflight.py.  `softnet drops` are the "
              "whole machine's input-queue drops during the run (net.core.netdev_max_backlog "
              f"= {meta.get('netdev_max_backlog', '?')}); on the eBPF path they are result "
              "clones lost between the bridge and the workers, which the workers NACK.", ""]
    with open(os.path.join(a.out, "results.md"), "w") as fh:
        fh.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(run.REPO, "build"))
    ap.add_argument("--out", default=os.path.join(run.REPO, "bench", "results", "inflight"))
    ap.add_argument("--ranks", type=int, default=33)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--ops", type=int, default=8000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--paths", default="off,ebpf")
    ap.add_argument("--workload", default="ar363")
    ap.add_argument("--topology", choices=("one-host", "per-host"), default="one-host")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per run, at most")
    a = ap.parse_args()
    a.paths = [p for p in a.paths.split(",") if p]
    if os.geteuid():
        sys.exit("bench/inflight.py: needs root (network namespaces, BPF)")
    hosts = 1 if a.topology == "one-host" else a.ranks - 1
    cl = run.Cluster(f"sgcinf{os.getpid() % 1000}", hosts)
    meta = run.machine_info()
    with open("/proc/sys/net/core/netdev_max_backlog") as fh:
        meta["netdev_max_backlog"] = int(fh.read())
    rows, t_start = [], time.time()
    try:
        cl.up()
        for rep in range(1, a.reps + 1):
            for path in a.paths:
                row = one_run(a, cl, path, rep)
                rows.append(row)
                run.log(f"{path} rep {rep}: {row['status']} {row.get('tput_ops', '')} ops/s, "
                        f"resends {row.get('retx', '')} / sent {row.get('sent', '')} + clones "
                        f"{row.get('clones', '')} = {row.get('share_pct', '')}%, softnet drops "
                        f"{row['softnet_drops']}, load {row['load_start']} -> {row['load_end']}")
    finally:
        cl.down()
    write(a, rows, meta, t_start)
    run.log(f"inflight.py: see {os.path.join(a.out, 'results.md')}")
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
