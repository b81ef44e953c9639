#!/usr/bin/env bash
# bench/ab.sh - two builds of smserve.c served alternately, to judge a change.
#
#   bash bench/ab.sh [BASE [ROUNDS [SECONDS]]]
#
# BASE is a git revision (default: bca3d2d, the last commit before the loop
# waited for quick answers); its smserve.c is built against the working
# tree's plug-ins and compared with the working tree's smserve.c. On this
# shared 2-CPU virtual machine one run can be off by a fifth, and make bench
# compares servers taken minutes apart, so a change to the loop is judged
# here: the two builds take turns, ROUNDS times (default 8), SECONDS each
# (default 3), and the median of each is kept. Scenarios:
#
#   echo         the echo plug-in, one-record POST /invocations, wrk -t2 -c32
#   model        the default model, one record, CSV answer, wrk -t2 -c32
#   ping-spin    the loop and both workers pinned to CPU 0 (taskset), 4
#                clients keeping both workers computing 5 ms per request,
#                and GET /ping from one connection on CPU 1: what a loop
#                that gives its CPU away to a busy worker would cost /ping
#
# Writes bench/results/ab.md. Needs gcc, wrk, curl and taskset.
set -u
cd "$(dirname "$0")/.." || exit 1
BASE=${1:-bca3d2d}
ROUNDS=${2:-8}
SECS=${3:-3}
PORT=19500
for tool in wrk curl taskset; do
	command -v "$tool" >/dev/null || { echo "ab: $tool is not installed" >&2; exit 2; }
done
work=$(mktemp -d)
server=
cleanup() { [[ -n $server ]] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

git show "$BASE:smserve.c" >"$work/base.c" || exit 1
cp smserve.c "$work/new.c"
for v in base new; do
	for p in echo:examples/echo/model.c default:model.c spin:tests/plugins/faulty.c; do
		gcc -std=c11 -O2 -I. -o "$work/$v-${p%%:*}" "$work/$v.c" "${p#*:}" -lm || exit 1
	done
done

printf 'wrk.method = "POST"\nwrk.body = "5.1,3.5,1.4,0.2"\nwrk.headers["Content-Type"] = "text/csv"\nwrk.headers["Accept"] = "text/csv"\n' >"$work/record.lua"
printf 'wrk.method = "POST"\nwrk.body = "x"\nwrk.headers["X-Amzn-SageMaker-Custom-Attributes"] = "spin 5000"\n' >"$work/spin.lua"

start() { # BINARY [taskset CPU list]
	local pin=()
	[[ -n ${2:-} ]] && pin=(taskset -c "$2")
	"${pin[@]}" "$1" --port "$PORT" --workers 2 --model-dir models/iris --no-access-log 2>/dev/null &
	server=$!
	for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/ping" && return; sleep 0.05; done
}
stop() { kill "$server"; wait "$server" 2>/dev/null; server=; }

# wrk's requests/s and p50 from its --latency output
figures() { awk '/Requests\/sec/ {r = $2} $1 == "50%" {p50 = $2} END {printf "%d %s\n", r, p50}'; }

one_round() { # VERSION -> lines "scenario req/s p50"
	local v=$1
	start "$work/$v-echo"
	echo "echo $(wrk -t2 -c32 -d"${SECS}s" --latency -s "$work/record.lua" "http://127.0.0.1:$PORT/invocations" | figures)"
	stop
	start "$work/$v-default"
	echo "model $(wrk -t2 -c32 -d"${SECS}s" --latency -s "$work/record.lua" "http://127.0.0.1:$PORT/invocations" | figures)"
	stop
	start "$work/$v-spin" 0
	taskset -c 1 wrk -t1 -c4 -d"$((SECS + 2))s" -s "$work/spin.lua" "http://127.0.0.1:$PORT/invocations" >/dev/null &
	local load=$!
	sleep 1
	echo "ping-spin $(taskset -c 1 wrk -t1 -c1 -d"${SECS}s" --latency "http://127.0.0.1:$PORT/ping" | figures)"
	wait "$load"
	stop
}

for ((r = 1; r <= ROUNDS; r++)); do
	for v in base new; do
		one_round "$v" | sed "s/^/$v /" >>"$work/runs"
	done
	echo "round $r of $ROUNDS done" >&2
done

# wrk's latencies (850.00us, 1.20ms, 2.00s) in microseconds
to_us() { awk '{v = $1 + 0; if ($1 ~ /ms$/) v *= 1000; else if ($1 ~ /[0-9]s$/) v *= 1000000; print v}'; }

# median of a column of numbers
median() { sort -n | awk '{a[NR] = $1} END {printf "%.0f\n", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

mkdir -p bench/results
{
	echo "# Two builds served alternately"
	echo
	echo "$(date -u +%Y-%m-%d), $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo))."
	echo "base: smserve.c of $(git rev-parse --short "$BASE"); new: the working tree's ($(git rev-parse --short HEAD)$(git diff --quiet -- smserve.c || echo ', changed'))."
	echo "$ROUNDS rounds of $SECS s each, the builds taking turns. Command: \`bash bench/ab.sh $BASE $ROUNDS $SECS\`."
	echo
	echo "| scenario | build | median req/s | runs (req/s) | median p50 |"
	echo "|---|---|---|---|---|"
	for s in echo model ping-spin; do
		for v in base new; do
			rows=$(awk -v v="$v" -v s="$s" '$1 == v && $2 == s' "$work/runs")
			echo "| $s | $v | $(awk '{print $3}' <<<"$rows" | median) | $(awk '{print $3}' <<<"$rows" | tr '\n' ' ')| $(awk '{print $4}' <<<"$rows" | to_us | median) us |"
		done
	done
} | tee bench/results/ab.md
