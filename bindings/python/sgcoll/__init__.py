# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Python bindings for libsgcoll: MPI-style collectives over UDP.

    import numpy as np, sgcoll
    comm = sgcoll.Comm.from_env()          # SGC_RANK, SGC_WORLD_SIZE, SGC_COORDINATOR, ...
    grad = np.arange(363, dtype=np.int32)
    total = comm.allreduce(grad, op="sum")     # a new array
    comm.allreduce(grad, op="max", out=grad)   # in place
    comm.broadcast(grad, root=0)
    comm.barrier()
    comm.close()

Float gradients go through fixed point: quantised to int32 (float32) or
int64 (float64), summed as integers (in the kernel on the eBPF path) and
dequantised, so every rank gets the same bits:

    avg = comm.allreduce_float(grad32, max_abs=4.0)    # average over the ranks
    comm.last_saturated                                # this rank's clamped inputs

Errors raise sgcoll.Error carrying the library's code and message.  The
library is found through SGCOLL_LIB, then next to an installed package
(PREFIX/lib/...), then the usual loader search path.
"""
import ctypes
import ctypes.util
import math
import os

import numpy as np

__all__ = ["Comm", "Request", "Error", "ACCEL_AUTO", "ACCEL_EBPF", "ACCEL_OFF",
           "fixed_scale", "fixed_error_bound", "quantize", "dequantize"]

ACCEL_AUTO, ACCEL_EBPF, ACCEL_OFF = 0, 1, 2

_DTYPES = {
    np.dtype(np.int8): 0, np.dtype(np.uint8): 1, np.dtype(np.int16): 2, np.dtype(np.uint16): 3,
    np.dtype(np.int32): 4, np.dtype(np.uint32): 5, np.dtype(np.int64): 6, np.dtype(np.uint64): 7,
}
_OPS = {"sum": 0, "prod": 1, "min": 2, "max": 3, "band": 4, "bor": 5, "bxor": 6}


def _candidates():
    """Where libsgcoll may be, best first."""
    if os.environ.get("SGCOLL_LIB"):
        return [os.environ["SGCOLL_LIB"]]
    paths = []
    try:
        # Written by `make install`: the library directory relative to this one.
        from ._libpath import LIBDIR_FROM_PACKAGE
        here = os.path.dirname(os.path.abspath(__file__))
        paths.append(os.path.normpath(os.path.join(here, LIBDIR_FROM_PACKAGE, "libsgcoll.so.0")))
    except ImportError:
        pass
    paths.append(ctypes.util.find_library("sgcoll"))
    paths.append("libsgcoll.so.0")
    return [p for p in paths if p]


def _open():
    tried = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path}: {e}")
    raise ImportError("sgcoll: cannot load libsgcoll; set SGCOLL_LIB to the path of "
                      "libsgcoll.so.0 or install it where the loader looks (tried "
                      + "; ".join(tried) + ")")


def _load():
    lib = _open()
    vp, sz, i, u = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_uint
    d, lg = ctypes.c_double, ctypes.c_long
    sigs = {
        "sgc_init": (i, [vp, ctypes.POINTER(vp)]),
        "sgc_init_env": (i, [ctypes.POINTER(vp)]),
        "sgc_finalize": (None, [vp]),
        "sgc_rank": (i, [vp]),
        "sgc_world_size": (i, [vp]),
        "sgc_accelerated": (i, [vp]),
        "sgc_allreduce": (i, [vp, vp, vp, sz, i, i]),
        "sgc_reduce": (i, [vp, vp, vp, sz, i, i, i]),
        "sgc_broadcast": (i, [vp, vp, sz, i, i]),
        "sgc_barrier": (i, [vp]),
        "sgc_iallreduce": (i, [vp, vp, vp, sz, i, i, ctypes.POINTER(vp)]),
        "sgc_ibroadcast": (i, [vp, vp, sz, i, i, ctypes.POINTER(vp)]),
        "sgc_test": (i, [vp, ctypes.POINTER(i)]),
        "sgc_wait": (i, [vp]),
        "sgc_fd": (i, [vp]),
        "sgc_strerror": (ctypes.c_char_p, [i]),
        "sgc_last_error": (ctypes.c_char_p, []),
        "sgc_fixed_scale": (d, [i, d, i]),
        "sgc_quantize_f32": (lg, [vp, vp, sz, i, d, d]),
        "sgc_quantize_f64": (lg, [vp, vp, sz, i, d, d]),
        "sgc_dequantize_f32": (i, [vp, vp, sz, i, d, d]),
        "sgc_dequantize_f64": (i, [vp, vp, sz, i, d, d]),
        "sgc_allreduce_float": (i, [vp, vp, vp, sz, d, i, ctypes.POINTER(sz)]),
        "sgc_allreduce_double": (i, [vp, vp, vp, sz, d, i, ctypes.POINTER(sz)]),
    }
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    del u
    return lib


_lib = _load()


class Error(RuntimeError):
    """A libsgcoll call failed: .code is the negative errno-style code."""

    def __init__(self, code, what):
        self.code = code
        detail = (_lib.sgc_last_error() or b"").decode(errors="replace")
        cause = (_lib.sgc_strerror(code) or b"").decode(errors="replace")
        super().__init__(f"{what}: {detail or cause} ({code})")


def _check(rc, what):
    if rc < 0:
        raise Error(rc, what)
    return rc


def _dtype(a):
    try:
        return _DTYPES[a.dtype]
    except KeyError:
        raise TypeError(f"sgcoll reduces integer arrays; {a.dtype} is not one "
                        "(use the fixed-point helpers for floats)") from None


def _op(op):
    try:
        return _OPS[op]
    except KeyError:
        raise ValueError(f"op must be one of {sorted(_OPS)}, not {op!r}") from None


def _contig(a, name):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array")
    if not a.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    return a


# ---- Fixed point: float arrays through integer reductions ----

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
_I32, _I64 = np.dtype(np.int32), np.dtype(np.int64)
_CARRIER = {_F32: _I32, _F64: _I64, _I32: _I32, _I64: _I64}
# The largest integer a sum may reach: the type's maximum, and at most 2^53
# for int64 so that the dequantising doubles hold it exactly (as in C).
_SUM_MAX = {_I32: 2**31 - 1, _I64: 2**53}


def _floats(a, name):
    a = _contig(a, name)
    if a.dtype not in (_F32, _F64):
        raise TypeError(f"{name} must be float32 or float64, not {a.dtype}")
    return a


def _carrier(dtype):
    """int32 for float32/int32, int64 for float64/int64."""
    try:
        return _CARRIER[np.dtype(dtype)]
    except KeyError:
        raise TypeError(f"fixed point carries float32 in int32 and float64 in int64; "
                        f"{np.dtype(dtype)} is neither") from None


def fixed_scale(world_size, max_abs, dtype=np.float32):
    """The scale for values of magnitude <= max_abs summed over world_size ranks.

    The largest power of two s such that world_size * round(max_abs * s)
    still fits the integer type that carries `dtype` (int32 for float32,
    int64 for float64, at most 2^53 for int64).  Raises ValueError when
    there is none (max_abs not finite and > 0, or world_size < 1).
    """
    it = _carrier(dtype)
    s = _lib.sgc_fixed_scale(int(world_size), float(max_abs), _DTYPES[it])
    if not s:
        raise ValueError(f"no fixed-point scale for max_abs={max_abs!r} over {world_size} ranks "
                         f"in {it}: max_abs must be finite and > 0, world_size >= 1")
    return s


def fixed_error_bound(scale, world_size=1, average=True):
    """How far a fixed-point sum or average may be from the exact one.

    Each quantised input is within 0.5 / scale of its value, so an average
    is within 0.5 / scale and a sum over world_size ranks within
    world_size * 0.5 / scale, as long as no input was saturated.  Storing
    the result as a float adds its own rounding on top: half an ulp of the
    result (2**-24 * |x| for float32, 2**-53 * |x| for float64).
    """
    return 0.5 / scale * (1 if average else world_size)


def _quantize(x, scale, limit, it, out):
    fn = _lib.sgc_quantize_f32 if x.dtype == _F32 else _lib.sgc_quantize_f64
    n = fn(x.ctypes.data, out.ctypes.data, x.size, _DTYPES[it], float(scale), float(limit))
    return _check(n, "sgc_quantize")


def quantize(x, scale, max_abs=None, dtype=None, out=None):
    """(q, nsaturated): q = round(x * scale) as integers, clamped at +-max_abs * scale.

    x is a float32 or float64 array; q is int32 (default for float32) or
    int64 (default for float64), or `dtype`.  Without max_abs the clamp is
    the integer type's range.  NaN becomes 0.  nsaturated counts the
    elements that were clamped or NaN: the overflow flag.
    """
    x = _floats(x, "x")
    it = _carrier(dtype if dtype is not None else x.dtype)
    if it not in (_I32, _I64) or (dtype is not None and np.dtype(dtype) != it):
        raise TypeError("quantize: dtype must be int32 or int64")
    out = np.empty(x.shape, it) if out is None else _contig(out, "out")
    if out.dtype != it or out.shape != x.shape:
        raise ValueError(f"out must be {it} with the shape of x")
    limit = 0.0 if max_abs is None else float(max_abs) * float(scale)
    if max_abs is not None and not limit >= 1:
        raise ValueError(f"max_abs * scale = {limit!r}: it must be at least 1")
    return out, _quantize(x, scale, limit, it, out)


def dequantize(q, scale, divisor=1, dtype=np.float32, out=None):
    """q / (scale * divisor) as float32 or float64 (`dtype`, or out's dtype)."""
    q = _contig(q, "q")
    if q.dtype not in (_I32, _I64):
        raise TypeError(f"q must be int32 or int64, not {q.dtype}")
    out = np.empty(q.shape, dtype) if out is None else _contig(out, "out")
    out = _floats(out, "out")
    if out.shape != q.shape:
        raise ValueError("out must have the shape of q")
    fn = _lib.sgc_dequantize_f32 if out.dtype == _F32 else _lib.sgc_dequantize_f64
    _check(fn(q.ctypes.data, out.ctypes.data, q.size, _DTYPES[q.dtype], float(scale),
              float(divisor)), "sgc_dequantize")
    return out


class _Config(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("rank", ctypes.c_int), ("world_size", ctypes.c_int),
                ("coordinator", ctypes.c_char_p), ("bind_addr", ctypes.c_char_p),
                ("ifname", ctypes.c_char_p), ("accel", ctypes.c_int),
                ("timeout_ms", ctypes.c_uint), ("delivery", ctypes.c_int),
                ("waitmode", ctypes.c_int), ("flags", ctypes.c_uint),
                ("custom_bpf", ctypes.c_char_p), ("key", ctypes.c_char_p)]


def _key_bytes(key):
    """The job key as 16 bytes: from bytes, or a str of 32 hex digits."""
    if isinstance(key, str):
        try:
            key = bytes.fromhex(key)
        except ValueError:
            raise ValueError("key must be 32 hex digits (128 bits), e.g. os.urandom(16).hex()")
    if not isinstance(key, (bytes, bytearray)) or len(key) != 16:
        raise ValueError("key must be 16 bytes or 32 hex digits, the same on every rank")
    return bytes(key)


class Request:
    """A non-blocking collective: test() or wait() once; keeps its arrays alive."""

    def __init__(self, handle, keep, result):
        self._h, self._keep, self._result = handle, keep, result

    def test(self):
        """True (and the result is ready) when done; raises on failure."""
        if self._h is None:
            return True
        done = ctypes.c_int(0)
        rc = _lib.sgc_test(self._h, ctypes.byref(done))
        if done.value:
            self._h = None
        _check(rc, "sgc_test")
        return bool(done.value)

    def wait(self):
        """Block until done; returns the result array."""
        if self._h is not None:
            h, self._h = self._h, None
            _check(_lib.sgc_wait(h), "sgc_wait")
        return self._result


class Comm:
    """A communicator: Comm(rank=, world_size=, coordinator=, ...) or Comm.from_env()."""

    def __init__(self, rank=None, world_size=None, coordinator=None, bind_addr=None,
                 ifname=None, accel=ACCEL_AUTO, timeout_ms=0, key=None, _handle=None):
        if _handle is None:
            cfg = _Config(sz=ctypes.sizeof(_Config), rank=rank, world_size=world_size,
                          coordinator=coordinator.encode() if coordinator else None,
                          bind_addr=bind_addr.encode() if bind_addr else None,
                          ifname=ifname.encode() if ifname else None,
                          accel=accel, timeout_ms=timeout_ms,
                          key=_key_bytes(key) if key is not None else None)
            h = ctypes.c_void_p()
            _check(_lib.sgc_init(ctypes.byref(cfg), ctypes.byref(h)), "sgc_init")
            _handle = h
        self._h = _handle
        self.last_saturated, self.last_scale = 0, None

    @classmethod
    def from_env(cls):
        h = ctypes.c_void_p()
        _check(_lib.sgc_init_env(ctypes.byref(h)), "sgc_init_env")
        return cls(_handle=h)

    def close(self):
        if getattr(self, "_h", None):   # also when __init__ failed
            _lib.sgc_finalize(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    @property
    def rank(self):
        return _lib.sgc_rank(self._h)

    @property
    def world_size(self):
        return _lib.sgc_world_size(self._h)

    @property
    def accelerated(self):
        return bool(_lib.sgc_accelerated(self._h))

    def fileno(self):
        return _lib.sgc_fd(self._h)

    def allreduce(self, a, op="sum", out=None):
        """The reduction of `a` over all ranks, into `out` (may be `a`) or a new array."""
        a = _contig(a, "a")
        out = np.empty_like(a) if out is None else _contig(out, "out")
        if out.shape != a.shape or out.dtype != a.dtype:
            raise ValueError("out must have the shape and dtype of a")
        _check(_lib.sgc_allreduce(self._h, a.ctypes.data, out.ctypes.data, a.size, _dtype(a),
                                  _op(op)), "sgc_allreduce")
        return out

    def reduce(self, a, op="sum", root=0, out=None):
        """The reduction at `root` (returned there; None elsewhere)."""
        a = _contig(a, "a")
        if self.rank == root and out is None:
            out = np.empty_like(a)
        _check(_lib.sgc_reduce(self._h, a.ctypes.data, out.ctypes.data if out is not None else None,
                               a.size, _dtype(a), _op(op), root), "sgc_reduce")
        return out if self.rank == root else None

    def broadcast(self, a, root=0):
        """Overwrite `a` with root's `a`, in place; returns `a`."""
        a = _contig(a, "a")
        _check(_lib.sgc_broadcast(self._h, a.ctypes.data, a.size, _dtype(a), root),
               "sgc_broadcast")
        return a

    def barrier(self):
        _check(_lib.sgc_barrier(self._h), "sgc_barrier")

    def allreduce_float(self, a, average=True, max_abs=None, scale=None, out=None):
        """Average (or sum) a float32/float64 array over all ranks through fixed point.

        Quantises to int32 (float32) or int64 (float64), sums as integers
        and dequantises, so every rank gets the same bits.  Every rank must
        pass the same max_abs and scale.  With max_abs only, the scale is
        fixed_scale(world_size, max_abs) (the C sgc_allreduce_float /
        sgc_allreduce_double); with scale, that scale is used and inputs
        are clamped at max_abs * scale if max_abs is given, else where the
        sum over the ranks would overflow.

        Error: each element is within fixed_error_bound(scale, world_size,
        average) of the exact result, plus half an ulp of the result, as
        long as no input was clamped.  self.last_saturated tells how many
        of this rank's inputs were clamped (or NaN); self.last_scale gives
        the scale used.  Returns out (which may be a) or a new array.
        """
        a = _floats(a, "a")
        out = np.empty_like(a) if out is None else _floats(out, "out")
        if out.shape != a.shape or out.dtype != a.dtype:
            raise ValueError("out must have the shape and dtype of a")
        world = self.world_size
        if scale is None:
            if max_abs is None:
                raise ValueError("allreduce_float needs max_abs (the largest magnitude "
                                 "expected, the same on every rank) or scale")
            nsat = ctypes.c_size_t(0)
            fn = _lib.sgc_allreduce_float if a.dtype == _F32 else _lib.sgc_allreduce_double
            _check(fn(self._h, a.ctypes.data, out.ctypes.data, a.size, float(max_abs),
                      int(bool(average)), ctypes.byref(nsat)), "sgc_allreduce_float")
            self.last_saturated = nsat.value
            self.last_scale = fixed_scale(world, max_abs, a.dtype)
            return out
        if not (scale > 0 and math.isfinite(scale)):
            raise ValueError(f"scale must be finite and > 0, not {scale!r}")
        it = _carrier(a.dtype)
        limit = math.floor(_SUM_MAX[it] / world)     # the sum over the ranks cannot wrap
        if max_abs is not None:
            limit = min(limit, math.floor(float(max_abs) * scale))
        if limit < 1:
            raise ValueError(f"scale {scale!r} with max_abs {max_abs!r} leaves no room "
                             f"for {world} ranks in {it}")
        q = np.empty(a.shape, it)
        nsat = _quantize(a, scale, limit, it, q)
        self.allreduce(q, op="sum", out=q)
        dequantize(q, scale, world if average else 1, out=out)
        self.last_saturated, self.last_scale = nsat, float(scale)
        return out

    def iallreduce(self, a, op="sum", out=None):
        a = _contig(a, "a")
        out = np.empty_like(a) if out is None else _contig(out, "out")
        h = ctypes.c_void_p()
        _check(_lib.sgc_iallreduce(self._h, a.ctypes.data, out.ctypes.data, a.size, _dtype(a),
                                   _op(op), ctypes.byref(h)), "sgc_iallreduce")
        return Request(h, (a, out), out)

    def ibroadcast(self, a, root=0):
        a = _contig(a, "a")
        h = ctypes.c_void_p()
        _check(_lib.sgc_ibroadcast(self._h, a.ctypes.data, a.size, _dtype(a), root,
                                   ctypes.byref(h)), "sgc_ibroadcast")
        return Request(h, (a,), a)
