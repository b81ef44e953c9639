#!/usr/bin/env bash
# tests/http.sh - the server's behaviour over real sockets: routes, HTTP/1.1
# framing and persistence, limits, timeouts, the raw-byte cases of
# tests/http_cases.txt, model faults, signals and the command line.
#
# Runs against $SMSERVE built with tests/plugins/faulty.c (make
# build/smserve-faulty), which echoes and misbehaves on command.
set -u
cd "$(dirname "$0")/.." || exit 1
export LC_ALL=C                       # read -N counts bytes, not characters
SMSERVE=${SMSERVE:-./build/smserve-faulty}
source tests/lib.sh

# ---- a tiny HTTP client over bash's /dev/tcp, for what curl cannot send ----

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

# closed_by_server FD: true when the server closed the connection (EOF within 3 s).
closed_by_server() {
	local x
	IFS= read -r -N 1 -t 3 x <&"$1"
	[[ $? -eq 1 && -z $x ]]
}

# run_case STATUS CONN NAME BYTES: one line of tests/http_cases.txt.
run_case() {
	local want=$1 conn=$2 name=$3 bytes=$4 head= got_close
	[[ $bytes == HEAD* ]] && head=1
	(
		trap '' PIPE
		exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 9
		printf '%b' "$bytes" >&3 2>/dev/null
		read_response 3 "$head" || { echo "no-response"; exit 0; }
		got_close=no
		grep -q '^connection: close' <<<"$R_HEADERS" && got_close=yes
		if [[ $conn == close ]]; then
			closed_by_server 3 && echo "$R_STATUS close $got_close" || echo "$R_STATUS open $got_close"
		else
			printf 'GET /ping HTTP/1.1\r\nHost: x\r\n\r\n' >&3 2>/dev/null
			local first=$R_STATUS
			read_response 3 && echo "$first keep-$R_STATUS $got_close" || echo "$first dead $got_close"
		fi
	)
}

