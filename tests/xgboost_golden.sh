#!/usr/bin/env bash
# test-binary: xgboost
# tests/xgboost_golden.sh - the XGBoost plug-in answers as AWS's own XGBoost
# container does, byte for byte, on the golden answers in tests/xgboost/golden/
# (made by tools/make_xgboost_golden.py from the container's serving code).
#
#   SMSERVE=./build/smserve-xgboost bash tests/xgboost_golden.sh   (from the repo root)
#   ONLY=REGEX ...        only the cases whose id matches REGEX
#   STRICT_ERRORS=1 ...   also compare the Content-Type and body of 4xx answers
#
# Needs bash, curl and cmp; not Python, not XGBoost. For each group of cases in
# manifest.tsv (a model directory and an environment) it starts $SMSERVE with
# --model-dir and that environment, POSTs each request with exactly the
# manifest's headers (none where it says "-") and checks the answer:
#   AWS 200          status, Content-Type and body, byte for byte
#   AWS 204          status, and an empty body
#   AWS 4xx          status (the error text is AWS's own words: compared only
#                    with STRICT_ERRORS=1)
#   AWS 500          AWS fails by accident (issue 19): smserve must not answer 5xx
# except the cases tests/xgboost/golden/differences.tsv lists (where smserve
# differs on purpose, or not yet): those must get the status it documents.
# At the end it prints the failures grouped by kind, mode, content-type,
# accept and model, with one example each, so the next engineer sees what to fix.
set -u
cd "$(dirname "$0")/.." || exit 1
export LC_ALL=C
SMSERVE=${SMSERVE:-./build/smserve-xgboost}
source tests/lib.sh

G=tests/xgboost/golden
ONLY=${ONLY:-}
STRICT_ERRORS=${STRICT_ERRORS:-0}
# The variables a manifest environment may set; none leaks in from outside.
ENV_NAMES=(SAGEMAKER_BATCH SAGEMAKER_INFERENCE_OUTPUT SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT MAX_CONTENT_LENGTH
	SAGEMAKER_MAX_PAYLOAD_IN_MB SAGEMAKER_INFERENCE_ENSEMBLE)
unset "${ENV_NAMES[@]}"
# recordio-protobuf answers with SAGEMAKER_INFERENCE_OUTPUT: the container's
# frame i holds the Records of records 0 to i (its buffer is never emptied).
# smserve writes each record once by default (docs/xgboost.md); this setting
# gives the container's bytes, so that the golden answers are compared byte
# for byte. tests/xgboost.sh checks the default against the same files.
export SMSERVE_XGBOOST_RECORDIO=cumulative
BODY_KEEP=1   # post (tests/lib.sh) keeps the whole body in $TEST_TMP/body; BODY is unused

declare -A FAIL_BY=() EXAMPLE=()
DIFF_REGEX=() DIFF_STATUS=() DIFF_WHAT=()
while IFS=$'\t' read -r regex status what _; do
	[[ $regex == \#* || -z $regex ]] && continue
	DIFF_REGEX+=("$regex") DIFF_STATUS+=("$status") DIFF_WHAT+=("$what")
done <"$G/differences.tsv"
SERVER_UP=0
GROUP_FAILED_START=""

# ---- helpers ---------------------------------------------------------------

# shown FILE: its first 160 bytes on one line, newlines and controls visible.
shown() {
	head -c 160 "$1" | sed -z 's/\\/\\\\/g; s/\n/\\n/g; s/\r/\\r/g; s/\t/\\t/g' | cat -v
	[[ $(stat -c %s "$1") -gt 160 ]] && printf '...'
}

# mode_of ENV: a short name for the manifest's environment column.
mode_of() {
	local env=$1 batch=""
	[[ $env == *SAGEMAKER_BATCH=true* ]] && batch="batch"
	case $env in
	-) echo realtime ;;
	*SAGEMAKER_INFERENCE_OUTPUT=*) echo "inference-output${batch:+ batch}" ;;
	*SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT=*) echo default-accept ;;
	*MAX_CONTENT_LENGTH=*) echo max-content-length ;;
	*) echo "${batch:-$env}" ;;
	esac
}

# failed ID KIND MODE CT ACCEPT MODEL DETAIL: one not-ok, counted under each
# dimension; the first case of each (kind, dimension value) is its example.
failed() {
	local id=$1 kind=$2 detail=$7 key
	not_ok "$id" "$detail"
	for key in "kind: $kind" "mode: $3 / $kind" "content-type: $4 / $kind" "accept: $5 / $kind" "model: $6"; do
		FAIL_BY[$key]=$((${FAIL_BY[$key]:-0} + 1))
		[[ -n ${EXAMPLE[$key]:-} ]] || EXAMPLE[$key]="$id: $detail"
	done
}

# start_group MODEL-DIR ENV: starts $SMSERVE on the model with the environment.
start_group() {
	local dir=$1 env=$2 pair pairs name
	if [[ $env != - ]]; then
		IFS='|' read -r -a pairs <<<"$env"
		for pair in "${pairs[@]}"; do export "${pair%%=*}=${pair#*=}"; done
	fi
	name="golden-$(basename "$dir")"
	if start_server "$name" --model-dir "$G/$dir" --no-access-log >/dev/null; then
		SERVER_UP=1
		GROUP_FAILED_START=""
	else
		SERVER_UP=0
		GROUP_FAILED_START=$(tail -n 2 "$SERVER_LOG" | tr '\n' ' ' | head -c 200)
	fi
	unset "${ENV_NAMES[@]}"
}

