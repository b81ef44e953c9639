#!/usr/bin/env bash
# test-binary: xgboost
# tests/xgboost.sh - the XGBoost plug-in (examples/xgboost/model.c) end to
# end, through the real server, against XGBoost's own predictions.
#
#   SMSERVE=./build/smserve-xgboost bash tests/xgboost.sh     (from the repo root)
#   SMSERVE=./build/asan-xgboost bash tests/xgboost.sh
#
# Needs bash, curl, tar and /usr/bin/python3 (only to compare numbers); not
# XGBoost: the models and XGBoost's predictions are committed in
# tests/xgboost/ (made by tools/make_xgboost_fixtures.py).
#
# 1. Every model (each objective, gbtree and dart, a random forest, early
#    stopping, margins past the sigmoid's range) in every format (JSON, UBJSON, legacy binary; and the binary
#    without "binf" as XGBoost 0.x wrote it, JSON as XGBoost 3.1 writes it,
#    pickled Boosters), each request format (CSV, libsvm, JSON, JSON Lines,
#    recordio-protobuf dense and sparse, NPY float32 and float64, with missing
#    values) and each answer format (recordio-protobuf and NPY included): every
#    prediction within 1e-6 relative of XGBoost's, and the count of exact
#    float32 matches.
# 2. A SageMaker model.tar.gz; a 1 MB CSV batch.
# 3. Loading: truncated and corrupted files of each format, empty, pickled,
#    linear, no file, two files: exit status 1 and a message naming the file.
# 4. Requests: 400 naming the record and field, 406, 415, Accept with
#    q-values, the default answer type and SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT;
#    recordio-protobuf read as SageMaker's XGBoost container reads it; NPY in
#    (every dtype, 1-D and 2-D) answered as the same records in CSV, NPY out
#    checked byte for byte, malformed NPY.
# 5. The other layouts: batch, one-line CSV, SAGEMAKER_INFERENCE_OUTPUT (its
#    recordio-protobuf answer against the golden files of tests/xgboost/golden/).
set -u
cd "$(dirname "$0")/.." || exit 1
export LC_ALL=C
SMSERVE=${SMSERVE:-./build/smserve-xgboost}
source tests/lib.sh

PY=/usr/bin/python3
FIX=tests/xgboost
T=$TEST_TMP
unset SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT SAGEMAKER_MAX_PAYLOAD_IN_MB
# Real time (section 5 checks batch's layout and the older one-line CSV).
unset SAGEMAKER_BATCH SAGEMAKER_INFERENCE_OUTPUT MAX_CONTENT_LENGTH SMSERVE_XGBOOST_CSV SAGEMAKER_INFERENCE_ENSEMBLE
unset SMSERVE_XGBOOST_RECORDIO
TOTAL_VALUES=0
TOTAL_EXACT=0

# ---- helpers ---------------------------------------------------------------

BODY_KEEP=2000   # post, send, expect_error: tests/lib.sh

# recordio-protobuf, written and read here by hand (SageMaker's Record: field
# 1 features, 2 label, maps of string to Value; Value 2 Float32Tensor, 3
# Float64Tensor, 7 Int32Tensor; a tensor 1 values, 2 keys, 3 shape), so that
# the test needs no protobuf package.
#   rio.py body OUT SPEC       SPEC: a JSON list of records {"v": values,
#                              "k": keys, "s": shape, "t": f32|f64|i32, "f":
#                              the feature's name}; a string is raw bytes (hex)
#   rio.py csv OUT CSV MODE    the CSV's rows: MODE dense (float64, NaN for an
#                              empty field) or sparse (float32, shape given)
#   rio.py frames FILE         prints each frame's label map as JSON per line
cat >"$T/rio.py" <<'PY'
import json, struct, sys
def varint(n):
    n &= (1 << 64) - 1
    out = b""
    while n >= 0x80:
        out += bytes([n & 0x7f | 0x80])
        n >>= 7
    return out + bytes([n])
