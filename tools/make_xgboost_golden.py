#!/usr/bin/python3
"""make_xgboost_golden.py - golden answers from AWS's own XGBoost serving code,
for tests/xgboost_golden.sh.

    /usr/bin/python3 tools/make_xgboost_golden.py ORACLE LAYOUT [OUT]

  ORACLE  the directory holding run_real.py (../shared/oracles/xgboost-container)
  LAYOUT  that oracle's code laid out by its prepare.sh (outside the repository):
            bash ORACLE/prepare.sh LAYOUT path/to/sagemaker-xgboost-container \\
                 path/to/sagemaker-containers
  OUT     where to write (default tests/xgboost/golden in this repository)

Needs Debian's python3-xgboost and the packages prepare.sh lists, and only here:
the test reads the committed files and needs neither Python nor XGBoost.

It trains small deterministic models (5 features, 4 rounds of depth 2-3 trees,
fixed seeds, one thread, the exact tree method) for each objective in MODELS
and one 3-fold ensemble (xgboost-model-0, -1, -2), saved as XGBoost's JSON,
which both the container (Booster.load_model sniffs the leading '{') and
smserve's plug-in read. Then, for each group of cases (a model directory and
an environment: real time, SAGEMAKER_BATCH=true, SAGEMAKER_INFERENCE_OUTPUT=...,
...) it starts the oracle (run_real.py on a free port with that environment),
POSTs every request of the group to /invocations with exactly the headers the
manifest names (none where it says "-"), and records the status, the
Content-Type and the body bytes. It writes, under OUT:

  models/<name>/xgboost-model[-k]   the models
  requests/<body>                   request bodies, shared by the cases
  answers/<id>                      AWS's answer body, byte for byte
  manifest.tsv                      one line per case, tab-separated:
      id  model-dir  environment  content-type  accept  request  status
      answer-content-type  answer
    model-dir, request and answer are relative to OUT; environment is "-" or
    NAME=VALUE pairs separated by "|"; "-" in content-type or accept means the
    request has no such header, in answer-content-type that the answer had none.
    The lines of a group are consecutive, so a test starts one server a group.

Deterministic: a second run writes identical files (PYTHONHASHSEED is fixed
for the oracle; groups and cases are in a fixed order). Two kinds of answer
are normalised for that, and only these: in an error body (not 2xx), XGBoost's
"[hh:mm:ss]" time stamps and native stack traces (load addresses) are replaced
(see scrub); in a recordio-protobuf answer, each Record's label map entries
are sorted by key (protobuf's C++ runtime writes them in a random order; see
sorted_label_entries). The ensemble is
checked to average to the same float32 whatever order its files are read in
(the container averages them in os.listdir order, which differs between file
systems), so the answers do not depend on that order.

Known differences between this oracle and AWS's real image (Python 3.10,
XGBoost 3.0.5, numpy 2.1, scipy 1.15, Flask 3.1, Werkzeug 3.1 under gunicorn):
see tests/xgboost/golden/README.md.
"""

import http.client
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import xgboost as xgb
from scipy.sparse import csr_matrix

NFEAT = 5
ROUNDS = 4

# ---- models -------------------------------------------------------------------

# name -> (params, label function, depth); labels from the features x (n x 5)
# and a random generator, so that each objective has something to learn.
def _linear(x):
    z = np.nan_to_num(x)
    return 0.9 * z[:, 0] - 0.6 * z[:, 1] + 0.4 * z[:, 2] * z[:, 3] + 0.3 * z[:, 4]


