#!/usr/bin/env python3
"""Issue 15's ratios from bench/run.py summaries: auto and ebpf against off
(p50 and throughput with 16 in flight), the coordinator-bound rows (XDP
responder) and p50 per worker at 257 ranks against 65.
  table.py DIR [DIR...]   (each a bench/run.py results directory)"""
import csv
import sys


def load(d):
    with open(d + "/summary.csv") as fh:
        rows = list(csv.DictReader(l for l in fh if not l.startswith("#")))
    return {(r["workload"], r["mode"], int(r["fanout"]), r["contender"]): r for r in rows}


def val(r, k):
    return float(r[k]) if r and r.get(k) else float("nan")


def rng(r, lo, hi):
    return f"[{val(r, lo):.0f}–{val(r, hi):.0f}]"


for d in sys.argv[1:]:
    s = load(d)
    print(f"## {d.rstrip('/').split('/')[-1]}\n")
    print("| vector | workers | p50 off µs | p50 auto / off | p50 ebpf / off | ops/s off | "
          "ops/s auto / off | ops/s ebpf / off | ebpf resends per op |")
    print("|---|---|---|---|---|---|---|---|---|")
    for wl in ("ar1", "ar363", "ar64k"):
        for f in (8, 16, 32, 64, 128, 256):
            u, a, e = (s.get((wl, "lat", f, c)) for c in ("sgc-user", "sgc-auto", "sgc-ebpf-ringbuf"))
            ut, at, et = (s.get((wl, "tput", f, c)) for c in ("sgc-user", "sgc-auto", "sgc-ebpf-ringbuf"))
            if not u:
                continue
            print(f"| {wl} | {f} | {val(u, 'p50_us'):.0f} {rng(u, 'p50_min', 'p50_max')} | "
                  f"{val(a, 'p50_us') / val(u, 'p50_us'):.2f} | {val(e, 'p50_us') / val(u, 'p50_us'):.2f} | "
                  f"{val(ut, 'tput_ops'):.0f} {rng(ut, 'tput_min', 'tput_max')} | "
                  f"{val(at, 'tput_ops') / val(ut, 'tput_ops'):.2f} | "
                  f"{val(et, 'tput_ops') / val(ut, 'tput_ops'):.2f} | "
                  f"{val(e, 'retx') / val(e, 'ops'):.2f} |")
    print("\nCoordinator-bound (XDP responder, throughput with 16 in flight):\n")
    print("| vector | workers | off ops/s | ebpf ops/s | ebpf / off | rank 0 CPU µs/op off, ebpf |")
    print("|---|---|---|---|---|---|")
    for wl in ("ar1", "ar363"):
        for f in (32, 64, 128, 256):
            u, e = s.get((wl, "tput", f, "sgc-user+xdp")), s.get((wl, "tput", f, "sgc-ebpf-ringbuf+xdp"))
            if u and e:
                print(f"| {wl} | {f} | {val(u, 'tput_ops'):.0f} | {val(e, 'tput_ops'):.0f} | "
                      f"{val(e, 'tput_ops') / val(u, 'tput_ops'):.2f} | "
                      f"{val(u, 'cpu_us_per_op'):.0f}, {val(e, 'cpu_us_per_op'):.0f} |")
    print("\nNo cliff: p50 per worker at 256 workers over that at 64 (target at most 1.5):\n")
    print("| vector | off | auto | ebpf |")
    print("|---|---|---|---|")
    for wl in ("ar1", "ar363"):
        cells = []
        for c in ("sgc-user", "sgc-auto", "sgc-ebpf-ringbuf"):
            hi, lo = s.get((wl, "lat", 256, c)), s.get((wl, "lat", 64, c))
            cells.append(f"{val(hi, 'p50_us') / 256 / (val(lo, 'p50_us') / 64):.2f}")
        print(f"| {wl} | " + " | ".join(cells) + " |")
    print()
