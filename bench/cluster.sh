#!/usr/bin/env bash
# bench/cluster.sh (make bench-cluster): what Switchyard gains beyond one
# machine, measured on this one with cmd/loadgen:
#
#   fleet     the fleet workload (BENCH_BOARDS boards x BENCH_RATE Hz ->
#             BENCH_BROWSERS browsers) against one control plane on its
#             embedded broker, then through a three-node NATS cluster: with
#             one control plane on node 2 (fleet-nats-1cp: the cluster's
#             cost alone), then with three control planes, browsers
#             straight to the one of node 2 (fleet-nats-direct), then
#             behind haproxy, spread over the three (fleet-nats); boards on
#             node 1: p50/p99, lost, CPU of every process (loadgen's CSV);
#   failover  BENCH_FAILOVER_BOARDS simulated boards (devicefw) spread over
#             the nodes, node 1 killed (SIGKILL) while the fleet workload
#             runs: seconds until every control plane shows every board
#             online and counting again (what its browsers are sent);
#   idle      the largest idle fleet across three control planes: one
#             loadgen --idle per control plane (BENCH_IDLE_N boards and as
#             many browsers each, on its own node); memory per connection.
#
# Environment (defaults in brackets; the defaults are the issue's sizes,
# heavy: run on an otherwise idle machine):
#   BENCH_PARTS            any of: fleet failover idle [all]
#   BENCH_BOARDS [1000]  BENCH_BROWSERS [100]  BENCH_RATE [1]
#   BENCH_SECONDS [30]   BENCH_WARMUP [5]
#   BENCH_FAILOVER_BOARDS  [1000]
#   BENCH_IDLE_N           boards and browsers per control plane [6000]
#                          (each process has its own descriptor limit)
#   BENCH_OUT              results directory (cluster.csv, report.txt) [bench/results-cluster]
# A few seconds at tiny size, to check it works:
#   BENCH_BOARDS=20 BENCH_BROWSERS=5 BENCH_SECONDS=3 BENCH_WARMUP=1 \
#   BENCH_FAILOVER_BOARDS=30 BENCH_IDLE_N=50 bench/cluster.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
GO=${GO:-go}
PARTS=${BENCH_PARTS:-fleet failover idle}
BOARDS=${BENCH_BOARDS:-1000}
BROWSERS=${BENCH_BROWSERS:-100}
RATE=${BENCH_RATE:-1}
SECS=${BENCH_SECONDS:-30}
WARMUP=${BENCH_WARMUP:-5}
FAILOVER_BOARDS=${BENCH_FAILOVER_BOARDS:-1000}
IDLE_N=${BENCH_IDLE_N:-6000}
OUT=${BENCH_OUT:-$ROOT/bench/results-cluster}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-bench-cluster.XXXXXX")
. "$ROOT/deploy/cluster/lib.sh"
cleanup() { cluster_stop; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
mkdir -p "$OUT"
CSV=$OUT/cluster.csv
REPORT=$OUT/report.txt
: >"$CSV"
: >"$REPORT"
say() { printf '%s\n' "$*" | tee -a "$REPORT"; }
has() { case " $PARTS " in *" $1 "*) return 0 ;; esac; return 1; }

cluster_build
LOADGEN=$TMP/bin/loadgen
FLEET=(--boards "$BOARDS" --browsers "$BROWSERS" --rate "$RATE" --duration "${SECS}s" --warmup "${WARMUP}s")
say "# bench/cluster.sh $(date -u +%FT%TZ) on $(nproc) cores: $PARTS"

if has fleet; then
	# One control plane on its embedded broker.
	p=($(ports 2))
	cat >"$TMP/embedded.yaml" <<CONF
mqtt: {listen: '127.0.0.1:${p[0]}'}
http: {listen: '127.0.0.1:${p[1]}'}
storage: {path: ''}
database: {url: 'sqlite:$TMP/embedded.db'}
log: {level: warn}
limits: {max_browsers: 50000, max_mqtt_clients: 50000, max_devices: 50000}
CONF
	"$TMP/bin/controlplane" --config "$TMP/embedded.yaml" 2>>"$TMP/embedded.log" &
	epid=$!; CLUSTER_PIDS+=("$epid")
	wait_http "http://127.0.0.1:${p[1]}/healthz" 60
	clog "fleet workload, embedded broker"
	"$LOADGEN" "${FLEET[@]}" --label fleet-embedded --csv "$CSV" \
		--mqtt "tcp://127.0.0.1:${p[0]}" --http "http://127.0.0.1:${p[1]}" --pid "$epid" | tee -a "$REPORT"
	cluster_stop
fi

if has fleet || has failover; then
	nats_start
	head -c 32 /dev/urandom >"$TMP/session.key"
fi

if has fleet; then
	# The cluster's cost alone: one control plane on node 2, the boards on
	# node 1, so every event crosses a route; as the embedded run, one
	# control plane does all the work.
	controlplane_start solo "${NATS_URLS[1]}" "database: {url: 'sqlite:$TMP/solo.db'}"
	clog "fleet workload through the NATS cluster, one control plane (node 2), boards on node 1"
	"$LOADGEN" "${FLEET[@]}" --label fleet-nats-1cp --csv "$CSV" --id-prefix lgs \
		--mqtt "tcp://127.0.0.1:${NATS_MQTT_PORT[0]}" --http "http://127.0.0.1:$CP_PORT" \
		--pid "$(IFS=,; echo "${NATS_PID[*]}"),$CP_PID" | tee -a "$REPORT"
	kill -TERM "$CP_PID"; wait "$CP_PID" || true
fi