MODELS = [
    ("binary_logistic", {"objective": "binary:logistic"}, lambda x, r: (_linear(x) + r.normal(0, .5, len(x)) > 0) * 1.0, 3),
    ("binary_logitraw", {"objective": "binary:logitraw"}, lambda x, r: (_linear(x) + r.normal(0, .5, len(x)) > 0) * 1.0, 2),
    ("binary_hinge", {"objective": "binary:hinge"}, lambda x, r: (_linear(x) + r.normal(0, .5, len(x)) > 0) * 1.0, 2),
    ("multi_softprob", {"objective": "multi:softprob", "num_class": 3},
     lambda x, r: np.digitize(_linear(x) + r.normal(0, .4, len(x)), [-0.5, 0.5]) * 1.0, 2),
    ("multi_softmax", {"objective": "multi:softmax", "num_class": 3},
     lambda x, r: np.digitize(_linear(x) + r.normal(0, .4, len(x)), [-0.5, 0.5]) * 1.0, 2),
    ("reg_squarederror", {"objective": "reg:squarederror"}, lambda x, r: 10 * _linear(x) + r.normal(0, 1, len(x)), 3),
    ("reg_logistic", {"objective": "reg:logistic"}, lambda x, r: 1 / (1 + np.exp(-_linear(x))), 2),
    ("count_poisson", {"objective": "count:poisson"}, lambda x, r: r.poisson(np.exp(0.5 * _linear(x))) * 1.0, 2),
    ("reg_tweedie", {"objective": "reg:tweedie", "tweedie_variance_power": 1.3},
     lambda x, r: r.poisson(np.exp(0.4 * _linear(x))) * r.gamma(2.0, 3.0, len(x)), 2),
    ("rank_pairwise", {"objective": "rank:pairwise"},
     lambda x, r: np.digitize(_linear(x) + r.normal(0, .5, len(x)), [-1, 0, 1]) * 1.0, 2),
]
ENSEMBLE = "binary_logistic_kfold"   # 3 folds of binary:logistic, averaged by the container


def training_features(seed, n=240):
    """n records of 5 features, 2 decimals, about 6% missing."""
    r = np.random.RandomState(seed)
    x = np.round(r.normal(0, 1, (n, NFEAT)), 2)
    x[r.random_sample(x.shape) < 0.06] = np.nan
    return x, r


