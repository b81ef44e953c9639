#!/usr/bin/env bash
# bench/profile.sh - where the loop process spends its time, by system call.
#
#   bash bench/profile.sh [SECONDS]      (default 4 s of samples per scenario)
#
# Starts the echo build with 2 workers, drives it with wrk (one thread, 32
# connections: one core for the load, one for the server) with GET /ping and
# with a one-record POST /invocations, and samples the loop process with
# `perf record -g` (the CPU clock: virtual machines often have no hardware
# counters). Prints, per scenario, the loop's and the workers' CPU use, the
# kernel's share of the loop's samples, and each system call's share with
# everything it calls (and the parts that matter: the TCP send path, the pipe
# writes to workers, the CPU given away between the polls before sleeping,
# the context switch back in after sleeping in select or yielding).
# Writes bench/results/profile.md, which README.md quotes under "Where smserve
# is still short of its goals". Needs perf and wrk (Debian: linux-perf, wrk).
set -u
cd "$(dirname "$0")/.." || exit 1
SECS=${1:-4}
PORT=19300
for tool in perf wrk; do
	command -v "$tool" >/dev/null || { echo "profile: $tool is not installed" >&2; exit 2; }
done
make -s build/smserve-echo || exit 1

work=$(mktemp -d)
server=
cleanup() { [[ -n $server ]] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

./build/smserve-echo --port "$PORT" --workers 2 --no-access-log >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/ping" && break; sleep 0.05; done
printf 'wrk.method = "POST"\nwrk.body = "5.1,3.5,1.4,0.2"\nwrk.headers["Content-Type"] = "text/csv"\n' >"$work/record.lua"
workers=$(pgrep -d, -P "$server")

# cpu_use PIDS -> CPUs used over SECS s (perf stat's task-clock)
cpu_use() { perf stat -x, -e task-clock -p "$1" sleep "$SECS" 2>&1 | awk -F, '/task-clock/ {printf "%.2f", $1 / 1000 / '"$SECS"'}'; }

profile() { # NAME PATH [LUA]
	local name=$1 path=$2 script=() data="$work/$1.data" load loop_cpu worker_cpu rps
	[[ -n ${3:-} ]] && script=(-s "$work/$3")
	wrk -t1 -c32 -d"$((3 * SECS + 3))s" "${script[@]}" "http://127.0.0.1:$PORT$path" >"$work/$name.wrk" &
	load=$!
	sleep 1
	loop_cpu=$(cpu_use "$server")
	worker_cpu=$(cpu_use "$workers")
	perf record -q -F 2000 -g -o "$data" -p "$server" sleep "$SECS" >/dev/null 2>&1
	wait "$load"
	rps=$(awk '/Requests\/sec/ {printf "%d", $2}' "$work/$name.wrk")
	echo "== $name ($path, wrk -t1 -c32): $rps requests/s; loop $loop_cpu CPUs" \
		"($(awk -v c="$loop_cpu" -v r="$rps" 'BEGIN {printf "%.1f", c * 1e6 / r}') us a request), both workers $worker_cpu CPUs"
	perf report -i "$data" --no-children --sort dso -g none 2>/dev/null |
		awk '/%/ && /kernel/ {printf "   kernel: %s of the loop'\''s samples\n", $1}'
	# Each system call with all it calls (kernel symbols, as Linux 6 names
	# them), and the parts of each that tell the story.
	perf report -i "$data" --children --sort sym -g none 2>/dev/null | awk '
		$3 == "[k]" { share[$4] = $1 }
		function show(label, sym) { if (sym in share) printf "   %-48s %s\n", label, share[sym] }
		END {
			show("writev (all)", "do_writev")
			show("  of which the TCP send path to clients", "tcp_sendmsg")
			show("  of which pipe writes to workers", "anon_pipe_write")
			show("read (all)", "ksys_read")
			show("  of which TCP reads from clients", "tcp_recvmsg")
			show("  of which pipe reads from workers", "anon_pipe_read")
			show("select (all)", "__x64_sys_pselect6")
			show("sched_yield (between the polls before sleeping)", "__x64_sys_sched_yield")
			show("the switch back in (after a sleep or a yield)", "finish_task_switch.isra.0")
		}'
}

{
	echo "# The loop's profile"
	echo
	echo "$(date -u +%Y-%m-%d), $(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), $(uname -sr)."
	echo "Command: \`bash bench/profile.sh\`. Shares are of the loop process's samples."
	echo
	echo '```'
	profile ping /ping
	profile echo /invocations record.lua
	echo '```'
} | tee bench/results/profile.md