if has fleet || has failover; then
	backends=() cp_ports=() cp_pids=()
	for i in 0 1 2; do
		controlplane_start "cp$((i + 1))" "${NATS_URLS[$i]}" "database: {url: 'sqlite:$TMP/cp$((i + 1)).db'}"
		backends+=("127.0.0.1:$CP_PORT"); cp_ports+=("$CP_PORT"); cp_pids+=("$CP_PID")
	done
	haproxy_start "${backends[@]}"
	pids=$(IFS=,; echo "${NATS_PID[*]},${cp_pids[*]},$LB_PID")
fi

if has fleet; then
	clog "fleet workload through the NATS cluster, browsers straight to cp2 (no balancer)"
	"$LOADGEN" "${FLEET[@]}" --label fleet-nats-direct --csv "$CSV" --id-prefix lgd \
		--mqtt "tcp://127.0.0.1:${NATS_MQTT_PORT[0]}" --http "http://127.0.0.1:${cp_ports[1]}" --pid "$pids" | tee -a "$REPORT"
	clog "fleet workload through the NATS cluster and haproxy"
	"$LOADGEN" "${FLEET[@]}" --label fleet-nats --csv "$CSV" --id-prefix lgn \
		--mqtt "tcp://127.0.0.1:${NATS_MQTT_PORT[0]}" --http "http://127.0.0.1:$LB_PORT" --pid "$pids" | tee -a "$REPORT"
fi

# all_back SINCE_FILE: every control plane lists every fo-* board online
# with a count above the one in SINCE_FILE (id -> count, from jq).
all_back() {
	local port
	for port in "${cp_ports[@]}"; do
		curl -sf "http://127.0.0.1:$port/api/devices" |
			jq -e --argjson n "$FAILOVER_BOARDS" --slurpfile since "$1" '
				[.[] | select(.id | startswith("fo"))] as $b
				| ($b | length) == $n
				and all($b[]; .online and (.count // -1) > (($since[0][.id]) // -1))' >/dev/null || return 1
	done
}

if has failover; then
	per=$(((FAILOVER_BOARDS + 2) / 3)); FAILOVER_BOARDS=$((per * 3))
	for i in 0 1 2; do fleet_start "fo$((i + 1))" "$per" "${NATS_URLS[$i]}"; done
	clog "failover: waiting for $FAILOVER_BOARDS boards on every control plane"
	echo '{}' >"$TMP/zero.json"
	end=$((SECONDS + 300))
	until all_back "$TMP/zero.json"; do [ $SECONDS -lt $end ] || { say "failover: boards never all online"; exit 1; }; sleep 1; done
	# Under the fleet workload (boards on node 1, browsers through haproxy).
	# Node n1 is killed during the run: its pid is not sampled.
	survivors=$(IFS=,; echo "${NATS_PID[1]},${NATS_PID[2]},${cp_pids[*]},$LB_PID")
	"$LOADGEN" "${FLEET[@]}" --duration "$((SECS + 60))s" --label failover-load --id-prefix lgf \
		--mqtt "tcp://127.0.0.1:${NATS_MQTT_PORT[1]}" --http "http://127.0.0.1:$LB_PORT" --pid "$survivors" >"$TMP/failover-load.txt" 2>&1 &
	lg=$!
	sleep "$WARMUP"
	curl -sf "http://127.0.0.1:${cp_ports[1]}/api/devices" | jq 'map(select(.id | startswith("fo")) | {(.id): (.count // -1)}) | add' >"$TMP/before.json"
	start=$(date +%s.%N)
	kill -KILL "${NATS_PID[0]}"
	clog "failover: node n1 killed"
	end=$((SECONDS + 120)) back=1
	until all_back "$TMP/before.json"; do [ $SECONDS -lt $end ] || { back=0; break; }; sleep 0.2; done
	secs=$(echo "$(date +%s.%N) - $start" | bc)
	if [ $back = 1 ]; then
		say "failover: node n1 killed under load; $FAILOVER_BOARDS boards online and counting on all 3 control planes after ${secs} s"
	else
		say "failover: node n1 killed under load; NOT every board online and counting on every control plane after ${secs} s"
	fi
	for i in 0 1 2; do
		say "  cp$((i + 1)) /healthz: $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${cp_ports[$i]}/healthz")"
	done
	wait "$lg" || true
	say "  the fleet workload meanwhile (its boards on node 2):"
	tee -a "$REPORT" <"$TMP/failover-load.txt"
fi
cluster_stop

if has idle; then
	nats_start
	cp_pids=() cp_ports=()
	for i in 0 1 2; do
		controlplane_start "idle$((i + 1))" "${NATS_URLS[$i]}" "database: {url: 'sqlite:$TMP/idle$((i + 1)).db'}"
		cp_ports+=("$CP_PORT"); cp_pids+=("$CP_PID")
	done
	clog "idle: $IDLE_N boards and $IDLE_N browsers on each of three control planes"
	lgs=()
	for i in 0 1 2; do
		"$LOADGEN" --idle --boards "$IDLE_N" --browsers "$IDLE_N" --id-prefix "idle$((i + 1))" --label "idle-cp$((i + 1))" \
			--mqtt "tcp://127.0.0.1:${NATS_MQTT_PORT[$i]}" --http "http://127.0.0.1:${cp_ports[$i]}" \
			--pid "${cp_pids[$i]},${NATS_PID[$i]}" >"$TMP/idle$i.txt" 2>&1 &
		lgs+=("$!")
	done
	for i in 0 1 2; do
		wait "${lgs[$i]}" || say "idle: loadgen for cp$((i + 1)) failed"
		say "idle, control plane cp$((i + 1)) (and its NATS node):"
		tee -a "$REPORT" <"$TMP/idle$i.txt"
	done
	cluster_stop
fi
say "results: $CSV, $REPORT"
