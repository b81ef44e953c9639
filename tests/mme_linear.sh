#!/usr/bin/env bash
# test-binary: default
# tests/mme_linear.sh - multi-model endpoints with the default plug-in
# (model.c): each name answers with its own model's predictions.
#
#   SMSERVE=./build/smserve-default bash tests/mme_linear.sh   (or: bash test.sh mme_linear)
#
# 1. Two different models (models/iris, multinomial; a regression written
#    here) loaded side by side: each name's answers byte for byte those of
#    the same model served in single-model mode (and iris's labels those of
#    scikit-learn), also when 40 requests for the two, sent at once,
#    interleave over the workers.
# 2. A name unloaded and loaded again from another directory answers with
#    the new model; 60 regressions that differ only in their intercept, half
#    of them unloaded and replaced by new ones (which may reuse the freed
#    memory): every name answers with its own intercept.
# 3. Artifacts that do not load (an unknown kind, a file cut short, no
#    linear-model.txt, no directory): an error status with the model
#    loader's own message, naming the file; the name is not loaded.
# 4. /invocations is a 404 in multi-model mode.
# tests/mme.sh covers the routes, failures, paging, budget and memory with
# the faulty plug-in.
set -u
cd "$(dirname "$0")/.." || exit 1
export LC_ALL=C
SMSERVE=${SMSERVE:-./build/smserve-default}
source tests/lib.sh
PY=/usr/bin/python3
T=$TEST_TMP
unset SAGEMAKER_MULTI_MODEL SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT SAGEMAKER_INFERENCE_OUTPUT
IRIS=$PWD/models/iris
VECTORS=tests/vectors/iris_expected.csv

# answer PATH FILE [ACCEPT]: POSTs FILE as text/csv to PATH; sets STATUS and
# BODY (also in $T/answer).
answer() {
	STATUS=$(curl -s -m 60 -o "$T/answer" -w '%{http_code}' -H 'Content-Type: text/csv' \
		-H "Accept: ${3:-application/json}" --data-binary "@$2" "$(url "$1")")
	BODY=$(cat "$T/answer")
}

