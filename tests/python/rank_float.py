# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Run by every rank in the virtual cluster: Comm.allreduce_float against an
exact reference, with the error measured and checked against the bound.

The reference is the correctly rounded sum over the ranks (math.fsum per
element) divided by the world size.  Allowed error per element:
fixed_error_bound(scale, world, average) for the quantisation, plus the
rounding of the float result (half an ulp: 2**-24 relative for float32)
and of the reference and the dequantising multiply (2**-51 relative).
Rank 0 prints the measured worst error as a fraction of that bound."""
import math
import sys

import numpy as np

import sgcoll

REL = {np.dtype(np.float32): 2.0**-24 + 2.0**-51, np.dtype(np.float64): 2.0**-51}
INT = {np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64}


def inputs(rank, n, dt, salt, spread):
    rng = np.random.default_rng(10000 * salt + rank)
    return rng.uniform(-spread, spread, n).astype(dt)


def reference(xs, world, average, clamp=None):
    """Exact sum or average (correctly rounded sum, then one division)."""
    cols = np.stack([x.astype(np.float64) for x in xs])
    if clamp is not None:
        cols = np.clip(np.nan_to_num(cols, nan=0.0), -clamp, clamp)
    ref = np.array([math.fsum(cols[:, i]) for i in range(cols.shape[1])])
    return ref / world if average else ref


def same_on_every_rank(comm, got):
    bits = got.view(INT[got.dtype])
    return (np.array_equal(comm.allreduce(bits, op="min"), bits)
            and np.array_equal(comm.allreduce(bits, op="max"), bits))


def check(comm, label, got, ref, scale, average, report):
    """Assert every element is within the bound; return the worst error / bound."""
    bound = sgcoll.fixed_error_bound(scale, comm.world_size, average)
    g = got.astype(np.float64)
    allowed = bound + REL[got.dtype] * np.maximum(np.abs(g), np.abs(ref))
    err = np.abs(g - ref)
    assert np.all(err <= allowed), (label, float(np.max(err - allowed)), bound)
    assert same_on_every_rank(comm, got), label
    worst = float(np.max(err)) if err.size else 0.0
    ratio = float(np.max(err / allowed)) if err.size else 0.0
    report.append(f"{label:44s} max error {worst:.3e}  quantisation bound {bound:.3e}  "
                  f"worst error/allowed {ratio:.3f}")
    return ratio


def main():
    comm = sgcoll.Comm.from_env()
    r, w = comm.rank, comm.world_size
    report, salt = [], 0
    for dt in (np.float32, np.float64):
        name = np.dtype(dt).name
        for average in (True, False):
            what = "average" if average else "sum"
            for n in (0, 1, 363, 5000):
                # The library's scale from max_abs (sgc_allreduce_float/_double).
                salt += 1
                x = inputs(r, n, dt, salt, 1.0)
                got = comm.allreduce_float(x, average=average, max_abs=1.0)
                assert comm.last_saturated == 0
                ref = reference([inputs(k, n, dt, salt, 1.0) for k in range(w)], w, average)
                check(comm, f"{name} {what} max_abs=1 n={n}", got, ref, comm.last_scale,
                      average, report)
            # A coarse scale of the caller's: quantisation dominates the
            # error, which must then come near the bound (so the bound is
            # neither wrong nor vacuous), in place.
            salt += 1
            x = inputs(r, 5000, dt, salt, 3.0)
            comm.allreduce_float(x, average=average, scale=2.0**10, out=x)
            ref = reference([inputs(k, 5000, dt, salt, 3.0) for k in range(w)], w, average)
            ratio = check(comm, f"{name} {what} scale=2^10 n=5000 (in place)", x, ref, 2.0**10,
                          average, report)
            assert ratio > 0.25, f"quantisation error {ratio} of the bound: was it quantised?"
        # Saturation: rank r's element r is beyond max_abs, element w + r is
        # NaN; both are clamped (NaN to 0) and counted.
        salt += 1
        x = inputs(r, 2 * w + 10, dt, salt, 1.0)
        x[r], x[w + r] = 5.0 * (1 if r % 2 else -1), np.nan
        got = comm.allreduce_float(x, max_abs=1.0)
        assert comm.last_saturated == 2, comm.last_saturated
        xs = []
        for k in range(w):
            xk = inputs(k, 2 * w + 10, dt, salt, 1.0)
            xk[k], xk[w + k] = 5.0 * (1 if k % 2 else -1), np.nan
            xs.append(xk)
        check(comm, f"{name} average, saturated inputs clamped", got,
              reference(xs, w, True, clamp=1.0), comm.last_scale, True, report)
        # The caller's scale without max_abs clamps where the sum would wrap.
        x = np.full(8, 1e30, dt)
        got = comm.allreduce_float(x, average=False, scale=2.0**10)
        assert comm.last_saturated == 8
        limit = math.floor((2**31 - 1 if dt == np.float32 else 2**53) / w)
        assert np.all(got == np.asarray(w * limit / 2.0**10).astype(dt)), got[:2]
    try:
        comm.allreduce_float(np.zeros(4, np.float16), max_abs=1.0)
        raise AssertionError("float16 must be refused")
    except TypeError:
        pass
    try:
        comm.allreduce_float(np.zeros(4, np.float32))
        raise AssertionError("neither max_abs nor scale must be refused")
    except ValueError:
        pass
    comm.barrier()
    comm.close()
    if r == 0:
        print("\n".join(report))
        print(f"rank_float: {w} ranks, every fixed-point result within the bound")
    return 0


if __name__ == "__main__":
    sys.exit(main())
