#!/usr/bin/python3
"""make_xgboost_fixtures.py - train small XGBoost models and record XGBoost's
own predictions, for tests/xgboost.sh.

Needs Debian's python3-xgboost and python3-sklearn, and only here: the tests
read the committed files and need neither. Run from the repository root:

    /usr/bin/python3 tools/make_xgboost_fixtures.py

For every booster and objective the XGBoost plug-in serves, it trains a model
of a few shallow trees on data that ships with scikit-learn (no download) and
writes, under tests/xgboost/:

  <model>.json  <model>.ubj  <model>.bin   the model in all three formats
                                           XGBoost writes (JSON, UBJSON, and
                                           the legacy binary, "binf...")
  <model>.expected                         XGBoost's predictions for the
                                           model's input set, one line per
                                           record (softprob: one value per
                                           class), as the exact float32
  <data>.csv .libsvm .json .jsonl          each input set in the four request
                                           formats, with missing values:
                                           empty CSV fields, absent libsvm
                                           indices, JSON null / absent keys

two models rewritten as XGBoost 3.1 and later write them (base_score as a
bracketed vector, iteration_indptr, booleans for default_left), since the
Debian package writes only 1.7's format, and three pickled Boosters
(<model>.pkl, pickle protocols 3, 4 and 5), as training scripts often save
xgboost-model. The prediction is what SageMaker's
XGBoost container returns: Booster.predict with the trees up to
best_iteration (the container passes best_ntree_limit; Booster.predict with
no arguments uses every tree, which differs only after early stopping).
"""

import json
import os
import pickle
import sys

import numpy as np
import xgboost as xgb
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "xgboost")
ROWS = 40  # records per input set: enough to reach every leaf of shallow trees, small to commit


# ---- input sets ------------------------------------------------------------

def with_missing(x, seed):
    """A copy of x with about 8% of the values missing (NaN), one record with
    every value missing and one with only the first missing."""
    rng = np.random.default_rng(seed)
    x = x.copy()
    x[rng.random(x.shape) < 0.08] = np.nan
    x[1, :] = np.nan
    x[2, 0] = np.nan
    return x


def blocks_with_and_without_holes(x):
    """200 records: holes in the first block of 64 and in the tail, none in
    the two blocks between (the plug-in walks a block with no missing value
    by a faster path)."""
    x = x.copy()
    x[:64] = with_missing(x[:64], 4)
    x[192:] = with_missing(x[192:], 7)
    return x


def number(v):
    """A float64 as the shortest text that reads back as the same float64."""
    return repr(float(v))


def write_inputs(name, x):
    """Writes the input set in the four request formats."""
    with open(os.path.join(OUT, name + ".csv"), "w", newline="\n") as f:
        for row in x:
            f.write(",".join("" if np.isnan(v) else number(v) for v in row) + "\n")
    with open(os.path.join(OUT, name + ".libsvm"), "w", newline="\n") as f:
        for row in x:  # a label first, as training files have; the server ignores it
            f.write(" ".join(["0"] + ["%d:%s" % (i, number(v)) for i, v in enumerate(row)
                                       if not np.isnan(v)]) + "\n")
    dense = [[None if np.isnan(v) else float(v) for v in row] for row in x]
    with open(os.path.join(OUT, name + ".json"), "w", newline="\n") as f:
        json.dump({"instances": [{"features": r} for r in dense]}, f, separators=(",", ":"))
        f.write("\n")
    with open(os.path.join(OUT, name + ".jsonl"), "w", newline="\n") as f:
        for i, row in enumerate(x):  # alternate dense arrays and sparse keys/values
            if i % 2:
                keys = [k for k, v in enumerate(row) if not np.isnan(v)]
                f.write(json.dumps({"features": {"keys": keys, "values": [float(row[k]) for k in keys],
                                                 "shape": [len(row)]}}, separators=(",", ":")) + "\n")
            else:
                f.write(json.dumps(dense[i], separators=(",", ":")) + "\n")


