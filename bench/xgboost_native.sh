#!/usr/bin/env bash
# bench/xgboost_native.sh - the XGBoost plug-in against XGBoost's own C++
# predictor, one thread each, on the same 10,000 records and the same models,
# in the same run.
#
#   bash bench/xgboost_native.sh [ROUNDS]     (default 20; each figure the best)
#   XGB_BENCH_DIR=DIR ...                     keep the models and records in DIR
#                                             (made on the first run, reused after)
#   SMSERVE=PATH ...                          another build of the server (default
#                                             build/smserve-xgboost, made here)
#
# Two models, trained here on 20 features (bench/xgboost_native.py):
# binary:logistic with 200 trees of depth 6, and multi:softprob with 10
# classes and 100 rounds (1,000 trees of depth 6). smserve-xgboost runs with
# one worker and is timed end to end over HTTP: a 10,000-record CSV body in,
# the CSV answer out, parsing and writing included. XGBoost (python3-xgboost,
# nthread=1) is timed on its predict alone, given the records as a ready
# float32 matrix (inplace_predict, and predict on a DMatrix built beforehand:
# the faster counts). The answers must be equal, float32 for float32, before
# anything is timed. The goal (issue 20): smserve at least 2x XGBoost on the
# binary model and 1.5x on the multi-class one.
#
# Prints a table and writes bench/results/xgboost_native.md.
set -u
cd "$(dirname "$0")/.." || exit 1
ROUNDS=${1:-20}
PY=/usr/bin/python3

$PY -c 'import xgboost' 2>/dev/null || { echo "bench/xgboost_native.sh: needs python3-xgboost" >&2; exit 2; }
SMSERVE=${SMSERVE:-}
if [[ -z $SMSERVE ]]; then
	make -s build/smserve-xgboost || exit 1
	SMSERVE=./build/smserve-xgboost
fi

work=${XGB_BENCH_DIR:-$(mktemp -d)}
server=
stop() { [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null; server=; }
trap 'stop; [[ -z ${XGB_BENCH_DIR:-} ]] && rm -rf "$work"' EXIT

mkdir -p "$work"
[[ -s $work/batch.csv ]] || $PY bench/xgboost_native.py prepare "$work" || exit 1

# A port nobody listens on, chosen by the kernel.
free_port() { $PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

results=()
for name in binary multi; do
	port=$(free_port)
	"$SMSERVE" --port "$port" --model-dir "$work/$name" --workers 1 --no-access-log \
		2>"$work/$name.log" &
	server=$!
	for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/ping" && break; sleep 0.1; done
	line=$($PY bench/xgboost_native.py time "$work" "$name" "$port" "$ROUNDS") || exit 1
	results+=("$line")
	stop
done

mkdir -p bench/results
{
	echo "# XGBoost plug-in against XGBoost's C++ predictor"
	echo
	echo "$(date -u +%Y-%m-%d), $(nproc) CPUs, XGBoost $($PY -c 'import xgboost; print(xgboost.__version__)'),"
	echo "\`bash bench/xgboost_native.sh $ROUNDS\`: 10,000 records of 20 features, 4 decimals each ($(wc -c <"$work/batch.csv") bytes"
	echo "of CSV; bench/xgboost_native.py). smserve-xgboost with one worker, timed over HTTP"
	echo "with CSV in and out; XGBoost with nthread=1, timed on predict alone from a float32"
	echo "matrix. Best of $ROUNDS; the answers were equal, float32 for float32."
	echo
	echo "| model | smserve ms | XGBoost ms | ratio (XGBoost / smserve) | inplace_predict ms | DMatrix predict ms |"
	echo "|---|---|---|---|---|---|"
	for line in "${results[@]}"; do
		read -r name s x r i d <<<"$line"
		case $name in
		binary) label="binary:logistic, 200 trees" ;;
		multi) label="multi:softprob, 10 classes x 100 rounds" ;;
		esac
		echo "| $label | $s | $x | ${r}x | $i | $d |"
	done
} >bench/results/xgboost_native.md
cat bench/results/xgboost_native.md
