#!/usr/bin/env bash
# test-binary: faulty
# tests/stream.sh - streamed answers (model API 3, model_response_flush):
# answers of every size around the 1 MiB piece, byte for byte, framed with
# Content-Length when they fit one piece unflushed and chunked otherwise
# (close-delimited for HTTP/1.0); the loop's and the worker's memory flat
# under a 100 MB answer; a flushed piece reaching the client before the
# model has finished; an error, crash or hang after a flush (a broken
# stream: no last chunk, or a reset for HTTP/1.0; a log line, the worker
# replaced); --timeout against --stream-timeout; --max-response-mb before
# and after the first piece; X-Amzn-SageMaker-Accept; a client that reads
# nothing; requests pipelined behind chunked answers.
#
#   SMSERVE=./build/smserve-faulty bash tests/stream.sh     (or: bash test.sh stream)
#
# The answers come from tests/plugins/faulty.c's stream commands: byte i of
# a body is i % 251, so every byte of 100 MB is checked as it arrives. The
# clients are /usr/bin/python3 (standard library and tests/rawhttp.py);
# each prints "ok NAME" or "fail NAME (detail)" lines.
set -u
cd "$(dirname "$0")/.." || exit 1
export LC_ALL=C
SMSERVE=${SMSERVE:-./build/smserve-faulty}
source tests/lib.sh
grep -q __asan_init "$SMSERVE" 2>/dev/null && export SANITIZED=1
PY=/usr/bin/python3
MIB=1048576

# serve NAME ARGS...: start_server, a failure to start being a failed check
# (an option the server does not know yet must not pass as a skip).
serve() {
	local name=$1
	start_server "$@" && return 0
	not_ok "$name: the server starts with: ${*:2}" "$(tail -2 "$SERVER_LOG" 2>/dev/null)"
	return 1
}

workers_changed_from() { [[ $(workers) != "$1" ]]; }
log_length() { wc -l <"$SERVER_LOG"; }
# log_since LINES: the log lines after the first LINES.
log_since() { tail -n "+$(($1 + 1))" "$SERVER_LOG"; }

# What every client starts with: argv[1] the port, argv[2] the server pid.
PY_LIB='
import os, re, socket, sys, threading, time
sys.path.insert(0, "tests")
from rawhttp import answer, invocation, PatternCheck
PORT = int(sys.argv[1])
MIB = 1 << 20
def check(name, cond, detail=""):
    print(("ok " if cond else "fail ") + name + ("" if cond else " (%s)" % (detail,)), flush=True)
