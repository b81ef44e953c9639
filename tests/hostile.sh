#!/usr/bin/env bash
# test-binary: faulty
# tests/hostile.sh - clients that try to wear the server down: slowloris and
# idle keep-alive floods, a reader that takes a byte a second, more
# connections than the process may open (ulimit -n: each extra one takes the
# place of the longest idle; refused with a 503 only when every client is
# busy), resets and half-closes at every stage, 1,000 pipelined requests
# written before reading, and bodies that never end. After each,
# the server must still answer. How fast it answers meanwhile is measured
# by bench/latency.sh, not asserted here: the time bounds below only tell
# an answer from a hang, or a free worker from a held one.
#
#   SMSERVE=./build/smserve-faulty bash tests/hostile.sh    (or: bash test.sh hostile)
#
# Runs against $SMSERVE built with tests/plugins/faulty.c (make
# build/smserve-faulty or build/asan-faulty). The socket-heavy clients are
# /usr/bin/python3 (standard library only); each prints "ok NAME" or
# "fail NAME (DETAIL)" lines that become this script's checks.
set -u
cd "$(dirname "$0")/.." || exit 1
export LC_ALL=C
SMSERVE=${SMSERVE:-./build/smserve-faulty}
source tests/lib.sh
PY=/usr/bin/python3


# The python helpers every client below starts with.
PY_LIB='
import socket, sys, time, threading, struct, select
ADDR = ("127.0.0.1", int(sys.argv[1]))
def check(name, cond, detail=""):
    print(("ok " if cond else "fail ") + name + ("" if cond else " (%s)" % (detail,)), flush=True)
