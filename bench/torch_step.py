#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""DDP training step time: sgcoll.torch's hook against DDP's own gloo allreduce.

What is timed is examples/train_torch.py's training step (forward,
backward with DDP's gradient averaging, optimizer step) on its default
model (an MLP of 1,084,417 float32 parameters) unless --example-args says
otherwise.  Two contenders, in the same run, on the same cluster:

  sgcoll-hook  DDP with sgcoll.torch.allreduce_hook (--backend sgcoll),
               libsgcoll on the --accel path (default ebpf)
  gloo         DDP with no hook: torch.distributed gloo averages the
               buckets (--backend gloo)

Both run on the virtual cluster (tools/sgc-cluster), in one of two
topologies: "per-host", one rank per host (world - 1 worker namespaces,
every byte crosses a veth), or "one-host", every worker on one worker
host.  Contenders take turns within each repeat, so that drifts of the
machine hit both alike.

A step's time is its wall time on the slowest rank (the example takes the
maximum over the ranks step by step); a run's figure is the median of its
steps after --warmup, with the quartiles as its spread.  results.md gives,
per world size and topology, the median over --runs runs of the run
medians, [min-max of the run medians], and the median of the runs'
quartiles.  runs.csv has every run, steps/ every run's step times, run.log
what was printed.

  bench/torch_step.py --build build --out bench/results/torch-step-DATE
      [--worlds 2,4,8] [--topology per-host,one-host] [--runs 3]
      [--steps 200] [--warmup 20] [--accel ebpf] [--contenders sgcoll-hook,gloo]
      [--example-args "--hidden 2048"]

