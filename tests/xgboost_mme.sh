#!/usr/bin/env bash
# test-binary: xgboost
# tests/xgboost_mme.sh - in multi-model mode the XGBoost plug-in answers as
# AWS's XGBoost container does in that mode (Multi Model Server running
# algorithm_mode/handler_service.py), byte for byte: status, Content-Type and
# body of each case in tests/xgboost/golden_mme/manifest.tsv. Those answers
# come from running the handler's own code (tools/make_xgboost_mme_golden.py);
# only MMS's part (a failure out of the handler is a 503 with MMS's error
# document) is written from reading MMS's source, as that tool says.
#
#   SMSERVE=./build/smserve-xgboost bash tests/xgboost_mme.sh   (from the repo root)
#
# Needs bash, curl and cmp. One server (--multi-model) per environment of the
# manifest; each model loaded with POST /models, each case POSTed to
# /models/{model}/invoke with exactly the manifest's headers.
set -u
cd "$(dirname "$0")/.." || exit 1
export LC_ALL=C
SMSERVE=${SMSERVE:-./build/smserve-xgboost}
source tests/lib.sh
G=tests/xgboost/golden_mme
unset SAGEMAKER_BATCH SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT SAGEMAKER_INFERENCE_OUTPUT MAX_CONTENT_LENGTH

# invoke FILE MODEL CT ACCEPT: as post (tests/lib.sh), to the model's route.
invoke() {
	local args=(-s --max-time 60 -o "$TEST_TMP/body" -w '%{http_code} %{content_type}') meta
	if [[ $3 == - ]]; then args+=(-H 'Content-Type:'); else args+=(-H "Content-Type: $3"); fi
	if [[ $4 == - ]]; then args+=(-H 'Accept:'); else args+=(-H "Accept: $4"); fi
	meta=$(curl "${args[@]}" --data-binary "@$1" "$(url "/models/$2/invoke")")
	STATUS=${meta%% *}
	CTYPE=${meta#* }
	[[ -n $CTYPE ]] || CTYPE=-
}

# load MODEL DIR: POST /models; the status.
load() {
	curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
		--data-binary "{\"model_name\": \"$1\", \"url\": \"$PWD/$2\"}" "$(url /models)"
}

# start_group ENV: a multi-model server with ENV ("-" or NAME=VALUE), every
# model of the manifest loaded.
start_group() {
	local env=$1 dir started=0
	[[ $env == - ]] || export "${env?}"
	start_server "mme" --multi-model --workers 1 --no-access-log >/dev/null && started=1
	[[ $env == - ]] || unset "${env%%=*}"
	[[ $started == 1 ]] || return 1
	for dir in $(cut -f2 "$G/manifest.tsv" | sort -u); do
		expect "[$env] POST /models $(basename "$dir")" 200 "$(load "$(basename "$dir")" "$dir")"
	done
}

CURRENT=""
while IFS=$'\t' read -r id dir env ct acc req want want_ct answer; do
	if [[ $env != "$CURRENT" ]]; then
		[[ -n $CURRENT ]] && stop_server "mme [$CURRENT]"
		CURRENT=$env
		start_group "$env" || { not_ok "[$env] server starts"; CURRENT=""; continue; }
	fi
	invoke "$G/$req" "$(basename "$dir")" "$ct" "$acc"
	if [[ $STATUS == "$want" && $CTYPE == "$want_ct" ]] && cmp -s "$G/$answer" "$TEST_TMP/body"; then
		ok "$id [$env] $ct -> $acc: $want"
	else
		not_ok "$id [$env] $ct -> $acc" "expected $want $want_ct [$(head -c 120 "$G/$answer" | tr '\n' '|')]," \
			" got $STATUS $CTYPE [$(head -c 120 "$TEST_TMP/body" | tr '\n' '|')]"
	fi
done <"$G/manifest.tsv"
[[ -n $CURRENT ]] && stop_server "mme [$CURRENT]"
finish
