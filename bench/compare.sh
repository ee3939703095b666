#!/usr/bin/env bash
# bench/compare.sh runs the same workloads against Switchyard, Mosquitto
# (browsers speak MQTT over its websockets listener) and a Node-RED flow
# doing Switchyard's job, all on loopback, and prints each figure with the
# ratios Switchyard/peer. `make bench-compare` runs it.
#
# It installs what is missing: Debian mosquitto (apt-get) and node-red@4
# (npm, into $BENCH_CACHE). Every process it starts listens on free
# 127.0.0.1 ports and is stopped before it exits; a system mosquitto on
# :1883 is neither used nor needed.
#
# Environment (defaults in brackets):
#   BENCH_SECONDS    measured window of each run [10]
#   BENCH_WARMUP     warm-up before it [2]
#   BENCH_TOGGLE_EVERY  toggle period of home, fleet and wall (one in flight) [250ms]:
#                    the toggle p99 is of window/period toggles, their max below 100
#   BENCH_SWEEP_SECONDS  window of each sweep step [5]
#   BENCH_SWEEP_RATES    per-board rates of the knee sweep (100 boards × 100 browsers) [1,2,5,10,20,50,100,200]
#   BENCH_REPEAT     runs of each workload per target; the report takes the best [2]
#   BENCH_WORKLOADS  any of: home fleet wall sweep idle [all]
#   BENCH_TARGETS    any of: switchyard mosquitto nodered [all]
#   BENCH_IDLE_N     boards and browsers of the idle workload [10000]
#   BENCH_OUT        results directory (results.csv, latency.svg, report.txt,
#                    toggles-<workload>-<target>-<run>.csv: every toggle's legs) [bench/results]
#   BENCH_CACHE      where node-red is installed [~/.cache/switchyard-bench]
#   BENCH_HISTORY    switchyard's board history and audit log: on, off or both
#                    (both runs each workload twice, the second labelled
#                    <workload>-nohistory) [on]
#   BENCH_LOADGEN_NICE  niceness of the load generator (its boards and
#                    browsers) [0]; 19 lets the system under test have the
#                    cores first, as on a machine of its own
#   BENCH_BOARDS_APART  1: the load generator plays the boards in a process
#                    of their own (--boards-apart), so the thousand simulated
#                    browsers' reading never delays a board's answer to a
#                    toggle; 0: boards and browsers in one process, as
#                    every figure in bench/README.md unless it says so [0]
#   BENCH_READERS    how the load generator reads the browsers (--readers):
#                    goroutines (one each) or epoll (a few goroutines in
#                    epoll_wait, one by default: --pollers) [epoll]
#   BENCH_CONTROLPLANE  a controlplane binary to measure instead of this tree's
#                    (an older build, for before/after figures) [built here]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${BENCH_SECONDS:-10}
WARMUP=${BENCH_WARMUP:-2}
TOGGLE_EVERY=${BENCH_TOGGLE_EVERY:-250ms}
SWEEP_SECS=${BENCH_SWEEP_SECONDS:-5}
SWEEP_RATES=${BENCH_SWEEP_RATES:-1,2,5,10,20,50,100,200}
REPEAT=${BENCH_REPEAT:-2}
WORKLOADS=${BENCH_WORKLOADS:-home fleet wall sweep idle}
TARGETS=${BENCH_TARGETS:-switchyard mosquitto nodered}
HISTORY=${BENCH_HISTORY:-on}
APART=${BENCH_BOARDS_APART:-0}
READERS=${BENCH_READERS:-epoll}
IDLE_N=${BENCH_IDLE_N:-10000}
OUT=${BENCH_OUT:-$ROOT/bench/results}
CACHE=${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/switchyard-bench}
GO=${GO:-go}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-bench.XXXXXX")
STARTED=()   # pids of the targets running now

stop_targets() {
	local p
	for p in "${STARTED[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${STARTED[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	STARTED=()
}
cleanup() { stop_targets; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '== %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Sockets: thousands of boards and browsers need file descriptors.
ulimit -n 131072 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

ensure_mosquitto() {
	command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] && return 0
	log "installing Debian mosquitto"
	as_root apt-get update -qq
	DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq mosquitto >/dev/null
	# The package may start a system broker on :1883; this script never uses it.
	as_root service mosquitto stop >/dev/null 2>&1 || as_root systemctl stop mosquitto >/dev/null 2>&1 || true
}
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)

