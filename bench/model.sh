#!/usr/bin/env bash
# bench/model.sh - the default model's own speed on one core, with no HTTP:
# bench/model_speed.c answers the 1 MB CSV batch of bench/run.sh (iris-like
# records, CSV labels out) 200 times in one process, built three ways:
#
#   gcc -O2 (glibc)     what `make` builds
#   musl -O2 (static)   what `make static` builds and the image ships
#   musl -Os (static)   what `make static STATIC_OPT=-Os` builds (smaller, slower)
#
#   bash bench/model.sh [ROUNDS]     (default 5 runs of each, the fastest kept)
#
# Writes bench/results/model.md. Needs gcc and python3 (for the batch);
# musl-gcc (Debian's musl-tools) for the static rows, which are skipped
# without it.
set -u
cd "$(dirname "$0")/.." || exit 1
ROUNDS=${1:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

/usr/bin/python3 bench/iris_batch.py "$work/batch.csv"

builds=("gcc -O2 (glibc)|gcc -O2")
if command -v musl-gcc >/dev/null; then
	builds+=("musl -O2 (static, the image)|musl-gcc -O2 -static" "musl -Os (static, STATIC_OPT=-Os)|musl-gcc -Os -static")
else
	echo "# musl-gcc not found: the static rows are skipped (apt-get install musl-tools)"
fi
rows=()
for b in "${builds[@]}"; do
	name=${b%%|*} cc=${b#*|} best=
	# shellcheck disable=SC2086 # cc holds a compiler and its flags
	$cc -std=c11 -o "$work/speed" bench/model_speed.c model.c -lm || exit 1
	for ((i = 0; i < ROUNDS; i++)); do
		ms=$("$work/speed" models/iris "$work/batch.csv" | awk '{print $1}')
		[[ -z $best ]] || awk -v a="$ms" -v b="$best" 'BEGIN {exit !(a < b)}' && best=$ms
	done
	mbs=$(awk -v ms="$best" 'BEGIN {printf "%.0f", 1000 / ms}')
	printf '%-36s %s ms per MB, %s MB/s\n' "$name" "$best" "$mbs"
	rows+=("| $name | $best | $mbs |")
done
mkdir -p bench/results
{
	echo "# The default model alone, one core"
	echo
	echo "$(date -u +%Y-%m-%d), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); the 1 MB CSV batch of"
	echo "bench/run.sh answered 200 times in one process (bench/model_speed.c), fastest of $ROUNDS runs."
	echo "Command: \`bash bench/model.sh\`."
	echo
	echo "| build | ms per MB | MB/s |"
	echo "|---|---|---|"
	printf '%s\n' "${rows[@]}"
} >bench/results/model.md