class Conn:
    """A client connection that keeps bytes past one response for the next."""
    def __init__(self, timeout=5, rcvbuf=None):
        self.s = socket.socket()
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(timeout)
        self.s.connect(ADDR)
        self.buf = b""
    def send(self, b):
        self.s.sendall(b)
    def recv_more(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError
        self.buf += d
    def response(self):
        while b"\r\n\r\n" not in self.buf:
            self.recv_more()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for l in lines[1:]:
            k, _, v = l.partition(b":")
            hdrs[k.strip().lower().decode()] = v.strip().decode()
        if status < 200:
            return self.response()
        if hdrs.get("transfer-encoding") == "chunked":   # a streamed answer
            return status, hdrs, self.chunked_body()
        n = int(hdrs.get("content-length", "0"))
        while len(self.buf) < n:
            self.recv_more()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, hdrs, body
    def chunked_body(self):
        body = b""
        while True:
            while b"\r\n" not in self.buf:
                self.recv_more()
            line, _, self.buf = self.buf.partition(b"\r\n")
            n = int(line, 16)
            while len(self.buf) < n + 2:
                self.recv_more()
            body, self.buf = body + self.buf[:n], self.buf[n + 2:]
            if n == 0:
                return body
    def eof_within(self, t):
        """True if the server closes (EOF or reset) within t seconds."""
        self.s.settimeout(t)
        try:
            while True:
                if not self.s.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False
    def reset(self):
        """Close with RST instead of FIN."""
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.s.close()
    def close(self):
        self.s.close()
def ping_time():
    """A GET /ping on a fresh connection: (status, seconds, connect included)."""
    t = time.perf_counter()
    c = Conn()
    c.send(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    st = c.response()[0]
    dt = time.perf_counter() - t
    c.close()
    return st, dt
def invoke(body, attrs=None, timeout=5):
    c = Conn(timeout)
    extra = b"X-Amzn-SageMaker-Custom-Attributes: " + attrs.encode() + b"\r\n" if attrs else b""
    c.send(b"POST /invocations HTTP/1.1\r\nHost: x\r\n" + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    r = c.response()
    c.close()
    return r
'

# ---- slowloris: 500 heads trickling a byte every 2 s, 300 idle keep-alives ----
test_slowloris() {
	local out rc
	start_server slowloris --workers 2 --header-timeout 3 --idle-timeout 60 --no-access-log || return
	out=$("$PY" - "$PORT" 3 <<PY
$PY_LIB
HEADER_TIMEOUT = float(sys.argv[2])
N_SLOW, N_IDLE = 500, 300
idle = []
for i in range(N_IDLE):
    c = Conn()
    c.send(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    idle.append(c if c.response()[0] == 200 else None)
check("slowloris: 300 keep-alive connections answered once, then left idle", all(idle))
head = b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 4000
slow = []
for i in range(N_SLOW):
    c = Conn()
    c.send(head[:1])
    c.first, c.sent, c.got, c.t408, c.eof = time.monotonic(), 1, b"", None, None
    c.s.setblocking(False)
    slow.append(c)
start = time.monotonic()
next_tick, pings, bad_pings = start + 2, [], 0
while time.monotonic() < start + HEADER_TIMEOUT + 4:
    now = time.monotonic()
    if now >= next_tick:                # one more header byte on each, every 2 s
        next_tick += 2
        for c in slow:
            if c.eof is None:
                try:
                    c.s.send(head[c.sent:c.sent + 1]); c.sent += 1
                except OSError:
                    pass
    st, dt = ping_time()                # a fresh client, meanwhile
    pings.append(dt)
    bad_pings += st != 200
    r, _, _ = select.select([c.s for c in slow if c.eof is None], [], [], 0.05)
    for c in slow:
        if c.s in r:
            try:
                d = c.s.recv(4096)
            except ConnectionResetError:
                d = b""
            if d and c.t408 is None and (c.got + d).startswith(b"HTTP/1.1 408"):
                c.t408 = time.monotonic()
            c.got += d
            if not d:
                c.eof = time.monotonic()
got408 = sum(1 for c in slow if c.got.startswith(b"HTTP/1.1 408 "))
closed = sum(1 for c in slow if c.eof is not None)
early = sum(1 for c in slow if c.t408 and c.t408 - c.first < HEADER_TIMEOUT - 0.2)
late = max((c.t408 - c.first for c in slow if c.t408), default=99)
print("slow heads: %d got 408, %d closed; 408 at most %.2f s after the first byte" % (got408, closed, late))
check("slowloris: each of the 500 slow heads gets 408 once --header-timeout passes", got408 == N_SLOW, "%d of %d" % (got408, N_SLOW))
check("slowloris: and is closed", closed == N_SLOW, "%d of %d" % (closed, N_SLOW))
check("slowloris: no 408 before the timeout, none more than 2.5 s after it", early == 0 and late < HEADER_TIMEOUT + 2.5, "early %d, latest %.2f s" % (early, late))
# Each fresh /ping has 5 s (the Conn timeout) to answer: this tells served
# from starved; bench/latency.sh measures how fast.
check("slowloris: fresh /ping all 200 (%d of them)" % len(pings), bad_pings == 0 and len(pings) >= 20, "%d failed" % bad_pings)
ok_idle = 0
for c in idle:
    try:
        c.send(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        ok_idle += c.response()[0] == 200
    except (OSError, EOFError):
        pass
check("slowloris: the 300 idle keep-alive connections are still open and served", ok_idle == N_IDLE, "%d of %d" % (ok_idle, N_IDLE))
PY
)
	rc=$?
	report slowloris "$out" "$rc"
	still_serving slowloris 2
	stop_server slowloris
}

# ---- slow reader: a 5 MB response read a byte a second ----
test_slow_reader() {
	local out rc
	# --body-timeout 6: a worker held by the slow reader would keep the
	# others waiting until the reader is dropped, over 5 s.
	start_server slowread --workers 1 --body-timeout 6 || return
	out=$("$PY" - "$PORT" 6 <<PY
$PY_LIB
BODY_TIMEOUT = float(sys.argv[2])
SIZE = 5000000
c = Conn(rcvbuf=4096)
c.send(b"POST /invocations HTTP/1.1\r\nHost: x\r\nX-Amzn-SageMaker-Custom-Attributes: big %d\r\nContent-Length: 1\r\n\r\nx" % SIZE)
got = c.s.recv(1)
times, statuses = [], []
def others():
    time.sleep(0.5)
    for i in range(10):
        t = time.perf_counter()
        st, _, body = invoke(b"other-%d" % i)
        times.append(time.perf_counter() - t)
        statuses.append((st, body == b"other-%d" % i))
        st, dt = ping_time()
        times.append(dt)
        statuses.append((st, True))
th = threading.Thread(target=others)
th.start()
t0 = time.monotonic()
while time.monotonic() - t0 < BODY_TIMEOUT + 4:   # a byte a second
    time.sleep(1)
    try:
        got += c.s.recv(1)
    except OSError:
        break
th.join()
check("slow reader: 10 invocations and 10 pings from others all answered", statuses == [(200, True)] * 20, statuses)
check("slow reader: holds no worker (with --workers 1, each other request under 3 s, not the 5 s it would wait)", max(times) < 3, "max %.2f s" % max(times))
c.s.settimeout(5)
total, closed = len(got), False
try:
    while True:
        d = c.s.recv(1 << 20)
        if not d:
            closed = True
            break
        total += len(d)
except ConnectionResetError:
    closed = True
except socket.timeout:
    pass
print("the stalled reader got %d of %d bytes before the server let it go" % (total, SIZE + 100))
check("slow reader: dropped once no write progress for --body-timeout (closed, response cut short)", closed and total < SIZE, "closed %s, %d bytes" % (closed, total))
PY
)
	rc=$?
	report slow-reader "$out" "$rc"
	still_serving slow-reader 1
	stop_server slowread
}

# ---- more connections than the file limit (ulimit -n 64) ----
test_file_limit() {
	local out rc real=$SMSERVE
	cat >"$TEST_TMP/limited" <<EOF
#!/usr/bin/env bash
ulimit -n 64 || exit 97
exec "$real" "\$@"
EOF
	chmod +x "$TEST_TMP/limited"
	SMSERVE=$TEST_TMP/limited start_server fdlimit --workers 2 --timeout 3 || return
	expect "ulimit -n 64 applies to the server" 64 "$(awk '/Max open files/ {print $4}' "/proc/$SERVER_PID/limits")"
	out=$("$PY" - "$PORT" <<PY
$PY_LIB
def gone(c):
    """Whether the server closed c: (closed, bytes it sent first)."""
    r, _, _ = select.select([c.s], [], [], 0)
    if not r:
        return False, b""
    try:
        return True, c.s.recv(4096)
    except ConnectionResetError:
        return True, b""
conns = [Conn(timeout=3) for i in range(100)]
time.sleep(0.5)
closed = [gone(c) for c in conns]
kept = [c for c, (g, _) in zip(conns, closed) if not g]
n_gone = sum(g for g, _ in closed)
print("100 connections under ulimit -n 64: %d kept, %d displaced by later ones" % (len(kept), n_gone))
# Each connection past the table takes the place of the one idle longest:
# the first ones opened go, closed without a word (they were idle).
check("file limit: of 100 idle connections the oldest make room for the newest", n_gone >= 30 and all(g for g, _ in closed[:n_gone]) and kept == conns[n_gone:], "kept %d gone %d" % (len(kept), n_gone))
check("file limit: an idle connection displaced is closed with no response", not any(d for _, d in closed), [d[:30] for _, d in closed if d][:3])
served = 0
for c in kept:
    try:
        c.send(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        served += c.response()[0] == 200
    except (OSError, EOFError) as e:
        pass
check("file limit: every kept connection is served (%d)" % len(kept), served == len(kept) and served >= 20, "%d of %d" % (served, len(kept)))
# A worker dies while the descriptor table is full: its client gets a 500,
# and the worker is replaced at once (descriptors are kept for it).
c = kept.pop()
c.send(b"POST /invocations HTTP/1.1\r\nHost: x\r\nX-Amzn-SageMaker-Custom-Attributes: crash\r\nContent-Length: 1\r\n\r\nx")
st = c.response()[0]
check("file limit: a worker crash at the limit still gets its 500", st == 500, st)
c.send(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nnext")
r = c.response()
check("file limit: and the replaced worker answers the next request", r[0] == 200 and r[2] == b"next", r[:3:2])
c.close()
for c in kept:
    c.close()
time.sleep(0.5)
# A table full of clients whose requests wait for a worker (the two workers
# hang, --timeout 3): nobody can be displaced, so a newcomer gets a 503.
POST = b"POST /invocations HTTP/1.1\r\nHost: x\r\nX-Amzn-SageMaker-Custom-Attributes: %s\r\nContent-Length: 1\r\n\r\nx"
busy = []
for i in range(50):
    c = Conn(timeout=8)
    c.send(POST % (b"hang" if i < 2 else b"queued"))
    busy.append(c)
    time.sleep(0.005)
time.sleep(0.5)
# It sent its request at once: that is read before the close, so the 503
# ends the stream rather than a reset destroying it (RFC 9112 9.6).
n = Conn(timeout=3)
n.send(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
d, end = b"", "none"
try:
    while True:
        x = n.s.recv(4096)
        if not x:
            end = "eof"
            break
        d += x
except ConnectionResetError:
    end = "reset"
except socket.timeout:
    end = "timeout"
check("file limit: with every client's request waiting for a worker, a newcomer gets a 503, then the end of the stream", d.startswith(b"HTTP/1.1 503 ") and b"too many connections" in d and end == "eof", (d[:40], end))
n.close()
statuses = []
for c in busy:
    try:
        statuses.append(c.response()[0])
    except (OSError, EOFError):
        statuses.append(None)
print("the 50 busy clients: %s" % sorted((s, statuses.count(s)) for s in set(statuses) if s))
check("file limit: the hung ones get 504 once --timeout passes, the rest an answer (200, or 503 if past the table or --timeout)",
      statuses[:2] == [504, 504] and all(s in (200, 503) for s in statuses[2:]), statuses)
for c in busy:
    c.close()
time.sleep(0.5)
st, dt = ping_time()
check("file limit: recovers once they go (/ping 200)", st == 200, st)
fresh = [Conn(timeout=3) for i in range(40)]
ok = 0
for c in fresh:
    c.send(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
    ok += c.response()[:3:2] == (200, b"ok")
check("file limit: then 40 new connections are all served", ok == 40, "served %d" % ok)
for c in fresh:
    c.close()
PY
)
	rc=$?
	report file-limit "$out" "$rc"
	sleep 0.5
	still_serving file-limit 2
	stop_server fdlimit
}

# ---- resets and half-closes mid-head, mid-body, mid-response ----
test_resets() {
	local out rc
	start_server resets --workers 2 --body-timeout 5 || return
	out=$("$PY" - "$PORT" <<PY
$PY_LIB
POST = b"POST /invocations HTTP/1.1\r\nHost: x\r\n"
def alive(what):
    st, dt = ping_time()
    check("after %s: /ping 200" % what, st == 200, st)

c = Conn(); c.send(b"GET /ping HTTP/1.1\r\nHo"); c.reset(); alive("a reset mid-head")
c = Conn(); c.send(b"GET /ping HTTP/1.1\r\nHo"); c.s.shutdown(socket.SHUT_WR)
check("half-close mid-head: the server closes too", c.eof_within(3)); c.close()
c = Conn(); c.send(POST + b"Content-Length: 1000\r\n\r\n" + b"b" * 100); c.reset(); alive("a reset mid-body")
c = Conn(); c.send(POST + b"Content-Length: 1000\r\n\r\n" + b"b" * 100); c.s.shutdown(socket.SHUT_WR)
check("half-close mid-body: the server closes too", c.eof_within(3)); c.close()
c = Conn(); c.send(POST + b"Transfer-Encoding: chunked\r\n\r\n64\r\n" + b"c" * 50); c.reset(); alive("a reset mid-chunk")
c = Conn(); c.send(POST + b"Content-Length: 4\r\nExpect: 100-continue\r\n\r\n")
check("100-continue sent before the body", c.s.recv(100).startswith(b"HTTP/1.1 100 Continue")); c.reset(); alive("a reset after 100 Continue")

# The request is complete and the client half-closes: it still gets the answer.
c = Conn(); c.send(POST + b"Content-Length: 4\r\n\r\nhalf"); c.s.shutdown(socket.SHUT_WR)
r = c.response()
check("request then half-close: the answer still comes, then the close", r[0] == 200 and r[2] == b"half" and c.eof_within(3), r); c.close()
c = Conn(); c.send(POST + b"X-Amzn-SageMaker-Custom-Attributes: sleep 1\r\nContent-Length: 5\r\n\r\nslept"); c.s.shutdown(socket.SHUT_WR)
r = c.response()
check("half-close while the model runs: the answer still comes", r[0] == 200 and r[2] == b"slept", r); c.close()

# Reset while the model runs: its worker is stopped and replaced (faults.sh
# test_client_gone), and the server goes on.
c = Conn(); c.send(POST + b"X-Amzn-SageMaker-Custom-Attributes: sleep 1\r\nContent-Length: 1\r\n\r\nx"); time.sleep(0.2); c.reset()
time.sleep(1.2); alive("a reset while the model runs")
st, _, body = invoke(b"next")
check("after a reset while the model runs: the next invocation is answered", (st, body) == (200, b"next"), (st, body))

# Mid-response: 5 MB, reset after 64 kB; 2 MB, half-close after 64 kB.
c = Conn(); c.send(POST + b"X-Amzn-SageMaker-Custom-Attributes: big 5000000\r\nContent-Length: 1\r\n\r\nx")
n = 0
while n < 65536:
    n += len(c.s.recv(65536))
c.reset(); alive("a reset mid-response")
c = Conn(); c.send(POST + b"X-Amzn-SageMaker-Custom-Attributes: big 2000000\r\nContent-Length: 1\r\n\r\nx")
c.recv_more(); c.s.shutdown(socket.SHUT_WR)
r = c.response()
check("half-close mid-response: the rest of the 2 MB still arrives", r[0] == 200 and len(r[2]) == 2000000, (r[0], len(r[2])))
c.close()

# Pipelined requests, then a reset before reading any answer.
c = Conn(); c.send((POST + b"Content-Length: 1\r\n\r\np") * 20 + b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"); c.reset(); alive("a reset with 21 requests pipelined")

# 300 connections cut at every point of a request, with RST or FIN.
req = POST + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5;e=1\r\nworld\r\n0\r\nT: v\r\n\r\n"
for i in range(300):
    c = Conn()
    c.send(req[:i % len(req)])
    if i % 2:
        c.reset()
    else:
        c.s.shutdown(socket.SHUT_WR); c.close()
time.sleep(0.5)
alive("300 connections cut at every byte of a chunked request")
st, _, body = invoke(b"still")
check("and invocations are still answered", (st, body) == (200, b"still"), (st, body))
PY
)
	rc=$?
	report resets "$out" "$rc"
	still_serving resets 2
	# Workers end only when a reset stops the request they run: one SIGKILL each.
	expect "resets: no worker crashed; each worker that ended was stopped for a client gone" \
		"0 $(grep -c 'client gone, stopping its request' "$SERVER_LOG")" \
		"$(grep -c 'crashed' "$SERVER_LOG") $(grep -c 'ended by signal' "$SERVER_LOG")"
	stop_server resets
}

# ---- 1,000 requests pipelined without reading ----
test_pipeline() {
	local out rc
	start_server pipeline --workers 2 --no-access-log || return
	out=$("$PY" - "$PORT" <<PY
$PY_LIB
reqs, want = [], []
for i in range(1000):
    if i % 10 == 9:
        reqs.append(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"); want.append((200, b""))
    elif i % 10 == 4:
        b = b"chunked-%04d" % i
        reqs.append(b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(b), b))
        want.append((200, b))
    else:
        b = b"r%04d" % i
        reqs.append(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(b), b))
        want.append((200, b))
data = b"".join(reqs)
c = Conn(timeout=20)
w = threading.Thread(target=c.send, args=(data,))
t = time.monotonic()
w.start()
w.join(10)
print("%d bytes of requests written in %.2f s without reading" % (len(data), time.monotonic() - t))
check("pipeline: 1,000 requests (%d kB) are all written before reading any answer" % (len(data) // 1000), not w.is_alive())
got = []
for i in range(1000):
    st, h, body = c.response()
    got.append((st, body))
w.join()
check("pipeline: then 1,000 answers, in order, each body its own", got == want, next(((i, g, e) for i, (g, e) in enumerate(zip(got, want)) if g != e), None))
c.send(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
check("pipeline: and the connection is still usable", c.response()[0] == 200)
PY
)
	rc=$?
	report pipeline "$out" "$rc"
	stop_server pipeline
}

# ---- bodies that never end ----
test_endless_bodies() {
	local out rc
	# --min-body-rate 0: the trickles below may go on for as long as they make
	# progress (tests/table.sh shows the minimum rate cutting them off).
	start_server endless --workers 1 --max-body-mb 1 --body-timeout 2 --max-buffered-mb 8 \
		--min-body-rate 0 || return
	out=$("$PY" - "$PORT" 2 <<PY
$PY_LIB
BODY_TIMEOUT = float(sys.argv[2])
LIMIT = 1 << 20
# A chunked stream that keeps sending 1 kB chunks, each far below the limit.
c = Conn()
c.send(b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
sent, t = 0, time.monotonic()
chunk = b"400\r\n" + b"e" * 1024 + b"\r\n"
c.s.setblocking(False)
while time.monotonic() - t < 10:
    r, w, _ = select.select([c.s], [c.s], [], 1)
    if r:
        break
    if w:
        try:
            sent += c.s.send(chunk[(sent % len(chunk)):])
        except (BlockingIOError, BrokenPipeError, ConnectionResetError):
            pass
c.s.setblocking(True); c.s.settimeout(5)
try:
    r = c.response()
except (OSError, EOFError) as e:
    r = (str(e), {}, b"")
payload = sent // len(chunk) * 1024
print("endless chunked stream: answered %s after %d payload bytes, %.2f s" % (r[0], payload, time.monotonic() - t))
check("endless chunked body: 413 once it passes --max-body-mb, and the close", r[0] == 413 and r[1].get("connection") == "close" and c.eof_within(4), r[:2])
check("endless chunked body: stopped near the limit, not before it", LIMIT <= payload < LIMIT + 4 * 1024 * 1024, payload)
c.close()

# Bodies that trickle a byte every half second, below the limit: chunked and
# Content-Length, side by side. They make progress, so --body-timeout (the
# time allowed between two reads) does not end them; they hold no worker.
def trickle(c, piece, n):
    for i in range(n):
        time.sleep(0.5)
        c.send(piece)
        c.last = time.monotonic()
cl = Conn(); cl.send(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
ch = Conn(); ch.send(b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
ths = [threading.Thread(target=trickle, args=(cl, b"t", 10)), threading.Thread(target=trickle, args=(ch, b"1\r\nt\r\n", 10))]
for th in ths:
    th.start()
time.sleep(1)
times = []
for i in range(5):
    t = time.perf_counter()
    st, _, body = invoke(b"beside-%d" % i)
    times.append((st, body == b"beside-%d" % i, time.perf_counter() - t < 3))
# A worker held by a trickled body would make them wait for its 408, 6 s on.
check("trickled bodies hold no worker: 5 invocations beside them answered, each under 3 s (--workers 1)", times == [(200, True, True)] * 5, times)
for th in ths:
    th.join()
check("a Content-Length body trickled for 5 s (beyond --body-timeout 2 s) is still being read", not cl.eof_within(0.1))
check("a chunked body trickled for 5 s is still being read", not ch.eof_within(0.1))
for name, c in (("Content-Length", cl), ("chunked", ch)):
    c.s.settimeout(BODY_TIMEOUT + 4)
    try:
        r = c.response()
    except (OSError, EOFError) as e:
        r = (str(e), {}, b"")
    dt = time.monotonic() - c.last
    check("a trickled %s body that stops: 408 --body-timeout after its last byte, then the close" % name, r[0] == 408 and BODY_TIMEOUT - 0.2 < dt < BODY_TIMEOUT + 2.5 and c.eof_within(3), (r[0], round(dt, 2)))
    c.close()

# A Content-Length body's buffer grows as the body arrives, so heads that
# claim 1 MiB and send a byte hold a few kB of --max-buffered-mb, not 1 MiB
# each: they cannot lock everyone else out of the budget.
hogs = []
for i in range(8):
    h = Conn(); h.send(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\nx" % LIMIT)
    hogs.append(h)
time.sleep(0.3)
st, _, _ = invoke(b"v" * 500000)
check("8 heads claiming 1 MiB bodies that never come do not lock a 500 kB body out of --max-buffered-mb 8", st == 200, "got %s" % st)
for h in hogs:
    h.close()
time.sleep(0.3)
st, _, body = invoke(b"w" * 500000)
check("and once those clients go, bodies still fit", st == 200 and len(body) == 500000, st)
PY
)
	rc=$?
	report endless "$out" "$rc"
	still_serving endless 1
	stop_server endless
}

if ! "$PY" -c '' 2>/dev/null; then
	echo "# SKIP: no /usr/bin/python3 for the hostile clients"
	finish
	exit
fi
test_slowloris
test_slow_reader
test_file_limit
test_resets
test_pipeline
test_endless_bodies
finish
