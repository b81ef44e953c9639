#!/usr/bin/env bash
# fuzz/run.sh [SECONDS] - builds the libFuzzer targets with clang (ASan and
# UBSan) into build/fuzz/ and runs each for SECONDS (default 60):
#
#   fuzz_parser, fuzz_chunked, fuzz_conn   the server's HTTP parser, chunked
#                                          decoder and connection state machine
#   fuzz_dispatch                          the loop's side of the workers:
#                                          dispatch, streamed answers, worker
#                                          failure, requeue, respawn (workers
#                                          are stand-ins in the harness)
#   fuzz_model, fuzz_xgboost               the request readers of model.c and
#                                          the XGBoost plug-in (fuzz_model.c)
#   fuzz_xgboost_load                      the XGBoost model file readers
#   fuzz_recordio, fuzz_npy                lib/recordio.h and lib/npy.h: read,
#                                          write again, read back
#
# Seeds come from fuzz/corpus/ (HTTP requests, chunked bodies, request
# bodies, recordio-protobuf and NPY bodies, fuzz_dispatch's scripts) and
# tests/xgboost/ (models); the HTTP targets read a few control
# bytes first (see the comment at the top of each .c file), so the seeds are
# copied into build/fuzz/corpus-<target> with a control prefix put in front,
# and the source tree stays clean. The corpus directories are kept between
# runs, so later runs start where earlier ones stopped.
#
# Files in fuzz/corpus/regress-<target>/ are inputs that once crashed a
# target, control bytes included; each is replayed before fuzzing.
#
# Prints, per target, the executions run, the coverage (libFuzzer's cov:
# edges and ft: features) and a verdict: "ok", or "FAILED" with what failed
# (a regression input, the fuzzing). Exits 1 if any target crashed, leaked or
# broke an invariant, a regression input included; the inputs are listed
# (build/fuzz/artifacts-<target>/). Exits 2 if a target does not build.
set -u
cd "$(dirname "$0")/.." || exit 1
SECONDS_PER_TARGET=${1:-60}
OUT=build/fuzz
CFLAGS="-std=c11 -Wall -Wextra -Wpedantic -Wshadow -Werror -g -O1 -fno-omit-frame-pointer
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Dmain=smserve_main"
TARGETS=(fuzz_parser fuzz_chunked fuzz_conn fuzz_dispatch fuzz_model fuzz_xgboost fuzz_xgboost_load fuzz_recordio fuzz_npy)
failed=0
declare -A verdict             # target -> what failed, empty when nothing

if ! command -v clang >/dev/null; then
	echo "fuzz/run.sh: clang is needed for libFuzzer" >&2
	exit 2
fi
mkdir -p "$OUT"

