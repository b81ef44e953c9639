#!/usr/bin/env bash
# bench/batch.sh - one 1 MB batch on one connection, against the model alone:
# what the trip through the server costs a batch transform request. Issue 20
# asks for at most 1.3 times the model's own time.
#
#   bash bench/batch.sh [BASE [TURNS]]
#
# The default model answers the 1 MB CSV batch of bench/iris_batch.py with
# CSV labels. Each turn measures, one after the other (this machine's speed
# drifts, so a ratio is taken within a turn, never across turns):
#   model alone   bench/model_speed.c, the same body answered 200 times in
#                 one process: its mean time
#   smserve       --workers 1, one keep-alive connection, one request at a
#                 time, from two clients: wrk -t1 -c1 for 3 s (a C client,
#                 as make bench uses; its mean latency) and a Python client
#                 (the median of 200 requests; Python's own receive and
#                 copies are counted as the server's time)
#   BASE          the same with smserve.c from git revision BASE (optional),
#                 to judge a change
# Prints the median over TURNS (default 5) of each time and of each ratio.
# Everything is built with gcc -O2. Writes bench/results/batch.md.
set -u
cd "$(dirname "$0")/.." || exit 1
BASE=${1:-}
TURNS=${2:-5}
PY=/usr/bin/python3
work=$(mktemp -d)
server=
cleanup() { [[ -n $server ]] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
command -v wrk >/dev/null || { echo "bench/batch.sh: wrk not found (apt-get install wrk)" >&2; exit 1; }

$PY bench/iris_batch.py "$work/batch.csv"
gcc -std=c11 -O2 -o "$work/speed" bench/model_speed.c model.c -lm || exit 1
gcc -std=c11 -O2 -I. -o "$work/new" smserve.c model.c -lm || exit 1
builds=(new)
if [[ -n $BASE ]]; then
	git show "$BASE:smserve.c" >"$work/base.c" || exit 1
	gcc -std=c11 -O2 -I. -o "$work/base" "$work/base.c" model.c -lm || exit 1
	builds+=(base)
fi
cat >"$work/batch.lua" <<EOF
wrk.method = "POST"
wrk.body = io.open("$work/batch.csv", "rb"):read("*a")
wrk.headers["Content-Type"] = "text/csv"
wrk.headers["Accept"] = "text/csv"
EOF
cat >"$work/client.py" <<'PY'
import socket, statistics, sys, time
port, path, rounds = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
body = open(path, "rb").read()
req = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nAccept: text/csv\r\n"
       b"Content-Length: %d\r\n\r\n" % len(body)) + body
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
def one():
    s.sendall(req)
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(1 << 20)
    head, _, rest = buf.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(rest) < n:
        rest += s.recv(1 << 20)
times = []
for i in range(rounds + 10):
    t = time.perf_counter()
    one()
    if i >= 10:
        times.append((time.perf_counter() - t) * 1000)
print("%.3f" % statistics.median(times))
PY

# model_alone: the model's mean milliseconds for the batch, in one process.
model_alone() { "$work/speed" models/iris "$work/batch.csv" text/csv text/csv | awk '{print $1}'; }

# through BUILD PORT: "WRK_MS PYTHON_MS" for one request through BUILD.
through() {
	local bin=$work/$1 port=$2 rps
	"$bin" --port "$port" --model-dir models/iris --workers 1 --no-access-log >/dev/null 2>&1 &
	server=$!
	for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/ping" && break; sleep 0.05; done
	rps=$(wrk -t1 -c1 -d3s -s "$work/batch.lua" "http://127.0.0.1:$port/invocations" |
		awk '/^Requests\/sec/ {print $2}')
	printf '%s %s\n' "$(awk -v r="$rps" 'BEGIN {printf "%.3f", 1000 / r}')" \
		"$($PY "$work/client.py" "$port" "$work/batch.csv" 200)"
	kill "$server"
	wait "$server" 2>/dev/null
	server=
}

# Each turn: the model alone, then each build through both clients.
declare -A times        # times[what] = the turn's values, one a line
add() { times[$1]+="$2"$'\n'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
for ((turn = 1; turn <= TURNS; turn++)); do
	alone=$(model_alone)
	add alone "$alone"
	port=19610
	for b in "${builds[@]}"; do
		read -r w p < <(through "$b" "$port")
		add "$b/wrk" "$w"
		add "$b/python" "$p"
		add "$b/wrk/ratio" "$(ratio "$w" "$alone")"
		add "$b/python/ratio" "$(ratio "$p" "$alone")"
		port=$((port + 1))
	done
	echo "turn $turn: model alone $alone ms" >&2
done
med() { sort -n <<<"${times[$1]}" | sed '/^$/d' | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
spread() { sort -n <<<"${times[$1]}" | sed '/^$/d' | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.2f-%.2f", lo, hi}'; }
rows=("| model alone (bench/model_speed.c) | $(med alone) | | 1.00 |")
for b in "${builds[@]}"; do
	name="smserve, working tree"
	[[ $b == base ]] && name="smserve at $BASE"
	for client in wrk python; do
		rows+=("| $name, $client client | $(med "$b/$client") | $(spread "$b/$client/ratio") | **$(printf '%.2f' "$(med "$b/$client/ratio")")** |")
	done
done
mkdir -p bench/results
{
	echo "# One 1 MB batch on one connection, against the model alone"
	echo
	echo "$(date -u +%Y-%m-%d), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); the default"
	echo "model, CSV in and out, --workers 1, gcc -O2; $TURNS turns, each timing the model alone and then"
	echo "the server; medians over the turns. Command: \`bash bench/batch.sh${BASE:+ $BASE}\`."
	echo "Goal (issue 20): at most 1.3 times the model alone."
	echo
	echo "| what | ms per request (median) | times the model alone, each turn | median |"
	echo "|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
} >bench/results/batch.md
cat bench/results/batch.md