def field(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data
def tensor(r):
    t, v = r.get("t", "f32"), r.get("v", [])
    vals = b"".join(varint(x) for x in v) if t == "i32" else \
        struct.pack("<%d%s" % (len(v), "f" if t == "f32" else "d"), *v)
    body = (field(1, vals) if v else b"") + \
        (field(2, b"".join(varint(k) for k in r["k"])) if r.get("k") else b"") + \
        (field(3, b"".join(varint(d) for d in r["s"])) if r.get("s") else b"")
    return field({"f32": 2, "f64": 3, "i32": 7}[t], body)
def frame(payload):
    return struct.pack("<II", 0xced7230a, len(payload)) + payload + b"\0" * (-len(payload) % 4)
def body(spec):
    out = b""
    for r in spec:
        if isinstance(r, str):
            out += bytes.fromhex(r)
        else:
            out += frame(field(1, field(1, r.get("f", "values").encode()) + field(2, tensor(r))))
    return out
def from_csv(path, mode):
    spec = []
    for line in open(path).read().splitlines():
        fields = line.split(",")
        if mode == "dense":
            spec.append({"t": "f64", "v": [float(f) if f else float("nan") for f in fields]})
        else:
            keys = [i for i, f in enumerate(fields) if f] or [0]
            vals = [float(fields[i]) if fields[i] else float("nan") for i in keys]
            spec.append({"k": keys, "v": vals, "s": [len(fields)]})
    return spec
def fields(b):
    i, out = 0, []
    while i < len(b):
        tag, i = read_varint(b, i)
        if tag & 7 == 2:
            n, i = read_varint(b, i)
            out.append((tag >> 3, b[i:i + n]))
            i += n
        elif tag & 7 == 0:
            v, i = read_varint(b, i)
            out.append((tag >> 3, v))
        else:
            sys.exit("wire type %d" % (tag & 7))
    return out
def read_varint(b, i):
    v = shift = 0
    while True:
        v |= (b[i] & 0x7f) << shift
        shift += 7
        i += 1
        if not b[i - 1] & 0x80:
            return v, i
def frames(data):
    i, out = 0, []
    while i < len(data):
        magic, n = struct.unpack_from("<II", data, i)
        if magic != 0xced7230a:
            sys.exit("bad magic at byte %d" % i)
        out.append(data[i + 8:i + 8 + n])
        i += 8 + n + (-n % 4)
    return out
def labels(payload):
    got = {}
    for f, entry in fields(payload):
        if f == 2:
            e = dict(fields(entry))
            t = dict(fields(dict(fields(e[2]))[2]))
            v = t.get(1, b"")
            got[e[1].decode()] = list(struct.unpack("<%df" % (len(v) // 4), v))
    return got
if __name__ == "__main__":
    if sys.argv[1] == "body":
        open(sys.argv[2], "wb").write(body(json.loads(sys.argv[3])))
    elif sys.argv[1] == "csv":
        open(sys.argv[2], "wb").write(body(from_csv(sys.argv[3], sys.argv[4])))
    else:
        for p in frames(open(sys.argv[2], "rb").read()):
            print(json.dumps(labels(p)))
PY
rio() { "$PY" "$T/rio.py" "$@"; }

# application/x-npy, written and read here by hand as numpy.save lays it out
# (magic, version 1.0, u16 header length, the dict padded with spaces to a
# multiple of 64 bytes after room for shape[0] to grow to 21 digits), so that
# the test needs no numpy.
#   npy.py csv OUT CSV TYPE [1d]   the CSV's rows (NaN for an empty field) as
#                                  <f4, <f8, <i4 or <i8; 1d: the first row, 1-D
#   npy.py read FILE ROWS COLS     checks an answer's bytes (header as
#                                  numpy.save writes it for float64 (ROWS,
#                                  COLS), then exactly the data) and prints
#                                  its rows as CSV
cat >"$T/npy.py" <<'PY'
import struct, sys
def header(descr, shape):
    dims = "(%d,)" % shape if isinstance(shape, int) else "(%s)" % ", ".join(map(str, shape))
    text = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, dims)
    first = shape if isinstance(shape, int) else shape[0]
    text += " " * (21 - len(str(first)))
    pad = 64 - (10 + len(text) + 1) % 64
    text += " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()
def from_csv(path, kind, one_d):
    rows = [[float(f) if f else float("nan") for f in l.split(",")]
            for l in open(path).read().splitlines()]
    code = {"f4": "f", "f8": "d", "i4": "i", "i8": "q"}[kind]
    if kind[0] == "i":
        rows = [[int(v) for v in r] for r in rows]
    if one_d:
        rows = rows[:1]
    shape = len(rows[0]) if one_d else (len(rows), len(rows[0]))
    data = b"".join(struct.pack("<%d%s" % (len(r), code), *r) for r in rows)
    return header("<" + kind, shape) + data
def read(data, rows=None, cols=None):
    end = data.index(b"\n") + 1 if b"\n" in data else sys.exit("no header")
    text = data[10:end].decode()
    n = int(text.split("'shape': (")[1].split(",")[0])
    k = (len(data) - end) // 8 // n if n else 0
    if rows is not None and (n, k) != (rows, cols):
        sys.exit("shape (%d, %d), expected (%d, %d)" % (n, k, rows, cols))
    if data[:end] != header("<f8", (n, k)):
        sys.exit("header %r is not numpy.save's" % data[:end])
    if len(data) != end + 8 * n * k:
        sys.exit("%d bytes of data for shape (%d, %d)" % (len(data) - end, n, k))
    vals = struct.unpack("<%dd" % (n * k), data[end:])
    return [list(vals[i * k:(i + 1) * k]) for i in range(n)]
if __name__ == "__main__":
    if sys.argv[1] == "csv":
        body = from_csv(sys.argv[3], sys.argv[4], len(sys.argv) > 5)
        open(sys.argv[2], "wb").write(body)
    else:
        for r in read(open(sys.argv[2], "rb").read(), int(sys.argv[3]), int(sys.argv[4])):
            print(",".join(repr(v) for v in r))
PY
npy() { "$PY" "$T/npy.py" "$@"; }
# post_binary: post, for a binary answer (bash warns of the NUL bytes it drops from $BODY).
post_binary() { post "$@" 2>/dev/null; }
for data in cancer diabetes iris cancer200 iris150 synth200; do
	rio csv "$T/$data.dense.rio" "$FIX/$data.csv" dense
	rio csv "$T/$data.sparse.rio" "$FIX/$data.csv" sparse
	npy csv "$T/$data.f4.npy" "$FIX/$data.csv" f4
	npy csv "$T/$data.f8.npy" "$FIX/$data.csv" f8
done

# compare NAME EXPECTED ACTUAL FORMAT REPEAT: ACTUAL (csv, json, jsonl, rio or npy, as
# answered) holds EXPECTED's rows REPEAT times, every value within 1e-6
# relative. Prints "<values> <exact>" on success, else the first difference.
compare() {
	"$PY" - "$2" "$3" "$4" "$5" "$T" <<'EOF'
import json, math, struct, sys
exp_path, act_path, fmt, repeat = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
expected = [[float(v) for v in line.split(",")] for line in open(exp_path).read().splitlines()] * repeat
if fmt == "rio":
    sys.path.insert(0, sys.argv[5])
    import rio
    text = ""
    actual = [rio.labels(p)["score"] for p in rio.frames(open(act_path, "rb").read())]
elif fmt == "npy":
    sys.path.insert(0, sys.argv[5])
    import npy
    text = ""
    actual = npy.read(open(act_path, "rb").read(), len(expected), len(expected[0]))
else:
    text = open(act_path).read()
def score(v):
    return v if isinstance(v, list) else [v]
if fmt in ("rio", "npy"):
    pass
elif fmt == "csv":
    if not text.endswith("\n"):
        sys.exit("the answer does not end in a newline")
    actual = [[float(v) for v in line.split(",")] for line in text.splitlines()]
elif fmt == "json":
    doc = json.loads(text)
    actual = [score(p["score"]) for p in doc["predictions"]]
else:
    if not text.endswith("\n"):
        sys.exit("the answer does not end in a newline")
    actual = [score(json.loads(line)["score"]) for line in text.splitlines()]
if len(actual) != len(expected):
    sys.exit("%d records answered, %d expected" % (len(actual), len(expected)))
f32 = lambda v: struct.unpack("f", struct.pack("f", v))[0]
values = exact = 0
for r, (a, e) in enumerate(zip(actual, expected)):
    if len(a) != len(e):
        sys.exit("record %d: %d values, expected %d" % (r + 1, len(a), len(e)))
    for x, y in zip(a, e):
        values += 1
        exact += f32(x) == y
        if not abs(x - y) <= 1e-6 * abs(y):
            sys.exit("record %d: %r, expected %r (XGBoost)" % (r + 1, x, y))
print(values, exact)
EOF
}

# check_answer NAME EXPECTED FORMAT [REPEAT]: the last answer was 200 and
# compare passes.
check_answer() {
	local out counts
	if [[ $STATUS != 200 ]]; then
		not_ok "$1" "status $STATUS [${BODY:0:300}]"
		return
	fi
	if out=$(compare "$1" "$2" "$T/body" "$3" "${4:-1}" 2>&1); then
		read -r -a counts <<<"$out"
		TOTAL_VALUES=$((TOTAL_VALUES + counts[0]))
		TOTAL_EXACT=$((TOTAL_EXACT + counts[1]))
		ok "$1"
	else
		not_ok "$1" "$(tail -n 1 <<<"$out")"
	fi
}

# model_dir FILE: a fresh model directory holding FILE as xgboost-model.
model_dir() {
	local dir
	dir=$(mktemp -d "$T/model.XXXXXX")
	cp "$1" "$dir/xgboost-model"
	echo "$dir"
}

# load_fails NAME DIR REGEX: the server exits 1 at start with stderr
# matching REGEX (the file and the reason), and no sanitizer report.
load_fails() {
	local name=$1 dir=$2 re=$3 rc log=$T/load.log
	timeout 20 "$SMSERVE" --port "$(free_port)" --model-dir "$dir" >"$log" 2>&1
	rc=$?
	if [[ $rc == 1 ]] && grep -qE -- "$re" "$log"; then
		ok "$name"
	else
		not_ok "$name" "exit $rc, log: $(tail -n 2 "$log" | tr '\n' ' ' | head -c 300)"
	fi
	check_sanitizer_log "$name" "$log"
}

# Which input set each model reads.
data_of() {
	case $1 in
	deep6_softprob) echo iris150 ;;
	deep10_*) echo synth200 ;;
	deep*) echo cancer200 ;;
	multi_* | dart_multi_* | forest_*) echo iris ;;
	reg_logistic | binary_* | dart_binary_* | early_*) echo cancer ;;
	*) echo diabetes ;;
	esac
}

