#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Data-parallel training with PyTorch, gradients averaged through libsgcoll.

Every rank builds the same small model (fixed seed), trains it on its shard
of a regression data set made on the fly, and averages the gradients after
each backward pass with one call: Comm.allreduce_float of the flattened
gradients (fixed point, summed as integers, in the kernel on the eBPF
path).  --backend gloo does the same with torch.distributed (gloo, one
all_reduce per step) for comparison.  Both take rank, size and the
coordinator from SGC_RANK, SGC_WORLD_SIZE and SGC_COORDINATOR:

  tools/sgc-cluster session --hosts 2 --ranks 4 \\
      --env PYTHONPATH=$PWD/bindings/python --env SGCOLL_LIB=$PWD/build/libsgcoll/libsgcoll.so \\
      -- /usr/bin/python3 examples/train_torch.py [--backend gloo] [--steps 200]

Rank 0 prints the loss over the whole data set before and after training,
the mean step time, and a `result` line with the figures tests/python/
train_compare.py needs for the quantisation bound (linear model only,
--hidden 0: there the loss is quadratic and the bound can be derived).
"""
import argparse
import copy
import fcntl
import math
import os
import socket
import struct
import sys
import time

import numpy as np
import torch


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=["sgcoll", "gloo"], default="sgcoll")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=5, help="steps left out of the timing")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--features", type=int, default=32)
    p.add_argument("--hidden", type=int, default=64, help="0: a linear model")
    p.add_argument("--samples-per-rank", type=int, default=256)
    p.add_argument("--batch", type=int, default=32, help="per rank and step")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--max-abs", type=float, default=8.0,
                   help="sgcoll: the largest gradient element expected (larger ones are clamped)")
    p.add_argument("--scale", type=float, default=None,
                   help="sgcoll: a fixed-point scale of your own instead of the one from --max-abs")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    a = p.parse_args()
    if a.samples_per_rank % a.batch or a.steps < 1 or a.warmup < 0:
        p.error("--samples-per-rank must be a multiple of --batch; --steps >= 1; --warmup >= 0")
    return a


def env_int(*names):
    for n in names:
        if os.environ.get(n):
            return int(os.environ[n])
    sys.exit(f"train_torch: set {names[0]} (run under tools/sgc-cluster or mpirun)")


def local_ifname(coordinator_ip):
    """The interface this host reaches the coordinator from (for gloo)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((coordinator_ip, 9))          # selects a route, sends nothing
        mine = s.getsockname()[0]
        for _, name in socket.if_nameindex():
            try:
                req = struct.pack("256s", name.encode()[:15])
                addr = fcntl.ioctl(s.fileno(), 0x8915, req)[20:24]    # SIOCGIFADDR
            except OSError:
                continue
            if socket.inet_ntoa(addr) == mine:
                return name
    return None


def dataset(args, world):
    """The whole data set, the same on every rank: y = x.w + 0.5 sin(x0) + noise."""
    rng = np.random.default_rng(args.seed)
    n = args.samples_per_rank * world
    x = rng.standard_normal((n, args.features))
    w = rng.standard_normal(args.features) / math.sqrt(args.features)
    y = x @ w + 0.3 + 0.5 * np.sin(x[:, 0]) + 0.05 * rng.standard_normal(n)
    return x, y[:, None]


def model_for(args):
    torch.manual_seed(args.seed)
    f, h = args.features, args.hidden
    if h == 0:
        m = torch.nn.Linear(f, 1)
    else:
        m = torch.nn.Sequential(torch.nn.Linear(f, h), torch.nn.Tanh(), torch.nn.Linear(h, 1))
    return m.to(getattr(torch, args.dtype))


def full_loss(model, x, y):
    """MSE over the whole data set, in float64."""
    with torch.no_grad():
        m = copy.deepcopy(model).double()
        return float(torch.nn.functional.mse_loss(m(torch.from_numpy(x)), torch.from_numpy(y)))


