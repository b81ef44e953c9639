#!/usr/bin/env bash
# test-binary: none
# test-group: check
# tests/codecs.sh - builds tests/codecs_test.c (lib/recordio.h and
# lib/npy.h against the vectors in tests/codecs/, made by
# tools/make_codec_vectors.py) with AddressSanitizer and UBSan, and runs it.
# The last line of output is "N passed, N failed", as test.sh expects.
set -u
cd "$(dirname "$0")/.." || exit 1
CC=${CC:-cc}
mkdir -p build
if ! out=$($CC -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wundef -Wcast-align -Wpointer-arith -Werror -g -O1 \
	-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
	-o build/codecs_test tests/codecs_test.c 2>&1); then
	printf '%s\n' "$out"
	echo "not ok - codecs_test.c does not compile"
	echo "0 passed, 1 failed"
	exit 1
fi
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
	./build/codecs_test
status=$?
# A sanitizer abort ends the run before the summary line: add one.
if [[ $status -gt 1 ]]; then
	echo "not ok - codecs_test died with status $status (sanitizer report above)"
	echo "0 passed, 1 failed"
fi
exit "$status"
