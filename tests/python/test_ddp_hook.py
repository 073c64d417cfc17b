# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""pytest: sgcoll.torch.allreduce_hook under DistributedDataParallel, 2 ranks
in the virtual cluster, both paths: every averaged gradient within the
fixed-point bound of DDP's own gloo allreduce (tests/python/rank_ddp_hook.py
says how).  Needs root and python3-torch; ctest runs it as
e2e_python_ddp_hook, which skips (77) saying which is missing."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch", reason="python3-torch is missing")

HERE = os.path.dirname(os.path.abspath(__file__))
CLUSTER = os.environ.get("SGC_CLUSTER")

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(not CLUSTER, reason="SGC_CLUSTER (tools/sgc-cluster) not given"),
]


@pytest.mark.parametrize("accel", ["off", "ebpf"])
def test_hook_matches_gloo_average(accel):
    cmd = [CLUSTER, "session", "--hosts", "1", "--ranks", "2", "--accel", accel,
           "--timeout-ms", "20000", "--deadline", "200",
           "--env", "PYTHONPATH=" + os.environ.get("PYTHONPATH", ""),
           "--env", "SGCOLL_LIB=" + os.environ.get("SGCOLL_LIB", ""),
           "--env", "GLOO_SOCKET_IFNAME=eth0",
           "--", sys.executable, os.path.join(HERE, "rank_ddp_hook.py")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    print(res.stdout)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert f"accel {accel}: hook gradients match gloo's within the bound" in res.stdout