# ---- 1. every model, format, request and answer ---------------------------

MODELS=(deep6_binary deep10_binary deep6_softprob binary_logistic reg_logistic binary_logitraw reg_squarederror count_poisson reg_tweedie
	reg_gamma rank_pairwise multi_softprob multi_softmax dart_binary_logistic dart_multi_softprob
	forest_softprob early_stopping binary_logistic_saturated reg_squaredlogerror reg_pseudohubererror
	reg_absoluteerror binary_hinge rank_ndcg rank_map survival_cox survival_aft)

# serve_and_check LABEL MODEL-FILE EXPECTED DATA: all eight request formats,
# answered in each of the five answer formats.
serve_and_check() {
	local label=$1 file=$2 exp=$3 data=$4
	if ! start_server "$label" --model-dir "$(model_dir "$file")" --workers 1 --no-access-log; then
		not_ok "$label: starts" "$(tail -n 2 "$SERVER_LOG")"
		return
	fi
	post "$FIX/$data.csv" text/csv text/csv
	check_answer "$label: text/csv -> text/csv" "$exp" csv
	post "$FIX/$data.libsvm" text/libsvm application/json
	check_answer "$label: text/libsvm -> application/json" "$exp" json
	post "$FIX/$data.json" application/json application/jsonlines
	check_answer "$label: application/json -> application/jsonlines" "$exp" jsonl
	post "$FIX/$data.jsonl" application/jsonlines -
	check_answer "$label: application/jsonlines -> text/csv (default)" "$exp" csv
	post_binary "$T/$data.dense.rio" application/x-recordio-protobuf application/x-recordio-protobuf
	check_answer "$label: recordio-protobuf, dense float64 -> recordio-protobuf" "$exp" rio
	post "$T/$data.sparse.rio" recordio-protobuf text/csv
	check_answer "$label: recordio-protobuf, sparse float32 -> text/csv" "$exp" csv
	post_binary "$T/$data.f4.npy" application/x-npy application/x-npy
	check_answer "$label: application/x-npy, float32 -> application/x-npy" "$exp" npy
	post_binary "$T/$data.f8.npy" application/x-npy application/json
	check_answer "$label: application/x-npy, float64 -> application/json" "$exp" json
	stop_server "$label"
}

for model in "${MODELS[@]}"; do
	for fmt in json ubj bin; do
		serve_and_check "$model.$fmt" "$FIX/$model.$fmt" "$FIX/$model.expected" "$(data_of "$model")"
	done
done
for model in count_poisson dart_multi_softprob early_stopping; do # as XGBoost 0.x wrote them: no "binf"
	tail -c +5 "$FIX/$model.bin" >"$T/$model.bare"
	serve_and_check "$model.bin without binf" "$T/$model.bare" "$FIX/$model.expected" "$(data_of "$model")"
done
for model in early_stopping multi_softprob dart_binary_logistic; do # pickled Boosters
	serve_and_check "$model.pkl" "$FIX/$model.pkl" "$FIX/$model.expected" "$(data_of "$model")"
done
for model in binary_logistic multi_softprob; do # as XGBoost 3.1 writes them
	serve_and_check "${model}_v3.json" "$FIX/${model}_v3.json" "$FIX/$model.expected" "$(data_of "$model")"
done

# The format is read from the bytes: a JSON file named like a binary one and
# the other way round load all the same (the .json above was xgboost-model).
first=$(head -c 4 "$FIX/binary_logistic.bin")
expect "the legacy binary format starts with binf" binf "$first"

# ---- 2. a SageMaker model.tar.gz, and a 1 MB batch --------------------------

mkdir -p "$T/artifact" "$T/opt_ml_model"
cp "$FIX/multi_softprob.bin" "$T/artifact/xgboost-model"
tar -C "$T/artifact" -czf "$T/model.tar.gz" xgboost-model
tar -C "$T/opt_ml_model" -xzf "$T/model.tar.gz"
if start_server tarball --model-dir "$T/opt_ml_model" --no-access-log; then
	post "$FIX/iris.csv" text/csv
	check_answer "model.tar.gz as SageMaker unpacks it: text/csv" "$FIX/multi_softprob.expected" csv
	stop_server tarball
fi

# A directory whose only file has another name is served too.
mkdir -p "$T/only"
cp "$FIX/reg_gamma.ubj" "$T/only/model.ubj"
if start_server only-file --model-dir "$T/only" --no-access-log; then
	post "$FIX/diabetes.csv" text/csv
	check_answer "the directory's only file, any name" "$FIX/reg_gamma.expected" csv
	stop_server only-file
fi

# 1 MB of CSV (the cancer rows, repeated) in one request, in order.
reps=$((1048576 / $(wc -c <"$FIX/cancer.csv") + 1))
for ((i = 0; i < reps; i++)); do cat "$FIX/cancer.csv"; done >"$T/batch.csv"
if start_server batch --model-dir "$(model_dir "$FIX/dart_binary_logistic.bin")" --no-access-log; then
	post "$T/batch.csv" text/csv text/csv
	check_answer "1 MB CSV batch ($((reps * 40)) records): every line in order" \
		"$FIX/dart_binary_logistic.expected" csv "$reps"
	post "$T/batch.csv" text/csv application/json
	check_answer "1 MB CSV batch as JSON" "$FIX/dart_binary_logistic.expected" json "$reps"
	stop_server batch
fi

# ---- 3. loading ------------------------------------------------------------

# Cut each format at a few places: the server exits 1 and names the file.
for fmt in json ubj bin; do
	src=$FIX/forest_softprob.$fmt
	size=$(wc -c <"$src")
	for cut in 3 4 100 $((size / 3)) $((size / 2)) $((size - 2)); do
		dir=$(mktemp -d "$T/cut.XXXXXX")
		head -c "$cut" "$src" >"$dir/xgboost-model"
		load_fails "truncated $fmt ($cut of $size bytes): exit 1, names the file" "$dir" \
			"$dir/xgboost-model: "
	done
