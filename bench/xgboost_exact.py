#!/usr/bin/python3
"""bench/xgboost_exact.py - the XGBoost plug-in's block predictor against
XGBoost's own predictions, float32 for float32, on models and requests that
take every one of its paths (bench/xgboost_native.sh checks only its two
models; tests/xgboost.sh's models are all of depth 3 and its requests short):
complete trees of depth 0 to 8, linked ones (deeper, or too sparse to pad),
full blocks of 64 records (the top levels compared at once), tails of 1 to 7,
blocks with and without missing values, values equal to thresholds, -0.0,
a model with so many features that a block holds fewer than 64 records, and an
ensemble.

  /usr/bin/python3 bench/xgboost_exact.py [SMSERVE_BINARY [WORK_DIR]]
      (defaults: build/smserve-xgboost, a temporary directory)
Prints one line per case and exits 1 on the first difference.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
import xgboost as xgb

SMSERVE = sys.argv[1] if len(sys.argv) > 1 else "build/smserve-xgboost"
WORK = sys.argv[2] if len(sys.argv) > 2 else None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def serve(model_dir):
    port = free_port()
    p = subprocess.Popen([SMSERVE, "--port", str(port), "--model-dir", model_dir, "--workers", "1",
                          "--no-access-log"], stderr=open(os.path.join(WORK, "server.log"), "a"))
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1)
            return p, port
        except OSError:
            time.sleep(0.05)
    p.kill()
    sys.exit(f"xgboost_exact.py: the server did not start for {model_dir}")


def ask(port, body, content_type):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body.encode(),
                                 headers={"Content-Type": content_type, "Accept": "text/csv"})
    text = urllib.request.urlopen(req, timeout=60).read().decode()
    return np.array([[float(v) for v in line.split(",")] for line in text.split()], dtype=np.float32)


def csv_body(x):
    return "".join(",".join("" if np.isnan(v) else repr(float(v)) for v in row) + "\n" for row in x)


def libsvm_body(x):
    lines = []
    for row in x:
        pairs = [f"{j}:{float(v)!r}" for j, v in enumerate(row) if not np.isnan(v)]
        lines.append(" ".join(["0"] + pairs))
    return "\n".join(lines) + "\n"


def thresholds(booster):
    """Split values of the model, so that records land exactly on them."""
    out = []
    for line in booster.get_dump():
        for part in line.split("[")[1:]:
            cond = part.split("]")[0]
            if "<" in cond:
                out.append(np.float32(float(cond.split("<")[1])))
    return np.array(out or [0.0], dtype=np.float32)


def records(rng, booster, n, f, missing=0.0):
    x = rng.normal(size=(n, f)).astype(np.float32)
    t = thresholds(booster)
    on = rng.random(size=x.shape) < 0.2  # a fifth of the values equal a threshold
    x[on] = rng.choice(t, size=on.sum())
    x[rng.random(size=x.shape) < 0.02] = -0.0
    if missing:
        rows = rng.random(size=n) < 0.3  # some records have missing values, others none
        holes = (rng.random(size=x.shape) < missing) & rows[:, None]
        x[holes] = np.nan
    return x


def check(name, model_dirs, x, content_type="text/csv"):
    boosters = [xgb.Booster(model_file=os.path.join(d, f)) for d in model_dirs
                for f in sorted(os.listdir(d))]
    want = np.mean([b.predict(xgb.DMatrix(x, missing=np.nan)) for b in boosters], axis=0,
                   dtype=np.float32) if len(boosters) > 1 else boosters[0].predict(
        xgb.DMatrix(x, missing=np.nan))
    want = want.reshape(len(x), -1).astype(np.float32)
    p, port = serve(model_dirs[0])
    try:
        body = csv_body(x) if content_type == "text/csv" else libsvm_body(x)
        got = ask(port, body, content_type)
    finally:
        p.kill()
        p.wait()
    if got.shape != want.shape or not np.array_equal(got, want):
        bad = np.argwhere(got != want)[:3] if got.shape == want.shape else got.shape
        sys.exit(f"xgboost_exact.py: {name}: differs from XGBoost (at {bad})")
    print(f"ok {name}: {len(x)} records, {want.size} values equal")


def train(path, params, x, y, rounds, name="xgboost-model"):
    os.makedirs(path, exist_ok=True)
    b = xgb.train(dict(params, nthread=1, seed=3), xgb.DMatrix(x, label=y), rounds)
    b.save_model(os.path.join(path, name))
    return b


def main():
    rng = np.random.default_rng(7)
    f = 12
    xt = rng.normal(size=(3000, f)).astype(np.float32)
    xt[rng.random(size=xt.shape) < 0.05] = np.nan  # missing in training: both default directions
    score = np.nan_to_num(xt[:, 0]) - np.nan_to_num(xt[:, 1]) * np.nan_to_num(xt[:, 2]) + np.sin(np.nan_to_num(xt[:, 3]))
    yb = (score > 0).astype(int)
    yc = np.digitize(score, [-1, 0, 1])
    cases = [
        ("depth 6 binary", {"objective": "binary:logistic", "max_depth": 6}, yb, 30),
        ("depth 2", {"objective": "reg:squarederror", "max_depth": 2, "min_split_loss": 0.5}, score, 20),
        ("stumps", {"objective": "reg:squarederror", "max_depth": 1}, score, 5),
        ("single leaves", {"objective": "binary:logistic", "min_child_weight": 1e9}, yb, 3),
        ("lossguide, 8 leaves", {"objective": "reg:squarederror", "grow_policy": "lossguide",
                                 "max_depth": 8, "max_leaves": 8, "tree_method": "hist"}, score, 20),
        ("depth 8 softprob", {"objective": "multi:softprob", "num_class": 4, "max_depth": 8}, yc, 8),
        ("deep lossguide", {"objective": "binary:logistic", "grow_policy": "lossguide", "max_depth": 0,
                            "max_leaves": 48, "tree_method": "hist"}, yb, 10),
        ("depth 12 dart", {"objective": "binary:logistic", "booster": "dart", "max_depth": 12,
                           "rate_drop": 0.3}, yb, 10),
    ]
    for name, params, y, rounds in cases:
        d = os.path.join(WORK, name.replace(" ", "_"))
        b = train(d, params, xt, y, rounds)
        for n in (203, 64, 7):
            check(f"{name}, dense", [d], records(rng, b, n, f))
            check(f"{name}, some missing", [d], records(rng, b, n, f, missing=0.3))
        check(f"{name}, libsvm", [d], records(rng, b, 150, f, missing=0.5), "text/libsvm")

    # An ensemble of two: the mean of their float32 predictions.
    d = os.path.join(WORK, "ensemble")
    b = train(d, {"objective": "binary:logistic", "max_depth": 5}, xt, yb, 12, "xgboost-model-0")
    train(d, {"objective": "binary:logistic", "max_depth": 4, "eta": 0.5}, xt, yb, 9, "xgboost-model-1")
    check("ensemble", [d], records(rng, b, 130, f))

    # 20,000 features: a block holds 32 records.
    wide = 20000
    xw = np.zeros((400, wide), dtype=np.float32)
    xw[:, :f] = xt[:400]
    xw[:, wide - 1] = rng.normal(size=400)
    d = os.path.join(WORK, "wide")
    b = train(d, {"objective": "binary:logistic", "max_depth": 6}, xw, (xw[:, 0] + xw[:, wide - 1] > 0), 10)
    xr = np.zeros((45, wide), dtype=np.float32)
    xr[:, :f] = records(rng, b, 45, f)
    xr[:, wide - 1] = rng.normal(size=45)
    check("20,000 features", [d], xr)
    return 0


if __name__ == "__main__":
    if WORK is None:
        with tempfile.TemporaryDirectory(prefix="xgboost_exact.") as WORK:
            sys.exit(main())
    sys.exit(main())
