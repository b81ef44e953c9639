#!/usr/bin/env bash
# test-binary: faulty
# tests/lifecycle.sh - the server over time and at its edges, the slower
# part of the HTTP tests: the three timeouts (a head not finished, a body
# that stops, an idle keep-alive connection, which must really be closed,
# and not before its time), a stray CRLF that starts no timeout, the memory
# budget (--max-buffered-mb) and the buffers kept between requests,
# start-up and configuration (command line, SAGEMAKER_* variables, the
# start-up and access log lines), and more connections than select() can
# watch.
#
#   SMSERVE=./build/smserve-faulty bash tests/lifecycle.sh   (or: bash test.sh lifecycle)
#
# Runs against $SMSERVE built with tests/plugins/faulty.c.
set -u
cd "$(dirname "$0")/.." || exit 1
export LC_ALL=C                       # read -N counts bytes, not characters
SMSERVE=${SMSERVE:-./build/smserve-faulty}
source tests/lib.sh

# ---- the timeouts ----
test_timeouts() {
	local out
	start_server timeouts --workers 1 --header-timeout 1 --body-timeout 1 --idle-timeout 3 || return
	out=$(raw "$PORT" 'GET /ping HTTP/1.1\r\nHost: x\r\n' 4)
	expect "a head not finished within --header-timeout: 408" 408 "$(status_of "$out")"
	out=$(raw "$PORT" 'POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc' 4)
	expect "a body that stops short: 408 after --body-timeout" 408 "$(status_of "$out")"
	# An answered keep-alive connection, then silence: still open 2 s later
	# (--idle-timeout 3; the other timeouts, 1 s, do not apply), closed by
	# the server (end of stream, no byte sent) within 3 s more. The client
	# never closes it.
	out=$(
		exec 3<>"/dev/tcp/127.0.0.1/$PORT"
		printf 'GET /ping HTTP/1.1\r\nHost: x\r\n\r\n' >&3
		read_response 3 || { echo "no answer"; exit; }
		IFS= read -r -N 1 -t 2 x <&3
		rc=$?
		((rc > 128)) && echo -n "open " || echo -n "closed-early($rc) "
		closed_by_server 3 3 && echo "closed" || echo "still-open"
	)
	expect "an idle keep-alive connection: open before --idle-timeout, closed by the server after it" \
		"open closed" "$out"
	stop_server timeouts

	# RFC 9112 2.2: a CRLF after a body (some old clients send one) is not
	# a request head, so --header-timeout does not start: no 408 comes.
	# quiet_then_ping BYTES...: on one connection, sends each BYTES (printf
	# escapes) 0.3 s apart, waits 2.2 s, sends GET /ping; prints the statuses.
	quiet_then_ping() {
		(
			exec 3<>"/dev/tcp/127.0.0.1/$PORT"
			for bytes in "$@"; do printf "$bytes" >&3; sleep 0.3; done
			sleep 1.9
			printf 'GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
			timeout 3 cat <&3 | grep -ao 'HTTP/1.1 [0-9]*' | tr '\n' ' '
		)
	}
	local post2='POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab'
	start_server crlf --workers 1 --header-timeout 1 --idle-timeout 10 --no-access-log || return
	expect "a CRLF after a body, then 2 s of quiet: no 408, and the next request is served" \
		"HTTP/1.1 200 HTTP/1.1 200 " "$(quiet_then_ping "$post2\r\n")"
	expect "a CRLF that comes after the response, then 2 s of quiet: no 408" \
		"HTTP/1.1 200 HTTP/1.1 200 " "$(quiet_then_ping "$post2" '\r\n')"
	expect "a new connection's CRLF, split in two, then 2 s of quiet: no 408" "HTTP/1.1 200 " \
		"$(quiet_then_ping '\r' '\n')"
	stop_server crlf
}