# ---- models ----------------------------------------------------------------

def predict(booster, x):
    """What SageMaker's container answers: the trees up to best_iteration."""
    d = xgb.DMatrix(x)
    best = booster.attr("best_iteration")
    if best is None:
        return booster.predict(d)
    return booster.predict(d, iteration_range=(0, int(best) + 1))


def write_model(name, booster, x):
    for ext in ("json", "ubj"):
        booster.save_model(os.path.join(OUT, "%s.%s" % (name, ext)))
    binary = os.path.join(OUT, name + ".bin")
    booster.save_model(binary)  # 1.x: any other name is the legacy binary format
    with open(binary, "rb") as f:
        assert f.read(4) == b"binf", "expected the legacy binary format"
    pred = predict(booster, x).astype(np.float32)
    with open(os.path.join(OUT, name + ".expected"), "w", newline="\n") as f:
        for row in pred.reshape(len(x), -1):
            f.write(",".join(repr(float(v)) for v in row) + "\n")
    return pred


def train(params, x, y, rounds, group=None, evals=None, bounds=False):
    d = xgb.DMatrix(x, label=y)
    if group is not None:
        d.set_group(group)
    if bounds:  # survival:aft: each label an exact (uncensored) time
        d.set_float_info("label_lower_bound", y)
        d.set_float_info("label_upper_bound", y)
    params = dict(params, seed=7, nthread=1)
    kw = {}
    if evals is not None:
        kw = {"evals": [(xgb.DMatrix(evals[0], label=evals[1]), "valid")],
              "early_stopping_rounds": 2, "verbose_eval": False}
    return xgb.train(params, d, rounds, **kw)


def as_xgboost3(src, dst):
    """Rewrites a 1.7 JSON model the way XGBoost 3.1+ writes it: version
    [3, 1, 0], base_score as "[...]" (one per class for multi-class, already
    margins there), iteration_indptr, default_left as booleans."""
    with open(src) as f:
        doc = json.load(f)
    doc["version"] = [3, 1, 0]
    learner = doc["learner"]
    lmp = learner["learner_model_param"]
    classes = int(lmp["num_class"])
    lmp["num_target"] = "1"
    lmp["boost_from_average"] = "1"
    lmp["base_score"] = "[" + ",".join([lmp["base_score"]] * max(classes, 1)) + "]"
    gb = learner["gradient_booster"]
    model = (gb["gbtree"] if gb["name"] == "dart" else gb)["model"]
    per_round = int(model["gbtree_model_param"]["num_parallel_tree"]) * max(classes, 1)
    model["iteration_indptr"] = list(range(0, len(model["trees"]) + 1, per_round))
    for tree in model["trees"]:
        tree["default_left"] = [bool(v) for v in tree["default_left"]]
    with open(dst, "w") as f:
        json.dump(doc, f)


