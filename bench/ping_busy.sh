#!/usr/bin/env bash
# bench/ping_busy.sh - /ping latency while every worker is busy in a 5 s
# inference: the figure SageMaker cares about (2 s per ping, REQ-26).
#
# Starts smserve with the fault-injecting test plug-in and 2 workers, puts
# both workers to sleep for 5 s, then times 20 pings on fresh connections
# (curl's time_total) and prints the median and the maximum in ms. Writes
# bench/results/ping_busy.md.
set -u
cd "$(dirname "$0")/.." || exit 1
make -s build/smserve-faulty || exit 1
port=$((10000 + RANDOM % 20000))
./build/smserve-faulty --port "$port" --workers 2 --no-access-log 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/ping" && break; sleep 0.05; done
for _ in 1 2; do
	curl -s -o /dev/null -H 'X-Amzn-SageMaker-Custom-Attributes: sleep 5' -d x "http://127.0.0.1:$port/invocations" &
done
sleep 0.5
times=$(for _ in $(seq 20); do
	curl -s -o /dev/null -w '%{http_code} %{time_total}\n' "http://127.0.0.1:$port/ping"
done)
codes=$(awk '{print $1}' <<<"$times" | sort -u | tr '\n' ' ')
read -r median max < <(awk '{print $2 * 1000}' <<<"$times" | sort -n |
	awk '{a[NR] = $1} END {printf "%.2f %.2f\n", (a[10] + a[11]) / 2, a[NR]}')
wait %2 %3 2>/dev/null
mkdir -p bench/results
{
	echo "# /ping while every worker is busy"
	echo
	echo "$(date -u +%Y-%m-%d), $(nproc) CPUs, \`bash bench/ping_busy.sh\`: 2 workers each in a 5 s inference,"
	echo "20 pings on fresh connections (curl time_total, connect included)."
	echo
	echo "| statuses | median | max |"
	echo "|---|---|---|"
	echo "| $codes| $median ms | $max ms |"
} >bench/results/ping_busy.md
cat bench/results/ping_busy.md
