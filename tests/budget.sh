#!/usr/bin/env bash
# test-binary: default
# tests/budget.sh - answers held for clients that do not read them are
# charged to --max-buffered-mb with the request bodies (issue 21, item 1).
# The attack: seven clients each send a 2 MB CSV batch whose JSON answer is
# about 13 MB, with a tiny receive window, and never read. The server keeps
# what they do not take until the budget is spent, then holds their workers
# back (the next piece waits for its client), refuses new work with 503 and
# Retry-After, and drops each client that takes nothing for --body-timeout.
#
#   SMSERVE=./build/smserve-default bash tests/budget.sh   (or: bash test.sh budget)
set -u
cd "$(dirname "$0")/.." || exit 1
SMSERVE=${SMSERVE:-./build/smserve-default}
source tests/lib.sh
PY=/usr/bin/python3
T=$TEST_TMP

status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
sanitized() { grep -q __asan_init "$SMSERVE" 2>/dev/null; }

$PY bench/iris_batch.py "$T/1mb.csv"
cat "$T/1mb.csv" "$T/1mb.csv" >"$T/batch.csv"
start_server budget --model-dir models/iris --workers 2 --max-buffered-mb 32 --body-timeout 6 ||
	{ not_ok "the server starts" "$(tail -3 "$SERVER_LOG")"; finish; exit 1; }

# The attackers send, read nothing and hold on. While they hold, the client
# asks for new work and /ping, and leaves a mark for the memory reading.
"$PY" - "$PORT" "$T/batch.csv" "$T/held" >"$T/attack.out" 2>&1 <<'PY' &
import socket, sys, time
port, body, mark = int(sys.argv[1]), open(sys.argv[2], "rb").read(), sys.argv[3]
req = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
       b"Accept: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
attackers = []
for i in range(7):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(req)
    attackers.append(s)
time.sleep(3)                      # every answer as far as the server lets it go
def ask(raw):
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    t = time.monotonic()
    c.sendall(raw)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(65536)
        if not chunk:
            break
        data += chunk
    c.close()
    return data.split(b"\r\n\r\n")[0].decode(), time.monotonic() - t
head, _ = ask(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
              b"Content-Length: 16\r\n\r\n6.7,3.0,5.2,2.3\n")
print("new-work", head.split("\r\n")[0], "retry-after" if "Retry-After: 1" in head else "no-retry-after")
worst = max(ask(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")[1] for _ in range(20))
print("ping", "under-1s" if worst < 1.0 else "slow", "%.3f" % worst)
sys.stdout.flush()
open(mark, "w").write("1")
time.sleep(9)                      # past --body-timeout 6: dropped by now
for s in attackers:
    s.close()
PY
attack=$!
for _ in $(seq 150); do [[ -e $T/held ]] && break; sleep 0.1; done
rss=$(status_kib "$SERVER_PID" VmRSS) hwm=$(status_kib "$SERVER_PID" VmHWM)
wait "$attack"
out=$(cat "$T/attack.out")
echo "# while 7 clients held 13 MB answers unread: the loop's RSS $rss KiB, peak $hwm KiB"
expect_match "over the budget, new work gets 503 with Retry-After" \
	"new-work HTTP/1.1 503 Service Unavailable retry-after" "$out"
expect_match "/ping answers at once while the attackers hold (worst of 20 under 1 s)" "ping under-1s" "$out"
if sanitized; then
	echo "# SKIP: the loop's memory (the sanitizer's allocator keeps freed memory)"
else
	((hwm < 48 * 1024)) && ok "the loop's peak RSS stays under 48 MiB with a 32 MiB budget" ||
		not_ok "the loop's peak RSS stays under 48 MiB with a 32 MiB budget" "$hwm KiB"
fi
# Those with answers under way are dropped; a worker held back for one is
# stopped and replaced; the queued ones then run, and are dropped in turn.
n=$(grep -c 'client did not take its answer within 6 s' "$SERVER_LOG")
((n >= 2)) && ok "the attackers holding answers are dropped once they take nothing for --body-timeout" ||
	not_ok "the attackers holding answers are dropped once they take nothing for --body-timeout" "$n dropped"
expect_match "a worker held back by an attacker is stopped and replaced" "client gone, stopping its request" \
	"$(cat "$SERVER_LOG")"
out=$(curl -s -H 'Content-Type: text/csv' -H 'Accept: text/csv' -d '6.7,3.0,5.2,2.3' "$(url /invocations)")
expect "after the attack, the server answers as before" 2 "$out"

# A client that does read, 8 KiB a second: each 1 MiB of the answer must go
# within --body-timeout (6 s), not merely some byte of it, or a trickle of
# reads would hold the answer for ever.
out=$("$PY" - "$PORT" "$T/1mb.csv" <<'PY'
import socket, sys, time
port, body = int(sys.argv[1]), open(sys.argv[2], "rb").read()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
s.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
          b"Accept: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
t0, got, how = time.monotonic(), 0, "still open after 16 s"
s.settimeout(1)
while time.monotonic() - t0 < 16:
    try:
        b = s.recv(4096)
    except socket.timeout:
        continue
    except ConnectionResetError:
        how = "reset"
        break
    if not b:
        how = "closed"
        break
    got += len(b)
    time.sleep(0.5)
print(how, "within 13 s" if time.monotonic() - t0 < 13 else "late", got < 6000000)
PY
)
expect "a client trickling its reads is dropped once a 1 MiB piece takes longer than --body-timeout" \
	"closed within 13 s True" "${out/reset/closed}"
stop_server budget
finish
