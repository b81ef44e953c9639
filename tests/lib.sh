# tests/lib.sh - shared helpers for the bash test scripts (sourced, not run).
# (No "# test-binary:" line: test.sh does not run it.)
#
# Every test script sources this file, runs checks with `ok`/`not_ok`/`expect`
# and ends with `finish`, which prints "N passed, N failed" and sets the exit
# status. Servers are real binaries on free loopback ports; the binary is
# $SMSERVE (default ./smserve), so the same scripts run against the sanitizer
# build. A server's stderr is kept; `stop_server` fails the run if it holds a
# sanitizer report.

SMSERVE=${SMSERVE:-./smserve}
TEST_TMP=${TEST_TMP:-$(mktemp -d)}
PASSED=0
FAILED=0
SERVER_PIDS=()

ok() { PASSED=$((PASSED + 1)); echo "ok - $1"; }
not_ok() { FAILED=$((FAILED + 1)); echo "not ok - $1${2:+ ($2)}"; }

# expect NAME EXPECTED ACTUAL
expect() {
	if [[ "$2" == "$3" ]]; then ok "$1"; else not_ok "$1" "expected [$2], got [${3:0:300}]"; fi
}

# report NAME OUTPUT STATUS: a client's lines as checks. The Python clients
# of the socket-level tests print "ok X" or "fail X (DETAIL)" per check;
# other lines are printed as comments. A client that exited non-zero or
# printed no result is a failure too.
report() {
	local name=$1 out=$2 rc=$3 line n=0
	while IFS= read -r line; do
		case $line in
		"ok "*) ok "${line#ok }"; n=$((n + 1)) ;;
		"fail "*) not_ok "${line#fail }"; n=$((n + 1)) ;;
		"") ;;
		*) echo "# $line" ;;
		esac
	done <<<"$out"
	[[ $rc -eq 0 && $n -gt 0 ]] || not_ok "$name: the client finished" "exit status $rc, $n results"
}

# wait_for SECONDS COMMAND...: polls COMMAND every 0.05 s until it succeeds.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS <= end)) || return 1
		sleep 0.05
	done
}

# wait_clients: waits for the background jobs this script started, but not
# the servers (a bare `wait` would wait for them too).
wait_clients() {
	local p
	for p in $(jobs -p); do
		[[ " ${SERVER_PIDS[*]} " == *" $p "* ]] || wait "$p"
	done
}

# workers: the server's child processes (its workers), by pid, on one line.
workers() { pgrep -P "$SERVER_PID" | sort -n | tr '\n' ' '; }
worker_count_is() { [[ $(pgrep -P "$SERVER_PID" | wc -l) -eq $1 ]]; }

# still_serving NAME WORKERS: /ping and an invocation answer on new
# connections, and WORKERS workers run (a replaced one given 5 s to start).
still_serving() {
	local name=$1 want=$2 out
	out=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$(url /ping)")
	out+=" $(curl -s -m 10 -d alive "$(url /invocations)")"
	wait_for 5 worker_count_is "$want"
	out+=" $(pgrep -P "$SERVER_PID" | wc -l)"
	expect "$name: then /ping and an invocation answer; $want worker(s)" "200 alive $want" "$out"
}

# expect_match NAME REGEX ACTUAL
expect_match() {
	if [[ "$3" =~ $2 ]]; then ok "$1"; else not_ok "$1" "expected /$2/, got [${3:0:300}]"; fi
}

finish() {
	local pid
	for pid in "${SERVER_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
	echo "$PASSED passed, $FAILED failed"
	[[ $FAILED -eq 0 ]]
}

