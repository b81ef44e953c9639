#!/usr/bin/env bash
# test-binary: none
# tests/valgrind.sh - the loop process under valgrind over 10,000+ requests:
# keep-alive and fresh connections, pings, invocations, chunked bodies, 404s,
# malformed requests and clients that vanish mid-request. Passes when
# valgrind finds no memory error and no leak in the loop process after
# SIGTERM, and the loop allocated per connection, not per request. (Workers are forked copies; --child-silent-after-fork keeps the
# report to the loop process, which is the one that lives for months.)
set -u
cd "$(dirname "$0")/.." || exit 1
given=${SMSERVE:-}
source tests/lib.sh

if ! command -v valgrind >/dev/null; then
	echo "# SKIP: valgrind not installed"
	finish
	exit
fi
# test.sh runs this with no SMSERVE ("test-binary: none": it runs once,
# not beside a sanitizer build valgrind cannot run): build the plain one.
if [[ -z $given ]]; then
	make -s WERROR=1 build/smserve-faulty || { not_ok "build/smserve-faulty builds"; finish; exit; }
	SMSERVE=./build/smserve-faulty
fi

PORT=$(free_port)
vlog=$TEST_TMP/valgrind.txt
valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible \
	--errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 \
	--child-silent-after-fork=yes --log-file="$vlog" \
	"$SMSERVE" --port "$PORT" --workers 2 --no-access-log >"$TEST_TMP/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$PORT/ping" && break; sleep 0.1; done

base=http://127.0.0.1:$PORT
count() { grep -c "^$1$"; }
n_ping=$(curl -s -o /dev/null -w '%{http_code}\n' "$base/ping?[1-4000]" | count 200)
n_inv=$(curl -s -o /dev/null -w '%{http_code}\n' -d 'a,b,c' "$base/invocations?[1-4000]" | count 200)
n_chunk=$(curl -s -o /dev/null -w '%{http_code}\n' -H 'Transfer-Encoding: chunked' -d 'chunked' "$base/invocations?[1-1000]" | count 200)
n_404=$(curl -s -o /dev/null -w '%{http_code}\n' "$base/nope?[1-1000]" | count 404)
n_fresh=0
for i in $(seq 100); do
	[[ $(curl -s -o /dev/null -w '%{http_code}' -H 'Connection: close' -d "$i" "$base/invocations") == 200 ]] && n_fresh=$((n_fresh + 1))
done
for i in $(seq 50); do
	raw "$PORT" 'GET /ping HTTP/1.1\nHost: x\n\n' 1 >/dev/null
	raw "$PORT" 'POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial' 0.05 >/dev/null
	raw "$PORT" 'POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab' 0.05 >/dev/null
	raw "$PORT" 'GET /ping HTTP/1.1\r\nHost: x' 0.05 >/dev/null
done
curl -s -o /dev/null -H 'X-Amzn-SageMaker-Custom-Attributes: crash' -d x "$base/invocations"
expect "10,000 keep-alive requests answered (4000 pings, 4000 invocations, 1000 chunked, 1000 404s)" \
	"4000 4000 1000 1000" "$n_ping $n_inv $n_chunk $n_404"
expect "100 requests on fresh connections" 100 "$n_fresh"

kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
rc=$?
expect "valgrind: no memory error and no leak in the loop process (exit status)" 0 "$rc"
# About 360 connections (each a struct and an input buffer) and 10,400
# requests, 5,100 of them invocations: a reply buffer malloc'd per
# invocation would count thousands.
allocs=$(sed -n 's/.*total heap usage: \([0-9,]*\) allocs.*/\1/p' "$vlog" | tail -n 1 | tr -d ,)
if [[ -n $allocs ]] && ((allocs < 2000)); then
	ok "the loop process allocated per connection, not per request ($allocs allocations)"
else
	not_ok "the loop process allocated per connection, not per request" "${allocs:-no count} allocations"
fi
if [[ $rc != 0 ]]; then
	echo "# valgrind report:"
	sed 's/^/#   /' "$vlog" | head -40
fi
finish
