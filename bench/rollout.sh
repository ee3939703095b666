#!/usr/bin/env bash
# bench/rollout.sh: issue 12's rollout benchmark. It starts a control plane
# and one devicefw process simulating BENCH_BOARDS boards, all on free
# 127.0.0.1 ports, and runs `loadgen rollout` three times:
#   1. a 5 MiB build rolled out in waves 1 / 10 % / 100 % (health_window 5 s);
#   2. the same with a loadgen fleet and browsers measuring the live path's
#      p99 during the rollout, and the same loadgen run again with no rollout;
#   3. the fleet restarted with --sim-update-fail start: halted at the
#      canary, nothing sent to the others;
#   4. (only when asked, BENCH_RUNS="2 4") a control for run 2: the same
#      live load beside a rollout's downloads with no rollout behind them
#      (`loadgen fetch`: 1 / 100 / 899 downloads of the build, hashed as they
#      come, on a rollout's timeline, at the fleet's niceness), first from
#      the control plane's GET /firmware/<sha256>, then from the fetching
#      process itself (no control plane in the data path), then alone.
# `make bench-rollout` runs it.
#
# Environment (defaults in brackets):
#   BENCH_BOARDS   simulated boards [1000]
#   BENCH_SIZE     the build's size [5MiB]
#   BENCH_TRIAL    devicefw --update-trial [5s]
#   BENCH_HEALTH   the rollout's health_window [5s]
#   BENCH_PARALLEL the rollout's parallel [1000]
#   BENCH_LIVE_SECONDS  the live-path window of run 2, from the rollout's
#                  start [55: the whole default rollout, which takes 40-52 s]
#   BENCH_KEEP     1: keep the temporary directory (logs, database) [0]
#   BENCH_RUNS     which runs [1 2 3]
#   BENCH_FLEET_NICE  niceness of the simulated fleet (19: it yields the cores
#                  to the control plane and the load generator, as a real
#                  fleet hashing on its own CPUs would; bench/README.md says which
#                  figures used it; 0: the fleet competes with them as an
#                  equal) [19]
#   BENCH_FLEET_SCHED  idle: run the simulated fleet as SCHED_IDLE (chrt --idle 0):
#                  it then runs only on CPU time nothing else wants, and a
#                  waking control plane or load generator preempts it at once,
#                  which nice 19 does not guarantee (measured: no better,
#                  bench/README.md, 2026-12-05) []
#   BENCH_CONTROLPLANE  a controlplane binary to measure instead of this
#                  tree's (an older build, for before/after figures) [built here]
#   BENCH_DEVICEFW a devicefw binary to run the simulated fleet with instead of
#                  this tree's [built here]
#   BENCH_LIVE_NICE  niceness of run 2's live-path load generator [0]
#   BENCH_LIVE_APART 1: run 2's load generator plays its 100 boards in a
#                  process of their own (loadgen --boards-apart), so the
#                  browsers' reading never delays a board's send [0]
#   BENCH_CP_CPUS  CPUs the control plane runs on (taskset -c list, e.g. 0);
#                  with BENCH_OTHERS_CPUS (e.g. 1), where the simulated fleet and
#                  the load generators run: the control plane then has cores
#                  of its own, as it would with real boards, which have CPUs
#                  of their own (on a machine with enough cores) [all]
#   BENCH_OTHERS_CPUS  see BENCH_CP_CPUS [all]
#   BENCH_TAGS     build tags of the control plane (pprof: SWITCHYARD_PPROF=127.0.0.1:6060 serves profiles) []
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BOARDS=${BENCH_BOARDS:-1000}
SIZE=${BENCH_SIZE:-5MiB}
TRIAL=${BENCH_TRIAL:-5s}
HEALTH=${BENCH_HEALTH:-5s}
PARALLEL=${BENCH_PARALLEL:-1000}
LIVE=${BENCH_LIVE_SECONDS:-55}
GO=${GO:-go}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-rollout.XXXXXX")
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { printf '== %s\n' "$*" >&2; }
ulimit -n 20000 2>/dev/null || true

