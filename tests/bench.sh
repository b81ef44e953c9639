#!/usr/bin/env bash
# test-binary: none
# test-group: bench
# tests/bench.sh - `make bench` still runs on a clean checkout: bench/run.sh
# with 1 s per wrk run and one round, in a copy of the repository's files
# with nothing built (so it must build all it runs), written into a scratch
# directory (the committed bench/results stay as they are).
#
# What it checks: the script finishes; every scenario has a figure for every
# server it names; smserve's runs saw no errors; every ratio, memory row and
# the start and instruction counts are filled in; the chart has one bar per
# row of the table. No speed is asserted: runs this short on a shared machine
# say nothing about speed (that is what `make bench` itself is for).
# Needs what the benchmark needs: wrk, nginx, valgrind, curl, and Flask,
# gunicorn and scikit-learn for /usr/bin/python3; without them it is skipped
# (a "# SKIP" line and "0 passed, 0 failed": bench/run.sh would try to install
# them, which a test must not do). .ci/run installs them. `make test` leaves
# this script out (test-group bench); `bash test.sh bench` runs it.

cd "$(dirname "$0")/.." || exit 1
OWN_TEST_TMP=${TEST_TMP:+no}
source tests/lib.sh

missing=()
for tool in wrk nginx valgrind curl; do command -v "$tool" >/dev/null || missing+=("$tool"); done
for module in flask gunicorn sklearn; do
	/usr/bin/python3 -c "import $module" 2>/dev/null || missing+=("python3 $module")
done
if [[ ${#missing[@]} -gt 0 ]]; then
	echo "# SKIP: the benchmark needs ${missing[*]}"
	[[ $OWN_TEST_TMP == no ]] || rm -rf "$TEST_TMP"
	finish
	exit 0
fi
# (the copy of the repository and the results: tens of MB)
trap '[[ $OWN_TEST_TMP == no ]] || rm -rf "$TEST_TMP"' EXIT

clean=$TEST_TMP/clean out=$TEST_TMP/bench
mkdir -p "$clean"
git ls-files -z | xargs -0 cp --parents -t "$clean"
BENCH_ROUNDS=1 BENCH_OUT=$out bash "$clean/bench/run.sh" 1 >"$TEST_TMP/bench.log" 2>&1
expect "bench/run.sh finishes (exit status)" 0 "$?"
table=$(cat "$out/bench.md" 2>/dev/null)

# row SCENARIO SERVER -> "req/s errors" of that row of the table
row() { awk -F' *\\| *' -v sc="$1" -v sv="$2" '$2 == sc && $3 == sv {print $4, $7}' <<<"$table"; }
expected_rows=(
	"ping nginx" "ping flask" "ping gunicorn" "ping echo" "ping secho"
	"echo nginx" "echo flask" "echo gunicorn" "echo echo" "echo secho"
	"model sklearn" "model model" "model smodel"
	"batch sklearn" "batch model" "batch smodel"
	"c1000 nginx" "c1000 echo" "newconn nginx" "newconn echo"
	"ping1 nginx" "ping1 nginx1" "ping1 echo" "ping1 secho"
	"echo1 nginx" "echo1 nginx1" "echo1 echo" "echo1 secho"
)
for r in "${expected_rows[@]}"; do
	read -r scenario server <<<"$r"
	read -r rate errors < <(row "$scenario" "$server")
	if [[ ${rate:-} =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v r="$rate" 'BEGIN {exit !(r > 0)}'; then
		ok "$scenario, $server: $rate requests/s"
	else
		not_ok "$scenario, $server: a rate" "row [$(row "$scenario" "$server")]"
	fi
	case $server in
	echo | secho | model | smodel) expect "$scenario, $server: no errors" none "${errors:-}" ;;
	esac
done
expect "the table has no other rows" "${#expected_rows[@]}" \
	"$(grep -cE '^\| (ping|echo|model|batch|c1000|newconn|ping1|echo1) \|' <<<"$table")"

ratios=$(awk -F' *\\| *' '$3 ~ /^[0-9.]+x$/' <<<"$table" | wc -l)
expect "all 17 ratios are numbers" 17 "$ratios"
expect "three memory rows, loop and both workers each" 3 \
	"$(grep -cE '^\| static .* \| loop [0-9]+ KiB RSS, [0-9]+ KiB private \| worker [0-9]+ KiB RSS.*; worker [0-9]+ KiB RSS' <<<"$table")"
expect_match "a start time" 'first 200 from /ping, default model, median of 20\): [0-9]+\.[0-9]+ ms' "$table"
expect_match "an instruction count" 'echo invocations\): [1-9][0-9]*\.' "$table"
expect "the chart: one bar per row" "${#expected_rows[@]}" "$(grep -c 'height="16"' "$out/bench.svg" 2>/dev/null)"
[[ $FAILED -eq 0 ]] || tail -20 "$TEST_TMP/bench.log"
finish