def connect(timeout=60, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", PORT))
    return s
def shape(a):
    """How an answer came, in one line, for failure details."""
    return "%s, %s, ended %s, %d bytes, chunks %d, headers %s" % (a.line, a.framing, a.ended,
        a.length, len(a.chunks), a.headers)
def still_kept(s, name):
    """A second request on the same connection is answered."""
    s.sendall(invocation(b"", b"again"))
    a = answer(s)
    check(name + ": the connection stays usable (a second request on it answered)",
          (a.status, a.body, a.ended) == (200, b"again", "complete"), shape(a))
def kib(pid, field):
    """VmRSS or VmHWM of a process, in KiB (0 once it is gone)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0
def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []
class Sampler(threading.Thread):
    """Samples VmRSS of some processes every 20 ms until stopped: .peak[pid]."""
    def __init__(self, pids):
        threading.Thread.__init__(self, daemon=True)
        self.pids, self.peak, self.running = pids, {p: kib(p, "VmRSS") for p in pids}, True
    def run(self):
        while self.running:
            for p in self.pids:
                self.peak[p] = max(self.peak[p], kib(p, "VmRSS"))
            time.sleep(0.02)
    def stop(self):
        self.running = False
        self.join()
'

# ---- 1. sizes around the piece, framing, every byte, keep-alive ----
test_sizes() {
	local out
	serve sizes --workers 2 || return
	out=$("$PY" - "$PORT" <<PY
$PY_LIB
# (size, write size): around one piece of 1 MiB, a write spanning pieces,
# writes that do not divide a piece, and 100 MB with no --max-response-mb.
cases = [(0, 4096), (1, 1), (MIB - 1, 7), (MIB, MIB), (MIB + 1, 4096),
         (5000000, 3000000), (10000000, 1000), (100000000, 65536)]
for size, write in cases:
    name = "%d bytes in writes of %d" % (size, write)
    s = connect()
    s.sendall(invocation(b"stream %d %d" % (size, write)))
    sink = PatternCheck()
    a = answer(s, sink)
    check(name + ": 200, every byte right", (a.status, a.ended, a.length, sink.good) ==
          (200, "complete", size, True), "%s, first wrong byte at %s" % (shape(a), sink.bad_at))
    if size <= MIB:
        check(name + ": fits one piece unflushed: Content-Length, not chunked",
              (a.framing, a.headers.get("content-length"), "transfer-encoding" in a.headers) ==
              ("length", str(size), False), shape(a))
    else:
        check(name + ": chunked, no Content-Length", a.framing == "chunked" and
              a.headers.get("transfer-encoding") == "chunked" and "content-length" not in a.headers,
              shape(a))
        check(name + ": valid chunks ending in a bare 0 CRLF CRLF", a.ended == "complete" and
              a.chunks[-1:] == [0] and a.trailer == b"" and 0 not in a.chunks[:-1],
              "%s, trailer %r" % (shape(a), a.trailer))
        check(name + ": chunks of at most a piece (1 MiB)", a.chunks and max(a.chunks) <= MIB,
              "chunks %s" % a.chunks[:10])
        check(name + ": the plug-in's Content-Type on the streamed head",
              a.headers.get("content-type") == "application/octet-stream", shape(a))
        if a.chunks:
            print("%s: %d chunks, the largest %d bytes" % (name, len(a.chunks) - 1, max(a.chunks)))
    check(name + ": no header sent twice", not a.repeated, a.repeated)
    still_kept(s, name)
    s.close()
PY
)
	report sizes "$out" $?
	stop_server sizes
}

# ---- 2. memory flat under a 100 MB answer read at a modest pace ----
test_memory() {
	local out
	serve memory --workers 1 || return
	out=$("$PY" - "$PORT" "$SERVER_PID" <<PY
$PY_LIB
SIZE, BOUND_KIB, PACE = 100000000, 40 << 10, 40e6   # bytes, KiB above the start, bytes/s
loop = int(sys.argv[2])
worker = children(loop)[0]
start = {p: kib(p, "VmRSS") for p in (loop, worker)}
sampler = Sampler([loop, worker])
sampler.start()
s = connect(rcvbuf=256 << 10)
s.sendall(invocation(b"stream %d 65536" % SIZE))
check_bytes, t0 = PatternCheck(), time.monotonic()
def slowly(b):
    check_bytes(b)
    ahead = check_bytes.length / PACE - (time.monotonic() - t0)
    if ahead > 0:
        time.sleep(ahead)
a = answer(s, slowly)
sampler.stop()
check("100 MB read at 40 MB/s: complete, every byte right", (a.ended, a.length, check_bytes.good) ==
      ("complete", SIZE, True), shape(a))
for who, p in (("the loop", loop), ("the worker", worker)):
    grew = sampler.peak[p] - start[p]
    hwm = kib(p, "VmHWM") - start[p]
    if a.ended != "complete" or a.length != SIZE:
        check("100 MB answer: %s's memory measured" % who, False, "no 100 MB answer to measure")
        continue
    print("%s: VmRSS %d KiB at the start, at most %d KiB above it during the answer, VmHWM %d KiB above it after"
          % (who, start[p], grew, hwm))
    if who == "the loop" and os.environ.get("SANITIZED"):
        print("SKIP: the loop's memory (the sanitizer's allocator keeps freed memory in quarantine)")
        continue
    check("100 MB answer: %s's VmRSS stays under 40 MiB above its start" % who, grew < BOUND_KIB,
          "%d KiB above" % grew)
    check("100 MB answer: %s's VmHWM after it is under 40 MiB above the start" % who, hwm < BOUND_KIB,
          "%d KiB above" % hwm)
check("the same worker served it (not a replacement)", children(loop) == [worker], children(loop))
PY
)
	report memory "$out" $?
	stop_server memory
}

# ---- 3. HTTP/1.0: close-delimited, never chunked ----
test_http10() {
	local out
	serve http10 --workers 1 || return
	out=$("$PY" - "$PORT" <<PY
$PY_LIB
for asked in (b"", b"Connection: keep-alive\r\n"):
    name = "HTTP/1.0%s, 10 MB" % (" asking for keep-alive" if asked else "")
    s = connect()
    s.sendall(invocation(b"stream 10000000 65536", b"x", b"HTTP/1.0", asked))
    sink = PatternCheck()
    a = answer(s, sink)
    check(name + ": every byte right, ended by the close", (a.status, a.framing, a.ended, a.length,
          sink.good) == (200, "close", "complete", 10000000, True), shape(a))
    check(name + ": no Content-Length, no Transfer-Encoding, Connection: close",
          "content-length" not in a.headers and "transfer-encoding" not in a.headers and
          a.headers.get("connection", "").lower() == "close", a.headers)
    s.close()
s = connect()
s.sendall(invocation(b"flush-sleep 2 100", b"x", b"HTTP/1.0"))
a = answer(s)
check("HTTP/1.0, two flushed pieces: close-delimited, both there",
      (a.framing, a.ended, len(a.body.splitlines())) == ("close", "complete", 2), shape(a))
s = connect()
s.sendall(invocation(b"stream 1000 100", b"x", b"HTTP/1.0", b"Connection: keep-alive\r\n"))
a = answer(s, PatternCheck())
check("HTTP/1.0 keep-alive, 1000 bytes unflushed: Content-Length as before",
      (a.framing, a.ended, a.headers.get("content-length")) == ("length", "complete", "1000"), shape(a))
still_kept(s, "HTTP/1.0 keep-alive, 1000 bytes")
PY
)
	report http10 "$out" $?
	stop_server http10
}

# ---- 4. a flushed piece reaches the client before the model finishes ----
test_flush() {
	local out
	serve flush --workers 1 || return
	out=$("$PY" - "$PORT" <<PY
$PY_LIB
s = connect()
s.sendall(invocation(b"tagged flush-sleep 3 1000"))
arrivals = []
a = answer(s, lambda b: arrivals.append((time.monotonic() * 1e6, b)))
a.body = b"".join(b for t, b in arrivals)
lines = a.body.decode().splitlines()
pieces = [re.fullmatch(r"piece (\d) of 3 written at (\d+) us", l) for l in lines]
check("flush-sleep 3: 200 chunked, the three pieces whole", a.status == 200 and a.framing == "chunked"
      and a.ended == "complete" and len(pieces) == 3 and all(pieces) and
      [int(p.group(1)) for p in pieces] == [0, 1, 2], "%s %r" % (shape(a), a.body[:300]))
if len(pieces) == 3 and all(pieces):
    first_at, first = arrivals[0]
    written = [int(p.group(2)) for p in pieces]
    check("the first piece reached the client before the model wrote the second",
          first_at < written[1], "first bytes %r at %d us, piece 1 written at %d us" %
          (first[:40], first_at, written[1]))
    check("the first bytes the client got were the first piece alone",
          first == lines[0].encode() + b"\n", first[:100])
check("the custom attributes set before the first flush are on the streamed head",
      a.headers.get("x-amzn-sagemaker-custom-attributes") == "tagged", a.headers)
still_kept(s, "after flushed pieces")
s.sendall(invocation(b"flush-first"))
a = answer(s)
check("a flush before anything is written, then a write: the body whole",
      (a.status, a.ended, a.body) == (200, "complete", b"after\n"), shape(a))
still_kept(s, "after a flush of nothing")
s.sendall(invocation(b"status-flush 201", b"created"))
a = answer(s)
check("status 201 set before a flush stays 201, the body whole",
      (a.status, a.ended, a.body) == (201, "complete", b"created"), shape(a))
for cmd in (b"status 204", b"status-flush 204"):
    s.sendall(invocation(cmd))
    a = answer(s)
    check("%s: 204 with no body and no Transfer-Encoding" % cmd.decode(), a.status == 204 and
          "transfer-encoding" not in a.headers and a.headers.get("content-length", "0") == "0",
          shape(a))
    still_kept(s, cmd.decode())
PY
)
	report flush "$out" $?
	stop_server flush
}

# ---- 5. an error, a crash, a hang after a flush ----
test_after_flush() {
	local out before pids
	serve afterflush --workers 2 --no-access-log || return
	for cmd in error-after-flush crash-after-flush; do
		before=$(log_length)
		pids=$(workers)
		out=$("$PY" - "$PORT" "$cmd" <<PY
$PY_LIB
cmd = sys.argv[2]
s = connect(timeout=20)
s.sendall(invocation(cmd.encode()))
a = answer(s)
check("%s: 200 chunked, the flushed piece, then the stream broken (no last chunk, closed)" % cmd,
      a.status == 200 and a.framing == "chunked" and a.body == b"first piece, flushed\n" and
      a.ended in ("closed", "reset"), "%s %r" % (shape(a), a.body[:200]))
s = connect(timeout=20)
s.sendall(invocation(cmd.encode(), b"x", b"HTTP/1.0"))
a = answer(s)
check("%s, HTTP/1.0: close-delimited, ended by a reset (an orderly close would pass for the end)" % cmd,
      a.status == 200 and a.framing == "close" and a.ended == "reset", shape(a))
PY
)
		report "$cmd" "$out" $?
		sleep 0.3
		if [[ $cmd == error-after-flush ]]; then
			expect_match "$cmd: the model's message is logged" "failed after a flush" "$(log_since "$before")"
		else
			expect_match "$cmd: a line is logged" "." "$(log_since "$before")"
		fi
		log_since "$before" | sed 's/^/# log: /'
		still_serving "$cmd" 2
		[[ $cmd == crash-after-flush ]] && ! wait_for 3 workers_changed_from "$pids" &&
			not_ok "$cmd: a new worker replaces the crashed one" "workers $pids before, $(workers) after"
	done
	stop_server afterflush
}

# ---- 5b. --timeout for an answer, --stream-timeout once it streams ----
test_stream_timeout() {
	local out before pids
	serve streamtimeout --workers 1 --timeout 1 --stream-timeout 6 --no-access-log || return
	out=$(curl -s -m 20 -o /dev/null -w '%{http_code}' -H 'X-Amzn-SageMaker-Custom-Attributes: hang' \
		-d x "$(url /invocations)")
	expect "--timeout 1 --stream-timeout 6: a hang before any flush is a 504 at --timeout" 504 "$out"
	wait_for 5 worker_count_is 1
	before=$(log_length)
	pids=$(workers)
	out=$("$PY" - "$PORT" <<PY
$PY_LIB
s = connect(timeout=30)
s.sendall(invocation(b"flush-sleep 3 1000"))
a = answer(s)
check("a streamed answer of 3 s (past --timeout 1) completes", (a.status, a.framing, a.ended,
      len(a.body.splitlines())) == (200, "chunked", "complete", 3), shape(a))
s.close()
s = connect(timeout=30)
s.sendall(invocation(b"hang-after-flush"))
a = answer(s)
check("hang after a flush: the stream is cut (by --stream-timeout 6, within 30 s), no last chunk",
      a.status == 200 and a.framing == "chunked" and a.body == b"first piece, flushed\n" and
      a.ended in ("closed", "reset"), shape(a))
PY
)
	report stream-timeout "$out" $?
	expect_match "hang after a flush: a line is logged" "." "$(log_since "$before")"
	log_since "$before" | sed 's/^/# log: /'
	still_serving "hang after a flush" 1
	[[ $(workers) != "$pids" ]] || not_ok "hang after a flush: the hung worker is replaced" "workers $pids before and after"
	stop_server streamtimeout
}

# ---- 6. --max-response-mb before and after the first piece ----
test_max_response() {
	local out before
	serve maxresponse --workers 1 --max-response-mb 1 --no-access-log || return
	before=$(log_length)
	out=$("$PY" - "$PORT" <<PY
$PY_LIB
def error_500(a):
    return (a.status, a.framing, a.ended, a.headers.get("content-type", "")[:16]) == \
        (500, "length", "complete", "application/json") and re.fullmatch(rb'\{"error": ".*"\}\n?', a.body)
s = connect()
s.sendall(invocation(b"stream %d 65536" % MIB))
sink = PatternCheck()
a = answer(s, sink)
check("--max-response-mb 1: an answer of exactly 1 MiB passes, every byte right",
      (a.status, a.ended, a.length, sink.good) == (200, "complete", MIB, True), shape(a))
s.close()
for size, write in ((MIB + 1, 65536), (3000000, 3000000)):
    s = connect()
    s.sendall(invocation(b"stream %d %d" % (size, write)))
    a = answer(s)
    check("--max-response-mb 1, %d bytes in writes of %d, unflushed: a clean 500 JSON error" % (size, write),
          error_500(a), "%s %r" % (shape(a), a.body[:200]))
    s.close()
s = connect(timeout=20)
s.sendall(invocation(b"flushed 3000000 65536"))
sink = PatternCheck()
a = answer(s, sink)
check("--max-response-mb 1, 3 MB flushed every 64 KiB: 200 chunked, cut (no last chunk, closed)",
      a.status == 200 and a.framing == "chunked" and a.ended in ("closed", "reset"), shape(a))
check("... the bytes before the cut right, and no more than 1 MiB of them",
      sink.good and 0 < a.length <= MIB, "%d bytes, first wrong at %s" % (a.length, sink.bad_at))
PY
)
	report max-response "$out" $?
	expect_match "--max-response-mb passed after the first piece: a line is logged" "." "$(log_since "$before")"
	log_since "$before" | sed 's/^/# log: /'
	still_serving "--max-response-mb 1" 1
	stop_server maxresponse
}

# ---- 7. X-Amzn-SageMaker-Accept ----
test_sagemaker_accept() {
	local out
	serve accept --workers 1 || return
	out=$(curl -s -m 10 -H 'X-Amzn-SageMaker-Custom-Attributes: inspect' -H 'Accept:' \
		-H 'X-Amzn-SageMaker-Accept: text/csv' -d x "$(url /invocations)" | grep '^accept=')
	expect "X-Amzn-SageMaker-Accept with no Accept reaches the model as its accept" "accept=text/csv" "$out"
	out=$(curl -s -m 10 -H 'X-Amzn-SageMaker-Custom-Attributes: inspect' -H 'Accept: application/json' \
		-H 'X-Amzn-SageMaker-Accept: text/csv' -d x "$(url /invocations)" | grep '^accept=')
	expect "Accept and X-Amzn-SageMaker-Accept both: Accept wins" "accept=application/json" "$out"
	out=$(curl -s -m 10 -H 'X-Amzn-SageMaker-Custom-Attributes: inspect' -H 'Accept:' \
		-d x "$(url /invocations)" | grep '^accept=')
	expect "neither: the accept is empty" "accept=" "$out"
	stop_server accept
}

# ---- 8. a client that reads nothing of a big streamed answer ----
test_stalled_reader() {
	local out
	serve stalled --workers 1 --body-timeout 2 --no-access-log || return
	out=$("$PY" - "$PORT" "$SERVER_PID" <<PY
$PY_LIB
SIZE, BOUND_KIB = 100000000, 40 << 10
loop = int(sys.argv[2])
worker = children(loop)[0]
start = {p: kib(p, "VmRSS") for p in (loop, worker)}
sampler = Sampler([loop, worker])
sampler.start()
s = connect(timeout=15, rcvbuf=4096)
s.sendall(invocation(b"stream %d 65536" % SIZE))
time.sleep(6)                       # reads nothing for 3 times --body-timeout
sampler.stop()
sink = PatternCheck()
a = answer(s, sink)
check("a reader that stalls for 3x --body-timeout is dropped: the stream ends cut short",
      a.ended in ("closed", "reset") and a.length < SIZE and sink.good, shape(a))
for who, p in (("the loop", loop), ("the worker", worker)):
    grew = sampler.peak[p] - start[p]
    if (a.status, a.framing) != (200, "chunked"):
        check("stalled reader: %s's memory measured" % who, False, "no streamed answer to measure")
        continue
    print("stalled reader: %s's VmRSS at most %d KiB above its start" % (who, grew))
    if who == "the loop" and os.environ.get("SANITIZED"):
        print("SKIP: the loop's memory (the sanitizer's allocator keeps freed memory in quarantine)")
        continue
    check("stalled reader: %s's VmRSS stays under 40 MiB above its start" % who, grew < BOUND_KIB,
          "%d KiB above" % grew)
s2 = connect(timeout=15)
s2.sendall(invocation(b"", b"next"))
a = answer(s2)
check("the worker is freed: the next invocation is answered", (a.status, a.body) == (200, b"next"), shape(a))
PY
)
	report stalled "$out" $?
	still_serving "stalled reader" 1
	stop_server stalled
}

# ---- 9. requests pipelined behind chunked answers ----
test_pipelined() {
	local out
	serve pipelined --workers 2 || return
	out=$("$PY" - "$PORT" <<PY
$PY_LIB
s = connect()
s.sendall(invocation(b"stream 3000000 65536") + invocation(b"", b"second") +
          invocation(b"flush-sleep 2 100") + invocation(b"status 204") + invocation(b"", b"fifth"))
sink = PatternCheck()
got = [answer(s, sink)] + [answer(s) for i in range(4)]
check("5 pipelined: a chunked 3 MB answer first, every byte right",
      (got[0].framing, got[0].ended, got[0].length, sink.good) == ("chunked", "complete", 3000000, True),
      shape(got[0]))
check("5 pipelined: then the rest in order", [(a.status, a.ended) for a in got[1:]] ==
      [(200, "complete")] * 2 + [(204, "complete"), (200, "complete")] and got[1].body == b"second" and
      got[2].body.startswith(b"piece 0 of 2") and got[4].body == b"fifth",
      "; ".join("%s %r" % (shape(a), a.body[:40]) for a in got[1:]))
PY
)
	report pipelined "$out" $?
	stop_server pipelined
}

if ! "$PY" -c '' 2>/dev/null; then
	echo "# SKIP: no /usr/bin/python3 for the stream clients"
	finish
	exit
fi
test_sizes
test_memory
test_http10
test_flush
test_after_flush
test_stream_timeout
test_max_response
test_sagemaker_accept
test_stalled_reader
test_pipelined
finish