# load NAME DIR: POST /models; sets STATUS, CTYPE and BODY.
load() {
	local meta
	meta=$(curl -s -m 60 -o "$T/load" -w '%{http_code} %{content_type}' -H 'Content-Type: application/json' \
		-H 'Accept: application/json' --data-binary "{\"model_name\": \"$1\", \"url\": \"$2\"}" "$(url /models)")
	STATUS=${meta%% *}
	CTYPE=${meta#* }
	BODY=$(cat "$T/load")
}
unload() { STATUS=$(curl -s -m 60 -o /dev/null -w '%{http_code}' -X DELETE "$(url "/models/$1")"); }

# regression DIR INTERCEPT: a 4-feature regression, weights 1 2 3 4.
regression() {
	mkdir -p "$1"
	printf 'smserve-linear-model 1\nkind regression\nfeatures 4\nintercept %s\nweights 1 2 3 4\nend\n' "$2" \
		>"$1/linear-model.txt"
}

sed 1d "$VECTORS" | cut -d, -f1-4 >"$T/iris.csv"
sed 1d "$VECTORS" | cut -d, -f5 >"$T/iris_labels"
printf '1,1,1,1\n2,0,0,0\n0,0,0,0.5\n' >"$T/reg.csv"
regression "$T/reg" 100

# ---- the answers of single-model mode, for comparison ----------------------

start_server single-iris --workers 1 --model-dir "$IRIS" || { finish; exit 1; }
answer /invocations "$T/iris.csv" && cp "$T/answer" "$T/ref_iris.json"
answer /invocations "$T/iris.csv" text/csv && cp "$T/answer" "$T/ref_iris.csv"
stop_server single-iris
start_server single-reg --workers 1 --model-dir "$T/reg" || { finish; exit 1; }
answer /invocations "$T/reg.csv" && cp "$T/answer" "$T/ref_reg.json"
stop_server single-reg
expect "single-model mode: the regression's answers (the reference)" \
	'{"predictions":[{"score":110.0},{"score":102.0},{"score":102.0}]}' "$(cat "$T/ref_reg.json")"
expect "single-model mode: iris's labels are scikit-learn's (the reference)" \
	"$(cat "$T/iris_labels")" "$(cat "$T/ref_iris.csv")"

# ---- two different models side by side -------------------------------------

start_server mme --multi-model --workers 2 || { finish; exit 1; }
answer /invocations "$T/reg.csv"
expect "/invocations in multi-model mode: 404" 404 "$STATUS"
load iris "$IRIS"
expect "POST /models iris: 200" 200 "$STATUS"
load reg "$T/reg"
expect "POST /models reg: 200" 200 "$STATUS"
answer /models/iris/invoke "$T/iris.csv" text/csv
expect "iris: the 150 labels of scikit-learn" "200 $(cat "$T/iris_labels")" "$STATUS $BODY"
answer /models/iris/invoke "$T/iris.csv"
expect "iris: JSON answers byte for byte as in single-model mode" "200 $(cat "$T/ref_iris.json")" "$STATUS $BODY"
answer /models/reg/invoke "$T/reg.csv"
expect "reg: its own answers, as in single-model mode" "200 $(cat "$T/ref_reg.json")" "$STATUS $BODY"

# 40 requests at once, alternating between the two models, so that the
# workers (most likely both) switch between them: each answer its model's.
for i in $(seq 40); do
	if ((i % 2)); then m=iris f=$T/iris.csv; else m=reg f=$T/reg.csv; fi
	curl -s -m 60 -o "$T/mix$i" -H 'Content-Type: text/csv' --data-binary "@$f" "$(url "/models/$m/invoke")" &
done
wait_clients
bad=0
for i in $(seq 40); do
	if ((i % 2)); then cmp -s "$T/mix$i" "$T/ref_iris.json" || bad=$((bad + 1)); else
		cmp -s "$T/mix$i" "$T/ref_reg.json" || bad=$((bad + 1)); fi
done
expect "40 interleaved requests at once: each answered by its own model" 0 "$bad"

# ---- a name reused, extents reused -----------------------------------------

unload iris
expect "DELETE iris: 200" 200 "$STATUS"
answer /models/iris/invoke "$T/reg.csv"
expect "iris after DELETE: 404" 404 "$STATUS"
load iris "$T/reg"
expect "iris loaded again, from the regression's directory" 200 "$STATUS"
answer /models/iris/invoke "$T/reg.csv"
expect "... answers as the regression now" "200 $(cat "$T/ref_reg.json")" "$STATUS $BODY"
unload iris

# check_intercepts FIRST...: each name rN answers 0,0,0,0 with its intercept
# N, 4 requests at once (spread over the workers); prints the wrong ones.
check_intercepts() {
	local n k
	printf '0,0,0,0\n' >"$T/zero.csv"
	for n in "$@"; do
		for k in 1 2 3 4; do
			curl -s -m 60 -o "$T/r$n.$k" -H 'Content-Type: text/csv' --data-binary "@$T/zero.csv" \
				"$(url "/models/r$n/invoke")" &
		done
		wait_clients
		for k in 1 2 3 4; do
			[[ $(cat "$T/r$n.$k") == "{\"predictions\":[{\"score\":$n.0}]}" ]] || printf 'r%s:%s ' "$n" "$(cat "$T/r$n.$k")"
		done
	done
}
loaded=0
for n in $(seq 1 60); do
	regression "$T/r$n" "$n"
	load "r$n" "$T/r$n"
	[[ $STATUS == 200 ]] && loaded=$((loaded + 1))
done
expect "60 regressions (intercepts 1 to 60) load" 60 "$loaded"
expect "... each name answers with its own intercept (4 requests at once each)" "" "$(check_intercepts $(seq 1 60))"
for n in $(seq 2 2 60); do unload "r$n"; done
for n in $(seq 1001 1030); do
	regression "$T/r$n" "$n"
	load "r$n" "$T/r$n"
done
expect "30 unloaded, 30 new loaded: every name its own intercept (4 requests at once each)" "" \
	"$(check_intercepts $(seq 1 2 60) $(seq 1001 1030))"
for n in $(seq 1 2 60) $(seq 1001 1030); do unload "r$n"; done

# ---- artifacts that do not load --------------------------------------------

# load_fails NAME DIR REGEX: the load of DIR is a 4xx/5xx JSON error matching
# REGEX, and the name is not loaded afterwards.
load_fails() {
	load bad "$2"
	if [[ $STATUS =~ ^[45][0-9][0-9]$ && $CTYPE == application/json* && $BODY =~ ^\{\"error\":\ \".*\"\}$ && $BODY =~ $3 ]]; then
		ok "$1: an error naming the file and reason ($STATUS)"
	else
		not_ok "$1: an error naming the file and reason" "expected 4xx/5xx /$3/, got $STATUS [${BODY:0:300}]"
	fi
	expect "$1: the name is not loaded" 404 \
		"$(curl -s -m 60 -o /dev/null -w '%{http_code}' "$(url /models/bad)")"
}
mkdir -p "$T/kind" "$T/cut" "$T/empty"
printf 'smserve-linear-model 1\nkind logistic\n' >"$T/kind/linear-model.txt"
head -c 200 "$IRIS/linear-model.txt" >"$T/cut/linear-model.txt"
load_fails "an unknown kind" "$T/kind" 'linear-model.txt:2: expected regression, binary, multinomial or ovr'
load_fails "a file cut short" "$T/cut" 'linear-model.txt:[0-9]+: expected'
load_fails "no linear-model.txt" "$T/empty" 'linear-model.txt'
load_fails "no directory" "$T/no-such-dir" 'no-such-dir'
load bad "$T/reg"
expect "the name of the failed loads loads a good model" 200 "$STATUS"
answer /models/reg/invoke "$T/reg.csv"
expect "reg still answers after the failures" "200 $(cat "$T/ref_reg.json")" "$STATUS $BODY"
stop_server mme
finish