ensure_nodered() {
	NODERED=$CACHE/node-red/node_modules/.bin/node-red
	[ -x "$NODERED" ] && return 0
	log "installing node-red@4 into $CACHE/node-red"
	mkdir -p "$CACHE/node-red"
	(cd "$CACHE/node-red" && { [ -f package.json ] || npm init -y >/dev/null; } && npm install --no-audit --no-fund --loglevel=error node-red@4 >/dev/null)
}

wait_port() { # wait_port PORT: until something listens on 127.0.0.1:PORT (10 s)
	for _ in $(seq 100); do
		(echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	log "nothing listens on 127.0.0.1:$1 after 10 s"; return 1
}

# start_mosquitto: a broker with a TCP and a websockets listener; sets
# MQ_PORT, MQ_WS_PORT, MQ_PID.
start_mosquitto() {
	local p; p=($("$LOADGEN" ports 2))
	MQ_PORT=${p[0]} MQ_WS_PORT=${p[1]}
	cat >"$TMP/mosquitto.conf" <<CONF
per_listener_settings false
allow_anonymous true
persistence false
log_dest stderr
log_type error
log_type warning
max_queued_messages 100000
listener $MQ_PORT 127.0.0.1
listener $MQ_WS_PORT 127.0.0.1
protocol websockets
CONF
	"$MOSQUITTO" -c "$TMP/mosquitto.conf" 2>>"$TMP/mosquitto.log" &
	MQ_PID=$!
	STARTED+=("$MQ_PID")
	wait_port "$MQ_PORT"; wait_port "$MQ_WS_PORT"
}

# start TARGET: sets TARGET_ARGS (the loadgen's --mqtt/--http/--ws/--pid).
start() {
	case $1 in
	switchyard|switchyard-nohistory)
		local p; p=($("$LOADGEN" ports 2))
		local hist=true; [ "$1" = switchyard-nohistory ] && hist=false
		# The history goes to a database file, as it does for users (the
		# retained messages stay in memory: they are not measured here).
		rm -f "$TMP"/switchyard.db*
		cat >"$TMP/controlplane.yaml" <<CONF
mqtt: {listen: '127.0.0.1:${p[0]}'}
http: {listen: '127.0.0.1:${p[1]}'}
storage: {path: ''}
database: {url: 'sqlite:$TMP/switchyard.db'}
history: {enabled: $hist}
log: {level: warn}
limits: {max_browsers: 50000, max_mqtt_clients: 50000, max_devices: 50000}
CONF
		"$TMP/controlplane" --config "$TMP/controlplane.yaml" 2>>"$TMP/controlplane.log" &
		local pid=$!; STARTED+=("$pid")
		wait_port "${p[0]}"; wait_port "${p[1]}"
		TARGET_ARGS=(--target switchyard --mqtt "tcp://127.0.0.1:${p[0]}" --http "http://127.0.0.1:${p[1]}" --pid "$pid")
		;;
	mosquitto)
		start_mosquitto
		TARGET_ARGS=(--target mosquitto --mqtt "tcp://127.0.0.1:$MQ_PORT" --ws "ws://127.0.0.1:$MQ_WS_PORT/mqtt" --pid "$MQ_PID")
		;;
	nodered)
		start_mosquitto
		local nr; nr=$("$LOADGEN" ports 1)
		rm -rf "$TMP/nodered"; mkdir -p "$TMP/nodered"
		cp "$ROOT/bench/nodered/settings.js" "$ROOT/bench/nodered/flows.json" "$TMP/nodered/"
		NR_HTTP_PORT=$nr NR_MQTT_PORT=$MQ_PORT "$NODERED" --userDir "$TMP/nodered" --settings "$TMP/nodered/settings.js" \
			>>"$TMP/nodered.log" 2>&1 &
		local pid=$!; STARTED+=("$pid")
		# Ready when the flow's WebSocket listener answers (404 before).
		for _ in $(seq 300); do
			code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$nr/ws" || true)
			[ "$code" != 000 ] && [ "$code" != 404 ] && break
			sleep 0.1
		done
		TARGET_ARGS=(--target nodered --mqtt "tcp://127.0.0.1:$MQ_PORT" --http "http://127.0.0.1:$nr" --pid "$pid,$MQ_PID")
		;;
	esac
}

