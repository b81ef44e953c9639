#!/usr/bin/env bash
# test-binary: echo
# tests/echo_diff.sh - the echo plug-in against the Flask app it reproduces.
#
#   SMSERVE=./build/smserve-echo bash tests/echo_diff.sh     (from the repo root)
#
# 1. Differential: tests/gen_echo_inputs.py writes ECHO_DIFF_N (240) bodies
#    from seed ECHO_DIFF_SEED (1): every control character, quotes,
#    backslashes, NUL bytes, CRLF, code points from every plane, 1 MiB
#    bodies. Each is POSTed to the AWS sample Flask app
#    (tests/peers/web_app_serve.py) and to smserve; the bodies must be
#    byte-identical. Skipped, with a "# SKIP" line, if python3-flask is not
#    installed.
# 2. smserve alone: ill-formed UTF-8 of many kinds gets a 400 whose JSON
#    body holds "error" and the byte offset where Python's decoder stops
#    (Flask would answer 500 there), and the server keeps serving after.
#
# Flask must be /usr/bin/python3's: it is the Debian python3-flask package.

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/lib.sh
source "$HERE/lib.sh"

PY=/usr/bin/python3
N=${ECHO_DIFF_N:-240}
SEED=${ECHO_DIFF_SEED:-1}
CURL=(curl -s --max-time 20 -H 'Content-Type: text/plain')

# post PORT FILE OUT: POSTs FILE to /invocations, body to OUT; prints the status.
post() {
	rm -f "$3"
	"${CURL[@]}" -o "$3" -w '%{http_code}' --data-binary "@$2" "http://127.0.0.1:$1/invocations"
}

