#!/usr/bin/env bash
# test-binary: default
# tests/cli.sh - what an operator sees: the command line (--name value and
# --name=value), --version and the start-up line naming the plug-in,
# --healthcheck's exit status and its reason on failure, the SAGEMAKER_*
# switches that are not numbers (SAGEMAKER_BATCH, SAGEMAKER_CONTAINER_LOG_LEVEL),
# and one time format in every log line.
#
#   SMSERVE=./build/smserve-default bash tests/cli.sh      (from the repo root)
set -u
cd "$(dirname "$0")/.." || exit 1
source tests/lib.sh
MODEL=models/iris

# run_cli NAME EXPECTED_STATUS ERR_REGEX [ENV=VALUE...] -- ARG...: runs the
# binary (it must exit at once), checks its exit status and that stderr
# matches ERR_REGEX.
run_cli() {
	local name=$1 want=$2 regex=$3 envs=() rc err
	shift 3
	while [[ $1 != -- ]]; do envs+=("$1"); shift; done
	shift
	err=$(env "${envs[@]}" timeout 10 "$SMSERVE" "$@" 2>&1 >/dev/null)
	rc=$?
	expect "$name: exit status" "$want" "$rc"
	expect_match "$name: says why" "$regex" "$err"
}

# The time at the start of a log line: ISO 8601 in UTC, to the second.
ISO='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z '

# ---- --version and the start-up line name the plug-in --------------------
version=$("$SMSERVE" --version)
expect_match "--version: server, model API and plug-in" \
	'^smserve [0-9]+\.[0-9]+\.[0-9]+ \(model API 3, plug-in linear-learner [0-9.]+\)$' "$version"

# ---- --name=value is the same option as --name value ----------------------
port=$(free_port)
"$SMSERVE" --port="$port" --model-dir="$MODEL" --workers=1 >"$TEST_TMP/eq.log" 2>&1 &
pid=$!
SERVER_PIDS+=("$pid")
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/ping" && break; sleep 0.05; done
expect "--port=N --model-dir=DIR: /ping answers 200" 200 \
	"$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/ping")"
expect "--workers=1 is read" 1 "$(grep -c 'workers=1 ' "$TEST_TMP/eq.log")"
expect_match "start-up line names the plug-in and batch mode" \
	"smserve [0-9.]+ \(plug-in linear-learner [0-9.]+\) listening on 0\.0\.0\.0:$port model_dir=$MODEL workers=1 timeout=60s batch=off " \
	"$(cat "$TEST_TMP/eq.log")"

# ---- --healthcheck: exit 0 on a 200, else 1 with the reason -------------------
out=$("$SMSERVE" --healthcheck --port="$port" 2>&1)
expect "--healthcheck against a ready server: exit 0" 0 "$?"
expect "--healthcheck against a ready server: prints nothing" "" "$out"
kill -TERM "$pid"; wait "$pid" 2>/dev/null
run_cli "--healthcheck with nothing listening" 1 \
	"^smserve: healthcheck: cannot connect on 127\.0\.0\.1:$port: Connection refused$" -- --healthcheck --port "$port"

# A listener that answers /ping with a 503 (a server without a worker).
port503=$(free_port)
/usr/bin/python3 - "$port503" >/dev/null 2>&1 <<'EOF' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4); s.settimeout(20)
for _ in range(2):
    c, _ = s.accept(); c.recv(4096)
    c.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"); c.close()
EOF
py=$!
SERVER_PIDS+=("$py")
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port503") 2>/dev/null && break; sleep 0.05; done
run_cli "--healthcheck answered 503" 1 \
	"^smserve: healthcheck: GET /ping was not answered 200 on 127\.0\.0\.1:$port503: HTTP/1\.1 503 Service Unavailable$" \
	-- --healthcheck --port "$port503"
kill "$py" 2>/dev/null; wait "$py" 2>/dev/null
# A health check answers 0 or 1 (docker reserves 2), bad settings included.
run_cli "--healthcheck with a bad SAGEMAKER_BATCH: 1, not 2" 1 "invalid value 'yes' for SAGEMAKER_BATCH" \
	SAGEMAKER_BATCH=yes -- --healthcheck --port "$port"
run_cli "--healthcheck with a bad --port: 1, not 2" 1 "invalid value 'x' for --port" -- --healthcheck --port x

