#!/usr/bin/env bash
# test-binary: faulty
# test-group: check
# tests/http.sh - the HTTP protocol over real sockets, fast (`make check`):
# the routes and their headers (Date, Allow, Content-Length), what reaches
# the plug-in and how its answer is framed (statuses 204/205, Content-Type,
# custom attributes, 4xx from the model), keep-alive, pipelining,
# fragmentation, 100-continue, the raw-byte cases of tests/http_cases.txt
# (the parser's decision table, with the Allow of every 405), and the size
# limits (body, request-target, header section).
#
# Elsewhere: timeouts, the memory budget, start-up and configuration, and
# more connections than select() watches in tests/lifecycle.sh; model
# failures (crash, hang, invalid answers), the queue, and signals in
# tests/faults.sh; hostile clients in tests/hostile.sh.
#
#   SMSERVE=./build/smserve-faulty bash tests/http.sh      (or: bash test.sh http)
#
# Runs against $SMSERVE built with tests/plugins/faulty.c (make
# build/smserve-faulty), which echoes and misbehaves on command.
set -u
cd "$(dirname "$0")/.." || exit 1
export LC_ALL=C                       # read -N counts bytes, not characters
SMSERVE=${SMSERVE:-./build/smserve-faulty}
source tests/lib.sh

# The Allow header of a 405, by path (RFC 9110 15.5.6: the methods the
# target supports). Lower-cased, as read_response keeps headers.
allow_of() {
	case $1 in
	/ping) echo "get, head, post" ;;
	/invocations) echo "post" ;;
	/execution-parameters) echo "get, head" ;;
	*) echo "?" ;;
	esac
}

# run_case STATUS CONN NAME BYTES: one line of tests/http_cases.txt. Prints
# the status, what became of the connection, whether Connection: close was
# sent, and the Allow header ("-" when none).
run_case() {
	local want=$1 conn=$2 name=$3 bytes=$4 head= got_close allow
	[[ $bytes == HEAD* ]] && head=1
	(
		trap '' PIPE
		exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 9
		printf '%b' "$bytes" >&3 2>/dev/null
		read_response 3 "$head" || { echo "no-response"; exit 0; }
		got_close=no
		grep -q '^connection: close' <<<"$R_HEADERS" && got_close=yes
		allow=$(sed -n 's/^allow: //p' <<<"$R_HEADERS")
		if [[ $conn == close ]]; then
			closed_by_server 3 && echo "$R_STATUS close $got_close ${allow:--}" ||
				echo "$R_STATUS open $got_close ${allow:--}"
		else
			printf 'GET /ping HTTP/1.1\r\nHost: x\r\n\r\n' >&3 2>/dev/null
			local first=$R_STATUS
			read_response 3 && echo "$first keep-$R_STATUS $got_close ${allow:--}" ||
				echo "$first dead $got_close ${allow:--}"
		fi
	)
}

