#!/usr/bin/env bash
# test-binary: default
# tests/linear.sh - the default model (model.c, a linear learner) end to end,
# through the real server.
#
#   SMSERVE=./build/smserve-default bash tests/linear.sh      (from the repo root)
#   SMSERVE=./build/asan-default bash tests/linear.sh
#
# 1. Loading: broken model files (missing, wrong version, bad number, wrong
#    counts, truncated) stop the server with "file:line: expected ...".
# 2. The 150 iris rows in every request and response format, against
#    scikit-learn's predict and predict_proba committed in
#    tests/vectors/iris_expected.csv (labels exactly, scores within 1e-9).
# 3. Accept negotiation, 400/406/415 with the record and field named, no
#    partial answers, N records in -> N lines out.
#    NPY (1-D, 2-D; float64, float32, int), recordio-protobuf (dense,
#    sparse; AWS's own bytes from tests/codecs/) and bare JSON arrays in;
#    NPY and the Linear Learner's recordio-protobuf out (tests/codecs/
#    w_linear_learner.rio byte for byte); malformed binary bodies get a 400
#    naming the byte offset; an empty body 204; SAGEMAKER_INFERENCE_OUTPUT
#    columns in CSV. Binary bodies are made and read with plain python3.
# 4. A 1,000,000-record CSV batch (body limit raised with
#    SAGEMAKER_MAX_PAYLOAD_IN_MB), checked line by line.
# 5. If python3-sklearn is installed: tools/export_linear.py round trips of
#    LinearRegression, Ridge, Lasso, binary and multinomial LogisticRegression,
#    one-vs-rest, and Pipelines with StandardScaler. Without it they print
#    "# SKIP" lines; everything else needs only bash, curl and python3.
set -u
cd "$(dirname "$0")/.." || exit 1
export LC_ALL=C
SMSERVE=${SMSERVE:-./build/smserve-default}
source tests/lib.sh

PY=/usr/bin/python3
VECTORS=tests/vectors/iris_expected.csv
T=$TEST_TMP
unset SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT SAGEMAKER_MAX_PAYLOAD_IN_MB

# ---- helpers ---------------------------------------------------------------

# post, send and expect_error come from tests/lib.sh

# check MODE EXPECTED GOT: compares an answer with scikit-learn's (see
# compare below); prints "ok" or what differs.
check() {
	"$PY" - "$@" <<'PY'
import json, sys
mode, expected, got = sys.argv[1:4]
rows = [l.rstrip("\n").split(",") for l in open(expected).readlines()[1:]]
labels = [r[4] for r in rows]
probs = [[float(x) for x in r[5:]] for r in rows]
data = open(got, "rb").read().decode()
def fail(msg):
    print(msg); sys.exit(0)
if mode == "csv":
    if not data.endswith("\n"): fail("no newline at the end")
    lines = data[:-1].split("\n")
    if len(lines) != len(labels): fail("%d lines for %d records" % (len(lines), len(labels)))
    for i, (g, e) in enumerate(zip(lines, labels)):
        if g != e: fail("record %d: label %r, scikit-learn %r" % (i + 1, g, e))
    print("ok"); sys.exit(0)
if mode == "json":
    preds = json.loads(data)["predictions"]
else:  # jsonlines: N lines, each ending in a newline
    if not data.endswith("\n"): fail("no newline at the end")
    preds = [json.loads(l) for l in data[:-1].split("\n")]
if len(preds) != len(labels): fail("%d answers for %d records" % (len(preds), len(labels)))
for i, (p, e, q) in enumerate(zip(preds, labels, probs)):
    if sorted(p) != ["predicted_label", "score"]: fail("record %d: keys %s" % (i + 1, sorted(p)))
    if type(p["predicted_label"]) is not int or str(p["predicted_label"]) != e:
        fail("record %d: predicted_label %r, scikit-learn %s" % (i + 1, p["predicted_label"], e))
    s = p["score"]
    if len(s) != len(q) or max(abs(a - b) for a, b in zip(s, q)) > 1e-9:
        fail("record %d: score %r, scikit-learn %r" % (i + 1, s, q))
print("ok")
PY
}

# to_json FORM INPUT.csv OUT: the iris features as a request of the given form.
to_json() {
	"$PY" - "$@" <<'PY'
import json, sys
form, src, dst = sys.argv[1:4]
X = [[float(v) for v in l.split(",")] for l in open(src).read().split("\n") if l]
def sparse(x):
    keys = [k for k, v in enumerate(x) if v != 0][::-1]    # any order will do
    return {"keys": keys, "shape": [len(x)], "values": [x[k] for k in keys]}
inst = {
    "features": lambda x: {"features": x},
    "data": lambda x: {"data": {"features": {"values": x}}},
    "sparse": lambda x: {"data": {"features": sparse(x)}},
    "sparse-features": lambda x: {"features": sparse(x)},
    "plain": lambda x: x,
}
with open(dst, "w") as f:
    if form.startswith("lines-"):
        for x in X:
            f.write(json.dumps(inst[form[6:]](x)) + "\n")
    else:
        json.dump({"configuration": {"k": [1, {"a": None}]}, "instances": [inst[form](x) for x in X]}, f, indent=1)
PY
}

tail -n +2 "$VECTORS" | cut -d, -f1-4 >"$T/iris.csv"
tail -n +2 "$VECTORS" | cut -d, -f5 >"$T/labels.txt"

# serve NAME ARGS...: start_server, tried three times, since the free port it
# picks can be taken by another process before the server binds it.
serve() {
	local i
	for i in 1 2 3; do
		start_server "$@" && return 0
	done
	return 1
}

# ---- 1. loading ------------------------------------------------------------

# load_fails NAME REGEX FILE-TEXT: a model directory holding FILE-TEXT (or
# none, for "-") makes the server exit non-zero with REGEX on its output.
load_fails() {
	local dir=$T/bad-$RANDOM out rc
	mkdir -p "$dir"
	[[ $3 != - ]] && printf '%b' "$3" >"$dir/linear-model.txt"
	out=$(timeout 10 "$SMSERVE" --port "$(free_port)" --model-dir "$dir" 2>&1)
	rc=$?
	if [[ $rc -ne 0 && $rc -ne 124 && $out =~ $2 ]]; then
		ok "load: $1"
	else
		not_ok "load: $1" "exit $rc, output [${out:0:300}]"
	fi
	check_sanitizer_log "load: $1" <(printf '%s' "$out")
}