# ---- bad command lines exit 2 and say why -----------------------------------
run_cli "--port=abc" 2 "invalid value 'abc' for --port" -- --port=abc --model-dir "$MODEL"
run_cli "--port=" 2 "^smserve: --port needs a value$" -- --port= --model-dir "$MODEL"
run_cli "--model-dir=" 2 "^smserve: --model-dir needs a value$" -- --model-dir=
run_cli "--port with no value" 2 "^smserve: --port needs a value$" -- --model-dir "$MODEL" --port
run_cli "a flag given a value" 2 "^smserve: --no-access-log takes no value$" -- --no-access-log=yes
run_cli "an unknown option" 2 "unknown argument '--prot=8080'" -- --prot=8080
run_cli "train" 2 "cannot train" -- train

# ---- SAGEMAKER_BATCH: true or false, the start-up line says which ------------
# check_startup NAME REGEX [ENV=VALUE...]: starts a server with ENV and checks
# its start-up line against REGEX.
check_startup() {
	local name=$1 regex=$2 line
	shift 2
	line=$(
		export "$@"
		start_server startup --model-dir "$MODEL" --workers 1 >/dev/null || exit
		grep 'listening on' "$SERVER_LOG"
		kill -TERM "$SERVER_PID"
		wait "$SERVER_PID"
	)
	expect_match "$name" "$regex" "$line"
}
check_startup "SAGEMAKER_BATCH=true: batch on, timeout 600 s" "timeout=600s batch=on " SAGEMAKER_BATCH=true
check_startup "SAGEMAKER_BATCH=TRUE: any case" "timeout=600s batch=on " SAGEMAKER_BATCH=TRUE
check_startup "SAGEMAKER_BATCH=1" "timeout=600s batch=on " SAGEMAKER_BATCH=1
check_startup "SAGEMAKER_BATCH=false: batch off, timeout 60 s" "timeout=60s batch=off " SAGEMAKER_BATCH=false
check_startup "SAGEMAKER_BATCH=0" "timeout=60s batch=off " SAGEMAKER_BATCH=0
check_startup "SAGEMAKER_BATCH empty: off" "timeout=60s batch=off " SAGEMAKER_BATCH=
# MAX_CONTENT_LENGTH (AWS's framework containers; Autopilot sets 20 MiB)
# raises the body limit, never lowers it; SAGEMAKER_MAX_PAYLOAD_IN_MB too.
check_startup "MAX_CONTENT_LENGTH=20971520 raises the body limit" " max_body=20971520 " MAX_CONTENT_LENGTH=20971520
check_startup "MAX_CONTENT_LENGTH=100 does not lower it" " max_body=6291456 " MAX_CONTENT_LENGTH=100
check_startup "the larger of it and SAGEMAKER_MAX_PAYLOAD_IN_MB" " max_body=31457280 " MAX_CONTENT_LENGTH=20971520 SAGEMAKER_MAX_PAYLOAD_IN_MB=30
run_cli "MAX_CONTENT_LENGTH=20MB" 2 "invalid value '20MB' for MAX_CONTENT_LENGTH" MAX_CONTENT_LENGTH=20MB -- --model-dir "$MODEL"
run_cli "SAGEMAKER_BATCH=yes" 2 "invalid value 'yes' for SAGEMAKER_BATCH \(expected true or false\)" \
	SAGEMAKER_BATCH=yes -- --model-dir "$MODEL"

# ---- SAGEMAKER_MULTI_MODEL and --multi-model: the start-up line says which ------
check_startup "multi-model off by default" " multi_model=off$"
check_startup "SAGEMAKER_MULTI_MODEL=true" " multi_model=on$" SAGEMAKER_MULTI_MODEL=true
check_startup "SAGEMAKER_MULTI_MODEL=1" " multi_model=on$" SAGEMAKER_MULTI_MODEL=1
check_startup "SAGEMAKER_MULTI_MODEL=false" " multi_model=off$" SAGEMAKER_MULTI_MODEL=false
check_startup "SAGEMAKER_MULTI_MODEL=0" " multi_model=off$" SAGEMAKER_MULTI_MODEL=0
check_startup "SAGEMAKER_MULTI_MODEL empty: off" " multi_model=off$" SAGEMAKER_MULTI_MODEL=
run_cli "SAGEMAKER_MULTI_MODEL=yes" 2 "invalid value 'yes' for SAGEMAKER_MULTI_MODEL \(expected true or false\)" \
	SAGEMAKER_MULTI_MODEL=yes -- --model-dir "$MODEL"
