#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Data-parallel training with PyTorch DDP, gradients averaged through libsgcoll.

Every rank builds the same model (fixed seed; by default an MLP of
1,084,417 float32 parameters, 32 -> 1024 -> 1024 -> 1), wraps it in
torch.nn.parallel.DistributedDataParallel and trains it on its shard of a
regression data set made on the fly.  DDP averages the gradients bucket by
bucket during the backward pass; with the default --backend sgcoll it does
so through libsgcoll's communication hook, sgcoll.torch.allreduce_hook
(fixed point, summed as integers, in the kernel on the eBPF path):

    ddp = DistributedDataParallel(model)
    ddp.register_comm_hook(sgcoll.torch.AllreduceState(comm, max_abs=8.0),
                           sgcoll.torch.allreduce_hook)

DDP still needs a torch.distributed process group for its own set-up (the
initial broadcast of the parameters, its checks): gloo, which carries no
gradient here.  --backend gloo takes the hook away, so that DDP averages
through that gloo group itself, for comparison.  Rank, size and the
coordinator come from SGC_RANK, SGC_WORLD_SIZE and SGC_COORDINATOR (or
torchrun's and Open MPI's variables, as sgc_init_env reads them):

  tools/sgc-cluster session --hosts 2 --ranks 4 \\
      --env PYTHONPATH=$PWD/bindings/python --env SGCOLL_LIB=$PWD/build/libsgcoll/libsgcoll.so \\
      -- /usr/bin/python3 examples/train_torch.py [--backend gloo] [--steps 200]

The gloo group meets at --init-method: by default env:// under torchrun
(MASTER_ADDR), else tcp:// on the coordinator's address and port (TCP;
libsgcoll uses UDP there); file:///shared/path works where the ranks share
a file system, as the namespaces of tools/sgc-cluster do.

