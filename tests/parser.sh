#!/usr/bin/env bash
# test-binary: none
# test-group: check
# tests/parser.sh - builds tests/parser_test.c (smserve.c's parser and
# chunked decoder, included whole) with AddressSanitizer and UBSan, and runs
# it. The last line of output is "N passed, N failed", as test.sh expects.
set -u
cd "$(dirname "$0")/.." || exit 1
CC=${CC:-cc}
mkdir -p build
# -Dmain=smserve_main: the test brings its own main (see parser_test.c).
if ! out=$($CC -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Werror -g -O1 \
	-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
	-Dmain=smserve_main -o build/parser_test tests/parser_test.c -lm 2>&1); then
	printf '%s\n' "$out"
	echo "not ok - parser_test.c does not compile"
	echo "0 passed, 1 failed"
	exit 1
fi
# Leak checking stays on: every vector's buffers are freed.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
	./build/parser_test
status=$?
# A sanitizer abort ends the run before the summary line: add one.
if [[ $status -gt 1 ]]; then
	echo "not ok - parser_test died with status $status (sanitizer report above)"
	echo "0 passed, 1 failed"
fi
exit "$status"
