#!/usr/bin/env bash
# test-binary: faulty
# tests/faults.sh - what happens when the model or a worker breaks, and when
# signals come: workers all busy (/ping still answers, the queue bound's
# 503), a plug-in that segfaults, a worker killed (SIGKILL) mid-request or
# idle, a model that hangs (504 after --timeout, the worker replaced), one
# that writes too much or answers an invalid status (500; a 500 carries no
# custom attributes), requests queued past --timeout (503), clients that
# leave while their request is with the model, no memory for a body,
# SIGTERM with 50 requests in flight (the drain), a second SIGTERM, and
# SIGKILL of the loop process.
#
#   SMSERVE=./build/smserve-faulty bash tests/faults.sh     (or: bash test.sh faults)
#
# Runs against $SMSERVE built with tests/plugins/faulty.c (make
# build/smserve-faulty or build/asan-faulty). The out-of-memory test needs
# `ulimit -v`, which sanitizer builds cannot run under: it is skipped there.
set -u
cd "$(dirname "$0")/.." || exit 1
export LC_ALL=C
SMSERVE=${SMSERVE:-./build/smserve-faulty}
source tests/lib.sh
PY=/usr/bin/python3

attr() { echo "X-Amzn-SageMaker-Custom-Attributes: $1"; }

# gone PID...: true when none of the processes is running (gone or a zombie).
gone() {
	local p st
	for p in "$@"; do
		st=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)
		[[ -z $st || $st == Z ]] || return 1
	done
}

# sched_policy PID: the scheduling policy number, field 41 of /proc/PID/stat
# (counted after the command name, which may hold spaces).
sched_policy() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{print $39}'; }

