#!/usr/bin/env bash
# tests/fuzz.sh [SECONDS] - runs the libFuzzer targets (fuzz/run.sh) for
# SECONDS each and reports one check per target: no crash, leak or broken
# invariant, and the regression inputs in fuzz/corpus/regress-* replayed.
set -u
cd "$(dirname "$0")/.." || exit 1
source tests/lib.sh
if ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { (void)d; (void)n; return 0; }' |
	clang -x c -fsanitize=fuzzer -o "$TEST_TMP/probe" - 2>/dev/null; then
	echo "# SKIP: clang with libFuzzer not installed"
	finish
	exit
fi
out=$(bash fuzz/run.sh "${1:-10}" 2>&1)
for t in fuzz_parser fuzz_chunked fuzz_conn fuzz_model fuzz_xgboost fuzz_xgboost_load; do
	line=$(grep -E "^$t +[0-9]+ execs" <<<"$out")
	echo "# ${line:-$t: no result}"
	if [[ -n $line ]] && ! grep -q "$t FAILED" <<<"$out"; then
		ok "$t: no crash, leak or broken invariant"
	else
		not_ok "$t" "$(grep -A3 "$t FAILED" <<<"$out" | head -4 | tr '\n' ' ')"
	fi
done
finish
