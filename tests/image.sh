#!/usr/bin/env bash
# test-binary: none
# tests/image.sh - builds the container image from the Dockerfile with buildah
# (no Docker engine, no network) and runs it the way SageMaker does.
#
#   bash tests/image.sh
#   MODEL=examples/echo/model.c MODEL_DIR=models/x bash tests/image.sh
#
# What it checks:
#   - the image builds from the Dockerfile with `buildah bud --layers` (a
#     commit per step, as podman build and docker do) in vfs storage in a
#     private temporary root, so nothing touches the machine's image store,
#     and has one layer;
#   - its configuration: exec-form ENTRYPOINT ["/smserve"], CMD ["serve"],
#     EXPOSE 8080, every label the Dockerfile declares with its value (the
#     accept-bind-to-port label among them), the health check, root user;
#   - its root file system holds nothing but /smserve and /opt/ml/model/*;
#   - started in an empty root (no /dev, /proc, /etc, /tmp) as `/smserve
#     serve` with SAGEMAKER_BIND_TO_PORT set and /opt/ml/model read-only, it
#     answers /ping and /invocations, its --healthcheck mode exits 0 (and 1
#     when nothing listens), and SIGTERM makes it exit 0;
#   - the image's files (binary and model) stay under 200,000 bytes, the
#     project's bound for the static build; the sizes are printed, with the
#     layer tar, the figure `buildah images` shows and the compressed layer
#     (bench/image.sh explains each).
# Needs root (unshare), buildah, curl. Without them it is skipped: a "# SKIP"
# line and "0 passed, 0 failed".

cd "$(dirname "$0")/.." || exit 1
OWN_TEST_TMP=${TEST_TMP:+no}
source tests/lib.sh

# skip REASON: says why nothing was checked, in the form test.sh counts.
skip() {
	echo "# SKIP: $1"
	[[ $OWN_TEST_TMP == no ]] || rm -rf "$TEST_TMP"
	finish
	exit 0
}
command -v buildah >/dev/null 2>&1 || skip "buildah not installed"
command -v curl >/dev/null 2>&1 || skip "curl not installed"
[[ $(id -u) == 0 ]] || skip "needs root (buildah vfs storage, unshare --root)"

MODEL_DIR=${MODEL_DIR:-models/iris}
SIZE_LIMIT=200000   # bytes: the image's files (binary + model) stay under this
IMAGE=localhost/smserve-test:latest
IMG_TMP=$(mktemp -d /tmp/smserve-image.XXXXXX)
BUILDAH=(buildah --root "$IMG_TMP/root" --runroot "$IMG_TMP/run" --storage-driver vfs)
CTR=
RUN_PID=