# Prefixes that pin a command to BENCH_CP_CPUS or BENCH_OTHERS_CPUS
# (taskset execs the command, so $! stays its pid), or nothing.
CP_ON=() OTHERS_ON=()
if [ -n "${BENCH_CP_CPUS:-}" ]; then CP_ON=(taskset -c "$BENCH_CP_CPUS"); fi
if [ -n "${BENCH_OTHERS_CPUS:-}" ]; then OTHERS_ON=(taskset -c "$BENCH_OTHERS_CPUS"); fi

cd "$ROOT"
log "building"
$GO build -tags "${BENCH_TAGS:-}" -o "$TMP/controlplane" ./cmd/controlplane
if [ -n "${BENCH_CONTROLPLANE:-}" ]; then
	log "measuring $BENCH_CONTROLPLANE instead of this tree's controlplane"
	cp "$BENCH_CONTROLPLANE" "$TMP/controlplane"
fi
$GO build -o "$TMP/devicefw" ./cmd/devicefw
if [ -n "${BENCH_DEVICEFW:-}" ]; then
	log "simulating the fleet with $BENCH_DEVICEFW instead of this tree's devicefw"
	cp "$BENCH_DEVICEFW" "$TMP/devicefw"
fi
$GO build -o "$TMP/loadgen" ./cmd/loadgen
read -r MQTT HTTP <<<"$("$TMP/loadgen" ports 2 | tr "\n" " ")"

# An admin with an API token (anonymous local clients are operators only).
read -r TOKEN DIGEST <<<"$(env -u SWITCHYARD_PPROF "$TMP/controlplane" new-token | tr "\n" " ")"
cat > "$TMP/config.yaml" <<YAML
mqtt:
  listen: 127.0.0.1:$MQTT
http:
  listen: 127.0.0.1:$HTTP
storage:
  path: $TMP/data/retained.db
log:
  level: warn
limits:
  max_mqtt_clients: 20000
auth:
  anonymous: local
  users:
    - name: bench
      password_hash: "$(echo bench-password | env -u SWITCHYARD_PPROF "$TMP/controlplane" hash-password)"
      role: admin
      tokens: ["$DIGEST"]
YAML

log "control plane on 127.0.0.1:$MQTT (mqtt) and :$HTTP (http)"
"${CP_ON[@]}" "$TMP/controlplane" --config "$TMP/config.yaml" 2>"$TMP/controlplane.log" &
CP=$!
PIDS+=("$CP")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$HTTP/healthz" >/dev/null && break; sleep 0.1; done
KEY=$(env -u SWITCHYARD_PPROF "$TMP/controlplane" update-key --config "$TMP/config.yaml")

start_fleet() { # start_fleet [extra devicefw flags]
	local sched=()
	if [ "${BENCH_FLEET_SCHED:-}" = idle ]; then sched=(chrt --idle 0); fi
	"${OTHERS_ON[@]}" "${sched[@]}" nice -n "${BENCH_FLEET_NICE:-19}" "$TMP/devicefw" --broker "tcp://127.0.0.1:$MQTT" --id sim --sim "$BOARDS" \
		--update-key "$KEY" --update-trial "$TRIAL" --update-deadline 60s \
		--state-dir "$TMP/fleet" "$@" 2>"$TMP/devicefw.log" &
	FLEET=$!
	PIDS+=("$FLEET")
}
stop_fleet() { kill -TERM "$FLEET"; wait "$FLEET" || true; }

bench() { "${OTHERS_ON[@]}" "$TMP/loadgen" rollout --http "http://127.0.0.1:$HTTP" --token "$TOKEN" \
	--boards "$BOARDS" --ids sim --size "$SIZE" --health-window "$HEALTH" \
	--parallel "$PARALLEL" --pid "$CP" -v "$@"; }