H='smserve-linear-model 1\nkind binary\nfeatures 2\nlabels no yes\n'
load_fails "missing file" 'linear-model.txt: expected a readable model file .No such file or directory.; write it with tools/export_linear.py' -
load_fails "wrong version" 'linear-model.txt:1: expected format version 1, got .2.' 'smserve-linear-model 2\n'
load_fails "not a model file" 'linear-model.txt:1: expected .smserve-linear-model 1.' '{"coef": [1, 2]}\n'
load_fails "unknown kind" 'linear-model.txt:3: expected regression, binary, multinomial or ovr' '# c\nsmserve-linear-model 1\nkind logistic\n'
load_fails "bad number" 'linear-model.txt:6: expected a finite number as value 2 of .weights., got .x.' "${H}intercept 1\nweights 1 x\nend\n"
load_fails "nan weight" 'linear-model.txt:6: expected a finite number as value 1 of .weights., got .nan.' "${H}intercept 1\nweights nan 1\nend\n"
load_fails "too many numbers" 'linear-model.txt:6: expected 2 numbers after .weights., got more' "${H}intercept 1\nweights 1 2 3\nend\n"
load_fails "too few numbers" 'linear-model.txt:6: expected 2 numbers after .weights., got 1' "${H}intercept 1\nweights 1\nend\n"
load_fails "wrong label count" 'linear-model.txt:4: expected 2 labels after .labels., got 3' 'smserve-linear-model 1\nkind binary\nfeatures 2\nlabels a b c\n'
load_fails "missing weight line" 'linear-model.txt:8: expected .weights. line 3 of 3' 'smserve-linear-model 1\nkind multinomial\nfeatures 2\nlabels x y z\nintercept 1 2 3\nweights 1 2\nweights 1 2\nend\n'
load_fails "zero scale" 'linear-model.txt:5: expected a positive number as value 2 of .scale.' 'smserve-linear-model 1\nkind regression\nfeatures 2\nmean 0 0\nscale 1 0\n'
load_fails "truncated (no end)" 'linear-model.txt:7: expected .end. after the last .weights. line, got the end of the file' "${H}intercept 1\nweights 1 2\n"
load_fails "text after end" 'linear-model.txt:8: expected nothing after .end.' "${H}intercept 1\nweights 1 2\nend\nweights 3 4\n"
# An XGBoost model where linear-model.txt should be: named, with the build
# that serves it.
for f in xgboost-model:binary_logistic.json model.ubj:binary_logistic.ubj model.bin:binary_logistic.bin; do
	dir=$T/xgb-${f%%:*}
	mkdir -p "$dir" && cp "tests/xgboost/${f#*:}" "$dir/${f%%:*}"
	out=$(timeout 10 "$SMSERVE" --port "$(free_port)" --model-dir "$dir" 2>&1)
	rc=$?
	if [[ $rc -ne 0 && $rc -ne 124 && $out == *"found an XGBoost model (${f%%:*})"* &&
		$out == *"make MODEL=examples/xgboost/model.c"* ]]; then
		ok "load: an XGBoost model (${f%%:*}) says to build the XGBoost plug-in"
	else
		not_ok "load: an XGBoost model (${f%%:*}) says to build the XGBoost plug-in" "exit $rc [${out:0:300}]"
	fi
done
mkdir -p "$T/accept-env" && cp models/iris/linear-model.txt "$T/accept-env/"
out=$(SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=application/xml timeout 10 "$SMSERVE" --port "$(free_port)" --model-dir "$T/accept-env" 2>&1)
rc=$?
if [[ $rc -ne 0 && $rc -ne 124 && $out =~ SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT:\ expected\ one\ of ]]; then
	ok "load: SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT it cannot produce stops the server"
else
	not_ok "load: SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT it cannot produce stops the server" "exit $rc [${out:0:300}]"
fi

# ---- 2. the 150 iris rows in every format ---------------------------------

serve iris --model-dir models/iris || { finish; exit 1; }

post "$T/iris.csv" text/csv text/csv
expect "iris csv->csv: status and type" "200 text/csv" "$STATUS $CTYPE"
expect "iris csv->csv: labels equal scikit-learn's predict" ok "$(check csv "$VECTORS" "$T/body")"
post "$T/iris.csv" text/csv application/json
expect "iris csv->json: status and type" "200 application/json" "$STATUS $CTYPE"
expect "iris csv->json: labels and probabilities" ok "$(check json "$VECTORS" "$T/body")"
post "$T/iris.csv" text/csv application/jsonlines
expect "iris csv->jsonlines: status and type" "200 application/jsonlines" "$STATUS $CTYPE"
expect "iris csv->jsonlines: 150 lines, labels and probabilities" ok "$(check jsonl "$VECTORS" "$T/body")"

# CRLF line ends, no final newline, charset and label_size=0 parameters
sed 's/$/\r/' "$T/iris.csv" | head -c -2 >"$T/iris-crlf.csv"
post "$T/iris-crlf.csv" 'text/csv; charset=utf-8; label_size=0' text/csv
expect "iris csv with CRLF, no final newline, parameters" ok "$(check csv "$VECTORS" "$T/body")"
post "$T/iris.csv" - text/csv
expect "no Content-Type is text/csv" ok "$(check csv "$VECTORS" "$T/body")"
post "$T/iris.csv" 'TEXT/CSV' text/csv
expect "media types are case-insensitive" ok "$(check csv "$VECTORS" "$T/body")"

for form in features data sparse sparse-features plain; do
	to_json "$form" "$T/iris.csv" "$T/iris-$form.json"
	post "$T/iris-$form.json" application/json application/json
	expect "iris json ($form) -> json" ok "$(check json "$VECTORS" "$T/body")"
done
for form in features data sparse plain; do
	to_json "lines-$form" "$T/iris.csv" "$T/iris-lines-$form.jsonl"
	post "$T/iris-lines-$form.jsonl" application/jsonlines application/jsonlines
	expect "iris jsonlines ($form) -> jsonlines" ok "$(check jsonl "$VECTORS" "$T/body")"
done
post "$T/iris-lines-features.jsonl" application/jsonlines text/csv
expect "iris jsonlines -> csv" ok "$(check csv "$VECTORS" "$T/body")"
head -c -1 "$T/iris-lines-data.jsonl" | sed 's/$/\r/' >"$T/iris-crlf.jsonl"
post "$T/iris-crlf.jsonl" application/jsonlines text/csv
expect "iris jsonlines with CRLF, no final newline" ok "$(check csv "$VECTORS" "$T/body")"

send '5.1,3.5,1.4,0.2' text/csv application/json
expect "one record: the Linear Learner's JSON shape" \
	'{"predictions":[{"score":[0.9846947466018541,0.01530519137358697,6.202455901346555e-08],"predicted_label":0}]}' "$BODY"
send '{"instances": []}' application/json application/json
expect "no instances: no predictions" '200 {"predictions":[]}' "$STATUS $BODY"

# ---- 2b. NPY, recordio-protobuf and bare JSON arrays -----------------------

