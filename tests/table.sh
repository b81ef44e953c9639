#!/usr/bin/env bash
# test-binary: faulty
# tests/table.sh - a full connection table. select() watches descriptors
# below FD_SETSIZE (1,024), and the loop keeps the numbers a respawn needs
# for the workers, so clients past that take the place of the least useful
# one: a lingering or idle connection first (the one idle longest), then the
# slowest sender, which gets a 503; nobody busy with a worker is displaced.
# Checked: /ping answers 200 while 1,100 slow clients are connected; a
# worker killed while the table is full is replaced and invocations go on;
# idle keep-alives go before slow heads, slow heads before faster ones; and
# bodies that trickle (a byte just inside --body-timeout, chunk extensions,
# trailers) are cut off by --min-body-rate while a slow but steady body is
# read whole. Small tables come from `ulimit -n 64`; the 1,100 clients run
# under `ulimit -n 4096`, so that descriptors past FD_SETSIZE exist.
#
#   SMSERVE=./build/smserve-faulty bash tests/table.sh    (or: bash test.sh table)
set -u
cd "$(dirname "$0")/.." || exit 1
export LC_ALL=C
SMSERVE=${SMSERVE:-./build/smserve-faulty}
source tests/lib.sh
PY=/usr/bin/python3

# with_file_limit N: a wrapper that runs $SMSERVE under `ulimit -n N`.
with_file_limit() {
	local wrapper=$TEST_TMP/limit-$1
	cat >"$wrapper" <<EOF
#!/usr/bin/env bash
ulimit -n $1 || exit 97
exec "$SMSERVE" "\$@"
EOF
	chmod +x "$wrapper"
	echo "$wrapper"
}

# workers_of PID: the pids of a server's workers, one line each.
workers_of() { pgrep -P "$1" | sort; }

PY_LIB='
import os, signal, socket, subprocess, sys, time, select
ADDR = ("127.0.0.1", int(sys.argv[1]))
SERVER_PID = int(sys.argv[2])
def check(name, cond, detail=""):
    print(("ok " if cond else "fail ") + name + ("" if cond else " (%s)" % (detail,)), flush=True)
def connect(first=b""):
    s = socket.create_connection(ADDR, timeout=5)
    if first:
        s.sendall(first)
    return s
def read_response(s, timeout=5):
    """The first response on s (bytes), b"" if it closed first."""
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return data
            data += d
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep:
                n = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        n = int(line.split(b":")[1])
                if len(body) >= n:
                    return data
    except ConnectionResetError:
        return data
def request(req, timeout=5):
    t = time.perf_counter()
    s = connect(req)
    r = read_response(s, timeout)
    s.close()
    return r, time.perf_counter() - t
PING = b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
def invocation(body):
    return b"POST /invocations HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
GOT = {}                                 # what closed() read from each socket
def closed(s):
    """Whether the server closed s (EOF or reset, after any response)."""
    s.setblocking(False)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return True
            GOT[s] = GOT.get(s, b"") + d
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        s.setblocking(True)
def worker_pids():
    out = subprocess.run(["pgrep", "-P", str(SERVER_PID)], capture_output=True, text=True).stdout
    return sorted(int(x) for x in out.split())
