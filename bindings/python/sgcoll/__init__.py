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

Non-blocking calls return a Request; finish one with wait() or test(),
several (of one communicator or more) with waitall() or testany():

    reqs = [comm.iallreduce(g) for g in grads] + [comm.ibarrier()]
    results = sgcoll.waitall(reqs)          # in order; None for the barrier
    idx, flag = sgcoll.testany(reqs)        # as MPI_Testany, never blocks

Arrays that are not C-contiguous (slices, transposes) are copied first, and
results written back into them.  PyTorch: sgcoll.torch holds a DDP
communication hook (import sgcoll.torch; it needs torch).

Errors raise sgcoll.Error carrying the library's code and message.  The
library is found through SGCOLL_LIB, then next to an installed package
(PREFIX/lib/...), then the usual loader search path.  sgcoll.__version__ is
the version of the library that was loaded.
"""
# Imported under private names, and dir() lists only the API (__dir__ at
# the end): the modules this one uses are not part of it.
import ctypes as _ctypes
import ctypes.util as _ctypes_util
import math as _math
import operator as _operator
import os as _os

import numpy as _np

__all__ = ["Comm", "Request", "Error", "ACCEL_AUTO", "ACCEL_EBPF", "ACCEL_OFF", "UNDEFINED",
           "waitall", "testany", "fixed_scale", "fixed_error_bound", "quantize", "dequantize"]

ACCEL_AUTO, ACCEL_EBPF, ACCEL_OFF = 0, 1, 2
# Comm.split()'s color for a rank that joins no new communicator (SGC_UNDEFINED).
UNDEFINED = -32766
# Comm(accel=...) also takes these names, as SGC_ACCEL does.
_ACCELS = {"auto": ACCEL_AUTO, "ebpf": ACCEL_EBPF, "off": ACCEL_OFF}

_DTYPES = {_np.dtype(t): i for i, t in enumerate(
    ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"])}   # enum sgc_dtype
_OPS = {"sum": 0, "prod": 1, "min": 2, "max": 3, "band": 4, "bor": 5, "bxor": 6}


def _candidates():
    """Where libsgcoll may be, best first."""
    if _os.environ.get("SGCOLL_LIB"):
        return [_os.environ["SGCOLL_LIB"]]
    paths = []
    try:
        # Written by `make install`: the library directory relative to this one.
        from ._libpath import LIBDIR_FROM_PACKAGE
        here = _os.path.dirname(_os.path.abspath(__file__))
        paths.append(_os.path.normpath(_os.path.join(here, LIBDIR_FROM_PACKAGE, "libsgcoll.so.0")))
    except ImportError:
        pass
    # Importing a submodule binds it in the package; it is no part of the API.
    globals().pop("_libpath", None)
    paths.append(_ctypes_util.find_library("sgcoll"))
    paths.append("libsgcoll.so.0")
    return [p for p in paths if p]


def _open():
    tried = []
    for path in _candidates():
        try:
            return _ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path}: {e}")
    raise ImportError("sgcoll: cannot load libsgcoll; set SGCOLL_LIB to the path of "
                      "libsgcoll.so.0 or install it where the loader looks (tried "
                      + "; ".join(tried) + ")")


def _load():
    lib = _open()
    vp, sz, i = _ctypes.c_void_p, _ctypes.c_size_t, _ctypes.c_int
    d, lg = _ctypes.c_double, _ctypes.c_long
    sigs = {
        "sgc_init": (i, [vp, _ctypes.POINTER(vp)]),
        "sgc_init_env": (i, [_ctypes.POINTER(vp)]),
        "sgc_finalize": (None, [vp]),
        "sgc_comm_split": (i, [vp, i, i, _ctypes.POINTER(vp)]),
        "sgc_comm_dup": (i, [vp, _ctypes.POINTER(vp)]),
        "sgc_rank": (i, [vp]),
        "sgc_world_size": (i, [vp]),
        "sgc_accelerated": (i, [vp]),
        "sgc_allreduce": (i, [vp, vp, vp, sz, i, i]),
        "sgc_reduce": (i, [vp, vp, vp, sz, i, i, i]),
        "sgc_broadcast": (i, [vp, vp, sz, i, i]),
        "sgc_barrier": (i, [vp]),
        "sgc_iallreduce": (i, [vp, vp, vp, sz, i, i, _ctypes.POINTER(vp)]),
        "sgc_ibroadcast": (i, [vp, vp, sz, i, i, _ctypes.POINTER(vp)]),
        "sgc_ireduce": (i, [vp, vp, vp, sz, i, i, i, _ctypes.POINTER(vp)]),
        "sgc_ibarrier": (i, [vp, _ctypes.POINTER(vp)]),
        "sgc_waitall": (i, [i, _ctypes.POINTER(vp), _ctypes.POINTER(i)]),
        "sgc_testany": (i, [i, _ctypes.POINTER(vp), _ctypes.POINTER(i), _ctypes.POINTER(i)]),
        "sgc_reduce_scatter": (i, [vp, vp, vp, sz, i, i]),
        "sgc_ireduce_scatter": (i, [vp, vp, vp, sz, i, i, _ctypes.POINTER(vp)]),
        "sgc_allgather": (i, [vp, vp, vp, sz, i]),
        "sgc_iallgather": (i, [vp, vp, vp, sz, i, _ctypes.POINTER(vp)]),
        "sgc_test": (i, [vp, _ctypes.POINTER(i)]),
        "sgc_wait": (i, [vp]),
        "sgc_fd": (i, [vp]),
        "sgc_strerror": (_ctypes.c_char_p, [i]),
        "sgc_last_error": (_ctypes.c_char_p, []),
        "sgc_fixed_scale": (d, [i, d, i]),
        "sgc_quantize_f32": (lg, [vp, vp, sz, i, d, d]),
        "sgc_quantize_f64": (lg, [vp, vp, sz, i, d, d]),
        "sgc_dequantize_f32": (i, [vp, vp, sz, i, d, d]),
        "sgc_dequantize_f64": (i, [vp, vp, sz, i, d, d]),
        "sgc_allreduce_float": (i, [vp, vp, vp, sz, d, i, _ctypes.POINTER(sz)]),
        "sgc_allreduce_double": (i, [vp, vp, vp, sz, d, i, _ctypes.POINTER(sz)]),
        "sgc_version": (_ctypes.c_char_p, []),
    }
    for name, (res, args) in sigs.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            raise ImportError(f"sgcoll: {lib._name} has no {name}: it is an older libsgcoll "
                              "than these bindings; point SGCOLL_LIB at the library built "
                              "with them") from None
        fn.restype, fn.argtypes = res, args
    return lib


_lib = _load()

__version__ = _lib.sgc_version().decode()


class Error(RuntimeError):
    """A libsgcoll call failed: .code is the negative errno-style code;
    .index, for waitall() and testany(), the position of the request that
    failed (None otherwise)."""

    def __init__(self, code, what, index=None):
        self.code, self.index = code, index
        detail = (_lib.sgc_last_error() or b"").decode(errors="replace")
        cause = (_lib.sgc_strerror(code) or b"").decode(errors="replace")
        text = detail or cause
        # Some of the library's messages name their call already.
        super().__init__(f"{text} ({code})" if text.startswith(what + ":")
                         else f"{what}: {text} ({code})")


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


def _input(a, name):
    """a as a C-contiguous array: itself, or a copy when it is not contiguous."""
    if not isinstance(a, _np.ndarray):
        raise TypeError(f"{name} must be a numpy array, not {type(a).__name__}")
    return a if a.flags.c_contiguous else _np.ascontiguousarray(a)


def _output(out, name, like=None):
    """(buf, out): the C-contiguous buffer the library writes and the array
    the caller gets.  A non-contiguous out gets a buffer of its own (or
    `like`, an input copy of the same shape and dtype, for in-place calls),
    copied back by _deliver()."""
    if not isinstance(out, _np.ndarray):
        raise TypeError(f"{name} must be a numpy array, not {type(out).__name__}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    if out.flags.c_contiguous:
        return out, out
    if like is not None and like.shape == out.shape and like.dtype == out.dtype:
        return like, out
    return _np.empty(out.shape, out.dtype), out


def _deliver(buf, out):
    """Copy a result from its buffer into a non-contiguous out; returns out."""
    if buf is not out:
        out[...] = buf
    return out


def _accel(accel):
    """ACCEL_* or its name ("auto", "ebpf", "off") as the library's enum value."""
    valid = f"{', '.join(map(repr, _ACCELS))} (or ACCEL_AUTO, ACCEL_EBPF, ACCEL_OFF)"
    if isinstance(accel, str):
        try:
            return _ACCELS[accel.lower()]
        except KeyError:
            raise ValueError(f"accel must be one of {valid}, not {accel!r}") from None
    if not isinstance(accel, int) or isinstance(accel, bool):
        raise TypeError(f"accel must be one of {valid}, not {type(accel).__name__}")
    if accel not in _ACCELS.values():
        raise ValueError(f"accel must be one of {valid}, not {accel!r}")
    return accel