run_case_file() {
	local line want conn name bytes out allow path also
	while IFS= read -r line; do
		[[ -z $line || $line == \#* ]] && continue
		read -r want conn name <<<"${line%% | *}"
		bytes=${line#* | }
		out=$(run_case "$want" "$conn" "$name" "$bytes")
		allow=- also=
		if [[ $want == 405 ]]; then   # the Allow of the request-target's path
			path=${bytes#* }
			path=${path%% *}
			allow=$(allow_of "${path%%\?*}")
			also=", Allow: $allow"
		fi
		if [[ $conn == close ]]; then
			expect "case $name: $want, Connection: close, closed$also" "$want close yes $allow" "$out"
		else
			expect "case $name: $want, connection kept$also" "$want keep-200 no $allow" "$out"
		fi
	done <tests/http_cases.txt
}

# check_date NAME VALUE: VALUE is an IMF-fixdate (RFC 9110 5.6.7) naming
# now, within 2 s: it reads back to the same text, weekday included, and to
# the current second.
check_date() {
	local name=$1 value=$2 epoch now back=
	epoch=$(date -u -d "$value" +%s 2>/dev/null)
	now=$(date -u +%s)
	[[ -n $epoch ]] && back=$(date -u -d "@$epoch" '+%a, %d %b %Y %H:%M:%S GMT')
	if [[ -n $epoch && $value == "$back" ]] && ((epoch >= now - 2 && epoch <= now + 1)); then
		ok "$name: Date is an IMF-fixdate of the current time"
	else
		not_ok "$name: Date is an IMF-fixdate of the current time" "got [$value], now $(date -u '+%a, %d %b %Y %H:%M:%S GMT')"
	fi
}

# header_of NAME RESPONSE: the value of header NAME in a curl -i RESPONSE
# (carriage returns removed).
header_of() { sed -n "s/^$1: //Ip" <<<"$2" | head -1; }

# ---- the routes ----
test_routes() {
	local out
	out=$(curl -s -i "$(url /ping)" | tr -d '\r')
	expect_match "GET /ping: 200 with an empty body" $'^HTTP/1.1 200 OK\n' "$out"
	expect_match "GET /ping: Content-Length: 0" $'\nContent-Length: 0$' "$out"
	check_date "GET /ping (200)" "$(header_of Date "$out")"
	out=$(curl -s -X POST -d 'ignored' -o /dev/null -w '%{http_code} %{size_download}' "$(url /ping)")
	expect "POST /ping: 200, empty body" "200 0" "$out"
	out=$(curl -s "$(url /execution-parameters)")
	expect "GET /execution-parameters" '{"MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}' "$out"
	out=$(curl -s -I "$(url /execution-parameters)" | tr -d '\r' | grep -i '^content-length')
	expect "HEAD /execution-parameters: the GET's Content-Length" "Content-Length: 85" "$out"
	out=$(curl -s -i "$(url /nope)" | tr -d '\r')
	expect_match "unknown path: 404 with a JSON error" $'^HTTP/1.1 404 .*\nContent-Type: application/json\n.*\n\n\\{"error": "[^"]+"\\}$' "$out"
	check_date "404" "$(header_of Date "$out")"
	expect "a 404 has no Allow" "" "$(header_of Allow "$out")"
	out=$(curl -s -i "$(url /invocations)" | tr -d '\r')
	expect_match "GET /invocations: 405 with a JSON error" $'^HTTP/1.1 405 .*\n\n\\{"error": "[^"]+"\\}$' "$out"
	expect "GET /invocations: Allow: POST" "POST" "$(header_of Allow "$out")"
	check_date "405" "$(header_of Date "$out")"
	out=$(curl -s -i -X PUT "$(url /ping)" | tr -d '\r')
	expect "PUT /ping: 405, Allow: GET, HEAD, POST" "405 GET, HEAD, POST" "$(status_of "$out") $(header_of Allow "$out")"
	out=$(curl -s -i -X DELETE "$(url /execution-parameters)" | tr -d '\r')
	expect "DELETE /execution-parameters: 405, Allow: GET, HEAD" "405 GET, HEAD" "$(status_of "$out") $(header_of Allow "$out")"
	out=$(curl -s -i -H 'X-Amzn-SageMaker-Custom-Attributes: crash' -d x "$(url /invocations)" | tr -d '\r')
	check_date "a 500 from a crashed worker" "$(header_of Date "$out")"
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
	out=$(curl -s -i -H 'X-Amzn-SageMaker-Custom-Attributes: status 205' -d 'x' "$(url /invocations)" | tr -d '\r')
	expect_match "a plug-in 205: Reset Content, Content-Length: 0, its body dropped" $'^HTTP/1.1 205 Reset Content\nDate: [^\n]*\nContent-Type: [^\n]*\nContent-Length: 0$' "$out"
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
	# RFC 9112 9.3: an HTTP/1.0 connection persists only if both sides say so.
	out=$(
		exec 3<>"/dev/tcp/127.0.0.1/$PORT"
		printf 'GET /ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n' >&3
		IFS= read -r -t 2 line <&3 && echo -n "${line%$'\r'} / "
		while IFS= read -r -t 2 line <&3 && [[ -n ${line%$'\r'} ]]; do
			[[ ${line%$'\r'} == Connection:* ]] && echo -n "${line%$'\r'} / "
		done
		printf 'GET /ping HTTP/1.0\r\n\r\n' >&3
		IFS= read -r -t 2 line <&3 && echo -n "${line%$'\r'}"
	)
	expect "HTTP/1.0 keep-alive: answered with Connection: keep-alive, and the connection kept" \
		"HTTP/1.1 200 OK / Connection: keep-alive / HTTP/1.1 200 OK" "$out"
	head -c 2000000 /dev/zero >"$TEST_TMP/2mb"
	out=$(curl -s -v --data-binary @"$TEST_TMP/2mb" -o /dev/null "$(url /invocations)" 2>&1 | tr -d '\r' | grep -c '^< HTTP/1.1 100 Continue')
	expect "curl's 2 MB upload gets 100 Continue" 1 "$out"
	out=$(
		exec 3<>"/dev/tcp/127.0.0.1/$PORT"
		printf 'POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 7000000\r\nExpect: 100-continue\r\n\r\n' >&3
		read_response 3 && echo "$R_STATUS ${R_INTERIM:-none}"
	)
	expect "100-continue with a body over the limit: 413 at once, no 100" "413 none" "$out"
}

# ---- the raw-byte cases ----
test_cases() {
	run_case_file
}

# ---- size limits (a server of its own) ----
test_size_limits() {
	local out long f=$TEST_TMP/1mib
	start_server limits --workers 1 --max-body-mb 1 --no-access-log || return
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
	long=$(printf 'a%.0s' $(seq 8180))
	out=$(curl -s -o /dev/null -w '%{http_code}' "$(url "/ping?$long")")
	expect "a request-target of 8,186 bytes is served (RFC 9112 3: at least 8000)" 200 "$out"
	long=$(printf 'a%.0s' $(seq 9000))
	out=$(curl -s -o /dev/null -w '%{http_code}' "$(url "/ping?$long")")
	expect "a request-target over 8,192 bytes: 414" 414 "$out"
	out=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $(printf 'b%.0s' $(seq 20000))" -H "X-Big2: $(printf 'b%.0s' $(seq 20000))" "$(url /ping)")
	expect "a header section over 32 KiB: 431" 431 "$out"
	stop_server limits
}

start_server main --workers 2 || { finish; exit 1; }
test_routes
test_invocations
test_connections
test_cases
stop_server main
test_size_limits
finish
