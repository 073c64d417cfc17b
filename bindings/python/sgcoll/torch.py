# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""PyTorch DistributedDataParallel through libsgcoll: a communication hook.

    import torch.distributed as dist, sgcoll, sgcoll.torch
    dist.init_process_group("gloo", ...)       # DDP's own set-up and checks
    comm = sgcoll.Comm.from_env()
    model = torch.nn.parallel.DistributedDataParallel(net)
    model.register_comm_hook(sgcoll.torch.AllreduceState(comm),
                             sgcoll.torch.allreduce_hook)

DDP still needs a process group (gloo will do) for what it does besides
averaging gradients: broadcasting the initial parameters from rank 0,
checking that every rank has the same model, rebuilding its buckets.  The
gradients themselves, bucket by bucket, go through libsgcoll: quantised to
fixed point, summed as integers (in the kernel on the eBPF path) and
dequantised, so every rank gets the same bits.

The hook is synchronous: it averages the bucket before it returns, and the
Future it returns is already complete.  Buckets are averaged in DDP's
bucket order, the same on every rank, as libsgcoll requires.
"""
import math as _math
import time as _time

import numpy as _np
import torch as _torch

from . import Comm as _Comm

__all__ = ["AllreduceState", "allreduce_hook"]

# Bucket dtypes averaged as they are; half precision goes through float32.
_NATIVE = {_torch.float32: _np.int32, _torch.float64: _np.int64}
_WIDENED = (_torch.float16, _torch.bfloat16)


class AllreduceState:
    """The state for allreduce_hook: the communicator and the fixed-point range.

    comm     an sgcoll.Comm with the same ranks as DDP's process group
             (rank r of one is rank r of the other).
    max_abs  None (default): for each bucket the ranks first agree on its
             largest magnitude (one more collective of one element) and
             take the finest scale that cannot overflow, so nothing is
             clamped; a gradient that is not finite on any rank turns the
             bucket into NaN on every rank, so that a GradScaler skips the
             step, as it would with gloo.
             A number: the largest gradient element expected, the same on
             every rank; saves the extra collective, and larger elements
             are clamped (NaN becomes 0), counted in self.saturated.
    scale    an explicit fixed-point scale instead of the one derived from
             max_abs (see Comm.allreduce_float).

    Every element of the averaged bucket is within
    sgcoll.fixed_error_bound(self.last_scale) of the exact average, plus
    float rounding, as long as nothing was clamped.

    Counters (this rank): buckets (averaged), saturated (elements clamped
    or NaN, fixed range only), seconds (spent in the hook), last_scale.
    """

    def __init__(self, comm, max_abs=None, scale=None):
        if not isinstance(comm, _Comm):
            raise TypeError(f"comm must be an sgcoll.Comm, not {type(comm).__name__}")
        if max_abs is not None and not (max_abs > 0 and _math.isfinite(max_abs)):
            raise ValueError(f"max_abs must be finite and > 0, or None, not {max_abs!r}")
        self.comm, self.max_abs, self.scale = comm, max_abs, scale
        self.buckets, self.saturated, self.seconds, self.last_scale = 0, 0, 0.0, None

    def _agreed_max(self, flat):
        """The largest magnitude in this bucket over every rank (inf if any is not finite).

        Non-negative IEEE floats order as their bit patterns, so the
        integer max of the bits is the max of the values, exactly."""
        fdt, idt = (_np.float32, _np.int32) if flat.dtype == _np.float32 else \
            (_np.float64, _np.int64)
        local = float(_np.max(_np.abs(flat))) if flat.size else 0.0
        if not _math.isfinite(local):
            local = _math.inf
        bits = _np.array([local], fdt).view(idt)
        self.comm.allreduce(bits, op="max", out=bits)
        return float(bits.view(fdt)[0])

    def average(self, flat):
        """Average the float32/float64 numpy array `flat` over the ranks, in place."""
        comm = self.comm
        if self.max_abs is not None or self.scale is not None:
            comm.allreduce_float(flat, average=True, max_abs=self.max_abs, scale=self.scale,
                                 out=flat)
            self.saturated += comm.last_saturated
            self.last_scale = comm.last_scale
            return flat
        m = self._agreed_max(flat)
        if not _math.isfinite(m):
            flat[...] = _np.nan
            return flat
        if m == 0:
            return flat         # zero on every rank: the average is zero
        comm.allreduce_float(flat, average=True, max_abs=m, out=flat)
        self.last_scale = comm.last_scale
        return flat


def _state(state):
    if isinstance(state, AllreduceState):
        return state
    if isinstance(state, _Comm):
        return AllreduceState(state)
    raise TypeError("the hook's state must be an sgcoll.torch.AllreduceState or an "
                    f"sgcoll.Comm, not {type(state).__name__}")


def allreduce_hook(state, bucket):
    """DDP communication hook: average the gradient bucket through libsgcoll.

    model.register_comm_hook(state, sgcoll.torch.allreduce_hook) with
    state an AllreduceState or a bare sgcoll.Comm (the same as
    AllreduceState(comm)).  Returns a torch.futures.Future, already
    completed with the averaged bucket (the bucket's own buffer,
    overwritten).  float32 and float64 buckets are averaged as they are,
    float16 and bfloat16 ones in float32; buckets on a GPU are copied to
    the host and back.
    """
    st = _state(state)
    t0 = _time.perf_counter()
    buf = bucket.buffer()
    if buf.dtype in _NATIVE and buf.device.type == "cpu":
        work = buf
    elif buf.dtype in _NATIVE or buf.dtype in _WIDENED:
        work = buf.detach().to("cpu", _torch.float32 if buf.dtype in _WIDENED else buf.dtype)
    else:
        raise TypeError(f"sgcoll.torch.allreduce_hook averages float gradients, not {buf.dtype}")
    work = work.contiguous()
    st.average(work.detach().numpy())
    if work is not buf:
        buf.copy_(work)
    st.buckets += 1
    st.seconds += _time.perf_counter() - t0
    fut = _torch.futures.Future()
    fut.set_result(buf)
    return fut


def __dir__():
    return sorted(set(__all__) | {n for n in globals() if n.startswith("__") and n.endswith("__")})