# ---- Fixed point: float arrays through integer reductions ----

_F32, _F64 = _np.dtype(_np.float32), _np.dtype(_np.float64)
_I32, _I64 = _np.dtype(_np.int32), _np.dtype(_np.int64)
_CARRIER = {_F32: _I32, _F64: _I64, _I32: _I32, _I64: _I64}
# The largest integer a sum may reach: the type's maximum, and at most 2^53
# for int64 so that the dequantising doubles hold it exactly (as in C).
_SUM_MAX = {_I32: 2**31 - 1, _I64: 2**53}


def _floats(a, name):
    if a.dtype not in (_F32, _F64):
        raise TypeError(f"{name} must be float32 or float64, not {a.dtype}")
    return a


def _carrier(dtype):
    """int32 for float32/int32, int64 for float64/int64."""
    try:
        return _CARRIER[_np.dtype(dtype)]
    except KeyError:
        raise TypeError(f"fixed point carries float32 in int32 and float64 in int64; "
                        f"{_np.dtype(dtype)} is neither") from None


def fixed_scale(world_size, max_abs, dtype=_np.float32):
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
    x = _floats(_input(x, "x"), "x")
    it = _carrier(dtype if dtype is not None else x.dtype)
    if it not in (_I32, _I64) or (dtype is not None and _np.dtype(dtype) != it):
        raise TypeError("quantize: dtype must be int32 or int64")
    buf, out = (_np.empty(x.shape, it),) * 2 if out is None else _output(out, "out")
    if out.dtype != it or out.shape != x.shape:
        raise ValueError(f"out must be {it} with the shape of x")
    limit = 0.0 if max_abs is None else float(max_abs) * float(scale)
    if max_abs is not None and not limit >= 1:
        raise ValueError(f"max_abs * scale = {limit!r}: it must be at least 1")
    nsat = _quantize(x, scale, limit, it, buf)
    return _deliver(buf, out), nsat


