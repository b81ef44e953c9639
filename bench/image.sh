#!/usr/bin/env bash
# bench/image.sh - the container image's size and the server's start time.
#
#   bash bench/image.sh            (root; buildah for the image figures)
#   RUNS=50 bash bench/image.sh
#
# Size: builds the image from the Dockerfile with buildah (vfs storage in a
# private temporary root, no network), three ways (as `make image` runs
# buildah, as podman build does by default, and with a smaller config), and
# reports for each the bytes of the files in the image, of its layer as a tar,
# of its config and manifest, the exact total `buildah images` and `podman
# images` count (they print it rounded, "107 KB") and the gzip-compressed
# layer (what a registry stores and an instance pulls).
# Start: RUNS times each, the time from starting the process to the first
# "200" answer to GET /ping, polled in a tight loop over bash's /dev/tcp (no
# fork per attempt), for ./smserve-static on the host and for /smserve in the
# image's root in new mount and PID namespaces (as a container starts).
# Prints a table next to the peers' published image sizes and writes it to
# bench/results/image.md.

cd "$(dirname "$0")/.." || exit 1
set -u

RUNS=${RUNS:-20}
MODEL_DIR=${MODEL_DIR:-models/iris}
OUT=bench/results/image.md
TMP=$(mktemp -d /tmp/smserve-bench.XXXXXX)
BUILDAH=(buildah --root "$TMP/root" --runroot "$TMP/run" --storage-driver vfs)
RUN_PID=

