#!/usr/bin/env bash
# bench/run.sh - `make bench`: smserve side by side with nginx and the Python
# stacks, all on loopback in one run, so the ratios hold on a noisy machine.
#
#   bash bench/run.sh [SECONDS]      (default 5 s per wrk run)
#   BENCH_ROUNDS=N                   (default 3 runs per figure, median kept)
#   BENCH_OUT=DIR                    (default bench/results; tests/bench.sh
#                                     runs a short bench into a scratch one)
#
# Peers (Debian packages, installed when missing): nginx answering from
# memory (the practical ceiling for HTTP/1.1 here; with two worker processes,
# and with one for the rows where wrk runs one thread), the AWS walkthrough's
# Flask app on Flask's own server and under gunicorn, and a scikit-learn
# iris model under gunicorn (what the AWS scikit-learn container does).
# smserve runs twice: with the echo plug-in (the Flask app's twin) and with
# the default model (the scikit-learn peer's twin, asked for CSV answers).
# Throughput is measured on `make`'s build (glibc, -O2) and on the static
# build the image ships (musl, -O2: secho and smodel in the table); memory on
# the static build, whose RSS has no shared libc pages.
#
# Writes bench/results/bench.md (the table README.md quotes) and
# bench/results/bench.svg (the chart), or the same files in BENCH_OUT.
set -u
cd "$(dirname "$0")/.." || exit 1
DUR=${1:-5}
out_dir=${BENCH_OUT:-bench/results}
out_md=$out_dir/bench.md
out_svg=$out_dir/bench.svg

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
command -v valgrind >/dev/null || need+=(valgrind)
/usr/bin/python3 -c 'import flask' 2>/dev/null || need+=(python3-flask)
/usr/bin/python3 -c 'import gunicorn' 2>/dev/null || need+=(gunicorn)
/usr/bin/python3 -c 'import sklearn' 2>/dev/null || need+=(python3-sklearn)
if [[ ${#need[@]} -gt 0 ]]; then
	echo "installing ${need[*]}" >&2
	(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/dev/null 2>&1 ||
		{ echo "bench: could not install ${need[*]}" >&2; exit 2; }
fi
make -s build/static-echo build/static-default build/smserve-echo build/smserve-default || exit 1

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# ---- inputs: one record, a ~1 MB batch of iris-like records ----
/usr/bin/python3 bench/iris_batch.py "$work/batch.csv"
batch_bytes=$(stat -c %s "$work/batch.csv")
lua() { # NAME BODY-LUA-EXPRESSION [EXTRA-HEADER-LINES]
	cat >"$work/$1.lua" <<LUA
wrk.method = "POST"
wrk.body = $2
wrk.headers["Content-Type"] = "text/csv"
${3:-}
LUA
}
lua record '"5.1,3.5,1.4,0.2"'
lua record_csv '"5.1,3.5,1.4,0.2"' 'wrk.headers["Accept"] = "text/csv"'
lua batch_csv "io.open(\"$work/batch.csv\", \"rb\"):read(\"*a\")" 'wrk.headers["Accept"] = "text/csv"'
lua batch_json "io.open(\"$work/batch.csv\", \"rb\"):read(\"*a\")" 'wrk.headers["Accept"] = "application/json"'
printf 'wrk.headers["Connection"] = "close"\n' >"$work/close.lua"

# ---- servers ----
declare -A port=([nginx]=18090 [nginx1]=18099 [flask]=18091 [gunicorn]=18092 [sklearn]=18094 [echo]=18095 [model]=18096
	[secho]=18097 [smodel]=18098)
start() { # NAME COMMAND...
	local name=$1; shift
	"$@" >"$work/$name.log" 2>&1 &
	pids+=($!)
	eval "pid_$name=$!"
	for _ in $(seq 300); do
		curl -s -o /dev/null "http://127.0.0.1:${port[$name]}/ping" && return 0
		sleep 0.05
	done
	echo "bench: $name did not start: $(tail -3 "$work/$name.log")" >&2
	exit 1
}
sed "s#@WORK@#$work#g; s#@PORT@#${port[nginx]}#g" bench/peers/nginx.conf >"$work/nginx.conf"
start nginx nginx -c "$work/nginx.conf" -p "$work"
# nginx1: the same nginx with one worker process, as smserve answers HTTP
# from its one loop process.
sed "s#@WORK@#$work#g; s#@PORT@#${port[nginx1]}#g; s#worker_processes 2;#worker_processes 1;#;
	s#nginx\.pid#nginx1.pid#; s#nginx-error#nginx1-error#" bench/peers/nginx.conf >"$work/nginx1.conf"
start nginx1 nginx -c "$work/nginx1.conf" -p "$work"
start flask env FLASK_APP=tests/peers/web_app_serve.py /usr/bin/python3 -m flask run --host 127.0.0.1 --port "${port[flask]}"
start gunicorn /usr/bin/python3 -m gunicorn --chdir tests/peers -w 2 -b "127.0.0.1:${port[gunicorn]}" web_app_serve:app
start sklearn /usr/bin/python3 -m gunicorn --chdir bench/peers -w 2 -b "127.0.0.1:${port[sklearn]}" sklearn_app:app
start echo ./build/smserve-echo --port "${port[echo]}" --workers 2 --no-access-log
start model ./build/smserve-default --port "${port[model]}" --model-dir models/iris --workers 2 --no-access-log
start secho ./build/static-echo --port "${port[secho]}" --workers 2 --no-access-log
start smodel ./build/static-default --port "${port[smodel]}" --model-dir models/iris --workers 2 --no-access-log

# ---- measurements ----
# rss_kib PID: resident set; private_kib PID: memory no other process shares.
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
private_kib() { awk '/^Private_(Clean|Dirty)/ {s += $2} END {print s}' "/proc/$1/smaps_rollup"; }
smserve_memory() { # PID LABEL -> a table row: loop RSS, each worker's RSS and private memory
	local loop=$1 w row
	row="| $2 | loop $(rss_kib "$loop") KiB RSS, $(private_kib "$loop") KiB private |"
	for w in $(pgrep -P "$loop"); do row+=" worker $(rss_kib "$w") KiB RSS, $(private_kib "$w") KiB private;"; done
	echo "$row"
}
mem_idle_echo=$(smserve_memory "$pid_secho" "static echo, idle")
mem_idle_model=$(smserve_memory "$pid_smodel" "static default model, idle")

rate() { # NAME PATH CONNECTIONS [LUA] -> "req/s p50 p99 errors"; WRK_THREADS (default 2)
	local script=()
	[[ -n ${4:-} ]] && script=(-s "$work/$4.lua")
	wrk -t"${WRK_THREADS:-2}" -c"$3" -d"${DUR}s" --timeout 10s --latency "${script[@]}" "http://127.0.0.1:${port[$1]}$2" 2>&1 | awk '
		/Requests\/sec/ {r = $2}
		/^ +50%/ {p50 = $2} /^ +99%/ {p99 = $2}
		/Non-2xx|Socket errors/ {e = e $0}
		END {printf "%s %s %s %s\n", r, p50, p99, (e == "" ? "none" : "ERRORS:" e)}'
}

# A single 5 s run on a shared 2-core machine can be off by a third (another
# process, a cold cache), so each scenario runs ROUNDS times, the servers
# taking turns, and each server's median run is the one reported.
ROUNDS=${BENCH_ROUNDS:-3}
declare -A rps p99s
rows=()
run() { # SCENARIO PATH CONNECTIONS LUA SERVER...
	local scenario=$1 path=$2 conns=$3 lua=$4 s i r p50 p99 err
	local -A runs=()
	shift 4
	for ((i = 0; i < ROUNDS; i++)); do
		for s in "$@"; do runs[$s]+="$(rate "$s" "$path" "$conns" "$lua")"$'\n'; done
	done
	for s in "$@"; do
		read -r r p50 p99 err < <(printf '%s' "${runs[$s]}" | sort -g | sed -n "$(((ROUNDS + 1) / 2))p")
		grep -q ERRORS <<<"${runs[$s]}" && err="ERRORS in $(grep -c ERRORS <<<"${runs[$s]}") of $ROUNDS runs"
		rps[$scenario/$s]=$r
		p99s[$scenario/$s]=$p99
		rows+=("| $scenario | $s | $r | $p50 | $p99 | ${err//|/ } |")
		printf '%-8s %-9s %12s %10s %10s %s\n' "$scenario" "$s" "$r" "$p50" "$p99" "$err"
	done
}

echo "scenario server           req/s        p50        p99 errors   (median of $ROUNDS runs)"
run ping /ping 32 "" nginx flask gunicorn echo secho
run echo /invocations 32 record nginx flask gunicorn echo secho
run model /invocations 32 record_csv sklearn model smodel
run batch /invocations 4 batch_csv sklearn model smodel
run batchjson /invocations 4 batch_json sklearn model smodel
run c1000 /ping 1000 "" nginx echo
(sleep $((DUR / 2)); smserve_memory "$pid_secho" "static echo, under 1,000 connections" >"$work/mem_load") &
rate secho /invocations 1000 record >/dev/null
run newconn /ping 32 close nginx echo
mem_load_echo=$(cat "$work/mem_load")
# The same at 32 connections with wrk on one thread. wrk -t2 wants about a
# core and a half, so on two cores it and the servers take turns on the CPUs,
# and a server that loses its CPU waits a scheduler time slice (the p99 above).
# With one thread, wrk takes one core and leaves the other to the server.
WRK_THREADS=1 run ping1 /ping 32 "" nginx nginx1 echo secho
WRK_THREADS=1 run echo1 /invocations 32 record nginx nginx1 echo secho

# ---- start time: exec to the first 200 from /ping, 20 starts ----
start_ms=()
for i in $(seq 20); do
	p=$((19000 + i))
	t0=$(date +%s%N)
	./build/static-default --port "$p" --model-dir models/iris --workers 2 >/dev/null 2>&1 &
	sp=$!
	until (exec 3<>"/dev/tcp/127.0.0.1/$p" && printf 'GET /ping HTTP/1.1\r\nHost: x\r\n\r\n' >&3 &&
		IFS= read -r l <&3 && [[ $l == "HTTP/1.1 200"* ]]) 2>/dev/null; do :; done
	t1=$(date +%s%N)
	kill "$sp"; wait "$sp" 2>/dev/null
	start_ms+=("$(( (t1 - t0) / 1000 ))")
done
start_median=$(printf '%s\n' "${start_ms[@]}" | sort -n | awk '{a[NR] = $1} END {printf "%.2f", (a[10] + a[11]) / 2000}')

# ---- instructions per request: callgrind counts the same on every run ----
ir_of() { # N -> total instructions of the loop process serving N pings + N invocations
	local p=19100 f="$work/cg.$1" loop
	valgrind --tool=callgrind --callgrind-out-file="$f.%p" ./build/smserve-echo --port "$p" --workers 1 --no-access-log >/dev/null 2>&1 &
	loop=$!
	for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$p/ping" && break; sleep 0.1; done
	curl -s -o /dev/null "http://127.0.0.1:$p/ping?[1-$1]"
	curl -s -o /dev/null -d '5.1,3.5,1.4,0.2' "http://127.0.0.1:$p/invocations?[1-$1]"
	kill "$loop"; wait "$loop" 2>/dev/null
	awk '/^summary:/ {print $2}' "$f.$loop"
}
ir_small=$(ir_of 1000)
ir_large=$(ir_of 11000)
ir_per_req=$(( (ir_large - ir_small) / 20000 ))

# ---- the report ----
ratio() { awk -v a="${rps[$1]}" -v b="${rps[$2]}" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
faster() { awk -v a="${rps[$1]}" -v b="${rps[$2]}" -v ka="$1" -v kb="$2" 'BEGIN { print (a + 0 >= b + 0) ? ka : kb }'; }
ping1_best=$(faster ping1/nginx ping1/nginx1)   # nginx's better configuration with wrk -t1
mbps() { awk -v r="${rps[$1]}" -v b="$batch_bytes" 'BEGIN { printf "%.1f", r * b / 1e6 }'; }
mkdir -p "$out_dir"
{
	echo "# smserve benchmark"
	echo
	echo "$(date -u +%Y-%m-%d), $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)),"
	echo "$(uname -sr), wrk -t2 on the same machine (ping1 and echo1: wrk -t1), ${DUR} s per run; each figure is the median of"
	echo "$ROUNDS runs, the servers taking turns. Command: \`$([[ $ROUNDS != 3 ]] && echo "BENCH_ROUNDS=$ROUNDS ")make bench\`."
	echo "echo and model: smserve built by \`make\` (glibc, -O2); secho and smodel: the static build the"
	echo "image ships (musl, -O2). nginx1: nginx with one worker process (nginx: two)."
	echo
	echo "| scenario | server | req/s | p50 | p99 | errors |"
	echo "|---|---|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
	echo
	echo "| ratio | value |"
	echo "|---|---|"
	echo "| /ping: smserve / nginx | $(ratio ping/echo ping/nginx) |"
	echo "| /ping: smserve / gunicorn | $(ratio ping/echo ping/gunicorn) |"
	echo "| echo /invocations: smserve / nginx's /ping | $(ratio echo/echo ping/nginx) |"
	echo "| echo /invocations: smserve / gunicorn | $(ratio echo/echo echo/gunicorn) |"
	echo "| echo /invocations: smserve / Flask | $(ratio echo/echo echo/flask) |"
	echo "| one record: default model / scikit-learn peer | $(ratio model/model model/sklearn) |"
	echo "| 1 MB batch: default model / scikit-learn peer ($(mbps batch/model) vs $(mbps batch/sklearn) MB/s) | $(ratio batch/model batch/sklearn) |"
	echo "| 1 MB batch, JSON answers (scores and label): default model / scikit-learn peer ($(mbps batchjson/model) vs $(mbps batchjson/sklearn) MB/s) | $(ratio batchjson/model batchjson/sklearn) |"
	echo "| 1 MB batch, default model: JSON answers / CSV answers | $(ratio batchjson/model batch/model) |"
	echo "| the image's static build: /ping / nginx | $(ratio ping/secho ping/nginx) |"
	echo "| the image's static build: echo /invocations / nginx's /ping | $(ratio echo/secho ping/nginx) |"
	echo "| the image's static build: one record / scikit-learn peer | $(ratio model/smodel model/sklearn) |"
	echo "| the image's static build: 1 MB batch / scikit-learn peer ($(mbps batch/smodel) MB/s) | $(ratio batch/smodel batch/sklearn) |"
	echo "| 1,000 connections / 32 connections, smserve /ping | $(ratio c1000/echo ping/echo) |"
	echo "| new connection per request: smserve / nginx | $(ratio newconn/echo newconn/nginx) |"
	echo "| wrk -t1, /ping: smserve / the faster nginx (${ping1_best#*/}); smserve's p99 ${p99s[ping1/echo]} | $(ratio ping1/echo "$ping1_best") |"
	echo "| wrk -t1, echo /invocations: smserve / the faster nginx's /ping | $(ratio echo1/echo "$ping1_best") |"
	echo "| wrk -t1, the image's static build: /ping / the faster nginx; p99 ${p99s[ping1/secho]} | $(ratio ping1/secho "$ping1_best") |"
	echo "| wrk -t1, the image's static build: echo /invocations / the faster nginx's /ping | $(ratio echo1/secho "$ping1_best") |"
	echo
	echo "| memory | |"
	echo "|---|---|"
	echo "$mem_idle_echo"
	echo "$mem_idle_model"
	echo "$mem_load_echo"
	echo
	echo "Start (exec to the first 200 from /ping, default model, median of 20): ${start_median} ms."
	echo "Instructions per request in the loop process (callgrind, pings and echo invocations): ${ir_per_req}."
} >"$out_md"

bench/chart.sh "$out_md" >"$out_svg"
echo
cat "$out_md"
