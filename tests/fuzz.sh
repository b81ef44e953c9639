#!/usr/bin/env bash
# test-binary: none
# tests/fuzz.sh [SECONDS] - runs the libFuzzer targets (fuzz/run.sh) for
# SECONDS each (test.sh passes FUZZ_SECONDS, default 5) and reports one
# check per target, read from run.sh's verdict line: its regression inputs
# (fuzz/corpus/regress-*) replayed without a crash, then no crash, leak or
# broken invariant while fuzzing; and one check on run.sh's exit status, so
# a failure the lines do not show still fails. Skipped without clang's
# libFuzzer.
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
status=$?
for t in fuzz_parser fuzz_chunked fuzz_conn fuzz_dispatch fuzz_model fuzz_xgboost fuzz_xgboost_load fuzz_recordio fuzz_npy; do
	line=$(grep -E "^$t +[0-9?]+ execs" <<<"$out")
	echo "# ${line:-$t: no result}"
	if [[ $line =~ \ ok$ ]]; then
		ok "$t: regression inputs replayed, then no crash, leak or broken invariant"
	else
		not_ok "$t" "${line:-no result line}; $(grep -E -A3 "^  $t( FAILED|: regression)" <<<"$out" | head -4 | tr '\n' ' ')"
	fi
done
expect "fuzz/run.sh exit status" 0 "$status"
[[ $status -eq 0 ]] || tail -n 5 <<<"$out" | sed 's/^/# /'
finish