def wait_for_workers(n, old, seconds=5):
    """Waits until the server runs n workers, none of them in old."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pids = worker_pids()
        if len(pids) == n and not set(pids) & set(old):
            return pids
        time.sleep(0.05)
    return worker_pids()
'

# ---- 1,100 slow clients: /ping answered, a killed worker replaced ----
test_eleven_hundred() {
	local out rc
	SMSERVE=$(with_file_limit 4096) start_server many --workers 2 --no-access-log || return
	out=$("$PY" - "$PORT" "$SERVER_PID" <<PY
$PY_LIB
N = 1100
head = b"GET /ping HTTP/1.1\r\nHost: x\r\nX-Slow: "
slow = []
for i in range(N):
    slow.append(connect(head))          # a head that never ends, sent slowly
time.sleep(0.5)
for s in slow[:50]:                     # some keep sending, a byte at a time
    try:
        s.sendall(b"s")
    except OSError:
        pass
gone = sum(closed(s) for s in slow)
print("%d slow clients connected; %d displaced by later ones" % (N, gone))
check("1,100 slow clients: the table filled, so some were displaced", 50 <= gone <= N - 900, gone)
times, bad = [], 0
for i in range(50):
    r, dt = request(PING)
    times.append(dt)
    bad += not r.startswith(b"HTTP/1.1 200 ")
    time.sleep(0.02)
times.sort()
print("/ping beside 1,100 slow clients: p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (times[25] * 1000, times[49] * 1000, times[-1] * 1000))
check("1,100 slow clients: 50 fresh /ping all answered 200", bad == 0, "%d not 200" % bad)
old = worker_pids()
os.kill(old[0], signal.SIGKILL)
pids = wait_for_workers(len(old), [old[0]] + old[1:1])
check("a worker killed while the table is full is replaced", len(pids) == len(old) and old[0] not in pids, (old, pids))
answers = [request(invocation(b"after-%d" % i))[0] for i in range(10)]
check("and then 10 invocations are answered by the workers", all(a.startswith(b"HTTP/1.1 200 ") and a.endswith(b"after-%d" % i) for i, a in enumerate(answers)), [a[:12] for a in answers])
for s in slow:
    s.close()
PY
)
	rc=$?
	report many "$out" "$rc"
	expect_match "the log says clients were displaced" 'connection table full: [0-9]+ client\(s\) displaced' "$(grep -m1 'table full' "$SERVER_LOG")"
	expect "no failed respawn was logged" 0 "$(grep -c 'cannot start a model worker' "$SERVER_LOG")"
	stop_server many
}

# ---- who is displaced: idle first, then the slowest ----
test_who_goes() {
	local out rc
	SMSERVE=$(with_file_limit 64) start_server order --workers 2 --no-access-log || return
	out=$("$PY" - "$PORT" "$SERVER_PID" <<PY
$PY_LIB
idle = []
for i in range(10):                     # answered once, then idle
    s = connect(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_response(s).startswith(b"HTTP/1.1 200")
    idle.append(s)
# Slow heads, alternately slower (1 byte so far) and faster (1 byte, then
# 200 more at once), until eight slow ones were displaced.
slower, faster, when = [], [], {}
step = 0
while sum(1 for s in slower if s in when) < 8 and step < 200:
    step += 1
    s = connect(b"G")
    if step % 2 == 0:
        s.sendall(b"ET /ping HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 200)
        faster.append(s)
    else:
        slower.append(s)
    time.sleep(0.03)
    for c in idle + slower + faster:
        if c not in when and closed(c):
            when[c] = step
first_head = min((when[c] for c in slower + faster if c in when), default=None)
last_idle = max((when.get(c, 10**6) for c in idle))
print("the last idle keep-alive displaced by new client %s, the first slow head by new client %s" % (last_idle, first_head))
check("the idle keep-alives are displaced, every one before any client sending a head", first_head is not None and last_idle < first_head, (last_idle, first_head))
check("an idle keep-alive is closed without a response", not any(GOT.get(c, b"") for c in idle))
gone_faster = sum(1 for c in faster if c in when)
check("then the slowest heads go (8 of the slower, none of the faster)", gone_faster == 0, "%d faster displaced" % gone_faster)
got = [GOT.get(c, b"") for c in slower if c in when]
check("a head displaced mid-request gets a 503 saying why", all(g.startswith(b"HTTP/1.1 503 ") and b"too many connections" in g for g in got), [g[:40] for g in got])
# The faster heads are still being read: each one finished is answered.
ok = 0
for c in faster:
    if c not in when:
        c.sendall(b"\r\n\r\n")
        ok += read_response(c).startswith(b"HTTP/1.1 200 ")
check("the heads kept are still served when they finish", ok == len([c for c in faster if c not in when]) and ok > 0, ok)
r, dt = request(PING)
check("a fresh /ping is answered 200", r.startswith(b"HTTP/1.1 200 "), r[:40])
PY
)
	rc=$?
	report order "$out" "$rc"
	stop_server order
}

# ---- a full small table: a killed worker is replaced; busy clients stay ----
test_small_table() {
	local out rc
	SMSERVE=$(with_file_limit 64) start_server small --workers 2 --no-access-log || return
	out=$("$PY" - "$PORT" "$SERVER_PID" <<PY
$PY_LIB
# Two clients whose requests run in the workers (sleep 2), then a flood.
busy = [connect(b"POST /invocations HTTP/1.1\r\nHost: x\r\nX-Amzn-SageMaker-Custom-Attributes: sleep 2\r\nContent-Length: 4\r\n\r\nbusy") for i in range(2)]
time.sleep(0.2)
flood = [connect(b"GET /ping HTTP/1.1\r\nX: ") for i in range(100)]
time.sleep(0.3)
gone = sum(closed(s) for s in flood)
check("100 slow heads under ulimit -n 64: the ones past the table displace others", gone >= 40, gone)
answers = [read_response(b, 6) for b in busy]
check("clients whose requests are in a worker are never displaced", all(a.startswith(b"HTTP/1.1 200 ") and a.endswith(b"busy") for a in answers), [a[:20] for a in answers])
old = worker_pids()
for p in old:
    os.kill(p, signal.SIGKILL)           # both, while the table is full
flood += [connect(b"GET /ping HTTP/1.1\r\nX: ") for i in range(20)]
pids = wait_for_workers(len(old), old)
check("both workers killed with the table full (ulimit -n 64): both replaced", len(pids) == 2 and not set(pids) & set(old), (old, pids))
r, dt = request(invocation(b"replaced"))
check("and an invocation on a new connection is answered", r.startswith(b"HTTP/1.1 200 ") and r.endswith(b"replaced"), r[:40])
for s in flood:
    s.close()
PY
)
	rc=$?
	report small "$out" "$rc"
	expect "no failed respawn was logged" 0 "$(grep -c 'cannot start a model worker' "$SERVER_LOG")"
	stop_server small
}

# ---- trickles cut off by --min-body-rate ----
test_min_body_rate() {
	local out rc
	start_server rate --workers 1 --body-timeout 2 || return
	out=$("$PY" - "$PORT" "$SERVER_PID" <<PY
$PY_LIB
import threading
POST = b"POST /invocations HTTP/1.1\r\nHost: x\r\n"
def trickle(first, piece, every, results, name):
    """Sends first, then piece every few seconds (inside --body-timeout)
    until the server answers; records the answer and when it came."""
    s = connect(first)
    t0 = time.monotonic()
    s.settimeout(every)
    data = b""
    while time.monotonic() - t0 < 15:
        try:
            d = s.recv(4096)
            if not d:
                break
            data += d
            if b"\r\n\r\n" in data:
                break
        except socket.timeout:
            try:
                s.sendall(piece)
            except OSError:
                break
    results[name] = (data.split(b"\r\n")[0].decode(errors="replace"), time.monotonic() - t0, data)
    s.close()
results = {}
cases = [
    ("a Content-Length body, a byte every 1.5 s", POST + b"Content-Length: 100000\r\n\r\n", b"t", 1.5),
    ("a chunked body, a chunk of one byte every 1.5 s", POST + b"Transfer-Encoding: chunked\r\n\r\n", b"1\r\nt\r\n", 1.5),
    ("a chunk extension, a byte every 1.5 s", POST + b"Transfer-Encoding: chunked\r\n\r\n5;e=", b"x", 1.5),
    ("a trailer, a byte every 1.5 s", POST + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: ", b"y", 1.5),
]
ths = [threading.Thread(target=trickle, args=(f, p, e, results, n)) for n, f, p, e in cases]
for t in ths:
    t.start()
# Beside them, a slow but steady body: 2,000 bytes every 0.5 s, 20,000 in all
# (4 kB/s, over the 1 kB/s minimum) for 5 s, past the 2 s --body-timeout.
s = connect(POST + b"Content-Length: 20000\r\n\r\n")
for i in range(10):
    time.sleep(0.5)
    s.sendall(b"s" * 2000)
steady = read_response(s)
s.close()
for t in ths:
    t.join()
for name, _, _, _ in cases:
    status, dt, data = results[name]
    print("%s: %s after %.1f s" % (name, status, dt))
    check("%s: 408 once it averages under --min-body-rate, about --body-timeout in" % name,
          status == "HTTP/1.1 408 Request Timeout" and b"slower than 1024 bytes a second" in data and 1.8 < dt < 5, (status, round(dt, 2)))
check("a steady body at 4 kB/s for 5 s (past --body-timeout 2 s) is read whole and answered", steady.startswith(b"HTTP/1.1 200 ") and steady.endswith(b"s" * 2000), steady[:40])
PY
)
	rc=$?
	report rate "$out" "$rc"
	expect_match "the cut is logged" 'smserve: 408 request body slower than 1024 bytes a second' "$(grep -m1 'slower than' "$SERVER_LOG")"
	stop_server rate
	start_server norate --workers 1 --body-timeout 2 --min-body-rate 0 || return
	out=$("$PY" - "$PORT" "$SERVER_PID" <<PY
$PY_LIB
s = connect(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
for i in range(8):                      # 6 s in all, a byte every 0.75 s
    time.sleep(0.75)
    s.sendall(b"z")
check("--min-body-rate 0: a byte just inside --body-timeout keeps the body going (6 s)", not closed(s))
s.sendall(b"zz")
r = read_response(s)
check("and it is answered when it ends", r.startswith(b"HTTP/1.1 200 ") and r.endswith(b"z" * 10), r[:40])
PY
)
	rc=$?
	report norate "$out" "$rc"
	stop_server norate
}

if ! "$PY" -c '' 2>/dev/null; then
	echo "# SKIP: no /usr/bin/python3 for the clients"
	finish
	exit
fi
test_eleven_hundred
test_who_goes
test_small_table
test_min_body_rate
finish