def linear_figures(model, x, y, args, world):
    """For the bound (linear model): |grad L|, the largest Hessian eigenvalue
    of the full loss and of every step's combined batch, all in float64."""
    theta = np.concatenate([p.detach().double().numpy().ravel() for p in model.parameters()])
    xa = np.hstack([x, np.ones((len(x), 1))])       # weights then bias, as parameters() lists them
    hess = 2.0 / len(x) * xa.T @ xa
    grad = hess @ theta - 2.0 / len(x) * xa.T @ y[:, 0]
    n, b = args.samples_per_rank, args.batch
    batch_max = 0.0
    for k in range(n // b):
        rows = np.concatenate([np.arange(r * n + k * b, r * n + (k + 1) * b) for r in range(world)])
        a_k = 2.0 / len(rows) * xa[rows].T @ xa[rows]
        batch_max = max(batch_max, float(np.linalg.eigvalsh(a_k)[-1]))
    return float(np.linalg.norm(grad)), float(np.linalg.eigvalsh(hess)[-1]), batch_max


class SgcollAverager:
    def __init__(self, args):
        import sgcoll
        self.comm = sgcoll.Comm.from_env()
        self.args = args
        self.saturated = 0
        self.accel = "ebpf" if self.comm.accelerated else "off"

    def average(self, flat):
        g = flat.numpy()
        self.comm.allreduce_float(g, average=True, max_abs=self.args.max_abs,
                                  scale=self.args.scale, out=g)
        self.saturated += self.comm.last_saturated

    def in_sync(self, flat):
        bits = flat.numpy().view(np.int32 if flat.dtype == torch.float32 else np.int64)
        lo, hi = self.comm.allreduce(bits, op="min"), self.comm.allreduce(bits, op="max")
        return bool(np.array_equal(lo, bits) and np.array_equal(hi, bits))

    def scale(self):
        return self.comm.last_scale

    def close(self):
        self.comm.close()


class GlooAverager:
    def __init__(self, args, rank, world):
        import torch.distributed as dist
        self.dist, self.world, self.saturated, self.accel = dist, world, 0, "-"
        host, port = os.environ["SGC_COORDINATOR"].rsplit(":", 1)
        if "GLOO_SOCKET_IFNAME" not in os.environ:
            ifname = local_ifname(host)
            if ifname:
                os.environ["GLOO_SOCKET_IFNAME"] = ifname
        timeout_ms = int(os.environ.get("SGC_TIMEOUT_MS") or 60000)
        import datetime
        dist.init_process_group("gloo", init_method=f"tcp://{host}:{port}", rank=rank,
                                world_size=world,
                                timeout=datetime.timedelta(milliseconds=max(timeout_ms, 30000)))

    def average(self, flat):
        self.dist.all_reduce(flat, op=self.dist.ReduceOp.SUM)
        flat /= self.world

    def in_sync(self, flat):
        bits = torch.from_numpy(flat.numpy().view(np.int32 if flat.dtype == torch.float32
                                                  else np.int64).copy())
        lo, hi = bits.clone(), bits.clone()
        self.dist.all_reduce(lo, op=self.dist.ReduceOp.MIN)
        self.dist.all_reduce(hi, op=self.dist.ReduceOp.MAX)
        return bool(torch.equal(lo, bits) and torch.equal(hi, bits))

    def scale(self):
        return None

    def close(self):
        self.dist.destroy_process_group()


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    rank = env_int("SGC_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK")
    world = env_int("SGC_WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")
    avg = SgcollAverager(args) if args.backend == "sgcoll" else GlooAverager(args, rank, world)

    x, y = dataset(args, world)
    n, b = args.samples_per_rank, args.batch
    dt = getattr(torch, args.dtype)
    xs = torch.from_numpy(x[rank * n:(rank + 1) * n]).to(dt)     # this rank's shard
    ys = torch.from_numpy(y[rank * n:(rank + 1) * n]).to(dt)
    model = model_for(args)
    params = list(model.parameters())
    nparams = sum(p.numel() for p in params)
    opt = torch.optim.SGD(params, lr=args.lr)
    loss0 = full_loss(model, x, y)

    step_s, comm_s = [], []
    for step in range(args.steps):
        t0 = time.perf_counter()
        k = step % (n // b)
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(xs[k * b:(k + 1) * b]), ys[k * b:(k + 1) * b])
        loss.backward()
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        t1 = time.perf_counter()
        avg.average(flat)                       # one collective per step
        t2 = time.perf_counter()
        off = 0
        for p in params:
            p.grad.copy_(flat[off:off + p.numel()].view_as(p))
            off += p.numel()
        opt.step()
        if step >= args.warmup:
            step_s.append(time.perf_counter() - t0)
            comm_s.append(t2 - t1)

    final = full_loss(model, x, y)
    synced = avg.in_sync(torch.cat([p.detach().reshape(-1) for p in params]))
    gnorm, hmax, bmax = (linear_figures(model, x, y, args, world) if args.hidden == 0
                         else (float("nan"),) * 3)
    scale = avg.scale()
    avg.close()
    if rank == 0:
        ms = np.array(step_s or [float("nan")]) * 1e3
        cms = np.array(comm_s or [float("nan")]) * 1e3
        how = args.backend if args.backend == "gloo" else f"libsgcoll ({avg.accel} path)"
        print(f"train_torch: {how}, {world} ranks, {nparams} parameters ({args.dtype}), "
              f"{args.steps} steps of {b} x {world} samples")
        print(f"  loss over the data set: {loss0:.6f} -> {final:.6f}")
        print(f"  step time: mean {ms.mean():.3f} ms, median {np.median(ms):.3f} ms "
              f"(gradient averaging: mean {cms.mean():.3f} ms) over {len(step_s)} steps")
        if args.backend == "sgcoll":
            print(f"  fixed-point scale {scale:g}, {avg.saturated} gradient elements clamped "
                  f"on rank 0")
        print(f"result backend={args.backend} accel={avg.accel} dtype={args.dtype} ranks={world} "
              f"params={nparams} steps={args.steps} lr={args.lr!r} initial_loss={loss0!r} "
              f"final_loss={final!r} mean_step_ms={ms.mean():.4f} "
              f"median_step_ms={np.median(ms):.4f} mean_comm_ms={cms.mean():.4f} "
              f"scale={scale!r} saturated={avg.saturated} in_sync={int(synced)} "
              f"grad_norm={gnorm!r} hess_max={hmax!r} batch_hess_max={bmax!r}")
    return 0 if synced else 1


if __name__ == "__main__":
    sys.exit(main())
