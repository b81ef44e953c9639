#!/usr/bin/env bash
# bench/batch.sh - one 1 MB batch on one connection, against the model alone:
# what the trip through the server costs a batch transform request. Issue 20
# asks for at most 1.3 times the model's own time.
#
#   bash bench/batch.sh [BASE [ROUNDS]]
#
# The default model answers the 1 MB CSV batch of bench/iris_batch.py with
# CSV labels:
#   model alone   bench/model_speed.c, the same body answered in one process
#   smserve       one keep-alive connection, one request at a time, --workers 1,
#                 the median of ROUNDS (default 200) requests, client included
#   BASE          the same with smserve.c from git revision BASE (optional),
#                 the two servers taking turns, to judge a change
# Both are built with gcc -O2. Writes bench/results/batch.md.
set -u
cd "$(dirname "$0")/.." || exit 1
BASE=${1:-}
ROUNDS=${2:-200}
PY=/usr/bin/python3
work=$(mktemp -d)
server=
cleanup() { [[ -n $server ]] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

$PY bench/iris_batch.py "$work/batch.csv"
gcc -std=c11 -O2 -o "$work/speed" bench/model_speed.c model.c -lm || exit 1
gcc -std=c11 -O2 -I. -o "$work/new" smserve.c model.c -lm || exit 1
if [[ -n $BASE ]]; then
	git show "$BASE:smserve.c" >"$work/base.c" || exit 1
	gcc -std=c11 -O2 -I. -o "$work/base" "$work/base.c" model.c -lm || exit 1
fi

alone=
for i in 1 2 3 4 5; do
	ms=$("$work/speed" models/iris "$work/batch.csv" text/csv text/csv | awk '{print $1}')
	[[ -z $alone ]] || awk -v a="$ms" -v b="$alone" 'BEGIN {exit !(a < b)}' && alone=$ms
done

# The median milliseconds of one request, over one kept connection.
measure() {
	local bin=$1 port=$2
	"$bin" --port "$port" --model-dir models/iris --workers 1 --no-access-log >/dev/null 2>&1 &
	server=$!
	for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/ping" && break; sleep 0.05; done
	$PY - "$port" "$work/batch.csv" "$ROUNDS" <<'PY'
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
print("%.2f" % statistics.median(times))
PY
	kill "$server"
	wait "$server" 2>/dev/null
	server=
}

new=() base=()
for turn in 1 2 3; do
	new+=("$(measure "$work/new" 19610)")
	[[ -n $BASE ]] && base+=("$(measure "$work/base" 19611)")
done
med() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
n=$(med "${new[@]}")
rows=("| model alone (bench/model_speed.c) | $alone | 1.00 |"
      "| smserve, working tree | $n | $(awk -v a="$n" -v b="$alone" 'BEGIN {printf "%.2f", a / b}') |")
if [[ -n $BASE ]]; then
	b=$(med "${base[@]}")
	rows+=("| smserve at $BASE | $b | $(awk -v a="$b" -v b="$alone" 'BEGIN {printf "%.2f", a / b}') |")
fi
mkdir -p bench/results
{
	echo "# One 1 MB batch on one connection, against the model alone"
	echo
	echo "$(date -u +%Y-%m-%d), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); the default"
	echo "model, CSV in and out, --workers 1, gcc -O2; median of $ROUNDS requests, three turns."
	echo "Command: \`bash bench/batch.sh${BASE:+ $BASE}\`. Goal (issue 20): at most 1.3 times the model alone."
	echo
	echo "| what | ms per request | times the model alone |"
	echo "|---|---|---|"
	printf '%s\n' "${rows[@]}"
} >bench/results/batch.md
cat bench/results/batch.md
