#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""What the job key (SGC_KEY) costs: allreduce latency with and without it.

For each world size, path and topology, sgc_bench --workload W --mode lat
runs on one virtual cluster with and without SGC_KEY, alternating (key,
none, none, key, ...), so that drifts of the machine hit both alike.  The
p50 and p99 of each run go to runs.csv; results.md gives, per setting, the
median over runs of each and the ratio key / none with its spread.

  bench/key_cost.py --build build --out bench/results/key-DATE
      [--worlds 9,33] [--paths off,ebpf] [--topology one-host,per-host]
      [--workload ar363] [--reps 6] [--ops 3000] [--mtu 1500]

Run on a quiet machine (nothing else running: 2 cores); the load average
at the start and end goes into results.md.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import run  # noqa: E402  bench/run.py: the cluster tool, result lines, machine facts

KEY = "3c5e0d9b7a1f46e28b90c4d7e2f1a365"




def one(a, name, hosts, world, path, keyed):
    cmd = [run.CLUSTER, "run", name, "--ranks", str(world), "--accel", path,
           "--timeout-ms", "20000", "--deadline", "300"]
    if keyed:
        cmd += ["--env", "SGC_KEY=" + KEY]
    cmd += ["--", os.path.join(a.build, "bench", "sgc_bench"), "--workload", a.workload,
            "--mode", "lat", "--ops", str(a.ops), "--warmup", "300"]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    kv = run.parse_result(r.stdout + r.stderr)
    if r.returncode or not kv or kv.get("verified") != "1":
        raise RuntimeError(f"run failed ({' '.join(cmd)}):\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return {"world": world, "hosts": hosts, "path": path, "key": "yes" if keyed else "no",
            "p50_us": float(kv["p50_us"]), "p99_us": float(kv["p99_us"]),
            "mean_us": float(kv["mean_us"]), "ops": kv["ops"], "retx": kv.get("retx", ""),
            "accel": kv.get("accel", ""), "seconds": round(time.time() - t0, 1)}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--worlds", default="9,33")
    p.add_argument("--paths", default="off,ebpf")
    p.add_argument("--topology", default="one-host,per-host")
    p.add_argument("--workload", default="ar363")
    p.add_argument("--reps", type=int, default=6)
    p.add_argument("--ops", type=int, default=3000)
    p.add_argument("--mtu", type=int, default=1500)
    a = p.parse_args()
    a.build = os.path.abspath(a.build)
    os.makedirs(a.out, exist_ok=True)
    run.MTU = a.mtu
    rows, la_start = [], run.loadavg()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    for topo in a.topology.split(","):
        for world in [int(w) for w in a.worlds.split(",")]:
            hosts = 1 if topo == "one-host" else min(world - 1, run.HOSTS_MAX)
            cl = run.Cluster("sgckey", hosts)
            cl.up()
            try:
                for rep in range(a.reps):
                    for path in a.paths.split(","):
                        order = (True, False) if rep % 2 == 0 else (False, True)
                        for keyed in order:
                            row = one(a, cl.name, hosts, world, path, keyed)
                            row.update(topology=topo, rep=rep + 1)
                            rows.append(row)
                            print(f"{topo} world {world} {path} key={row['key']}: p50 "
                                  f"{row['p50_us']:.1f} us p99 {row['p99_us']:.1f} us",
                                  flush=True)
            finally:
                cl.down()
    la_end = run.loadavg()
    meta = run.machine_info()
    fields = ["topology", "world", "hosts", "path", "key", "rep", "p50_us", "p99_us",
              "mean_us", "ops", "retx", "accel", "seconds"]
    run.write_csv(os.path.join(a.out, "runs.csv"), fields, rows, meta, tool="bench/key_cost.py",
                  note=f" mtu {a.mtu} workload {a.workload}")
    with open(os.path.join(a.out, "results.md"), "w") as fh:
        fh.write(f"# What the job key costs: {a.workload} allreduce latency\n\n"
                 f"`bench/key_cost.py` at git {meta['git']}, {started}; {meta['cpu']} "
                 f"x{meta['cpus']}, kernel {meta['kernel']}; cluster MTU {a.mtu}.  Load "
                 f"average {la_start} at the start, {la_end} at the end; nothing else ran.\n"
                 f"Each setting: {a.reps} runs with SGC_KEY and {a.reps} without, alternating, "
                 f"{a.ops} measured operations each (300 warm-up).  p50/p99: median over "
                 f"runs (min-max); ratio: key / none of the medians.  Raw runs: `runs.csv`.\n\n"
                 "| topology | ranks | path | p50 none | p50 key | p50 ratio | p99 none | "
                 "p99 key | p99 ratio |\n|---|---|---|---|---|---|---|---|---|\n")
        for topo in a.topology.split(","):
            for world in [int(w) for w in a.worlds.split(",")]:
                for path in a.paths.split(","):
                    sel = [r for r in rows if r["topology"] == topo and r["world"] == world
                           and r["path"] == path]
                    if not sel:
                        continue
                    cells = []
                    for k in ("p50_us", "p99_us"):
                        n = [r[k] for r in sel if r["key"] == "no"]
                        y = [r[k] for r in sel if r["key"] == "yes"]
                        mn, my = statistics.median(n), statistics.median(y)
                        cells += [f"{mn:.1f} µs ({min(n):.0f}-{max(n):.0f})",
                                  f"{my:.1f} µs ({min(y):.0f}-{max(y):.0f})", f"{my / mn:.3f}"]
                    hosts = sel[0]["hosts"]
                    fh.write(f"| {topo} ({hosts} worker host{'s' if hosts > 1 else ''}) | "
                             f"{world} | {path} | " + " | ".join(cells) + " |\n")
    print(f"wrote {a.out}/results.md and runs.csv")


if __name__ == "__main__":
    main()