# free_port: prints a TCP port nobody listens on.
free_port() {
	local p
	while :; do
		p=$((10000 + RANDOM % 22000))  # below the kernel's ephemeral range
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

# listens_on PID PORT: whether process PID holds the socket listening on
# PORT (state 0A, LISTEN, in /proc/net/tcp; its inode among PID's files).
listens_on() {
	local inode hex_port
	hex_port=$(printf '%04X' "$2")
	for inode in $(awk -v p=":$hex_port" '$2 ~ p "$" && $4 == "0A" {print $10}' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null); do
		ls -l "/proc/$1/fd" 2>/dev/null | grep -q "socket:\[$inode\]" && return 0
	done
	return 1
}

# start_server NAME [ARG...]: starts $SMSERVE on a free port with ARGs.
# Sets PORT, SERVER_PID and SERVER_LOG (stdout and stderr). Waits until /ping
# answers (any status), for at most 10 s. test.sh runs two scripts at once,
# so another server can take the port between free_port and the bind: then
# this one exits saying so, and is started again on another port.
start_server() {
	local name=$1 attempt i
	shift
	SERVER_LOG=$TEST_TMP/$name.log
	for attempt in 1 2 3; do
		PORT=$(free_port)
		"$SMSERVE" --port "$PORT" "$@" >"$SERVER_LOG" 2>&1 &
		SERVER_PID=$!
		SERVER_PIDS+=("$SERVER_PID")
		for i in $(seq 200); do
			if ! kill -0 "$SERVER_PID" 2>/dev/null; then
				grep -q "cannot listen on port" "$SERVER_LOG" && continue 2
				echo "# $name exited: $(tail -3 "$SERVER_LOG")"
				return 1
			fi
			# (the answer must come from this server: one still starting,
			# about to find the port taken, must not pass for it)
			curl -s -o /dev/null "http://127.0.0.1:$PORT/ping" && listens_on "$SERVER_PID" "$PORT" &&
				return 0
			sleep 0.05
		done
		echo "# $name did not answer /ping on $PORT"
		return 1
	done
	echo "# $name: the port was taken three times: $(tail -1 "$SERVER_LOG")"
	return 1
}

# stop_server NAME: SIGTERM, wait for exit (10 s), check its exit status and
# that its log has no sanitizer report.
stop_server() {
	local name=$1 rc i
	kill -TERM "$SERVER_PID" 2>/dev/null
	for i in $(seq 200); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.05; done
	if kill -0 "$SERVER_PID" 2>/dev/null; then
		kill -KILL "$SERVER_PID"
		not_ok "$name: exits after SIGTERM" "still running after 10 s"
	fi
	wait "$SERVER_PID" 2>/dev/null
	rc=$?
	expect "$name: exit status 0 after SIGTERM" 0 "$rc"
	check_sanitizer_log "$name" "$SERVER_LOG"
}

# check_sanitizer_log NAME FILE: fails if FILE holds an ASan/UBSan/LSan report.
check_sanitizer_log() {
	if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$2"; then
		not_ok "$1: no sanitizer report" "$(grep -m3 -E 'Sanitizer|runtime error' "$2")"
	fi
}

# url PATH: the address of PATH on the server started last.
url() { echo "http://127.0.0.1:$PORT$1"; }

# raw PORT BYTES [WAIT]: sends BYTES (printf %b escapes) on a new connection
# and prints everything the server sends until it closes the connection or
# WAIT seconds (default 2) pass. Used for requests curl cannot send.
raw() {
	local port=$1 bytes=$2 wait=${3:-2}
	(
		exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
		printf '%b' "$bytes" >&3
		timeout "$wait" cat <&3
	) 2>/dev/null
}

# ---- a tiny HTTP client over bash's /dev/tcp, for what curl cannot send ----
# (scripts that use it set LC_ALL=C: read -N then counts bytes)

# read_response FD HEAD?: reads one final response (skipping 1xx) from FD.
# Sets R_STATUS, R_HEADERS (lower-cased, one per line), R_BODY, R_INTERIM.
read_response() {
	local fd=$1 is_head=${2:-} line len
	R_STATUS= R_HEADERS= R_BODY= R_INTERIM=
	while :; do
		IFS= read -r -t 5 line <&"$fd" || return 1
		line=${line%$'\r'}
		R_STATUS=${line:9:3}
		R_HEADERS=
		while IFS= read -r -t 5 line <&"$fd"; do
			line=${line%$'\r'}
			[[ -z $line ]] && break
			R_HEADERS+="${line,,}"$'\n'
		done
		[[ $R_STATUS == 1* ]] || break
		R_INTERIM+="$R_STATUS "
	done
	len=$(sed -n 's/^content-length: *//p' <<<"$R_HEADERS")
	if [[ -n $len && $len -gt 0 && -z $is_head ]]; then
		IFS= read -r -N "$len" -t 5 R_BODY <&"$fd" || return 1
	fi
	return 0
}

# closed_by_server FD [SECONDS]: true when the server closes the connection
# (end of stream, no byte before it) within SECONDS (default 3).
closed_by_server() {
	local x
	IFS= read -r -N 1 -t "${2:-3}" x <&"$1"
	[[ $? -eq 1 && -z $x ]]
}

# status_of RESPONSE: the status code of the first non-1xx response in RESPONSE.
status_of() {
	printf '%s' "$1" | tr -d '\r' | awk '/^HTTP\/1\.[01] [0-9][0-9][0-9]/ { if ($2 !~ /^1/) { print $2; exit } }'
}

# ---- for plug-in tests: POST to /invocations and look at the answer ----

# post FILE [CONTENT-TYPE [ACCEPT]]: POSTs FILE to /invocations on $PORT; "-"
# (the default) sends no such header. Sets STATUS, CTYPE and BODY (the first
# $BODY_KEEP bytes when that is set, else all); the body is also in
# $TEST_TMP/body.
post() {
	local file=$1 ct=${2:--} acc=${3:--} meta
	local args=(-s --max-time 120 -o "$TEST_TMP/body" -w '%{http_code} %{content_type}')
	if [[ $ct == - ]]; then args+=(-H 'Content-Type:'); else args+=(-H "Content-Type: $ct"); fi
	if [[ $acc == - ]]; then args+=(-H 'Accept:'); else args+=(-H "Accept: $acc"); fi
	meta=$(curl "${args[@]}" --data-binary "@$file" "http://127.0.0.1:$PORT/invocations")
	STATUS=${meta%% *}
	CTYPE=${meta#* }
	if [[ -n ${BODY_KEEP:-} ]]; then BODY=$(head -c "$BODY_KEEP" "$TEST_TMP/body"); else BODY=$(cat "$TEST_TMP/body"); fi
}

# send TEXT [CONTENT-TYPE [ACCEPT]]: post with the body given inline (printf %b).
send() {
	printf '%b' "$1" >"$TEST_TMP/req"
	post "$TEST_TMP/req" "${2:--}" "${3:--}"
}

# expect_error NAME STATUS REGEX: the last answer was STATUS with an
# {"error": ...} body matching REGEX.
expect_error() {
	if [[ $STATUS == "$2" && $CTYPE == application/json* && $BODY =~ ^\{\"error\":\ \".*\"\}$ && $BODY =~ $3 ]]; then
		ok "$1"
	else
		not_ok "$1" "expected $2 /$3/, got $STATUS [${BODY:0:300}]"
	fi
}
