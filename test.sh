#!/usr/bin/env bash
# test.sh - smserve's test suite.
#
#   bash test.sh              every test script (make test), the benchmark excepted
#   bash test.sh --check      the scripts marked "# test-group: check", plain build only (make check)
#   bash test.sh http linear  only the scripts named (tests/http.sh, tests/linear.sh)
#   bash test.sh --plain ...  skip the sanitizer builds
#
# The scripts are found, not listed: a tests/*.sh with a line
# "# test-binary: NAME" in its first five lines is a test. NAME is the
# plug-in it runs against (faulty, echo, default, xgboost): it runs twice,
# side by side on the 2-core machine, with SMSERVE=./build/smserve-NAME and
# SMSERVE=./build/asan-NAME (AddressSanitizer + UndefinedBehaviorSanitizer).
# NAME "none" runs once with no SMSERVE, two such scripts at a time (the
# fuzzers beside the linters, the slowest two). A line "# test-group: bench"
# keeps a script out unless it is named.
#
# Builds what the chosen scripts need with warnings as errors (and, for the
# whole suite, checks every plug-in with clang too). Each script prints
# "ok"/"not ok" lines and ends with "N passed, N failed"; this prints the
# failures, a line per script and the total, and exits non-zero on any
# failure. A script that skips whole (a "# SKIP" line and "0 passed, 0
# failed", or no count and exit status 0) counts as skipped, not failed.
# Optional tools, and what skips without them: see tests/README.md.
set -u
cd "$(dirname "$0")" || exit 1
total_passed=0
total_failed=0
total_skipped=0
log_dir=$(mktemp -d)
check_only=0 plain_only=0 names=()

note() { printf '%s\n' "$*"; }

