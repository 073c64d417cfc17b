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

Errors raise sgcoll.Error carrying the library's code and message.  The
library is found through SGCOLL_LIB, then the usual loader search path.
"""
import ctypes
import ctypes.util
import os

import numpy as np

__all__ = ["Comm", "Request", "Error", "ACCEL_AUTO", "ACCEL_EBPF", "ACCEL_OFF"]

ACCEL_AUTO, ACCEL_EBPF, ACCEL_OFF = 0, 1, 2

_DTYPES = {
    np.dtype(np.int8): 0, np.dtype(np.uint8): 1, np.dtype(np.int16): 2, np.dtype(np.uint16): 3,
    np.dtype(np.int32): 4, np.dtype(np.uint32): 5, np.dtype(np.int64): 6, np.dtype(np.uint64): 7,
}
_OPS = {"sum": 0, "prod": 1, "min": 2, "max": 3, "band": 4, "bor": 5, "bxor": 6}


def _load():
    path = os.environ.get("SGCOLL_LIB") or ctypes.util.find_library("sgcoll") or "libsgcoll.so.0"
    lib = ctypes.CDLL(path)
    vp, sz, i, u = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_uint
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


class _Config(ctypes.Structure):
    _fields_ = [("sz", ctypes.c_size_t), ("rank", ctypes.c_int), ("world_size", ctypes.c_int),
                ("coordinator", ctypes.c_char_p), ("bind_addr", ctypes.c_char_p),
                ("ifname", ctypes.c_char_p), ("accel", ctypes.c_int),
                ("timeout_ms", ctypes.c_uint), ("delivery", ctypes.c_int),
                ("waitmode", ctypes.c_int), ("flags", ctypes.c_uint),
                ("custom_bpf", ctypes.c_char_p)]


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
                 ifname=None, accel=ACCEL_AUTO, timeout_ms=0, _handle=None):
        if _handle is None:
            cfg = _Config(sz=ctypes.sizeof(_Config), rank=rank, world_size=world_size,
                          coordinator=coordinator.encode() if coordinator else None,
                          bind_addr=bind_addr.encode() if bind_addr else None,
                          ifname=ifname.encode() if ifname else None,
                          accel=accel, timeout_ms=timeout_ms)
            h = ctypes.c_void_p()
            _check(_lib.sgc_init(ctypes.byref(cfg), ctypes.byref(h)), "sgc_init")
            _handle = h
        self._h = _handle

    @classmethod
    def from_env(cls):
        h = ctypes.c_void_p()
        _check(_lib.sgc_init_env(ctypes.byref(h)), "sgc_init_env")
        return cls(_handle=h)

    def close(self):
        if self._h:
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