def dequantize(q, scale, divisor=1, dtype=_np.float32, out=None):
    """q / (scale * divisor) as float32 or float64 (`dtype`, or out's dtype)."""
    q = _input(q, "q")
    if q.dtype not in (_I32, _I64):
        raise TypeError(f"q must be int32 or int64, not {q.dtype}")
    buf, out = (_np.empty(q.shape, dtype),) * 2 if out is None else _output(out, "out")
    _floats(out, "out")
    if out.shape != q.shape:
        raise ValueError("out must have the shape of q")
    fn = _lib.sgc_dequantize_f32 if out.dtype == _F32 else _lib.sgc_dequantize_f64
    _check(fn(q.ctypes.data, buf.ctypes.data, q.size, _DTYPES[q.dtype], float(scale),
              float(divisor)), "sgc_dequantize")
    return _deliver(buf, out)


class _Config(_ctypes.Structure):
    _fields_ = [("sz", _ctypes.c_size_t), ("rank", _ctypes.c_int), ("world_size", _ctypes.c_int),
                ("coordinator", _ctypes.c_char_p), ("bind_addr", _ctypes.c_char_p),
                ("ifname", _ctypes.c_char_p), ("accel", _ctypes.c_int),
                ("timeout_ms", _ctypes.c_uint), ("delivery", _ctypes.c_int),
                ("waitmode", _ctypes.c_int), ("flags", _ctypes.c_uint),
                ("custom_bpf", _ctypes.c_char_p), ("key", _ctypes.c_char_p)]


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
    """A non-blocking collective, from Comm.iallreduce(), ibroadcast(),
    ireduce(), ibarrier(), ireduce_scatter() or iallgather().

    Call test() until it returns True, or wait() once; or hand several
    requests, of one communicator or of several, to sgcoll.waitall() or
    sgcoll.testany().  The request keeps its arrays alive until it is done;
    do not change them meanwhile.  A result for a non-contiguous array is
    copied into it when the request completes.  Failures raise sgcoll.Error
    from test() or wait() (and again from each later call on the request).
    A request dropped unfinished is finished by its communicator, as
    MPI_Request_free: it keeps the arrays until then, frees the request at
    its next non-blocking call or at close(), and reports no result.
    """

    def __init__(self, handle, keep, buf, result, comm=None):
        self._h, self._keep, self._buf, self._result = handle, keep, buf, result
        self._err = None
        self._comm = comm

    def __del__(self):
        # Dropped before it finished: the library may still write into the
        # arrays, so the communicator keeps them, and the request, until it
        # finishes (as MPI_Request_free); its result is not looked at.
        h = getattr(self, "_h", None)
        if h is None:
            return
        try:
            comm = self._comm
            if comm is not None and getattr(comm, "_h", None):
                comm.__dict__.setdefault("_orphans", []).append((h, self._keep))
            else:
                _lib.sgc_wait(h)        # finalized: cancelled already; this frees it
        except Exception:               # interpreter shutdown: nothing left to protect
            pass

    def _finish(self):
        if self._buf is not None:       # ibarrier(), ireduce() off the root: no result
            _deliver(self._buf, self._result)
        self._keep = self._buf = None

    def _done(self, rc, what, index=None):
        """The library finished and freed the request with result rc."""
        self._h = None
        if rc < 0:
            self._err = Error(rc, what, index)
            self._keep = self._buf = None
        else:
            self._finish()

    def test(self):
        """Make progress; True (and the result is ready) when done.  Raises on failure."""
        if self._h is None:
            if self._err:
                raise self._err
            return True
        done = _ctypes.c_int(0)
        rc = _lib.sgc_test(self._h, _ctypes.byref(done))
        if done.value:
            self._done(rc, "sgc_test")
        _check(rc, "sgc_test")
        return bool(done.value)

    def wait(self):
        """Block until done (or the communicator's timeout); returns the
        result array (None for ibarrier(), and for ireduce() off the root)."""
        if self._h is not None:
            self._done(_lib.sgc_wait(self._h), "sgc_wait")
        if self._err:
            raise self._err
        return self._result