# workload NAME: the loadgen arguments of a workload.
workload() {
	case $1 in
	home)  WL=(--boards 10 --browsers 5 --rate 1 --duration "${SECS}s" --warmup "${WARMUP}s" --toggle-every "$TOGGLE_EVERY") ;;
	fleet) WL=(--boards 1000 --browsers 100 --rate 1 --duration "${SECS}s" --warmup "${WARMUP}s" --toggle-every "$TOGGLE_EVERY") ;;
	wall)  WL=(--boards 100 --browsers 1000 --rate 1 --duration "${SECS}s" --warmup "${WARMUP}s" --toggle-every "$TOGGLE_EVERY") ;;
	sweep) WL=(--boards 100 --browsers 100 --sweep "$SWEEP_RATES" --duration "${SWEEP_SECS}s" --warmup 1s) ;;
	idle)
		# Each side (load generator, target) needs 2N sockets plus a few
		# files: cap N to what the open-file limit allows, and say so.
		local n=$IDLE_N lim; lim=$(ulimit -n)
		if [ "$lim" != unlimited ] && [ $((2 * n + 200)) -gt "$lim" ]; then
			n=$(( (lim - 200) / 2 / 100 * 100 ))
			log "idle: $IDLE_N + $IDLE_N needs more than the open-file limit ($lim, hard $(ulimit -Hn)); running $n + $n"
		fi
		WL=(--idle --boards "$n" --browsers "$n") ;;
	*) log "unknown workload $1"; exit 2 ;;
	esac
}

mkdir -p "$OUT"
CSV=$OUT/results.csv
: >"$CSV"
log "building controlplane and loadgen"
(cd "$ROOT" && $GO build -o "$TMP/controlplane" ./cmd/controlplane && $GO build -o "$TMP/loadgen" ./cmd/loadgen)
if [ -n "${BENCH_CONTROLPLANE:-}" ]; then
	log "measuring $BENCH_CONTROLPLANE instead of this tree's controlplane"
	cp "$BENCH_CONTROLPLANE" "$TMP/controlplane"
fi
LOADGEN=$TMP/loadgen
case " $TARGETS " in *" mosquitto "*|*" nodered "*) ensure_mosquitto ;; esac
case " $TARGETS " in *" nodered "*) ensure_nodered ;; esac

# The switchyard variants BENCH_HISTORY asks for.
variants() {
	case $HISTORY in
	on) echo switchyard ;;
	off) echo switchyard-nohistory ;;
	both) echo switchyard switchyard-nohistory ;;
	*) log "BENCH_HISTORY=$HISTORY: want on, off or both"; exit 2 ;;
	esac
}

for w in $WORKLOADS; do
	workload "$w"
	for t in $TARGETS; do
		vs=$t; [ "$t" = switchyard ] && vs=$(variants)
		for v in $vs; do
			label=$w; [ "$v" = switchyard-nohistory ] && label=$w-nohistory
			for rep in $(seq "$REPEAT"); do
				log "$w on $v (run $rep of $REPEAT)"
				start "$v"
				TRACE=()
				[ "$w" != sweep ] && [ "$w" != idle ] && TRACE=(--toggle-trace "$OUT/toggles-$label-$v-$rep.csv")
				[ "$APART" = 1 ] && [ "$w" != idle ] && TRACE+=(--boards-apart)
				TRACE+=(--readers "$READERS")
				nice -n "${BENCH_LOADGEN_NICE:-0}" "$LOADGEN" "${TARGET_ARGS[@]}" "${WL[@]}" "${TRACE[@]}" --label "$label" --csv "$CSV" | sed 's/^/   /' || log "$w on $v failed"
				stop_targets
				if [ "$v" = switchyard ] && [ -f "$TMP/switchyard.db" ]; then
					log "$w on $v: database $(du -cb "$TMP"/switchyard.db* | awk 'END {print $1}') bytes (with -wal and -shm)"
				fi
			done
		done
	done
done

log "comparison (best of $REPEAT runs each; CSV $CSV, chart $OUT/latency.svg)"
"$LOADGEN" report --csv "$CSV" --svg "$OUT/latency.svg" | tee "$OUT/report.txt"
{
	echo
	echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), $($GO version | cut -d' ' -f3), mosquitto $("$MOSQUITTO" -h 2>/dev/null | awk 'NR==1 {print $3}'), node $(node --version 2>/dev/null || echo -)"
} | tee -a "$OUT/report.txt"