# ---- every worker busy: /ping answers, the queue is bounded ----
test_busy_workers() {
	local out i answered=0 clients=()
	start_server busy --workers 2 --timeout 5 --queue 1 || return
	curl -s -o "$TEST_TMP/s1" -H "$(attr 'sleep 3')" -d a "$(url /invocations)" &
	clients+=($!)
	curl -s -o "$TEST_TMP/s2" -H "$(attr 'sleep 3')" -d b "$(url /invocations)" &
	clients+=($!)
	sleep 0.3
	for i in $(seq 20); do
		[[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$(url /ping)") == 200 ]] && answered=$((answered + 1))
	done
	# Answered while both 3 s requests still run: /ping needs no worker.
	expect "/ping answers while every worker is busy (20 of 20, before the busy requests end)" "20 running" \
		"$answered $(kill -0 "${clients[0]}" 2>/dev/null && kill -0 "${clients[1]}" 2>/dev/null && echo running || echo ended)"
	curl -s -o "$TEST_TMP/s3" -w '%{http_code}' -d queued "$(url /invocations)" >"$TEST_TMP/s3.code" &
	clients+=($!)
	sleep 0.3
	out=$(curl -s -i -d over "$(url /invocations)" | tr -d '\r')
	expect_match "past the queue bound (--queue 1): 503 with Retry-After" $'^HTTP/1.1 503 .*\nRetry-After: 1\n' "$out"
	wait "${clients[@]}"
	expect "the busy requests and the queued one complete" "a b queued 200" \
		"$(cat "$TEST_TMP/s1") $(cat "$TEST_TMP/s2") $(cat "$TEST_TMP/s3") $(cat "$TEST_TMP/s3.code")"
	stop_server busy
}

# ---- a plug-in that segfaults ----
test_crash() {
	local out i
	start_server crash --workers 2 || return
	out=$(curl -s -i -H "$(attr 'tagged crash')" -d x "$(url /invocations)" | tr -d '\r')
	expect_match "a plug-in that segfaults: 500 JSON" \
		$'^HTTP/1.1 500 [^\n]*\n.*\n\n\\{"error": "the model worker crashed during the request"\\}$' "$out"
	# The attributes the model set before it died are not the caller's answer.
	expect "and no custom attributes on that 500" "" "$(grep -i '^X-Amzn-SageMaker-Custom-Attributes' <<<"$out")"
	out=$(curl -s -i -H "$(attr 'tagged x')" -d x "$(url /invocations)" | tr -d '\r')
	expect "the next request after a crash succeeds, with its custom attributes" \
		"X-Amzn-SageMaker-Custom-Attributes: tagged" "$(grep -i '^X-Amzn-SageMaker-Custom-Attributes' <<<"$out")"
	for i in 1 2 3; do curl -s -o /dev/null -H "$(attr crash)" -d x "$(url /invocations)"; done
	out=$(for i in 1 2 3 4; do curl -s -d "$i" "$(url /invocations)"; done)
	expect "workers are replaced after repeated crashes" "1234" "$out"
	expect "each crash is logged" 4 "$(grep -c 'ended by signal 11' "$SERVER_LOG")"
	stop_server crash
}

# ---- a worker killed (SIGKILL) in the middle of a request ----
test_worker_killed() {
	local out before after victim w s stream=() fails
	start_server killed --workers 3 --max-body-mb 32 --no-access-log || return
	before=$(workers)
	# The victim's worker is the one asleep in the model ("sleep 3"): its body
	# sits in the shared region, untouched, so RSS does not tell it apart.
	head -c 16000000 /dev/zero >"$TEST_TMP/16mb"
	curl -s -o "$TEST_TMP/victim" -w '%{http_code}' -H "$(attr 'sleep 3')" --data-binary @"$TEST_TMP/16mb" \
		"$(url /invocations)" >"$TEST_TMP/victim.code" &
	local victim_client=$!
	# Two streams of other requests, before, during and after the kill.
	for s in 1 2; do
		(
			end=$((SECONDS + 4))
			i=0
			while ((SECONDS < end)); do
				i=$((i + 1))
				printf '%s %s\n' "s$s-$i" "$(curl -s -m 5 -w ' %{http_code}' -d "s$s-$i" "$(url /invocations)")"
			done
		) >"$TEST_TMP/stream$s" &
		stream+=($!)
	done
	sleep 1
	for w in $before; do
		[[ $(cat "/proc/$w/wchan" 2>/dev/null) == *nanosleep* ]] && victim=$w
	done
	if [[ -z ${victim:-} ]]; then
		not_ok "found the busy worker asleep in the model" "workers: $before"
		wait "$victim_client" "${stream[@]}"
		stop_server killed
		return
	fi
	kill -KILL "$victim"
	wait "$victim_client"
	out="$(cat "$TEST_TMP/victim.code") $(cat "$TEST_TMP/victim")"
	expect "SIGKILL of the busy worker: its request gets a 500 JSON error" \
		'500 {"error": "the model worker crashed during the request"}' "$(tr -d '\n' <<<"$out")"
	wait_for 2 eval '[[ $(pgrep -P "$SERVER_PID" | wc -l) -eq 3 ]]'
	after=$(workers)
	expect "the worker is replaced: 3 workers again, the killed one not among them" "3 no" \
		"$(wc -w <<<"$after") $(grep -qw "$victim" <<<"$after" && echo yes || echo no)"
	wait "${stream[@]}"
	fails=$(cat "$TEST_TMP/stream1" "$TEST_TMP/stream2" | awk '$1 " 200" != $2 " " $3' | head -3)
	expect "no other request failed (two streams of $(cat "$TEST_TMP/stream1" "$TEST_TMP/stream2" | wc -l) requests meanwhile)" "" "$fails"
	[[ $(cat "$TEST_TMP/stream1" "$TEST_TMP/stream2" | wc -l) -ge 20 ]] && ok "the streams ran throughout" ||
		not_ok "the streams ran throughout" "only $(cat "$TEST_TMP/stream1" "$TEST_TMP/stream2" | wc -l) requests"
	expect "the kill is logged" 1 "$(grep -c "worker $victim ended by signal 9" "$SERVER_LOG")"
	rm -f "$TEST_TMP/16mb"
	stop_server killed
}

# ---- an interim 100 that must wait for the client's socket ----
# Pipelined behind an answer, a request with Expect: 100-continue gets its
# 100 as the answer finishes. When that write would block (the shim makes
# the first one fail with EAGAIN, as a full socket buffer does), the 100
# must go out once, later; it was once kept as the answer's rest and sent
# again at every turn of the loop, hundreds of thousands of times a second.
test_interim_delayed() {
	local out
	if [[ $SMSERVE == *asan* ]]; then
		echo "# SKIP: the delayed interim 100 (an LD_PRELOAD shim beside the sanitizer's runtime)"
		return
	fi
	if ! gcc -shared -fPIC -o "$TEST_TMP/eagain_interim.so" tests/shims/eagain_interim.c -ldl; then
		not_ok "the delayed interim 100: the shim builds"
		return
	fi
	LD_PRELOAD=$TEST_TMP/eagain_interim.so start_server interim --workers 1 || return
	out=$("$PY" - "$PORT" <<'PY'
import socket, sys, time
sys.path.insert(0, "tests")
from rawhttp import response
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirst"
          b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n"
          b"Expect: 100-continue\r\n\r\n")
time.sleep(1)                          # what the loop sends meanwhile: read raw
s.settimeout(0.5)
data = b""
try:
    while len(data) < 1 << 20:
        more = s.recv(65536)
        if not more:
            break
        data += more
except socket.timeout:
    pass
print("first answered: %s; interim 100s: %d" % (data.count(b"\r\n\r\nfirst") == 1,
                                                data.count(b"HTTP/1.1 100 Continue\r\n\r\n")))
s.settimeout(10)
s.sendall(b"second")
print(response(s))
PY
)
	expect "an interim 100 delayed by a full socket: sent once, and the request it announced is answered" \
		"first answered: True; interim 100s: 1
('HTTP/1.1 200 OK', 'second')" "$out"
	stop_server interim
}

# ---- a model that hangs: the invocation timeout fires, the worker is replaced ----
test_hang() {
	local out before after t hung
	start_server hang --workers 2 --timeout 1 || return
	before=$(workers)
	curl -s -m 10 -w ' %{http_code} %{time_total}' -H "$(attr hang)" -d x "$(url /invocations)" >"$TEST_TMP/hang.out" &
	hung=$!
	sleep 0.3
	out="$(curl -s -m 5 -w '%{http_code} ' -o /dev/null "$(url /ping)")$(curl -s -m 5 -d other "$(url /invocations)")"
	expect "while one worker hangs, the other serves (before the hang ends)" "200 other hanging" \
		"$out $(kill -0 "$hung" 2>/dev/null && echo hanging || echo ended)"
	wait "$hung"
	out=$(tr -d '\n' <"$TEST_TMP/hang.out")
	t=${out##* }
	expect "a hanging model: 504 JSON error naming the timeout" '{"error": "the model did not answer within 1 s"} 504' "${out% *}"
	# Not before the timeout; the upper bound only catches a hang.
	awk -v t="$t" 'BEGIN { exit !(t >= 0.9 && t < 6) }' && ok "after --timeout 1 (${t} s)" || not_ok "after --timeout 1" "$t s"
	wait_for 2 eval '[[ $(pgrep -P "$SERVER_PID" | wc -l) -eq 2 && $(workers) != "$before" ]]'
	after=$(workers)
	expect "the hung worker is killed and replaced (one new pid of two)" 1 \
		"$(comm -13 <(tr ' ' '\n' <<<"$before" | sort) <(tr ' ' '\n' <<<"$after" | sort) | grep -c .)"
	gone $(comm -23 <(tr ' ' '\n' <<<"$before" | sort) <(tr ' ' '\n' <<<"$after" | sort)) &&
		ok "the hung process is gone" || not_ok "the hung process is gone"
	# sched(7): policy 3 is SCHED_BATCH (workers), 0 is SCHED_OTHER (the loop).
	expect "workers run under SCHED_BATCH, the fresh one too; the loop does not" "0 3 3" \
		"$(sched_policy "$SERVER_PID") $(for p in $after; do sched_policy "$p"; done | tr '\n' ' ' | sed 's/ $//')"
	expect "and the next request is served" after-hang "$(curl -s -d after-hang "$(url /invocations)")"
	stop_server hang
}

# ---- workers killed while idle (as the OOM killer might) ----
# The loop once took such a death for the end of the worker's last reply, and
# dereferenced the connection that reply had long gone to.
test_idle_workers_killed() {
	local before after w
	start_server idle --workers 2 || return
	# An answer with no Content-Type and no custom attributes, then one with.
	expect "two answers before the kill" "200 200" \
		"$(curl -s -o /dev/null -w '%{http_code}' -H "$(attr empty)" -d x "$(url /invocations)") $(curl -s -o /dev/null -w '%{http_code}' -d x "$(url /invocations)")"
	before=$(workers)
	for w in $before; do kill -KILL "$w"; done
	wait_for 3 eval '[[ $(pgrep -P "$SERVER_PID" | wc -l) -eq 2 && -z $(comm -12 <(workers | tr " " "\n" | sort) <(tr " " "\n" <<<"$before" | sort) | tr -d "\n") ]]'
	after=$(workers)
	kill -0 "$SERVER_PID" 2>/dev/null && ok "both idle workers killed: the loop lives on" ||
		not_ok "both idle workers killed: the loop lives on" "$(tail -3 "$SERVER_LOG")"
	expect "two fresh workers replace them" 2 \
		"$(comm -13 <(tr ' ' '\n' <<<"$before" | sort) <(tr ' ' '\n' <<<"$after" | sort) | grep -c .)"
	# Each death is seen at the pipe's end ("exited while idle") or, when
	# SIGCHLD is read first in the same pass, only when reaped; either way
	# the reaping logs the signal, and no death passes for a reply.
	expect "the deaths are logged as such, not as a malformed reply" "2 0" \
		"$(grep -c 'ended by signal 9' "$SERVER_LOG") $(grep -c 'malformed' "$SERVER_LOG")"
	expect "then /ping and /invocations answer" "200 after" \
		"$(curl -s -o /dev/null -w '%{http_code}' "$(url /ping)") $(curl -s -d after "$(url /invocations)")"
	stop_server idle
}

# ---- a worker dies while the loop is stopped ----
# The loop may then see the death twice in one pass: the worker's pipe at end
# of file and SIGCHLD. Its replacement once took over the dead pipe's
# descriptor numbers, still marked readable in that pass, and was killed as
# "exited" (in some runs: it depends on which descriptors are free).
test_worker_death_one_pass() {
	local victim
	start_server onepass --workers 2 || return
	victim=$(workers | cut -d' ' -f1)
	kill -STOP "$SERVER_PID"
	kill -KILL "$victim"
	sleep 0.3
	kill -CONT "$SERVER_PID"
	wait_for 2 eval '[[ $(pgrep -P "$SERVER_PID" | wc -l) -eq 2 ]]'
	sleep 0.5
	expect "a worker killed while the loop is stopped: one death, one replacement" "1 2" \
		"$(grep -c 'ended by signal' "$SERVER_LOG") $(pgrep -P "$SERVER_PID" | wc -l)"
	expect "then /invocations answers" "after" "$(curl -s -d after "$(url /invocations)")"
	stop_server onepass
}

# ---- a worker that died idle, before the loop saw it, is handed a request ----
# The model never ran on it, so it goes back to the queue and the
# replacement worker answers it, rather than a 500.
test_dead_worker_handed_request() {
	local out
	start_server handed --workers 1 || return
	out=$("$PY" - "$PORT" "$SERVER_PID" <<'PY'
import os, signal, socket, sys, time
sys.path.insert(0, "tests")
from rawhttp import post, response
port, pid = int(sys.argv[1]), int(sys.argv[2])
a = socket.create_connection(("127.0.0.1", port), timeout=10)
b = socket.create_connection(("127.0.0.1", port), timeout=10)
post(a, b"die-after-reply", b"A")   # answers at 0.2 s; its worker is killed at 0.5 s
time.sleep(0.05)
post(b, b"", b"B")                  # waits for the one worker
time.sleep(0.05)
os.kill(pid, signal.SIGSTOP)        # the loop sleeps through both
time.sleep(0.8)
os.kill(pid, signal.SIGCONT)
print(response(a), response(b))
PY
)
	expect "a request handed to a worker that died idle: the replacement answers it" \
		"('HTTP/1.1 200 OK', 'A') ('HTTP/1.1 200 OK', 'B')" "$out"
	expect "one worker again" 1 "$(pgrep -P "$SERVER_PID" | wc -l)"
	stop_server handed
}

# ---- a connection queued again after its wait timed out ----
# Requests that wait past --timeout get 503 and keep their connection. One
# such connection, queued again after its neighbour in the queue had closed,
# once followed a stale link to the freed neighbour (a use-after-free).
test_queue_timeout_requeue() {
	local out
	start_server requeue --workers 1 --timeout 2 || return
	out=$("$PY" - "$PORT" <<'PY'
import socket, sys, time
sys.path.insert(0, "tests")
from rawhttp import post, response
port = int(sys.argv[1])
def conn():
    return socket.create_connection(("127.0.0.1", port), timeout=8)
def status(s):
    line, body = response(s)
    return line.split(" ")[1] + ":" + body
hung = conn(); post(hung, b"hang", b"z")        # holds the one worker for 2 s
time.sleep(0.1)
a = conn(); post(a, b"sleep 1", b"a")           # queued; runs once the hang is killed
time.sleep(0.05)
b = conn(); post(b, b"x", b"b1")                # queued; its wait runs out: 503
time.sleep(0.05)
c = conn(); post(c, b"x", b"c1")                # queued behind b: 503 too
print(status(b).split(":")[0], status(c).split(":")[0])
c.close()
time.sleep(0.1)
post(b, b"x", b"b2")                            # b queued again
print(status(b), status(a), status(hung).split(":")[0])
PY
)
	expect "a request queued again after a 503 is answered, and so are the others" "503 503
200:b2 200:a 504" "$out"
	expect "and the server still serves" "200" "$(curl -s -o /dev/null -w '%{http_code}' "$(url /ping)")"
	stop_server requeue
}

# ---- clients that leave while their request is with the model ----
# A queued request whose client closed (and so answers the interim 100 with
# a reset; also after sending the stray CRLF some old clients put after a
# body) or reset the connection is taken off the queue: "crash" would kill
# the worker if it ran. A client that only half-closed, or speaks HTTP/1.0
# (which gets no 1xx, RFC 9110 15.2), still gets its answer. A reset while
# the model runs stops the worker: "hang" would hold the only one for 60 s.
# The loop looks at such clients once a second: the busy request's 3 s give
# it at least two looks (one sends the probe, the next sees its reset).
test_client_gone() {
	local out before
	start_server gone --workers 1 || return
	before=$(workers)
	out=$("$PY" - "$PORT" <<'PY'
import socket, sys, time
sys.path.insert(0, "tests")
from rawhttp import post, reset, response, until_close
port = int(sys.argv[1])
def conn():
    return socket.create_connection(("127.0.0.1", port), timeout=8)
busy = conn(); post(busy, b"sleep 3", b"busy")   # holds the one worker for 3 s
time.sleep(0.1)
closed = conn(); post(closed, b"crash", b"c"); time.sleep(0.05); closed.close()
rst = conn(); post(rst, b"crash", b"r"); time.sleep(0.05); reset(rst)
crlf = conn(); post(crlf, b"crash", b"n"); time.sleep(0.05)  # read by the loop, then
crlf.sendall(b"\r\n"); time.sleep(0.05); crlf.close()           # the CRLF old clients add
half = conn(); post(half, b"x", b"half"); half.shutdown(socket.SHUT_WR)
old = conn()
old.sendall(b"POST /invocations HTTP/1.0\r\nContent-Length: 3\r\n\r\nold"); old.shutdown(socket.SHUT_WR)
print(response(busy)[1])
h = until_close(half)
print(h.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"), h.endswith(b"\r\n\r\nhalf"))
o = until_close(old)
print(o.startswith(b"HTTP/1.1 200 OK\r\n"), o.endswith(b"\r\n\r\nold"))
hung = conn(); post(hung, b"hang", b"h"); time.sleep(0.3); reset(hung)
after = conn(); post(after, b"x", b"after")
print(response(after)[1])
PY
)
	expect "clients gone while queued or running; a half-closed and an HTTP/1.0 one answered" "busy
True True
True True
after" "$out"
	expect "the closed (also after a CRLF) and the reset client's requests left the queue, never ran" "3 0" \
		"$(grep -c 'before its answer: request taken off the queue' "$SERVER_LOG") $(grep -c 'ended by signal 11' "$SERVER_LOG")"
	expect "the reset client's running request: its worker stopped and replaced" "1 1" \
		"$(grep -c 'client gone, stopping its request' "$SERVER_LOG") $(pgrep -P "$SERVER_PID" | wc -l)"
	[[ $(workers) != "$before" ]] && ok "a new worker" || not_ok "a new worker" "$(workers) vs $before"
	stop_server gone
}

# ---- the checks start afresh with each request on a kept connection ----
# Bytes pipelined behind a running request end the checks for that request;
# the next request on the connection, queued, is checked again: its reset
# takes it off the queue ("crash" would kill the worker if it ran).
test_client_gone_kept() {
	local out
	start_server gonekept --workers 1 || return
	out=$("$PY" - "$PORT" <<'PY'
import socket, sys, time
sys.path.insert(0, "tests")
from rawhttp import post, reset, response
port = int(sys.argv[1])
def conn():
    return socket.create_connection(("127.0.0.1", port), timeout=8)
kept = conn()
post(kept, b"sleep 2", b"first")                   # runs; a check sees the bytes below
time.sleep(0.3)                                    # (which wait in the socket, unread)
kept.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
print(response(kept)[1], response(kept)[0])
busy = conn(); post(busy, b"sleep 3", b"busy")
time.sleep(0.1)
post(kept, b"crash", b"k")                         # queued behind busy
time.sleep(0.05)
reset(kept)
print(response(busy)[1])
PY
)
	expect "a kept connection's next request is checked afresh" "first HTTP/1.1 200 OK
busy" "$out"
	expect "its reset took it off the queue; it never ran" "1 0" \
		"$(grep -c 'reset the connection before its answer: request taken off the queue' "$SERVER_LOG") $(grep -c 'ended by signal 11' "$SERVER_LOG")"
	stop_server gonekept
}

# ---- a reset after a pipelined request ----
# Bytes pipelined behind a running request end the look for the end of the
# stream, not the look for a reset: the client's reset stops the worker
# ("hang" would hold the only one for 60 s), and the pipelined request,
# whose client is gone, never runs.
test_client_gone_pipelined() {
	local out
	start_server gonepipe --workers 1 || return
	out=$("$PY" - "$PORT" <<'PY'
import socket, sys, time
sys.path.insert(0, "tests")
from rawhttp import post, reset, response
port = int(sys.argv[1])
c = socket.create_connection(("127.0.0.1", port), timeout=8)
post(c, b"hang", b"h")
post(c, b"crash", b"y" * 300000)                   # most of it stays in the socket
time.sleep(1.3)                                    # a check sees the bytes
reset(c)
t = time.time()
fresh = socket.create_connection(("127.0.0.1", port), timeout=8)
post(fresh, b"", b"fresh")
print(response(fresh)[1], "in under 3 s:", time.time() - t < 3)
PY
)
	expect "a reset after a pipelined request stops the running one; a new request is served" \
		"fresh in under 3 s: True" "$out"
	expect "the reset is logged once, and the pipelined request never ran" "1 0" \
		"$(grep -c 'reset the connection before its answer: request stopped' "$SERVER_LOG") $(grep -c 'ended by signal 11' "$SERVER_LOG")"
	stop_server gonepipe
}

# ---- a stray CRLF after a running request's body ----
# Some old clients send one after a POST. A check reads it and looks again,
# so the client's reset a second later still stops the worker ("hang" would
# hold the only one for 60 s).
test_client_gone_after_crlf() {
	start_server gonecrlf --workers 1 || return
	"$PY" - "$PORT" <<'PY'
import socket, sys, time
sys.path.insert(0, "tests")
from rawhttp import post, reset
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=8)
post(c, b"hang", b"h")
time.sleep(0.1)
c.sendall(b"\r\n")
time.sleep(1.2)                                    # a check reads the CRLF
reset(c)
PY
	wait_for 3 grep -q 'client gone, stopping its request' "$SERVER_LOG"
	expect "a stray CRLF after a running request's body: the client's reset still stops its worker" \
		1 "$(grep -c 'client gone, stopping its request' "$SERVER_LOG")"
	stop_server gonecrlf
}

# ---- draining, a worker stopped for a client gone is replaced ----
# The request queued behind it is still answered, as in test_drain_respawn.
test_client_gone_draining() {
	local out rc
	start_server gonedrain --workers 1 || return
	out=$("$PY" - "$PORT" "$SERVER_PID" <<'PY'
import os, signal, socket, sys, time
sys.path.insert(0, "tests")
from rawhttp import post, reset, response
port, pid = int(sys.argv[1]), int(sys.argv[2])
def conn():
    return socket.create_connection(("127.0.0.1", port), timeout=10)
running = conn(); post(running, b"hang", b"r")
time.sleep(0.1)
queued = conn(); post(queued, b"x", b"queued")
time.sleep(0.1)
os.kill(pid, signal.SIGTERM)
time.sleep(0.1)
reset(running)
print(response(queued))
PY
)
	wait "$SERVER_PID"
	rc=$?
	expect "draining, the request behind a stopped worker is answered" "('HTTP/1.1 200 OK', 'queued')" "$out"
	expect "then the server exits 0" 0 "$rc"
	check_sanitizer_log gonedrain "$SERVER_LOG"
}

# ---- a model that writes too much, or answers an invalid status ----
test_bad_answers() {
	local out before s
	start_server answers --workers 1 --max-response-mb 1 || return
	before=$(workers)
	out=$("$PY" - "$PORT" <<'PY'
import socket, sys
sys.path.insert(0, "tests")
from rawhttp import post, response, response_with_headers
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
def ask(attrs):
    post(s, attrs, b"x")
    return " ".join(response(s))
print(ask(b"big 3000000"))
r = ask(b"big 1048576")
print(r[:16], len(r) - 16)
print(ask(b"big 1048577"))
print(ask(b"status 99"))
print(ask(b"tagged big 3000000"))
print(ask(b"tagged status 99"))
# Custom attributes: kept on an answer, dropped with the ones an error replaces.
for attrs in (b"tagged x", b"tagged big 3000000", b"tagged status 99"):
    post(s, attrs, b"x")
    line, headers, _ = response_with_headers(s)
    print(line.split(" ")[1], headers.get("x-amzn-sagemaker-custom-attributes", "none"))
PY
)
	# The last two set custom attributes first: the error replaces them too
	# (they once made the reply look malformed, and cost the worker its life).
	expect "a response over --max-response-mb (one byte over too): 500 with a clear message, on a kept connection; exactly the limit is sent; no custom attributes on a 500" \
		"HTTP/1.1 500 Internal Server Error {\"error\": \"the model's response is larger than the limit of 1048576 bytes\"}
HTTP/1.1 200 OK  1048576
HTTP/1.1 500 Internal Server Error {\"error\": \"the model's response is larger than the limit of 1048576 bytes\"}
HTTP/1.1 500 Internal Server Error {\"error\": \"the model returned an invalid HTTP status (99)\"}
HTTP/1.1 500 Internal Server Error {\"error\": \"the model's response is larger than the limit of 1048576 bytes\"}
HTTP/1.1 500 Internal Server Error {\"error\": \"the model returned an invalid HTTP status (99)\"}
200 tagged
500 none
500 none" "$out"
	# 304 is valid HTTP but a head-only answer: a model cannot send one.
	for s in -1 100 199 304 600 1000; do
		out=$(curl -s -w ' %{http_code}' -H "$(attr "status $s")" -d x "$(url /invocations)")
		expect "a model status of $s: 500 naming it" "{\"error\": \"the model returned an invalid HTTP status ($s)\"} 500" "$(tr -d '\n' <<<"$out")"
	done
	out=$(curl -s -w ' %{http_code}' -H "$(attr 'status 0')" -d x "$(url /invocations)")
	expect "a model status of 0: 500 naming it" '{"error": "the model returned an invalid HTTP status (0)"} 500' "$(tr -d '\n' <<<"$out")"
	expect "bad answers do not cost the worker its life" "$before" "$(workers)"
	stop_server answers
}

# ---- out of memory for a body (ulimit -v) ----
test_out_of_memory() {
	local out real=$SMSERVE
	if grep -q __asan_init "$SMSERVE" 2>/dev/null; then
		echo "# SKIP: out-of-memory test (sanitizer builds cannot run under ulimit -v)"
		return
	fi
	# 146,000 KiB of address space: the server starts (it needs about 3 MB,
	# and its worker's shared region 102 MiB of addresses: a 100 MiB body and
	# two 1 MiB answer pieces) but cannot hold a 50 MB body, well inside
	# --max-body-mb 100 and the default --max-buffered-mb 256.
	cat >"$TEST_TMP/small-vm" <<EOF
#!/usr/bin/env bash
ulimit -v 146000 || exit 97
exec "$real" "\$@"
EOF
	chmod +x "$TEST_TMP/small-vm"
	head -c 50000000 /dev/zero >"$TEST_TMP/50mb"
	SMSERVE=$TEST_TMP/small-vm start_server oom --workers 1 --max-body-mb 100 ||
		{ not_ok "the server starts under ulimit -v 146000" "$(tail -3 "$SERVER_LOG")"; return; }
	expect "ulimit -v 146000 applies to the server" 149504000 "$(awk '/Max address space/ {print $4}' "/proc/$SERVER_PID/limits")"
	out=$(curl -s -i --data-binary @"$TEST_TMP/50mb" "$(url /invocations)" | tr -d '\r' |
		grep -E '^(HTTP/1.1 [2-5]|Retry-After|Connection)' | sort)
	expect "a 50 MB body that cannot be allocated: 503 with Retry-After, and the close" \
		$'Connection: close\nHTTP/1.1 503 Service Unavailable\nRetry-After: 1' "$out"
	out=$(curl -s -i -H 'Transfer-Encoding: chunked' --data-binary @"$TEST_TMP/50mb" "$(url /invocations)" | tr -d '\r' |
		grep -E '^(HTTP/1.1 [2-5]|Retry-After|Connection)' | sort)
	expect "the same body chunked: the same 503" $'Connection: close\nHTTP/1.1 503 Service Unavailable\nRetry-After: 1' "$out"
	expect "the server keeps serving: /ping" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$(url /ping)")"
	expect "and a small invocation" small "$(curl -s -d small "$(url /invocations)")"
	head -c 15000000 /dev/zero >"$TEST_TMP/15mb"
	out=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' --data-binary @"$TEST_TMP/15mb" "$(url /invocations)")
	expect "a 15 MB body that fits is echoed" "200 15000000" "$out"
	# The worker has no room for a 30 MB answer, and needs none: an answer
	# streams out in 1 MiB pieces through the shared region.
	out=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' -H "$(attr 'big 30000000')" -d x "$(url /invocations)")
	expect "a 30 MB answer, more than the worker could hold, streams whole" "200 30000000" "$out"
	expect "no process died" "" "$(grep 'ended by signal' "$SERVER_LOG")"
	rm -f "$TEST_TMP/50mb" "$TEST_TMP/15mb"
	stop_server oom
}

# ---- SIGTERM with 50 requests in flight ----
test_sigterm_drain() {
	local out rc start
	start_server drain50 --workers 8 --no-access-log || return
	start=$SECONDS
	out=$("$PY" - "$PORT" "$SERVER_PID" <<'PY'
import os, signal, socket, sys, time
sys.path.insert(0, "tests")
from rawhttp import until_close
port, pid = int(sys.argv[1]), int(sys.argv[2])
conns = []
for i in range(50):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    body = b"d%02d" % i
    s.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nX-Amzn-SageMaker-Custom-Attributes: sleep 1\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    conns.append((s, body))
time.sleep(0.5)
os.kill(pid, signal.SIGTERM)
t = time.monotonic()
time.sleep(0.2)
try:
    socket.create_connection(("127.0.0.1", port), timeout=1).close()
    print("refused=no")
except OSError:
    print("refused=yes")
good = closing = 0
for s, body in conns:
    buf = until_close(s)
    good += buf.startswith(b"HTTP/1.1 200 ") and buf.endswith(b"\r\n\r\n" + body)
    closing += b"\r\nConnection: close\r\n" in buf
print("complete=%d closing=%d" % (good, closing))
print("drained_in=%.1f" % (time.monotonic() - t))
PY
)
	wait "$SERVER_PID"
	rc=$?
	echo "# drain: $(tr '\n' ' ' <<<"$out")"
	expect_match "SIGTERM with 50 requests in flight (8 workers, 1 s each): all 50 complete with 200" "complete=50 " "$out"
	expect_match "each with Connection: close" "closing=50" "$out"
	expect_match "no new connection is accepted once SIGTERM arrives" "refused=yes" "$out"
	expect "then the server exits 0" 0 "$rc"
	((SECONDS - start < 20)) && ok "the drain took $((SECONDS - start)) s (under 20 s)" || not_ok "the drain took under 20 s" "$((SECONDS - start)) s"
	check_sanitizer_log drain50 "$SERVER_LOG"
}

# ---- a plug-in cannot put control bytes in a header ----
# model_response_type and model_response_custom_attributes refuse a value
# with a control byte (a request can carry a tab to the faulty plug-in, as
# HTTP allows it in a field value): the answer goes out without that header,
# and the worker lives on (a refused value must not make its reply malformed).
test_header_values() {
	local before out
	start_server headers --workers 1 --no-access-log || return
	before=$(workers)
	out=$(curl -s -D - -o /dev/null -H "$(attr $'type text/plain\tx')" -d hi "$(url /invocations)" | tr -d '\r')
	expect_match "a Content-Type with a tab from the plug-in: 200" '^HTTP/1.1 200 ' "$out"
	expect_match "  and the default Content-Type, not the tab" $'\nContent-Type: application/octet-stream\n' "$out"
	out=$(curl -s -D - -o /dev/null -H "$(attr $'attrs a\tb')" -d hi "$(url /invocations)" | tr -d '\r')
	expect_match "custom attributes with a tab from the plug-in: 200" '^HTTP/1.1 200 ' "$out"
	expect "  and no custom attributes header" 0 "$(grep -ci '^x-amzn-sagemaker-custom-attributes' <<<"$out")"
	expect "the worker lived through both" "$before" "$(workers)"
	stop_server headers
}

# ---- SIGTERM closes idle keep-alive connections at once ----
# An idle client must not hold the drain up to its 25 s limit.
test_sigterm_idle() {
	local out rc start
	start_server termidle --workers 1 --no-access-log || return
	start=$SECONDS
	out=$("$PY" - "$PORT" "$SERVER_PID" <<'PY'
import os, signal, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
first = s.recv(4096).split(b"\r\n")[0].decode()
time.sleep(0.2)                       # idle, kept open
t = time.monotonic()
os.kill(pid, signal.SIGTERM)
rest = s.recv(4096)                   # the server's end of stream
print(first, "|", rest == b"", "|", "%.0f" % (time.monotonic() - t))
PY
)
	wait "$SERVER_PID"
	rc=$?
	expect "SIGTERM with an idle kept connection: closed at once (end of stream within 1 s)" \
		"HTTP/1.1 200 OK | True | 0" "$out"
	expect "  and the server exits 0" 0 "$rc"
	((SECONDS - start < 10)) && ok "  in under 10 s" || not_ok "  in under 10 s" "$((SECONDS - start)) s"
	check_sanitizer_log termidle "$SERVER_LOG"
}

# ---- stray signals: logged and ignored ----
# SIGHUP, SIGUSR1, SIGUSR2 and SIGALRM end a process by default; an init
# (docker run --init, tini) or a supervisor may pass them on. They must not
# end the loop or cost an in-flight request; only SIGTERM and SIGINT stop it.
test_stray_signals() {
	local out sig before
	start_server stray --workers 1 || return
	before=$(workers)
	curl -s -o "$TEST_TMP/stray.out" -w '%{http_code}' -H "$(attr 'sleep 1')" -d inflight "$(url /invocations)" >"$TEST_TMP/stray.code" &
	local client=$!
	sleep 0.3
	for sig in HUP USR1 USR2 ALRM; do kill -"$sig" "$SERVER_PID"; done
	sleep 0.2
	kill -0 "$SERVER_PID" 2>/dev/null && ok "SIGHUP, SIGUSR1, SIGUSR2, SIGALRM: the loop lives" ||
		not_ok "SIGHUP, SIGUSR1, SIGUSR2, SIGALRM: the loop lives" "it exited"
	wait "$client"
	expect "  the request in flight is answered" "200 inflight" "$(cat "$TEST_TMP/stray.code") $(cat "$TEST_TMP/stray.out")"
	expect "  /ping answers 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$(url /ping)")"
	expect "  the same worker serves" "$before" "$(workers)"
	expect "  each logged as ignored" 4 "$(grep -c 'ignored (only SIGTERM and SIGINT stop the server)' "$SERVER_LOG")"
	stop_server stray
}

# ---- SIGTERM and a request in the same instant ----
# A keep-alive connection whose next request came with SIGTERM is not idle:
# the request is answered (with Connection: close), not dropped with a reset.
test_sigterm_with_request() {
	local out rc
	start_server termreq --workers 1 --no-access-log || return
	out=$("$PY" - "$PORT" "$SERVER_PID" <<'PY'
import os, signal, socket, sys, time
sys.path.insert(0, "tests")
from rawhttp import until_close
port, pid = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
first = s.recv(4096).split(b"\r\n")[0]
os.kill(pid, signal.SIGSTOP)     # both arrive while the loop is stopped
time.sleep(0.1)
s.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
time.sleep(0.2)
os.kill(pid, signal.SIGTERM)
time.sleep(0.1)
os.kill(pid, signal.SIGCONT)
buf = until_close(s)
print(first.decode(), "|", buf.split(b"\r\n")[0].decode(), "|",
      b"\r\nConnection: close\r\n" in buf, "|", buf.endswith(b"hello"))
PY
)
	wait "$SERVER_PID"
	rc=$?
	expect "SIGTERM with a request just sent on a kept connection: it is answered, with Connection: close" \
		"HTTP/1.1 200 OK | HTTP/1.1 200 OK | True | True" "$out"
	expect "then the server exits 0" 0 "$rc"
	check_sanitizer_log termreq "$SERVER_LOG"
}

# ---- a second SIGTERM exits at once with status 1 ----
# ---- draining, a worker lost to a timeout is still replaced ----
# (worker_fail forks the replacement at once, draining or not: requests may
# still wait in the queue.)
test_drain_respawn() {
	start_server drainrespawn --workers 1 --timeout 2 || return
	curl -s -o /dev/null -m 10 -H "$(attr hang)" -d x "$(url /invocations)" &
	sleep 0.5
	curl -s -m 10 -w ' %{http_code}' -d queued "$(url /invocations)" >"$TEST_TMP/queued.out" &
	local queued=$!
	sleep 0.1
	kill -TERM "$SERVER_PID"
	wait "$queued"
	# The hang is killed at 2 s; the queued request's own wait would end
	# 0.5 s later with a 503, had no worker replaced the one killed.
	expect "SIGTERM, one worker, its request hangs: the request queued behind it is still served" \
		"queued 200" "$(tr -d '\n' <"$TEST_TMP/queued.out")"
	wait_for 5 eval '! kill -0 "$SERVER_PID" 2>/dev/null'
	wait "$SERVER_PID"
	expect "then the drain ends with exit status 0" 0 "$?"
	check_sanitizer_log drainrespawn "$SERVER_LOG"
}

test_second_sigterm() {
	local rc pids t0 client code
	start_server term2 --workers 2 || return
	pids=$(workers)
	curl -s -o /dev/null -w '%{http_code}' -H "$(attr 'sleep 10')" -d x "$(url /invocations)" >"$TEST_TMP/term2.code" &
	client=$!
	sleep 0.3
	kill -TERM "$SERVER_PID"
	sleep 0.3
	kill -0 "$SERVER_PID" 2>/dev/null && ok "after one SIGTERM the server still drains its 10 s request" ||
		not_ok "after one SIGTERM the server still drains its 10 s request"
	t0=$(date +%s%N)
	kill -TERM "$SERVER_PID"
	wait "$SERVER_PID"
	rc=$?
	expect "a second SIGTERM: exit status 1" 1 "$rc"
	t0=$((($(date +%s%N) - t0) / 1000000))
	# Well before the 10 s request would end: the busy worker is killed.
	((t0 < 5000)) && ok "at once (${t0} ms, not the 10 s drain)" || not_ok "at once" "${t0} ms"
	wait "$client"
	code=$(cat "$TEST_TMP/term2.code")
	expect "the abandoned request sees the connection close, no answer" 000 "$code"
	wait_for 2 gone $pids && ok "no worker process is left" || not_ok "no worker process is left" "$(ps -o pid,stat,cmd -p "${pids// /,}" 2>&1 | tail -n +2)"
	check_sanitizer_log term2 "$SERVER_LOG"
}

# ---- SIGKILL of the loop process: the workers exit too ----
test_loop_killed() {
	local pids client left p
	start_server loopkill --workers 2 || return
	pids=$(workers)
	# One worker idle, one in a 2 s inference: each exits when it next
	# touches its socket and finds the loop gone (EOF, or EPIPE on its reply).
	curl -s -o /dev/null -H "$(attr 'sleep 2')" -d x "$(url /invocations)" &
	client=$!
	sleep 0.3
	kill -KILL "$SERVER_PID"
	wait "$SERVER_PID" 2>/dev/null
	wait "$client"
	if wait_for 4 gone $pids; then
		ok "SIGKILL of the loop: the idle and the busy worker exit too, within 4 s"
	else
		left=; for p in $pids; do gone "$p" || left+="$p "; done
		not_ok "SIGKILL of the loop: the idle and the busy worker exit too, within 4 s" "still running: $left"
		for p in $left; do kill -KILL "$p" 2>/dev/null; done
	fi

	# A worker stuck in a model that never returns never reads its socket
	# again: it must not outlive the loop all the same (a parent-death signal).
	start_server loopkill2 --workers 1 || return
	pids=$(workers)
	curl -s -o /dev/null -H "$(attr hang)" -d x "$(url /invocations)" &
	client=$!
	sleep 0.3
	kill -KILL "$SERVER_PID"
	wait "$SERVER_PID" 2>/dev/null
	wait "$client"
	if wait_for 2 gone $pids; then
		ok "SIGKILL of the loop: a worker stuck in a model that never returns exits too"
	else
		not_ok "SIGKILL of the loop: a worker stuck in a model that never returns exits too" "pid ${pids% } is orphaned"
		for p in $pids; do kill -KILL "$p" 2>/dev/null; done
		wait_for 2 gone $pids || not_ok "cleanup: the orphaned worker is killed"
	fi
}

if ! "$PY" -c '' 2>/dev/null; then
	echo "# SKIP: no /usr/bin/python3 for the fault clients"
	finish
	exit
fi
test_busy_workers
test_crash
test_worker_killed
test_interim_delayed
test_hang
test_idle_workers_killed
test_worker_death_one_pass
test_dead_worker_handed_request
test_queue_timeout_requeue
test_client_gone
test_client_gone_kept
test_client_gone_pipelined
test_client_gone_after_crlf
test_client_gone_draining
test_bad_answers
test_out_of_memory
test_sigterm_drain
test_drain_respawn
test_sigterm_with_request
test_sigterm_idle
test_stray_signals
test_header_values
test_second_sigterm
test_loop_killed
finish