cleanup() {
	if [[ -n $RUN_PID ]] && kill -0 "$RUN_PID" 2>/dev/null; then
		local pid
		pid=$(server_pid)
		[[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
		kill -KILL "$RUN_PID" 2>/dev/null   # --kill-child also takes the server with it
		wait "$RUN_PID" 2>/dev/null
	fi
	RUN_PID=
	if [[ -d $IMG_TMP ]]; then
		"${BUILDAH[@]}" umount --all >/dev/null 2>&1
		"${BUILDAH[@]}" rm --all >/dev/null 2>&1
		"${BUILDAH[@]}" rmi --all --force >/dev/null 2>&1
		# vfs leaves plain directories; anything still mounted under IMG_TMP
		# would be a bug: unmount it rather than delete through it.
		local m
		awk -v d="$IMG_TMP" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
			while read -r m; do umount -l "$m" 2>/dev/null; done
		rm -rf "$IMG_TMP"
	fi
	[[ $OWN_TEST_TMP == no ]] || rm -rf "$TEST_TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build -------------------------------------------------------------------

if [[ ! -d $MODEL_DIR ]]; then
	not_ok "bundled model directory $MODEL_DIR exists"
	finish
	exit
fi
if ! make -s static ${MODEL:+MODEL="$MODEL"} >"$IMG_TMP/make.log" 2>&1; then
	not_ok "make static" "$(tail -5 "$IMG_TMP/make.log")"
	finish
	exit
fi
ok "make static"

# The air-gapped build: the Dockerfile's only base is scratch, so this pulls
# nothing (--pull-never makes sure of it). --layers commits a layer per step,
# as podman build and docker do, so that the one-layer check below means
# something (buildah bud's own default commits once, always one layer).
if "${BUILDAH[@]}" bud --pull-never --format docker --layers \
	--build-arg MODEL_DIR="$MODEL_DIR" -t "$IMAGE" -f Dockerfile . >"$IMG_TMP/build.log" 2>&1; then
	ok "buildah bud builds the image from the Dockerfile without a registry"
else
	not_ok "buildah bud builds the image" "$(tail -5 "$IMG_TMP/build.log")"
	finish
	exit
fi

# ---- configuration -----------------------------------------------------------

cfg() { "${BUILDAH[@]}" inspect --type image --format "$1" "$IMAGE" 2>&1; }
expect "ENTRYPOINT is exec-form [\"/smserve\"]" "[/smserve]" "$(cfg '{{.Docker.Config.Entrypoint}}')"
expect "CMD is [\"serve\"] (docker run IMAGE serves)" "[serve]" "$(cfg '{{.Docker.Config.Cmd}}')"
expect "EXPOSE 8080" "map[8080/tcp:{}]" "$(cfg '{{.Docker.Config.ExposedPorts}}')"
# The labels the Dockerfile declares (LABEL key=value ..., one instruction
# per line), each in the image with its value.
mapfile -t DECLARED < <(sed -n 's/^LABEL[[:space:]]\+//p' Dockerfile | tr -s '[:space:]' '\n' | grep -e '=' | tr -d '"')
expect "the Dockerfile declares the accept-bind-to-port label" \
	"com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true" \
	"$(printf '%s\n' "${DECLARED[@]}" | grep '^com.amazonaws.sagemaker.capabilities.accept-bind-to-port=')"
for label in "${DECLARED[@]}"; do
	expect "label ${label%%=*} is ${label#*=}" "${label#*=}" \
		"$(cfg "{{index .Docker.Config.Labels \"${label%%=*}\"}}")"
done
expect "HEALTHCHECK runs /smserve --healthcheck" "[CMD /smserve --healthcheck]" \
	"$(cfg '{{if .Docker.Config.Healthcheck}}{{.Docker.Config.Healthcheck.Test}}{{end}}')"
expect "runs as root (no USER)" "" "$(cfg '{{.Docker.Config.User}}')"
expect "one layer" "1" "$(cfg '{{len .Docker.RootFS.DiffIDs}}')"
mapfile -t IMAGE_ENV < <(cfg '{{range .Docker.Config.Env}}{{println .}}{{end}}' | grep .)

# ---- root file system ----------------------------------------------------------

if CTR=$("${BUILDAH[@]}" from --pull-never --name smserve-test-ctr "$IMAGE" 2>"$IMG_TMP/from.log") &&
	ROOTFS=$("${BUILDAH[@]}" mount "$CTR" 2>>"$IMG_TMP/from.log") && [[ -d $ROOTFS ]]; then
	ok "the image's root file system is exported"
else
	not_ok "the image's root file system is exported" "$(tail -3 "$IMG_TMP/from.log")"
	finish
	exit
fi

actual=$(cd "$ROOTFS" && find . -mindepth 1 | sed 's|^\./||' | LC_ALL=C sort)
expected=$({
	printf '%s\n' smserve opt opt/ml opt/ml/model
	(cd "$MODEL_DIR" && find . -mindepth 1 | sed 's|^\./|opt/ml/model/|')
} | LC_ALL=C sort)
expect "root file system holds only /smserve and /opt/ml/model/*" "$expected" "$actual"
echo "# image files:"
(cd "$ROOTFS" && find . -mindepth 1 -type f -printf '#   /%P  %s bytes\n' | LC_ALL=C sort)
if cmp -s smserve-static "$ROOTFS/smserve"; then ok "/smserve is ./smserve-static"; else not_ok "/smserve is ./smserve-static"; fi
expect "/smserve is executable" "yes" "$([[ -x $ROOTFS/smserve ]] && echo yes || echo no)"
for d in dev proc sys etc tmp bin; do
	[[ -e $ROOTFS/$d ]] && not_ok "no /$d in the image"
done

rootfs_bytes=$(find "$ROOTFS" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
# Uncompressed layer (the tar `docker images` counts), from the stored manifest.
layer_bytes=$(cfg '{{.Manifest}}' | tr -d ' \n' |
	sed -n 's/.*"layers":\[\(.*\)\].*/\1/p' | grep -o '"size":[0-9]*' | cut -d: -f2 |
	awk '{ s += $1 } END { print s + 0 }')
# Compressed size: what a registry stores and a host pulls.
gz_bytes=
if "${BUILDAH[@]}" push --format docker "$IMAGE" "dir:$IMG_TMP/pushed" >/dev/null 2>&1; then
	gz_bytes=$(tr -d ' \n' <"$IMG_TMP/pushed/manifest.json" |
		sed -n 's/.*"layers":\[\(.*\)\].*/\1/p' | grep -o '"size":[0-9]*' | cut -d: -f2 |
		awk '{ s += $1 } END { print s + 0 }')
fi
shown=$("${BUILDAH[@]}" images --noheading --format '{{.Size}}' "$IMAGE" | sed 's/ *$//')
echo "# image size: files $rootfs_bytes bytes, layer tar $layer_bytes bytes, \`buildah images\` ${shown:-?}," \
	"compressed layer ${gz_bytes:-?} bytes"
if ((rootfs_bytes > 0 && rootfs_bytes < SIZE_LIMIT)); then
	ok "image files under $SIZE_LIMIT bytes ($rootfs_bytes bytes)"
else
	not_ok "image files under $SIZE_LIMIT bytes" "$rootfs_bytes bytes"
fi

# ---- run it as SageMaker does ------------------------------------------------

# run_root LOG ARG...: starts /smserve ARG... in the image's root in new mount
# and PID namespaces (the network is shared, so curl on the host reaches it),
# with only the image's environment plus SAGEMAKER_BIND_TO_PORT=$PORT, and
# /opt/ml/model mounted read-only as SageMaker does. The server is PID 1 of its
# namespace, as in a container. Sets RUN_PID (the unshare process).
run_root() {
	local log=$1; shift
	# shellcheck disable=SC2016  # $1 and $@ belong to the inner bash
	env -i "${IMAGE_ENV[@]}" SAGEMAKER_BIND_TO_PORT="$PORT" \
		unshare --mount --pid --kill-child --propagation private \
		/bin/bash -c 'mount --bind "$1/opt/ml/model" "$1/opt/ml/model" &&
			mount -o remount,bind,ro "$1/opt/ml/model" &&
			exec unshare --root="$1" "${@:2}"' _ "$ROOTFS" "$@" >"$log" 2>&1 &
	RUN_PID=$!
}

# server_pid: the server's host PID (unshare's only child).
server_pid() {
	local c
	for _ in $(seq 100); do
		c=$(cat "/proc/$RUN_PID/task/$RUN_PID/children" 2>/dev/null)
		[[ -n ${c// /} ]] && { echo "${c%% *}"; return; }
		sleep 0.01
	done
}

# procs_in_image: PIDs of processes whose root is in the image store.
procs_in_image() {
	local p r
	for p in /proc/[0-9]*; do
		r=$(readlink "$p/root" 2>/dev/null) && [[ $r == "$IMG_TMP"/* ]] && echo "${p#/proc/}"
	done
}

# wait_ping LOG: waits (10 s at most) until /ping answers anything.
wait_ping() {
	for _ in $(seq 200); do
		curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/ping" && return 0
		kill -0 "$RUN_PID" 2>/dev/null || { echo "# server exited: $(tail -5 "$1")"; return 1; }
		sleep 0.05
	done
	echo "# no answer on port $PORT: $(tail -5 "$1")"
	return 1
}

# stop_root NAME LOG: SIGTERM to the server, expects exit status 0 within 10 s.
stop_root() {
	local name=$1 log=$2 pid rc
	pid=$(server_pid)
	if [[ -z $pid ]]; then
		not_ok "$name: server process found"
	else
		kill -TERM "$pid"
	fi
	for _ in $(seq 200); do kill -0 "$RUN_PID" 2>/dev/null || break; sleep 0.05; done
	if kill -0 "$RUN_PID" 2>/dev/null; then
		[[ -n $pid ]] && kill -KILL "$pid"   # unshare then exits with 137
		not_ok "$name: exits after SIGTERM" "still running after 10 s"
	fi
	wait "$RUN_PID" 2>/dev/null
	rc=$?
	RUN_PID=
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		not_ok "$name: server process gone" "pid $pid"
		kill -KILL "$pid" 2>/dev/null
	fi
	expect "$name: exit status 0 after SIGTERM" 0 "$rc"
	if grep -qiE 'no such file|/dev/|/proc/|/etc/|/tmp/' "$log"; then
		not_ok "$name: needs nothing outside the image" "$(grep -m3 -iE 'no such file|/dev/|/proc/|/etc/|/tmp/' "$log")"
	fi
}

PORT=$(free_port)
LOG=$IMG_TMP/serve.log
run_root "$LOG" /smserve serve
if wait_ping "$LOG"; then
	ok "starts in an empty root as \`/smserve serve\` on SAGEMAKER_BIND_TO_PORT"

	resp=$(curl -s -o "$IMG_TMP/ping.body" -w '%{http_code}' "http://127.0.0.1:$PORT/ping")
	expect "GET /ping: 200" 200 "$resp"
	expect "GET /ping: empty body" 0 "$(stat -c %s "$IMG_TMP/ping.body")"

	resp=$(curl -s -o "$IMG_TMP/inv.body" -w '%{http_code}' -H 'Content-Type: text/csv' \
		--data-binary $'5.1,3.5,1.4,0.2\n' "http://127.0.0.1:$PORT/invocations")
	body=$(cat "$IMG_TMP/inv.body")
	expect "POST /invocations (CSV iris record): 200" 200 "$resp"
	if [[ -z $MODEL || $MODEL == model.c ]] && [[ $MODEL_DIR == models/iris ]]; then
		# iris record 1 is a setosa, class 0 of the bundled model
		expect_match "POST /invocations: predicts setosa (label 0)" '"predicted_label": ?(0|"setosa")[^0-9.]|setosa' "$body"
	else
		expect_match "POST /invocations: answers a body" '.' "$body"
	fi
	echo "# /invocations answered: ${body:0:200}"

	# The health-check mode, run inside the image as `docker exec`/HEALTHCHECK
	# would: same environment, so the same port.
	env -i "${IMAGE_ENV[@]}" SAGEMAKER_BIND_TO_PORT="$PORT" \
		unshare --mount --pid --fork --root="$ROOTFS" /smserve --healthcheck >"$IMG_TMP/hc.log" 2>&1
	expect "/smserve --healthcheck in the image: exit 0" 0 "$?"
	env -i "${IMAGE_ENV[@]}" SAGEMAKER_BIND_TO_PORT="$(free_port)" \
		unshare --mount --pid --fork --root="$ROOTFS" /smserve --healthcheck >>"$IMG_TMP/hc.log" 2>&1
	expect "/smserve --healthcheck with nothing listening: exit 1" 1 "$?"
else
	not_ok "starts in an empty root as \`/smserve serve\` on SAGEMAKER_BIND_TO_PORT" "$(tail -5 "$LOG")"
fi
stop_root "serve in the image" "$LOG"
sed 's/^/# server: /' "$LOG" | head -20

# With no argument at all (no CMD: the server must serve by default too).
PORT=$(free_port)
LOG=$IMG_TMP/noarg.log
run_root "$LOG" /smserve
if wait_ping "$LOG"; then
	expect "/smserve with no argument: /ping 200" 200 \
		"$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/ping")"
else
	not_ok "/smserve with no argument serves" "$(tail -5 "$LOG")"
fi
stop_root "no argument" "$LOG"

# ---- clean up ----------------------------------------------------------------

"${BUILDAH[@]}" umount --all >/dev/null 2>&1
"${BUILDAH[@]}" rm --all >/dev/null 2>&1
"${BUILDAH[@]}" rmi --all --force >/dev/null 2>&1
# (The model's read-only bind mount lives in the server's own mount
# namespace and goes with it; a mount left behind here would make the
# removal below fail.)
expect "no server left running" "" "$(jobs -pr; procs_in_image)"
cleanup
expect "temporary image store removed" "no" "$([[ -e $IMG_TMP ]] && echo yes || echo no)"
finish
