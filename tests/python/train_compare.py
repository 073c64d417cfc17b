# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""e2e: examples/train_torch.py on 4 ranks in the virtual cluster, DDP with
libsgcoll's communication hook and DDP with its own gloo allreduce; the
final losses must agree within the quantisation bound and the loss must
have gone down.

  train_compare.py CLUSTER        (SGCOLL_LIB and PYTHONPATH as for tests/python)

The bound (run with the linear model in float64, where it can be derived):
- The loss is the mean squared error of a linear model, so the averaged
  gradient of step t is A_t theta - c_t, A_t = 2/(W B) X_t^T X_t over the
  step's combined batch (X with a column of ones for the bias): PSD.
- libsgcoll's average differs from the exact one by e_t with every element
  within delta = 0.5 / scale (sgcoll.fixed_error_bound), so
  |e_t|_2 <= sqrt(P) delta for P parameters.
- The difference d_t of the two runs' parameters follows
  d_{t+1} = (I - lr A_t) d_t - lr e_t.  With lr * lambda_max(A_t) <= 2
  (checked) the matrix does not expand, so |d_T| <= D = lr T sqrt(P) delta.
- The full-data loss L is quadratic with Hessian H, so
  |L(theta_sgcoll) - L(theta_gloo)| <= |grad L(theta_gloo)| D + lambda_max(H) D^2 / 2.
Float64 rounding (about 1e-16 of each gradient element per step) is ten
orders of magnitude below delta = 0.5 / 4096 and is left out.

The bound holds bucket by bucket under DDP as it did for one flat vector:
every element of every averaged bucket is within delta.

A third run, the default use (float32, the scale from --max-abs, the MLP
of more than a million parameters), must lower the loss, clamp nothing
and keep every rank in sync.
"""
import importlib.util
import math
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "..", "examples", "train_torch.py")
SCALE = 4096.0
LINEAR = ["--hidden", "0", "--dtype", "float64", "--features", "8", "--samples-per-rank", "64",
          "--batch", "16", "--steps", "30", "--lr", "0.1", "--warmup", "0"]


def skip(why):
    print(f"SKIP: {why}", file=sys.stderr)
    sys.exit(77)


def run(cluster, accel, args):
    cmd = [cluster, "session", "--hosts", "2", "--ranks", "4", "--accel", accel,
           "--timeout-ms", "30000", "--deadline", "150",
           "--env", "PYTHONPATH=" + os.environ.get("PYTHONPATH", ""),
           "--env", "SGCOLL_LIB=" + os.environ.get("SGCOLL_LIB", ""),
           "--", sys.executable, EXAMPLE] + args
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    sys.stdout.write(res.stdout)
    if res.returncode != 0:
        sys.exit(f"FAIL: {' '.join(args)}: exit {res.returncode}\n{res.stderr[-3000:]}")
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("result ")]
    if len(lines) != 1:
        sys.exit(f"FAIL: no result line from {' '.join(args)}")
    fields = dict(kv.split("=", 1) for kv in lines[0].split()[1:])
    for key in ("initial_loss", "final_loss", "lr", "grad_norm", "hess_max", "batch_hess_max"):
        fields[key] = float(fields[key])
    for key in ("params", "steps", "saturated", "in_sync"):
        fields[key] = int(fields[key])
    return fields


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    if os.geteuid() != 0:
        skip("needs root for network namespaces")
    for mod in ("numpy", "torch"):
        if importlib.util.find_spec(mod) is None:
            skip(f"{mod} is missing (python3-numpy, python3-torch)")
    cluster = sys.argv[1]
    import sgcoll

    gloo = run(cluster, "off", ["--backend", "gloo"] + LINEAR)
    sgc = run(cluster, "ebpf", ["--backend", "sgcoll", "--scale", str(SCALE)] + LINEAR)
    for r in (gloo, sgc):
        assert r["in_sync"] == 1 and r["saturated"] == 0, r
        assert r["final_loss"] < r["initial_loss"], f"the loss did not go down: {r}"
    assert sgc["accel"] == "ebpf", sgc
    assert gloo["lr"] * gloo["batch_hess_max"] <= 2, "lr too large for the bound's contraction"
    delta = sgcoll.fixed_error_bound(SCALE)
    dist = sgc["lr"] * sgc["steps"] * math.sqrt(sgc["params"]) * delta
    bound = gloo["grad_norm"] * dist + 0.5 * gloo["hess_max"] * dist**2
    diff = abs(sgc["final_loss"] - gloo["final_loss"])
    print(f"train_compare: final loss gloo {gloo['final_loss']:.9f}, libsgcoll "
          f"{sgc['final_loss']:.9f}: difference {diff:.3e}, quantisation bound {bound:.3e} "
          f"(scale {SCALE:g}, {sgc['steps']} steps)")
    assert diff <= bound, f"the losses differ by {diff}, more than the bound {bound}"

    f32 = run(cluster, "off", ["--backend", "sgcoll", "--steps", "40", "--warmup", "2"])
    assert f32["in_sync"] == 1 and f32["saturated"] == 0, f32
    assert f32["params"] >= 1_000_000, f"the default model has {f32['params']} parameters"
    assert f32["final_loss"] < f32["initial_loss"], f"float32 MLP did not learn: {f32}"
    print("train_compare: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
