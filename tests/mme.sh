#!/usr/bin/env bash
# test-binary: faulty
# tests/mme.sh - multi-model endpoints (issue 22, contract REQ-57 to REQ-65)
# with the faulty plug-in, whose model directories say how a load behaves
# (tests/plugins/faulty.c: fail-on-load, crash-on-load, hang-on-load,
# sleep-on-load, alloc-mb, scribble-on-load, close-fds-on-load) and whose
# `whoami` answer names the directory a model came from and the worker that
# answered.
#
#   SMSERVE=./build/smserve-faulty bash tests/mme.sh     (or: bash test.sh mme)
#
# 1. Start-up: SAGEMAKER_MULTI_MODEL=true and --multi-model start with no
#    model (multi_model=on in the start-up line); /ping 200; an empty list;
#    /invocations is a 404.
# 2. Every route and status: POST /models (200, 409 loaded or loading, 400
#    for each malformed body, naming the missing field), GET /models/{name}
#    (exact fields, 404), POST /models/{name}/invoke (each name its own
#    model, 404), DELETE (200, 404, the name reusable); 405 with Allow; a
#    bad limit or page token 400. An invocation streams, sets custom
#    attributes and may crash (500) as on /invocations. Names are opaque:
#    spaces, '/', '%', '?', '+', quotes, backslashes and UTF-8, percent-
#    encoded in the path.
# 3. Loads that fail: a plug-in error, a crash and a hang in model_load
#    (killed after the load timeout): an error status with a JSON error, the
#    name not loaded; meanwhile /ping, other models and other loads answer.
#    (A missing directory: tests/mme_linear.sh.)
# 4. Paging: 250 models listed by pages of 7, each exactly once; the default
#    page of 100; no nextPageToken at the end.
# 5. DELETE during an invocation: the running one finishes, a later one is a
#    404, the DELETE answers once it is done.
# 6. A worker SIGKILLed with several models loaded: replaced, every model
#    answers, the new worker included.
# 7. /ping during a burst of 200 loads (the figure printed; bound loose).
# 8. The model budget: 507 past it, the cap on one model, memory returned
#    by DELETE, a large artifact file that occupies nothing.
# 9. One copy per model: the sum of Pss over the server's processes grows by
#    about a 64 MiB model's size after all 4 workers read it, not 4 times;
#    DELETE gives it back; a model its 4 workers write to (a copy each)
#    gives back those copies too (skipped under the sanitizers, whose
#    allocator and shadow memory blur Pss).
# 10. SIGTERM with loads in flight (sleeping, or hung): exit 0 within 10 s,
#    no process left.
# 11. A load killed at its timeout while still writing its memory, and one
#    that closed its answer pipe and writes on: its extent takes no other
#    model until the loader is reaped (503 meanwhile), and the next model
#    there is intact; with every loader slot held so, a load is a 503 too
#    (tests/shims/late_kill.c keeps a killed loader running 2.5 s; skipped
#    under the sanitizers).
set -u
cd "$(dirname "$0")/.." || exit 1
export LC_ALL=C
SMSERVE=${SMSERVE:-./build/smserve-faulty}
source tests/lib.sh
PY=/usr/bin/python3
T=$TEST_TMP
unset SAGEMAKER_MULTI_MODEL FAULTY_FAIL_LOAD

# The options this script uses (smserve --help).
LOAD_TIMEOUT_OPT=--load-timeout
BUDGET_OPT=--model-budget-mb
MAX_MODEL_OPT=--max-model-mb

SANITIZED=0
grep -q __asan_init "$SMSERVE" 2>/dev/null && SANITIZED=1

# ---- helpers ---------------------------------------------------------------

# enc NAME: NAME percent-encoded as one path segment (bytes, LC_ALL=C).
enc() {
	local s=$1 i c out=
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[A-Za-z0-9_~-]) out+=$c ;;   # '.' too: ".." must not look like a dot segment
		*) out+=$(printf '%%%02X' "'$c") ;;
		esac
	done
	printf '%s' "$out"
}

