#!/usr/bin/env bash
# bench/xgboost.sh - the XGBoost plug-in against XGBoost's own Python predict
# under gunicorn (a peer in the style of SageMaker's XGBoost container), on
# the same model, the same single record and the same 1 MB CSV batch, in
# the same run.
#
#   bash bench/xgboost.sh [SECONDS]        (default 5 s per wrk run)
#   BENCH_ROUNDS=N                         (default 3 runs per figure, median kept)
#
# Needs Debian's wrk, gunicorn, python3-flask, python3-xgboost and
# python3-sklearn (installed with apt-get when missing and running as root).
# Trains the benchmark model first: binary:logistic on the breast cancer
# data that ships with scikit-learn, 100 trees of depth 6, 30 features.
# Both servers get 2 workers; wrk -t2 runs on the same machine, 32
# connections for single records and 4 for the batch. Checks that both
# answer the batch with the same predictions (1e-6 relative) before timing.
# Prints the ratios and writes bench/results/xgboost.md.
set -u
cd "$(dirname "$0")/.." || exit 1
DUR=${1:-5}
PY=/usr/bin/python3

need=()
command -v wrk >/dev/null || need+=(wrk)
$PY -c 'import gunicorn' 2>/dev/null || need+=(gunicorn)
$PY -c 'import flask' 2>/dev/null || need+=(python3-flask)
$PY -c 'import xgboost' 2>/dev/null || need+=(python3-xgboost)
$PY -c 'import sklearn' 2>/dev/null || need+=(python3-sklearn)
if [[ ${#need[@]} -gt 0 ]]; then
	[[ $(id -u) == 0 ]] || { echo "bench/xgboost.sh: needs ${need[*]}" >&2; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || exit 1
fi
make -s build/smserve-xgboost || exit 1

work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/model"

# The model, one record and the 1 MB batch.
$PY - "$work" <<'PYEOF'
import sys
import numpy as np
import xgboost as xgb
from sklearn.datasets import load_breast_cancer
work = sys.argv[1]
x, y = load_breast_cancer(return_X_y=True)
b = xgb.train({"objective": "binary:logistic", "max_depth": 6, "nthread": 1, "seed": 1},
              xgb.DMatrix(x, label=y), 100)
b.save_model(work + "/model/xgboost-model")  # the legacy binary format, as SageMaker's 1.x writes
lines = [",".join(repr(float(v)) for v in row) for row in x]
open(work + "/record.csv", "w").write(lines[0])
batch, size = [], 0
while size < 1 << 20:
    line = lines[len(batch) % len(lines)]
    batch.append(line)
    size += len(line) + 1
open(work + "/batch.csv", "w").write("\n".join(batch) + "\n")
PYEOF
[[ -s $work/batch.csv ]] || exit 1
batch_bytes=$(wc -c <"$work/batch.csv")
batch_records=$(wc -l <"$work/batch.csv")

port_smserve=$((10000 + RANDOM % 20000))
port_peer=$((port_smserve + 1))
# SAGEMAKER_BATCH: CSV answers one line per record, as the peer writes them.
SAGEMAKER_BATCH=true ./build/smserve-xgboost --port "$port_smserve" --model-dir "$work/model" --workers 2 \
	--no-access-log 2>/dev/null &
pids+=($!)
OMP_NUM_THREADS=1 XGB_MODEL=$work/model/xgboost-model $PY -m gunicorn --chdir bench/peers -w 2 \
	-b "127.0.0.1:$port_peer" xgboost_app:app 2>"$work/peer.log" &
pids+=($!)
for p in $port_smserve $port_peer; do
	for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$p/ping" && break; sleep 0.1; done
done

# Same answers first.
for s in smserve peer; do
	p=port_$s
	curl -s -H 'Content-Type: text/csv' -H 'Accept: text/csv' --data-binary @"$work/batch.csv" \
		"http://127.0.0.1:${!p}/invocations" >"$work/$s.out"
done
$PY - "$work/smserve.out" "$work/peer.out" "$batch_records" <<'PYEOF' || { echo "bench/xgboost.sh: the answers differ" >&2; exit 1; }
import sys
a = [float(v) for v in open(sys.argv[1]).read().split()]
b = [float(v) for v in open(sys.argv[2]).read().split()]
assert len(a) == len(b) == int(sys.argv[3]), (len(a), len(b))
assert all(abs(x - y) <= 1e-6 * abs(y) for x, y in zip(a, b))
PYEOF

lua() { # NAME FILE
	cat >"$work/$1.lua" <<LUA
wrk.method = "POST"
wrk.body = io.open("$2", "rb"):read("*a")
wrk.headers["Content-Type"] = "text/csv"
wrk.headers["Accept"] = "text/csv"
LUA
}
lua record "$work/record.csv"
lua batch "$work/batch.csv"

# run SERVER SCRIPT CONNECTIONS: prints "req/s p50 p99 errors".
run() {
	local p=port_$1
	wrk -t2 -c"$3" -d"${DUR}s" --timeout 30s --latency -s "$work/$2.lua" "http://127.0.0.1:${!p}/invocations" 2>&1 |
		awk '/Requests\/sec/ {r = $2} /^ +50%/ {p50 = $2} /^ +99%/ {p99 = $2}
		     /Non-2xx|Socket errors/ {e = e $0}
		     END {printf "%s %s %s %s\n", r, p50, p99, (e == "" ? "none" : "ERRORS")}'
}
# Each figure is the median of ROUNDS runs, the two servers taking turns
# (one 5 s run on a shared 2-core machine can be off by a third).
ROUNDS=${BENCH_ROUNDS:-3}
declare -A res runs
for ((i = 0; i < ROUNDS; i++)); do
	for s in peer smserve; do
		runs[record/$s]+="$(run "$s" record 32)"$'\n'
		runs[batch/$s]+="$(run "$s" batch 4)"$'\n'
	done
done
for k in "${!runs[@]}"; do
	res[$k]=$(printf '%s' "${runs[$k]}" | sort -g | sed -n "$(((ROUNDS + 1) / 2))p")
	grep -q ERRORS <<<"${runs[$k]}" && res[$k]="${res[$k]% *} ERRORS"
done
rps() { awk '{print $1}' <<<"${res[$1]}"; }
ratio() { awk -v a="$(rps "$1")" -v b="$(rps "$2")" 'BEGIN {printf "%.1fx", (b > 0 ? a / b : 0)}'; }
mbps() { awk -v r="$(rps "$1")" -v n="$batch_bytes" 'BEGIN {printf "%.1f", r * n / 1048576}'; }

mkdir -p bench/results
{
	echo "# XGBoost plug-in against XGBoost's Python predict"
	echo
	echo "$(date -u +%Y-%m-%d), $(nproc) CPUs, XGBoost $($PY -c 'import xgboost; print(xgboost.__version__)'),"
	echo "\`bash bench/xgboost.sh $DUR\`: binary:logistic, 100 trees of depth 6, 30 features (breast"
	echo "cancer); smserve-xgboost and gunicorn (\`bench/peers/xgboost_app.py\`: Flask, numpy, DMatrix,"
	echo "Booster.predict, OMP_NUM_THREADS=1), 2 workers each; wrk -t2 on the same machine, $DUR s"
	echo "per run, each figure the median of $ROUNDS runs. Both answered the batch with the same"
	echo "predictions before timing."
	echo
	echo "| scenario | server | req/s | p50 | p99 | errors |"
	echo "|---|---|---|---|---|---|"
	for k in record batch; do
		for s in peer smserve; do
			read -r r p50 p99 e <<<"${res[$k/$s]}"
			echo "| $k | $( [[ $s == peer ]] && echo 'gunicorn + XGBoost' || echo smserve-xgboost) | $r | $p50 | $p99 | $e |"
		done
	done
	echo
	echo "| ratio (smserve / XGBoost under gunicorn) | value |"
	echo "|---|---|"
	echo "| one record (32 connections) | $(ratio record/smserve record/peer) |"
	echo "| 1 MB CSV batch, $batch_records records (4 connections; $(mbps batch/smserve) vs $(mbps batch/peer) MB/s) | $(ratio batch/smserve batch/peer) |"
} >bench/results/xgboost.md
cat bench/results/xgboost.md