# The seeds each target starts from, and the control bytes put before them
# (printf escapes): a split point, and for fuzz_conn "read responses".
seed_files() {
	case $1 in
	fuzz_chunked) echo fuzz/corpus/chunked/* ;;
	fuzz_model | fuzz_xgboost) echo fuzz/corpus/model/* ;;     # control byte included
	fuzz_recordio) echo fuzz/corpus/recordio/* ;;              # flags byte included
	fuzz_npy) echo fuzz/corpus/npy/* ;;
	fuzz_dispatch) echo fuzz/corpus/dispatch/* ;;               # scripts, flags byte included
	fuzz_xgboost_load) find tests/xgboost -name '*.json' -size -16k -o -name '*.ubj' -size -16k \
		-o -name '*.bin' -size -16k | sort ;;
	*) echo fuzz/corpus/requests/* ;;
	esac
}
control_prefix() {
	case $1 in
	fuzz_parser) echo '\x20\x00\x00\x00\x00' ;;       # split at 32, no padding
	fuzz_chunked) echo '\x07\x00\x40' ;;              # split at 7, max_body 1024
	fuzz_conn) echo '\x02\x0f\x3f\xff\xff\x00\x00\x00' ;;  # read replies; 16/64/256-byte writes
	esac
}

# What each target is built from, its longest input and its dictionary.
sources() {
	case $1 in
	fuzz_model) echo fuzz/fuzz_model.c model.c ;;
	fuzz_xgboost) echo fuzz/fuzz_model.c examples/xgboost/model.c ;;
	*) echo "fuzz/$1.c" ;;
	esac
}
max_len() { [[ $1 == fuzz_xgboost_load ]] && echo 16384 || echo 4096; }
dict() {
	case $1 in
	fuzz_model | fuzz_xgboost) echo fuzz/body.dict ;;
	fuzz_xgboost_load) echo fuzz/xgboost.dict ;;
	fuzz_recordio | fuzz_npy) ;;            # binary formats: libFuzzer's compare tracing finds the words
	fuzz_dispatch) ;;                       # a script of ops, not HTTP: requests are generated
	*) echo fuzz/http.dict ;;
	esac
}

# fuzz_xgboost serves a multi-class DART model (tree groups, dropout
# weights) as batch transform does (an answer line per record).
XGB_DIR=$OUT/model-xgboost
mkdir -p "$XGB_DIR" && cp tests/xgboost/dart_multi_softprob.json "$XGB_DIR/xgboost-model"
target_env() { [[ $1 == fuzz_xgboost ]] && echo "FUZZ_MODEL_DIR=$XGB_DIR SAGEMAKER_BATCH=1"; }

prepare_corpus() {
	local t=$1 dir=$OUT/corpus-$1 f prefix
	prefix=$(control_prefix "$t")
	mkdir -p "$dir"
	for f in $(seed_files "$t"); do
		{ printf "$prefix"; cat "$f"; } >"$dir/seed-$(basename "$f")"
	done
}

# replay TARGET: runs the regression inputs once; returns 1 if any fails.
replay() {
	local t=$1 dir=fuzz/corpus/regress-$1 f bad=0
	[[ -d $dir ]] || return 0
	for f in "$dir"/*; do
		[[ -f $f ]] || continue
		# shellcheck disable=SC2046  # target_env gives whole words
		if ! env $(target_env "$t") "$OUT/$t" "$f" >"$OUT/$t.replay.log" 2>&1; then
			echo "  $t: regression input $f crashes:"
			grep -m 3 -E 'ERROR|invariant|SUMMARY' "$OUT/$t.replay.log" | sed 's/^/    /'
			bad=1
		fi
	done
	return $bad
}

# summary TARGET LOG: executions and coverage from libFuzzer's output, and
# the verdict.
summary() {
	local t=$1 log=$2 execs last cov ft
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	last=$(grep -E '^#[0-9]+.*cov: [0-9]+' "$log" | tail -n 1)
	[[ -z $execs ]] && execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
	cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
	printf '%-13s %10s execs   cov: %-5s ft: %-6s corpus: %-11s %s\n' "$t" "${execs:-?}" "${cov:-?}" \
		"${ft:-?}" "$(ls "$OUT/corpus-$t" | wc -l) files" "${verdict[$t]:-ok}"
}

# crashes TARGET: lists what libFuzzer saved, with the first bytes of each.
crashes() {
	local f
	for f in "$OUT/artifacts-$1"/*; do
		[[ -f $f ]] || continue
		echo "  $1 saved $f ($(wc -c <"$f") bytes); reproduce: $OUT/$1 $f"
		od -An -c -N 160 "$f" | sed 's/^/    /'
	done
}

builds=()
for t in "${TARGETS[@]}"; do
	echo "building $OUT/$t"
	# shellcheck disable=SC2086  # CFLAGS and sources are lists
	clang $CFLAGS -o "$OUT/$t" $(sources "$t") -lm &
	builds+=($!)
done
for pid in "${builds[@]}"; do
	wait "$pid" || exit 2
done

for t in "${TARGETS[@]}"; do
	prepare_corpus "$t"
	rm -rf "$OUT/artifacts-$t"
	mkdir -p "$OUT/artifacts-$t"
	if ! replay "$t"; then
		failed=1
		verdict[$t]="FAILED (a regression input)"
	fi
	echo "fuzzing $t for ${SECONDS_PER_TARGET}s (log: $OUT/$t.log)"
	dict_file=$(dict "$t")
	# shellcheck disable=SC2046
	env $(target_env "$t") "$OUT/$t" -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -max_len="$(max_len "$t")" \
		-timeout=10 -rss_limit_mb=2048 ${dict_file:+-dict="$dict_file"} \
		-artifact_prefix="$OUT/artifacts-$t/" "$OUT/corpus-$t" >"$OUT/$t.log" 2>&1
	status=$?
	if [[ $status -ne 0 ]]; then
		failed=1
		verdict[$t]="FAILED ${verdict[$t]:+(a regression input, and fuzzing)}"
		[[ ${verdict[$t]} == "FAILED " ]] && verdict[$t]="FAILED (fuzzing)"
		echo "  $t FAILED (exit $status):"
		grep -m 5 -E 'ERROR|invariant|SUMMARY|runtime error' "$OUT/$t.log" | sed 's/^/    /'
		crashes "$t"
	fi
done

echo
echo "results (${SECONDS_PER_TARGET}s per target):"
for t in "${TARGETS[@]}"; do
	summary "$t" "$OUT/$t.log"
done
if [[ $failed -ne 0 ]]; then
	echo "FAILED: a target crashed or broke an invariant (see above)"
	exit 1
fi
echo "no crashes"