def _handles(requests):
    """(list, ctypes array of their handles): None and finished requests
    count as the library's NULL entries."""
    reqs = list(requests)
    for k, r in enumerate(reqs):
        if r is not None and not isinstance(r, Request):
            raise TypeError(f"requests[{k}] is a {type(r).__name__}, not a sgcoll.Request")
    arr = (_ctypes.c_void_p * max(len(reqs), 1))(*[r._h if r is not None else None
                                                    for r in reqs])
    return reqs, arr


def waitall(requests):
    """Block until every request in `requests` is done (sgc_waitall).

    The requests may belong to different communicators: all of them make
    progress while this waits.  None entries and requests already done are
    skipped.  Returns the list of results, as each request's wait() would
    give them (None for a None entry).  When some failed, every request is
    still finished, and the first failure in list order is raised as
    sgcoll.Error with .index set; each failed request's wait() raises its
    own error.  A request listed twice raises sgcoll.Error (-EINVAL) and
    leaves all of them pending.
    """
    reqs, arr = _handles(requests)
    n = len(reqs)
    st = (_ctypes.c_int * max(n, 1))()
    live = [k for k, r in enumerate(reqs) if r is not None and r._h is not None]
    rc = _lib.sgc_waitall(n, arr, st)
    if any(arr[k] is not None for k in live):
        # Refused before anything was waited for (a request listed twice):
        # the library freed none of them.
        raise Error(rc, "sgc_waitall")
    for k in live:
        reqs[k]._done(st[k], "sgc_waitall", k)
    # The first failure in list order, a request that failed before included,
    # as wait() would raise it.
    for r in reqs:
        if r is not None and r._err:
            raise r._err
    _check(rc, "sgc_waitall")
    return [r._result if r is not None else None for r in reqs]


