# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Run by every rank in the virtual cluster: the Python bindings' collectives
against numpy references (numpy integer arithmetic wraps like libsgcoll's)."""
import gc
import sys
import time

import numpy as np

import sgcoll

DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64]
OPS = {"sum": np.add, "prod": np.multiply, "min": np.minimum, "max": np.maximum,
       "band": np.bitwise_and, "bor": np.bitwise_or, "bxor": np.bitwise_xor}


def data(rank, n, dt, salt):
    rng = np.random.default_rng(1000 * salt + rank)
    return rng.integers(np.iinfo(dt).min, np.iinfo(dt).max, size=n, dtype=dt, endpoint=True)


def expected(world, n, dt, op, salt):
    acc = data(0, n, dt, salt)
    for r in range(1, world):
        acc = OPS[op](acc, data(r, n, dt, salt))
    return acc


def main():
    comm = sgcoll.Comm.from_env()
    r, w = comm.rank, comm.world_size
    salt = 0
    with np.errstate(over="ignore"):
        for dt in DTYPES:
            for op in OPS:
                for n in (0, 1, 363, 5000):
                    salt += 1
                    a = data(r, n, dt, salt)
                    got = comm.allreduce(a, op=op)
                    assert np.array_equal(got, expected(w, n, dt, op, salt)), (dt, op, n)
        salt += 1
        a = data(r, 1000, np.int32, salt)
        comm.allreduce(a, op="sum", out=a)                      # in place
        assert np.array_equal(a, expected(w, 1000, np.int32, "sum", salt))
        # Arrays that are not C-contiguous: copied in, results written back.
        salt += 1
        whole = np.zeros(726, np.int32)
        comm.allreduce(data(r, 726, np.int32, salt)[::2], op="sum", out=whole[1::2])
        assert np.array_equal(whole[1::2], expected(w, 726, np.int32, "sum", salt)[::2])
        assert not whole[0::2].any()
        salt += 1
        got = comm.allreduce(data(r, 600, np.uint8, salt).reshape(20, 30).T, op="max")
        assert np.array_equal(got, expected(w, 600, np.uint8, "max", salt).reshape(20, 30).T)
        salt += 1
        b = np.zeros((40, 3), np.int64)
        if r == w - 1:
            b[:, 1] = data(r, 40, np.int64, salt)
        comm.broadcast(b[:, 1], root=w - 1)
        assert np.array_equal(b[:, 1], data(w - 1, 40, np.int64, salt)) and not b[:, ::2].any()
        for root in (0, w - 1):
            salt += 1
            got = comm.reduce(data(r, 777, np.uint16, salt), op="max", root=root)
            if r == root:
                assert np.array_equal(got, expected(w, 777, np.uint16, "max", salt))
            else:
                assert got is None
            b = data(root, 3000, np.int64, salt) if r == root else np.zeros(3000, np.int64)
            comm.broadcast(b, root=root)
            assert np.array_equal(b, data(root, 3000, np.int64, salt))
        # reduce_scatter and allgather, blocking and not, shaped and flat.
        for dt in (np.int8, np.uint32, np.int64):
            for n in (0, 1, 5, 2000):
                salt += 1
                a = data(r, n * w, dt, salt)
                want = expected(w, n * w, dt, "bxor", salt)[r * n:(r + 1) * n]
                assert np.array_equal(comm.reduce_scatter(a, op="bxor"), want), (dt, n)
                got = comm.ireduce_scatter(a.reshape(w, n), op="bxor").wait()
                assert got.shape == (n,) and np.array_equal(got, want), (dt, n)
                mine = data(r, n, dt, salt)
                allw = np.stack([data(k, n, dt, salt) for k in range(w)])
                assert np.array_equal(comm.allgather(mine), allw), (dt, n)
                assert np.array_equal(comm.iallgather(mine).wait(), allw), (dt, n)
        if w > 1:
            try:
                comm.reduce_scatter(np.zeros(w + 1, np.int32))
                raise AssertionError("a send buffer that is no multiple of the world size")
            except ValueError as e:
                assert "multiple" in str(e), str(e)
        comm.barrier()
        reqs = []
        for k in range(20):
            salt += 1
            reqs.append((salt, comm.iallreduce(data(r, 363, np.int32, salt))))
        for s, req in reversed(reqs):
            assert np.array_equal(req.wait(), expected(w, 363, np.int32, "sum", s))
        # ireduce and ibarrier, finished through waitall and testany.
        reqs, salts = [], []
        for k in range(12):
            salt += 1
            salts.append(salt)
            root = k % w
            reqs.append(comm.ireduce(data(r, 500, np.uint16, salt), op="max", root=root))
        reqs.append(comm.ibarrier())
        got = sgcoll.waitall(reqs)
        for k, s in enumerate(salts):
            if r == k % w:
                assert np.array_equal(got[k], expected(w, 500, np.uint16, "max", s)), k
            else:
                assert got[k] is None, k
        assert got[-1] is None
        reqs, salts = [], []
        for k in range(8):
            salt += 1
            salts.append(salt)
            reqs.append(comm.iallreduce(data(r, 363, np.int64, salt), op="bxor"))
        reqs.append(comm.ibarrier())
        seen = set()
        while True:
            idx, flag = sgcoll.testany(reqs)
            if flag and idx is None:
                break
            if flag:
                assert idx not in seen
                seen.add(idx)
        assert seen == set(range(len(reqs)))
        for k, s in enumerate(salts):
            assert np.array_equal(reqs[k].wait(), expected(w, 363, np.int64, "bxor", s)), k
    # A request dropped unfinished: the communicator keeps its arrays and
    # the request until it finishes, the next call frees it, and the
    # collectives after it still see every rank's part.
    salt += 1
    req = comm.iallreduce(data(r, 200000, np.int32, salt), op="sum")
    pending = req._h is not None
    del req
    gc.collect()
    assert len(comm.__dict__.get("_orphans", ())) == (1 if pending else 0)
    salt += 1
    got = comm.allreduce(data(r, 1000, np.int32, salt), op="sum")
    assert np.array_equal(got, expected(w, 1000, np.int32, "sum", salt))
    # The dropped one may finish after the later allreduce; sgc_test drives
    # it (each i-call does so first; no collective here, so that every rank
    # calls the same ones).  Bounded: 20 s, a communicator timeout.
    deadline = time.monotonic() + 20
    while comm.__dict__.get("_orphans") and time.monotonic() < deadline:
        comm._reap()
        time.sleep(0.001)
    assert not comm.__dict__.get("_orphans"), "a dropped request never finished"
    comm.ibarrier().wait()
    try:
        comm.allreduce(np.zeros(4, np.float32))
        raise AssertionError("a float array must be refused")
    except TypeError:
        pass
    try:
        comm.allreduce(np.zeros(4, np.int32), op="mean")
        raise AssertionError("an unknown op must be refused")
    except ValueError:
        pass
    try:
        comm.broadcast(np.zeros(4, np.int32), root=w + 5)
        raise AssertionError("a bad root must raise sgcoll.Error")
    except sgcoll.Error as e:
        assert e.code < 0 and "root" in str(e), str(e)
    comm.barrier()
    comm.close()
    if r == 0:
        print(f"rank_check: {w} ranks, every collective matched numpy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