Rank 0 prints the number of parameters, the loss over the whole data set
before and after training, the step time (every step's wall time is the
longest over the ranks; median and spread after --warmup steps), and a
`result` line with the figures tests/python/train_compare.py needs for the
quantisation bound (linear model only, --hidden 0: there the loss is
quadratic and the bound can be derived) and bench/torch_step.py reads.
"""
import argparse
import copy
import datetime
import fcntl
import gc
import math
import os
import socket
import struct
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=["sgcoll", "gloo"], default="sgcoll",
                   help="who averages DDP's gradient buckets: libsgcoll's hook, or gloo")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--warmup", type=int, default=5, help="steps left out of the timing")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--features", type=int, default=32)
    p.add_argument("--hidden", type=int, default=1024, help="0: a linear model")
    p.add_argument("--layers", type=int, default=2, help="hidden layers of --hidden units")
    p.add_argument("--samples-per-rank", type=int, default=256)
    p.add_argument("--batch", type=int, default=32, help="per rank and step")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--max-abs", type=float, default=8.0,
                   help="sgcoll: the largest gradient element expected (larger ones are "
                        "clamped); 0: the ranks agree on each bucket's largest (one more "
                        "small collective per bucket)")
    p.add_argument("--scale", type=float, default=None,
                   help="sgcoll: a fixed-point scale of your own instead of the one from --max-abs")
    p.add_argument("--bucket-mb", type=float, default=25.0,
                   help="DDP's gradient bucket size (bucket_cap_mb)")
    p.add_argument("--init-method", default=None,
                   help="where the gloo group meets (default: env:// under torchrun, "
                        "else tcp://COORDINATOR)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    p.add_argument("--times-out", default=None,
                   help="rank 0 writes every timed step's wall time (ms, longest over the "
                        "ranks) to this file, one a line")
    a = p.parse_args()
    if a.samples_per_rank % a.batch or a.steps < 1 or a.warmup < 0 or a.max_abs < 0 \
            or a.layers < 1 or a.hidden < 0:
        p.error("--samples-per-rank must be a multiple of --batch; --steps >= 1; "
                "--warmup >= 0; --max-abs >= 0; --layers >= 1; --hidden >= 0")
    return a


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
        layers = [torch.nn.Linear(f, h), torch.nn.Tanh()]
        for _ in range(args.layers - 1):
            layers += [torch.nn.Linear(h, h), torch.nn.Tanh()]
        m = torch.nn.Sequential(*layers, torch.nn.Linear(h, 1))
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


def init_gloo(args, rank, world, timeout_ms):
    """The torch.distributed group DDP needs for its set-up (gloo)."""
    method = args.init_method
    if method is None:
        if os.environ.get("MASTER_ADDR") and os.environ.get("MASTER_PORT"):
            method = "env://"
        else:
            host, port = os.environ["SGC_COORDINATOR"].rsplit(":", 1)
            method = f"tcp://{host}:{port}"
    # gloo binds to the address its host name resolves to unless told an
    # interface; in the namespaces that is loopback, which no peer reaches.
    if "GLOO_SOCKET_IFNAME" not in os.environ and os.environ.get("SGC_COORDINATOR"):
        ifname = local_ifname(os.environ["SGC_COORDINATOR"].rsplit(":", 1)[0])
        if ifname:
            os.environ["GLOO_SOCKET_IFNAME"] = ifname
    dist.init_process_group("gloo", init_method=method, rank=rank, world_size=world,
                            timeout=datetime.timedelta(milliseconds=timeout_ms))


def in_sync(comm, params, keep):
    """Every rank holds the same bits of every parameter (min == max).
    Tensors handed to gloo go into @keep (see the teardown in main)."""
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    bits = flat.view(torch.int32 if flat.dtype == torch.float32 else torch.int64)
    if comm is not None:
        b = bits.numpy()
        lo, hi = comm.allreduce(b, op="min"), comm.allreduce(b, op="max")
        return bool(np.array_equal(lo, b) and np.array_equal(hi, b))
    lo, hi = bits.clone(), bits.clone()
    keep += [lo, hi]
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    return bool(torch.equal(lo, bits) and torch.equal(hi, bits))


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    comm = state = None
    if args.backend == "sgcoll":
        import sgcoll
        import sgcoll.torch
        # First, so that its join (which waits for every rank) is over
        # before gloo's rendezvous starts its own connection timeouts.
        comm = sgcoll.Comm.from_env()
        state = sgcoll.torch.AllreduceState(comm, max_abs=args.max_abs or None,
                                            scale=args.scale)
        rank, world = comm.rank, comm.world_size
        accel = "ebpf" if comm.accelerated else "off"
    else:
        env = os.environ
        rank = int(env.get("SGC_RANK") or env.get("RANK") or env.get("OMPI_COMM_WORLD_RANK")
                   or sys.exit("train_torch: set SGC_RANK (run under tools/sgc-cluster)"))
        world = int(env.get("SGC_WORLD_SIZE") or env.get("WORLD_SIZE")
                    or env.get("OMPI_COMM_WORLD_SIZE")
                    or sys.exit("train_torch: set SGC_WORLD_SIZE (run under tools/sgc-cluster)"))
        accel = "-"
    timeout_ms = max(int(os.environ.get("SGC_TIMEOUT_MS") or 0), 60000)
    init_gloo(args, rank, world, timeout_ms)

    x, y = dataset(args, world)
    n, b = args.samples_per_rank, args.batch
    dt = getattr(torch, args.dtype)
    xs = torch.from_numpy(x[rank * n:(rank + 1) * n]).to(dt)     # this rank's shard
    ys = torch.from_numpy(y[rank * n:(rank + 1) * n]).to(dt)
    model = model_for(args)
    params = list(model.parameters())
    nparams = sum(p.numel() for p in params)
    ddp = DistributedDataParallel(model, bucket_cap_mb=args.bucket_mb)
    if state is not None:
        ddp.register_comm_hook(state, sgcoll.torch.allreduce_hook)
    opt = torch.optim.SGD(params, lr=args.lr)
    loss0 = full_loss(model, x, y)

    step_s, comm_s = [], []
    for step in range(args.steps):
        t0 = time.perf_counter()
        c0 = state.seconds if state else 0.0
        k = step % (n // b)
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(ddp(xs[k * b:(k + 1) * b]), ys[k * b:(k + 1) * b])
        loss.backward()                         # DDP averages the gradients here
        opt.step()
        if step >= args.warmup:
            step_s.append(time.perf_counter() - t0)
            comm_s.append((state.seconds - c0) if state else float("nan"))

    final = full_loss(model, x, y)
    keep = []                                   # every tensor gloo saw, until it is gone
    synced = in_sync(comm, params, keep)
    gnorm, hmax, bmax = (linear_figures(model, x, y, args, world) if args.hidden == 0
                         else (float("nan"),) * 3)
    # Every step's time as the longest over the ranks: the ranks wait for
    # each other in every step's averaging, so the slowest sets the pace.
    # gloo carries these figures, in either mode: they are not gradients.
    times = torch.tensor(step_s, dtype=torch.float64)
    keep.append(times)
    dist.all_reduce(times, op=dist.ReduceOp.MAX)

    # Teardown.  ProcessGroupGloo's destructor joins its worker threads,
    # and runs with the GIL held by whoever drops the last reference to
    # the group.  A worker that is still letting go of a finished
    # all_reduce may hold the last reference to a tensor that Python
    # created and has dropped: freeing it needs the GIL, and the two wait
    # for each other for ever.  (That is how this example hung at exit
    # when the DDP module, which holds a reference to the group, was left
    # to be freed as main() returned, just after a gloo all_reduce.)  So:
    # Python keeps every tensor it gave gloo (@keep) until the group is
    # gone, and the group goes at a known point: DDP first (the group
    # stays registered), then a barrier, so that no rank closes its
    # connections while another still has a gloo call under way, then
    # destroy_process_group(), which drops the last reference.
    del ddp, opt
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()
    del keep
    saturated = state.saturated if state else 0
    scale = state.last_scale if state else None
    if comm is not None:
        comm.close()

    if rank == 0:
        ms = times.numpy() * 1e3 if len(step_s) else np.array([float("nan")])
        cms = np.array(comm_s or [float("nan")]) * 1e3
        q = np.percentile(ms, [0, 25, 50, 75, 100])
        if args.times_out:
            with open(args.times_out, "w") as f:
                f.writelines(f"{v:.6f}\n" for v in ms)
        how = "gloo (DDP's own allreduce)" if args.backend == "gloo" else \
            f"libsgcoll hook ({accel} path)"
        print(f"train_torch: DDP, gradients averaged by {how}, {world} ranks")
        print(f"  model: {nparams:,} parameters ({args.dtype}), {args.steps} steps of "
              f"{b} x {world} samples")
        print(f"  loss over the data set: {loss0:.6f} -> {final:.6f}")
        print(f"  step time (longest over the ranks), {len(step_s)} steps after {args.warmup} "
              f"of warm-up: median {q[2]:.3f} ms, quartiles {q[1]:.3f}-{q[3]:.3f} ms, "
              f"range {q[0]:.3f}-{q[4]:.3f} ms")
        if args.backend == "sgcoll":
            print(f"  in the hook (rank 0): mean {np.mean(cms):.3f} ms a step; fixed-point scale "
                  f"{scale!r} (last bucket), {saturated} gradient elements clamped on rank 0")
        print(f"result backend={args.backend} accel={accel} dtype={args.dtype} ranks={world} "
              f"params={nparams} steps={args.steps} warmup={args.warmup} lr={args.lr!r} "
              f"initial_loss={loss0!r} final_loss={final!r} mean_step_ms={np.mean(ms):.4f} "
              f"median_step_ms={q[2]:.4f} p25_step_ms={q[1]:.4f} p75_step_ms={q[3]:.4f} "
              f"min_step_ms={q[0]:.4f} max_step_ms={q[4]:.4f} mean_comm_ms={np.mean(cms):.4f} "
              f"scale={scale!r} saturated={saturated} in_sync={int(synced)} "
              f"grad_norm={gnorm!r} hess_max={hmax!r} batch_hess_max={bmax!r}")
    return 0 if synced else 1


if __name__ == "__main__":
    sys.exit(main())