run_cli "--multi-model takes no value" 2 "^smserve: --multi-model takes no value$" -- --multi-model=1
run_cli "--max-models 0" 2 "invalid value '0' for --max-models" -- --multi-model --max-models 0
run_cli "--max-model-mb x" 2 "invalid value 'x' for --max-model-mb" -- --multi-model --max-model-mb x
run_cli "--model-budget-mb 0" 2 "invalid value '0' for --model-budget-mb" -- --multi-model --model-budget-mb 0
run_cli "--load-timeout 0" 2 "invalid value '0' for --load-timeout" -- --multi-model --load-timeout 0
run_cli "SAGEMAKER_MODEL_BUDGET_MB=lots" 2 "invalid value 'lots' for SAGEMAKER_MODEL_BUDGET_MB" \
	SAGEMAKER_MODEL_BUDGET_MB=lots -- --multi-model
run_cli "extents past 64 TiB of addresses" 2 "passes 64 TiB of addresses" \
	-- --multi-model --max-models 1000000 --max-model-mb 1024
# A multi-model server loads no model at start: a model directory that does
# not exist is no error.
mm_line=$(
	start_server mm --multi-model --model-dir /nonexistent --workers 1 >/dev/null || exit
	code=$(curl -s -o /dev/null -w '%{http_code}' "$(url /ping)")
	echo "ping=$code"
	grep -c 'multi_model=on' "$SERVER_LOG"
	grep -o 'multi-model: max_models=[0-9]* max_model_mb=[0-9]* model_budget_mb=[0-9]* load_timeout=[0-9]*s' "$SERVER_LOG"
	kill -TERM "$SERVER_PID"
	wait "$SERVER_PID"
)
expect_match "--multi-model: no model at start, /ping 200, the settings logged" \
	"^ping=200.1.multi-model: max_models=10000 max_model_mb=256 model_budget_mb=[1-9][0-9]* load_timeout=120s$" \
	"$(printf '%s' "$mm_line" | tr '\n' '.')"

# ---- SAGEMAKER_CONTAINER_LOG_LEVEL: numbers and names; above INFO, no access log
# access_lines LEVEL: how many access log lines one invocation writes.
access_lines() {
	SAGEMAKER_CONTAINER_LOG_LEVEL=$1 start_server "level-$1" --model-dir "$MODEL" --workers 1 || return
	curl -s -o /dev/null -H 'Content-Type: text/csv' --data-binary '5.1,3.5,1.4,0.2' "$(url /invocations)"
	stop_server "level-$1" >/dev/null
	grep -c 'POST /invocations 200' "$SERVER_LOG"
}
for case in 10:1 20:1 INFO:1 info:1 DEBUG:1 30:0 WARNING:0 warning:0 WARN:0 ERROR:0 40:0 CRITICAL:0; do
	expect "SAGEMAKER_CONTAINER_LOG_LEVEL=${case%%:*}: ${case##*:} access line" "${case##*:}" "$(access_lines "${case%%:*}")"
done
for bad in 40abc loud -5 2.5; do
	run_cli "SAGEMAKER_CONTAINER_LOG_LEVEL=$bad" 2 \
		"invalid value '$bad' for SAGEMAKER_CONTAINER_LOG_LEVEL \(expected a logging level" \
		"SAGEMAKER_CONTAINER_LOG_LEVEL=$bad" -- --model-dir "$MODEL"
done

# ---- every log line, the server's and the access log's, has one time format ---
start_server times --model-dir "$MODEL" --workers 1 || exit 1
curl -s -o /dev/null -H 'Content-Type: text/csv' --data-binary '5.1,3.5,1.4,0.2' "$(url /invocations)"
curl -s -o /dev/null -H 'Content-Type: text/csv' --data-binary 'x' "$(url /invocations)"
raw "$PORT" 'GET /ping HTTP/1.1\r\n\r\n' 1 >/dev/null   # no Host: a logged 400
stop_server times
lines=$(grep -c '' "$SERVER_LOG")
expect_match "the log has server lines and access lines" 'POST /invocations 400' "$(cat "$SERVER_LOG")"
expect "every one of the $lines log lines starts with an ISO 8601 UTC time" "$lines" "$(grep -cE "$ISO" "$SERVER_LOG")"
first=$(grep -m1 -oE '^[0-9T:-]+Z' "$SERVER_LOG")
skew=$(( $(date -u +%s) - $(date -u -d "$first" +%s) ))
expect "the log's time is now (within 30 s)" 1 "$(( skew >= 0 && skew <= 30 ))"

finish