done
# Flip bytes inside the trees: a clean error or a model, never a crash.
for fmt in json ubj bin; do
	src=$FIX/binary_logistic.$fmt
	size=$(wc -c <"$src")
	for at in $((size / 4)) $((size / 2)) $((size * 3 / 4)); do
		dir=$(mktemp -d "$T/flip.XXXXXX")
		{ head -c "$at" "$src"; printf '\377\377\377\377'; tail -c +$((at + 5)) "$src"; } >"$dir/xgboost-model"
		if start_server "flip-$fmt-$at" --model-dir "$dir" --no-access-log >/dev/null; then
			stop_server "flip-$fmt-$at"
			ok "corrupted $fmt at byte $at: loads"
		else
			grep -q "$dir/xgboost-model: " "$SERVER_LOG" && ok "corrupted $fmt at byte $at: refused with the file named" ||
				not_ok "corrupted $fmt at byte $at" "$(tail -n 2 "$SERVER_LOG")"
			check_sanitizer_log "flip-$fmt-$at" "$SERVER_LOG"
		fi
	done
done

dir=$(mktemp -d "$T/bad.XXXXXX"); : >"$dir/xgboost-model"
load_fails "empty file" "$dir" "xgboost-model: expected an XGBoost model .*got an empty file"
dir=$(mktemp -d "$T/bad.XXXXXX"); printf '\200\004\225 pickled Booster' >"$dir/xgboost-model"
load_fails "a pickle without a model: says how to save one" "$dir" "expected a pickled XGBoost Booster.*save_model"
# Typed arrays of null elements ($Z) take no bytes per element: 30,000 of
# them, each counting the rest of the file, once took half a minute to refuse.
dir=$(mktemp -d "$T/bad.XXXXXX")
"$PY" -c '
import struct, sys
k = 30000
out = bytearray(b"{i\x01x[$[#L" + struct.pack(">q", k))
for i in range(k):
    out += b"$Z#L" + struct.pack(">q", (k - i - 1) * 11 + 1)
sys.stdout.buffer.write(out + b"}")' >"$dir/xgboost-model"
load_fails "UBJSON arrays of zero-byte elements: refused" "$dir" "expected a type after .\\$."
dir=$(mktemp -d "$T/bad.XXXXXX"); echo 'hello' >"$dir/xgboost-model"
load_fails "text that is no model" "$dir" "xgboost-model: expected an XGBoost model"
load_fails "a linear booster" "$(model_dir "$FIX/gblinear.json")" "expected a tree booster .*gblinear"
load_fails "the default build's linear model: says to use the default build" models/iris \
	"linear-model.txt: expected an XGBoost model, got a linear model .*make MODEL=model.c"
load_fails "no model directory" "$T/does-not-exist" "does-not-exist: expected a model directory"
load_fails "an empty model directory" "$(mktemp -d "$T/empty.XXXXXX")" "found none"
# Several files and no xgboost-model: an ensemble, averaged (the same model
# twice averages to its own predictions exactly); one that is no model stops it.
dir=$(mktemp -d "$T/two.XXXXXX"); cp "$FIX/reg_gamma.json" "$dir/a.json"; cp "$FIX/reg_gamma.ubj" "$dir/b.ubj"
if start_server ensemble --model-dir "$dir" --no-access-log; then
	post "$FIX/diabetes.csv" text/csv text/csv
	check_answer "two model files, no xgboost-model: an ensemble, averaged" "$FIX/reg_gamma.expected" csv
	stop_server ensemble
fi
echo hello >"$dir/c.txt"
load_fails "an ensemble file that is no model: named" "$dir" "c.txt: expected an XGBoost model"
dir=$(model_dir "$FIX/binary_logistic.json")
sed -i 's/"binary:logistic"/"reg:quantileerror"/' "$dir/xgboost-model"
load_fails "an objective it does not serve: named, with the list" "$dir" \
	"expected one of the objectives .*got \"reg:quantileerror\""
dir=$(model_dir "$FIX/binary_logistic.json")
sed -i 's/\("learner_model_param":{[^}]*"num_feature":"\)30"/\13"/' "$dir/xgboost-model"
load_fails "a split on a feature past num_feature" "$dir" "expected split features below num_feature"
dir=$(model_dir "$FIX/binary_logistic.json")
sed -i 's/"left_children":\[1,/"left_children":[0,/' "$dir/xgboost-model"
load_fails "a tree with a cycle" "$dir" "expected two new child nodes"
dir=$(model_dir "$FIX/binary_logistic.json")
sed -i 's/"base_score":"[^"]*"/"base_score":"1.5E0"/' "$dir/xgboost-model"
load_fails "base_score outside (0, 1) for a logistic objective" "$dir" "expected base_score between 0 and 1"
SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=text/html load_fails "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT it cannot produce" \
	"$(model_dir "$FIX/reg_gamma.json")" "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT: expected one of"

# A prediction as SageMaker's container writes it: Python's str() of the
# float64 of the float32, so the float32 117760704 (the nearest to
# 117760700) is "117760704.0" (a tree of zero leaves on base_score).
dir=$(mktemp -d "$T/tie.XXXXXX")
"$PY" - "$FIX/reg_squarederror.json" "$dir/xgboost-model" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["learner"]["learner_model_param"]["base_score"] = "1.177607E8"
for t in d["learner"]["gradient_booster"]["model"]["trees"]:
    t["split_conditions"] = [0.0] * len(t["split_conditions"])
    t["base_weights"] = [0.0] * len(t["base_weights"])
json.dump(d, open(sys.argv[2], "w"))
PY
if start_server tie --model-dir "$dir" --workers 1 --no-access-log; then
	send "$(printf '0,%.0s' $(seq 9))0" text/csv text/csv
	expect "a prediction is written as Python writes its float64: 117760704.0" "200 117760704.0" "$STATUS $BODY"
	stop_server tie
fi

# ---- 4. requests -----------------------------------------------------------

start_server requests --model-dir "$(model_dir "$FIX/binary_logistic.bin")" --no-access-log || exit 1
row=$(head -n 1 "$FIX/cancer.csv")
want=$(head -n 1 "$FIX/binary_logistic.expected")

