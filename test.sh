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
# trips), buildah + root (the image test), valgrind (the leak check).
set -u
cd "$(dirname "$0")" || exit 1
total_passed=0
total_failed=0
log_dir=$(mktemp -d)

note() { printf '%s\n' "$*"; }

# run NAME COMMAND...: runs a test script, shows its failures and skips.
run() {
	local name=$1 out passed failed
	shift
	out=$("$@" 2>&1)
	printf '%s\n' "$out" >"$log_dir/$name.log"
	grep -E '^(not ok|# )' <<<"$out" | sed "s/^/  [$name] /"
	read -r passed failed < <(tail -n 1 <<<"$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p')
	if [[ -z ${passed:-} ]]; then
		note "  [$name] did not finish: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
		passed=0 failed=1
	fi
	total_passed=$((total_passed + passed))
	total_failed=$((total_failed + failed))
	printf '%-14s %4d passed, %d failed\n' "$name" "$passed" "$failed"
}

note "building (warnings are errors)"
make -s WERROR=1 test-bins asan smserve || exit 1
if command -v clang >/dev/null; then
	for plugin in model.c examples/echo/model.c tests/plugins/faulty.c; do
		clang -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
			-Wformat=2 -Wundef -Werror -fsyntax-only smserve.c "$plugin" || exit 1
	done
fi

run parser      bash tests/parser.sh
run http        env SMSERVE=./build/smserve-faulty bash tests/http.sh
run http-asan   env SMSERVE=./build/asan-faulty bash tests/http.sh
run echo        env SMSERVE=./build/smserve-echo bash tests/echo_diff.sh
run echo-asan   env SMSERVE=./build/asan-echo bash tests/echo_diff.sh
run linear      env SMSERVE=./build/smserve-default bash tests/linear.sh
run linear-asan env SMSERVE=./build/asan-default bash tests/linear.sh
run valgrind    bash tests/valgrind.sh
run image       bash tests/image.sh

note "logs: $log_dir"
note "TOTAL: $total_passed passed, $total_failed failed"
[[ $total_failed -eq 0 ]]
