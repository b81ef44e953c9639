#!/usr/bin/python3
"""bench/xgboost_native.py - the data, models and timings of bench/xgboost_native.sh.

  xgboost_native.py prepare DIR
      Writes DIR/binary/xgboost-model (binary:logistic, 200 trees of depth 6)
      and DIR/multi/xgboost-model (multi:softprob, 10 classes, 100 rounds of
      depth 6: 1,000 trees), both trained on 20 features, and DIR/batch.csv:
      10,000 records of those 20 features, as a client would send them.

  xgboost_native.py time DIR NAME PORT ROUNDS
      Times, best of ROUNDS, the same 10,000 records predicted by
        - smserve: one POST of DIR/batch.csv to 127.0.0.1:PORT over a kept-alive
          connection, from the first byte sent to the last byte of the answer
          read (CSV parsing and answer writing included);
        - XGBoost's own C++ predictor, one thread, given the records as a ready
          float32 matrix: Booster.inplace_predict, and Booster.predict on a
          DMatrix built beforehand (a new one each round: predict caches its
          answer per DMatrix); the faster of the two is the peer.
      Checks first that smserve's answer is XGBoost's float32, value for value.
      Prints one line: NAME smserve_ms xgboost_ms ratio inplace_ms dmatrix_ms.

The features are normal numbers written with 4 decimals ("-0.4831"), as a
feature store or pandas' to_csv(float_format="%.4f") writes them; the labels
depend on them, so the trees split on every feature.
"""
import http.client
import sys
import time

import numpy as np
import xgboost as xgb

RECORDS, FEATURES, CLASSES = 10_000, 20, 10


def features(rng, n):
    return np.round(rng.normal(size=(n, FEATURES)), 4)


def prepare(work):
    import os
    rng = np.random.default_rng(20)
    x = features(rng, 20_000)
    w = rng.normal(size=FEATURES)
    score = x @ w + 0.5 * np.sin(3 * x[:, 0]) * x[:, 1]
    binary = (score + rng.normal(scale=0.5, size=len(x)) > 0).astype(int)
    classes = np.digitize(score, np.quantile(score, np.linspace(0, 1, CLASSES + 1)[1:-1]))
    common = {"max_depth": 6, "nthread": 1, "seed": 1}
    models = {
        "binary": (dict(common, objective="binary:logistic"), binary, 200),
        "multi": (dict(common, objective="multi:softprob", num_class=CLASSES), classes, 100),
    }
    for name, (params, y, rounds) in models.items():
        os.makedirs(f"{work}/{name}", exist_ok=True)
        b = xgb.train(params, xgb.DMatrix(x, label=y), rounds)
        b.save_model(f"{work}/{name}/xgboost-model")  # the legacy binary format of 1.x
    batch = features(np.random.default_rng(21), RECORDS)
    with open(f"{work}/batch.csv", "w") as f:
        for row in batch:
            f.write(",".join(f"{v:.4f}" for v in row) + "\n")


def best_ms(run, rounds):
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t)
    return best * 1000


def post(conn, body):
    conn.request("POST", "/invocations", body,
                 {"Content-Type": "text/csv", "Accept": "text/csv"})
    r = conn.getresponse()
    answer = r.read()
    if r.status != 200:
        sys.exit(f"xgboost_native.py: smserve answered {r.status}: {answer[:200]!r}")
    return answer


def time_both(work, name, port, rounds):
    body = open(f"{work}/batch.csv", "rb").read()
    # The matrix XGBoost gets: the same text read as the container reads it
    # (float64, then float32), built before any timing starts.
    x = np.loadtxt(f"{work}/batch.csv", delimiter=",", dtype=np.float64).astype(np.float32)
    booster = xgb.Booster(model_file=f"{work}/{name}/xgboost-model")
    booster.set_param({"nthread": 1})
    # predict remembers its last answer for a DMatrix: a fresh one per round.
    dms = [xgb.DMatrix(x, nthread=1) for _ in range(rounds + 1)]
    want = booster.inplace_predict(x)

    conn = http.client.HTTPConnection("127.0.0.1", port)
    got = np.array([[float(v) for v in line.split(b",")] for line in post(conn, body).split()],
                   dtype=np.float32).reshape(want.shape)
    if not np.array_equal(got, want) or not np.array_equal(booster.predict(dms.pop()), want):
        bad = np.argwhere(got != want)[:3]
        sys.exit(f"xgboost_native.py: {name}: smserve's answer is not XGBoost's (first at {bad})")

    smserve = best_ms(lambda: post(conn, body), rounds)
    inplace = best_ms(lambda: booster.inplace_predict(x), rounds)
    dmatrix = best_ms(lambda: booster.predict(dms.pop()), rounds)
    peer = min(inplace, dmatrix)
    print(f"{name} {smserve:.1f} {peer:.1f} {peer / smserve:.2f} {inplace:.1f} {dmatrix:.1f}")


if __name__ == "__main__":
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2])
    else:
        time_both(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
