# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""pytest: the Python package's surface, in one process (a one-rank job on
127.0.0.1, no cluster): __version__, a namespace without the modules it
uses, help() that documents Comm, accel given by name, arrays that are not
C-contiguous (copied in, results written back)."""
import ctypes
import inspect
import os
import pydoc
import re
import socket
import subprocess
import sys

import numpy as np
import pytest

import sgcoll

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DTYPES = ["int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"]
OPS = ["sum", "prod", "min", "max", "band", "bor", "bxor"]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_rank(**kw):
    kw.setdefault("accel", "off")
    return sgcoll.Comm(rank=0, world_size=1, coordinator=f"127.0.0.1:{free_port()}",
                       timeout_ms=5000, **kw)


@pytest.fixture
def comm():
    c = one_rank()
    yield c
    c.close()


# ---- __version__ ----

def test_version_is_the_librarys_and_cmakes():
    assert re.fullmatch(r"\d+\.\d+\.\d+", sgcoll.__version__), sgcoll.__version__
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        cmake = re.search(r"project\(\s*libsgcoll\s+VERSION\s+([0-9.]+)", f.read()).group(1)
    assert sgcoll.__version__ == cmake
    if os.environ.get("SGCOLL_LIB"):
        lib = ctypes.CDLL(os.environ["SGCOLL_LIB"])
        lib.sgc_version.restype = ctypes.c_char_p
        assert sgcoll.__version__ == lib.sgc_version().decode()


# ---- the namespace ----

NAMESPACE_CHECK = """
import types, sgcoll
mods = [n for n in dir(sgcoll) if isinstance(getattr(sgcoll, n), types.ModuleType)]
leaks = [n for n in ("np", "os", "ctypes", "math", "numpy") if hasattr(sgcoll, n)]
star = {}
exec("from sgcoll import *", star)
extra = sorted(set(star) - set(sgcoll.__all__) - {"__builtins__"})
missing = [n for n in sgcoll.__all__ if n not in dir(sgcoll)]
print(repr((mods, leaks, extra, missing)))
"""


def test_namespace_holds_no_modules():
    # A fresh interpreter: in this one, other tests may have imported
    # sgcoll.torch, which Python binds in the package as it should.
    res = subprocess.run([sys.executable, "-c", NAMESPACE_CHECK], capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    mods, leaks, extra, missing = eval(res.stdout)
    assert mods == [], f"module objects in dir(sgcoll): {mods}"
    assert leaks == [], f"imports reachable as sgcoll attributes: {leaks}"
    assert extra == [] and missing == [], (extra, missing)


# ---- help() ----

def test_help_documents_comm():
    text = pydoc.render_doc(sgcoll.Comm, renderer=pydoc.plaintext)
    doc = inspect.getdoc(sgcoll.Comm)
    params = [p for p in inspect.signature(sgcoll.Comm.__init__).parameters
              if p not in ("self", "_handle")]
    assert params, "no parameters found"
    for p in params:
        assert re.search(rf"^\s+{p}\s+\S", doc, re.M), f"__init__ parameter {p} not described"
    for name in ("barrier", "iallreduce", "ibroadcast", "ireduce", "ibarrier", "from_env", "close", "fileno",
                 "allreduce", "reduce", "broadcast", "allreduce_float", "rank", "world_size",
                 "accelerated", "split", "dup"):
        d = inspect.getdoc(getattr(sgcoll.Comm, name))
        assert d and len(d) > 20, f"Comm.{name} has no docstring"
        assert name in text
    for op in OPS:
        assert f'"{op}"' in doc, f"op {op!r} not in help(sgcoll.Comm)"
    for dt in DTYPES + ["float32", "float64"]:
        assert re.search(rf"\b{dt}\b", doc), f"dtype {dt} not in help(sgcoll.Comm)"
    for accel in ("auto", "ebpf", "off"):
        assert f'"{accel}"' in doc
    for name in ("test", "wait"):
        assert inspect.getdoc(getattr(sgcoll.Request, name))
    for fn in (sgcoll.waitall, sgcoll.testany):
        assert len(inspect.getdoc(fn) or "") > 100, f"{fn.__name__} has no docstring"


# ---- accel by name ----

@pytest.mark.parametrize("accel", ["off", "auto", "ebpf", "OFF", sgcoll.ACCEL_OFF,
                                   sgcoll.ACCEL_AUTO])
def test_accel_names_and_constants(accel):
    with one_rank(accel=accel) as c:
        assert c.world_size == 1 and c.rank == 0
        # One rank has no workers to accelerate: the eBPF path never starts.
        assert not c.accelerated
        a = np.arange(5, dtype=np.int32)
        assert np.array_equal(c.allreduce(a), a)


@pytest.mark.parametrize("bad", ["fast", "", "ebpf ", 3, -1])
def test_bad_accel_value_names_the_valid_ones(bad):
    with pytest.raises(ValueError) as e:
        one_rank(accel=bad)
    for v in ("'auto'", "'ebpf'", "'off'"):
        assert v in str(e.value)


@pytest.mark.parametrize("bad", [1.0, None, b"off", True])
def test_accel_of_another_type(bad):
    with pytest.raises(TypeError):
        one_rank(accel=bad)


# ---- arrays that are not C-contiguous ----

VIEWS = {   # non-contiguous views of 60 elements: a stride, a transpose, a reversal, a column
    "stride": lambda base: base[::3],
    "transpose": lambda base: base.reshape(6, 10).T,
    "reversed": lambda base: base[::-1],
    "column": lambda base: base.reshape(12, 5)[:, 2],
}


@pytest.mark.parametrize("kind", sorted(VIEWS))
def test_noncontiguous_inputs_are_copied(comm, kind):
    a = VIEWS[kind](np.arange(1, 61, dtype=np.int32))
    assert not a.flags.c_contiguous
    before = a.copy()
    got = comm.allreduce(a, op="sum")
    assert np.array_equal(got, a) and got.shape == a.shape
    assert np.array_equal(a, before)                     # the input is left alone
    assert np.array_equal(comm.reduce(a, op="max", root=0), a)
    assert np.array_equal(comm.iallreduce(a).wait(), a)


@pytest.mark.parametrize("kind", sorted(VIEWS))
def test_noncontiguous_outputs_are_written(comm, kind):
    whole = np.full(60, -1, np.int64)
    out = VIEWS[kind](whole)
    assert not out.flags.c_contiguous
    a = np.arange(100, 100 + out.size, dtype=np.int64).reshape(out.shape)
    assert comm.allreduce(a, out=out) is out
    assert np.array_equal(out, a)
    out[...] = -1
    assert (whole == -1).all(), "written outside the view"


def test_noncontiguous_in_place(comm):
    base = np.arange(40, dtype=np.uint16)
    a = base[1::2]
    want = a.copy()
    assert comm.allreduce(a, op="bor", out=a) is a
    assert np.array_equal(a, want) and np.array_equal(base[0::2], np.arange(0, 40, 2))
    b = np.arange(30, dtype=np.int8).reshape(5, 6).T
    want = b.copy()
    assert comm.broadcast(b, root=0) is b and np.array_equal(b, want)
    req = comm.ibroadcast(b)
    assert req.wait() is b and np.array_equal(b, want)


def test_noncontiguous_request_output_written_when_done(comm):
    a = np.arange(10, dtype=np.int32)
    base = np.full(20, -1, np.int32)
    out = base[::2]
    req = comm.iallreduce(a, out=out)
    assert req.wait() is out
    assert np.array_equal(out, a) and (base[1::2] == -1).all()
    out2 = np.full(20, -1, np.int32)[1::2]
    req = comm.iallreduce(a, out=out2)
    while not req.test():
        pass
    assert np.array_equal(out2, a)


def test_noncontiguous_floats(comm):
    x = np.linspace(-1, 1, 40, dtype=np.float32).reshape(8, 5).T
    got = comm.allreduce_float(x, max_abs=1.0)
    assert np.max(np.abs(got - x)) <= sgcoll.fixed_error_bound(comm.last_scale) * 1.001
    y = np.zeros((5, 16), np.float32)
    view = y[:, ::2]
    comm.allreduce_float(x, scale=2.0**20, out=view)
    assert np.max(np.abs(view - x)) <= sgcoll.fixed_error_bound(2.0**20) * 1.001
    assert (y[:, 1::2] == 0).all()
    q, nsat = sgcoll.quantize(x, 8.0)
    assert np.array_equal(q, np.rint(x.astype(np.float64) * 8).astype(np.int32)) and nsat == 0
    qs = np.zeros(80, np.int32)
    sgcoll.quantize(x[0], 8.0, out=qs[::10])
    assert np.array_equal(qs[::10], q[0]) and (qs.reshape(8, 10)[:, 1:] == 0).all()
    back = np.zeros(16, np.float64)
    sgcoll.dequantize(q[0], 8.0, out=back[::2])
    assert np.array_equal(back[::2], q[0] / 8.0) and (back[1::2] == 0).all()


def test_read_only_output_refused(comm):
    out = np.zeros(4, np.int32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        comm.allreduce(np.ones(4, np.int32), out=out)
    with pytest.raises(ValueError, match="read-only"):
        comm.broadcast(out)
    assert (out == 0).all()


def test_output_must_match(comm):
    with pytest.raises(ValueError):
        comm.allreduce(np.ones(4, np.int32), out=np.zeros(4, np.int64)[::1])
    with pytest.raises(ValueError):
        comm.iallreduce(np.ones(4, np.int32), out=np.zeros(8, np.int32)[::3])
    with pytest.raises(TypeError):
        comm.allreduce([1, 2, 3])


# ---- the non-blocking calls: ireduce, ibarrier, waitall, testany ----

def test_ireduce_and_ibarrier(comm):
    a = np.arange(-5, 20, dtype=np.int16).reshape(5, 5)
    req = comm.ireduce(a, op="min", root=0)
    assert isinstance(req, sgcoll.Request)
    got = req.wait()
    assert np.array_equal(got, a) and got.dtype == a.dtype and got is not a
    assert req.wait() is got                        # a second wait() gives the same
    out = np.zeros(50, np.int16)[::2].reshape(5, 5)
    assert comm.ireduce(a, out=out).wait() is out and np.array_equal(out, a)
    b = comm.ibarrier()
    while not b.test():
        pass
    assert b.test() and b.wait() is None
    with pytest.raises(sgcoll.Error, match="root"):
        comm.ireduce(a, root=3)
    with pytest.raises(ValueError):
        comm.ireduce(a, out=np.zeros(25, np.int32))


def test_waitall_gives_every_result_in_order(comm):
    arrays = [np.arange(k, k + 7, dtype=np.uint32) for k in range(10)]
    reqs = [comm.iallreduce(x, op="sum") for x in arrays]
    reqs.insert(3, None)
    reqs.append(comm.ibarrier())
    reqs.append(comm.ireduce(arrays[2], op="bxor"))
    got = sgcoll.waitall(reqs)
    assert len(got) == len(reqs) and got[3] is None and got[-2] is None
    for x, y in zip(arrays, got[:3] + got[4:-2]):
        assert np.array_equal(x, y)
    assert np.array_equal(got[-1], arrays[2])
    # Done requests count as NULL entries: a second waitall returns at once.
    again = sgcoll.waitall(reqs)
    assert all(a is b for a, b in zip(got, again))
    assert sgcoll.waitall([]) == []


def test_waitall_over_two_communicators(comm):
    other = one_rank()
    try:
        r1 = comm.iallreduce(np.full(5, 3, np.int64))
        r2 = other.iallreduce(np.full(5, 4, np.int64))
        x, y = sgcoll.waitall([r1, r2])
        assert (x == 3).all() and (y == 4).all()
    finally:
        other.close()


def test_waitall_refuses_a_request_twice(comm):
    r = comm.iallreduce(np.ones(3, np.int32))
    with pytest.raises(sgcoll.Error) as e:
        sgcoll.waitall([r, r])
    assert e.value.code == -22 and e.value.index is None and "appears again" in str(e.value)
    assert np.array_equal(r.wait(), np.ones(3, np.int32))   # still pending, not freed
    with pytest.raises(TypeError):
        sgcoll.waitall([r, 5])


def test_testany_finds_each_request_once(comm):
    arrays = [np.full(4, k, np.int8) for k in range(6)]
    reqs = [comm.iallreduce(x, op="max") for x in arrays] + [comm.ibarrier()]
    seen = []
    for _ in range(100000):
        idx, flag = sgcoll.testany(reqs)
        if flag and idx is None:
            break                                   # none left: as MPI_Testany
        if flag:
            assert idx not in seen
            seen.append(idx)
            assert reqs[idx].test()
    assert sorted(seen) == list(range(len(reqs)))
    for k, x in enumerate(arrays):
        assert np.array_equal(reqs[k].wait(), x)
    assert sgcoll.testany([]) == (None, True)
    assert sgcoll.testany([None, None]) == (None, True)
    r = comm.ibarrier()
    with pytest.raises(sgcoll.Error) as e:
        sgcoll.testany([r, r])
    assert e.value.code == -22
    r.wait()


# ---- split and dup (one rank; the cluster runs tests/python/rank_split.py) ----

def test_split_one_rank(comm):
    child = comm.split(0, key=5)
    try:
        assert (child.rank, child.world_size) == (0, 1)
        a = np.arange(7, dtype=np.int32)
        assert np.array_equal(child.allreduce(a), a)
    finally:
        child.close()
    # The parent works on after its child has gone.
    assert np.array_equal(comm.allreduce(np.ones(3, dtype=np.int64)), np.ones(3))


@pytest.mark.parametrize("color", [None, sgcoll.UNDEFINED])
def test_split_undefined_gives_none(comm, color):
    assert comm.split(color) is None


def test_split_bad_color_is_einval(comm):
    with pytest.raises(sgcoll.Error) as e:
        comm.split(-5)
    assert e.value.code == -22 and "color -5" in str(e.value)
    comm.barrier()


@pytest.mark.parametrize("bad", [1.5, "0", 2**31])
def test_split_bad_values_refused(comm, bad):
    with pytest.raises(ValueError):
        comm.split(bad)
    with pytest.raises(ValueError):
        comm.split(0, key=bad)


def test_split_accepts_numpy_ints(comm):
    with comm.split(np.int64(3), key=np.int32(-1)) as child:
        assert child.world_size == 1


def test_dup_one_rank(comm):
    with comm.dup() as d:
        assert (d.rank, d.world_size) == (0, 1)
        d.barrier()
