# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Run by every rank in the virtual cluster: Comm.split() into two groups
ordered by key -rank (each group's rank 0 its highest parent rank, on a host
without another rank of its group, so it may take the eBPF path), exact
collectives in both groups at once, then Comm.dup() (with SGC_ACCEL=ebpf on
the eBPF path too: its coordinator shares rank 0's interface with the
parent's), then the parent."""
import os

import numpy as np

import sgcoll


def main():
    ebpf = os.environ.get("SGC_ACCEL") == "ebpf"
    comm = sgcoll.Comm.from_env()
    r, w = comm.rank, comm.world_size
    color = r % 2
    members = [p for p in range(w - 1, -1, -1) if p % 2 == color]
    child = comm.split(color, key=-r)
    assert (child.rank, child.world_size) == (members.index(r), len(members)), \
        (child.rank, child.world_size, members)
    if ebpf and child.rank == 0:
        assert child.accelerated, "the group's coordinator is not on the eBPF path"
    got = child.allgather(np.array([r], dtype=np.int32))
    assert list(got) == members, (list(got), members)
    got = child.allreduce(np.arange(1000, dtype=np.int64) * (r + 1))
    assert np.array_equal(got, np.arange(1000, dtype=np.int64) * sum(p + 1 for p in members))
    buf = np.full(363, r if child.rank == 0 else -1, dtype=np.int32)
    child.broadcast(buf, root=0)
    assert (buf == members[0]).all()
    child.barrier()
    child.close()

    d = comm.dup()
    assert (d.rank, d.world_size) == (r, w)
    if ebpf and r == 0 and w > 1:
        assert d.accelerated, "the dup's coordinator is not on the eBPF path"
    assert d.allreduce(np.array([r], dtype=np.int64))[0] == w * (w - 1) // 2
    d.close()
    assert comm.split(None) is None
    assert comm.allreduce(np.array([1], dtype=np.int32))[0] == w
    comm.close()
    if r == 0:
        print("split groups and dup exact")


if __name__ == "__main__":
    main()
