#!/usr/bin/env bash
# bench/json.sh - the default model's JSON answer against its CSV answer,
# model alone (no HTTP): bench/model_speed.c answers the 1 MB CSV batch of
# bench/run.sh (iris-like records, the iris model of 3 classes) with
# Accept: text/csv (one label a line) and with Accept: application/json
# ({"score":[p0,p1,p2],"predicted_label":k} a record, 3 numbers written a
# record), alternately, ROUNDS runs of 50 requests each, the fastest run of
# each kept. Prints both, the ratio (JSON speed / CSV speed; issue 20's goal
# is 0.5), the same JSON answer from a build whose number text costs
# nothing (SMLIB_NUMTEXT_FREE: each number the same 18 bytes), which bounds
# what any formatter could reach, and lib/numtext.h's nanoseconds per number
# beside snprintf("%.17g")'s.
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
gcc -std=c11 -O2 -DSMLIB_NUMTEXT_FREE=1 -o "$work/speed_free" bench/model_speed.c model.c -lm || exit 1

# Three runs a round, taking turns: the CSV answer, the JSON answer, and the
# JSON answer with free number text. best[i] is run i's fastest ms per MB.
binaries=(speed speed speed_free) accepts=(text/csv application/json application/json)
best=('' '' '') bytes=('' '' '')
for ((round = 0; round < ROUNDS; round++)); do
	for i in 0 1 2; do
		line=$("$work/${binaries[i]}" models/iris "$work/batch.csv" text/csv "${accepts[i]}" 50) || exit 1
		ms=${line%% *}
		bytes[i]=${line##*(} bytes[i]=${bytes[i]%% answer bytes*}
		[[ -n ${best[i]} ]] && awk -v a="$ms" -v b="${best[i]}" 'BEGIN {exit !(a >= b)}' || best[i]=$ms
	done
done
best_csv=${best[0]} best_json=${best[1]} best_free=${best[2]}
ratio=$(awk -v c="$best_csv" -v j="$best_json" 'BEGIN {printf "%.2f", c / j}')
ratio_free=$(awk -v c="$best_csv" -v j="$best_free" 'BEGIN {printf "%.2f", c / j}')
numbers=$("$work/speed" --numbers)
printf 'CSV answer   %s ms per MB of batch (%s answer bytes)\n' "$best_csv" "${bytes[0]}"
printf 'JSON answer  %s ms per MB of batch (%s answer bytes)\n' "$best_json" "${bytes[1]}"
printf 'JSON at %sx the speed of CSV\n' "$ratio"
printf 'JSON, number text free  %s ms per MB (%s answer bytes): %sx the speed of CSV, the most a formatter could reach\n' \
	"$best_free" "${bytes[2]}" "$ratio_free"
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
	echo "| text/csv (labels) | $best_csv | ${bytes[0]} |"
	echo "| application/json (3 scores and the label a record) | $best_json | ${bytes[1]} |"
	echo "| the same, number text free (each number the same 18 bytes) | $best_free | ${bytes[2]} |"
	echo
	echo "JSON at **${ratio}x** the speed of CSV; with number text that cost nothing, ${ratio_free}x."
	echo
	echo "Number text (\`model_speed --numbers\`, fastest of 5 passes over 1,000,000 doubles):"
	echo
	printf -- '- %s\n' "${numbers//$'\n'/$'\n'- }"
} >bench/results/json.md
