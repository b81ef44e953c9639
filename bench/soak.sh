#!/usr/bin/env bash
# bench/soak.sh [MINUTES] - a long run under load, looking for leaks and
# errors. Not part of CI: `bash bench/soak.sh` runs 10 minutes, `bash
# bench/soak.sh 1` a quick one.
#
# Serves the default model (models/iris) with one worker per CPU, and drives
# it with wrk at 64 connections over 2 threads, alternating GET /ping and a
# two-record CSV POST /invocations on keep-alive connections. Every 10 s it
# samples the resident set (VmRSS) of every smserve process: the loop and
# each worker.
#
# Passes when wrk saw no non-2xx answer and no socket error, no worker was
# replaced, and no process grew after the warm-up: growth is the largest
# sample after the warm-up minus the sample at its end, and must be at most
# 64 KiB for each process. The warm-up is the first minute (half the run
# when the run is shorter than 2 minutes). Writes bench/results/soak.md.
set -u
cd "$(dirname "$0")/.." || exit 1
minutes=${1:-10}
[[ $minutes =~ ^[0-9]+$ && $minutes -ge 1 ]] || { echo "usage: bench/soak.sh [MINUTES]" >&2; exit 2; }
command -v wrk >/dev/null || { echo "soak: wrk is not installed (apt-get install wrk)" >&2; exit 2; }
make -s build/smserve-default || exit 1

