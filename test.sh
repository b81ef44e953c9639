#!/usr/bin/env bash
# test.sh - smserve's whole test suite: `make test` or `bash test.sh`.
#
# Builds every test binary with warnings as errors (gcc, and clang when
# installed), then runs each test script against the plain build and the
# AddressSanitizer + UndefinedBehaviorSanitizer build. Each script prints
# "ok"/"not ok" lines and "N passed, N failed"; this prints the failures, a
# line per script and the total, and exits non-zero on any failure.
#
# Optional parts skip with a "# SKIP" line when their tool is missing:
# python3-flask (echo differential test), python3-sklearn (exporter round
# trips), buildah + root (the image test), valgrind (the leak check), clang's
# libFuzzer (the fuzzers: FUZZ_SECONDS each, default 5; CI runs 60),
# cppcheck and clang-tidy (lint), wrk, nginx and gunicorn (a short make bench).
set -u
cd "$(dirname "$0")" || exit 1
total_passed=0
total_failed=0
log_dir=$(mktemp -d)

note() { printf '%s\n' "$*"; }

# run NAME COMMAND...: runs a test script, shows its failures and skips.
run() {
	local name=$1 start=$SECONDS
	shift
	"$@" >"$log_dir/$name.log" 2>&1
	report "$name" $((SECONDS - start))
}

# run_pair NAME1 CMD1... -- NAME2 CMD2...: two scripts at once on the 2-core
# machine (the plain and the sanitizer build of the same test, or the fuzzers
# and the linters, each on one core), then both reports.
run_pair() {
	local name1=$1 cmd1=() name2 pid start=$SECONDS
	shift
	while [[ $1 != -- ]]; do cmd1+=("$1"); shift; done
	shift
	name2=$1
	shift
	"${cmd1[@]}" >"$log_dir/$name1.log" 2>&1 &
	pid=$!
	"$@" >"$log_dir/$name2.log" 2>&1
	wait "$pid"
	report "$name1" $((SECONDS - start))
	report "$name2" $((SECONDS - start))
}

# report NAME SECONDS: the failures and skips of a finished script, its
# count and how long it ran (a pair: both together).
report() {
	local name=$1 out passed failed
	out=$(cat "$log_dir/$name.log")
	grep -E '^(not ok|# )' <<<"$out" | sed "s/^/  [$name] /"
	read -r passed failed < <(tail -n 1 <<<"$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p')
	if [[ -z ${passed:-} ]]; then
		note "  [$name] did not finish: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
		passed=0 failed=1
	fi
	total_passed=$((total_passed + passed))
	total_failed=$((total_failed + failed))
	printf '%-16s %4d passed, %d failed  (%d s)\n' "$name" "$passed" "$failed" "$2"
}

note "building (warnings are errors)"
make -s WERROR=1 test-bins asan smserve || exit 1
if command -v clang >/dev/null; then
	for plugin in model.c examples/echo/model.c examples/xgboost/model.c tests/plugins/faulty.c; do
		clang -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
			-Wformat=2 -Wundef -Werror -fsyntax-only smserve.c "$plugin" || exit 1
	done
fi

run parser      bash tests/parser.sh
run_pair http env SMSERVE=./build/smserve-faulty bash tests/http.sh -- \
	http-asan env SMSERVE=./build/asan-faulty bash tests/http.sh
run_pair hostile env SMSERVE=./build/smserve-faulty bash tests/hostile.sh -- \
	hostile-asan env SMSERVE=./build/asan-faulty bash tests/hostile.sh
run_pair faults env SMSERVE=./build/smserve-faulty bash tests/faults.sh -- \
	faults-asan env SMSERVE=./build/asan-faulty bash tests/faults.sh
run_pair echo env SMSERVE=./build/smserve-echo bash tests/echo_diff.sh -- \
	echo-asan env SMSERVE=./build/asan-echo bash tests/echo_diff.sh
run_pair linear env SMSERVE=./build/smserve-default bash tests/linear.sh -- \
	linear-asan env SMSERVE=./build/asan-default bash tests/linear.sh
run_pair xgboost env SMSERVE=./build/smserve-xgboost bash tests/xgboost.sh -- \
	xgboost-asan env SMSERVE=./build/asan-xgboost bash tests/xgboost.sh
run valgrind    bash tests/valgrind.sh
run image       bash tests/image.sh
run bench       bash tests/bench.sh
run_pair fuzz bash tests/fuzz.sh "${FUZZ_SECONDS:-5}" -- \
	lint bash tests/lint.sh

note "logs: $log_dir"
note "TOTAL: $total_passed passed, $total_failed failed  ($SECONDS s)"
[[ $total_failed -eq 0 ]]