def testany(requests):
    """Make progress without blocking; (index, flag), as MPI_Testany.

    flag is True when the request at `index` has finished: its wait() now
    returns its result at once.  flag is False (index None) when none has
    finished yet: wait on each communicator's fileno() before calling
    again.  With no request left to finish (all None or done, or an empty
    list) the answer is (None, True).  A request that finished with a
    failure raises sgcoll.Error with .index set (and its wait() raises it
    too); so does a failure of the progress step (.index None).
    """
    reqs, arr = _handles(requests)
    index, done = _ctypes.c_int(-1), _ctypes.c_int(0)
    rc = _lib.sgc_testany(len(reqs), arr, _ctypes.byref(index), _ctypes.byref(done))
    if done.value and index.value >= 0:
        k = index.value
        reqs[k]._done(rc, "sgc_testany", k)
        if reqs[k]._err:
            raise reqs[k]._err
        return k, True
    _check(rc, "sgc_testany")
    return None, bool(done.value)


class Comm:
    """A communicator: this process's membership in a job of world_size ranks.

    Comm(rank, world_size, coordinator, bind_addr=None, ifname=None,
         accel="auto", timeout_ms=0, key=None)
    joins a job (sgc_init); Comm.from_env() does the same from SGC_*
    environment variables.  Every rank must make the same calls in the
    same order.  Use it as a context manager, or call close().

    Parameters:
      rank         this process's rank, 0 .. world_size - 1; rank 0 is the
                   coordinator.
      world_size   the number of ranks, the coordinator included.
      coordinator  rank 0's address, "ipv4:port" (the same on every rank).
      bind_addr    this rank's "ipv4" or "ipv4:port"; None: the address of
                   the route to the coordinator, a free port.
      ifname       the coordinator's interface for the eBPF path; None:
                   the interface of that route.
      accel        "auto" (eBPF path when it can be loaded, else user
                   space), "ebpf" (fail when it cannot), "off" (user-space
                   path); or ACCEL_AUTO, ACCEL_EBPF, ACCEL_OFF.  Matters on
                   the coordinator; workers always use the user-space path.
      timeout_ms   per blocking call; 0: the library's default (10000).
      key          the job key, 16 bytes or 32 hex digits, the same on every
                   rank: every datagram then carries a MAC.  None: no key.

    Arrays: numpy arrays of int8, uint8, int16, uint16, int32, uint32, int64
    or uint64 for allreduce, reduce, broadcast and their non-blocking
    forms iallreduce, ireduce and ibroadcast (ibarrier too returns a Request);
    float32 or float64 for allreduce_float.  Any shape; arrays that are not
    C-contiguous are copied, and results written back into them.

    Operations (op=): "sum", "prod", "min", "max", "band" (bitwise and),
    "bor" (bitwise or), "bxor" (bitwise xor).  Integer arithmetic wraps
    around; min and max compare as the array's signed or unsigned type.

    Errors raise sgcoll.Error (a RuntimeError) with .code, the library's
    negative errno-style code, and its message naming the cause.
    """

    def __init__(self, rank=None, world_size=None, coordinator=None, bind_addr=None,
                 ifname=None, accel="auto", timeout_ms=0, key=None, _handle=None):
        if _handle is None:
            if rank is None or world_size is None:
                raise TypeError("Comm needs rank, world_size and coordinator "
                                "(or use Comm.from_env())")
            cfg = _Config(sz=_ctypes.sizeof(_Config), rank=rank, world_size=world_size,
                          coordinator=coordinator.encode() if coordinator else None,
                          bind_addr=bind_addr.encode() if bind_addr else None,
                          ifname=ifname.encode() if ifname else None,
                          accel=_accel(accel), timeout_ms=timeout_ms,
                          key=_key_bytes(key) if key is not None else None)
            h = _ctypes.c_void_p()
            _check(_lib.sgc_init(_ctypes.byref(cfg), _ctypes.byref(h)), "sgc_init")
            _handle = h
        self._h = _handle
        self.last_saturated, self.last_scale = 0, None

    @classmethod
    def from_env(cls):
        """Join a job described by the environment (sgc_init_env).

        Reads SGC_RANK, SGC_WORLD_SIZE, SGC_COORDINATOR (or
        SGC_COORDINATOR_FILE), SGC_BIND, SGC_IFNAME, SGC_ACCEL=auto|ebpf|off,
        SGC_TIMEOUT_MS, SGC_KEY or SGC_KEY_FILE and the other SGC_* settings
        of sgc_init_env(3); rank and size fall back to Open MPI's and PMI's
        variables.
        """
        h = _ctypes.c_void_p()
        _check(_lib.sgc_init_env(_ctypes.byref(h)), "sgc_init_env")
        return cls(_handle=h)

    def split(self, color, key=None):
        """A new communicator of the ranks that pass the same color (MPI_Comm_split).

        Collective: every rank of this communicator calls it, at the same
        place in its order of calls.  color: an int of 0 or more; None or
        sgcoll.UNDEFINED joins no new communicator and returns None.  key:
        ranks in the new communicator are ordered by (key, rank here);
        None: this rank's rank here, so the order is kept.  Returns the new
        Comm, which has this one's settings (accel, timeout, job key ...)
        and its own coordinator, the new rank 0, on a port the kernel
        chooses.  This communicator keeps working, and calls on it and on
        the new one may interleave; close each on its own, in any order.

        eBPF path: a group whose rank 0 is on an interface that already has
        an eBPF coordinator (this communicator's, when it is rank 0 here)
        runs on the user-space path with accel "auto" and raises Error
        (code -EBUSY) with "ebpf".  A color below 0, or a key or color that
        is not a 32-bit int: every rank raises Error (-EINVAL) or, for a
        value Python cannot pass, this rank raises ValueError and the
        others fail at their timeout.
        """
        args = []
        for name, v in (("color", UNDEFINED if color is None else color),
                        ("key", self.rank if key is None else key)):
            try:
                v = _operator.index(v)      # numpy integers too, not floats
            except TypeError:
                raise ValueError(f"Comm.split: {name}={v!r} is not an int") from None
            if not -2**31 <= v < 2**31:
                raise ValueError(f"Comm.split: {name}={v} is not a 32-bit int")
            args.append(v)
        h = _ctypes.c_void_p()
        _check(_lib.sgc_comm_split(self._h, *args, _ctypes.byref(h)), "sgc_comm_split")
        return Comm(_handle=h) if h.value else None

    def dup(self):
        """A new communicator of the same ranks in the same order (MPI_Comm_dup).

        Collective, as split(color=0) with this rank as the key.  Its
        coordinator is rank 0's host again, whose interface this
        communicator's eBPF path holds: with accel "auto" the copy runs on
        the user-space path, with "ebpf" it raises Error (code -EBUSY).
        """
        h = _ctypes.c_void_p()
        _check(_lib.sgc_comm_dup(self._h, _ctypes.byref(h)), "sgc_comm_dup")
        return Comm(_handle=h)

    def close(self):
        """Leave the job and free the communicator (sgc_finalize); safe to repeat.

        Every rank should close: the coordinator waits (up to the timeout)
        for the workers' goodbyes.  The port can be bound again at once.
        """
        if getattr(self, "_h", None):   # also when __init__ failed
            # Requests dropped unfinished end first: the other ranks need
            # this rank's part, and the arrays must outlive the writes.
            for h, _ in self.__dict__.pop("_orphans", ()):
                _lib.sgc_wait(h)
            _lib.sgc_finalize(self._h)
            self._h = None

    def _reap(self):
        """Free the dropped requests that have finished (Request.__del__)."""
        left = []
        for h, keep in self.__dict__.get("_orphans", ()):
            done = _ctypes.c_int(0)
            _lib.sgc_test(h, _ctypes.byref(done))
            if not done.value:
                left.append((h, keep))
        self._orphans = left

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    @property
    def rank(self):
        """This process's rank (0 is the coordinator)."""
        return _lib.sgc_rank(self._h)

    @property
    def world_size(self):
        """The number of ranks in the job, the coordinator included."""
        return _lib.sgc_world_size(self._h)

    @property
    def accelerated(self):
        """True when the eBPF path is active on this rank."""
        return bool(_lib.sgc_accelerated(self._h))

    def fileno(self):
        """A file descriptor that becomes readable when Request.test() can make progress.

        For select/poll/epoll/asyncio event loops (POLLIN); never read it.
        """
        return _lib.sgc_fd(self._h)

    def allreduce(self, a, op="sum", out=None):
        """The reduction of `a` over all ranks, into `out` (may be `a`) or a new array."""
        src = _input(a, "a")
        buf, out = self._result_args(src, a, out)
        _check(_lib.sgc_allreduce(self._h, src.ctypes.data, buf.ctypes.data, src.size,
                                  _dtype(src), _op(op)), "sgc_allreduce")
        return _deliver(buf, out)

    def reduce(self, a, op="sum", root=0, out=None):
        """The reduction at `root`, into `out` or a new array there; None elsewhere."""
        src = _input(a, "a")
        buf = None
        if self.rank == root:
            buf, out = self._result_args(src, a, out)
        _check(_lib.sgc_reduce(self._h, src.ctypes.data, buf.ctypes.data if buf is not None
                               else None, src.size, _dtype(src), _op(op), root), "sgc_reduce")
        return _deliver(buf, out) if self.rank == root else None

    def broadcast(self, a, root=0):
        """Overwrite `a` with root's `a`, in place; returns `a`."""
        buf, a = _output(a, "a", _input(a, "a"))
        _check(_lib.sgc_broadcast(self._h, buf.ctypes.data, buf.size, _dtype(buf), root),
               "sgc_broadcast")
        return _deliver(buf, a)

    @staticmethod
    def _result_args(src, a, out):
        """(buf, out) for a result shaped as the input `a` (src its checked
        form): a new array, or `out`, which may be `a` itself."""
        buf, out = (_np.empty_like(src),) * 2 if out is None else \
            _output(out, "out", src if out is a else None)
        if out.shape != src.shape or out.dtype != src.dtype:
            raise ValueError("out must have the shape and dtype of a")
        return buf, out

    def _post(self, name, args, keep, buf, result):
        """Start the non-blocking call `name`(comm, *args, &req): its Request,
        which keeps `keep` alive and delivers `buf` into `result`."""
        self._reap()
        h = _ctypes.c_void_p()
        _check(getattr(_lib, name)(self._h, *args, _ctypes.byref(h)), name)
        return Request(h, keep, buf, result, self)

    def _scatter_args(self, a, out):
        """(src, buf, out, count) for reduce_scatter: `a` holds world_size
        blocks (its first axis, if that is world_size long, else flat)."""
        src = _input(a, "a")
        world = self.world_size
        if src.size % world:
            raise ValueError(f"a has {src.size} elements, not a multiple of the world size "
                             f"{world}: it holds one block per rank")
        shape = src.shape[1:] if src.ndim > 1 and src.shape[0] == world else (src.size // world,)
        if out is None:
            buf = out = _np.empty(shape, src.dtype)
        else:
            buf, out = _output(out, "out")
            if out.size != src.size // world or out.dtype != src.dtype:
                raise ValueError(f"out must hold {src.size // world} elements of {src.dtype}")
        return src, buf, out, src.size // world

    def _gather_args(self, a, out):
        """(src, buf, out) for allgather: the result is world_size x a."""
        src = _input(a, "a")
        shape = (self.world_size,) + src.shape
        if out is None:
            buf = out = _np.empty(shape, src.dtype)
        else:
            buf, out = _output(out, "out")
            if out.size != src.size * self.world_size or out.dtype != src.dtype:
                raise ValueError(f"out must hold world_size x {src.size} elements of {src.dtype}")
        return src, buf, out

    def reduce_scatter(self, a, op="sum", out=None):
        """MPI_Reduce_scatter_block: `a` holds one block per rank (world_size
        blocks of equal size: its first axis if that is world_size long,
        else a flat array cut in world_size parts); this rank gets the
        reduction of every rank's block number `rank`, in `out` or a new array.
        Each rank reduces its own block from what the others send it.
        """
        src, buf, out, n = self._scatter_args(a, out)
        _check(_lib.sgc_reduce_scatter(self._h, src.ctypes.data, buf.ctypes.data, n,
                                       _dtype(src), _op(op)), "sgc_reduce_scatter")
        return _deliver(buf, out)

    def allgather(self, a, out=None):
        """MPI_Allgather: every rank's `a`, stacked in rank order (shape
        (world_size,) + a.shape), in `out` or a new array."""
        src, buf, out = self._gather_args(a, out)
        _check(_lib.sgc_allgather(self._h, src.ctypes.data, buf.ctypes.data, src.size,
                                  _dtype(src)), "sgc_allgather")
        return _deliver(buf, out)

    def ireduce_scatter(self, a, op="sum", out=None):
        """Non-blocking reduce_scatter(): a Request whose wait() gives the block."""
        src, buf, out, n = self._scatter_args(a, out)
        return self._post("sgc_ireduce_scatter",
                          (src.ctypes.data, buf.ctypes.data, n, _dtype(src), _op(op)),
                          (src, buf), buf, out)

    def iallgather(self, a, out=None):
        """Non-blocking allgather(): a Request whose wait() gives the stacked blocks."""
        src, buf, out = self._gather_args(a, out)
        return self._post("sgc_iallgather",
                          (src.ctypes.data, buf.ctypes.data, src.size, _dtype(src)),
                          (src, buf), buf, out)

    def barrier(self):
        """Return once every rank has entered the barrier."""
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
        src = _floats(_input(a, "a"), "a")
        buf, out = self._result_args(src, a, out)
        world = self.world_size
        if scale is None:
            if max_abs is None:
                raise ValueError("allreduce_float needs max_abs (the largest magnitude "
                                 "expected, the same on every rank) or scale")
            nsat = _ctypes.c_size_t(0)
            fn = _lib.sgc_allreduce_float if src.dtype == _F32 else _lib.sgc_allreduce_double
            _check(fn(self._h, src.ctypes.data, buf.ctypes.data, src.size, float(max_abs),
                      int(bool(average)), _ctypes.byref(nsat)), "sgc_allreduce_float")
            self.last_saturated = nsat.value
            self.last_scale = fixed_scale(world, max_abs, src.dtype)
            return _deliver(buf, out)
        if not (scale > 0 and _math.isfinite(scale)):
            raise ValueError(f"scale must be finite and > 0, not {scale!r}")
        it = _carrier(src.dtype)
        limit = _math.floor(_SUM_MAX[it] / world)     # the sum over the ranks cannot wrap
        if max_abs is not None:
            limit = min(limit, _math.floor(float(max_abs) * scale))
        if limit < 1:
            raise ValueError(f"scale {scale!r} with max_abs {max_abs!r} leaves no room "
                             f"for {world} ranks in {it}")
        q = _np.empty(src.shape, it)
        nsat = _quantize(src, scale, limit, it, q)
        self.allreduce(q, op="sum", out=q)
        dequantize(q, scale, world if average else 1, out=buf)
        self.last_saturated, self.last_scale = nsat, float(scale)
        return _deliver(buf, out)

    def iallreduce(self, a, op="sum", out=None):
        """Non-blocking allreduce(): returns a Request whose wait() gives the result.

        `a` and `out` must stay unchanged until the request is done.  Up to
        64 collectives may be outstanding per communicator (more raise
        sgcoll.Error with -EBUSY); complete them in any order.
        """
        src = _input(a, "a")
        buf, out = self._result_args(src, a, out)
        return self._post("sgc_iallreduce",
                          (src.ctypes.data, buf.ctypes.data, src.size, _dtype(src), _op(op)),
                          (src, buf), buf, out)

    def ireduce(self, a, op="sum", root=0, out=None):
        """Non-blocking reduce(): a Request whose wait() gives the reduction
        at `root` (in `out` or a new array) and None elsewhere.

        `a` and `out` must stay unchanged until the request is done.
        """
        src = _input(a, "a")
        buf = None
        if self.rank == root:
            buf, out = self._result_args(src, a, out)
        else:
            out = None
        return self._post("sgc_ireduce",
                          (src.ctypes.data, buf.ctypes.data if buf is not None else None,
                           src.size, _dtype(src), _op(op), root),
                          (src, buf), buf, out)

    def ibarrier(self):
        """Non-blocking barrier(): a Request that is done once every rank has
        entered the barrier; its wait() returns None."""
        return self._post("sgc_ibarrier", (), (), None, None)

    def ibroadcast(self, a, root=0):
        """Non-blocking broadcast(): returns a Request whose wait() gives `a`, overwritten.

        `a` must stay unchanged until the request is done.
        """
        buf, a = _output(a, "a", _input(a, "a"))
        return self._post("sgc_ibroadcast", (buf.ctypes.data, buf.size, _dtype(buf), root),
                          (buf,), buf, a)


def __dir__():
    # The API and the module's own dunders; not the modules imported above.
    return sorted(set(__all__) | {n for n in globals() if n.startswith("__") and n.endswith("__")})