duration=$((minutes * 60))
warmup=$((duration >= 120 ? 60 : duration / 2))
growth_limit=64    # KiB
tmp=$(mktemp -d)
port=$((10000 + RANDOM % 20000))
./build/smserve-default --port "$port" --model-dir models/iris >/dev/null 2>"$tmp/server.err" &
pid=$!
wrk_pid=
cleanup() {
	[[ -n $wrk_pid ]] && kill "$wrk_pid" 2>/dev/null
	kill "$pid" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/ping" && break; sleep 0.05; done
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ping") == 200 ]] ||
	{ echo "soak: the server did not start: $(cat "$tmp/server.err")" >&2; exit 1; }
workers=$(pgrep -P "$pid" | sort -n | tr '\n' ' ')

cat >"$tmp/mix.lua" <<'LUA'
-- Alternates GET /ping and POST /invocations; counts non-2xx per thread.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  n, bad = 0, 0
  ping = wrk.format("GET", "/ping")
  inv = wrk.format("POST", "/invocations",
    { ["Content-Type"] = "text/csv", ["Accept"] = "application/json" },
    "5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3")
end
function request()
  n = n + 1
  if n % 2 == 0 then return ping end
  return inv
end
function response(status, headers, body)
  if status < 200 or status > 299 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  local e = summary.errors
  io.write(string.format("SOAK non2xx=%d requests=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
    b, summary.requests, e.connect, e.read, e.write, e.status, e.timeout))
  io.write(string.format("SOAK p50=%.2f p99=%.2f max=%.2f\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
LUA

rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
sample() {   # t, then the loop's and each worker's RSS in KiB
	local line="$1 $(rss "$pid")" w
	for w in $workers; do line+=" $(rss "$w")"; done
	echo "$line" >>"$tmp/samples"
}

echo "soak: $minutes min, wrk 64 connections, server pid $pid, workers $workers"
wrk -t2 -c64 -d"${duration}s" --timeout 5s --latency -s "$tmp/mix.lua" "http://127.0.0.1:$port/" >"$tmp/wrk.out" 2>&1 &
wrk_pid=$!
start=$SECONDS
sample 0
next=10
while kill -0 "$wrk_pid" 2>/dev/null; do
	if ((SECONDS - start >= next)); then
		sample "$next"
		tail -n 1 "$tmp/samples" | sed 's/^/  rss: /'
		next=$((next + 10))
	fi
	sleep 0.5
done
wait "$wrk_pid"
wrk_rc=$?
wrk_pid=
now_workers=$(pgrep -P "$pid" | sort -n | tr '\n' ' ')

read -r non2xx requests econnect eread ewrite estatus etimeout < <(sed -n 's/^SOAK non2xx=\([0-9]*\) requests=\([0-9]*\) connect=\([0-9]*\) read=\([0-9]*\) write=\([0-9]*\) status=\([0-9]*\) timeout=\([0-9]*\)$/\1 \2 \3 \4 \5 \6 \7/p' "$tmp/wrk.out")
read -r p50 p99 pmax < <(sed -n 's/^SOAK p50=\([0-9.]*\) p99=\([0-9.]*\) max=\([0-9.]*\)$/\1 \2 \3/p' "$tmp/wrk.out")
rate=$(awk '/^Requests\/sec:/ {printf "%d", $2}' "$tmp/wrk.out")
errors=$((${econnect:-1} + ${eread:-1} + ${ewrite:-1} + ${etimeout:-1}))
# Per process: the sample at the end of the warm-up, and the largest after it.
growth=$(awk -v w="$warmup" '
	$1 >= w && !base_set { for (i = 2; i <= NF; i++) base[i] = $i; base_set = 1; n = NF }
	base_set { for (i = 2; i <= NF; i++) if ($i > top[i]) top[i] = $i }
	END { for (i = 2; i <= n; i++) printf "%d ", top[i] - base[i] }' "$tmp/samples")
max_growth=$(tr ' ' '\n' <<<"$growth" | sort -n | tail -n 1)

verdict=PASS
reasons=()
[[ $wrk_rc -eq 0 && -n ${requests:-} ]] || { verdict=FAIL; reasons+=("wrk failed: $(tail -n 3 "$tmp/wrk.out" | tr '\n' ' ')"); }
[[ ${non2xx:-1} -eq 0 && ${estatus:-1} -eq 0 ]] || { verdict=FAIL; reasons+=("non-2xx answers: ${non2xx:-?}"); }
[[ $errors -eq 0 ]] || { verdict=FAIL; reasons+=("socket errors: connect ${econnect:-?} read ${eread:-?} write ${ewrite:-?} timeout ${etimeout:-?}"); }
[[ $now_workers == "$workers" ]] || { verdict=FAIL; reasons+=("workers changed: $workers -> $now_workers"); }
[[ -n $max_growth && $max_growth -le $growth_limit ]] || { verdict=FAIL; reasons+=("RSS grew after the warm-up: $growth KiB"); }
kill -0 "$pid" 2>/dev/null || { verdict=FAIL; reasons+=("the server died: $(tail -n 3 "$tmp/server.err")"); }

mkdir -p bench/results
{
	echo "# Soak: $minutes minutes under wrk"
	echo
	echo "$(date -u +%Y-%m-%d), $(nproc) CPUs, \`bash bench/soak.sh $minutes\`: \`build/smserve-default\` serving"
	echo "models/iris with $(wc -w <<<"$workers") workers; wrk 2 threads, 64 keep-alive connections,"
	echo "alternating \`GET /ping\` and a two-record CSV \`POST /invocations\`. RSS (VmRSS) of every smserve"
	echo "process sampled every 10 s. Growth = largest sample after the ${warmup} s warm-up minus the sample"
	echo "at its end; the limit is $growth_limit KiB per process."
	echo
	echo "| result | value |"
	echo "|---|---|"
	echo "| verdict | **$verdict**${reasons:+ (${reasons[*]})} |"
	echo "| requests | ${requests:-?} (${rate:-?}/s) |"
	echo "| non-2xx answers | ${non2xx:-?} |"
	echo "| socket errors (connect, read, write, timeout) | ${econnect:-?}, ${eread:-?}, ${ewrite:-?}, ${etimeout:-?} |"
	echo "| latency p50 / p99 / max | ${p50:-?} / ${p99:-?} / ${pmax:-?} ms |"
	echo "| workers replaced | $([[ $now_workers == "$workers" ]] && echo none || echo "$workers -> $now_workers") |"
	echo "| RSS growth after warm-up, KiB (loop, workers) | ${growth% } |"
	echo
	echo "RSS samples, KiB:"
	echo
	printf '| t (s) | loop |'
	for w in $workers; do printf ' worker %s |' "$w"; done
	echo
	printf '|---|---|'
	for w in $workers; do printf -- '---|'; done
	echo
	awk '{ printf "|"; for (i = 1; i <= NF; i++) printf " %s |", $i; printf "\n" }' "$tmp/samples"
} >bench/results/soak.md
cat bench/results/soak.md
[[ $verdict == PASS ]]
