# deploy/cluster/lib.sh: start the topologies cluster/'s tests run, from a
# shell, on one machine (loopback): a three-node NATS cluster with MQTT,
# control planes in external mode, haproxy in front of them, a simulated
# fleet. Sourced by deploy/cluster/demo.sh and bench/cluster.sh; not run
# by itself.
#
# The caller sets ROOT (the repository), TMP (a scratch directory it
# removes) and GO, and calls cluster_stop on exit. Every process started
# here is remembered in CLUSTER_PIDS and stopped by cluster_stop.

CLUSTER_PIDS=()

clog() { printf '== %s\n' "$*" >&2; }

# cluster_build [loadgen]: bin/controlplane, bin/devicefw (and bin/loadgen)
# into $TMP/bin, and nats-server at go.mod's version, built once into
# ${XDG_CACHE_HOME:-$HOME/.cache}/switchyard/ (the same cache the tests
# use); sets NATS_SERVER.
cluster_build() {
	mkdir -p "$TMP/bin"
	clog "building controlplane, devicefw and loadgen"
	(cd "$ROOT" && $GO build -o "$TMP/bin/controlplane" ./cmd/controlplane &&
		$GO build -o "$TMP/bin/devicefw" ./cmd/devicefw &&
		$GO build -o "$TMP/bin/loadgen" ./cmd/loadgen)
	local v; v=$(cd "$ROOT" && $GO list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2)
	local cache=${XDG_CACHE_HOME:-$HOME/.cache}/switchyard
	NATS_SERVER=$cache/nats-server-$v
	if [ ! -x "$NATS_SERVER" ]; then
		clog "building nats-server $v into $cache (once; about a minute)"
		mkdir -p "$cache"
		(cd "$ROOT" && $GO build -o "$NATS_SERVER.tmp$$" github.com/nats-io/nats-server/v2) && mv "$NATS_SERVER.tmp$$" "$NATS_SERVER"
	fi
}

# ports N: N free loopback ports, one a line.
ports() { "$TMP/bin/loadgen" ports "$1"; }

# mqtt_ping PORT: succeeds when the broker on 127.0.0.1:PORT accepts an
# MQTT CONNECT (a NATS node listens before JetStream lets it serve MQTT).
mqtt_ping() {
	local id="ping$((1000 + RANDOM % 9000))" # 8 bytes: remaining length 0x14
	timeout 6 bash -c '
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf "\x10\x14\x00\x04MQTT\x04\x02\x00\x1e\x00\x08%s" "$2" >&3
		ack=$(head -c 4 <&3 | od -An -tx1 | tr -d " \n")
		printf "\xe0\x00" >&3
		[ "$ack" = 20020000 ]' _ "$1" "$id" 2>/dev/null
}

# wait_mqtt PORT SECONDS [PID]: until mqtt_ping PORT succeeds (fails at
# once when process PID has exited).
wait_mqtt() {
	local end=$((SECONDS + $2))
	until mqtt_ping "$1"; do
		[ $SECONDS -lt $end ] || { clog "no MQTT answer on 127.0.0.1:$1 after $2 s"; return 1; }
		[ -z "${3:-}" ] || kill -0 "$3" 2>/dev/null || { clog "process $3 exited (see its log in $TMP)"; return 1; }
		sleep 0.5
	done
}