run_case_file() {
	local line want conn name bytes out
	while IFS= read -r line; do
		[[ -z $line || $line == \#* ]] && continue
		read -r want conn name <<<"${line%% | *}"
		bytes=${line#* | }
		out=$(run_case "$want" "$conn" "$name" "$bytes")
		if [[ $conn == close ]]; then
			expect "case $name: $want, Connection: close, closed" "$want close yes" "$out"
		else
			expect "case $name: $want, connection kept" "$want keep-200 no" "$out"
		fi
	done <tests/http_cases.txt
}


# ---- the routes ----
test_routes() {
	local out
	out=$(curl -s -i "$(url /ping)" | tr -d '\r')
	expect_match "GET /ping: 200 with an empty body" $'^HTTP/1.1 200 OK\n' "$out"
	expect_match "GET /ping: Content-Length: 0" $'\nContent-Length: 0$' "$out"
	expect_match "GET /ping: an IMF-fixdate Date" $'\nDate: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT\n' "$out"
	out=$(curl -s -X POST -d 'ignored' -o /dev/null -w '%{http_code} %{size_download}' "$(url /ping)")
	expect "POST /ping: 200, empty body" "200 0" "$out"
	out=$(curl -s "$(url /execution-parameters)")
	expect "GET /execution-parameters" '{"MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}' "$out"
	out=$(curl -s -I "$(url /execution-parameters)" | tr -d '\r' | grep -i '^content-length')
	expect "HEAD /execution-parameters: the GET's Content-Length" "Content-Length: 85" "$out"
	out=$(curl -s -i "$(url /nope)" | tr -d '\r')
	expect_match "unknown path: 404 with a JSON error" $'^HTTP/1.1 404 .*\nContent-Type: application/json\n.*\n\n\\{"error": "[^"]+"\\}$' "$out"
	out=$(curl -s -i "$(url /invocations)" | tr -d '\r')
	expect_match "GET /invocations: 405 with Allow: POST" $'^HTTP/1.1 405 .*\nAllow: POST\n' "$out"
}

test_invocations() {
	local out f=$TEST_TMP/binary.bin
	head -c 100000 /dev/urandom >"$f"
	curl -s --data-binary @"$f" -o "$TEST_TMP/binary.out" "$(url /invocations)"
	cmp -s "$f" "$TEST_TMP/binary.out" && ok "/invocations: 100 kB of binary echoed byte for byte" ||
		not_ok "/invocations: 100 kB of binary echoed byte for byte"
	out=$(curl -s -H 'Content-Type: text/csv; charset=utf-8' -H 'Accept: application/json' \
		-H 'X-Amzn-SageMaker-Custom-Attributes: inspect' -H 'X-Amzn-SageMaker-Target-Model: m.tar.gz' \
		-H 'X-Other: dropped' --data-binary 'a,b' "$(url /invocations)")
	expect "the plug-in sees Content-Type, Accept, custom attributes and X-Amzn-SageMaker-* headers" \
		"content_type=text/csv; charset=utf-8
accept=application/json
custom_attributes=inspect
header X-Amzn-SageMaker-Custom-Attributes=inspect
header X-Amzn-SageMaker-Target-Model=m.tar.gz
body_len=3" "$out"
	out=$(curl -s -H 'X-Amzn-SageMaker-Custom-Attributes: inspect' -X POST "$(url /invocations)")
	expect "no Content-Type and no Accept reach the plug-in as empty strings" \
		"content_type=
accept=
custom_attributes=inspect
header X-Amzn-SageMaker-Custom-Attributes=inspect
body_len=0" "$(sed 's/^accept=\*\/\*$/accept=/' <<<"$out")"
	out=$(curl -s -H 'Accept: application/xml' -H 'Accept: text/csv;q=0.5' \
		-H 'X-Amzn-SageMaker-Custom-Attributes: inspect' -d x "$(url /invocations)")
	expect "Accept on two lines reaches the plug-in as one list (RFC 9110 5.3)" \
		"accept=application/xml, text/csv;q=0.5" "$(grep '^accept=' <<<"$out")"
	out=$(curl -s -i -H 'X-Amzn-SageMaker-Custom-Attributes: attrs trace=1; id=abc' -d 'x' "$(url /invocations)" | tr -d '\r')
	expect_match "the plug-in sets X-Amzn-SageMaker-Custom-Attributes on the response" \
		$'\nX-Amzn-SageMaker-Custom-Attributes: trace=1; id=abc\n' "$out"
	out=$(curl -s -i -H 'X-Amzn-SageMaker-Custom-Attributes: error 400 record 3: bad "x"' -d 'x' "$(url /invocations)" | tr -d '\r')
	expect_match "a plug-in 400 keeps the connection and escapes its message as JSON" \
		$'^HTTP/1.1 400 Bad Request\n.*\n\n\\{"error": "record 3: bad \\\\"x\\\\""\\}$' "$out"
	[[ $out != *"Connection: close"* ]] && ok "a plug-in 4xx does not close the connection" ||
		not_ok "a plug-in 4xx does not close the connection"
	out=$(curl -s -i -H 'X-Amzn-SageMaker-Custom-Attributes: status 204' -d 'x' "$(url /invocations)" | tr -d '\r')
	expect_match "a plug-in 204: no Content-Length, no body" $'^HTTP/1.1 204 No Content\nDate: [^\n]*$' "$out"
	out=$(curl -s -w ' %{http_code}' -H 'X-Amzn-SageMaker-Custom-Attributes: status 99' -d 'x' "$(url /invocations)")
	expect "a plug-in status of 99: 500 naming the problem" '{"error": "the model returned an invalid HTTP status (99)"} 500' "$(tr -d '\n' <<<"$out")"
	out=$(curl -s -w ' %{http_code}' -H 'X-Amzn-SageMaker-Custom-Attributes: status 600' -d 'x' "$(url /invocations)")
	expect "a plug-in status of 600: 500" '{"error": "the model returned an invalid HTTP status (600)"} 500' "$(tr -d '\n' <<<"$out")"
	out=$(curl -s -w ' %{http_code}' -H 'X-Amzn-SageMaker-Custom-Attributes: status 304' -d 'x' "$(url /invocations)")
	expect "a plug-in status of 304 (a head-only answer): 500" '{"error": "the model returned an invalid HTTP status (304)"} 500' "$(tr -d '\n' <<<"$out")"
	out=$(curl -s -i -H 'X-Amzn-SageMaker-Custom-Attributes: status 205' -d 'x' "$(url /invocations)" | tr -d '\r')
	expect_match "a plug-in 205: Content-Length: 0, its body dropped" $'^HTTP/1.1 205 [^\n]*\nDate: [^\n]*\nContent-Type: [^\n]*\nContent-Length: 0$' "$out"
	out=$(curl -s -i -H 'X-Amzn-SageMaker-Custom-Attributes: empty' -d 'x' "$(url /invocations)" | tr -d '\r')
	expect_match "an empty model answer: 200, Content-Length: 0, no Content-Type" $'^HTTP/1.1 200 OK\nDate: [^\n]*\nContent-Length: 0$' "$out"
	out=$(curl -s -D - -o /dev/null -H 'X-Amzn-SageMaker-Custom-Attributes: type text/csv; charset=utf-8' -d 'x' "$(url /invocations)" | tr -d '\r' | grep '^Content-Type')
	expect "the plug-in's Content-Type is sent" "Content-Type: text/csv; charset=utf-8" "$out"
}

# ---- persistence, pipelining, fragmentation, 100-continue ----
test_connections() {
	local out
	out=$(curl -s -v "$(url /ping)" "$(url /ping)" 2>&1 | grep -c 'Re-using existing connection')
	expect "keep-alive: curl reuses the connection" 1 "$out"
	out=$(
		exec 3<>"/dev/tcp/127.0.0.1/$PORT"
		printf 'POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirstGET /ping HTTP/1.1\r\nHost: x\r\n\r\nPOST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nsecond\r\n0\r\n\r\nPOST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nthird' >&3
		for i in 1 2 3 4; do read_response 3 && printf '%s:%s ' "$R_STATUS" "$R_BODY"; done
	)
	expect "pipelining: four requests in one write, answered in order" "200:first 200: 200:second 200:third " "$out"
	out=$(
		exec 3<>"/dev/tcp/127.0.0.1/$PORT"
		req=$'POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n'
		for ((i = 0; i < ${#req}; i++)); do printf '%s' "${req:i:1}" >&3; done
		read_response 3 && echo "$R_STATUS $R_BODY"
	)
	expect "fragmentation: a chunked request sent one byte per write" "200 abcde" "$out"
	out=$(
		exec 3<>"/dev/tcp/127.0.0.1/$PORT"
		printf 'POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n' >&3
		IFS= read -r -t 2 line <&3 && echo -n "${line%$'\r'} / "
		IFS= read -r -t 2 line <&3
		printf 'body' >&3
		read_response 3 && echo "$R_STATUS $R_BODY"
	)
	expect "Expect: 100-continue gets 100 before the body is sent" "HTTP/1.1 100 Continue / 200 body" "$out"
	out=$(
		exec 3<>"/dev/tcp/127.0.0.1/$PORT"
		printf 'POST /invocations HTTP/1.0\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n' >&3
		IFS= read -r -t 1 line <&3 && echo -n "${line%$'\r'}"
	)
	expect "no 100 Continue to an HTTP/1.0 client" "" "$out"
	head -c 2000000 /dev/zero >"$TEST_TMP/2mb"
	out=$(curl -s -v --data-binary @"$TEST_TMP/2mb" -o /dev/null "$(url /invocations)" 2>&1 | tr -d '\r' | grep -c '^< HTTP/1.1 100 Continue')
	expect "curl's 2 MB upload gets 100 Continue" 1 "$out"
	out=$(
		exec 3<>"/dev/tcp/127.0.0.1/$PORT"
		printf 'POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 7000000\r\nExpect: 100-continue\r\n\r\n' >&3
		read_response 3 && echo "$R_STATUS ${R_INTERIM:-none}"
	)
	expect "100-continue with a body over the limit: 413 at once, no 100" "413 none" "$out"
	out=$(
		exec 3<>"/dev/tcp/127.0.0.1/$PORT"
		for i in $(seq 1000); do printf 'GET /ping HTTP/1.1\r\nHost: x\r\n\r\n'; done >&3
		n=0
		for i in $(seq 1000); do read_response 3 && [[ $R_STATUS == 200 ]] && n=$((n + 1)); done
		echo "$n"
	)
	expect "1,000 pipelined requests written before reading: 1,000 answers" 1000 "$out"
}

# ---- the raw-byte cases ----
test_cases() {
	run_case_file
}

# ---- limits and timeouts (each with its own server) ----
test_limits() {
	local out f=$TEST_TMP/1mib
	start_server limits --workers 1 --max-body-mb 1 --header-timeout 1 --body-timeout 1 --idle-timeout 1 --max-buffered-mb 2 || return
	head -c 1048576 /dev/zero >"$f"
	out=$(curl -s -o /dev/null -w '%{http_code}' --data-binary @"$f" "$(url /invocations)")
	expect "a body of exactly --max-body-mb: 200" 200 "$out"
	head -c 1048577 /dev/zero >"$f.plus"
	out=$(curl -s -w ' %{http_code}' --data-binary @"$f.plus" "$(url /invocations)")
	expect "one byte over --max-body-mb: 413 JSON" '{"error": "request body larger than the limit of 1048576 bytes"} 413' "$(tr -d '\n' <<<"$out")"
	out=$(curl -s -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' --data-binary @"$f.plus" "$(url /invocations)")
	expect "a chunked body over the limit: 413" 413 "$out"
	out=$(curl -s -o /dev/null -w '%{http_code}' -H 'Transfer-Encoding: chunked' --data-binary @"$f" "$(url /invocations)")
	expect "a chunked body of exactly the limit: 200" 200 "$out"
	out=$(curl -s "$(url /execution-parameters)")
	expect "/execution-parameters reports --max-body-mb and --workers" '{"MaxConcurrentTransforms": 1, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 1}' "$out"
	out=$(raw "$PORT" 'GET /ping HTTP/1.1\r\nHost: x\r\n' 4)
	expect "a head not finished within --header-timeout: 408" 408 "$(status_of "$out")"
	out=$(raw "$PORT" 'POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc' 4)
	expect "a body that stops short: 408 after --body-timeout" 408 "$(status_of "$out")"
	out=$(raw "$PORT" 'GET /ping HTTP/1.1\r\nHost: x\r\n\r\n' 4)
	expect "an idle keep-alive connection is closed after --idle-timeout" 200 "$(status_of "$out")"
	[[ $(grep -c '^HTTP/1.1' <<<"$out") -eq 1 ]] && ok "the idle close sends nothing more" || not_ok "the idle close sends nothing more"
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
	long=$(printf 'a%.0s' $(seq 8180))
	out=$(curl -s -o /dev/null -w '%{http_code}' "$(url "/ping?$long")")
	expect "a request-target of 8,186 bytes is served (RFC 9112 3: at least 8000)" 200 "$out"
	long=$(printf 'a%.0s' $(seq 9000))
	out=$(curl -s -o /dev/null -w '%{http_code}' "$(url "/ping?$long")")
	expect "a request-target over 8,192 bytes: 414" 414 "$out"
	out=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $(printf 'b%.0s' $(seq 20000))" -H "X-Big2: $(printf 'b%.0s' $(seq 20000))" "$(url /ping)")
	expect "a header section over 32 KiB: 431" 431 "$out"
	stop_server limits

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
			sleep 1.6              # the worker's buffers from the bodies above go back
			before=$(rss "$SERVER_PID") w_before=$(rss "$worker")
			{ printf "$big"; cat "$f"; } >&3
			read_response 3
			kept=$(rss "$SERVER_PID") w_kept=$(rss "$worker")
			sleep 1.6              # IN_BUF_IDLE_RELEASE_MS is 1000
			after=$(rss "$SERVER_PID") w_after=$(rss "$worker")
			{ printf "$big"; cat "$f"; } >&3
			read_response 3
			w_kept2=$(rss "$worker")
			printf 'POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na' >&3
			read_response 3
			w_small=$(rss "$worker")
			echo "$((kept - before >= 600)) $((kept - after >= 600))" \
			     "$((w_kept - w_before >= 600)) $((w_kept - w_after >= 600))" \
			     "$((w_kept2 - w_small >= 600))" \
			     "(loop $before, $kept, $after KiB; worker $w_before, $w_kept, $w_after," \
			     "$w_kept2, $w_small KiB)"
		)
		expect_match "the loop keeps a 1 MB body's buffer after the answer and gives it back after 1 s idle" \
			'^1 1 ' "$out"
		expect_match "the worker keeps its 1 MB request buffer after the answer and gives it back after 1 s idle" \
			'^. . 1 1 ' "$out"
		expect_match "the worker gives a large request's buffer back as soon as a small request follows" \
			'^. . . . 1 ' "$out"
	fi
	stop_server kept
}

# ---- workers: busy, crashing, hanging, queue ----
test_workers() {
	local out i slow=0
	start_server workers --workers 2 --timeout 4 --queue 1 || return
	local clients=()
	curl -s -o "$TEST_TMP/s1" -H 'X-Amzn-SageMaker-Custom-Attributes: sleep 3' -d a "$(url /invocations)" &
	clients+=($!)
	curl -s -o "$TEST_TMP/s2" -H 'X-Amzn-SageMaker-Custom-Attributes: sleep 3' -d b "$(url /invocations)" &
	clients+=($!)
	sleep 0.3
	for i in $(seq 20); do
		out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 1 "$(url /ping)")
		[[ $out == "200 "* ]] || slow=$((slow + 1))
	done
	expect "/ping answers while every worker is busy (20 of 20 within 1 s)" 0 "$slow"
	curl -s -o "$TEST_TMP/s3" -w '%{http_code}' -d queued "$(url /invocations)" >"$TEST_TMP/s3.code" &
	clients+=($!)
	sleep 0.3
	out=$(curl -s -i -d over "$(url /invocations)" | tr -d '\r')
	expect_match "past the queue bound: 503 with Retry-After" $'^HTTP/1.1 503 .*\nRetry-After: 1\n' "$out"
	wait "${clients[@]}"
	expect "busy requests complete" "a b queued 200" "$(cat "$TEST_TMP/s1") $(cat "$TEST_TMP/s2") $(cat "$TEST_TMP/s3") $(cat "$TEST_TMP/s3.code")"

	out=$(curl -s -w ' %{http_code}' -H 'X-Amzn-SageMaker-Custom-Attributes: crash' -d x "$(url /invocations)")
	expect "a plug-in that segfaults: 500 JSON" '{"error": "the model worker crashed during the request"} 500' "$(tr -d '\n' <<<"$out")"
	out=$(curl -s -d after-crash "$(url /invocations)")
	expect "the next request after a crash succeeds" "after-crash" "$out"
	out=$(curl -s -w ' %{http_code}' -H 'X-Amzn-SageMaker-Custom-Attributes: hang' -d x "$(url /invocations)")
	expect "a plug-in that hangs: 504 after --timeout" '{"error": "the model did not answer within 4 s"} 504' "$(tr -d '\n' <<<"$out")"
	out=$(curl -s -d after-hang "$(url /invocations)")
	expect "the next request after a hang succeeds" "after-hang" "$out"
	for i in 1 2 3; do curl -s -o /dev/null -H 'X-Amzn-SageMaker-Custom-Attributes: crash' -d x "$(url /invocations)"; done
	out=$(for i in 1 2 3 4; do curl -s -d "$i" "$(url /invocations)"; done)
	expect "workers are replaced after repeated crashes" "1234" "$out"
	expect "the crash is logged" 1 "$(grep -c 'ended by signal 11' "$SERVER_LOG" | awk '{print ($1 > 0)}')"
	stop_server workers

	start_server queued --workers 1 --timeout 2 || return
	clients=()
	for i in 1 2 3; do
		curl -s -o /dev/null -w '%{http_code}' -H 'X-Amzn-SageMaker-Custom-Attributes: sleep 1' \
			-d "$i" "$(url /invocations)" >"$TEST_TMP/q$i" &
		clients+=($!)
		sleep 0.2
	done
	curl -s -o /dev/null -w '%{http_code}' -H 'X-Amzn-SageMaker-Custom-Attributes: sleep 1' -d 4 "$(url /invocations)" >"$TEST_TMP/q4" &
	clients+=($!)
	wait "${clients[@]}"
	expect "a request queued longer than --timeout: 503, the others served" "200 200 200 503" \
		"$(cat "$TEST_TMP/q1") $(cat "$TEST_TMP/q2") $(cat "$TEST_TMP/q3") $(cat "$TEST_TMP/q4")"
	stop_server queued

	start_server respmax --workers 1 --max-response-mb 1 || return
	out=$(curl -s -w ' %{http_code}' -H 'X-Amzn-SageMaker-Custom-Attributes: big 2000000' -d x "$(url /invocations)")
	expect "a response over --max-response-mb: 500 naming the limit" '{"error": "the model'"'"'s response is larger than the limit of 1048576 bytes"} 500' "$(tr -d '\n' <<<"$out")"
	out=$(curl -s -o /dev/null -w '%{size_download}' -H 'X-Amzn-SageMaker-Custom-Attributes: big 1048576' -d x "$(url /invocations)")
	expect "a response of exactly the limit is sent" 1048576 "$out"
	stop_server respmax
}

# ---- signals: SIGTERM drains in-flight requests ----
test_drain() {
	local i out rc clients=()
	start_server drain --workers 2 || return
	for i in $(seq 10); do
		curl -s -o "$TEST_TMP/d$i" -w '%{http_code}' -H 'X-Amzn-SageMaker-Custom-Attributes: sleep 1' -d "r$i" "$(url /invocations)" >"$TEST_TMP/d$i.code" &
		clients+=($!)
	done
	sleep 0.3
	kill -TERM "$SERVER_PID"
	wait "$SERVER_PID"
	rc=$?
	wait "${clients[@]}"
	out=$(for i in $(seq 10); do echo -n "$(cat "$TEST_TMP/d$i.code")$(cat "$TEST_TMP/d$i") "; done)
	expect "SIGTERM with 10 requests in flight: all 10 complete" "200r1 200r2 200r3 200r4 200r5 200r6 200r7 200r8 200r9 200r10 " "$out"
	expect "then the server exits 0" 0 "$rc"
	check_sanitizer_log drain "$SERVER_LOG"
	out=$(curl -s -o /dev/null -w '%{http_code}' "$(url /ping)")
	expect "after the drain nothing listens" 000 "$out"

	start_server drain2 --workers 1 || return
	curl -s -o /dev/null -H 'X-Amzn-SageMaker-Custom-Attributes: sleep 5' -d x "$(url /invocations)" &
	clients=($!)
	sleep 0.3
	kill -TERM "$SERVER_PID"; sleep 0.2; kill -TERM "$SERVER_PID"
	wait "$SERVER_PID"
	expect "a second SIGTERM stops at once with status 1" 1 "$?"
	wait "${clients[@]}"
	check_sanitizer_log drain2 "$SERVER_LOG"
}

# ---- command line, environment, start-up ----
test_command_line() {
	local out rc p
	out=$("$SMSERVE" --help); rc=$?
	expect "--help exits 0" 0 "$rc"
	expect_match "--help lists --max-body-mb" "--max-body-mb" "$out"
	expect_match "--version" "^smserve [0-9]+\.[0-9]+\.[0-9]+" "$("$SMSERVE" --version)"
	"$SMSERVE" --workers abc >/dev/null 2>"$TEST_TMP/err"; rc=$?
	expect "a bad --workers value exits 2" 2 "$rc"
	expect_match "and names the setting" "invalid value 'abc' for --workers" "$(cat "$TEST_TMP/err")"
	"$SMSERVE" --bogus >/dev/null 2>&1; expect "an unknown option exits 2" 2 "$?"
	"$SMSERVE" --port >/dev/null 2>&1; expect "an option without its value exits 2" 2 "$?"
	SAGEMAKER_MODEL_SERVER_WORKERS=0 "$SMSERVE" >/dev/null 2>&1; expect "SAGEMAKER_MODEL_SERVER_WORKERS=0 exits 2" 2 "$?"
	SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS=1m "$SMSERVE" >/dev/null 2>"$TEST_TMP/err"; rc=$?
	expect "SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS=1m exits 2" 2 "$rc"
	expect_match "and names the variable" "SAGEMAKER_MODEL_SERVER_TIMEOUT_SECONDS" "$(cat "$TEST_TMP/err")"
	"$SMSERVE" train >/dev/null 2>"$TEST_TMP/err"; rc=$?
	expect "'train' exits 2" 2 "$rc"
	expect_match "with a clear message" "cannot train" "$(cat "$TEST_TMP/err")"
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
	"$SMSERVE" --healthcheck --port "$p"; expect "--healthcheck against a running server exits 0" 0 "$?"
	SAGEMAKER_BIND_TO_PORT=$p "$SMSERVE" --healthcheck; expect "--healthcheck finds SAGEMAKER_BIND_TO_PORT" 0 "$?"
	expect "start-up line names port, model dir and workers" 1 "$(grep -c "listening on 0.0.0.0:$p model_dir=/opt/ml/model workers=3" "$TEST_TMP/env.log")"
	PORT=$p
	curl -s -o /dev/null -d x "$(url /invocations)"; curl -s -o /dev/null "$(url /ping)"; curl -s -o /dev/null "$(url /nope)"
	sleep 0.1
	expect_match "an access line per invocation: method, path, status, bytes, microseconds" \
		'POST /invocations 200 in=[0-9]+ out=[0-9]+ us=[0-9]+' "$(cat "$TEST_TMP/env.log")"
	expect "/ping is not logged" 0 "$(grep -c 'GET /ping' "$TEST_TMP/env.log")"
	stop_server env
	"$SMSERVE" --healthcheck --port "$p"; expect "--healthcheck with no server exits 1" 1 "$?"

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

	# The AWS toolkits' SAGEMAKER_CONTAINER_LOG_LEVEL (Python's numbers).
	local level
	for level in 20 30; do
		SAGEMAKER_CONTAINER_LOG_LEVEL=$level start_server "level$level" || continue
		curl -s -o /dev/null -d x "$(url /invocations)"
		stop_server "level$level"
		expect "SAGEMAKER_CONTAINER_LOG_LEVEL=$level: $((level > 20 ? 0 : 1)) access line" \
			"$((level > 20 ? 0 : 1))" "$(grep -c 'POST /invocations' "$SERVER_LOG")"
	done
	SAGEMAKER_CONTAINER_LOG_LEVEL=INFO start_server levelname || return
	curl -s -o /dev/null -d x "$(url /invocations)"
	stop_server levelname
	expect "SAGEMAKER_CONTAINER_LOG_LEVEL=INFO (not a number): served, the access log as it was" \
		1 "$(grep -c 'POST /invocations' "$SERVER_LOG")"
}

# ---- more connections than select() can watch ----
test_fd_setsize() {
	local out
	start_server fdset --workers 1 || return
	out=$(/usr/bin/python3 - "$PORT" "$SERVER_PID" <<'PY'
import os, signal, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
socks, refused = [], 0
for i in range(1100):
    s = socket.create_connection(("127.0.0.1", port))
    socks.append(s)
# Every connection past FD_SETSIZE is answered 503 and closed at once.
for s in socks[1000:]:
    s.settimeout(2)
    try:
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        # a whole 503: its Content-Length is the length of its body
        if data.startswith(b"HTTP/1.1 503") and b"\r\nContent-Length: %d\r\n" % len(body) in head:
            refused += 1
    except socket.timeout:
        pass
# A refused client that sent its request before the loop took the connection
# (the loop is stopped meanwhile) gets the 503 and then the end of the
# stream: its unread request is read, so no reset follows.
os.kill(pid, signal.SIGSTOP)
try:
    late = [socket.create_connection(("127.0.0.1", port)) for i in range(10)]
    for s in late:
        s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.3)
finally:
    os.kill(pid, signal.SIGCONT)
clean = 0
for s in late:
    s.settimeout(2)
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        if data.startswith(b"HTTP/1.1 503"):
            clean += 1
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
print("late: %d of 10 a 503 and the end of the stream" % clean)
s = socks[0]
s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
s.settimeout(2)
first = s.recv(100).split(b"\r\n")[0].decode()
for s in socks:
    s.close()
print(refused >= 70, first)
PY
)
	expect "1,100 connections: those past FD_SETSIZE get 503 and the rest are served" \
		"late: 10 of 10 a 503 and the end of the stream
True HTTP/1.1 200 OK" "$out"
	out=$(curl -s -o /dev/null -w '%{http_code}' "$(url /ping)")
	expect "served again once they are gone" 200 "$out"
	stop_server fdset
}

start_server main --workers 2 || { finish; exit 1; }
test_routes
test_invocations
test_connections
test_cases
stop_server main
test_limits
test_kept_buffer
test_workers
test_drain
test_command_line
if /usr/bin/python3 -c '' 2>/dev/null; then test_fd_setsize; else echo "# SKIP: no python3 for the FD_SETSIZE test"; fi
finish
