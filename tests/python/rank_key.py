# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Run by every rank in the virtual cluster: Comm(key=...) from Python, with
the key given as an argument (not SGC_KEY), and exact allreduce results."""
import os

import numpy as np

import sgcoll


def main():
    for bad in ("00ff", "zz" * 16, b"short", 123):
        try:
            sgcoll.Comm(rank=0, world_size=2, coordinator="127.0.0.1:1", key=bad)
        except (ValueError, TypeError):
            pass
        else:
            raise AssertionError("key=%r was accepted" % (bad,))
    env = os.environ
    comm = sgcoll.Comm(rank=int(env["SGC_RANK"]), world_size=int(env["SGC_WORLD_SIZE"]),
                       coordinator=env["SGC_COORDINATOR"], bind_addr=env.get("SGC_BIND"),
                       ifname=env.get("SGC_IFNAME"),
                       accel=getattr(sgcoll, "ACCEL_" + env.get("SGC_ACCEL", "auto").upper()),
                       key=env["SGC_TEST_KEY"])
    r, w = comm.rank, comm.world_size
    for n in (1, 363, 5000):
        got = comm.allreduce(np.arange(n, dtype=np.int64) * (r + 1), op="sum")
        want = np.arange(n, dtype=np.int64) * (w * (w + 1) // 2)
        assert np.array_equal(got, want), n
    st = comm.stats() if hasattr(comm, "stats") else None
    comm.close()
    if r == 0:
        print("keyed allreduce exact", st if st else "")


if __name__ == "__main__":
    main()
