#!/usr/bin/env bash
# test-binary: none
# tests/numtext.sh - lib/numtext.h's shortest round-trip number text,
# through tests/numtext_check.c: against printf("%.17g") and strtod round
# trips, shortness and nearness on random bit patterns and edge values
# (built with AddressSanitizer and UBSan), its printf path forced, and
# Python's repr byte for byte on tests/vectors/numtext_repr.txt and, when
# python3 is at hand, a fresh random stream; its table against
# tools/make_numtext_corpus.py's.
#
#   bash tests/numtext.sh            the suite's run (about 2.5 million
#                                    random values; some 20 s on 2 cores)
#   NUMTEXT_COUNT=100000000 bash tests/numtext.sh
#                                    the long run: 10^8 random doubles (each
#                                    both signs) and 10^8 float32 patterns,
#                                    built -O2 without sanitizers (minutes)
#
# One line per step, ok or not ok, then "N passed, N failed" as test.sh
# expects.
set -u
cd "$(dirname "$0")/.." || exit 1
CC=${CC:-cc}
COUNT=${NUMTEXT_COUNT:-}
SEED=${NUMTEXT_SEED:-$((RANDOM * 32768 + RANDOM))} # a new sample each run, named on failure
PYTHON=$(command -v /usr/bin/python3 || command -v python3 || true)
WARN=(-std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes
	-Wformat=2 -Wundef -Wcast-align -Wpointer-arith -Werror)
# shellcheck disable=SC2054 # one flag with commas
SAN=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
passed=0 failed=0
mkdir -p build

ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $1"; failed=$((failed + 1)); }

# build NAME FLAGS...: build/NAME from tests/numtext_check.c
build() {
	local name=$1 out
	shift
	if out=$($CC "${WARN[@]}" "$@" -o "build/$name" tests/numtext_check.c -lm 2>&1); then
		return 0
	fi
	printf '%s\n' "$out"
	not_ok "$name does not compile"
	return 1
}

# step WHAT BINARY ARGS...: runs one check, its summary line in the verdict
step() {
	local what=$1 out status
	shift
	out=$(ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
		"$@" 2>&1)
	status=$?
	if [[ $status -eq 0 ]]; then
		ok "$what: ${out##*$'\n'}"
	else
		printf '%s\n' "$out" | tail -25
		not_ok "$what (exit $status; $*)"
	fi
}

if [[ -n $COUNT ]]; then # the long run only
	build numtext_check_fast -O2 -g &&
		step "$COUNT random doubles and floats, seed $SEED" ./build/numtext_check_fast random "$COUNT" "$SEED"
	echo "$passed passed, $failed failed"
	[[ $failed -eq 0 ]]
	exit
fi

if build numtext_check -O1 -g "${SAN[@]}"; then
	step "random doubles (both signs) and floats, seed $SEED" ./build/numtext_check random 800000 "$SEED"
	step "edge values" ./build/numtext_check edges
	step "Python's repr, tests/vectors/numtext_repr.txt" ./build/numtext_check python tests/vectors/numtext_repr.txt
fi
if build numtext_check_printf -O2 -DSMLIB_NUMTEXT_PRINTF_ONLY=1; then
	step "the printf path for every value: random, seed $SEED" ./build/numtext_check_printf random 10000 "$SEED"
	step "the printf path for every value: edges" ./build/numtext_check_printf edges 100
fi
if [[ -n $PYTHON ]]; then
	"$PYTHON" tools/make_numtext_corpus.py stream 200000 "$SEED" >build/numtext_stream.txt
	if [[ -x build/numtext_check ]]; then
		step "Python's repr, 200000 random doubles, seed $SEED" ./build/numtext_check python build/numtext_stream.txt
	fi
	if diff <("$PYTHON" tools/make_numtext_corpus.py table) \
		<(sed -n '/^static SMLIB_UNUSED const uint64_t SMLIB_POW10_128\[/,/^};/p' lib/numtext.h) >/dev/null; then
		ok "the powers of ten in lib/numtext.h are tools/make_numtext_corpus.py's"
	else
		not_ok "the powers of ten in lib/numtext.h differ from tools/make_numtext_corpus.py table"
	fi
else
	echo "# python3 not found: the random Python comparison and the table check are skipped"
fi
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