cleanup() {
	if [[ -n $RUN_PID ]]; then
		# shellcheck disable=SC2046  # the server's PID (unshare's child), if any
		kill -KILL $(cat "/proc/$RUN_PID/task/$RUN_PID/children" 2>/dev/null) "$RUN_PID" 2>/dev/null
		wait "$RUN_PID" 2>/dev/null
	fi
	if command -v buildah >/dev/null 2>&1; then
		"${BUILDAH[@]}" rm --all >/dev/null 2>&1
		"${BUILDAH[@]}" rmi --all --force >/dev/null 2>&1
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
trap '' PIPE   # a server that closes early must not kill the timing loop
PING=$'GET /ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'

die() { echo "bench/image.sh: $*" >&2; exit 1; }

# free_port: a TCP port nobody listens on.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 12000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

# layer_sum MANIFEST_JSON: the sum of the layers' sizes in an image manifest.
layer_sum() {
	tr -d ' \n' | sed -n 's/.*"layers":\[\(.*\)\].*/\1/p' | grep -o '"size":[0-9]*' |
		cut -d: -f2 | awk '{ s += $1 } END { print s + 0 }'
}


# ---- build ---------------------------------------------------------------------

# store_bytes ID: the image's size as `buildah images` and `podman images`
# count it, in bytes (they print it rounded, "107 KB"): containers/storage
# adds the uncompressed size of each layer (the tar) and every item it keeps
# beside the image (the config, the manifest twice: by name and by digest,
# the signatures).
store_bytes() {
	/usr/bin/python3 - "$TMP/root" "$1" <<'PY' 2>/dev/null
import json, sys
root, image_id = sys.argv[1], sys.argv[2]
images = json.load(open(root + "/vfs-images/images.json"))
layers = {l["id"]: l for l in json.load(open(root + "/vfs-layers/layers.json"))}
image = next(i for i in images if i["id"].startswith(image_id))
total, layer = sum(image.get("big-data-sizes", {}).values()), image.get("layer")
while layer:
    total += layers[layer]["diff-size"]
    layer = layers[layer].get("parent")
print(total)
PY
}

# measure_build NAME BUD-ARG...: builds the image as NAME with `buildah bud
# --format docker BUD-ARG...` and prints "layers layer-tar config manifest
# store shown gzip": the number of layers, the bytes of their tars, of the
# config, of the manifest, the exact total `buildah images` counts, the
# figure it shows, and the bytes of the gzip-compressed layers (what a
# registry stores and an instance pulls).
measure_build() {
	local name=$1 manifest id layers tar config store shown gz
	shift
	"${BUILDAH[@]}" bud --pull-never --format docker "$@" --build-arg MODEL_DIR="$MODEL_DIR" \
		-t "$name" -f Dockerfile . >"$TMP/build.log" 2>&1 || die "buildah bud $* failed: $(tail -5 "$TMP/build.log")"
	manifest=$("${BUILDAH[@]}" inspect --type image --format '{{.Manifest}}' "$name")
	layers=$("${BUILDAH[@]}" inspect --type image --format '{{len .Docker.RootFS.DiffIDs}}' "$name")
	tar=$(layer_sum <<<"$manifest")
	config=$(tr -d ' \n' <<<"$manifest" | sed -n 's/.*"config":{[^}]*"size":\([0-9]*\).*/\1/p')
	id=$("${BUILDAH[@]}" images --noheading --format '{{.ID}}' "$name")
	store=$(store_bytes "$id")
	shown=$("${BUILDAH[@]}" images --noheading --format '{{.Size}}' "$name" | sed 's/ *$//; s/ /_/g')
	rm -rf "$TMP/pushed"
	"${BUILDAH[@]}" push --format docker "$name" "dir:$TMP/pushed" >/dev/null 2>&1 ||
		die "buildah push to a directory failed"
	gz=$(layer_sum <"$TMP/pushed/manifest.json")
	echo "$layers $tar $config ${#manifest} ${store:-?} $shown $gz"
}

[[ -d $MODEL_DIR ]] || die "no model directory $MODEL_DIR"
make -s static ${MODEL:+MODEL="$MODEL"} >"$TMP/make.log" 2>&1 || die "make static failed: $(tail -5 "$TMP/make.log")"
bin_bytes=$(stat -c %s smserve-static)
model_bytes=$(find "$MODEL_DIR" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')

# The builds measured: `make image`'s (buildah bud's default: one commit at
# the end), podman build's default (a commit per step, --layers), and the
# same with the build history and buildah's version label left out of the
# config.
BUILDS=(
	"\`buildah bud --format docker\`|"
	"\`buildah bud --format docker --layers\` (podman build's default)|--layers"
	"\`buildah bud --format docker --omit-history --identity-label=false\`|--omit-history --identity-label=false"
)
ROOTFS=
files_bytes=''
declare -A SIZES=()
if ! command -v buildah >/dev/null 2>&1; then
	echo "# buildah not installed: image sizes and the in-image start are not measured" >&2
elif [[ $(id -u) != 0 ]]; then
	echo "# not root: image sizes and the in-image start are not measured" >&2
else
	for i in "${!BUILDS[@]}"; do
		# shellcheck disable=SC2086  # the build's arguments, split on purpose
		SIZES[$i]=$(measure_build "localhost/smserve-bench-$i:latest" ${BUILDS[i]#*|}) || exit 1
	done
	if ! ctr=$("${BUILDAH[@]}" from --pull-never --name smserve-bench-ctr "localhost/smserve-bench-0:latest" 2>/dev/null) ||
		! ROOTFS=$("${BUILDAH[@]}" mount "$ctr" 2>/dev/null); then
		die "cannot export the image's root file system"
	fi
	files_bytes=$(find "$ROOTFS" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
fi

# ---- start time ----------------------------------------------------------------

# time_to_ping PORT CMD...: starts CMD in the background (RUN_PID) and prints
# the microseconds from just before the fork to the first 200 from /ping.
time_to_ping() {
	local port=$1 t0 t1 line
	shift
	t0=$EPOCHREALTIME
	"$@" >"$TMP/server.log" 2>&1 &
	RUN_PID=$!
	while :; do
		if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
			printf '%s' "$PING" >&3 2>/dev/null
			line=
			read -r -t 2 line <&3
			exec 3<&-
			if [[ $line == "HTTP/1."?" 200"* ]]; then
				t1=$EPOCHREALTIME
				break
			fi
		fi
		if ! kill -0 "$RUN_PID" 2>/dev/null; then
			die "server exited before answering /ping: $(tail -3 "$TMP/server.log")"
		fi
		if (( ${EPOCHREALTIME/./} - ${t0/./} > 10000000 )); then
			die "no 200 from /ping within 10 s: $(tail -3 "$TMP/server.log")"
		fi
	done
	echo $(( ${t1/./} - ${t0/./} ))
}

# stop PID: SIGTERM, and wait for it.
stop() {
	kill -TERM "$1" 2>/dev/null
	wait "$RUN_PID" 2>/dev/null
	RUN_PID=
}

# stats FILE: "median max" of the microsecond figures in FILE, in ms.
stats() {
	sort -n "$1" | awk '{ v[NR] = $1 } END {
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.2f %.2f", m / 1000, v[NR] / 1000 }'
}

: >"$TMP/host.us"
for ((i = 0; i < RUNS; i++)); do
	port=$(free_port)
	time_to_ping "$port" ./smserve-static serve --port "$port" --model-dir "$MODEL_DIR" >>"$TMP/host.us" || exit 1
	stop "$RUN_PID"
done
read -r host_med host_max < <(stats "$TMP/host.us")

img_med='' img_max=''
if [[ -n $ROOTFS ]]; then
	: >"$TMP/image.us"
	for ((i = 0; i < RUNS; i++)); do
		port=$(free_port)
		time_to_ping "$port" env -i PATH=/usr/bin:/bin SAGEMAKER_BIND_TO_PORT="$port" \
			unshare --mount --pid --kill-child --root="$ROOTFS" /smserve serve >>"$TMP/image.us" || exit 1
		# SIGTERM to the server (PID 1 of its namespace), not to unshare.
		# shellcheck disable=SC2046
		kill -TERM $(cat "/proc/$RUN_PID/task/$RUN_PID/children" 2>/dev/null) 2>/dev/null
		wait "$RUN_PID" 2>/dev/null
		RUN_PID=
	done
	read -r img_med img_max < <(stats "$TMP/image.us")
fi

# ---- report --------------------------------------------------------------------

na() { [[ -n $1 ]] && "${@:2}" "$1" || echo "not measured (needs buildah and root)"; }
ms() { echo "$1 ms"; }
# commas N: 99275 -> 99,275
commas() { sed ':a; s/\B[0-9]\{3\}\>/,&/; ta' <<<"$1"; }
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
builder_version=$(buildah --version 2>/dev/null | cut -d' ' -f1-3)

# size_rows: one table row per build measured.
size_rows() {
	local i cmd layers tar config manifest store shown gz
	for i in "${!BUILDS[@]}"; do
		cmd=${BUILDS[i]%%|*}
		if [[ -z ${SIZES[$i]:-} ]]; then
			echo "| $cmd | not measured (needs buildah and root) | | | | | |"
			continue
		fi
		read -r layers tar config manifest store shown gz <<<"${SIZES[$i]}"
		echo "| $cmd | $layers | $(commas "$tar") | $(commas "$config") | $(commas "$manifest") | $(commas "$store") (\"${shown//_/ }\") | $(commas "$gz") |"
	done
}

{
	echo "# Image size and start time"
	echo
	echo "Measured by \`bash bench/image.sh\` on $(date -u +%Y-%m-%d), $(uname -sm), ${cpu:-unknown CPU}, $(nproc) CPUs,"
	echo "${builder_version:-no buildah}; the image built from the Dockerfile (FROM scratch, two stages,"
	echo "one layer), plug-in \`${MODEL:-model.c}\`, model \`$MODEL_DIR\`."
	echo
	echo "## Size"
	echo
	echo "Two figures, both true: the files the image holds, and what \`buildah images\` and"
	echo "\`podman images\` show, which adds the layer's tar framing and the image's metadata."
	echo
	echo "| What | Bytes |"
	echo "|---|---|"
	echo "| files in the image: /smserve + /opt/ml/model | $(na "$files_bytes" commas) |"
	echo "| - /smserve (static, stripped) | $(commas "$bin_bytes") |"
	echo "| - /opt/ml/model | $(commas "$model_bytes") |"
	echo
	echo "| Build (\`--pull-never\`, private vfs store) | layers | layer tar | config | manifest | \`buildah images\` | compressed layer |"
	echo "|---|---|---|---|---|---|---|"
	size_rows
	echo
	echo "- files: the sizes of the regular files in the image's root (\`buildah mount\`, \`find -type f\`)."
	echo "- layer tar: the uncompressed layer, the files plus a 512-byte tar header for each file and"
	echo "  directory (/opt, /opt/ml, /opt/ml/model), each file padded to 512 bytes, and two zero blocks"
	echo "  at the end; the manifest's layer size."
	echo "- \`buildah images\`: the exact bytes containers/storage counts for the image (read from its"
	echo "  records: the layer tars, plus the config, the manifest twice, by name and by digest, and the"
	echo "  signatures, none here); in brackets the figure \`buildah images\` prints, rounded to 3 digits"
	echo "  in units of 1,000 bytes. \`podman images\` shares the code and counts the same."
	echo "- compressed layer: the gzip layer \`buildah push --format docker IMAGE dir:DIR\` writes, what a"
	echo "  registry stores and an instance pulls (plus the config and the manifest)."
	echo "- \`docker images\` is not measured here (no Docker daemon on this machine)."
	echo "- \`make image\` runs the first command (with \`-t smserve:latest\`) when buildah is the builder,"
	echo "  \`podman build --format docker\` (the second) when podman is."
	echo
	echo "| Other inference images | Size |"
	echo "|---|---|"
	echo "| Seed: Ubuntu + nginx + gunicorn + Flask (scikit_bring_your_own) | hundreds of MB (not published) |"
	echo "| Hugging Face PyTorch CPU inference DLC | 13.8 GB (aws/deep-learning-containers#3165) |"
	echo "| PyTorch 2.0 GPU inference DLC (TorchServe) | 13.5 GB (aws/deep-learning-containers#4616) |"
	echo "| NVIDIA Triton 24.11-py3 | ~17 GB (user report) |"
	echo "| sagemaker-containers, XGBoost, TF Serving, MLflow, BentoML | not published |"
	echo
	echo "## Start time"
	echo
	echo "| Start to first 200 from GET /ping ($RUNS starts) | median | max |"
	echo "|---|---|---|"
	echo "| ./smserve-static on the host | $host_med ms | $host_max ms |"
	echo "| /smserve in the image root (unshare --mount --pid --root) | $(na "$img_med" ms) | $(na "$img_max" ms) |"
	echo "| peers | not published | not published |"
	echo
	echo "Start time runs from just before the fork to the first \"HTTP/1.1 200\" read back, polling"
	echo "/ping over bash's /dev/tcp without a fork per attempt; it includes fork, exec, loading the"
	echo "model and, for the image row, creating the namespaces. SageMaker's own budget for the first"
	echo "healthy /ping is 8 minutes; no peer publishes a cold-start figure."
} >"$TMP/report.md"

mkdir -p "$(dirname "$OUT")"
cp "$TMP/report.md" "$OUT"
cat "$OUT"
echo
echo "(written to $OUT)"