# wait_http URL SECONDS: until URL answers 200.
wait_http() {
	local end=$((SECONDS + $2))
	until [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" = 200 ]; do
		[ $SECONDS -lt $end ] || { clog "$1 does not answer 200 after $2 s"; return 1; }
		sleep 0.2
	done
}

# nats_start: three nodes n1..n3 on loopback, routed to each other,
# JetStream and MQTT on (stream_replicas 3, js_api_timeout 1s), as deploy/cluster/nats-server.conf
# configures three hosts. Sets NATS_MQTT_PORT (array), NATS_PID (array) and
# NATS_URLS (array: the URL list starting at node i).
nats_start() {
	local p; p=($(ports 9))
	local i j routes
	NATS_MQTT_PORT=("${p[0]}" "${p[1]}" "${p[2]}")
	local route=("${p[3]}" "${p[4]}" "${p[5]}") client=("${p[6]}" "${p[7]}" "${p[8]}")
	for i in 0 1 2; do
		routes=""
		for j in 0 1 2; do [ $j = $i ] || routes="$routes${routes:+, }\"nats-route://127.0.0.1:${route[$j]}\""; done
		mkdir -p "$TMP/n$((i + 1))"
		cat >"$TMP/n$((i + 1)).conf" <<CONF
server_name: n$((i + 1))
listen: "127.0.0.1:${client[$i]}"
jetstream { store_dir: "$TMP/n$((i + 1))/jetstream", max_memory_store: 256MB, max_file_store: 4GB }
cluster { name: switchyard, listen: "127.0.0.1:${route[$i]}", routes: [$routes] }
mqtt { listen: "127.0.0.1:${NATS_MQTT_PORT[$i]}", stream_replicas: 3, js_api_timeout: 1s }
CONF
		nats_run $i
	done
	for i in 0 1 2; do wait_mqtt "${NATS_MQTT_PORT[$i]}" 60 "${NATS_PID[$i]}" || return 1; done
	NATS_URLS=()
	for i in 0 1 2; do
		NATS_URLS[$i]="tcp://127.0.0.1:${NATS_MQTT_PORT[$i]},tcp://127.0.0.1:${NATS_MQTT_PORT[$(((i + 1) % 3))]},tcp://127.0.0.1:${NATS_MQTT_PORT[$(((i + 2) % 3))]}"
	done
	clog "NATS cluster up: MQTT on ${NATS_MQTT_PORT[*]}"
}

# nats_run I: start node I (0-based) with its configuration.
nats_run() {
	"$NATS_SERVER" -c "$TMP/n$(($1 + 1)).conf" 2>>"$TMP/n$(($1 + 1)).log" &
	NATS_PID[$1]=$!
	CLUSTER_PIDS+=("$!")
}

# controlplane_start NAME BROKERS [YAML]: a control plane in external mode
# on a free port, its directory $TMP/NAME (the shared session.key is
# copied there when $TMP/session.key exists). Sets CP_PORT and CP_PID.
controlplane_start() {
	local name=$1 brokers=$2 more=${3:-}
	CP_PORT=$(ports 1)
	mkdir -p "$TMP/$name"
	[ -f "$TMP/session.key" ] && cp "$TMP/session.key" "$TMP/$name/session.key"
	cat >"$TMP/$name/config.yaml" <<CONF
mqtt: {mode: external, url: '$brokers', client_id: '$name'}
http: {listen: '127.0.0.1:$CP_PORT'}
storage: {path: '$TMP/$name/retained.json'}
log: {level: info}
limits: {max_browsers: 50000, max_devices: 50000}
$more
CONF
	"$TMP/bin/controlplane" --config "$TMP/$name/config.yaml" 2>>"$TMP/$name.log" &
	CP_PID=$!
	CLUSTER_PIDS+=("$!")
	wait_http "http://127.0.0.1:$CP_PORT/healthz" 60
}

# haproxy_start BACKEND...: haproxy on a free port in front of the
# backends (host:port), as deploy/cluster/haproxy.cfg does for real hosts.
# Sets LB_PORT and LB_PID.
haproxy_start() {
	local hp; hp=$(command -v haproxy || echo /usr/sbin/haproxy)
	[ -x "$hp" ] || { clog "haproxy not found: apt-get install haproxy"; return 1; }
	LB_PORT=$(ports 1)
	local i=0 b lim; lim=$(ulimit -n)
	# Two descriptors per connection (browser side, backend side).
	local maxconn=10000; [ "$lim" = unlimited ] || [ $((lim / 2 - 100)) -ge $maxconn ] || maxconn=$((lim / 2 - 100))
	{
		cat <<CONF
global
  maxconn $maxconn
defaults
  mode http
  timeout connect 2s
  timeout client 1h
  timeout server 1h
  timeout tunnel 1h
  timeout http-request 10s
  option redispatch
  retries 3
frontend switchyard
  bind 127.0.0.1:$LB_PORT
  default_backend controlplanes
backend controlplanes
  balance roundrobin
  option httpchk GET /healthz
  http-check expect status 200
  default-server inter 1s fall 2 rise 1
CONF
		for b in "$@"; do i=$((i + 1)); echo "  server cp$i $b check"; done
	} >"$TMP/haproxy.cfg"
	"$hp" -db -f "$TMP/haproxy.cfg" 2>>"$TMP/haproxy.log" &
	LB_PID=$!
	CLUSTER_PIDS+=("$!")
	wait_http "http://127.0.0.1:$LB_PORT/healthz" 30
}

# fleet_start PREFIX N BROKERS: devicefw --sim N (ids PREFIX-1..N). Sets
# FLEET_PID.
fleet_start() {
	"$TMP/bin/devicefw" --sim "$2" --id "$1" --broker "$3" 2>>"$TMP/fleet-$1.log" &
	FLEET_PID=$!
	CLUSTER_PIDS+=("$!")
}

# cluster_stop: SIGTERM to everything started, SIGKILL after 5 s.
cluster_stop() {
	local p
	for p in "${CLUSTER_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${CLUSTER_PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	CLUSTER_PIDS=()
}
