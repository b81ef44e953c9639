#!/usr/bin/env bash
# bench/workers.sh - one-record invocations against the number of workers.
#
#   bash bench/workers.sh [SECONDS]      (default 4 s per wrk run)
#   BENCH_ROUNDS=N                       (default 3 runs per figure, median kept)
#
# The echo plug-in and the default model answer one record in microseconds,
# so what limits them is the loop, and the loop pays a sleep and a wake-up
# for each batch of replies, at most one reply per worker. More workers mean
# more replies per wake-up. This measures that: --workers 1, 2, 4 and 8 at 32
# connections, with wrk on one thread and on two, the configurations taking
# turns. Writes bench/results/workers.md. Needs wrk.
set -u
cd "$(dirname "$0")/.." || exit 1
DUR=${1:-4}
ROUNDS=${BENCH_ROUNDS:-3}
PORT=19400
command -v wrk >/dev/null || { echo "workers: wrk is not installed" >&2; exit 2; }
make -s build/smserve-echo build/smserve-default || exit 1

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
printf 'wrk.method = "POST"\nwrk.body = "5.1,3.5,1.4,0.2"\nwrk.headers["Content-Type"] = "text/csv"\nwrk.headers["Accept"] = "text/csv"\n' >"$work/record.lua"

declare -A port
servers=()
for build in echo default; do
	for n in 1 2 4 8; do
		name=$build/$n
		port[$name]=$((PORT++))
		args=(--port "${port[$name]}" --workers "$n" --no-access-log)
		[[ $build == default ]] && args+=(--model-dir models/iris)
		"./build/smserve-$build" "${args[@]}" >"$work/${build}_$n.log" 2>&1 &
		pids+=($!)
		servers+=("$name")
	done
done
for s in "${servers[@]}"; do
	for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:${port[$s]}/ping" && break; sleep 0.05; done
done

rate() { # SERVER THREADS -> requests/s
	wrk -t"$2" -c32 -d"${DUR}s" -s "$work/record.lua" "http://127.0.0.1:${port[$1]}/invocations" 2>&1 |
		awk '/Requests\/sec/ {printf "%d", $2} /Non-2xx|Socket errors/ {print " ERRORS"}'
}

declare -A runs
for ((i = 0; i < ROUNDS; i++)); do
	for t in 1 2; do
		for s in "${servers[@]}"; do runs[$s/$t]+="$(rate "$s" "$t")"$'\n'; done
	done
done
median() { printf '%s' "${runs[$1]}" | sort -n | sed -n "$(((ROUNDS + 1) / 2))p"; }

{
	echo "# One-record invocations against the number of workers"
	echo
	echo "$(date -u +%Y-%m-%d), $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(uname -sr)."
	echo "32 connections, ${DUR} s per run, median of $ROUNDS runs (the configurations taking turns);"
	echo "\`make\`'s build (glibc, -O2), CSV answers. Command: \`$([[ $ROUNDS != 3 ]] && echo "BENCH_ROUNDS=$ROUNDS ")bash bench/workers.sh\`."
	echo
	echo "| plug-in | workers | req/s, wrk -t1 | req/s, wrk -t2 |"
	echo "|---|---|---|---|"
	for s in "${servers[@]}"; do
		echo "| ${s%/*} | ${s#*/} | $(median "$s/1") | $(median "$s/2") |"
	done
} | tee bench/results/workers.md