# json_str TEXT: TEXT as a JSON string (the names here hold no control bytes).
json_str() {
	local s=${1//\\/\\\\}
	printf '"%s"' "${s//\"/\\\"}"
}

# api METHOD PATH [BODY [CUSTOM-ATTRIBUTES]]: one request to the server
# started last. Sets STATUS, CTYPE and BODY. A POST sends BODY as JSON
# (/models) or as an octet stream (.../invoke).
api() {
	local method=$1 path=$2 body=${3-} attr=${4-} meta
	local out=$T/api_body.$BASHPID   # requests run in the background too
	local args=(-s --path-as-is --max-time 60 -X "$method" -o "$out" -w '%{http_code} %{content_type}')
	[[ -n $attr ]] && args+=(-H "X-Amzn-SageMaker-Custom-Attributes: $attr")
	if [[ $method == POST && $path == /models ]]; then
		args+=(-H 'Content-Type: application/json' -H 'Accept: application/json' --data-binary "$body")
	elif [[ $method == POST ]]; then
		args+=(-H 'Content-Type: application/octet-stream' --data-binary "$body")
	fi
	meta=$(curl "${args[@]}" "$(url "$path")")
	STATUS=${meta%% *}
	CTYPE=${meta#* }
	BODY=$(cat "$out" 2>/dev/null)
	rm -f "$out"
}

# load NAME DIR: POST /models for NAME at DIR.
load() { api POST /models "{\"model_name\": $(json_str "$1"), \"url\": $(json_str "$2")}"; }
# invoke NAME [ATTRS [BODY]]
invoke() { api POST "/models/$(enc "$1")/invoke" "${3-x}" "${2-}"; }
describe() { api GET "/models/$(enc "$1")"; }
unload() { api DELETE "/models/$(enc "$1")"; }

# jf EXPR: EXPR evaluated by Python with d = the last answer's JSON body.
jf() {
	"$PY" -c 'import json, sys
d = json.loads(sys.stdin.read())
print(eval(sys.argv[1]))' "$1" <<<"$BODY" 2>&1 | tail -1
}

# expect_load_error NAME REGEX: the last answer was a 4xx or 5xx with a JSON
# error matching REGEX.
expect_load_error() {
	if [[ $STATUS =~ ^[45][0-9][0-9]$ && $CTYPE == application/json* && $BODY =~ ^\{\"error\":\ \".*\"\}$ &&
		$BODY =~ $2 ]]; then
		ok "$1 ($STATUS)"
	else
		not_ok "$1" "expected a 4xx/5xx JSON error /$2/, got $STATUS $CTYPE [${BODY:0:300}]"
	fi
}

# model_dir NAME [FILE[=CONTENT]...]: makes $T/models/NAME/model with the
# faulty plug-in's load-time command files, prints its path.
model_dir() {
	local d=$T/models/$1/model f
	shift
	mkdir -p "$d"
	for f in "$@"; do
		if [[ $f == *=* ]]; then echo "${f#*=}" >"$d/${f%%=*}"; else : >"$d/$f"; fi
	done
	echo "$d"
}

# ping_status: /ping's status now.
ping_status() { curl -s -o /dev/null -m 10 -w '%{http_code}' "$(url /ping)"; }

# wait_ping_200: waits up to 10 s for /ping to answer 200; prints the last status.
wait_ping_200() {
	local i s
	for i in $(seq 100); do
		s=$(ping_status)
		[[ $s == 200 ]] && break
		sleep 0.1
	done
	echo "$s"
}

# tree_pids PID: PID and all its descendants.
tree_pids() {
	local c
	echo "$1"
	for c in $(pgrep -P "$1"); do tree_pids "$c"; done
}

# pss_kb: the sum of Pss (KiB) over the server and its descendants.
pss_kb() {
	local p v sum=0
	for p in $(tree_pids "$SERVER_PID"); do
		v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null)
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

# alive_of PID...: those still running (not gone, not zombies).
alive_of() {
	local p st
	for p in "$@"; do
		st=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)
		[[ -n $st && $st != Z ]] && printf '%s ' "$p"
	done
}

# The Python half: many loads, paging, pings during a burst. One connection
# per thread, kept alive.
cat >"$T/mme.py" <<'PY'
import http.client, json, sys, threading, time, urllib.parse
port = int(sys.argv[2])

def conn():
    return http.client.HTTPConnection("127.0.0.1", port, timeout=60)

def request(c, method, path, body=None):
    headers = {"Content-Type": "application/json", "Accept": "application/json"} if body else {}
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    return r.status, r.read()

def load_many(prefix, count, url, threads):
    """Loads prefix0000... in `threads` threads; prints the statuses seen."""
    statuses = {}
    lock = threading.Lock()
    def run(k):
        c = conn()
        for i in range(k, count, threads):
            body = json.dumps({"model_name": "%s%04d" % (prefix, i), "url": url})
            s, _ = request(c, "POST", "/models", body)
            with lock:
                statuses[s] = statuses.get(s, 0) + 1
    ts = [threading.Thread(target=run, args=(k,)) for k in range(threads)]
    for t in ts: t.start()
    for t in ts: t.join()
    return statuses

def page_all(limit):
    """Pages through GET /models; returns (names in order, pages, problems)."""
    c, names, pages, problems, token = conn(), [], 0, [], None
    while True:
        q = {} if limit is None else {"limit": str(limit)}
        if token is not None:
            q["next_page_token"] = token
        s, body = request(c, "GET", "/models" + ("?" + urllib.parse.urlencode(q) if q else ""))
        pages += 1
        if s != 200:
            problems.append("status %d on page %d" % (s, pages)); break
        d = json.loads(body)
        if set(d) - {"models", "nextPageToken"}:
            problems.append("fields %s" % sorted(d))
        for m in d["models"]:
            if set(m) != {"modelName", "modelUrl"}:
                problems.append("model fields %s" % sorted(m))
            names.append(m["modelName"])
        if limit is not None and len(d["models"]) > limit:
            problems.append("%d models on a page of %d" % (len(d["models"]), limit))
        token = d.get("nextPageToken")
        if token is None or pages > 10000:
            break
        if not isinstance(token, str) or not token:
            problems.append("token %r" % (token,)); break
    return names, pages, problems

cmd = sys.argv[1]
if cmd == "load-many":
    prefix, count, url, threads = sys.argv[3], int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
    print(" ".join("%d:%d" % kv for kv in sorted(load_many(prefix, count, url, threads).items())))
elif cmd == "page":
    limit = None if sys.argv[3] == "default" else int(sys.argv[3])
    names, pages, problems = page_all(limit)
    dup = sorted({n for n in names if names.count(n) > 1})
    want = set(l.rstrip("\n") for l in open(sys.argv[4]))
    missing, extra = sorted(want - set(names)), sorted(set(names) - want)
    print("pages=%d models=%d duplicates=%s missing=%s extra=%s problems=%s"
          % (pages, len(names), dup[:3], missing[:3], extra[:3], problems[:3]))
elif cmd == "first-page":
    c = conn()
    s, body = request(c, "GET", "/models" + sys.argv[3])
    d = json.loads(body)
    print(s, len(d["models"]), "token" if "nextPageToken" in d else "no-token")
elif cmd == "burst":
    # count loads in 4 threads while one thread pings; prints the figures.
    prefix, count, url = sys.argv[3], int(sys.argv[4]), sys.argv[5]
    done, times, bad = threading.Event(), [], []
    def pinger():
        c = conn()
        while not done.is_set():
            t = time.monotonic()
            s, _ = request(c, "GET", "/ping")
            times.append(time.monotonic() - t)
            if s != 200: bad.append(s)
            time.sleep(0.002)
    p = threading.Thread(target=pinger); p.start()
    t0 = time.monotonic()
    statuses = load_many(prefix, count, url, 4)
    took = time.monotonic() - t0
    done.set(); p.join()
    times.sort()
    p99 = times[int(len(times) * 0.99)] if times else 0
    print("loads=%s pings=%d bad_pings=%d ping_p99_ms=%.1f ping_max_ms=%.1f load_seconds=%.2f"
          % (" ".join("%d:%d" % kv for kv in sorted(statuses.items())), len(times), len(bad),
             p99 * 1000, (times[-1] if times else 0) * 1000, took))
PY
mme_py() { "$PY" "$T/mme.py" "$1" "$PORT" "${@:2}"; }

# ---- 1. start-up -----------------------------------------------------------

test_start_up() {
	SAGEMAKER_MULTI_MODEL=true start_server env --workers 1 || { not_ok "SAGEMAKER_MULTI_MODEL=true starts"; return; }
	expect "SAGEMAKER_MULTI_MODEL=true: /ping 200 with no model" 200 "$(wait_ping_200)"
	expect_match "SAGEMAKER_MULTI_MODEL=true: the start-up line says multi_model=on, and no model_dir (POST /models names each)" \
		'listening on .* model_dir=- .*multi_model=on' "$(grep -m1 'listening on' "$SERVER_LOG")"
	api GET /models
	expect "an empty list: {\"models\": []}, no nextPageToken" "200 application/json {'models': []}" \
		"$STATUS ${CTYPE%%;*} $(jf d)"
	api POST /invocations hello
	expect_error "/invocations in multi-model mode: 404" 404 .
	stop_server env
	start_server flag --multi-model --workers 1 || { not_ok "--multi-model starts"; return; }
	expect "--multi-model: /ping 200 with no model" 200 "$(wait_ping_200)"
	expect_match "--multi-model: the start-up line says multi_model=on" \
		'listening on .*multi_model=on' "$(grep -m1 'listening on' "$SERVER_LOG")"
	stop_server flag
}

# ---- 2. every route and status ---------------------------------------------

test_routes() {
	local a b
	a=$(model_dir a) b=$(model_dir b)
	load a "$a"
	expect "POST /models: 200, JSON" "200 application/json" "$STATUS ${CTYPE%%;*}"
	expect "POST /models: the answer is a JSON object" dict "$(jf 'type(d).__name__')"
	describe a
	expect "GET /models/a: exactly modelName and modelUrl" "200 {'modelName': 'a', 'modelUrl': '$a'}" \
		"$STATUS $(jf 'dict(sorted(d.items()))')"
	load a "$a"
	expect_error "POST /models again, same name: 409" 409 .
	load a "$b"
	expect_error "POST /models, same name, another url: 409" 409 .
	invoke a whoami
	expect "a answers from its own directory" "200 $a" "$STATUS ${BODY% pid *}"
	invoke a "" "hello there"
	expect "a echoes the body (no custom attributes)" "200 hello there" "$STATUS $BODY"
	load b "$b"
	expect "a second model: 200" 200 "$STATUS"
	invoke b whoami
	expect "b answers from its own directory" "200 $b" "$STATUS ${BODY% pid *}"
	invoke a whoami
	expect "a still answers from its own" "200 $a" "$STATUS ${BODY% pid *}"
	BODY=$(curl -s -H 'X-Amzn-SageMaker-Custom-Attributes: inspect' \
		-H 'X-Amzn-SageMaker-Target-Model: customer-1/model.tar.gz' \
		-H 'Content-Type: text/csv' -H 'Accept: text/csv' --data-binary '1,2' "$(url /models/b/invoke)")
	expect_match "invoke: the plug-in sees the content type, accept and custom attributes" \
		$'content_type=text/csv\naccept=text/csv\ncustom_attributes=inspect\n.*body_len=3' "$BODY"
	api GET /models
	expect "GET /models lists a and b" "200 [('a', '$a'), ('b', '$b')]" \
		"$STATUS $(jf 'sorted((m["modelName"], m["modelUrl"]) for m in d["models"])')"
	expect "GET /models: no nextPageToken when all fit" False "$(jf '"nextPageToken" in d')"
	describe nothere
	expect_error "GET /models/nothere: 404" 404 .
	invoke nothere
	expect_error "POST /models/nothere/invoke: 404" 404 .
	unload nothere
	expect_error "DELETE /models/nothere: 404" 404 .
	unload b
	expect "DELETE /models/b: 200" 200 "$STATUS"
	describe b
	expect_error "b after DELETE: GET 404" 404 .
	invoke b whoami
	expect_error "b after DELETE: invoke 404" 404 .
	unload b
	expect_error "b after DELETE: DELETE again 404" 404 .
	load b "$a"
	expect "b loaded again, from a's directory: 200" 200 "$STATUS"
	invoke b whoami
	expect "b now answers from the new directory" "200 $a" "$STATUS ${BODY% pid *}"
	unload b
}

test_malformed() {
	local d body name
	d=$(model_dir m)
	while IFS='|' read -r name body; do
		api POST /models "$body"
		expect_error "POST /models, $name: 400" 400 .
	done <<EOF
an empty body|
not JSON|model_name=x&url=$d
JSON cut short|{"model_name": "x", "url": "$d"
an array|["x", "$d"]
a string|"x"
model_name a number|{"model_name": 5, "url": "$d"}
url a number|{"model_name": "x", "url": 5}
model_name null|{"model_name": null, "url": "$d"}
trailing bytes|{"model_name": "x", "url": "$d"} x
a number that is not one (RFC 8259 6)|{"model_name": "x", "url": "$d", "n": 01}
a lone minus|{"model_name": "x", "url": "$d", "n": -}
an exponent without digits|{"model_name": "x", "url": "$d", "n": 1e}
a fraction without digits|{"model_name": "x", "url": "$d", "n": 1.}
EOF
	# RFC 8259 8.1: JSON text is UTF-8; a name that is not would make every
	# listing that holds it unreadable. (\xff, an overlong "/", a surrogate)
	for name in $'\xff\xfe' $'\xc0\xaf' $'\xed\xa0\x80'; do
		api POST /models "{\"model_name\": \"bad$name\", \"url\": \"$d\"}"
		expect_error "POST /models, a name that is not UTF-8 ($(od -An -tx1 <<<"$name" | head -c 12)): 400" 400 .
	done
	api POST /models "{\"model_name\": \"x\", \"url\": \"$d\", \"n\": -1.5e+3}"
	expect "POST /models: other members' numbers in full JSON form are skipped: 200" 200 "$STATUS"
	unload x
	api POST /models "{\"url\": \"$d\"}"
	expect_error "POST /models without model_name: 400 naming it" 400 model_name
	api POST /models '{"model_name": "x"}'
	expect_error "POST /models without url: 400 naming it" 400 url
	describe x
	expect_error "after the 400s, x is not loaded" 404 .
	# JSON escapes decoded: "caf\u00e9" is the name café (UTF-8 in the path)
	api POST /models "{\"url\": \"$d\", \"model_name\": \"caf\\u00e9 \\\"q\\\" \\\\ \\/\"}"
	expect "POST /models: the fields in either order, with \\u, \\\", \\\\ and \\/ escapes: 200" 200 "$STATUS"
	describe $'caf\xc3\xa9 "q" \\ /'
	want="'caf\\xe9 \"q\" \\\\ /'"
	expect "... and the name is the decoded text" "200 $want" "$STATUS $(jf 'ascii(d["modelName"])')"
	unload $'caf\xc3\xa9 "q" \\ /'
	expect "... DELETE by the encoded name: 200" 200 "$STATUS"
}

test_odd_names() {
	local d name names=() n=0 listed
	d=$(model_dir odd)
	names=("with space" "a/b" "100%" "50%25" "q?x=1#frag" "plus+sign" 'quo"te' 'back\slash' \
		$'caf\xc3\xa9 \xe2\x98\x95' "..")
	for name in "${names[@]}"; do
		load "$name" "$d"
		[[ $STATUS == 200 ]] && n=$((n + 1)) || echo "# load of [$name]: $STATUS $BODY"
	done
	expect "names with odd characters all load" "${#names[@]}" "$n"
	for name in "${names[@]}"; do
		describe "$name"
		expect "GET /models/$(enc "$name"): its own name back" "200 $name" \
			"$STATUS $(jf 'd["modelName"]' | tr -d '\n')"
		invoke "$name" whoami
		expect "POST /models/$(enc "$name")/invoke: 200" 200 "$STATUS"
	done
	api GET /models
	expect "GET /models lists the odd names exactly (and a)" \
		"$(printf '%s\n' "${names[@]}" a | sort | paste -sd'|')" \
		"$(jf '"|".join(sorted(m["modelName"] for m in d["models"]))')"
	# "a/b" and "a" (loaded earlier): one must not be taken for the other
	unload "a/b"
	expect "DELETE /models/a%2Fb: 200" 200 "$STATUS"
	describe "a"
	expect "a survives the DELETE of a/b" 200 "$STATUS"
	describe "a/b"
	expect "a/b gone" 404 "$STATUS"
	unload "100%"
	describe "50%25"
	expect "50%25 survives the DELETE of 100%" 200 "$STATUS"
	for name in "${names[@]}"; do [[ $name == a/b || $name == 100% ]] || unload "$name"; done
	# A newline in a name (a JSON escape) must not forge a log line.
	api POST /models '{"model_name": "forge\n2026-01-01T00:00:00Z smserve: FORGED", "url": "'"$d"'"}'
	expect "a name with a newline loads" 200 "$STATUS"
	expect "its log line shows the newline as \\x0a, and no forged line follows" "1 0" \
		"$(grep -cF "model 'forge\\x0a2026-01-01T00:00:00Z smserve: FORGED' loaded" "$SERVER_LOG") $(grep -c '^2026-01-01T00:00:00Z smserve: FORGED' "$SERVER_LOG")"
	unload $'forge\n2026-01-01T00:00:00Z smserve: FORGED'
	expect "and it unloads by its name, percent-encoded" 200 "$STATUS"
	api GET /models
	expect "after the DELETEs, only a is left" "['a']" "$(jf 'sorted(m["modelName"] for m in d["models"])')"
}

# The invocation path is the one of /invocations: streamed answers, custom
# attributes back, a crash in model_invoke.
test_invoke_paths() {
	local out
	out=$(curl -s -m 60 -D "$T/stream.head" -H 'X-Amzn-SageMaker-Custom-Attributes: flushed 2500000 100000' \
		-d x "$(url /models/a/invoke)" | "$PY" -c 'import sys
b = sys.stdin.buffer.read()
print(len(b), b == bytes(i % 251 for i in range(len(b))))')
	expect "invoke: a streamed 2,500,000-byte answer (flushed), every byte right" "2500000 True" "$out"
	expect_match "... sent chunked" 'Transfer-Encoding: chunked' "$(cat "$T/stream.head")"
	out=$(curl -s -m 60 -D - -o /dev/null -H 'X-Amzn-SageMaker-Custom-Attributes: attrs from-a' -d x \
		"$(url /models/a/invoke)" | tr -d '\r' | grep -i '^X-Amzn-SageMaker-Custom-Attributes:')
	expect "invoke: the model's custom attributes come back" "X-Amzn-SageMaker-Custom-Attributes: from-a" "$out"
	invoke a crash
	expect "invoke: a crash in model_invoke is a 500" 500 "$STATUS"
	invoke a whoami
	expect "... and the model answers after it" 200 "$STATUS"
}

# status_allow METHOD PATH: "STATUS Allow-value" of the answer.
status_allow() {
	curl -s -i -m 10 -X "$1" "$(url "$2")" | tr -d '\r' |
		awk 'NR == 1 {s = $2} tolower($1) == "allow:" {sub(/^[^:]*: */, ""); a = $0} END {print s, a}'
}

test_methods_and_queries() {
	expect "PUT /models: 405, Allow lists GET and POST" "405 GET, HEAD, POST" "$(status_allow PUT /models)"
	expect "PUT /models/a: 405, Allow lists GET and DELETE" "405 GET, HEAD, DELETE" "$(status_allow PUT /models/a)"
	expect "GET /models/a/invoke: 405, Allow: POST" "405 POST" "$(status_allow GET /models/a/invoke)"
	api GET /models/a/b/c
	expect_error "GET /models/a/b/c: 404" 404 .
	api GET "/models?limit=0"
	expect_error "GET /models?limit=0: 400" 400 limit
	api GET "/models?limit=x"
	expect_error "GET /models?limit=x: 400" 400 limit
	api GET "/models?next_page_token=not-a-token"
	expect_error "GET /models with a token it never gave: 400" 400 next_page_token
}

# ---- 3. loads that fail ----------------------------------------------------

test_failed_loads() {
	local d out ping other t0 t1
	# (a missing directory: tests/mme_linear.sh; this plug-in reads none)
	d=$(model_dir failing fail-on-load)
	load failing "$d"
	expect_load_error "model_load fails: its error (the file and the reason)" 'fail-on-load: refusing to load'
	describe failing
	expect "... the name is not loaded" 404 "$STATUS"
	d=$(model_dir crashing crash-on-load)
	load crashing "$d"
	expect_load_error "model_load crashes: an error" .
	describe crashing
	expect "... the name is not loaded" 404 "$STATUS"
	expect "... /ping 200" 200 "$(ping_status)"
	invoke a whoami
	expect "... a still answers" 200 "$STATUS"
	rm "$d/crash-on-load"
	load crashing "$d"
	expect "... and the name loads when the plug-in no longer crashes" 200 "$STATUS"
	unload crashing

	# A hang: killed after the load timeout (3 s here); meanwhile the rest answers.
	d=$(model_dir hanging hang-on-load)
	t0=$(date +%s%N)
	(load hanging "$d"; printf '%s\n' "$STATUS" "$CTYPE" "$BODY" >"$T/hang.out") &
	sleep 0.5
	ping=$(ping_status)
	invoke a whoami
	other=$STATUS
	load beside "$(model_dir beside)"
	expect "while a load hangs: /ping, an invocation and another load" "200 200 200" "$ping $other $STATUS"
	describe hanging
	expect "... the hanging name is not listed as loaded" 404 "$STATUS"
	wait_clients
	t1=$(date +%s%N)
	{ read -r STATUS; read -r CTYPE; read -r BODY; } <"$T/hang.out"
	expect_load_error "a hung load: an error after the load timeout" .
	echo "# a hung load answered after $(((t1 - t0) / 1000000)) ms (load timeout 3 s)"
	(( (t1 - t0) / 1000000000 < 30 )) && ok "... within 30 s" || not_ok "... within 30 s" "$(((t1 - t0) / 1000000)) ms"
	describe hanging
	expect "... the name is not loaded" 404 "$STATUS"
	expect "... /ping 200" 200 "$(ping_status)"
	unload beside
}

test_loading_409() {
	local d
	d=$(model_dir slow sleep-on-load=2500)
	(load slow "$d"; echo "$STATUS" >"$T/slow.out") &
	sleep 0.8
	load slow "$d"
	expect_error "POST /models for a name still loading: 409" 409 .
	invoke a whoami
	expect "an invocation of another model while one loads" 200 "$STATUS"
	wait_clients
	expect "... and the first load ends 200" 200 "$(cat "$T/slow.out")"
	unload slow
}

# ---- 4. paging -------------------------------------------------------------

test_paging() {
	local d i out
	d=$(model_dir paged)
	out=$(mme_py load-many p 250 "$d" 4)
	expect "250 loads, 4 at a time: all 200" "200:250" "$out"
	{ echo a; for i in $(seq 0 249); do printf 'p%04d\n' "$i"; done; } >"$T/want"
	expect "GET /models, default limit: 100 and a nextPageToken" "200 100 token" "$(mme_py first-page '')"
	expect "GET /models?limit=1000: all 251 in one page, no token" "200 251 no-token" "$(mme_py first-page '?limit=1000')"
	expect "paging by 7: each model exactly once, then no token" \
		"pages=36 models=251 duplicates=[] missing=[] extra=[] problems=[]" "$(mme_py page 7 "$T/want")"
	expect "paging by the default: each model exactly once" \
		"pages=3 models=251 duplicates=[] missing=[] extra=[] problems=[]" "$(mme_py page default "$T/want")"
	for i in $(seq 0 2 249); do unload "$(printf 'p%04d' "$i")"; done
	{ echo a; for i in $(seq 1 2 249); do printf 'p%04d\n' "$i"; done; } >"$T/want"
	expect "after 125 DELETEs, paging by 10: the 126 left, each once" \
		"pages=13 models=126 duplicates=[] missing=[] extra=[] problems=[]" "$(mme_py page 10 "$T/want")"
	for i in $(seq 1 2 249); do unload "$(printf 'p%04d' "$i")"; done
}

# ---- 5. DELETE while an invocation runs ------------------------------------

test_unload_during_invocation() {
	local d later t0
	d=$(model_dir held)
	load held "$d"
	t0=$(date +%s%N)
	(invoke held "sleep 3" "still here"; echo "$STATUS $BODY" >"$T/inv.out") &
	sleep 1
	(unload held; echo "$STATUS" >"$T/del.out"; date +%s%N >"$T/del.t") &
	sleep 0.5
	invoke held whoami
	later=$STATUS
	wait_clients
	expect "an invocation running when its model is unloaded finishes" "200 still here" "$(cat "$T/inv.out")"
	expect "the DELETE: 200" 200 "$(cat "$T/del.out")"
	expect "an invocation sent after the DELETE: 404" 404 "$later"
	# The model sleeps 3 s: a DELETE answered before then did not wait for it.
	(( $(cat "$T/del.t") - t0 >= 2900000000 )) && ok "the DELETE answers once the running invocation ended" ||
		not_ok "the DELETE answers once the running invocation ended" \
			"answered $((($(cat "$T/del.t") - t0) / 1000000)) ms after the 3 s invocation began"
	describe held
	expect "... and held is gone" 404 "$STATUS"
}

# ---- 6. a worker killed with several models loaded -------------------------

test_worker_killed() {
	local i victim new before after pids= bad=0 dirs=()
	for i in 1 2 3; do
		dirs[i]=$(model_dir "w$i")
		load "w$i" "${dirs[i]}"
	done
	invoke w1 whoami
	victim=${BODY##* pid }
	before=$(pgrep -P "$SERVER_PID" | sort -n | tr '\n' ' ')
	kill -KILL "$victim"
	for i in $(seq 100); do
		after=$(pgrep -P "$SERVER_PID" | sort -n | tr '\n' ' ')
		[[ $(wc -w <<<"$after") -ge $(wc -w <<<"$before") && " $after " != *" $victim "* ]] && break
		sleep 0.1
	done
	new=$(comm -13 <(tr ' ' '\n' <<<"$before" | sort) <(tr ' ' '\n' <<<"$after" | sort) | tr '\n' ' ')
	expect_match "the killed worker is replaced" '^[0-9]+ $' "$new"
	# 4 invocations of each model at once, each 300 ms: both workers serve each.
	for i in 1 2 3; do
		for _ in 1 2 3 4; do
			curl -s -m 30 -H 'X-Amzn-SageMaker-Custom-Attributes: whoami 300' -d x "$(url /models/w$i/invoke)" &
		done >"$T/w$i.out"
		wait_clients
		grep -c "^${dirs[i]} pid " "$T/w$i.out" | grep -qx 4 || bad=$((bad + 1))
		pids+=" $(sed 's/.* pid //' "$T/w$i.out" | tr '\n' ' ')"
	done
	expect "after the kill, every model answers from its own directory (4 times each)" 0 "$bad"
	expect_match "... the new worker among those answering" " ${new% } " " $pids "
	for i in 1 2 3; do unload "w$i"; done
}

# ---- 7. /ping during a burst of loads --------------------------------------

test_ping_during_burst() {
	local out
	out=$(mme_py burst burst 200 "$(model_dir burst)")
	echo "# 200 loads in 4 threads beside a pinger: $out"
	expect_match "a burst of 200 loads: all 200" '^loads=200:200 ' "$out"
	expect_match "... /ping answered 200 throughout" ' bad_pings=0 ' "$out"
	local max=${out##*ping_max_ms=}
	max=${max%%.*}
	((max < 5000)) && ok "... no /ping took 5 s (a hang)" || not_ok "... no /ping took 5 s (a hang)" "$max ms"
	for i in $(seq 0 199); do unload "$(printf 'burst%04d' "$i")"; done
	api GET /models
	expect "... all unloaded again" "['a']" "$(jf 'sorted(m["modelName"] for m in d["models"])')"
}

# ---- 8. the model budget ---------------------------------------------------

test_budget() {
	start_server budget --multi-model --workers 1 "$BUDGET_OPT" 96 "$MAX_MODEL_OPT" 48 ||
		{ not_ok "starts with $BUDGET_OPT 96 $MAX_MODEL_OPT 48"; return; }
	load big "$(model_dir big alloc-mb=56)"
	expect_load_error "a 56 MiB model past $MAX_MODEL_OPT 48: an error" .
	describe big
	expect "... not loaded" 404 "$STATUS"
	load b1 "$(model_dir b1 alloc-mb=40)"
	expect "a 40 MiB model in a 96 MiB budget: 200" 200 "$STATUS"
	load b2 "$(model_dir b2 alloc-mb=40)"
	expect "a second: 200" 200 "$STATUS"
	load b3 "$(model_dir b3 alloc-mb=40)"
	expect_error "a third would pass the budget: 507" 507 .
	describe b3
	expect "... not loaded" 404 "$STATUS"
	invoke b1 whoami
	expect "... b1 still answers" 200 "$STATUS"
	unload b1
	load b3 "$T/models/b3/model"
	expect "after b1's DELETE, the third loads: 200 (memory returned)" 200 "$STATUS"
	d=$(model_dir sparse)
	truncate -s 1G "$d/weights.bin"
	load sparse "$d"
	expect "a model with a 1 GiB (sparse) artifact that occupies nothing: 200" 200 "$STATUS"
	stop_server budget
}

# ---- 9. one copy per model -------------------------------------------------

# touch_all NAME [touch|dirty]: 4 invocations at once that read (or write)
# the model's memory; prints how many distinct workers answered.
touch_all() {
	local i
	for i in 1 2 3 4; do
		curl -s -m 30 -H "X-Amzn-SageMaker-Custom-Attributes: ${2:-touch}-model 1000" -d x \
			"$(url "/models/$1/invoke")" &
	done >"$T/touch.out"
	wait_clients
	sed -n 's/.* pid //p' "$T/touch.out" | sort -u | wc -l
}

test_one_copy() {
	local base loaded touched freed workers grow back loop_before loop_after
	if ((SANITIZED)); then
		echo "# SKIP: Pss per model (the sanitizers' allocator and shadow memory blur it)"
		return
	fi
	start_server pss --multi-model --workers 4 || { not_ok "starts with 4 workers"; return; }
	load small "$(model_dir small)"
	touch_all small >/dev/null
	sleep 0.3
	base=$(pss_kb)
	loop_before=$(awk '/^Rss:/ {print $2}' "/proc/$SERVER_PID/smaps_rollup")
	load big "$(model_dir big64 alloc-mb=64)"
	expect "a 64 MiB model loads" 200 "$STATUS"
	loaded=$(pss_kb)
	workers=$(touch_all big)
	expect "4 workers read all of its memory" "4 touched 67108864 bytes" \
		"$workers $(head -1 "$T/touch.out" | sed 's/, sum.*//')"
	touched=$(pss_kb)
	loop_after=$(awk '/^Rss:/ {print $2}' "/proc/$SERVER_PID/smaps_rollup")
	((loop_after - loop_before < 8192)) && ok "the loop itself never maps the model (its Rss within 8 MiB)" ||
		not_ok "the loop itself never maps the model (its Rss within 8 MiB)" "$loop_before -> $loop_after KiB"
	unload big
	expect "DELETE of the 64 MiB model: 200" 200 "$STATUS"
	sleep 0.3
	freed=$(pss_kb)
	grow=$((touched - base)) back=$((touched - freed))
	echo "# sum of Pss over the server's processes: $base KiB, $loaded after the load," \
		"$touched after 4 workers read it, $freed after DELETE (65536 KiB model)"
	((grow >= 65536 * 7 / 10 && grow <= 65536 * 16 / 10)) &&
		ok "4 workers reading a 64 MiB model: Pss grows by about 64 MiB, not 4 times" ||
		not_ok "4 workers reading a 64 MiB model: Pss grows by about 64 MiB, not 4 times" "grew $grow KiB"
	((back >= 65536 * 7 / 10)) && ok "DELETE gives the 64 MiB back (Pss falls)" ||
		not_ok "DELETE gives the 64 MiB back (Pss falls)" "fell $back KiB"
	invoke small whoami
	expect "... the other model still answers" 200 "$STATUS"

	# A model its invocations write to (as both plug-ins write work arrays in
	# theirs): each worker has its own copy of what it wrote, and DELETE
	# must give those back too.
	base=$(pss_kb)
	load dirty "$(model_dir dirty16 alloc-mb=16)"
	workers=$(touch_all dirty dirty)
	touched=$(pss_kb)
	unload dirty
	expect "4 workers write to a 16 MiB model, then DELETE: 200" "4 200" "$workers $STATUS"
	for _ in $(seq 30); do
		freed=$(pss_kb)
		((touched - freed >= (touched - base) * 7 / 10)) && break
		sleep 0.1
	done
	echo "# sum of Pss: $base KiB, $touched after 4 workers wrote to every page of a 16 MiB model," \
		"$freed after DELETE"
	((touched - base >= 16384 * 3)) && ok "... each writing worker has its own copy (the test works)" ||
		not_ok "... each writing worker has its own copy (the test works)" "grew $((touched - base)) KiB"
	((touched - freed >= (touched - base) * 7 / 10)) &&
		ok "DELETE gives back the workers' written copies too (within 3 s)" ||
		not_ok "DELETE gives back the workers' written copies too (within 3 s)" \
			"grew $((touched - base)) KiB, fell $((touched - freed)) KiB"
	stop_server pss
}

# ---- 10. SIGTERM with loads in flight --------------------------------------

# sigterm_with_loads NAME FILE...: 4 loads in flight whose model directories
# hold FILEs (faulty's load-time commands), then SIGTERM: the server exits 0
# (lib.sh allows 10 s) and leaves no process behind.
sigterm_with_loads() {
	local name=$1 i pids left
	shift
	start_server "$name" --multi-model --workers 2 "$LOAD_TIMEOUT_OPT" 20 || { not_ok "$name: starts"; return; }
	load ready "$(model_dir "$name-ready")"
	for i in 1 2 3 4; do
		curl -s -m 30 -o /dev/null -w '%{http_code}\n' -H 'Content-Type: application/json' \
			-d "{\"model_name\": \"s$i\", \"url\": \"$(model_dir "$name$i" "$@")\"}" "$(url /models)" &
	done >"$T/$name.out"
	sleep 0.6
	pids=$(tree_pids "$SERVER_PID" | tr '\n' ' ')
	echo "# $name: processes with 4 loads in flight: $pids"
	stop_server "$name"
	for i in $(seq 50); do
		left=$(alive_of $pids)
		[[ -z $left ]] && break
		sleep 0.1
	done
	expect "$name: no process left" "" "$left"
	wait_clients
	echo "# $name: the loads in flight got: $(sort "$T/$name.out" | uniq -c | tr -s ' \n' ' ')"
}

test_sigterm_loading() {
	sigterm_with_loads term-loading sleep-on-load=1500
	# a hung load must not hold the exit until the load timeout (20 s here)
	sigterm_with_loads term-hung hang-on-load
}

# ---- 11. A killed load's memory --------------------------------------------

# A SIGKILLed loader stops running its own code at once, but a system call
# it is in goes on: a read() into its extent fills pages after the kill.
# The shim stretches that to 2.5 s. With --max-models 1 the next model can
# only go into the same extent.
test_killed_load() {
	local shim=$T/late_kill.so i
	if ((SANITIZED)); then
		echo "# SKIP: a killed load's memory (an LD_PRELOAD shim beside the sanitizer's runtime)"
		return
	fi
	if ! gcc -shared -fPIC -o "$shim" tests/shims/late_kill.c -ldl; then
		not_ok "tests/shims/late_kill.c compiles"
		return
	fi
	LD_PRELOAD=$shim LATE_KILL_MS=2500 start_server killed --multi-model --workers 1 \
		--max-models 1 "$LOAD_TIMEOUT_OPT" 1 || { not_ok "killed: starts"; return; }
	load scribbler "$(model_dir scribbler scribble-on-load=8)"
	expect_load_error "a load still writing its memory at the timeout: an error" 'did not finish within 1 s'
	next_load_waits_for_reap "the load killed at its timeout"
	unload after
	load closer "$(model_dir closer close-fds-on-load scribble-on-load=8)"
	expect_load_error "a load that closes its answer pipe and writes on: an error at once" 'crashed'
	next_load_waits_for_reap "the load that closed its pipe"
	stop_server killed

	LD_PRELOAD=$shim LATE_KILL_MS=2500 start_server held --multi-model --workers 1 \
		--max-models 8 "$LOAD_TIMEOUT_OPT" 1 || { not_ok "held: starts"; return; }
	for i in 1 2 3 4; do
		(load "s$i" "$(model_dir "s$i" scribble-on-load=8)"; echo "$STATUS") &
	done >"$T/held.out"
	wait_clients
	expect "4 loads time out together: each 500" "500 500 500 500" "$(xargs <"$T/held.out")"
	load after "$(model_dir after2 alloc-mb=4)"
	expect_load_error "... a load while all 4 loader slots wait for reaps, extents free: 503, retry" \
		'timed out are still being stopped; retry'
	[[ $STATUS != 503 ]] || wait_for 6 load_past_503 after "$(model_dir after2 alloc-mb=4)"
	expect "... and 200 once they are reaped" 200 "$STATUS"
	stop_server held
}

# load_past_503 NAME DIR: loads NAME; fails while the answer is a 503.
load_past_503() { load "$1" "$2"; [[ $STATUS != 503 ]]; }

# next_load_waits_for_reap WHAT: after WHAT failed, the only extent is
# held: a load is a 503 until the loader is reaped, then a 200, and its
# model is intact.
next_load_waits_for_reap() {
	load after "$(model_dir after alloc-mb=4)"
	expect_load_error "... the next load, while $1 runs on: 503, retry" \
		'timed out are still being stopped; retry'
	expect "... ... status 503" 503 "$STATUS"
	[[ $STATUS != 503 ]] || wait_for 6 load_past_503 after "$(model_dir after alloc-mb=4)"
	expect "... and 200 once it is reaped" 200 "$STATUS"
	sleep 0.5
	# (touch-model sums a byte of each page: 1024 pages of 0x5a)
	invoke after touch-model
	expect "... the model loaded there next is intact: 4 MiB of 0x5a" \
		"200 touched 4194304 bytes, sum $((1024 * 0x5a))" "$STATUS ${BODY%%, pid*}"
}

# ---- run -------------------------------------------------------------------

test_start_up
SAGEMAKER_MULTI_MODEL=true start_server mme --workers 2 "$LOAD_TIMEOUT_OPT" 3 || { finish; exit 1; }
test_routes
test_invoke_paths
test_methods_and_queries
test_malformed
test_odd_names
test_failed_loads
test_loading_409
test_paging
test_unload_during_invocation
test_worker_killed
test_ping_during_burst
stop_server mme
test_budget
test_one_copy
test_sigterm_loading
test_killed_load
finish
