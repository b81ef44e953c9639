#!/usr/bin/env bash
# bench/mme.sh - multi-model endpoints at scale (issue 22, item 6).
#
#   bash bench/mme.sh                 1,000 iris-sized linear models
#   bash bench/mme.sh 10000           10,000
#   bash bench/mme.sh 1000 xgboost    1,000 100-tree XGBoost models (breast
#                                     cancer, depth 6; needs python3-xgboost
#                                     and python3-sklearn to make the model)
#   BENCH_SECONDS=N                   wrk's run per figure (default 5)
#   BENCH_ROUNDS=N                    wrk runs per figure (default 3, median kept)
#
# With the default (or XGBoost) plug-in (build/smserve-default or
# build/smserve-xgboost, 2 workers, no access log):
#   1. N models loaded one after another on one kept-alive connection, each
#      from its own directory: each load's time (p50, p99, max) and the rate.
#   2. The last 1,000 unloaded, then loaded again 4 at a time (a burst) while
#      a client pings: /ping's p50, p99 and max during the burst.
#   3. One model's one-record invocations (wrk, 1 thread, 32 connections)
#      with the N models loaded, against the same model in single-model mode
#      (/invocations), the two taking turns, BENCH_ROUNDS rounds, medians
#      kept. On a shared 2-core machine one run may differ from the next by
#      a third: take more rounds before reading a ratio.
#   4. The sum of Pss over the server's processes with the N models loaded.
# Prints the figures; writes nothing. Not part of make test or make bench.
set -u
cd "$(dirname "$0")/.." || exit 1
N=${1:-1000}
PLUGIN=${2:-default}
DUR=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
PY=/usr/bin/python3
BURST=1000
((N >= BURST)) || BURST=$N
case $PLUGIN in
default) MODEL_FILE=linear-model.txt ;;
xgboost) MODEL_FILE=xgboost-model ;;
*) echo "bench/mme.sh: the plug-in is default or xgboost, not $PLUGIN" >&2; exit 2 ;;
esac
make -s "build/smserve-$PLUGIN" || exit 1

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

