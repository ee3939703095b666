#!/usr/bin/env bash
# bench/credentials.sh measures what credentials cost (issue 14, "Credentials
# at scale"), on loopback:
#
#  1. the fleet workload (1,000 boards × 1 Hz, 100 browsers) against the
#     control plane, alone and while 50 password guessers hammer it with
#     wrong passwords for its bcrypt admin user: the even ones POST /login,
#     the odd ones send MQTT CONNECTs, each from its own loopback address
#     (127.0.0.10 and on), without pause. The boards and browsers are
#     anonymous (auth.anonymous: local), so what the guessers cost them is
#     CPU and scheduling, not their own logins.
#  2. with BENCH_STORM=1, the Go benchmark of boards reconnecting at once
#     (1,000 and 5,000; generated secrets, a shared bcrypt user, a bcrypt
#     user each): go test -run '^$' -bench ReconnectStorm -benchtime 1x ./broker
#
# Environment (defaults in brackets):
#   BENCH_SECONDS       measured window [20]
#   BENCH_WARMUP        warm-up before it (the guessers start with it) [3]
#   BENCH_GUESSERS      guessers [50]
#   BENCH_REPEAT        runs of each case [1]
#   BENCH_STORM         also run the reconnect storm benchmark [0]
#   BENCH_CONTROLPLANE  a controlplane binary to measure instead of this tree's
#                       (an older build, for before/after figures) [built here]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${BENCH_SECONDS:-20}
WARMUP=${BENCH_WARMUP:-3}
GUESSERS=${BENCH_GUESSERS:-50}
REPEAT=${BENCH_REPEAT:-1}
GO=${GO:-go}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-creds.XXXXXX")
PID=
cleanup() {
	if [ -n "$PID" ]; then
		kill -TERM "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT
log() { echo "credentials: $*" >&2; }

wait_port() {
	for _ in $(seq 100); do
		(echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	log "nothing listens on 127.0.0.1:$1 after 10 s"; return 1
}

log "building controlplane and loadgen"
(cd "$ROOT" && $GO build -o "$TMP/controlplane" ./cmd/controlplane && $GO build -o "$TMP/loadgen" ./cmd/loadgen)
if [ -n "${BENCH_CONTROLPLANE:-}" ]; then
	log "measuring $BENCH_CONTROLPLANE instead of this tree's controlplane"
	cp "$BENCH_CONTROLPLANE" "$TMP/controlplane"
fi
HASH=$(printf 'the-admin-password' | "$TMP/controlplane" hash-password)

# run GUESSERS: one fleet run against a fresh control plane.
run() {
	local p; p=($("$TMP/loadgen" ports 2))
	rm -f "$TMP"/switchyard.db*
	cat >"$TMP/controlplane.yaml" <<CONF
mqtt: {listen: '127.0.0.1:${p[0]}'}
http: {listen: '127.0.0.1:${p[1]}'}
storage: {path: ''}
database: {url: 'sqlite:$TMP/switchyard.db'}
log: {level: warn}
limits: {max_browsers: 50000, max_mqtt_clients: 50000, max_devices: 50000}
auth:
  anonymous: local
  users:
    - {name: admin, role: admin, password_hash: '$HASH'}
CONF
	"$TMP/controlplane" --config "$TMP/controlplane.yaml" 2>>"$TMP/controlplane.log" &
	PID=$!
	wait_port "${p[0]}"; wait_port "${p[1]}"
	"$TMP/loadgen" --label "fleet-guessers-$1" --mqtt "tcp://127.0.0.1:${p[0]}" --http "http://127.0.0.1:${p[1]}" \
		--pid "$PID" --boards 1000 --browsers 100 --rate 1 --duration "${SECS}s" --warmup "${WARMUP}s" \
		--guessers "$1" --guess-user admin
	kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; PID=
}

for _ in $(seq "$REPEAT"); do
	for g in 0 "$GUESSERS"; do
		log "fleet with $g guessers"
		run "$g"
		echo
	done
done

if [ "${BENCH_STORM:-0}" = 1 ]; then
	log "reconnect storm (go test -bench ReconnectStorm ./broker)"
	(cd "$ROOT" && $GO test -run '^$' -bench ReconnectStorm -benchtime 1x -timeout 30m ./broker)
fi