def train(name, params, label_of, depth, seed, rows=None):
    x, r = training_features(seed)
    y = label_of(x, r)
    if rows is not None:
        x, y = x[rows], y[rows]
    d = xgb.DMatrix(x, label=y)
    if params["objective"].startswith("rank:"):
        d.set_group([20] * (len(x) // 20))
    p = dict(params, max_depth=depth, eta=0.6, seed=seed, nthread=1, tree_method="exact")
    return xgb.train(p, d, ROUNDS)


def save(booster, path):
    tmp = path + ".json"          # the extension tells XGBoost to write JSON
    booster.save_model(tmp)
    os.rename(tmp, path)


# ---- requests -----------------------------------------------------------------

def request_rows():
    """Feature rows the requests carry, chosen to reach different leaves."""
    r = np.random.RandomState(99)
    many = np.round(r.normal(0, 1.2, (6, NFEAT)), 2)
    many[[0, 3, 4]] *= -1      # (so that both classes and all three come up)
    many[2, 1] = 0.0
    missing = np.round(r.normal(0, 1.2, (4, NFEAT)), 2)
    missing[0, [1, 3]] = np.nan
    missing[1, 0] = np.nan
    missing[2, :] = np.nan
    missing[3, 4] = np.nan
    return many, missing


def num(v):
    return repr(float(v))


def csv_lines(rows, sep=","):
    return [sep.join("" if np.isnan(v) else num(v) for v in row) for row in rows]


def libsvm_lines(rows, base=1, label=True):
    out = []
    for i, row in enumerate(rows):
        items = ["%d:%s" % (k + base, num(v)) for k, v in enumerate(row) if not np.isnan(v)]
        out.append(" ".join((["%d" % (i % 2)] if label else []) + items))
    return out


def recordio(layout, array, labels=None):
    """RecordIO-protobuf as the SageMaker SDK writes it, with the encoder of
    the sagemaker-containers the container pins."""
    sys.path.insert(0, os.path.join(layout, "scsrc"))
    from sagemaker_containers import _encoders
    return _encoders.array_to_recordio_protobuf(array, labels)


def request_bodies(layout):
    """name -> bytes. Every model has 5 features, so the bodies are shared."""
    many, missing = request_rows()
    one = many[:1]
    b = {}
    nl = lambda lines: ("\n".join(lines) + "\n").encode()
    b["csv_one"] = csv_lines(one)[0].encode()
    b["csv_one_nl"] = nl(csv_lines(one))
    b["csv_one_int"] = b"1,-2,0,3,-1\n"
    b["csv_many"] = nl(csv_lines(many))
    b["csv_many_no_final_nl"] = "\n".join(csv_lines(many)).encode()
    b["csv_missing"] = nl(csv_lines(missing))
    b["csv_blank_around"] = ("\n\n" + "\n".join(csv_lines(many[:3])) + "\n\n\n").encode()
    b["csv_blank_between"] = ("\n".join(csv_lines(many[:2])) + "\n\n" + "\n".join(csv_lines(many[2:4])) + "\n").encode()
    b["csv_blank_only"] = b"\n\n\n"
    b["csv_crlf"] = ("\r\n".join(csv_lines(many[:3])) + "\r\n").encode()
    b["csv_spaces"] = nl(csv_lines(many[:3], ", "))
    b["csv_tab"] = nl(csv_lines(many[:3], "\t"))
    b["csv_semicolon"] = nl(csv_lines(many[:3], ";"))
    b["csv_too_few"] = nl([l.rsplit(",", 1)[0] for l in csv_lines(many[:2])])
    b["csv_too_many"] = nl([l + ",0.5" for l in csv_lines(many[:2])])
    b["csv_ragged"] = nl([csv_lines(many[:1])[0], csv_lines(many[1:2])[0].rsplit(",", 1)[0]])
    b["csv_exponent"] = b"1e-3,-2.5E+1,.5,-0,1.\n"
    b["csv_nan_inf"] = b"nan,NaN,inf,-inf,1\n"
    b["libsvm_one"] = libsvm_lines(one)[0].encode()
    b["libsvm_many"] = nl(libsvm_lines(many))
    b["libsvm_missing"] = nl(libsvm_lines(missing))
    b["libsvm_no_label"] = nl(libsvm_lines(many[:3], label=False))
    b["libsvm_zero_based"] = nl(libsvm_lines(many[:3], base=0))
    b["libsvm_blank_around"] = ("\n\n" + "\n".join(libsvm_lines(many[:3])) + "\n\n").encode()
    b["libsvm_blank_between"] = ("\n".join(libsvm_lines(many[:2])) + "\n\n" + "\n".join(libsvm_lines(many[2:4])) + "\n").encode()
    b["libsvm_tabs"] = nl([l.replace(" ", "\t") for l in libsvm_lines(many[:2])])
    b["rio_dense_f32"] = recordio(layout, many.astype(np.float32))
    b["rio_dense_f32_one"] = recordio(layout, one.astype(np.float32))
    b["rio_dense_f64"] = recordio(layout, many.astype(np.float64))
    b["rio_dense_int"] = recordio(layout, np.array([[1, -2, 0, 3, -1], [0, 1, 2, -1, 1]], dtype=int))
    b["rio_dense_labels"] = recordio(layout, many[:3].astype(np.float32), np.array([0, 1, 1], dtype=np.float32))
    # Sparse records hold only the present values (keys, values, shape [5]).
    sparse = np.nan_to_num(missing, nan=0.0)
    b["rio_sparse_f32"] = recordio(layout, csr_matrix(sparse[[0, 1, 3]].astype(np.float32)))
    b["rio_sparse_f64"] = recordio(layout, csr_matrix(sparse[[0, 1, 3]]))
    b["rio_sparse_empty_row"] = recordio(layout, csr_matrix(sparse.astype(np.float32)))  # record 3 has no value
    b["rio_truncated"] = b["rio_dense_f32"][:-7]
    b["json_instances"] = json.dumps({"instances": [list(map(float, r)) for r in many[:2]]}).encode()
    b["jsonl_rows"] = nl([json.dumps(list(map(float, r))) for r in many[:2]])
    b["garbage_text"] = b"hello,world\nthis is not data\n"
    b["garbage_libsvm"] = b"1:abc 2:x\n"
    b["garbage_binary"] = bytes([0, 255, 254, 1, 2, 3, 128, 10, 13, 7])
    b["empty"] = b""
    return b, np.vstack([many, missing, np.array([[1, -2, 0, 3, -1], [0, 1, 2, -1, 1]], dtype=float),
                         np.array([[1e-3, -25, .5, 0, 1]])])


ACCEPTS = {"-": "none", "*/*": "any", "text/csv": "csv", "application/json": "json",
           "application/jsonlines": "jsonl", "application/x-recordio-protobuf": "rio", "image/png": "png"}
ALL_ACCEPTS = list(ACCEPTS)

# The cases each model answers in real time and in batch: (body, content-type, accepts).
PER_MODEL = [
    ("csv_many", "text/csv", ALL_ACCEPTS),
    ("csv_one", "text/csv", ALL_ACCEPTS),
    ("libsvm_many", "text/libsvm", ["-", "application/json"]),
    ("rio_dense_f32", "application/x-recordio-protobuf", ["-", "application/json", "application/x-recordio-protobuf"]),
    ("rio_sparse_f32", "application/x-recordio-protobuf", ["application/json"]),
] + [(body, ct, ["-"]) for body, ct in [
    ("csv_one_nl", "text/csv"), ("csv_one_int", "text/csv"), ("csv_many_no_final_nl", "text/csv"),
    ("csv_missing", "text/csv"), ("csv_blank_around", "text/csv"), ("csv_blank_between", "text/csv"),
    ("csv_blank_only", "text/csv"), ("csv_crlf", "text/csv"), ("csv_spaces", "text/csv"), ("csv_tab", "text/csv"),
    ("csv_semicolon", "text/csv"), ("csv_too_few", "text/csv"), ("csv_too_many", "text/csv"),
    ("csv_ragged", "text/csv"), ("csv_exponent", "text/csv"), ("csv_nan_inf", "text/csv"),
    ("libsvm_one", "text/libsvm"), ("libsvm_many", "text/x-libsvm"), ("libsvm_missing", "text/libsvm"),
    ("libsvm_no_label", "text/libsvm"), ("libsvm_zero_based", "text/libsvm"),
    ("libsvm_blank_around", "text/libsvm"), ("libsvm_blank_between", "text/libsvm"), ("libsvm_tabs", "text/libsvm"),
    ("libsvm_many", "-"), ("csv_many", "-"),
    ("rio_dense_f32_one", "application/x-recordio-protobuf"), ("rio_dense_f64", "application/x-recordio-protobuf"),
    ("rio_dense_int", "application/x-recordio-protobuf"), ("rio_dense_labels", "application/x-recordio-protobuf"),
    ("rio_sparse_f32", "application/x-recordio-protobuf"), ("rio_sparse_f64", "application/x-recordio-protobuf"),
    ("rio_sparse_empty_row", "application/x-recordio-protobuf"),
    ("rio_truncated", "application/x-recordio-protobuf"),
    ("json_instances", "application/json"), ("jsonl_rows", "application/jsonlines"),
    ("garbage_text", "text/csv"), ("garbage_binary", "text/csv"), ("garbage_libsvm", "text/libsvm"),
    ("garbage_binary", "application/x-recordio-protobuf"), ("garbage_text", "-"),
    ("empty", "text/csv"), ("empty", "-"), ("empty", "application/x-recordio-protobuf"),
]] + [("empty", "text/csv", ["image/png"]), ("garbage_text", "text/csv", ["image/png"])]

# Header spellings, on one model in real time.
CT_VARIANTS = ["text/csv; charset=utf-8", "text/csv;label_size=1", "text/csv; label_size=2", "TEXT/CSV",
               "Text/Csv; Charset=UTF-8", "csv", "libsvm", "recordio-protobuf", "application/x-libsvm",
               "text/plain", "application/octet-stream", "application/x-parquet"]
ACCEPT_VARIANTS = ["text/csv; charset=utf-8", "application/json;q=0.9", "APPLICATION/JSON", "Text/CSV",
                   "application/json, text/csv", "text/csv, */*", "*/*; q=0.1", "text/*", "application/*",
                   "application/x-npy", "application/json; verbose=True"]

# SAGEMAKER_INFERENCE_OUTPUT values. The container puts keys that do not suit
# the objective last, in a Python set's order (random between processes), so
# each value here has at most one such key for the models it is used with.
SELECT_SINGLE = ["predicted_label", "labels", "probability", "probabilities", "raw_score", "raw_scores",
                 "predicted_score"]
SELECT_CLASSIFY = ["predicted_label,probability", "predicted_label,probabilities,labels",
                   "predicted_label,labels,probability,probabilities,raw_score,raw_scores",
                   "probabilities,predicted_label", "PREDICTED_LABEL, Probability",
                   "predicted_label,predicted_score"]
SELECT_REGRESS = ["predicted_score,predicted_label", "predicted_label,predicted_score", " Predicted_Score "]
SELECT_ACCEPTS = ["-", "text/csv", "application/json", "application/jsonlines",
                  "application/x-recordio-protobuf", "image/png"]


def groups():
    """[(model, env dict, [(body, content-type, accept), ...])] in a fixed order."""
    out = []
    per_model = [(b, ct, a) for b, ct, accs in PER_MODEL for a in accs]
    for model in [m[0] for m in MODELS] + [ENSEMBLE]:
        out.append((model, {}, per_model))
        out.append((model, {"SAGEMAKER_BATCH": "true"}, per_model))
    out.append(("binary_logistic", {}, [("csv_many", ct, "-") for ct in CT_VARIANTS]
                + [("libsvm_many", ct, "-") for ct in ["text/libsvm; charset=utf-8", "TEXT/X-LIBSVM"]]
                + [("csv_many", "text/csv", a) for a in ACCEPT_VARIANTS]))
    out.append(("multi_softprob", {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/json"},
                [("csv_many", "text/csv", a) for a in ["-", "*/*", "text/csv", "application/jsonlines"]]))
    out.append(("binary_logistic", {"MAX_CONTENT_LENGTH": "100"},
                [("csv_one", "text/csv", "-"), ("csv_many", "text/csv", "-"), ("empty", "text/csv", "-")]))
    sel_reqs = [("csv_many", "text/csv", a) for a in SELECT_ACCEPTS] + [("csv_one", "text/csv", "text/csv"),
                                                                        ("csv_one", "text/csv", "application/json")]
    for model, values in [("binary_logistic", SELECT_SINGLE + SELECT_CLASSIFY),
                          ("multi_softprob", SELECT_SINGLE + SELECT_CLASSIFY),
                          ("reg_squarederror", SELECT_SINGLE + SELECT_REGRESS)]:
        for v in values:
            out.append((model, {"SAGEMAKER_INFERENCE_OUTPUT": v}, sel_reqs))
    for model, v in [("binary_logistic", "predicted_label,probabilities"), ("multi_softprob", "predicted_label,probabilities"),
                     ("reg_squarederror", "predicted_score")]:
        out.append((model, {"SAGEMAKER_BATCH": "true", "SAGEMAKER_INFERENCE_OUTPUT": v}, sel_reqs))
    every = "predicted_label,labels,raw_score,raw_scores"
    for model in ["binary_logitraw", "binary_hinge", "multi_softmax", ENSEMBLE]:
        out.append((model, {"SAGEMAKER_INFERENCE_OUTPUT": every}, sel_reqs[:3]))
    for model in ["count_poisson", "reg_tweedie", "rank_pairwise"]:
        out.append((model, {"SAGEMAKER_INFERENCE_OUTPUT": "predicted_score"}, sel_reqs[:3]))
    return out


# ---- the oracle ---------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def oracle_env(extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SAGEMAKER_") and k not in ("MAX_CONTENT_LENGTH", "SM_MODEL_DIR")}
    env.update(extra)
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONWARNINGS"] = "ignore"
    return env


def start_oracle(oracle, layout, model_dir, extra, log):
    port = free_port()
    proc = subprocess.Popen(["/usr/bin/python3", os.path.join(oracle, "run_real.py"), layout, str(port), model_dir],
                            env=oracle_env(extra), stdout=log, stderr=log)
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the oracle exited (%s); see %s" % (proc.returncode, log.name))
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request("GET", "/ping")
            if c.getresponse().status == 200:
                return proc, port
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the oracle did not answer /ping; see %s" % log.name)


def ask(port, body, ctype, accept):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {}
    if ctype != "-":
        headers["Content-Type"] = ctype
    if accept != "-":
        headers["Accept"] = accept
    c.request("POST", "/invocations", body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, r.getheader("Content-Type") or "-", data


# ---- ids and files --------------------------------------------------------------

def tag(text):
    keep = "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in text.strip())
    return "_".join(p for p in keep.split("_") if p) or "x"


def env_tag(env):
    if not env:
        return "rt"
    parts = []
    for k, v in env.items():
        short = {"SAGEMAKER_BATCH": "batch", "SAGEMAKER_INFERENCE_OUTPUT": "out",
                 "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "defacc", "MAX_CONTENT_LENGTH": "maxlen"}[k]
        parts.append(short if k == "SAGEMAKER_BATCH" else short + "-" + tag(v.replace(",", "+")).replace("+", "_"))
    return ".".join(parts)


def ct_tag(ct):
    return {"-": "noct", "text/csv": "csv", "text/libsvm": "libsvm", "text/x-libsvm": "xlibsvm",
            "application/x-recordio-protobuf": "rio", "application/json": "json",
            "application/jsonlines": "jsonl"}.get(ct) or "ct-" + tag(ct)


def accept_tag(a):
    return "acc-" + (ACCEPTS.get(a) or tag(a))


def scrub(error_body):
    """XGBoost's error messages carry the time and a native stack trace with
    load addresses; an error body keeps neither, so that runs agree."""
    text = re.sub(rb"\[\d\d:\d\d:\d\d\] ", b"[hh:mm:ss] ", error_body)
    return re.sub(rb"\nStack trace:\n(  \[bt\] [^\n]*\n?)*", b"\n[stack trace]\n", text)


RECORDIO_MAGIC = bytes.fromhex("0a23d7ce")


def varint(buf, at):
    value = shift = 0
    while True:
        b = buf[at]
        at += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, at


def sorted_label_entries(answer):
    """The container's recordio-protobuf answer with each Record's label map
    entries sorted by key. Protobuf's C++ runtime writes a map in an order
    that changes from one serialization to the next, so AWS's bytes have no
    one order; this picks one. The layout is kept otherwise, including the
    container's habit of writing, in the RecordIO record of prediction i, the
    serialized Records of predictions 0 to i one after the other (the
    buffer it serializes into is never emptied): entries are sorted in groups
    of as many entries as there are distinct keys, one group per Record."""
    out = bytearray()
    at = 0
    while at < len(answer):
        assert answer[at:at + 4] == RECORDIO_MAGIC, "RecordIO magic expected at %d" % at
        length = int.from_bytes(answer[at + 4:at + 8], "little")
        payload = answer[at + 8:at + 8 + length]
        entries, pos = [], 0
        while pos < len(payload):
            assert payload[pos] == 0x12, "only label entries expected"
            size, start = varint(payload, pos + 1)
            entry = payload[pos:start + size]
            klen, kstart = varint(entry, start - pos + 1)
            entries.append((entry[kstart:kstart + klen], entry))
            pos = start + size
        keys = len({k for k, _ in entries})
        assert len(entries) % keys == 0
        groups = [sorted(entries[i:i + keys]) for i in range(0, len(entries), keys)]
        assert all(len({k for k, _ in g}) == keys for g in groups)
        padded = (length + 3) // 4 * 4
        out += answer[at:at + 8] + b"".join(e for g in groups for _, e in g) + answer[at + 8 + length:at + 8 + padded]
        at += 8 + padded
    assert len(out) == len(answer)
    return bytes(out)


def check_ensemble_order(boosters, rows):
    """The container averages the folds in directory order; the golden answers
    must not depend on it."""
    d = xgb.DMatrix(rows)
    preds = [b.predict(d) for b in boosters]
    first = None
    for order in itertools.permutations(range(len(preds))):
        mean = np.mean([preds[i] for i in order], axis=0)
        if first is None:
            first = mean
        elif not np.array_equal(mean.view(np.uint32), first.view(np.uint32)):
            return False
    return True


def write_models(out, rows):
    made = {}
    for i, (name, params, label_of, depth) in enumerate(MODELS):
        booster = train(name, params, label_of, depth, seed=11 + i)
        d = os.path.join(out, "models", name)
        os.makedirs(d)
        save(booster, os.path.join(d, "xgboost-model"))
        made[name] = booster
    _, params, label_of, depth = MODELS[0]
    for seed in range(100, 200):
        folds = [train(ENSEMBLE, params, label_of, depth, seed, rows=np.arange(240) % 3 != k) for k in range(3)]
        if check_ensemble_order(folds, rows):
            break
    else:
        raise SystemExit("no ensemble whose average is the same in every order")
    d = os.path.join(out, "models", ENSEMBLE)
    os.makedirs(d)
    for k, b in enumerate(folds):
        save(b, os.path.join(d, "xgboost-model-%d" % k))
    return made


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    oracle, layout = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = os.path.abspath(sys.argv[3]) if len(sys.argv) == 4 else os.path.join(repo, "tests", "xgboost", "golden")
    for sub in ("models", "requests", "answers"):
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
    os.makedirs(os.path.join(out, "requests"))
    os.makedirs(os.path.join(out, "answers"))

    bodies, rows = request_bodies(layout)
    write_models(out, rows)
    for name, data in bodies.items():
        with open(os.path.join(out, "requests", name), "wb") as f:
            f.write(data)

    lines = []
    seen = set()
    log = open(os.path.join(layout, "golden-oracle.log"), "w")
    for model, env, cases in groups():
        proc, port = start_oracle(oracle, layout, os.path.join(out, "models", model), env, log)
        try:
            for body, ct, accept in cases:
                cid = ".".join([model, env_tag(env), body, ct_tag(ct), accept_tag(accept)])
                if cid in seen:
                    raise SystemExit("duplicate case id " + cid)
                seen.add(cid)
                status, actype, data = ask(port, bodies[body], ct, accept)
                if not 200 <= status < 300:
                    data = scrub(data)
                elif actype == "application/x-recordio-protobuf" and data[:4] == RECORDIO_MAGIC:
                    data = sorted_label_entries(data)
                with open(os.path.join(out, "answers", cid), "wb") as f:
                    f.write(data)
                envtext = "|".join("%s=%s" % kv for kv in env.items()) or "-"
                lines.append("\t".join([cid, "models/" + model, envtext, ct, accept, "requests/" + body,
                                        str(status), actype, "answers/" + cid]))
        finally:
            proc.terminate()
            proc.wait()
        print("%-24s %-60s %d cases" % (model, env_tag(env), len(cases)), file=sys.stderr)
    with open(os.path.join(out, "manifest.tsv"), "w") as f:
        f.write("# id\tmodel-dir\tenvironment\tcontent-type\taccept\trequest\tstatus\tanswer-content-type\tanswer\n")
        f.write("\n".join(lines) + "\n")
    print("%d cases, %d groups" % (len(lines), len(groups())), file=sys.stderr)


if __name__ == "__main__":
    main()