for arg in "$@"; do
	case $arg in
	--check) check_only=1 plain_only=1 ;;
	--plain) plain_only=1 ;;
	-h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) note "test.sh: unknown option $arg" >&2; exit 2 ;;
	*) arg=${arg#tests/}; names+=("${arg%.sh}") ;;
	esac
done

# header_field FILE FIELD: the value of "# FIELD: value" in FILE's first 5 lines.
header_field() { head -n 5 "$1" | sed -n "s/^# $2: *\\([^ ]*\\).*/\\1/p" | head -n 1; }

# chosen SCRIPT: whether this run takes SCRIPT.
chosen() {
	local name=$1 group=$2 n
	if [[ ${#names[@]} -gt 0 ]]; then
		for n in "${names[@]}"; do [[ $n == "$name" ]] && return 0; done
		return 1
	fi
	if ((check_only)); then [[ $group == check ]]; else [[ $group != bench ]]; fi
}

plugin_scripts=() none_scripts=() binaries=()
declare -A binary_of found
for f in tests/*.sh; do
	name=$(basename "$f" .sh)
	bin=$(header_field "$f" test-binary)
	[[ -n $bin ]] || continue
	found[$name]=1
	chosen "$name" "$(header_field "$f" test-group)" || continue
	binary_of[$name]=$bin
	if [[ $bin == none ]]; then
		none_scripts+=("$name")
	else
		plugin_scripts+=("$name")
		[[ " ${binaries[*]} " == *" $bin "* ]] || binaries+=("$bin")
	fi
done
for n in "${names[@]}"; do
	[[ -n ${found[$n]:-} ]] || { note "test.sh: no test script tests/$n.sh (with a '# test-binary:' line)" >&2; exit 2; }
done

# report NAME SECONDS: the failures and skips of a finished script, its
# count and how long it ran (a pair: both together).
report() {
	local name=$1 out passed failed rc
	out=$(cat "$log_dir/$name.log")
	rc=$(cat "$log_dir/$name.rc")
	read -r passed failed < <(tail -n 1 <<<"$out" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p')
	if grep -q '^# SKIP' <<<"$out" && [[ ${passed:-0} == 0 && ${failed:-0} == 0 && ($rc == 0 || -n ${passed:-}) ]]; then
		total_skipped=$((total_skipped + 1))
		printf '%-16s skipped: %s\n' "$name" "$(grep -m 1 '^# SKIP' <<<"$out" | sed 's/^# SKIP:* *//')"
		return
	fi
	grep -E '^(not ok|# )' <<<"$out" | sed "s/^/  [$name] /"
	if [[ -z ${passed:-} ]]; then
		note "  [$name] did not finish (exit status $rc): $(tail -n 3 <<<"$out" | tr '\n' ' ')"
		passed=0 failed=1
	elif [[ $rc != 0 && $failed == 0 ]]; then
		note "  [$name] exit status $rc with no failed check"
		failed=1
	fi
	total_passed=$((total_passed + passed))
	total_failed=$((total_failed + failed))
	printf '%-16s %4d passed, %d failed  (%d s)\n' "$name" "$passed" "$failed" "$2"
}

# start NAME BINARY SCRIPT: runs a script in the background, its output to
# the log; sets STARTED to its pid.
start() {
	local name=$1 smserve=$2 script=$3 args=()
	[[ $script == fuzz ]] && args=("${FUZZ_SECONDS:-5}")
	(
		if [[ -n $smserve ]]; then export SMSERVE=$smserve; else unset SMSERVE; fi
		bash "tests/$script.sh" "${args[@]}" >"$log_dir/$name.log" 2>&1
		echo $? >"$log_dir/$name.rc"
	) &
	STARTED=$!
}

# run_together NAME BINARY SCRIPT [NAME BINARY SCRIPT]: one or two scripts at
# once (two: one on each core), then their reports.
run_together() {
	local begin=$SECONDS pids=() names_run=()
	while [[ $# -gt 0 ]]; do
		start "$1" "$2" "$3"
		pids+=("$STARTED") names_run+=("$1")
		shift 3
	done
	wait "${pids[@]}"
	for n in "${names_run[@]}"; do report "$n" $((SECONDS - begin)); done
}

note "building (warnings are errors)"
targets=()
for b in "${binaries[@]}"; do
	targets+=("build/smserve-$b")
	((plain_only)) || targets+=("build/asan-$b")
done
if [[ ${#names[@]} -eq 0 && $check_only -eq 0 ]]; then
	make -s WERROR=1 test-bins asan smserve || exit 1
	if command -v clang >/dev/null; then
		for plugin in model.c examples/echo/model.c examples/xgboost/model.c tests/plugins/faulty.c; do
			clang -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
				-Wformat=2 -Wundef -Werror -fsyntax-only smserve.c "$plugin" || exit 1
		done
	fi
elif [[ ${#targets[@]} -gt 0 ]]; then
	make -s WERROR=1 "${targets[@]}" || exit 1
fi

# run_in_pairs NAME BINARY SCRIPT...: the scripts (triples) two at a time.
run_in_pairs() {
	while [[ $# -gt 3 ]]; do
		run_together "${@:1:6}"
		shift 6
	done
	[[ $# -eq 0 ]] || run_together "$@"
}

# The scripts without a plug-in; the fuzzers and the linters, the slowest,
# together and last.
rest=() last=()
for s in "${none_scripts[@]}"; do
	if [[ $s == fuzz || $s == lint ]]; then last+=("$s" "" "$s"); else rest+=("$s" "" "$s"); fi
done
if ((plain_only)); then
	# Every script once: two at a time, whatever their binary.
	jobs=()
	for s in "${plugin_scripts[@]}"; do jobs+=("$s" "./build/smserve-${binary_of[$s]}" "$s"); done
	run_in_pairs "${jobs[@]}" "${rest[@]}" "${last[@]}"
else
	# A plug-in's script beside itself on the sanitizer build.
	for s in "${plugin_scripts[@]}"; do
		run_together "$s" "./build/smserve-${binary_of[$s]}" "$s" "$s-asan" "./build/asan-${binary_of[$s]}" "$s"
	done
	run_in_pairs "${rest[@]}"
	run_in_pairs "${last[@]}"
fi

note "logs: $log_dir"
note "TOTAL: $total_passed passed, $total_failed failed, $total_skipped skipped  ($SECONDS s)"
[[ $total_failed -eq 0 ]]