def main():
    os.makedirs(OUT, exist_ok=True)
    for old in os.listdir(OUT):
        if os.path.isfile(os.path.join(OUT, old)):   # (golden/ is make_xgboost_golden.py's)
            os.remove(os.path.join(OUT, old))

    xc, yc = load_breast_cancer(return_X_y=True)  # 30 features, 0/1
    xi, yi = load_iris(return_X_y=True)           # 4 features, 3 classes
    xd, yd = load_diabetes(return_X_y=True)       # 10 features, 25..346
    # 12 features, 0/1, with interactions enough that trees grow past depth 8
    rng = np.random.default_rng(11)
    xs = rng.normal(size=(4000, 12))
    ys = ((xs[:, 0] * xs[:, 1] + np.sin(3 * xs[:, 2]) + xs[:, 3] ** 2 - 1
           + 0.3 * rng.normal(size=4000)) > 0).astype(float)
    sets = {"cancer": with_missing(xc[::14][:ROWS], 1),
            "iris": with_missing(xi[::4][:ROWS], 2),
            "diabetes": with_missing(xd[::11][:ROWS], 3),
            # Larger sets for the plug-in's blocked prediction: three blocks
            # of 64 records and a short tail, with and without holes.
            "cancer200": blocks_with_and_without_holes(xc[::2][:200]),
            "iris150": with_missing(xi, 5),
            "synth200": with_missing(xs[:200], 6)}
    for name, x in sets.items():
        write_inputs(name, x)

    counts = np.round(yd / 30)  # small counts for Poisson
    models = [
        # name, data, params, rounds, labels, extra
        ("binary_logistic", "cancer", {"objective": "binary:logistic", "base_score": 0.3}, 6, (xc, yc)),
        ("reg_logistic", "cancer", {"objective": "reg:logistic", "base_score": 0.7}, 5, (xc, yc)),
        ("binary_logitraw", "cancer", {"objective": "binary:logitraw", "base_score": 0.3}, 5, (xc, yc)),
        ("reg_squarederror", "diabetes", {"objective": "reg:squarederror", "base_score": 150,
                                          "gamma": 1e5}, 6, (xd, yd)),
        ("count_poisson", "diabetes", {"objective": "count:poisson", "base_score": 4}, 6, (xd, counts)),
        ("reg_tweedie", "diabetes", {"objective": "reg:tweedie", "tweedie_variance_power": 1.4,
                                     "base_score": 100}, 6, (xd, yd)),
        ("reg_gamma", "diabetes", {"objective": "reg:gamma", "base_score": 120}, 6, (xd, yd)),
        ("rank_pairwise", "diabetes", {"objective": "rank:pairwise"}, 5, (xd, yd), {"group": [40] * 11 + [2]}),
        ("multi_softprob", "iris", {"objective": "multi:softprob", "num_class": 3}, 4, (xi, yi)),
        ("multi_softmax", "iris", {"objective": "multi:softmax", "num_class": 3}, 4, (xi, yi)),
        ("dart_binary_logistic", "cancer", {"objective": "binary:logistic", "booster": "dart",
                                            "rate_drop": 0.3, "skip_drop": 0.0}, 6, (xc, yc)),
        ("dart_multi_softprob", "iris", {"objective": "multi:softprob", "num_class": 3, "booster": "dart",
                                         "rate_drop": 0.5, "skip_drop": 0.0}, 4, (xi, yi)),
        ("forest_softprob", "iris", {"objective": "multi:softprob", "num_class": 3, "num_parallel_tree": 3,
                                     "subsample": 0.7, "colsample_bynode": 0.7}, 2, (xi, yi)),
        ("early_stopping", "cancer", {"objective": "binary:logistic", "eta": 0.9}, 40,
         (xc[:300], yc[:300]), {"evals": (xc[300:], yc[300:])}),
        # The other objectives XGBoost 1.7 predicts with.
        # (Parameters chosen so that the trees split: the losses' hessians are small.)
        ("reg_squaredlogerror", "diabetes", {"objective": "reg:squaredlogerror"}, 4, (xd, yd / 100)),
        ("reg_pseudohubererror", "diabetes", {"objective": "reg:pseudohubererror", "huber_slope": 50,
                                              "min_child_weight": 0}, 4, (xd, yd)),
        ("reg_absoluteerror", "diabetes", {"objective": "reg:absoluteerror"}, 4, (xd, yd)),
        ("binary_hinge", "cancer", {"objective": "binary:hinge"}, 4, (xc, yc)),
        ("rank_ndcg", "diabetes", {"objective": "rank:ndcg"}, 4, (xd, np.floor(yd / 60)),
         {"group": [40] * 11 + [2]}),
        ("rank_map", "diabetes", {"objective": "rank:map"}, 4, (xd, (yd > 150).astype(float)),
         {"group": [40] * 11 + [2]}),
        ("survival_cox", "diabetes", {"objective": "survival:cox"}, 4, (xd, yd)),
        ("survival_aft", "diabetes", {"objective": "survival:aft", "aft_loss_distribution": "normal"}, 4,
         (xd, yd), {"bounds": True}),
        # Deeper trees: depth 6 walks padded complete trees, depth 10 the
        # trees kept as linked nodes (examples/xgboost/model.c, "Speed").
        ("deep6_binary", "cancer200", {"objective": "binary:logistic", "max_depth": 6,
                                       "min_child_weight": 0}, 8, (xc, yc)),
        ("deep10_binary", "synth200", {"objective": "binary:logistic", "max_depth": 10,
                                       "min_child_weight": 0, "eta": 0.5}, 4, (xs[200:], ys[200:])),
        ("deep6_softprob", "iris150", {"objective": "multi:softprob", "num_class": 3, "max_depth": 6,
                                       "min_child_weight": 0}, 4, (xi, yi)),
    ]
    for spec in models:
        name, data, params, rounds, (x, y) = spec[:5]
        extra = spec[5] if len(spec) > 5 else {}
        params = dict({"max_depth": 3}, **params)
        booster = train(params, x, y, rounds, **extra)
        write_model(name, booster, sets[data])
        attrs = booster.attributes()
        print("%-22s %3d trees, best_iteration %s" % (name, len(booster.get_dump()),
                                                      attrs.get("best_iteration")))
    # The early-stopping model must stop early, or it proves nothing.
    es = xgb.Booster(model_file=os.path.join(OUT, "early_stopping.json"))
    assert int(es.attr("best_iteration")) + 1 < es.num_boosted_rounds(), "no early stop"
    # Pruned trees keep deleted nodes in their arrays; the loader must skip them.
    with open(os.path.join(OUT, "reg_squarederror.json")) as f:
        trees = json.load(f)["learner"]["gradient_booster"]["model"]["trees"]
    assert any(int(t["tree_param"]["num_deleted"]) > 0 for t in trees), "no pruned node"

    for name in ("binary_logistic", "multi_softprob"):
        as_xgboost3(os.path.join(OUT, name + ".json"), os.path.join(OUT, name + "_v3.json"))

    # Margins past float's exponent range: leaves of -16 and +16 in 6 trees.
    # XGBoost caps the sigmoid's exponent at 88.7, so a margin under -88.7
    # gives 3.0e-39 rather than 0.
    with open(os.path.join(OUT, "binary_logistic.json")) as f:
        doc = json.load(f)
    for tree in doc["learner"]["gradient_booster"]["model"]["trees"]:
        for i, left in enumerate(tree["left_children"]):
            if left == -1:
                tree["split_conditions"][i] = tree["base_weights"][i] = 16.0 if i % 2 else -16.0
    saturated = os.path.join(OUT, "binary_logistic_saturated.json")
    with open(saturated, "w") as f:
        json.dump(doc, f)
    pred = write_model("binary_logistic_saturated", xgb.Booster(model_file=saturated), sets["cancer"])
    assert (pred < 1e-38).any() and (pred == 1).any(), "no margin past the sigmoid's range"

    # Pickled Boosters, as many SageMaker training scripts save xgboost-model,
    # in the protocols Python 3 writes by default (3 to 5).
    for name, protocol in (("early_stopping", 3), ("multi_softprob", 4), ("dart_binary_logistic", 5)):
        booster = xgb.Booster(model_file=os.path.join(OUT, name + ".json"))
        with open(os.path.join(OUT, name + ".pkl"), "wb") as f:
            pickle.dump(booster, f, protocol=protocol)

    # A linear booster: the plug-in refuses it with a message.
    b = train({"booster": "gblinear", "objective": "reg:squarederror"}, xd, yd, 2)
    b.save_model(os.path.join(OUT, "gblinear.json"))
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print("%d files, %d bytes in %s" % (len(os.listdir(OUT)), total, OUT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