# As SageMaker's XGBoost container reads a request (docs/xgboost.md): a body
# it cannot read is 415, more features than the model 400, then Accept 406.
send "$row" text/csv -
expect "no Accept: text/csv, as SageMaker's XGBoost" "200 text/csv; charset=utf-8" "$STATUS $CTYPE"
send "$row" - -
expect "no Content-Type: read as libsvm (a CSV row has no index:value)" 415 "$STATUS"
send "0 1:0.5 2:1.5" - -
expect "no Content-Type: libsvm" 200 "$STATUS"
send "$row" csv '*/*'
expect "Content-Type csv, Accept */*: text/csv" "200 text/csv; charset=utf-8" "$STATUS $CTYPE"
send "$row" 'text/csv; charset=utf-8' 'application/json;q=0.5, text/csv'
expect "Accept: the type before the first ';', as cgi.parse_header reads it" "application/json" "$CTYPE"
send "$row" text/csv 'application/json, text/csv'
expect "Accept: a list is 406, as the container answers it" 406 "$STATUS"
send "$row" text/csv 'text/*'
expect "Accept: a wildcard other than */* is 406" 406 "$STATUS"
send "$row\r\n$row\r\n" text/csv text/csv
expect "CRLF lines: two records" 2 "$(grep -c . "$T/body")"
send "\n\n$row\n$row\n\n" text/csv text/csv
expect "blank lines around the records are stripped" "200 2" "$STATUS $(grep -c . "$T/body")"
send "$(tr , ';' <<<"$row")\n$(tr , ';' <<<"$row")" text/csv text/csv
expect "the delimiter is sniffed from the first line: ;" "200 2" "$STATUS $(grep -c . "$T/body")"
send "${row%%,*}" text/csv text/csv
expect "fewer fields than features: the rest are missing (as XGBoost)" 200 "$STATUS"
send ",,,\nnan,NaN,-nan," text/csv text/csv
expect "empty and nan fields are missing values" "200 2" "$STATUS $(grep -c . "$T/body")"
send "1,2,inf" text/csv
expect_error "CSV: inf is refused as XGBoost refuses it" 415 "line 1, field 3: expected a finite number, got 'inf'"
send "$row\n-Infinity" text/csv
expect_error "CSV: -Infinity is refused" 415 "line 2, field 1: expected a finite number, got '-Infinity'"
send "1,3.5e38" text/csv
expect_error "CSV: a number past float32's range is refused" 415 "line 1, field 2: expected a finite number"
send "1,3.4e38" text/csv text/csv
expect "CSV: FLT_MAX's neighbourhood is finite" 200 "$STATUS"
send "0 0:1 4:1e400" text/libsvm
expect_error "libsvm: a number past double's range is refused" 415 "line 1: expected index:value"
send '{"instances": [[1, 2, 1e39]]}' application/json
expect_error "JSON: a number past float32's range is refused" 400 "record 1, feature 3: expected a finite number"
send '{"features": {"keys": [0, 5], "values": [1, -1e300]}}' application/jsonlines
expect_error "JSON Lines, sparse: an infinite value is refused" 400 "record 1, value 2: expected a finite number"
send "$row,7\n$row,7" text/csv
expect_error "more fields than features: 400" 400 "Feature shape mismatch, expected: 30, got 31"
send "$row\n1,2,abc,4" text/csv text/html
expect_error "a bad field: 415 naming line and field, before Accept is looked at" 415 "line 2, field 3: expected a finite number, got 'abc'"
send "$row\n\n$row" text/csv
expect_error "a blank line between records is a ragged row" 415 "line 2: expected 30 fields, as the first line, got 1"
send "\n \t \n" text/csv
expect_error "only blank lines: 415" 415 "only whitespace"
full=${row//,,/,0.5,}
send "$full\n$full" text/csv application/json
plain=$BODY
send "$(sed 's/,/ ,\\t/g; s/^/ /; s/$/\\t /' <<<"$full")\n$full" text/csv application/json
expect "CSV: spaces and tabs around values are ignored" "200 $plain" "$STATUS $BODY"
send "1, ,3" text/csv
expect_error "CSV: a field of only spaces is no number (Python's float refuses it)" 415 "line 1, field 2"
send "1,2 3,4" text/csv
expect_error "CSV: a space inside a field is not a separator" 415 "line 1, field 2: expected a finite number, got '2 3'"
send "\xff,1" text/csv
expect_error "CSV: not UTF-8" 415 "expected UTF-8"
send "" text/csv
expect "an empty body: 204 and no body, as SageMaker's XGBoost container answers" "204 0" "$STATUS $(wc -c <"$T/body")"
send "" application/x-unknown
expect "an empty body of any type: 204, as the container answers before it reads the type" 204 "$STATUS"
send "1 0:1.5 3:2\n0 1:x" text/libsvm
expect_error "libsvm: a bad value" 415 "line 2: expected index:value with a feature index and a finite number, got '1:x'"
send "1\t0:1.5" text/libsvm
expect_error "libsvm: tabs do not separate" 415 "got '1.0:1.5'"
send "1 0:1.5\n \t \n1 0:2" text/libsvm text/csv
expect "libsvm: a line with no pair is a record of missing values" "200 3" "$STATUS $(grep -c . "$T/body")"
send "1 0:1.5 30:2" text/libsvm
expect_error "libsvm: an index past the features" 400 "Feature shape mismatch, expected: 30, got 31"
send "1 1:0.5 30:2" text/libsvm text/csv
expect "libsvm: 1-based indexes (none is 0) are shifted down by one" 200 "$STATUS"
send "1 4:1 4:2" text/x-libsvm text/csv
a=$BODY
send "1 4:3" text/x-libsvm text/csv
expect "libsvm: a feature given twice is summed, as scipy's sparse matrix sums it" "$a" "$BODY"
send "0 qid:3 1:0.5" text/libsvm
expect_error "libsvm: qid is not an index" 415 "got 'qid:3'"
send '{"instances": [[1, 2], {"features": [1, "x"]}]}' application/json
expect_error "JSON: a string feature" 400 "record 2, field 2: expected a number, got a string"
send '{"instances": [{"features": {"keys": [0, 0], "values": [1, 2]}}]}' application/json
expect_error "JSON: a sparse key given twice" 400 "record 1, key 2: feature 0 given twice"
send '{"instances": [{"features": {"keys": [0, 99999], "values": [1e39, 1]}}]}' application/json
expect_error "JSON: sparse keys are checked before their values" 400 \
	"record 1, key 2: expected a whole number from 0 to 29, got 99999"
send '{"instances": [[1, 2]' application/json
expect_error "JSON: malformed" 400 "malformed JSON at line 1, column 22"
send '[1, null, 3]\n{"features": {"keys": [29], "values": [1.5]}}\n' application/jsonlines application/json
expect "JSON Lines: null and sparse keys are missing values" 200 "$STATUS"
send "$row" text/plain
expect_error "unsupported Content-Type: 415 with the list" 415 "supported: text/csv, text/libsvm, text/x-libsvm, application/x-recordio-protobuf, application/json, application/jsonlines, application/x-npy\""
send "$row" text/csv text/html
expect_error "unsupported Accept: 406 with the list" 406 "supported: text/csv, application/json, application/jsonlines, application/x-recordio-protobuf, application/x-npy\""
printf '%s\n%s' "$row" "$row" >"$T/req"
post_binary "$T/req" text/csv application/x-recordio-protobuf
expect "recordio-protobuf answers in real time: a frame per record, label 'score' (the container: 500)" \
	"200 application/x-recordio-protobuf 2" "$STATUS $CTYPE $(rio frames "$T/body" | grep -c '^{"score": \[0\.')"

# recordio-protobuf, as the container reads it (docs/xgboost.md).
# rio_send NAME SPEC [ACCEPT]: posts the body rio.py writes for SPEC.
rio_send() {
	rio body "$T/req.rio" "$1"
	post "$T/req.rio" application/x-recordio-protobuf "${2:-text/csv}"
}
zeros='[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]'
send "${zeros:1:59}" text/csv text/csv
csv_zeros=$BODY
send "1 0:1" text/libsvm text/csv
csv_missing=$BODY
rio_send "[{\"v\": $zeros}]"
expect "recordio: a dense row's zeros are values" "200 $csv_zeros" "$STATUS $BODY"
rio_send "[{\"v\": $zeros, \"t\": \"i32\"}, {\"v\": [1], \"k\": [0], \"s\": [30]}]"
expect "recordio: dense and sparse rows mixed: the dense row's zeros are missing, as scipy makes them" \
	"200 $csv_missing" "$STATUS $(head -n 1 <<<"$BODY")"
rio_send '[{"v": [5, 1], "k": [0, 0], "s": [30]}]'
expect "recordio: a key repeated in a sparse row: the last counts (XGBoost fills the row in order)" \
	"200 $csv_missing" "$STATUS $BODY"
rio_send '[{"v": [1, 2], "k": [0, 3]}, {"v": [1], "k": [3]}]'
expect "recordio: sparse rows without a shape are as wide as their largest key + 1" 200 "$STATUS"
rio_send '[{"v": [1, 2], "k": [0, 3]}, {"v": [1], "k": [2]}]'
expect_error "recordio: rows of different widths are 415 naming the record, as the container stacks them" \
	415 "a row of 3 features after rows of 4 \\(the records are stacked into one matrix\\) at byte 36 \\(record 2\\)"
rio_send '[{"v": [1, 2, 3]}, {"v": [1, 2]}]'
expect_error "recordio: dense rows of different lengths are 415" 415 "a row of 2 features after rows of 3"
rio_send '[{"v": [1, 2, 3], "t": "f64"}]'
expect "recordio: fewer features than the model: the rest missing" 200 "$STATUS"
rio_send '[{"v": [1], "k": [0], "s": [31]}]'
expect_error "recordio: a width past the model's features is 400" 400 "Feature shape mismatch, expected: 30, got 31"
rio_send '[{"v": [1], "k": [31], "s": [30]}]'
expect_error "recordio: a key outside the shape is 415 naming the byte" 415 "key 31 outside the shape's 30 values at byte 30 \\(record 1\\)"
rio_send '[{"v": [1], "k": [0], "s": [30]}, {"s": [30]}]'
expect_error "recordio: an empty sparse row is 415, as the container answers it" 415 "dense tensor has 0 values, its shape 30"
rio_send '[{"v": [1, 1e39], "t": "f64"}]'
expect_error "recordio: a value float32 rounds to infinity is 415" 415 "value 1e\\+39 is infinite as float32"
rio_send '[{"v": [1, 2]}, {"v": [1, 2], "f": "other"}]'
expect_error "recordio: a record with no 'values' feature is 415 (the container skips it)" 415 "no 'values' feature at byte 32 \\(record 2\\)"
rio_send '[{"v": [1, 2]}, "0a0b0c"]'
expect "recordio: fewer than 8 bytes after the last record are ignored, as the container ignores them" "200 1" \
	"$STATUS $(grep -c . "$T/body")"
rio_send '[{"v": [1, 2]}, "0a0b0c0d0e0f1011"]'
expect_error "recordio: a bad magic is 415 naming the byte" 415 "bad RecordIO magic 0x0d0c0b0a \\(expected 0xced7230a\\) at byte 32 \\(record 2\\)"
head -c 30 "$FIX/golden/requests/rio_dense_f32" >"$T/req.rio"
post "$T/req.rio" application/x-recordio-protobuf text/html
expect_error "recordio: a truncated body is 415 (before Accept is looked at)" 415 "truncated record: length [0-9]+, 22 bytes follow at byte 4 \\(record 1\\)"

# application/x-npy (smserve's addition: the container answers 415), read as
# CSV is: the same records give the same answers.
# npy_like_csv NAME NPY-FILE CSV: the NPY body's answer is the CSV body's.
npy_like_csv() {
	local csv_answer
	send "$3" text/csv application/json
	csv_answer="$STATUS $BODY"
	post "$2" application/x-npy application/json
	expect "$1" "$csv_answer" "$STATUS $BODY"
}
for v in i1_1d i2_1d u4_1d u8_1d b1_1d i4_2d i8_2d i8_min u1_2d v2_f8 v3_f4 hand_order hand_tabs; do
	# tests/codecs/NAME.expect: a line naming the type and shape, then the values a row a line
	npy_like_csv "NPY in: tests/codecs/$v.npy ($(head -n 1 "tests/codecs/$v.expect")) answers as its records in CSV" \
		"tests/codecs/$v.npy" "$(tail -n +2 "tests/codecs/$v.expect" | tr ' ' ,)"
done
head -n 5 "$FIX/cancer.csv" >"$T/five.csv"
npy csv "$T/five.f4.npy" "$T/five.csv" f4
npy_like_csv "NPY in: float32 2-D, missing values as NaN, answers as CSV" "$T/five.f4.npy" "$(cat "$T/five.csv")"
npy csv "$T/one.f8.npy" "$T/five.csv" f8 1d
npy_like_csv "NPY in: float64 1-D is one record" "$T/one.f8.npy" "$row"
head -n 2 "$FIX/cancer.csv" | "$PY" -c 'import sys
for l in sys.stdin: print(",".join(str(round(float(f or 0) * 10)) for f in l.strip().split(",")))' >"$T/ints.csv"
npy csv "$T/ints.i4.npy" "$T/ints.csv" i4
npy_like_csv "NPY in: int32 2-D answers as CSV" "$T/ints.i4.npy" "$(cat "$T/ints.csv")"
npy csv "$T/ints.i8.npy" "$T/ints.csv" i8 1d
npy_like_csv "NPY in: int64 1-D answers as CSV" "$T/ints.i8.npy" "$(head -n 1 "$T/ints.csv")"
printf '1.5,,3\n4,5,\n' >"$T/short.csv"
npy csv "$T/short.npy" "$T/short.csv" f8
npy_like_csv "NPY in: fewer columns than features: the rest missing" "$T/short.npy" "$(cat "$T/short.csv")"
printf '%s,7\n' "$full" >"$T/wide.csv"
npy csv "$T/wide.npy" "$T/wide.csv" f4
post "$T/wide.npy" application/x-npy
expect_error "NPY in: more columns than features is 400" 400 "Feature shape mismatch, expected: 30, got 31"
printf '1,2\n3,1e39\n' >"$T/inf.csv"
npy csv "$T/inf.npy" "$T/inf.csv" f8
post "$T/inf.npy" application/x-npy text/html
expect_error "NPY in: a value float32 rounds to infinity is 415 naming the byte (before Accept)" 415 \
	"npy: value 1e\\+39 \\(record 2, column 2\\) is infinite as float32 \\(XGBoost refuses infinity\\) at byte 152"
post tests/codecs/bad_truncated.npy application/x-npy
expect_error "NPY in: truncated data is 415 with lib/npy.h's message naming the byte" 415 \
	"npy: truncated data: the shape needs 16 bytes, 15 follow at byte 70"
post tests/codecs/bad_fortran.npy application/x-npy
expect_error "NPY in: Fortran order is 415" 415 "npy: fortran_order True is not supported \\(C order only\\) at byte 44"
post tests/codecs/bad_big_endian.npy application/x-npy
expect_error "NPY in: big-endian is 415" 415 "npy: big-endian dtype '>f8' is not supported at byte 20"
post tests/codecs/bad_magic.npy application/x-npy
expect_error "NPY in: no magic is 415" 415 "npy: not an NPY file"
post tests/codecs/w_f8_empty.npy application/x-npy
expect_error "NPY in: no records (shape (0, 4)) is 415" 415 "npy: expected at least one record, got shape \\(0, 4\\) at byte 128"
post_binary "$T/five.csv" text/csv application/x-npy
expect "NPY out: Content-Type application/x-npy, a 128-byte header and 5 float64" \
	"200 application/x-npy 168" "$STATUS $CTYPE $(wc -c <"$T/body")"
expect "NPY out: the header numpy.save writes, the float64 of each JSON score" ok "$("$PY" - "$T" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import npy
got = npy.read(open(sys.argv[1] + "/body", "rb").read(), 5, 1)
print("ok" if got and all(len(r) == 1 and 0 < r[0] < 1 for r in got) else got)
PY
)"
cp "$T/body" "$T/five.out.npy"
send "$(cat "$T/five.csv")" text/csv application/json
expect "NPY out: its rows are the JSON answer's scores, exactly" ok "$("$PY" - "$T" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
import npy
got = npy.read(open(sys.argv[1] + "/five.out.npy", "rb").read())
want = [[p["score"]] for p in json.load(open(sys.argv[1] + "/body"))["predictions"]]
print("ok" if got == want else "%r, JSON %r" % (got, want))
PY
)"
send "$row" text/csv 'application/x-npy; q=1' 2>/dev/null # a binary answer
expect "NPY out: Accept with parameters" "200 application/x-npy" "$STATUS $CTYPE"
send "$row" 'text/csv; label_size=1' text/csv
expect "label_size=1 is accepted, as the container accepts it" 200 "$STATUS"
send "$row" 'text/csv; label_size=2'
expect_error "label_size other than 1: 415" 415 "label_size: expected 1"