# ---- the memory budget: --max-buffered-mb ----
test_budget() {
	local out f=$TEST_TMP/1mib
	head -c 1048576 /dev/zero >"$f"
	start_server budget --workers 1 --max-body-mb 1 --max-buffered-mb 2 || return
	out=$(
		exec 3<>"/dev/tcp/127.0.0.1/$PORT" 4<>"/dev/tcp/127.0.0.1/$PORT" 5<>"/dev/tcp/127.0.0.1/$PORT"
		# Two bodies of 1,000,000 bytes held 90% sent: about 1.8 MiB of the 2 MiB.
		{ printf 'POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n'; head -c 900000 /dev/zero; } >&3
		{ printf 'POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n'; head -c 900000 /dev/zero; } >&4
		sleep 0.2
		{ printf 'POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n'; head -c 900000 /dev/zero; } >&5 2>/dev/null
		read_response 5 && grep -c '^retry-after: 1' <<<"$R_HEADERS" | sed "s/^/$R_STATUS /"
	)
	expect "bodies over --max-buffered-mb: 503 with Retry-After" "503 1" "$out"
	out=$(
		for i in 3 4 5 6 7 8 9; do eval "exec $i<>/dev/tcp/127.0.0.1/$PORT"; done
		for i in 3 4 5 6 7 8 9; do printf 'POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n' >&$i; done
		curl -s -o /dev/null -w '%{http_code}' --data-binary @"$f" "$(url /invocations)"
	)
	expect "bodies announced but not sent hold no budget: a real 1 MiB body is still served" 200 "$out"
	stop_server budget

	# --max-buffered-mb as small as --max-body-mb still takes the largest
	# body, with its head and its chunk framing.
	start_server tight --workers 1 --max-body-mb 1 --max-buffered-mb 1 --no-access-log || return
	out=$(curl -s -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' --data-binary @"$f" "$(url /invocations)")
	expect "--max-buffered-mb equal to --max-body-mb: a chunked body of the limit is served" 200 "$out"
	out=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Pad: $(printf 'p%.0s' $(seq 5000))" --data-binary @"$f" "$(url /invocations)")
	expect "and a body of the limit behind a 5 kB head" 200 "$out"
	stop_server tight
}

# ---- a large input buffer kept between requests, within the budget ----
test_kept_buffer() {
	local out f=$TEST_TMP/1mb before kept after
	local big='POST /invocations HTTP/1.1\r\nHost: x\r\nX-Amzn-SageMaker-Custom-Attributes: empty\r\nContent-Length: 1000000\r\n\r\n'
	# A fixed mmap threshold keeps glibc from moving large buffers onto its
	# heap after the first free, so that memory given back leaves the RSS.
	GLIBC_TUNABLES=glibc.malloc.mmap_threshold=65536 \
		start_server kept --workers 1 --max-body-mb 1 --max-buffered-mb 2 || return
	head -c 1000000 /dev/zero | tr '\0' a >"$f"
	out=$(
		exec 3<>"/dev/tcp/127.0.0.1/$PORT" 4<>"/dev/tcp/127.0.0.1/$PORT"
		# A 1 MB body answered: its connection, now idle, keeps the buffer.
		{ printf "$big"; cat "$f"; } >&3
		read_response 3 && printf '%s ' "$R_STATUS"
		# 900 kB of another held; with a third 1 MB body that passes 2 MiB.
		{ printf "$big"; head -c 900000 "$f"; } >&4
		sleep 0.2
		curl -s -o /dev/null -w '%{http_code}' --data-binary @"$f" "$(url /invocations)"
	)
	expect "a buffer kept by an idle connection is given back when the budget runs short" "200 200" "$out"
	if grep -q __asan_init "$SMSERVE" 2>/dev/null; then
		echo "# SKIP: the loop's RSS after a large body (the sanitizer's allocator keeps freed memory)"
	else
		out=$(
			rss() { awk '/^Rss:/ {print $2}' "/proc/$1/smaps_rollup"; }  # exact, unlike VmRSS
			worker=$(pgrep -P "$SERVER_PID" | head -1)
			exec 3<>"/dev/tcp/127.0.0.1/$PORT"
			sleep 1.6              # the worker's region pages from the bodies above go back
			before=$(rss "$SERVER_PID") w_before=$(rss "$worker")
			# echoed: the model reads the 1 MB body and writes a 1 MB answer
			{ printf "${big/X-Amzn-SageMaker-Custom-Attributes: empty\\r\\n/}"; cat "$f"; } >&3
			read_response 3
			kept=$(rss "$SERVER_PID") w_kept=$(rss "$worker")
			sleep 1.6              # IN_BUF_IDLE_RELEASE_MS is 1000
			after=$(rss "$SERVER_PID") w_after=$(rss "$worker")
			echo "$((kept - before >= 600)) $((kept - after >= 600))" \
			     "$((w_kept - w_before >= 600)) $((w_kept - w_after >= 600))" \
			     "$R_STATUS (loop $before, $kept, $after KiB; worker $w_before, $w_kept, $w_after KiB)"
		)
		expect_match "the loop keeps a 1 MB body's buffer after the answer and gives it back after 1 s idle" \
			'^1 1 ' "$out"
		# The body and the answer are in the region the worker shares with
		# the loop: its pages stay while requests come, and go back (to the
		# kernel, from both processes) after 1 s idle.
		expect_match "the worker keeps the shared pages of a 1 MB body and answer, and gives them back after 1 s idle" \
			'^. . 1 1 200 ' "$out"
	fi
	stop_server kept
}

# ---- command line, environment, start-up ----
# (--version, --healthcheck, SAGEMAKER_BATCH and SAGEMAKER_CONTAINER_LOG_LEVEL
# as values and the log's time format: tests/cli.sh)
test_command_line() {
	local out rc p
	out=$("$SMSERVE" --help); rc=$?
	expect "--help exits 0" 0 "$rc"
	expect_match "--help lists --max-body-mb" "--max-body-mb" "$out"
	"$SMSERVE" --workers abc >/dev/null 2>"$TEST_TMP/err"; rc=$?
	expect "a bad --workers value exits 2" 2 "$rc"
	expect_match "and names the setting" "invalid value 'abc' for --workers" "$(cat "$TEST_TMP/err")"
	SAGEMAKER_MODEL_SERVER_WORKERS=0 "$SMSERVE" >/dev/null 2>&1; expect "SAGEMAKER_MODEL_SERVER_WORKERS=0 exits 2" 2 "$?"
	SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS=1m "$SMSERVE" >/dev/null 2>"$TEST_TMP/err"; rc=$?
	expect "SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS=1m exits 2" 2 "$rc"
	expect_match "and names the variable" "SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS" "$(cat "$TEST_TMP/err")"
	FAULTY_FAIL_LOAD=1 "$SMSERVE" --port "$(free_port)" --model-dir /tmp/nowhere >/dev/null 2>"$TEST_TMP/err"; rc=$?
	expect "a model that fails to load: exit 1" 1 "$rc"
	expect_match "naming the file and the reason" "cannot load the model from /tmp/nowhere: /tmp/nowhere/model.bin: refusing" "$(cat "$TEST_TMP/err")"

	p=$(free_port)
	SAGEMAKER_BIND_TO_PORT=$p SAGEMAKER_MODEL_SERVER_WORKERS=3 SAGEMAKER_MAX_PAYLOAD_IN_MB=20 "$SMSERVE" serve >"$TEST_TMP/env.log" 2>&1 &
	SERVER_PID=$!; SERVER_PIDS+=("$SERVER_PID"); SERVER_LOG=$TEST_TMP/env.log
	for i in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$p/ping" && break; sleep 0.05; done
	out=$(curl -s "http://127.0.0.1:$p/execution-parameters")
	expect "serve on SAGEMAKER_BIND_TO_PORT with SAGEMAKER_MODEL_SERVER_WORKERS and SAGEMAKER_MAX_PAYLOAD_IN_MB" \
		'{"MaxConcurrentTransforms": 3, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 20}' "$out"
	SAGEMAKER_BIND_TO_PORT=$p "$SMSERVE" --healthcheck; expect "--healthcheck finds SAGEMAKER_BIND_TO_PORT" 0 "$?"
	expect "start-up line names port, model dir and workers" 1 "$(grep -c "listening on 0.0.0.0:$p model_dir=/opt/ml/model workers=3" "$TEST_TMP/env.log")"
	PORT=$p
	curl -s -o /dev/null -d x "$(url /invocations)"; curl -s -o /dev/null "$(url /ping)"; curl -s -o /dev/null "$(url /nope)"
	sleep 0.1
	expect_match "an access line per invocation: method, path, status, bytes, microseconds" \
		'POST /invocations 200 in=[0-9]+ out=[0-9]+ us=[0-9]+' "$(cat "$TEST_TMP/env.log")"
	expect "/ping is not logged" 0 "$(grep -c 'GET /ping' "$TEST_TMP/env.log")"
	stop_server env

	# Batch transform waits 600 s for an answer by default (REQ-52), and so
	# does smserve when SAGEMAKER_BATCH says it serves one; an explicit
	# timeout wins. The start-up line shows the timeout in force.
	for t in "SAGEMAKER_BATCH=True|600" "SAGEMAKER_BATCH=True SAGEMAKER_MODEL_SERVER_TIMEOUT=7|7" \
		"SAGEMAKER_BATCH=True --timeout 9|9" "SAGEMAKER_BATCH=|60" "SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS=8|8" \
		"SAGEMAKER_MODEL_SERVER_TIMEOUT=7 SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS=8|8" \
		"SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS=8 --timeout 9|9"; do
		args=${t%|*} want=${t#*|}
		rm -f "$TEST_TMP/batch.log"
		# shellcheck disable=SC2086 # args holds assignments and options
		env ${args%% --*} "$SMSERVE" --port "$(free_port)" $([[ $args == *--* ]] && echo "--${args#*--}") \
			>"$TEST_TMP/batch.log" 2>&1 &
		local bp=$!
		for i in $(seq 100); do grep -qs 'listening' "$TEST_TMP/batch.log" && break; sleep 0.05; done
		kill "$bp"; wait "$bp" 2>/dev/null
		expect "invocation timeout with $args" "timeout=${want}s" "$(grep -o ' timeout=[0-9]*s' "$TEST_TMP/batch.log" | tr -d ' ')"
	done

	# With no --workers, one worker per CPU the process may run on: a
	# container given two of a host's CPUs runs two, not one per host CPU.
	# Counted here as nproc counts them (without the OpenMP variables it
	# also reads), on all the CPUs this shell may use and on the first alone.
	if command -v taskset >/dev/null; then
		local allowed first cpus list
		allowed=$(taskset -pc $$ | sed 's/.*: *//')
		first=$(sed 's/[,-].*//' <<<"$allowed")
		[[ $first == "$allowed" ]] && echo "# SKIP: one CPU only: the count on one CPU would tell nothing more"
		for list in "$allowed" $([[ $first != "$allowed" ]] && echo "$first"); do
			cpus=$(taskset -c "$list" env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
			rm -f "$TEST_TMP/cpus.log"
			taskset -c "$list" "$SMSERVE" --port "$(free_port)" >"$TEST_TMP/cpus.log" 2>&1 &
			local cp=$!
			for i in $(seq 100); do grep -qs 'listening' "$TEST_TMP/cpus.log" && break; sleep 0.05; done
			kill "$cp"; wait "$cp" 2>/dev/null
			expect "default workers on CPUs $list ($cpus)" "workers=$cpus" "$(grep -o ' workers=[0-9]*' "$TEST_TMP/cpus.log" | tr -d ' ')"
		done
	else
		echo "# SKIP: no taskset for the default worker count"
	fi

	# CreateTransformJob refuses MaxPayloadInMB over 100, and a product of
	# MaxConcurrentTransforms and MaxPayloadInMB over 100: both are capped.
	local t args want
	for t in "--workers 20|16 6" "--workers 2 --max-body-mb 200|1 100" "--workers 3 --max-body-mb 40|2 40" \
		"--workers 2 SAGEMAKER_MAX_PAYLOAD_IN_MB=0|1 100"; do
		args=${t%|*} want=${t#*|}
		[[ $args == *=0 ]] && export SAGEMAKER_MAX_PAYLOAD_IN_MB=0
		# shellcheck disable=SC2086 # args holds several options
		start_server params ${args% SAGEMAKER*} --no-access-log || continue
		unset SAGEMAKER_MAX_PAYLOAD_IN_MB
		out=$(curl -s "$(url /execution-parameters)" | sed -E 's/.*Transforms": ([0-9]+).*InMB": ([0-9]+).*/\1 \2/')
		expect "/execution-parameters with $args: within SageMaker's 100 MB" "$want" "$out"
		stop_server params
	done

	start_server quiet --no-access-log || return
	curl -s -o /dev/null -d x "$(url /invocations)"
	raw "$PORT" 'GET /ping HTTP/1.1\nHost: x\n\n' >/dev/null
	stop_server quiet
	expect "--no-access-log: no access lines" 0 "$(grep -c 'POST /invocations' "$SERVER_LOG")"
	expect "an error still gets its line" 1 "$(grep -c 'smserve: 400 bare LF in request head' "$SERVER_LOG")"
}

# ---- more connections than select() can watch ----
test_fd_setsize() {
	local out
	start_server fdset --workers 1 || return
	out=$(/usr/bin/python3 - "$PORT" "$SERVER_PID" <<'PY'
import os, select, signal, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
socks = []
for i in range(1100):
    socks.append(socket.create_connection(("127.0.0.1", port)))
time.sleep(0.5)
# Every connection past the table takes the place of the one idle longest,
# which is closed without a response (the first ones opened).
def readable(s):                  # (poll: select() cannot take these numbers)
    p = select.poll()
    p.register(s, select.POLLIN)
    return bool(p.poll(0))
closed = [readable(s) for s in socks]
gone = sum(closed)
silent = all(not s.recv(4096) for s, c in zip(socks, closed) if c)
print("displaced: the %s first, closed silently: %s" % ("oldest" if gone >= 70 and all(closed[:gone]) and not any(closed[gone:]) else "not the", silent))
# A client that sent its request before the loop took the connection (the
# loop is stopped meanwhile) displaces an idle one too and is answered.
os.kill(pid, signal.SIGSTOP)
try:
    late = [socket.create_connection(("127.0.0.1", port)) for i in range(10)]
    for s in late:
        s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.3)
finally:
    os.kill(pid, signal.SIGCONT)
answered = 0
for s in late:
    s.settimeout(2)
    try:
        answered += s.recv(4096).startswith(b"HTTP/1.1 200")
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
print("late: %d of 10 answered 200" % answered)
s = socks[-1]
s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
s.settimeout(2)
first = s.recv(100).split(b"\r\n")[0].decode()
for s in socks:
    s.close()
print(first)
PY
)
	expect "1,100 connections: those past the table displace the longest idle, which close silently; the rest are served" \
		"displaced: the oldest first, closed silently: True
late: 10 of 10 answered 200
HTTP/1.1 200 OK" "$out"
	out=$(curl -s -o /dev/null -w '%{http_code}' "$(url /ping)")
	expect "served again once they are gone" 200 "$out"
	stop_server fdset
}

test_timeouts
test_budget
test_kept_buffer
test_command_line
if /usr/bin/python3 -c '' 2>/dev/null; then test_fd_setsize; else echo "# SKIP: no python3 for the FD_SETSIZE test"; fi
finish
