# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""pytest: the fixed-point helpers of the Python package, in one process
(no cluster): fixed_scale's contract, quantize/dequantize against numpy,
saturation and the overflow count, argument errors."""
from fractions import Fraction

import numpy as np
import pytest

import sgcoll

TYPE_MAX = {np.int32: 2**31 - 1, np.int64: 2**53}   # int64 sums stay exact in doubles


@pytest.mark.parametrize("dtype,carrier", [(np.float32, np.int32), (np.float64, np.int64)])
@pytest.mark.parametrize("world", [1, 2, 4, 9, 257])
@pytest.mark.parametrize("max_abs", [1e-3, 0.75, 1.0, 3.0, 1e4])
def test_fixed_scale_is_the_largest_power_of_two_that_fits(dtype, carrier, world, max_abs):
    s = sgcoll.fixed_scale(world, max_abs, dtype)
    assert s == sgcoll.fixed_scale(world, max_abs, carrier)
    mant, _ = np.frexp(s)
    assert mant == 0.5, f"{s} is not a power of two"
    # The sum of world quantised values fits the type; with 2s it would not
    # (the library keeps one unit per rank for rounding up).
    exact = Fraction(max_abs) * Fraction(s)
    assert world * round(exact) < TYPE_MAX[carrier]
    assert world * (2 * exact + 1) > TYPE_MAX[carrier]


@pytest.mark.parametrize("bad", [(0, 1.0), (4, 0.0), (4, -1.0), (4, float("inf")),
                                 (4, float("nan"))])
def test_fixed_scale_refuses(bad):
    with pytest.raises(ValueError):
        sgcoll.fixed_scale(bad[0], bad[1])


def test_fixed_scale_refuses_other_types():
    with pytest.raises(TypeError):
        sgcoll.fixed_scale(4, 1.0, np.float16)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantize_matches_numpy_and_counts_saturation(dtype):
    rng = np.random.default_rng(7)
    x = rng.uniform(-2.0, 2.0, 10000).astype(dtype)
    x[:3] = [np.nan, 1e30, -1e30]
    scale, max_abs = 2.0**12, 1.5
    q, nsat = sgcoll.quantize(x, scale, max_abs=max_abs)
    assert q.dtype == (np.int32 if dtype == np.float32 else np.int64)
    lim = max_abs * scale
    want = np.clip(np.rint(np.nan_to_num(x.astype(np.float64), nan=0.0) * scale), -lim, lim)
    assert np.array_equal(q, want.astype(q.dtype))
    clipped = np.sum(np.abs(np.rint(x[3:].astype(np.float64) * scale)) > lim)
    assert nsat == 3 + clipped and clipped > 1000
    # Inside the clamp every element comes back within 0.5 / scale.
    back = sgcoll.dequantize(q, scale, dtype=dtype)
    inside = np.abs(x) <= max_abs
    err = np.abs(back[inside].astype(np.float64) - x[inside].astype(np.float64))
    assert np.max(err) <= sgcoll.fixed_error_bound(scale) * (1 + 2.0**-20)


def test_quantize_without_max_abs_saturates_at_the_type_range():
    x = np.array([1e12, -1e12, 3.0], np.float32)
    q, nsat = sgcoll.quantize(x, 1.0)
    assert nsat == 2 and q[0] == 2**31 - 1 and q[1] == -(2**31 - 1) and q[2] == 3


def test_quantize_into_int64_from_float32():
    q, nsat = sgcoll.quantize(np.array([0.25, -0.75], np.float32), 4.0, dtype=np.int64)
    assert q.dtype == np.int64 and list(q) == [1, -3] and nsat == 0


def test_dequantize_divides_by_scale_and_divisor():
    q = np.array([8, -12, 0, 2**40], np.int64)
    got = sgcoll.dequantize(q, 4.0, divisor=2, dtype=np.float64)
    assert list(got) == [1.0, -1.5, 0.0, 2.0**37]
    out = np.empty(4, np.float32)
    assert sgcoll.dequantize(q, 4.0, divisor=2, out=out) is out and out[1] == -1.5


def test_argument_errors():
    with pytest.raises(TypeError):
        sgcoll.quantize(np.zeros(3, np.int32), 1.0)
    with pytest.raises(TypeError):
        sgcoll.quantize(np.zeros(3, np.float32), 1.0, dtype=np.int16)
    with pytest.raises(ValueError):
        sgcoll.quantize(np.zeros(3, np.float32), 1.0, max_abs=0.1)   # clamp below one unit
    with pytest.raises(sgcoll.Error) as e:
        sgcoll.quantize(np.zeros(3, np.float32), -1.0)
    assert e.value.code < 0 and "scale" in str(e.value)
    with pytest.raises(sgcoll.Error):
        sgcoll.dequantize(np.zeros(3, np.int32), 1.0, divisor=0)
    with pytest.raises(TypeError):
        sgcoll.dequantize(np.zeros(3, np.uint32), 1.0)
    with pytest.raises(ValueError):
        sgcoll.quantize(np.zeros(3, np.float32), 1.0, out=np.zeros(4, np.int32))