# The answer's number is XGBoost's float32, written so that it reads back exactly.
send "$row" text/csv text/csv
got=$("$PY" -c 'import struct,sys; a=float(sys.argv[1]); b=float(sys.argv[2]); print(struct.unpack("f", struct.pack("f", a))[0] == b)' "$BODY" "$want")
expect "a prediction reads back as XGBoost's exact float32 ($BODY)" True "$got"
stop_server requests

# SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT picks the answer for Accept missing or */*.
SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=application/jsonlines start_server default-accept \
	--model-dir "$(model_dir "$FIX/multi_softprob.json")" --no-access-log || exit 1
send "5.1,3.5,1.4,0.2" text/csv -
expect_match "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=application/jsonlines: softprob scores" \
	'^\{"score": \[0\.[0-9]+, 0\.[0-9]+, 0\.[0-9]+\]\}$' "$BODY"
send "5.1,3.5,1.4,0.2" text/csv text/csv
expect_match "softprob as CSV: the class probabilities as one row" '^0\.[0-9]+,0\.[0-9]+,0\.[0-9]+$' "$BODY"
stop_server default-accept
SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=application/x-npy start_server default-npy \
	--model-dir "$(model_dir "$FIX/multi_softprob.json")" --no-access-log || exit 1
post_binary "$FIX/iris.csv" text/csv -
check_answer "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=application/x-npy: softprob scores, a row per record" \
	"$FIX/multi_softprob.expected" npy
