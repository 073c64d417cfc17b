# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""pytest: the Python bindings in the virtual cluster, both paths.

Needs root (network namespaces); SGC_CLUSTER names tools/sgc-cluster and
SGCOLL_LIB the built library (ctest sets both)."""
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
CLUSTER = os.environ.get("SGC_CLUSTER")


def run_ranks(script, accel, ranks=5, env=()):
    """SCRIPT on every rank of a fresh 3-host cluster; returns its result."""
    cmd = [CLUSTER, "session", "--hosts", "3", "--ranks", str(ranks), "--accel", accel,
           "--timeout-ms", "20000", "--deadline", "200",
           "--env", "PYTHONPATH=" + os.environ.get("PYTHONPATH", ""),
           "--env", "SGCOLL_LIB=" + os.environ.get("SGCOLL_LIB", "")]
    for e in env:
        cmd += ["--env", e]
    cmd += ["--", sys.executable, os.path.join(HERE, script)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(not CLUSTER, reason="SGC_CLUSTER (tools/sgc-cluster) not given"),
]


@pytest.mark.parametrize("accel", ["off", "ebpf"])
def test_collectives_in_cluster(accel):
    assert "every collective matched numpy" in run_ranks("rank_check.py", accel).stdout


@pytest.mark.parametrize("accel", ["off", "ebpf"])
def test_allreduce_float_error_within_bound(accel):
    out = run_ranks("rank_float.py", accel).stdout
    print(out)      # the measured errors (pytest -s shows them)
    assert "every fixed-point result within the bound" in out


@pytest.mark.parametrize("accel", ["off", "ebpf"])
def test_job_key_argument(accel):
    out = run_ranks("rank_key.py", accel, env=["SGC_TEST_KEY=" + os.urandom(16).hex()]).stdout
    assert "keyed allreduce exact" in out


@pytest.mark.parametrize("accel", ["off", "ebpf"])
def test_split_and_dup(accel):
    assert "split groups and dup exact" in run_ranks("rank_split.py", accel).stdout