# wait_ping PORT PID: waits up to 10 s for /ping on PORT while PID lives.
wait_ping() {
	local _
	for _ in $(seq 200); do
		curl -s -o /dev/null "http://127.0.0.1:$1/ping" && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# ---- smserve -----------------------------------------------------------------

# The echo ignores its model directory; a missing one proves it. Up to three
# tries: free_port's range overlaps the kernel's ephemeral ports, so a port
# free when probed can be taken by another program's outgoing connection.
started=0
for _ in 1 2 3; do
	start_server echo --model-dir "$TEST_TMP/no-such-model-dir" && { started=1; break; }
done
if ((!started)); then
	not_ok "echo: server starts" "$(tail -5 "$SERVER_LOG")"
	finish
	exit
fi
ok "echo: server starts without a model directory"
SM_PORT=$PORT

# ---- 1. differential test against Flask ----------------------------------------

differential() {
	local fport fpid f name s1 s2 same=0 diffs=0 ctype up=0
	if ! "$PY" -c 'import flask' 2>/dev/null; then
		echo "# SKIP: python3-flask not installed"
		return 0
	fi

	for _ in 1 2 3; do             # three tries, as for smserve above
		fport=$(free_port)
		FLASK_APP="$HERE/peers/web_app_serve.py" "$PY" -m flask run \
			--host 127.0.0.1 --port "$fport" >"$TEST_TMP/flask.log" 2>&1 &
		fpid=$!
		SERVER_PIDS+=("$fpid")
		wait_ping "$fport" "$fpid" && { up=1; break; }
		kill -KILL "$fpid" 2>/dev/null
	done
	if ((!up)); then
		not_ok "flask peer starts" "$(tail -3 "$TEST_TMP/flask.log")"
		return 1
	fi

	"$PY" "$HERE/gen_echo_inputs.py" "$TEST_TMP/inputs" "$N" "$SEED"
	mkdir -p "$TEST_TMP/out"
	for f in "$TEST_TMP"/inputs/*.bin; do
		name=$(basename "$f" .bin)
		s1=$(post "$fport" "$f" "$TEST_TMP/out/$name.flask")
		s2=$(post "$SM_PORT" "$f" "$TEST_TMP/out/$name.smserve")
		if [[ $s1 == 200 && $s2 == 200 ]] &&
			cmp -s "$TEST_TMP/out/$name.flask" "$TEST_TMP/out/$name.smserve"; then
			same=$((same + 1))
			continue
		fi
		# Name the first few failures (input file and first differing
		# byte); the summary below counts them all.
		diffs=$((diffs + 1))
		((diffs <= 10)) || continue
		if [[ $s1 != 200 || $s2 != 200 ]]; then
			not_ok "echo diff: $f" "status flask $s1, smserve $s2"
		else
			not_ok "echo diff: $f ($(wc -c <"$f") bytes)" \
				"$(cmp "$TEST_TMP/out/$name.flask" "$TEST_TMP/out/$name.smserve" 2>&1 | head -1)"
		fi
	done
	expect "echo diff: bodies byte-identical to Flask (seed $SEED)" "$N of $N" "$same of $N"

	# The one deliberate difference: the Content-Type.
	ctype=$("${CURL[@]}" -o /dev/null -w '%{content_type}' --data-binary x \
		"http://127.0.0.1:$SM_PORT/invocations")
	expect "echo: Content-Type is application/json" "application/json" "$ctype"

	kill -TERM "$fpid" 2>/dev/null
	wait "$fpid" 2>/dev/null
	return 0
}
differential

# ---- 2. ill-formed UTF-8: 400, and the server keeps serving -------------------

# name | body (printf %b) | byte offset where Python's decoder stops
INVALID=(
	"lone continuation byte|ab\x80cd|2"
	"continuation byte first|\xbf|0"
	"overlong 2-byte NUL (C0 80)|x\xc0\x80|1"
	"overlong 2-byte (C1 BF)|\xc1\xbf|0"
	"overlong 3-byte slash (E0 80 AF)|a/\xe0\x80\xaf|2"
	"overlong 4-byte (F0 8F BF BF)|\xf0\x8f\xbf\xbf|0"
	"UTF-16 high surrogate (ED A0 80)|hi \xed\xa0\x80|3"
	"UTF-16 low surrogate (ED BF BF)|\xed\xbf\xbf|0"
	"CESU-8 surrogate pair|\xed\xa0\xbd\xed\xb8\x80|0"
	"above U+10FFFF (F4 90 80 80)|ok\xf4\x90\x80\x80|2"
	"F5 lead byte|\xf5\x80\x80\x80|0"
	"FE and FF bytes|\xfe\xff|0"
	"5-byte form (F8 88 80 80 80)|\xf8\x88\x80\x80\x80|0"
	"truncated at end|x\xe2\x82|1"
	"truncated 4-byte at end|ab\xf0\x9f\x98|2"
	"truncated before ASCII|\xe2\x82x|0"
	"Latin-1 text|caf\xe9 au lait|3"
	"bad byte after valid multibyte|\xc3\xa9\xe2\x82\xac\x80|5"
)

invalid_case() {
	local name=$1 bytes=$2 off=$3 file=$TEST_TMP/invalid.bin status body
	printf '%b' "$bytes" >"$file"
	status=$(post "$SM_PORT" "$file" "$TEST_TMP/invalid.out")
	body=$(cat "$TEST_TMP/invalid.out" 2>/dev/null)
	expect "invalid UTF-8, $name: status 400" 400 "$status"
	expect_match "invalid UTF-8, $name: JSON error naming offset $off" \
		"^\\{\"error\": *\"[^\"]*byte offset ${off}[^0-9][^\"]*\"\\}$" "$body"
}

for c in "${INVALID[@]}"; do
	IFS='|' read -r name bytes off <<<"$c"
	invalid_case "$name" "$bytes" "$off"
done

# A bad byte right after 1 MiB of good text: the offset is the full count.
head -c 1048576 /dev/zero | tr '\0' 'a' >"$TEST_TMP/big-invalid.bin"
printf '\xff' >>"$TEST_TMP/big-invalid.bin"
status=$(post "$SM_PORT" "$TEST_TMP/big-invalid.bin" "$TEST_TMP/invalid.out")
expect "invalid UTF-8 after 1 MiB: status 400" 400 "$status"
expect_match "invalid UTF-8 after 1 MiB: names offset 1048576" \
	"byte offset 1048576[^0-9]" "$(cat "$TEST_TMP/invalid.out" 2>/dev/null)"

# Still serving, and still right, after all the 400s.
printf 'still here \xc3\xa9\n' >"$TEST_TMP/valid.bin"
status=$(post "$SM_PORT" "$TEST_TMP/valid.bin" "$TEST_TMP/valid.out")
expect "after the 400s: valid body gets 200" 200 "$status"
expect "after the 400s: echo is right" \
	'{"prediction": "a", "text": "still here \u00e9\n"}' "$(cat "$TEST_TMP/valid.out" 2>/dev/null)"
expect "after the 400s: /ping answers 200" 200 \
	"$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SM_PORT/ping")"

stop_server echo
finish