stop_server default-npy
SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=application/x-npy SAGEMAKER_INFERENCE_OUTPUT=predicted_label \
	load_fails "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=application/x-npy with SAGEMAKER_INFERENCE_OUTPUT" \
	"$(model_dir "$FIX/reg_gamma.json")" "cannot answer SAGEMAKER_INFERENCE_OUTPUT's keys"

# ---- 5. the other layouts ----------------------------------------------------
# Batch (SAGEMAKER_BATCH=true): Python's str() of each prediction per line,
# whatever the Accept; SMSERVE_XGBOOST_CSV=one-line: the real-time CSV of the
# images before 1.2-2 (comma-joined, no newline, a softprob record as a
# Python list); SAGEMAKER_INFERENCE_OUTPUT: the keys asked for.

# layout_check NAME EXPECTED FORM: the last answer holds EXPECTED's rows in
# FORM (batch: one str() per line; one-line), every value XGBoost's float32.
layout_check() {
	expect "$1" ok "$("$PY" - "$2" "$T/body" "$3" <<'PY'
import json, struct, sys
f32 = lambda v: struct.unpack("f", struct.pack("f", v))[0]
expected = [[float(v) for v in l.split(",")] for l in open(sys.argv[1]).read().splitlines()]
text, form = open(sys.argv[2]).read(), sys.argv[3]
if form == "batch":
    if not text.endswith("\n"):
        sys.exit("no newline after the last record")
    got = [json.loads(l) for l in text.splitlines()]
    got = [g if isinstance(g, list) else [g] for g in got]
else:
    if "\n" in text:
        sys.exit("a newline in the answer")
    got = json.loads("[" + text + "]") if len(expected[0]) > 1 else [[float(v)] for v in text.split(",")]
if len(got) != len(expected):
    sys.exit("%d answers for %d records" % (len(got), len(expected)))
for i, (g, e) in enumerate(zip(got, expected)):
    if [f32(v) for v in g] != [f32(v) for v in e]:
        sys.exit("record %d: %r, expected %r" % (i + 1, g, e))
print("ok")
PY
)"
}
SAGEMAKER_BATCH=true start_server batch-softprob --model-dir "$(model_dir "$FIX/multi_softprob.json")" --no-access-log || exit 1
post "$FIX/iris.csv" text/csv application/json
layout_check "batch, softprob, Accept application/json: [p0, p1, p2] per line" "$FIX/multi_softprob.expected" batch
expect "batch: the Content-Type is still the Accept's" application/json "$CTYPE"
post "$FIX/iris.csv" text/csv application/x-recordio-protobuf
layout_check "batch, Accept recordio-protobuf: the same lines, as the container writes them" "$FIX/multi_softprob.expected" batch
post_binary "$FIX/iris.csv" text/csv application/x-npy
check_answer "batch, Accept application/x-npy: the array (str() lines are no NPY)" "$FIX/multi_softprob.expected" npy
stop_server batch-softprob
SMSERVE_XGBOOST_CSV=one-line start_server one-line --model-dir "$(model_dir "$FIX/binary_logistic.json")" --no-access-log || exit 1
post "$FIX/cancer.csv" text/csv text/csv
layout_check "one-line CSV: comma-joined predictions, no newline" "$FIX/binary_logistic.expected" one-line
stop_server one-line
SMSERVE_XGBOOST_CSV=one-line start_server one-line-softprob --model-dir "$(model_dir "$FIX/multi_softprob.json")" --no-access-log || exit 1
post "$FIX/iris.csv" text/csv text/csv
layout_check "one-line CSV, softprob: [p0, p1, p2] per record, comma-joined" "$FIX/multi_softprob.expected" one-line
stop_server one-line-softprob
SMSERVE_XGBOOST_CSV=rows load_fails "SMSERVE_XGBOOST_CSV: a value it does not know" \
	"$(model_dir "$FIX/reg_gamma.json")" "SMSERVE_XGBOOST_CSV: expected one-line or lines"

