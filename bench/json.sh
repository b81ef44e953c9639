#!/usr/bin/env bash
# bench/json.sh - the default model's JSON answer against its CSV answer,
# model alone (no HTTP): bench/model_speed.c answers the 1 MB CSV batch of
# bench/run.sh (iris-like records, the iris model of 3 classes) with
# Accept: text/csv (one label a line) and with Accept: application/json
# ({"score":[p0,p1,p2],"predicted_label":k} a record, 3 numbers written a
# record), alternately, ROUNDS runs of 50 requests each, the fastest run of
# each kept. Prints both, the ratio (JSON speed / CSV speed; issue 20's goal
# is 0.5), and lib/numtext.h's nanoseconds per number beside
# snprintf("%.17g")'s.
#
#   bash bench/json.sh [ROUNDS]       (default 7)
#
# Built as `make` builds the model (gcc -O2, glibc). Needs python3 for the
# batch. Writes bench/results/json.md.
set -u
cd "$(dirname "$0")/.." || exit 1
ROUNDS=${1:-7}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

/usr/bin/python3 bench/iris_batch.py "$work/batch.csv"
gcc -std=c11 -O2 -o "$work/speed" bench/model_speed.c model.c -lm || exit 1

# fastest ACCEPT: the best ms per MB of ROUNDS runs, interleaved by the caller
best_csv='' best_json='' bytes_csv='' bytes_json=''
for ((i = 0; i < ROUNDS; i++)); do
	for accept in text/csv application/json; do
		line=$("$work/speed" models/iris "$work/batch.csv" text/csv "$accept" 50) || exit 1
		ms=${line%% *}
		bytes=${line##*(} bytes=${bytes%% answer bytes*}
		if [[ $accept == text/csv ]]; then
			bytes_csv=$bytes
			[[ -n $best_csv ]] && awk -v a="$ms" -v b="$best_csv" 'BEGIN {exit !(a >= b)}' || best_csv=$ms
		else
			bytes_json=$bytes
			[[ -n $best_json ]] && awk -v a="$ms" -v b="$best_json" 'BEGIN {exit !(a >= b)}' || best_json=$ms
		fi
	done
done
ratio=$(awk -v c="$best_csv" -v j="$best_json" 'BEGIN {printf "%.2f", c / j}')
numbers=$("$work/speed" --numbers)
printf 'CSV answer   %s ms per MB of batch (%s answer bytes)\n' "$best_csv" "$bytes_csv"
printf 'JSON answer  %s ms per MB of batch (%s answer bytes)\n' "$best_json" "$bytes_json"
printf 'JSON at %sx the speed of CSV\n' "$ratio"
printf '%s\n' "$numbers"
mkdir -p bench/results
{
	echo "# The default model's JSON answer against its CSV answer, model alone"
	echo
	echo "$(date -u +%Y-%m-%d), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), gcc -O2; the 1 MB CSV batch"
	echo "of bench/run.sh answered 50 times a run (bench/model_speed.c), the two answers alternately,"
	echo "fastest of $ROUNDS runs each. Command: \`bash bench/json.sh\`."
	echo
	echo "| answer | ms per MB of batch | answer bytes |"
	echo "|---|---|---|"
	echo "| text/csv (labels) | $best_csv | $bytes_csv |"
	echo "| application/json (3 scores and the label a record) | $best_json | $bytes_json |"
	echo
	echo "JSON at **${ratio}x** the speed of CSV."
	echo
	echo "Number text (\`model_speed --numbers\`, fastest of 5 passes over 1,000,000 doubles):"
	echo
	printf -- '- %s\n' "${numbers//$'\n'/$'\n'- }"
} >bench/results/json.md