free_port() {
	local p
	while :; do
		p=$((10000 + RANDOM % 22000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

# serve LOG ARGS...: starts the default server, waits for /ping 200; sets
# SERVE_PORT and SERVE_PID.
serve() {
	local log=$1 i
	shift
	SERVE_PORT=$(free_port)
	"./build/smserve-$PLUGIN" --port "$SERVE_PORT" --workers 2 --no-access-log "$@" >"$work/$log.log" 2>&1 &
	SERVE_PID=$!
	pids+=("$SERVE_PID")
	for i in $(seq 200); do
		[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SERVE_PORT/ping") == 200 ]] && return 0
		sleep 0.05
	done
	echo "mme: the server on $SERVE_PORT did not start: $(tail -2 "$work/$log.log")" >&2
	exit 1
}

# pss_kb PID: the sum of Pss (KiB) over PID and its descendants.
pss_kb() {
	local sum=0 p v
	for p in $(tree "$1"); do
		v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null)
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}
tree() { local c; echo "$1"; for c in $(pgrep -P "$1"); do tree "$c"; done; }

echo "# bench/mme.sh: $N models ($PLUGIN), $(nproc) CPUs, $(date -u +%Y-%m-%dT%H:%MZ), $(git rev-parse --short HEAD)"
mkdir -p "$work/source"
if [[ $PLUGIN == default ]]; then
	cp models/iris/linear-model.txt "$work/source/"
	printf '5.1,3.5,1.4,0.2' >"$work/record.csv"
else
	"$PY" - "$work" <<'PY' || { echo "bench/mme.sh: making the XGBoost model needs python3-xgboost and python3-sklearn" >&2; exit 1; }
import sys
import xgboost as xgb
from sklearn.datasets import load_breast_cancer
work = sys.argv[1]
x, y = load_breast_cancer(return_X_y=True)
b = xgb.train({"objective": "binary:logistic", "max_depth": 6, "nthread": 1, "seed": 1},
              xgb.DMatrix(x, label=y), 100)
b.save_model(work + "/source/xgboost-model")  # the legacy binary format, as SageMaker's 1.x writes
open(work + "/record.csv", "w").write(",".join(repr(float(v)) for v in x[0]))
PY
fi
echo "# making $N model directories (each $MODEL_FILE a hard link to one of $(wc -c <"$work/source/$MODEL_FILE") bytes)"
"$PY" - "$work" "$N" "$MODEL_FILE" <<'PY'
import os, sys
work, n, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for i in range(n):
    d = os.path.join(work, "models", "m%05d" % i, "model")
    os.makedirs(d)
    os.link(os.path.join(work, "source", name), os.path.join(d, name))
PY

serve mme --multi-model
mport=$SERVE_PORT mpid=$SERVE_PID
grep -m1 'listening on' "$work/mme.log" | sed 's/^/# /'

cat >"$work/load.py" <<'PY'
import http.client, json, sys, threading, time
port, root, n, burst = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def conn():
    return http.client.HTTPConnection("127.0.0.1", port, timeout=120)

def call(c, method, path, body=None):
    h = {"Content-Type": "application/json", "Accept": "application/json"} if body else {}
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    r.read()
    return r.status

def load(c, i):
    name = "m%05d" % i
    return call(c, "POST", "/models", json.dumps({"model_name": name, "url": "%s/%s/model" % (root, name)}))

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000

# 1. N loads, one after another
c, times, bad = conn(), [], 0
t0 = time.monotonic()
for i in range(n):
    t = time.monotonic()
    s = load(c, i)
    times.append(time.monotonic() - t)
    bad += s != 200
took = time.monotonic() - t0
print("loads, one at a time: %d models in %.2f s (%.0f/s), p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, "
      "max %.2f ms, %d over 2 ms, %d not 200"
      % (n, took, n / took, pct(times, 0.5), pct(times, 0.9), pct(times, 0.99), max(times) * 1000,
         sum(t > 0.002 for t in times), bad))

# 2. the last `burst` unloaded, then loaded again 4 at a time beside a pinger
for i in range(n - burst, n):
    call(c, "DELETE", "/models/m%05d" % i)
done, pings, badp = threading.Event(), [], [0]
def pinger():
    pc = conn()
    while not done.is_set():
        t = time.monotonic()
        if call(pc, "GET", "/ping") != 200:
            badp[0] += 1
        pings.append(time.monotonic() - t)
        time.sleep(0.001)
lt, bad_loads = [], [0]
def loader(k):
    lc = conn()
    for i in range(n - burst + k, n, 4):
        t = time.monotonic()
        if load(lc, i) != 200:
            bad_loads[0] += 1
        lt.append(time.monotonic() - t)
p = threading.Thread(target=pinger)
p.start()
time.sleep(0.2)
t0 = time.monotonic()
ls = [threading.Thread(target=loader, args=(k,)) for k in range(4)]
for t in ls: t.start()
for t in ls: t.join()
took = time.monotonic() - t0
done.set()
p.join()
print("burst of %d loads, 4 at a time: %.2f s, load p50 %.2f ms, p99 %.2f ms, %d not 200"
      % (burst, took, pct(lt, 0.5), pct(lt, 0.99), bad_loads[0]))
print("/ping during the burst: %d pings, p50 %.2f ms, p99 %.2f ms, max %.2f ms, %d not 200"
      % (len(pings), pct(pings, 0.5), pct(pings, 0.99), max(pings) * 1000, badp[0]))
PY
"$PY" "$work/load.py" "$mport" "$work/models" "$N" "$BURST" || exit 1
curl -s "http://127.0.0.1:$mport/models?limit=1" | head -c 200 | sed 's/^/# a first page: /'
echo
grep -m1 'occup\|bytes' "$work/mme.log" | sed 's/^/# /'
# The models live in a memfd the loop holds (docs/mme.md): its allocated
# blocks are what they occupy; Pss counts only the pages a worker mapped.
memfd_kb() {
	local f
	for f in /proc/"$1"/fd/*; do
		[[ $(readlink "$f") == /memfd:* ]] && echo $(($(stat -L -c '%b * %B' "$f") / 1024)) && return
	done
	echo "?"
}
echo "with $N models loaded: the models' memfd holds $(memfd_kb "$mpid") KiB;" \
	"Pss over the loop and workers ($(tree "$mpid" | wc -l) processes) $(pss_kb "$mpid") KiB"

if ! command -v wrk >/dev/null; then
	echo "# SKIP: the hot model's invocation rate (wrk is not installed)"
	exit 0
fi
serve single --model-dir "$work/source"
sport=$SERVE_PORT
printf 'wrk.method = "POST"\nwrk.body = "%s"\nwrk.headers["Content-Type"] = "text/csv"\nwrk.headers["Accept"] = "text/csv"\n' \
	"$(cat "$work/record.csv")" >"$work/record.lua"
rate() { wrk -t1 -c32 -d"${DUR}s" -s "$work/record.lua" "$1" 2>/dev/null | awk '/^Requests\/sec/ {printf "%d", $2}'; }
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
hot=m00000
[[ $(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: text/csv' --data-binary "@$work/record.csv" \
	"http://127.0.0.1:$mport/models/$hot/invoke") == 200 ]] ||
	{ echo "mme: $hot does not answer" >&2; exit 1; }
m_rates= s_rates=
for r in $(seq "$ROUNDS"); do
	m_rates+=" $(rate "http://127.0.0.1:$mport/models/$hot/invoke")"
	s_rates+=" $(rate "http://127.0.0.1:$sport/invocations")"
done
m=$(median <<<"$m_rates") s=$(median <<<"$s_rates")
echo "one-record invocations (wrk -t1 -c32, ${DUR}s, median of $ROUNDS): multi-model ($N loaded) $m/s" \
	"[$m_rates ], single-model $s/s [$s_rates ], ratio $(awk -v a="$m" -v b="$s" 'BEGIN {printf "%.3f", a / b}')"