# codec MODE ARGS...: binary bodies made and answers read in plain python3
# (struct only, no numpy), following numpy's NPY format and SageMaker's
# record.proto.
#   npy DTYPE SRC.csv DST [1d]          the rows as an NPY array (f8, f4, i8)
#   rio KIND SRC.csv DST                a Record per row: f64, f32, sparse
#   npy-read ANSWER                     shape, then the rows, as %.17g
#   rio-read ANSWER                     a line per Record: key=values ...
codec() {
	"$PY" - "$@" <<'PY'
import struct, sys
mode = sys.argv[1]
def rows(path):
    return [[float(v) for v in l.split(",")] for l in open(path).read().split("\n") if l]
def varint(v):
    out = b""
    while v >= 0x80:
        out += bytes([v & 0x7f | 0x80]); v >>= 7
    return out + bytes([v])
def field(n, payload):
    return varint(n << 3 | 2) + varint(len(payload)) + payload
if mode == "npy":
    dtype, src, dst = sys.argv[2:5]
    X = rows(src)
    one = len(sys.argv) > 5
    shape = "(%d,)" % len(X[0]) if one else "(%d, %d)" % (len(X), len(X[0]))
    head = "{'descr': '<%s', 'fortran_order': False, 'shape': %s, }" % (dtype, shape)
    head += " " * (63 - (10 + len(head)) % 64) + "\n"
    fmt = {"f8": "<d", "f4": "<f", "i8": "<q"}[dtype]
    data = b"".join(struct.pack(fmt, int(v) if dtype == "i8" else v) for r in (X[:1] if one else X) for v in r)
    open(dst, "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode() + data)
elif mode == "rio":
    kind, src, dst = sys.argv[2:5]
    out = b""
    for x in rows(src):
        if kind == "sparse":   # the nonzero features, shape [n]
            keys = [k for k, v in enumerate(x) if v != 0]
            tensor = field(1, b"".join(struct.pack("<d", x[k]) for k in keys)) + \
                field(2, b"".join(varint(k) for k in keys)) + field(3, varint(len(x)))
            value = field(3, tensor)
        elif kind == "f32":
            value = field(2, field(1, b"".join(struct.pack("<f", v) for v in x)))
        else:
            value = field(3, field(1, b"".join(struct.pack("<d", v) for v in x)))
        rec = field(1, field(1, b"values") + field(2, value))
        out += struct.pack("<II", 0xced7230a, len(rec)) + rec + b"\0" * (-len(rec) % 4)
    open(dst, "wb").write(out)
elif mode == "npy-read":
    b = open(sys.argv[2], "rb").read()
    n = struct.unpack("<H", b[8:10])[0]
    head = b[10:10 + n].decode()
    shape = eval(head)["shape"]
    vals = struct.unpack("<%dd" % ((len(b) - 10 - n) // 8), b[10 + n:])
    print(head.rstrip("\n").rstrip(" "), (10 + n) % 64)
    for r in range(shape[0]):
        print(" ".join("%.17g" % v for v in vals[r * shape[1]:(r + 1) * shape[1]]))
elif mode == "rio-read":
    b = open(sys.argv[2], "rb").read()
    def fields(m):
        i = 0
        while i < len(m):
            tag = 0; s = 0
            while True:
                c = m[i]; i += 1; tag |= (c & 0x7f) << s; s += 7
                if not c & 0x80: break
            n = 0; s = 0
            while True:
                c = m[i]; i += 1; n |= (c & 0x7f) << s; s += 7
                if not c & 0x80: break
            assert tag & 7 == 2, "wire type %d" % (tag & 7)
            yield tag >> 3, m[i:i + n]; i += n
    at = 0
    while at < len(b):
        magic, length = struct.unpack("<II", b[at:at + 8])
        assert magic == 0xced7230a and length >> 29 == 0
        rec = b[at + 8:at + 8 + length]
        at += 8 + length + (-length % 4)
        words = []
        for f, entry in fields(rec):
            e = dict(fields(entry))
            value = dict(fields(e[2]))
            tensor = dict(fields(value[2]))   # Value.float32_tensor
            vals = struct.unpack("<%df" % (len(tensor.get(1, b"")) // 4), tensor.get(1, b""))
            words.append("%s:%s=%s" % ("F" if f == 1 else "L", e[1].decode(), ",".join(repr(v) for v in vals)))
        print(" ".join(words))
PY
}

# NPY in: float64 2-D, float32 2-D, 1-D (one record), int64; NPY out.
codec npy f8 "$T/iris.csv" "$T/iris.npy"
post "$T/iris.npy" application/x-npy application/json
expect "npy float64 (150, 4) -> json: labels and probabilities" ok "$(check json "$VECTORS" "$T/body")"
post "$T/iris.npy" application/x-npy text/csv
expect "npy float64 -> csv: labels" ok "$(check csv "$VECTORS" "$T/body")"
"$PY" -c 'import struct, sys
for l in open(sys.argv[1]):
    print(",".join(repr(struct.unpack("<f", struct.pack("<f", float(v)))[0]) for v in l.split(",")))' "$T/iris.csv" >"$T/iris-f32.csv"
post "$T/iris-f32.csv" text/csv application/jsonlines
cp "$T/body" "$T/f32-expected.jsonl"
codec npy f4 "$T/iris.csv" "$T/iris-f4.npy"
post "$T/iris-f4.npy" application/x-npy application/jsonlines
if [[ $STATUS == 200 ]] && cmp -s "$T/body" "$T/f32-expected.jsonl"; then ok "npy float32: the answers of the same float32 values in CSV"
else not_ok "npy float32: the answers of the same float32 values in CSV" "$STATUS $(head -c 200 "$T/body")"; fi
codec npy f8 "$T/iris.csv" "$T/iris-1d.npy" 1d
post "$T/iris-1d.npy" application/x-npy text/csv
expect "npy 1-D: one record" "200 $(head -n 1 "$T/labels.txt")" "$STATUS $BODY"
printf '6,3,5,2\n5,3,1,0\n7,3,6,2\n' >"$T/ints.csv"
post "$T/ints.csv" text/csv application/json
ints=$BODY
codec npy i8 "$T/ints.csv" "$T/ints.npy"
post "$T/ints.npy" application/x-npy application/json
expect "npy int64: the answers of the same numbers in CSV" "200 $ints" "$STATUS $BODY"
BODY_KEEP=0 post "$T/iris.npy" application/x-npy application/x-npy
expect "npy -> npy: status and type" "200 application/x-npy" "$STATUS $CTYPE"
codec npy-read "$T/body" >"$T/npy-answer.txt"
expect "npy answer: numpy.save's header, data at a multiple of 64 bytes" \
	"{'descr': '<f8', 'fortran_order': False, 'shape': (150, 3), } 0" "$(head -n 1 "$T/npy-answer.txt")"
tail -n +2 "$VECTORS" | cut -d, -f5- | tr , ' ' >"$T/probs.txt"
res=$("$PY" -c 'import sys
got = [[float(v) for v in l.split()] for l in open(sys.argv[1]).read().splitlines()[1:]]
exp = [[float(v) for v in l.split()[1:]] for l in open(sys.argv[2]).read().splitlines()]
bad = [i + 1 for i, (g, e) in enumerate(zip(got, exp)) if len(g) != len(e) or max(abs(a - b) for a, b in zip(g, e)) > 1e-9]
print("ok" if len(got) == len(exp) == 150 and not bad else "rows %d, first bad %s" % (len(got), bad[:1]))' "$T/npy-answer.txt" "$T/probs.txt")
expect "npy answer: a row of 3 probabilities per record, scikit-learn's within 1e-9" ok "$res"
BODY_KEEP=0 post "$T/iris.csv" text/csv application/x-npy
cp "$T/body" "$T/csv-to-npy"
if [[ $STATUS == 200 ]] && cmp -s "$T/csv-to-npy" <(BODY_KEEP=0 post "$T/iris.npy" application/x-npy application/x-npy; cat "$T/body"); then
	ok "csv -> npy: the same bytes as npy -> npy"
else not_ok "csv -> npy: the same bytes as npy -> npy" "$STATUS"; fi
printf '' >"$T/empty.csv"
BODY_KEEP=0 send '{"instances": []}' application/json application/x-npy
codec npy-read "$T/body" >"$T/npy-answer.txt"
expect "no records -> npy: shape (0, 3)" "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 3), } 0" "$(cat "$T/npy-answer.txt")"
if "$PY" -c 'import numpy' 2>/dev/null; then
	"$PY" -c 'import io, sys, numpy as np
a = np.loadtxt(sys.argv[1], delimiter=",")
b = io.BytesIO(); np.save(b, a); open(sys.argv[2], "wb").write(b.getvalue())
p = np.loadtxt(sys.argv[3])[:, 1:]
b = io.BytesIO(); np.save(b, np.load(sys.argv[4])); print("same" if b.getvalue() == open(sys.argv[4], "rb").read() else "differs")
print("close" if np.abs(np.load(sys.argv[4]) - p).max() < 1e-9 else "far")' "$T/iris.csv" "$T/iris-numpy.npy" "$T/probs.txt" "$T/csv-to-npy" >"$T/numpy.txt"
	post "$T/iris-numpy.npy" application/x-npy application/json
	expect "npy written by numpy.save -> json" ok "$(check json "$VECTORS" "$T/body")"
	expect "npy answer: numpy.load reads it, numpy.save writes the same bytes, scikit-learn's probabilities" \
		"same close" "$(tr '\n' ' ' <"$T/numpy.txt" | sed 's/ $//')"
else
	echo "# SKIP: python3-numpy not installed (NPY bodies written by numpy itself)"
fi

# recordio-protobuf in: dense float64 and float32, sparse; AWS's own bytes.
codec rio f64 "$T/iris.csv" "$T/iris.rio"
post "$T/iris.rio" application/x-recordio-protobuf application/json
expect "recordio dense float64 -> json: labels and probabilities" ok "$(check json "$VECTORS" "$T/body")"
codec rio sparse "$T/iris.csv" "$T/iris-sparse.rio"
post "$T/iris-sparse.rio" application/x-recordio-protobuf text/csv
expect "recordio sparse -> csv: labels" ok "$(check csv "$VECTORS" "$T/body")"
codec rio f32 "$T/iris.csv" "$T/iris-f32.rio"
post "$T/iris-f32.rio" application/x-recordio-protobuf application/jsonlines
if [[ $STATUS == 200 ]] && cmp -s "$T/body" "$T/f32-expected.jsonl"; then ok "recordio float32: the answers of the same float32 values in CSV"
else not_ok "recordio float32: the answers of the same float32 values in CSV" "$STATUS $(head -c 200 "$T/body")"; fi

# recordio-protobuf out: the Linear Learner's label map per record
BODY_KEEP=0 post "$T/iris.csv" text/csv application/x-recordio-protobuf
expect "csv -> recordio: status and type" "200 application/x-recordio-protobuf" "$STATUS $CTYPE"
codec rio-read "$T/body" >"$T/rio-answer.txt"
res=$("$PY" -c 'import sys
got = open(sys.argv[1]).read().splitlines()
exp = open(sys.argv[2]).read().splitlines()[1:]
for i, (g, e) in enumerate(zip(got, exp)):
    e = e.split(",")
    w = dict(x.split("=") for x in g.split())
    if list(w) != ["L:predicted_label", "L:score"]: print("record %d: %s" % (i + 1, list(w))); break
    if float(w["L:predicted_label"]) != float(e[4]): print("record %d: label %s" % (i + 1, w["L:predicted_label"])); break
    s = [float(v) for v in w["L:score"].split(",")]
    if len(s) != 3 or max(abs(a - float(b)) for a, b in zip(s, e[5:])) > 1e-7: print("record %d: score %s" % (i + 1, s)); break
else:
    print("ok" if len(got) == len(exp) == 150 else "%d records" % len(got))' "$T/rio-answer.txt" "$VECTORS")
expect "recordio answer: a Record per record, predicted_label and score (float32) as scikit-learn's" ok "$res"
post "$T/body" application/x-recordio-protobuf
expect_error "a recordio answer sent back has no 'values' feature: 400 naming the byte" 400 \
	"recordio-protobuf: Record has no 'values' feature at byte 0 \\(record 1\\)"

# bare JSON arrays, as the SDK's JSONSerializer sends numpy arrays and lists
"$PY" -c 'import json, sys
print(json.dumps([[float(v) for v in l.split(",")] for l in open(sys.argv[1])]))' "$T/iris.csv" >"$T/iris-bare.json"
post "$T/iris-bare.json" application/json application/json
expect "bare JSON array of 150 rows -> json" ok "$(check json "$VECTORS" "$T/body")"
send '[5.1, 3.5, 1.4, 0.2]' application/json text/csv
expect "bare JSON array of numbers: one record" "200 0" "$STATUS $BODY"
send ' [ {"features": [5.1, 3.5, 1.4, 0.2]}, [6.7, 3.0, 5.2, 2.3] ] ' application/json text/csv
expect "bare JSON array of instances in any form" "200 0
2" "$STATUS $BODY"
send '[ ]' application/json application/json
expect "bare empty JSON array: no predictions" '200 {"predictions":[]}' "$STATUS $BODY"
send '[[5.1, 3.5, 1.4, 0.2]] [1]' application/json
expect_error "bare JSON array: nothing may follow it" 400 'malformed JSON at line 1, column 24: expected nothing after the JSON array'
send '[[5.1, 3.5, 1.4, 0.2], [1, 2, 3]]' application/json
expect_error "bare JSON array: a short row named" 400 'record 2: expected 4 features, got 3'
send '[1, 2, 3, "4"]' application/json
expect_error "bare JSON array of numbers: a string feature named" 400 'record 1, field 4: expected a number, got a string'
send '"x"' application/json
expect_error "json: neither an object nor an array" 400 'expected a JSON object with an \\"instances\\" array, or an array of rows'

# malformed binary bodies: 400 naming the byte offset
head -c 200 "$T/iris.npy" >"$T/short.npy"
post "$T/short.npy" application/x-npy
expect_error "npy truncated: 400 with the byte offset" 400 'npy: truncated data: the shape needs 4800 bytes, 72 follow at byte 128'
head -c 100 "$T/iris.npy" >"$T/short.npy"
post "$T/short.npy" application/x-npy
expect_error "npy cut in its header: 400 with the byte offset" 400 'npy: header length 118 runs past the end \(90 bytes follow\) at byte 8'
send 'NUMPY' application/x-npy
expect_error "npy without its magic: 400 at byte 0" 400 'npy: not an NPY file .* at byte 0'
sed 's/<f8/>f8/' "$T/iris.npy" >"$T/big-endian.npy"
post "$T/big-endian.npy" application/x-npy
expect_error "npy big-endian: 400 at the dtype's byte" 400 "npy: big-endian dtype '>f8' is not supported at byte 20"
"$PY" -c 'import struct, sys
b = bytearray(open(sys.argv[1], "rb").read()); b[128 + 8 * 6:128 + 8 * 7] = struct.pack("<d", float("nan"))
open(sys.argv[2], "wb").write(b)' "$T/iris.npy" "$T/nan.npy"
post "$T/nan.npy" application/x-npy
expect_error "npy NaN feature: the record and field named" 400 'record 2, field 3: expected a finite number, got nan'
head -c 200 "$T/iris.rio" >"$T/short.rio"
post "$T/short.rio" application/x-recordio-protobuf
expect_error "recordio truncated: 400 with the byte offset" 400 'recordio-protobuf: truncated record: length 48, 24 bytes follow at byte 172 \(record 4\)'
post tests/codecs/bad_rio_varint_long.rio application/x-recordio-protobuf
expect_error "recordio malformed varint: 400 with the byte offset" 400 "$(sed 's/[()]/\\&/g' tests/codecs/bad_rio_varint_long.error)"
printf 'junk' >"$T/junk.rio"
post "$T/junk.rio" application/x-recordio-protobuf
expect_error "recordio bad magic: 400 at byte 0" 400 'recordio-protobuf: truncated RecordIO header \(4 of 8 bytes\) at byte 0'
"$PY" -c 'import sys
b = open(sys.argv[1], "rb").read()
open(sys.argv[2], "wb").write(b.replace(bytes([0x1a, 1, 3]), bytes([0x1a, 1, 9]), 1))' "$T/iris-sparse.rio" "$T/bad-shape.rio"
"$PY" -c 'import struct, sys
def field(n, p): return bytes([n << 3 | 2, len(p)]) + p
t = field(1, struct.pack("<dd", 1, 2)) + field(2, bytes([1, 1]))
rec = field(1, field(1, b"values") + field(2, field(3, t)))
open(sys.argv[1], "wb").write(struct.pack("<II", 0xced7230a, len(rec)) + rec + b"\0" * (-len(rec) % 4))' "$T/dup.rio"
post "$T/dup.rio" application/x-recordio-protobuf
expect_error "recordio sparse key given twice: named" 400 'record 1, key 2: key 1 given twice'
BODY_KEEP=0 send '' application/x-npy application/x-npy
expect "empty NPY body: 204" "204 " "$STATUS $BODY"
send '' application/x-recordio-protobuf
expect "empty recordio body: 204" "204 " "$STATUS $BODY"
stop_server iris

# AWS's own recordio bytes (tests/codecs/aws_*.rio, written by the SageMaker
# SDK's write_numpy_to_dense_tensor and write_spmatrix_to_sparse_tensor) into
# a regression of 5 features: each answer is 0.5 + sum (k + 1) x_k of the
# values tests/codecs/aws_*.expect lists.
mkdir -p "$T/five"
printf 'smserve-linear-model 1\nkind regression\nfeatures 5\nintercept 0.5\nweights 1 2 3 4 5\nend\n' >"$T/five/linear-model.txt"
serve five --model-dir "$T/five" || { finish; exit 1; }
for v in dense_f32 dense_f64 dense_int dense_labels sparse_f32 sparse_f64; do
	post "tests/codecs/aws_$v.rio" application/x-recordio-protobuf application/jsonlines
	res=$("$PY" -c 'import json, sys
exp = []
for l in open(sys.argv[1]):
    f = dict(w.split("=", 1) for w in l.split(" L ")[0].split()[5:])
    vals = [float(v) for v in f["values"].split(",")]
    keys = [int(k) for k in f["keys"].split(",")] if f["keys"] else list(range(len(vals)))
    exp.append(0.5 + sum((k + 1) * v for k, v in zip(keys, vals)))
got = [json.loads(l)["score"] for l in open(sys.argv[2])]
print("ok" if len(got) == len(exp) and all(abs(g - e) < 1e-9 for g, e in zip(got, exp)) else "%r %r" % (got, exp))' \
		"tests/codecs/aws_$v.expect" "$T/body")
	expect "AWS's recordio ($v) -> jsonlines: 0.5 + sum (k+1) x_k" "200 ok" "$STATUS $res"
done
post tests/codecs/aws_truncated.rio application/x-recordio-protobuf
expect_error "AWS's recordio cut short: the byte offset" 400 "$(sed 's/[()]/\\&/g' tests/codecs/aws_truncated.error)"
printf '1,2,3,4,5\n' >"$T/five.csv"
BODY_KEEP=0 post "$T/five.csv" text/csv application/x-recordio-protobuf
expect "regression -> recordio: score only" "L:score=55.5" "$(codec rio-read "$T/body")"
BODY_KEEP=0 post "$T/five.csv" text/csv application/x-npy
expect "regression -> npy: shape (1, 1)" "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1), } 0
55.5" "$(codec npy-read "$T/body")"
stop_server five

# A binary model answers recordio byte for byte as Python's protobuf wrote
# the Linear Learner's answer in tests/codecs/w_linear_learner.rio: score
# 0.25 with predicted_label 0, then 0.75 with 1 (x = logit of the score).
mkdir -p "$T/binary"
printf 'smserve-linear-model 1\nkind binary\nfeatures 1\nlabels 0 1\nintercept 0\nweights 1\nend\n' >"$T/binary/linear-model.txt"
serve binary --model-dir "$T/binary" || { finish; exit 1; }
BODY_KEEP=0 send '-1.0986122886681098\n1.0986122886681098\n' text/csv application/x-recordio-protobuf
if [[ $STATUS == 200 ]] && cmp -s "$T/body" tests/codecs/w_linear_learner.rio; then
	ok "binary -> recordio: byte for byte the Linear Learner's answer as Python's protobuf writes it"
else not_ok "binary -> recordio: byte for byte the Linear Learner's answer as Python's protobuf writes it" \
	"$STATUS $(od -An -tx1 "$T/body" | head -3)"; fi
stop_server binary

# SAGEMAKER_INFERENCE_OUTPUT: CSV columns beside the label
SAGEMAKER_INFERENCE_OUTPUT='predicted_label, Probability,probabilities,labels' serve output --model-dir models/iris || { finish; exit 1; }
post "$T/iris.csv" text/csv text/csv
res=$("$PY" -c 'import csv, json, sys
got = list(csv.reader(open(sys.argv[1], newline="")))
exp = [l.split(",") for l in open(sys.argv[2]).read().splitlines()[1:]]
for i, (g, e) in enumerate(zip(got, exp)):
    p = [float(v) for v in e[5:]]
    if len(g) != 4 or g[0] != e[4] or g[3] != "[0, 1, 2]": print("record %d: %r" % (i + 1, g)); break
    if abs(float(g[1]) - max(p)) > 1e-9 or max(abs(a - b) for a, b in zip(json.loads(g[2]), p)) > 1e-9:
        print("record %d: %r, scikit-learn %r" % (i + 1, g, p)); break
else:
    print("ok" if len(got) == len(exp) == 150 else "%d rows" % len(got))' "$T/body" "$VECTORS")
expect "SAGEMAKER_INFERENCE_OUTPUT: label, its probability, all probabilities, labels as CSV columns" "200 ok" "$STATUS $res"
expect "SAGEMAKER_INFERENCE_OUTPUT: a CSV line per record" 150 "$(wc -l <"$T/body")"
send '5.1,3.5,1.4,0.2' text/csv text/csv
expect "SAGEMAKER_INFERENCE_OUTPUT: one record's line" \
	'0,0.9846947466018541,"[0.9846947466018541, 0.01530519137358697, 6.202455901346555e-08]","[0, 1, 2]"' "$BODY"
send '5.1,3.5,1.4,0.2' text/csv application/json
expect "SAGEMAKER_INFERENCE_OUTPUT: JSON answers stay the Linear Learner's" \
	'{"predictions":[{"score":[0.9846947466018541,0.01530519137358697,6.202455901346555e-08],"predicted_label":0}]}' "$BODY"
stop_server output
mkdir -p "$T/yes-no"
printf 'smserve-linear-model 1\nkind binary\nfeatures 1\nlabels no yes\nintercept 0\nweights 1\nend\n' >"$T/yes-no/linear-model.txt"
SAGEMAKER_INFERENCE_OUTPUT=predicted_label,probability,probabilities,labels serve output-binary --model-dir "$T/yes-no" || { finish; exit 1; }
send '-2\n2\n' text/csv text/csv
expect "SAGEMAKER_INFERENCE_OUTPUT, binary: probability is P(second label), as Autopilot defines it" \
	'no,0.11920292202211755,"[0.8807970779778824, 0.11920292202211755]","[""no"", ""yes""]"
yes,0.8807970779778823,"[0.11920292202211769, 0.8807970779778823]","[""no"", ""yes""]"' "$BODY"
stop_server output-binary
SAGEMAKER_INFERENCE_OUTPUT=predicted_score serve output-regression --model-dir "$T/five" || { finish; exit 1; }
send '1,2,3,4,5' text/csv text/csv
expect "SAGEMAKER_INFERENCE_OUTPUT=predicted_score: the value" "200 55.5" "$STATUS $BODY"
stop_server output-regression
for c in "five:probability:predicted_score (a regression model), got 'probability'" \
	"yes-no:predicted_score:predicted_label, probability, probabilities, labels (a classifier), got 'predicted_score'" \
	"yes-no:raw_score:predicted_label, probability, probabilities, labels (a classifier), got 'raw_score'"; do
	IFS=: read -r dir key want <<<"$c"
	out=$(SAGEMAKER_INFERENCE_OUTPUT=$key timeout 10 "$SMSERVE" --port "$(free_port)" --model-dir "$T/$dir" 2>&1)
	rc=$?
	if [[ $rc -ne 0 && $rc -ne 124 && $out == *"SAGEMAKER_INFERENCE_OUTPUT: expected keys among $want"* ]]; then
		ok "SAGEMAKER_INFERENCE_OUTPUT=$key on $dir stops the server naming the keys it takes"
	else
		not_ok "SAGEMAKER_INFERENCE_OUTPUT=$key on $dir stops the server naming the keys it takes" "exit $rc [${out:0:300}]"
	fi
done
serve iris --model-dir models/iris || { finish; exit 1; }

# ---- 3. Accept --------------------------------------------------------------

send '6.7,3.0,5.2,2.3' text/csv -
expect "no Accept: application/json" "200 application/json" "$STATUS $CTYPE"
send '6.7,3.0,5.2,2.3' text/csv '*/*'
expect "Accept */*: application/json" "200 application/json" "$STATUS $CTYPE"
send '6.7,3.0,5.2,2.3' text/csv 'text/csv;q=0.5, application/json;q=0.9'
expect "Accept q-values: the higher wins" "200 application/json" "$STATUS $CTYPE"
send '6.7,3.0,5.2,2.3' text/csv 'application/json;q=0.1, application/jsonlines'
expect "Accept q-values: q defaults to 1" "200 application/jsonlines" "$STATUS $CTYPE"
send '6.7,3.0,5.2,2.3' text/csv 'image/png, text/*;q=0.3'
expect "Accept text/*: text/csv" "200 text/csv 2" "$STATUS $CTYPE $BODY"
send '6.7,3.0,5.2,2.3' text/csv 'text/csv, */*'
expect "Accept: an exact type beats */* at equal q" "200 text/csv" "$STATUS $CTYPE"
send '6.7,3.0,5.2,2.3' text/csv 'text/csv;q=0, */*;q=0.5'
expect "Accept: q=0 refuses a type" "200 application/json" "$STATUS $CTYPE"
send '6.7,3.0,5.2,2.3' text/csv 'application/xml'
expect_error "Accept it cannot produce: 406 naming the supported types" 406 "application/xml.*supported: application/json, application/jsonlines, text/csv, application/x-npy, application/x-recordio-protobuf"
send '6.7,3.0,5.2,2.3' text/csv 'text/csv;q=0'
expect_error "Accept with only q=0: 406" 406 "supported"
out=$(curl -s -o /dev/null -w '%{http_code} %{content_type}' -H 'Content-Type: text/csv' \
	-H 'Accept: application/xml' -H 'Accept: text/csv' -d '6.7,3.0,5.2,2.3' "$(url /invocations)")
expect "Accept on two lines is one list (RFC 9110 5.3): the second line's type is produced" "200 text/csv" "$out"

# ---- 3. errors: 400 with the record and field, 415 -------------------------

send '5.1,3.5,1.4,0.2\n6.7,3.0,5.2\n' text/csv
expect_error "csv: too few features" 400 'record 2: expected 4 features, got 3'
send '5.1,3.5,1.4,0.2,9\n' text/csv
expect_error "csv: too many features" 400 'record 1: expected 4 features, got 5'
send '5.1,3.5,1.4,0.2\n1,2,abc,4\n' text/csv
expect_error "csv: not a number" 400 "record 2, field 3: expected a number, got 'abc'"
send '1,2,NaN,4' text/csv
expect_error "csv: NaN" 400 "record 1, field 3: expected a number, got 'NaN'"
send '1,2,3,-inf' text/csv
expect_error "csv: infinity" 400 "record 1, field 4: expected a number, got '-inf'"
send '1,2,3,1e999' text/csv
expect_error "csv: out of range" 400 "record 1, field 4: number out of range"
send "1,2,0.$(printf '0%.0s' $(seq 600))1,4" text/csv
expect_error "csv: a number longer than 512 characters" 400 "record 1, field 3: expected a number of at most 512 characters"
send '1,0x10,3,4' text/csv
expect_error "csv: hex is not a number" 400 "record 1, field 2: expected a number, got '0x10'"
send '5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3' text/csv application/json
plain=$BODY
send '5.1, 3.5 ,\t1.4,0.2 \r\n 6.7 , 3.0,\t5.2\t,2.3\t' text/csv application/json
expect "csv: spaces and tabs around numbers are ignored, as SageMaker's containers do" "200 $plain" "$STATUS $BODY"
send '1,2 3,3,4' text/csv
expect_error "csv: a space inside a field is not a separator" 400 "record 1, field 2: expected a number, got '2 3'"
send '1, \t,3,4' text/csv
expect_error "csv: a field of only spaces is empty" 400 'record 1, field 2: expected a number, got an empty field'
send '1,2,3,4\n \t \n1,2,3,4\n' text/csv
expect_error "csv: a line of only spaces is an empty line" 400 'record 2: expected 4 features, got an empty line'
send '1, abc ,3,4' text/csv
expect_error "csv: the field is named without its blanks" 400 "record 1, field 2: expected a number, got 'abc'\"\\}"
send '1,,3,4' text/csv
expect_error "csv: empty field" 400 'record 1, field 2: expected a number, got an empty field'
send '1,2,3,4\n\n1,2,3,4\n' text/csv
expect_error "csv: empty line" 400 'record 2: expected 4 features, got an empty line'
send '1,2,3,4\r\n\r\n1,2,3,4\r\n' text/csv
expect_error "csv: empty CRLF line" 400 'record 2: expected 4 features, got an empty line'
send '1,2,3,4,\n' text/csv
expect_error "csv: a trailing comma is an empty field" 400 'record 1, field 5: expected a number, got an empty field'
send '1,2\r,3,4\n' text/csv
expect_error "csv: a CR inside a line is not a line end" 400 'record 1, field 2: expected a number'
send '1,2,3,4\r\r\n' text/csv
expect_error "csv: only one CR before the LF ends a line" 400 'record 1, field 4: expected a number'
send '5.1,3.5,1.4,0.2\r\n6.7,3.0,5.2,2.3\r' text/csv text/csv
expect "csv: CRLF lines and a CR ending the body: one answer per record" "200 0
2" "$STATUS $BODY"
send '' text/csv
expect "empty body: 204, as the XGBoost container answers" "204 " "$STATUS $BODY"
send '\xEF\xBB\xBF' text/csv
expect "a body of only a byte order mark: 204" "204 " "$STATUS $BODY"
send '{"instances": [[1,2,3,4], [1,2,"3",4]]}' application/json
expect_error "json: a string feature" 400 'record 2, field 3: expected a number, got a string'
send '{"instances": [[1,2,3,NaN]]}' application/json
expect_error "json: NaN" 400 "record 1, field 4: expected a number, got 'NaN'"
send '{"instances": [[1,2,3,Infinity]]}' application/json
expect_error "json: Infinity" 400 "record 1, field 4: expected a number, got 'Infinity'"
send '{"instances": [{"features": [1,2,3]}]}' application/json
expect_error "json: wrong count" 400 'record 1: expected 4 features, got 3'
send '{"instances": [[1,2,3,4]]' application/json
expect_error "json: malformed (unterminated)" 400 'malformed JSON at line 1, column 26'
send '{"instances": [[1,2,3,4],]}' application/json
expect_error "json: malformed (trailing comma)" 400 'malformed JSON at line 1, column 26'
send '{"instances": [[1,2,3,4]]}\n}' application/json
expect_error "json: malformed (text after the object)" 400 'malformed JSON at line 2, column 1'
send '{"instance": [[1,2,3,4]]}' application/json
expect_error "json: no instances" 400 'expected an \\"instances\\" array'
send '{"instances": [{"features": {"keys": [0, 7], "shape": [4], "values": [1, 2]}}]}' application/json
expect_error "json sparse: key out of range" 400 'record 1, key 2: expected a whole number from 0 to 3, got 7'
send '{"instances": [{"features": {"keys": [1, 1], "values": [1, 2]}}]}' application/json
expect_error "json sparse: repeated key" 400 'record 1, key 2: key 1 given twice'
send '{"instances": [{"features": {"keys": [0], "shape": [5], "values": [1]}}]}' application/json
expect_error "json sparse: wrong shape" 400 'record 1: expected \\"shape\\" to be \[4\]'
printf '{"configuration": %s' "$(printf '[%.0s' $(seq 100000))" >"$T/deep.json"
post "$T/deep.json" application/json
expect_error "json: 100000 levels of nesting is a 400, not a crash" 400 'at most 64 levels of nesting'
printf '{"instances": [%s' "$(printf '[%.0s' $(seq 100000))" >"$T/deep.json"
post "$T/deep.json" application/json
expect_error "json: arrays nested in an instance are a 400, not a crash" 400 'record 1, field 1: expected a number, got an array'
send '{"features": [1,2,3,4]}\n{"features": [1,2,3,4], }\n' application/jsonlines
expect_error "jsonlines: malformed line" 400 'record 2: malformed JSON at column 25'
send '{"features": [1,2,3,4]}\n\n{"features": [1,2,3,4]}' application/jsonlines
expect_error "jsonlines: empty line" 400 'record 2: expected a JSON object, got an empty line'
send '1,2,3,4' application/xml
expect_error "415 naming the supported types" 415 "unsupported Content-Type 'application/xml'; supported: text/csv, application/json, application/jsonlines, application/x-npy, application/x-recordio-protobuf"
send '1,2,3,4' 'text/csv; label_size=1'
expect_error "415 for a label column" 415 'label_size=1'

# no partial answer: 1000 good records, then a bad one
for _ in $(seq 7); do cat "$T/iris.csv"; done | head -n 1000 >"$T/partial.csv"
echo '1,2,3' >>"$T/partial.csv"
post "$T/partial.csv" text/csv text/csv
expect_error "a bad record 1001 gets a 400 and nothing else" 400 '^\{"error": "record 1001: expected 4 features, got 3"\}$'

# N records in, N lines out; labels checked against a plain-Python reading of
# the model file (docs/model-format.md), for records scikit-learn never saw
"$PY" - "$T/random.csv" "$T/random-expected.txt" models/iris/linear-model.txt <<'PY'
import math, random, sys
random.seed(7)
out, exp, model = sys.argv[1:4]
m = {}
for line in open(model):
    w = line.split()
    if not w or w[0].startswith("#"): continue
    m.setdefault(w[0], []).append(w[1:])
mean = [float(v) for v in m["mean"][0]]; scale = [float(v) for v in m["scale"][0]]
b = [float(v) for v in m["intercept"][0]]; W = [[float(v) for v in r] for r in m["weights"]]
labels = m["labels"][0]
with open(out, "w") as f, open(exp, "w") as e:
    for i in range(5000):
        x = [round(random.uniform(0, 8), random.randint(0, 3)) for _ in range(4)]
        f.write(",".join(repr(v) for v in x) + "\n")
        xs = [(v - mu) / s for v, mu, s in zip(x, mean, scale)]
        z = [sum(wj * xj for wj, xj in zip(r, xs)) + bk for r, bk in zip(W, b)]
        e.write(labels[max(range(len(z)), key=lambda k: (z[k], -k))] + "\n")
PY
post "$T/random.csv" text/csv text/csv
expect "5000 records in: 5000 lines out" "5000" "$(wc -l <"$T/body")"
if cmp -s "$T/body" "$T/random-expected.txt"; then ok "5000 records: labels as the model file defines them"
else not_ok "5000 records: labels as the model file defines them" "$(diff "$T/body" "$T/random-expected.txt" | head -3)"; fi
post "$T/random.csv" text/csv application/jsonlines
expect "5000 records in: 5000 JSON lines out, each ending in a newline" "5000 yes" \
	"$(wc -l <"$T/body") $([[ $(tail -c 1 "$T/body" | od -An -c | tr -d ' ') == '\n' ]] && echo yes)"
stop_server iris

# CSV answers carry each label whole, whatever its length (short ones take a
# fixed-size copy, longer ones an exact one): 15, 16 and 64 characters.
l15=fifteen-chars-x l16=sixteen-chars-xx l64=$(printf 'L%.0s' {1..64})
mkdir -p "$T/long-labels"
printf 'smserve-linear-model 1\nkind multinomial\nfeatures 2\nlabels %s %s %s\nintercept 0 0 0\nweights 1 0\nweights 0 1\nweights -1 -1\nend\n' \
	"$l15" "$l16" "$l64" >"$T/long-labels/linear-model.txt"
serve long-labels --model-dir "$T/long-labels" || { finish; exit 1; }
send '5,0\n0,5\n-5,-5\n0,5\n5,0\n' text/csv text/csv
expect "csv answers: labels of 15, 16 and 64 characters, whole and in order" \
	"200 $l15 $l16 $l64 $l16 $l15" "$STATUS $(tr '\n' ' ' <<<"$BODY" | sed 's/ $//')"
stop_server long-labels

SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=text/csv serve default-accept --model-dir models/iris || { finish; exit 1; }
send '6.7,3.0,5.2,2.3' text/csv -
expect "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=text/csv: no Accept gets CSV" "200 text/csv 2" "$STATUS $CTYPE $BODY"
send '6.7,3.0,5.2,2.3' text/csv '*/*'
expect "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=text/csv: */* gets CSV" "200 text/csv" "$STATUS $CTYPE"
send '6.7,3.0,5.2,2.3' text/csv ' , ,'
expect "Accept of empty list elements (RFC 9110 5.6.1) is no preference: the default" "200 text/csv" "$STATUS $CTYPE"
send '6.7,3.0,5.2,2.3' text/csv 'application/json'
expect "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT: an explicit Accept wins" "200 application/json" "$STATUS $CTYPE"
stop_server default-accept

# ---- 4. a 1,000,000-record batch -------------------------------------------

N=1000000
awk -v n=$N '{ a[NR - 1] = $0 } END { for (i = 0; i < n; i++) print a[i % NR] }' "$T/iris.csv" >"$T/big.csv"
awk -v n=$N '{ a[NR - 1] = $0 } END { for (i = 0; i < n; i++) print a[i % NR] }' "$T/labels.txt" >"$T/big-expected.txt"
SAGEMAKER_MAX_PAYLOAD_IN_MB=32 serve batch --model-dir models/iris || { finish; exit 1; }
t0=$(date +%s%N)
post "$T/big.csv" text/csv text/csv
t1=$(date +%s%N)
expect "1,000,000 records: status" "200 text/csv" "$STATUS $CTYPE"
expect "1,000,000 records: 1,000,000 lines" "$N" "$(wc -l <"$T/body")"
if cmp -s "$T/body" "$T/big-expected.txt"; then ok "1,000,000 records: every label equals scikit-learn's"
else not_ok "1,000,000 records: every label equals scikit-learn's" "$(cmp "$T/body" "$T/big-expected.txt" 2>&1 | head -1)"; fi
echo "# 1,000,000-record CSV batch ($(wc -c <"$T/big.csv") bytes) answered in $(( (t1 - t0) / 1000000 )) ms (curl, loopback, $(basename "$SMSERVE"))"
post "$T/big.csv" text/csv application/json
# About 90 MB of JSON: past one 1 MiB piece, so it streams (chunked) with
# no response limit by default; every prediction arrives.
expect "1,000,000 records as JSON (streamed, no response limit): status" "200 application/json" "$STATUS $CTYPE"
out=$("$PY" -c '
import json, sys
p = json.load(open(sys.argv[1]))["predictions"]
want = open(sys.argv[2]).read().split()
print(len(p), sum(str(r["predicted_label"]) == w for r, w in zip(p, want)))' "$T/body" "$T/big-expected.txt")
expect "1,000,000 records as JSON: every prediction arrives, every label right" "$N $N" "$out"
stop_server batch

# Fields the fast path leaves to parse_number (exponents, as numpy's savetxt
# writes them) read the same numbers, and cost no more on a long line: once
# each field looked for its line's end, and this 8 MB line took minutes.
awk '{ split($0, f, ","); printf "%.18e,%.18e,%.18e,%.18e\n", f[1], f[2], f[3], f[4] }' "$T/iris.csv" >"$T/iris-e.csv"
SAGEMAKER_MAX_PAYLOAD_IN_MB=32 serve slowpath --model-dir models/iris --timeout 20 || { finish; exit 1; }
post "$T/iris-e.csv" text/csv text/csv
if [[ $STATUS == 200 ]] && cmp -s "$T/body" "$T/labels.txt"; then ok "csv: numbers with exponents (%.18e): every label equals scikit-learn's"
else not_ok "csv: numbers with exponents (%.18e): every label equals scikit-learn's" "$STATUS $(head -c 200 "$T/body")"; fi
awk 'BEGIN { for (i = 0; i < 2000000; i++) printf "1e0,"; print "1e0" }' >"$T/long-line.csv"
post "$T/long-line.csv" text/csv text/csv
expect_error "csv: an 8 MB line of 2,000,001 exponent fields is a 400 within the invocation timeout" 400 \
	'record 1: expected 4 features, got 2000001'
stop_server slowpath

# ---- 5. exporter round trips (scikit-learn) ---------------------------------

if [[ -x tools/export_linear.py ]] && tools/export_linear.py --help >/dev/null 2>&1; then
	ok "tools/export_linear.py runs as a command"
else
	not_ok "tools/export_linear.py runs as a command" "not executable, or --help failed"
fi

if ! "$PY" -c 'import sklearn' 2>/dev/null; then
	echo "# SKIP: python3-sklearn not installed (exporter round trips)"
	finish
	exit $?
fi

# fit NAME: fits one estimator, saves it with joblib, writes X as CSV and
# scikit-learn's answers as the vectors file format (features, label, probas).
fit() {
	"$PY" - "$1" "$T/rt-$1" <<'PY'
import sys, os, joblib, warnings
import numpy as np
from sklearn import datasets, linear_model as lm
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
warnings.filterwarnings("ignore")
name, d = sys.argv[1:3]
os.makedirs(d, exist_ok=True)
Xi, yi = datasets.load_iris(return_X_y=True)
Xb, yb = datasets.load_breast_cancer(return_X_y=True)
Xw, yw = datasets.load_wine(return_X_y=True)
Xd, yd = datasets.load_diabetes(return_X_y=True)
yb_text = np.where(yb == 1, "benign", "malignant")
est, X, y = {
    "linreg": (lm.LinearRegression(), Xd, yd),
    "ridge": (lm.Ridge(alpha=0.5), Xd, yd),
    "lasso-scaled": (make_pipeline(StandardScaler(), lm.Lasso(alpha=0.1)), Xd, yd),
    "binary-scaled": (make_pipeline(StandardScaler(), lm.LogisticRegression(max_iter=5000)), Xb, yb),
    "binary-text-labels": (make_pipeline(StandardScaler(), lm.LogisticRegression(max_iter=5000)), Xb, yb_text),
    "multinomial-scaled": (make_pipeline(StandardScaler(), lm.LogisticRegression(max_iter=5000)), Xw, yw),
    "multinomial-raw": (lm.LogisticRegression(max_iter=10000, C=10), Xi, yi),
    "binary-multinomial": (lm.LogisticRegression(multi_class="multinomial", max_iter=10000), Xb[:, :4], yb),
    "ovr-liblinear": (lm.LogisticRegression(solver="liblinear"), Xi, yi + 1),
    "float-labels": (lm.LogisticRegression(max_iter=5000), Xi, yi.astype(float)),
}[name]
est.fit(X, y)
joblib.dump(est, os.path.join(d, "est.joblib"))
with open(os.path.join(d, "X.csv"), "w") as f:
    for x in X:
        f.write(",".join(repr(float(v)) for v in x) + "\n")
with open(os.path.join(d, "expected.txt"), "w") as f:
    if hasattr(est, "predict_proba"):
        for lab, p in zip(est.predict(X), est.predict_proba(X)):
            f.write("%s %s\n" % (lab.item() if hasattr(lab, "item") else lab, " ".join(repr(float(v)) for v in p)))
    else:
        for v in est.predict(X):
            f.write("%r\n" % float(v))
PY
}

# compare_rt DIR: the server's jsonlines answer against scikit-learn's.
compare_rt() {
	"$PY" - "$1" <<'PY'
import json, sys
d = sys.argv[1]
exp = [l.split() for l in open(d + "/expected.txt").read().splitlines()]
data = open(d + "/got.jsonl").read()
if not data.endswith("\n"): print("no final newline"); sys.exit()
got = [json.loads(l) for l in data[:-1].split("\n")]
if len(got) != len(exp): print("%d answers for %d records" % (len(got), len(exp))); sys.exit()
for i, (g, e) in enumerate(zip(got, exp)):
    if len(e) == 1:  # regression: a value, no label
        if set(g) != {"score"} or abs(g["score"] - float(e[0])) > 1e-9 * max(1, abs(float(e[0]))):
            print("record %d: %r, scikit-learn %s" % (i + 1, g, e[0])); sys.exit()
        continue
    label, probs = e[0], [float(v) for v in e[1:]]
    if str(g["predicted_label"]) != label:
        print("record %d: label %r, scikit-learn %s" % (i + 1, g["predicted_label"], label)); sys.exit()
    s = g["score"]
    s = [1 - s, s] if len(probs) == 2 else s   # binary: score is P(second class)
    if max(abs(a - b) for a, b in zip(s, probs)) > 1e-9:
        print("record %d: score %r, scikit-learn %r" % (i + 1, g["score"], probs)); sys.exit()
print("ok")
PY
}

for name in linreg ridge lasso-scaled binary-scaled binary-text-labels multinomial-scaled \
	multinomial-raw binary-multinomial ovr-liblinear float-labels; do
	d=$T/rt-$name
	fit "$name"
	if ! "$PY" tools/export_linear.py "$d/est.joblib" -o "$d/model" --tar "$d/model.tar.gz" >"$d/export.log" 2>&1; then
		not_ok "export $name" "$(cat "$d/export.log")"
		continue
	fi
	expect "export $name: model.tar.gz holds linear-model.txt at its root" "linear-model.txt" "$(tar tzf "$d/model.tar.gz")"
	mkdir -p "$d/unpacked" && tar xzf "$d/model.tar.gz" -C "$d/unpacked"
	serve "rt-$name" --model-dir "$d/unpacked" || continue
	post "$d/X.csv" text/csv application/jsonlines
	cp "$T/body" "$d/got.jsonl"
	expect "round trip $name: answers equal scikit-learn's" ok "$(compare_rt "$d")"
	stop_server "rt-$name"
done
expect "export float-labels: labels keep Python's spelling" "labels 0.0 1.0 2.0" "$(grep '^labels' "$T/rt-float-labels/model/linear-model.txt")"
expect "export binary-text-labels: text labels" "labels benign malignant" "$(grep '^labels' "$T/rt-binary-text-labels/model/linear-model.txt")"

# an estimator the format cannot hold is refused with the reason
"$PY" -c '
import joblib, sys
from sklearn.svm import SVC
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.datasets import load_iris
x, y = load_iris(return_X_y=True)
joblib.dump(SVC().fit(x, y), sys.argv[1] + "/svc.joblib")
joblib.dump(RandomForestClassifier(n_estimators=2, random_state=0).fit(x, y), sys.argv[1] + "/forest.joblib")
joblib.dump(LogisticRegression(), sys.argv[1] + "/unfitted.joblib")' "$T"
for c in "svc:SVC is not a linear model" "forest:RandomForestClassifier is not a linear model" \
	"unfitted:LogisticRegression is not fitted"; do
	out=$("$PY" tools/export_linear.py "$T/${c%%:*}.joblib" -o "$T/${c%%:*}" 2>&1)
	rc=$?
	if [[ $rc -ne 0 && $out == *"${c#*:}"* && $out != *"not fitted or not linear"* ]]; then
		ok "exporter refuses ${c%%:*}: ${c#*:}"
	else
		not_ok "exporter refuses ${c%%:*}: ${c#*:}" "exit $rc [$out]"
	fi
done

finish
