#!/usr/bin/env bash
# bench/latency.sh - how fast others are served while hostile clients hold
# connections: the figures tests/hostile.sh used to assert, measured here
# instead (a test on a shared 2-core machine cannot hold a server to
# milliseconds; a benchmark reports them). Part of `make bench`; alone:
#
#   bash bench/latency.sh          (builds build/smserve-faulty if needed)
#   SMSERVE=./build/asan-faulty bash bench/latency.sh
#
# Three scenes, each on a fresh server with the faulty test plug-in:
#   1. slowloris: 300 idle keep-alive connections and 500 heads trickling a
#      byte every 2 s; a fresh client's GET /ping, connect included, for
#      6 s. Goal: p95 under 50 ms, max under 250 ms.
#   2. a slow reader: a 5 MB answer read a byte a second, --workers 1;
#      10 invocations and 10 pings from others. Goal: each under 0.5 s.
#   3. two bodies trickled a byte every 0.5 s, --workers 1; 5 invocations
#      beside them. Goal: each under 0.5 s.
# Prints median, p95 and max in ms, and whether each goal is met. Exits 0
# whatever the figures (1 only if a scene could not run).
set -u
cd "$(dirname "$0")/.." || exit 1
if [[ -z ${SMSERVE:-} ]]; then
	make -s build/smserve-faulty || exit 1
	SMSERVE=./build/smserve-faulty
fi
source tests/lib.sh
PY=/usr/bin/python3

# The client side of every scene: ADDR, a fresh-connection request timer and
# the summary line.
PY_LIB='
import socket, sys, threading, time
ADDR = ("127.0.0.1", int(sys.argv[1]))
def request(raw, timeout=10):
    """Sends raw on a fresh connection, reads one response (Content-Length
    framed); returns (status, seconds, connect included)."""
    t = time.perf_counter()
    s = socket.create_connection(ADDR, timeout=timeout)
    s.sendall(raw)
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, _, body = buf.partition(b"\r\n\r\n")
    n = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
    while len(body) < n:
        body += s.recv(65536)
    s.close()
    return int(head.split()[1]), time.perf_counter() - t
PING = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"
def invocation(body):
    return b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
def show(name, times, goal_p95, goal_max, bad):
    xs = sorted(times)
    p = lambda q: xs[min(len(xs) - 1, int(len(xs) * q))] * 1e3
    met = p(.95) < goal_p95 * 1e3 and xs[-1] < goal_max
    print("%-34s %5d requests  median %7.2f ms  p95 %7.2f ms  max %7.2f ms  %s  goal (p95 < %g ms, max < %g ms): %s"
          % (name, len(xs), p(.5), p(.95), xs[-1] * 1e3, "%d not 200" % bad if bad else "all 200",
             goal_p95 * 1e3, goal_max * 1e3, "met" if met else "MISSED"))
'

scene_slowloris() {
	start_server slowloris --workers 2 --header-timeout 10 --idle-timeout 60 --no-access-log || return 1
	"$PY" - "$PORT" <<PY
$PY_LIB
idle = []
for i in range(300):
    s = socket.create_connection(ADDR, timeout=10)
    s.sendall(PING)
    s.recv(4096)
    idle.append(s)
head = b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 4000
slow = []
for i in range(500):
    s = socket.create_connection(ADDR, timeout=10)
    s.sendall(head[:1])
    slow.append(s)
start, sent, times, bad = time.monotonic(), 1, [], 0
next_tick = start + 2
while time.monotonic() < start + 6:
    if time.monotonic() >= next_tick:
        next_tick += 2
        for s in slow:
            s.sendall(head[sent:sent + 1])
        sent += 1
    st, dt = request(PING)
    times.append(dt)
    bad += st != 200
    time.sleep(0.02)
show("fresh /ping during slowloris", times, 0.05, 0.25, bad)
PY
	local rc=$?
	stop_server slowloris >/dev/null
	return $rc
}

scene_slow_reader() {
	start_server slowread --workers 1 --body-timeout 30 --no-access-log || return 1
	"$PY" - "$PORT" <<PY
$PY_LIB
c = socket.socket()
c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
c.connect(ADDR)
c.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nX-Amzn-SageMaker-Custom-Attributes: big 5000000\r\nContent-Length: 1\r\n\r\nx")
c.recv(1)
time.sleep(0.5)
times, bad = [], 0
for i in range(10):
    for raw in (invocation(b"other-%d" % i), PING):
        st, dt = request(raw)
        times.append(dt)
        bad += st != 200
show("others beside a slow reader", times, 0.5, 0.5, bad)
c.close()
PY
	local rc=$?
	stop_server slowread >/dev/null
	return $rc
}

scene_trickled_bodies() {
	start_server trickle --workers 1 --body-timeout 30 --no-access-log || return 1
	"$PY" - "$PORT" <<PY
$PY_LIB
cl = socket.create_connection(ADDR); cl.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
ch = socket.create_connection(ADDR); ch.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
def trickle():
    for i in range(8):
        time.sleep(0.5)
        cl.sendall(b"t"); ch.sendall(b"1\r\nt\r\n")
th = threading.Thread(target=trickle)
th.start()
time.sleep(1)
times, bad = [], 0
for i in range(5):
    st, dt = request(invocation(b"beside-%d" % i))
    times.append(dt)
    bad += st != 200
th.join()
show("invocations beside trickled bodies", times, 0.5, 0.5, bad)
PY
	local rc=$?
	stop_server trickle >/dev/null
	return $rc
}

if ! "$PY" -c '' 2>/dev/null; then
	echo "bench/latency.sh: needs /usr/bin/python3" >&2
	exit 1
fi
echo "latency of others while hostile clients hold connections ($SMSERVE, $(nproc) CPUs)"
failed=0
scene_slowloris || failed=1
scene_slow_reader || failed=1
scene_trickled_bodies || failed=1
for pid in "${SERVER_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
exit "$failed"