# live: the live path's load generator, 100 boards counting at 1 Hz and 100
# browsers, for LIVE seconds.
live() {
	local apart=()
	if [ "${BENCH_LIVE_APART:-0}" = 1 ]; then apart=(--boards-apart); fi
	"${OTHERS_ON[@]}" nice -n "${BENCH_LIVE_NICE:-0}" "$TMP/loadgen" "${apart[@]}" --mqtt "tcp://127.0.0.1:$MQTT" --http "http://127.0.0.1:$HTTP" \
	--boards 100 --browsers 100 --rate 1 --duration "${LIVE}s" --id-prefix live "$@"
}

RUNS=" ${BENCH_RUNS:-1 2 3} "
start_fleet
if [[ $RUNS == *" 1 "* ]]; then
log "run 1: $BOARDS boards, $SIZE, waves 1/10%/100%, health_window $HEALTH, --update-trial $TRIAL"
bench --label "rollout"
fi

if [[ $RUNS == *" 2 "* ]]; then
log "run 2: the live path during a rollout, then without one"
# The live window opens when the rollout has started (loadgen rollout first
# watches the idle fleet for 10 s and uploads the build) and lasts LIVE
# seconds: by default the whole rollout, whose done time the output gives
# to check against.
bench --label "rollout-with-live-load" > >(tee "$TMP/rollout-2.txt") 2>&1 &
RB=$!
until grep -q "started on" "$TMP/rollout-2.txt" 2>/dev/null; do
	kill -0 "$RB" 2>/dev/null || { wait "$RB"; exit 1; }
	sleep 0.1
done
live --label "live-during-rollout" \
	--timeline "$TMP/timeline-during.csv"
wait "$RB"
log "the live path second by second during the rollout (second 0: the window's first, about a second after the rollout's start)"
cat "$TMP/timeline-during.csv"
live --label "live-idle" \
	--timeline "$TMP/timeline-idle.csv"
log "the live path second by second without a rollout"
cat "$TMP/timeline-idle.csv"
fi

if [[ $RUNS == *" 3 "* ]]; then
log "run 3: every board fails to start the new build (--sim-update-fail start)"
stop_fleet
start_fleet --sim-update-fail start
bench --label "rollout-fail-start"
fi

if [[ $RUNS == *" 4 "* ]]; then
log "run 4: the live path beside a rollout's downloads with no rollout behind them (a control for run 2)"
FETCH_FILE="$TMP/fetch-build" # the build: SIZE random bytes
case $SIZE in
*MiB) BYTES=$(( ${SIZE%MiB} << 20 )) ;;
*KiB) BYTES=$(( ${SIZE%KiB} << 10 )) ;;
*) BYTES=${SIZE%B} ;;
esac
head -c "$BYTES" /dev/urandom >"$FETCH_FILE"
SUM=$(curl -sf -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/octet-stream" \
	--data-binary @"$FETCH_FILE" "http://127.0.0.1:$HTTP/api/firmware?version=fetch-control&platform=sim" |
	sed -n 's/.*"sha256": *"\([0-9a-f]*\)".*/\1/p')
[ -n "$SUM" ] || { log "uploading the control's build failed"; exit 1; }
fetch() { "${OTHERS_ON[@]}" nice -n "${BENCH_FLEET_NICE:-19}" "$TMP/loadgen" fetch --size "$SIZE" "$@"; }
fetch --label "fetch-from-controlplane" --url "http://127.0.0.1:$HTTP/firmware/$SUM" --sha256 "$SUM" --token "$TOKEN" &
F=$!
live --label "live-beside-fetch-from-controlplane" --timeline "$TMP/timeline-fetch-cp.csv"
wait "$F"
fetch --label "fetch-from-itself" &
F=$!
live --label "live-beside-fetch-from-itself" --timeline "$TMP/timeline-fetch-self.csv"
wait "$F"
live --label "live-idle-2"
fi
