# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Run by every rank in the virtual cluster: DDP with sgcoll.torch.allreduce_hook
against DDP with its default gloo allreduce, on the same parameters and
batches, step by step.

For each step both models start from the same parameters (the hook
model's, copied into the reference), every rank feeds its own batch, and
after backward every averaged gradient element of the hook model must be
within the fixed-point bound of the reference's:
    0.5 / s  +  float rounding (a few ulps of the gradient),
where s is the scale of the coarsest bucket: fixed_scale(world, M) with M
the largest local gradient magnitude over every rank (agreed range), or
the scale that AllreduceState reports (fixed range).  A third, plain copy
gives the local gradients for M.  The hook's result must also be the same
bits on every rank, and a NaN on one rank must reach every rank (agreed
range).  Prints one line per case and a last line the test looks for.
"""
import copy
import math
import os
import sys

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

import sgcoll
import sgcoll.torch

STEPS = 4
LR = 0.05
NP_DTYPE = {torch.float32: np.float32, torch.float64: np.float64}


def make_model(dtype):
    torch.manual_seed(3)
    return torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.Tanh(),
                               torch.nn.Linear(64, 64), torch.nn.Tanh(),
                               torch.nn.Linear(64, 4)).to(dtype)


def batch(rank, step, dtype):
    g = torch.Generator().manual_seed(1000 * step + rank)
    # Ranks see differently scaled data, so their gradients differ.
    x = torch.randn(32, 16, generator=g, dtype=dtype) * (1 + rank)
    y = torch.randn(32, 4, generator=g, dtype=dtype)
    return x, y


def grads(module):
    return [p.grad.detach().clone() for p in module.parameters()]


def same_bits_everywhere(tensors):
    flat = torch.cat([t.reshape(-1) for t in tensors])
    bits = flat.view(torch.int32 if flat.dtype == torch.float32 else torch.int64)
    lo, hi = bits.clone(), bits.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    return torch.equal(lo, bits) and torch.equal(hi, bits)


def run_case(comm, name, dtype, max_abs):
    rank, world = dist.get_rank(), dist.get_world_size()
    model = make_model(dtype)
    ref_net, local_net = copy.deepcopy(model), copy.deepcopy(model)
    # Small buckets, the first one too (torch's documented knob; DDP makes
    # it 1 MiB otherwise): several hook calls a step.
    dist._DEFAULT_FIRST_BUCKET_BYTES = 4000
    hooked = DDP(model, bucket_cap_mb=0.004)
    ref = DDP(ref_net, bucket_cap_mb=0.004)
    state = sgcoll.torch.AllreduceState(comm, max_abs=max_abs)
    hooked.register_comm_hook(state, sgcoll.torch.allreduce_hook)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    eps = torch.finfo(dtype).eps
    worst = 0.0
    for step in range(STEPS):
        with torch.no_grad():
            for p, q, r in zip(model.parameters(), ref_net.parameters(), local_net.parameters()):
                q.copy_(p)
                r.copy_(p)
        x, y = batch(rank, step, dtype)
        for net in (hooked, ref, local_net):
            net.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
        got, want = grads(model), grads(ref_net)
        local_max = torch.tensor([max(float(g.abs().max()) for g in grads(local_net))],
                                 dtype=torch.float64)
        dist.all_reduce(local_max, op=dist.ReduceOp.MAX)
        if max_abs is None:
            scale = sgcoll.fixed_scale(world, float(local_max), NP_DTYPE[dtype])
        else:
            scale = state.last_scale
            assert state.saturated == 0, f"{name}: {state.saturated} elements clamped"
        for g, w in zip(got, want):
            tol = sgcoll.fixed_error_bound(scale) + 4 * eps * float(w.abs().max()) + 1e-30
            err = float((g - w).abs().max())
            worst = max(worst, err / tol)
            assert err <= tol, f"{name} step {step}: error {err:.3e} over the bound {tol:.3e}"
        assert same_bits_everywhere(got), f"{name} step {step}: ranks got different gradients"
        opt.step()
    # DDP rebuilds its buckets after the first step (here into 2).
    assert state.buckets > STEPS, f"{name}: {state.buckets} hook calls in {STEPS} steps; " \
        "want several buckets a step"
    if max_abs is None:
        # A NaN on the last rank: every rank's hook model sees non-finite
        # gradients, as the gloo reference does (a GradScaler skips the step).
        x, y = batch(rank, STEPS, dtype)
        if rank == world - 1:
            x[0, 0] = math.nan
        for net in (hooked, ref):
            net.zero_grad()
            torch.nn.functional.mse_loss(net(x), y).backward()
        for net in (model, ref_net):
            assert not all(bool(torch.isfinite(p.grad).all()) for p in net.parameters()), \
                f"{name}: a NaN on rank {world - 1} did not reach rank {rank}"
    if rank == 0:
        print(f"rank_ddp_hook: {name}: {STEPS} steps, {state.buckets} buckets, "
              f"worst error {worst:.3f} of the bound, {state.seconds * 1e3:.1f} ms in the hook")


def main():
    env = os.environ
    rank, world = int(env["SGC_RANK"]), int(env["SGC_WORLD_SIZE"])
    host, port = env["SGC_COORDINATOR"].rsplit(":", 1)
    # Explicit arguments, accel as a string (the cluster's SGC_ACCEL).
    comm = sgcoll.Comm(rank=rank, world_size=world, coordinator=env["SGC_COORDINATOR"],
                       bind_addr=env.get("SGC_BIND"), ifname=env.get("SGC_IFNAME"),
                       accel=env["SGC_ACCEL"], timeout_ms=int(env.get("SGC_TIMEOUT_MS", 0)))
    if rank == 0:
        assert comm.accelerated == (env["SGC_ACCEL"] == "ebpf"), \
            f"accel={env['SGC_ACCEL']!r} but accelerated={comm.accelerated}"
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://{host}:{port}", rank=rank,
                            world_size=world)
    run_case(comm, "float32, agreed range", torch.float32, None)
    run_case(comm, "float32, max_abs 8", torch.float32, 8.0)
    run_case(comm, "float64, agreed range", torch.float64, None)
    dist.barrier()
    dist.destroy_process_group()
    comm.close()
    if rank == 0:
        print(f"rank_ddp_hook: {world} ranks, accel {env['SGC_ACCEL']}: "
              "hook gradients match gloo's within the bound")
    return 0


if __name__ == "__main__":
    sys.exit(main())
