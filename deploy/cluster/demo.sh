#!/usr/bin/env bash
# deploy/cluster/demo.sh (make cluster-demo): Switchyard beyond one
# machine, on this one: a three-node NATS cluster with MQTT, two control
# planes in external mode behind haproxy (sharing a session key), and a
# simulated fleet spread over the nodes. It prints the dashboard URL and
# runs until Ctrl-C, then stops everything. Try killing a node meanwhile:
# its pid is printed.
#
# Needs Go and haproxy (apt-get install haproxy); nats-server is built
# from go.mod's pinned version once into ~/.cache/switchyard.
#
# Environment: DEMO_BOARDS (simulated boards, 30), DEMO_DIR (keep the
# configuration and logs there instead of a temporary directory).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
GO=${GO:-go}
BOARDS=${DEMO_BOARDS:-30}
if [ -n "${DEMO_DIR:-}" ]; then
	TMP=$DEMO_DIR; mkdir -p "$TMP"; KEEP=1
else
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/switchyard-cluster.XXXXXX"); KEEP=0
fi
. "$ROOT/deploy/cluster/lib.sh"
cleanup() { cluster_stop; [ $KEEP = 1 ] || rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster_build
nats_start
head -c 32 /dev/urandom >"$TMP/session.key" # one key: a login is valid on both
backends=()
for i in 1 2; do
	controlplane_start "cp$i" "${NATS_URLS[$((i - 1))]}"
	backends+=("127.0.0.1:$CP_PORT")
	clog "control plane cp$i: http://127.0.0.1:$CP_PORT/ (pid $CP_PID) on ${NATS_URLS[$((i - 1))]%%,*} first"
done
haproxy_start "${backends[@]}"
per=$(((BOARDS + 2) / 3))
for i in 0 1 2; do fleet_start "demo$((i + 1))" "$per" "${NATS_URLS[$i]}"; done

cat <<MSG

  Dashboard (through haproxy): http://127.0.0.1:$LB_PORT/
  NATS nodes: n1 pid ${NATS_PID[0]}, n2 pid ${NATS_PID[1]}, n3 pid ${NATS_PID[2]}
              (kill -9 one: boards and control planes fail over)
  Logs and configuration: $TMP
  Ctrl-C stops everything.

MSG
wait