SAGEMAKER_INFERENCE_OUTPUT='predicted_label, Probabilities' start_server selected \
	--model-dir "$(model_dir "$FIX/binary_logistic.json")" --no-access-log || exit 1
post "$FIX/cancer.csv" text/csv application/jsonlines
expect "SAGEMAKER_INFERENCE_OUTPUT: JSON Lines, one object per record" ok "$("$PY" - "$FIX/binary_logistic.expected" "$T/body" <<'PY'
import json, sys
expected = [float(l) for l in open(sys.argv[1]).read().splitlines()]
got = [json.loads(l) for l in open(sys.argv[2]).read().splitlines()]
for e, g in zip(expected, got):
    if list(g) != ["predicted_label", "probabilities"] or g["predicted_label"] != int(e > 0.5) or \
       abs(g["probabilities"][1] - e) > 1e-7 or g["probabilities"][0] != 1 - g["probabilities"][1]:
        sys.exit("%r for %r" % (g, e))
print("ok" if len(got) == len(expected) else "%d records" % len(got))
PY
)"
send "$row" text/csv text/csv
expect_match "SAGEMAKER_INFERENCE_OUTPUT: CSV, the list quoted, no newline" '^[01],"\[0\.[0-9]+, 0\.[0-9]+\]"$' "$BODY"
send "$row" text/csv application/x-npy
expect_error "SAGEMAKER_INFERENCE_OUTPUT: Accept application/x-npy is 406 (its keys have no NPY layout)" 406 \
	"cannot produce Accept 'application/x-npy' with SAGEMAKER_INFERENCE_OUTPUT set"
stop_server selected
# recordio-protobuf with SAGEMAKER_INFERENCE_OUTPUT: one frame per record,
# each the Record the container writes last in its frame (its frame i holds
# records 0 to i, and a protobuf reader keeps the last value of a map key):
# checked byte for byte against the golden answers; with
# SMSERVE_XGBOOST_RECORDIO=cumulative, the container's own bytes.
G=tests/xgboost/golden
for model in binary_logistic multi_softprob; do
	id=$model.out-predicted_label_labels_probability_probabilities_raw_score_raw_scores.csv_many.csv.acc-rio
	SAGEMAKER_INFERENCE_OUTPUT=predicted_label,labels,probability,probabilities,raw_score,raw_scores \
		start_server "rio-$model" --model-dir "$G/models/$model" --no-access-log || exit 1
	post_binary "$G/requests/csv_many" text/csv application/x-recordio-protobuf
	expect "recordio answer, $model: each record once, the container's last Record of each frame" ok \
		"$("$PY" - "$G/answers/$id" "$T/body" "$T" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
import rio
golden = rio.frames(open(sys.argv[1], "rb").read())
ours = rio.frames(open(sys.argv[2], "rb").read())
if len(ours) != len(golden):
    sys.exit("%d frames, the container %d" % (len(ours), len(golden)))
for i, g in enumerate(golden):
    start = len(golden[i - 1]) if i else 0
    if ours[i] != g[start:]:
        sys.exit("frame %d: %r, expected %r" % (i + 1, ours[i], g[start:]))
    if rio.labels(ours[i]) != rio.labels(g):
        sys.exit("frame %d reads otherwise than the container's" % (i + 1))
print("ok")
PY
)"
	stop_server "rio-$model"
done
SMSERVE_XGBOOST_RECORDIO=cumulative SAGEMAKER_INFERENCE_OUTPUT=predicted_label \
	start_server rio-cumulative --model-dir "$G/models/binary_logistic" --no-access-log || exit 1
post_binary "$G/requests/csv_many" text/csv application/x-recordio-protobuf
expect "SMSERVE_XGBOOST_RECORDIO=cumulative: the container's bytes" 0 \
	"$(cmp -s "$T/body" "$G/answers/binary_logistic.out-predicted_label.csv_many.csv.acc-rio"; echo $?)"
for i in $(seq 1001); do echo "0.1,0.2,0.3,0.4,0.5"; done >"$T/many.csv"
post "$T/many.csv" text/csv application/x-recordio-protobuf
expect_error "SMSERVE_XGBOOST_RECORDIO=cumulative: at most 1000 records (the answer grows as their square)" \
	413 "answers at most 1000 records"
post_binary "$T/many.csv" text/csv application/json
expect "SMSERVE_XGBOOST_RECORDIO=cumulative: other answers are not bounded" 200 "$STATUS"
stop_server rio-cumulative
SMSERVE_XGBOOST_RECORDIO=all load_fails "SMSERVE_XGBOOST_RECORDIO: a value it does not know" \
	"$(model_dir "$FIX/reg_gamma.json")" "SMSERVE_XGBOOST_RECORDIO: expected records or cumulative"

SAGEMAKER_INFERENCE_OUTPUT=score load_fails "SAGEMAKER_INFERENCE_OUTPUT: a key it does not know" \
	"$(model_dir "$FIX/reg_gamma.json")" "SAGEMAKER_INFERENCE_OUTPUT: expected"

MAX_CONTENT_LENGTH=100 start_server max-length --model-dir "$(model_dir "$FIX/binary_logistic.json")" --no-access-log || exit 1
send "$row" text/csv
expect_error "MAX_CONTENT_LENGTH: a larger body is 413" 413 "at most 100 bytes"
stop_server max-length

echo "# $TOTAL_VALUES predictions compared, $TOTAL_EXACT equal to XGBoost's float32 exactly"
expect "every prediction equals XGBoost's float32 exactly" "$TOTAL_VALUES" "$TOTAL_EXACT"
finish