Run it on a quiet machine (2 cores: nothing else); the load average at
the start and the end goes into results.md, with the exact command.
"""
import argparse
import os
import shlex
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import run  # noqa: E402  the cluster tool, run_cmd, machine facts

EXAMPLE = os.path.join(run.REPO, "examples", "train_torch.py")
BACKEND = {"sgcoll-hook": "sgcoll", "gloo": "gloo"}
CONTENDERS = list(BACKEND)
FIELDS = ["world", "topology", "hosts", "contender", "run", "accel", "params", "steps",
          "warmup", "median_ms", "p25_ms", "p75_ms", "min_ms", "max_ms", "mean_comm_ms",
          "final_loss", "seconds"]


class Log:
    """Prints, and keeps a copy in run.log."""

    def __init__(self, path):
        self.fh = open(path, "a")

    def __call__(self, msg):
        print(msg, flush=True)
        self.fh.write(msg + "\n")
        self.fh.flush()




def torch_version():
    r = run.run_cmd(["/usr/bin/python3", "-c", "import torch; print(torch.__version__)"], 120)
    return (r[1] or "").strip() or "?"


def one(a, log, cl, world, topo, con, rep, port):
    """One run of the example; returns its row."""
    tag = f"{topo}-w{world}-{con}-r{rep}"
    times = os.path.join(a.out, "steps", tag + ".txt")
    accel = a.accel if con == "sgcoll-hook" else "off"
    deadline = a.deadline
    cmd = [run.CLUSTER, "run", cl.name, "--ranks", str(world), "--port", str(port),
           "--accel", accel, "--timeout-ms", "30000", "--deadline", str(deadline),
           "--env", "PYTHONPATH=" + os.path.join(run.REPO, "bindings", "python"),
           "--env", "SGCOLL_LIB=" + a.lib, "--env", "PYTHONDONTWRITEBYTECODE=1",
           "--", "/usr/bin/python3", EXAMPLE, "--backend", BACKEND[con],
           "--steps", str(a.steps), "--warmup", str(a.warmup), "--times-out", times]
    cmd += shlex.split(a.example_args)
    rc, out, err, secs = run.run_cmd(cmd, deadline + 60)
    kv = {}
    for line in (out or "").splitlines():
        if line.startswith("result "):
            kv = dict(t.partition("=")[::2] for t in line.split()[1:])
    if rc != 0 or not kv or kv.get("in_sync") != "1":
        log(f"  {tag}: FAILED (exit {rc})\n" + (out or "")[-2000:] + (err or "")[-2000:])
        raise SystemExit(f"torch_step: {tag} failed; nothing is counted from a failed run")
    row = {"world": world, "topology": topo, "hosts": cl.hosts, "contender": con, "run": rep,
           "accel": kv["accel"], "params": int(kv["params"]), "steps": a.steps,
           "warmup": a.warmup, "median_ms": float(kv["median_step_ms"]),
           "p25_ms": float(kv["p25_step_ms"]), "p75_ms": float(kv["p75_step_ms"]),
           "min_ms": float(kv["min_step_ms"]), "max_ms": float(kv["max_step_ms"]),
           "mean_comm_ms": kv["mean_comm_ms"], "final_loss": kv["final_loss"],
           "seconds": round(secs, 1)}
    log(f"  {topo:8s} world {world:2d} {con:11s} run {rep}: step median {row['median_ms']:9.2f} ms"
        f" [quartiles {row['p25_ms']:.2f}-{row['p75_ms']:.2f}]  in hook {row['mean_comm_ms']} ms"
        f"  ({row['seconds']} s)")
    return row


def write_md(a, rows, meta):
    L = ["# DDP training step: sgcoll.torch's hook against gloo", ""]
    short = a.runs < 3 or a.steps - a.warmup < 100
    if short:
        L += [f"**A smoke test ({a.runs} run(s) of {a.steps} steps): it shows the harness works; "
              "its figures are not a measurement.**", ""]
    L += ["Command:", "", "```", meta["command"], "```", "",
          f"{meta['date']}, git {meta['git']}; {meta['cpus']} CPUs ({meta['cpu']}), kernel "
          f"{meta['kernel']}, torch {meta['torch']}.  Load average {meta['load0']} at the start, "
          f"{meta['load1']} at the end; {meta['minutes']:.0f} min.", "",
          f"examples/train_torch.py, {rows[0]['params']:,} parameters"
          f"{' (' + a.example_args + ')' if a.example_args else ''}, {a.steps} steps, the first "
          f"{a.warmup} left out.  A step's time is the longest over the ranks; a run's figure is "
          "the median over its steps.  Each cell: median over "
          f"{a.runs} run(s) of the run medians [min–max of the run medians]; spread: median of "
          "the runs' quartiles; in hook: rank 0's mean time a step inside "
          "sgcoll.torch.allreduce_hook.  sgcoll-hook on the "
          f"{a.accel} path.  Raw runs: runs.csv; every step: steps/.", ""]
    groups = {}
    for r in rows:
        groups.setdefault((r["topology"], r["world"], r["contender"]), []).append(r)
    for topo in a.topology.split(","):
        L += [f"## {topo}" + (" (one rank per host)" if topo == "per-host" else
                              " (every worker on one host)"), "",
              "| ranks | contender | step ms | spread ms | in hook ms | gloo / this |",
              "|---|---|---|---|---|---|"]
        for world in a.worlds:
            ref = groups.get((topo, world, "gloo"))
            ref_med = statistics.median(r["median_ms"] for r in ref) if ref else None
            for con in a.contenders:
                g = groups.get((topo, world, con))
                if not g:
                    continue
                meds = [r["median_ms"] for r in g]
                med = statistics.median(meds)
                q1 = statistics.median(r["p25_ms"] for r in g)
                q3 = statistics.median(r["p75_ms"] for r in g)
                hook = statistics.median(float(r["mean_comm_ms"]) for r in g) \
                    if con == "sgcoll-hook" else None
                ratio = f"{ref_med / med:.2f}" if ref_med else "–"
                L.append(f"| {world} | {con} | {med:.2f} [{min(meds):.2f}–{max(meds):.2f}] | "
                         f"{q1:.2f}–{q3:.2f} | {'%.2f' % hook if hook is not None else '–'} | "
                         f"{ratio} |")
        L.append("")
    with open(os.path.join(a.out, "results.md"), "w") as fh:
        fh.write("\n".join(L) + "\n")
    return L


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build", required=True, help="the CMake build directory")
    p.add_argument("--out", required=True, help="results directory (created)")
    p.add_argument("--worlds", default="2,4,8")
    p.add_argument("--topology", default="per-host,one-host")
    p.add_argument("--runs", type=int, default=3, help="runs of each contender per cell")
    p.add_argument("--steps", type=int, default=200, help="steps per run, warm-up included")
    p.add_argument("--warmup", type=int, default=20, help="steps left out of each run")
    p.add_argument("--accel", default="ebpf", help="libsgcoll's path: ebpf or off")
    p.add_argument("--contenders", default=",".join(CONTENDERS))
    p.add_argument("--example-args", default="", help="more arguments for train_torch.py")
    p.add_argument("--deadline", type=int, default=600, help="seconds a run may take")
    a = p.parse_args()
    a.worlds = [int(w) for w in a.worlds.split(",")]
    a.contenders = a.contenders.split(",")
    bad = [c for c in a.contenders if c not in BACKEND] + \
        [t for t in a.topology.split(",") if t not in ("per-host", "one-host")]
    if bad or a.runs < 1 or a.steps <= a.warmup or a.warmup < 0 or min(a.worlds) < 2:
        p.error(f"contenders are {', '.join(CONTENDERS)}, topologies per-host and one-host "
                f"(got {', '.join(bad) or 'those'}); --runs >= 1, --steps > --warmup >= 0, "
                "worlds >= 2")
    if os.geteuid() != 0:
        sys.exit("torch_step: needs root (network namespaces): run as root")
    a.lib = os.path.join(os.path.abspath(a.build), "libsgcoll", "libsgcoll.so")
    if not os.path.exists(a.lib):
        sys.exit(f"torch_step: no {a.lib}: build first (cmake --build {a.build})")
    os.makedirs(os.path.join(a.out, "steps"), exist_ok=True)
    log = Log(os.path.join(a.out, "run.log"))
    meta = run.machine_info()
    meta["command"] = "/usr/bin/python3 " + " ".join(shlex.quote(x) for x in sys.argv)
    meta["torch"] = torch_version()
    meta["load0"] = run.loadavg(stamp=True)
    started = time.time()
    log(f"torch_step: {meta['command']}\n  load average {meta['load0']}, git {meta['git']}")
    rows, port = [], 7000
    try:
        for topo in a.topology.split(","):
            for world in a.worlds:
                hosts = world - 1 if topo == "per-host" else 1
                cl = run.Cluster(f"tst{os.getpid() % 10000}", hosts)
                cl.up()
                try:
                    for rep in range(a.runs):
                        for con in a.contenders:
                            # A fresh port each run: the last run's TCP
                            # connections to the gloo rendezvous may linger.
                            port = 7000 + (port - 7000 + 100) % 20000
                            rows.append(one(a, log, cl, world, topo, con, rep, port))
                finally:
                    cl.down()
    finally:
        with open(os.path.join(a.out, "runs.csv"), "w") as fh:
            fh.write(",".join(FIELDS) + "\n")
            for r in rows:
                fh.write(",".join(str(r[f]) for f in FIELDS) + "\n")
    meta["load1"] = run.loadavg(stamp=True)
    meta["minutes"] = (time.time() - started) / 60
    for line in write_md(a, rows, meta):
        log(line)


if __name__ == "__main__":
    main()