stop_group() {
	[[ $SERVER_UP == 1 ]] && stop_server "golden-$1 [$2]"
	SERVER_UP=0
}

# check_case ID MODEL-DIR ENV CT ACCEPT REQUEST STATUS ANSWER-CT ANSWER
check_case() {
	local id=$1 dir=$2 env=$3 ct=$4 acc=$5 req=$6 want=$7 want_ct=$8 answer=$9
	local mode model offset
	mode=$(mode_of "$env")
	model=$(basename "$dir")
	if [[ -n $GROUP_FAILED_START ]]; then
		failed "$id" "server does not start" "$mode" "$ct" "$acc" "$model" "$GROUP_FAILED_START"
		return
	fi
	post "$G/$req" "$ct" "$acc"
	[[ -n $CTYPE ]] || CTYPE=-
	local d
	for d in "${!DIFF_REGEX[@]}"; do
		[[ $id =~ ${DIFF_REGEX[$d]} ]] || continue
		if [[ $STATUS == "${DIFF_STATUS[$d]}" ]]; then
			ok "$id (documented difference: smserve ${DIFF_STATUS[$d]}, AWS $want)"
		else
			failed "$id" "documented difference: ${DIFF_STATUS[$d]} -> $STATUS" "$mode" "$ct" "$acc" "$model" \
				"status $STATUS, differences.tsv says ${DIFF_STATUS[$d]} (${DIFF_WHAT[$d]:0:80}); got [$(shown "$TEST_TMP/body")]"
		fi
		return
	done
	if [[ $want == 500 ]]; then
		if [[ $STATUS == 5* || $STATUS == 000 ]]; then
			failed "$id" "AWS 500 (accident), smserve $STATUS" "$mode" "$ct" "$acc" "$model" "status $STATUS"
		else
			ok "$id (AWS answers 500 by accident; smserve $STATUS)"
		fi
		return
	fi
	if [[ $STATUS != "$want" ]]; then
		failed "$id" "status $want -> $STATUS" "$mode" "$ct" "$acc" "$model" \
			"status $STATUS, expected $want; got [$(shown "$TEST_TMP/body")]"
		return
	fi
	if [[ $want == 204 ]]; then
		if [[ -s $TEST_TMP/body ]]; then
			failed "$id" "204 with a body" "$mode" "$ct" "$acc" "$model" "[$(shown "$TEST_TMP/body")]"
		else
			ok "$id"
		fi
		return
	fi
	if [[ $want != 2* && $STRICT_ERRORS != 1 ]]; then
		ok "$id"
		return
	fi
	local ct_ok=1 body_ok=1
	[[ $CTYPE == "$want_ct" ]] || ct_ok=0
	cmp -s "$G/$answer" "$TEST_TMP/body" || body_ok=0
	if [[ $body_ok == 0 ]]; then
		offset=$(cmp "$G/$answer" "$TEST_TMP/body" 2>&1 | grep -Eo '(byte|char) [0-9]+' | sed 's/char/byte/' | head -n 1)
		failed "$id" "body$([[ $ct_ok == 0 ]] && echo " and content-type")" "$mode" "$ct" "$acc" "$model" \
			"bodies differ at ${offset:-the end of one}: expected [$(shown "$G/$answer")], got [$(shown "$TEST_TMP/body")]$(
				[[ $ct_ok == 0 ]] && echo "; Content-Type [$CTYPE], expected [$want_ct]")"
		return
	fi
	if [[ $ct_ok == 0 ]]; then
		failed "$id" "content-type only" "$mode" "$ct" "$acc" "$model" "Content-Type [$CTYPE], expected [$want_ct]"
		return
	fi
	ok "$id"
}

# ---- the cases --------------------------------------------------------------

[[ -s $G/manifest.tsv ]] || { not_ok "golden manifest" "$G/manifest.tsv is missing"; finish; exit; }
current=""
current_dir=""
current_env=""
while IFS=$'\t' read -r id dir env ct acc req status act answer; do
	[[ $id == \#* || -z $id ]] && continue
	[[ -z $ONLY || $id =~ $ONLY ]] || continue
	if [[ "$dir	$env" != "$current" ]]; then
		[[ -n $current ]] && stop_group "$current_dir" "$current_env"
		current="$dir	$env"
		current_dir=$dir
		current_env=$env
		start_group "$dir" "$env"
	fi
	check_case "$id" "$dir" "$env" "$ct" "$acc" "$req" "$status" "$act" "$answer"
done <"$G/manifest.tsv"
[[ -n $current ]] && stop_group "$current_dir" "$current_env"

# ---- what differs, grouped ----------------------------------------------------

if [[ $FAILED -gt 0 ]]; then
	echo "# ---- failures grouped (count, group; the first case of a kind or mode as an example) ----"
	for dim in kind mode content-type accept model; do
		echo "# by $dim:"
		for key in "${!FAIL_BY[@]}"; do
			[[ $key == "$dim: "* ]] && printf '%s\t%s\n' "${FAIL_BY[$key]}" "$key"
		done | sort -t $'\t' -k1,1nr -k2 | while IFS=$'\t' read -r n key; do
			printf '#   %5d  %s\n' "$n" "${key#"$dim: "}"
			[[ $dim == kind || $dim == mode ]] && printf '#          e.g. %s\n' "${EXAMPLE[$key]:0:400}"
		done
	done
fi
finish
