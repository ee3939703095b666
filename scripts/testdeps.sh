#!/usr/bin/env bash
# testdeps.sh: make sure this machine has what `make test` needs, so that a
# fresh Debian machine needs nothing but `make test` after `git clone`.
#
# Missing Debian packages are installed with apt-get when running as root;
# otherwise the one `apt-get install` line that would install them is
# printed and the script fails. Go modules are downloaded (go mod download).
set -euo pipefail

GO=${GO:-go}

# command (or absolute path) -> Debian package that provides it.
need=()
want() { # want <package> <command> [<command>...]: the package, if none of the commands exists
	local pkg=$1; shift
	for c in "$@"; do
		if command -v "$c" >/dev/null 2>&1 || [ -x "$c" ]; then return; fi
	done
	need+=("$pkg")
}
want git git
want mosquitto-clients mosquitto_pub
want mosquitto mosquitto /usr/sbin/mosquitto         # external-broker tests and the benchmark peer
want haproxy haproxy /usr/sbin/haproxy               # the load balancer in front of control planes (cluster/)
want iproute2 ip /usr/sbin/ip /sbin/ip                # network namespaces in the fault tests
want chromium chromium /usr/bin/chromium              # real-browser tests (e2e/)
want postgresql /usr/lib/postgresql/*/bin/initdb    # the store's tests against PostgreSQL (testutil.StartPostgres)
want ca-certificates /etc/ssl/certs/ca-certificates.crt  # go mod download over HTTPS

if [ ${#need[@]} -gt 0 ]; then
	line="apt-get install -y --no-install-recommends ${need[*]}"
	if [ "$(id -u)" != 0 ]; then
		echo "make test needs Debian packages that are missing; run as root:" >&2
		echo "  $line" >&2
		exit 1
	fi
	echo "installing: ${need[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	# Packages must not start services (mosquitto would take :1883, haproxy :80): the
	# tests start their own on free ports.
	policy=/usr/sbin/policy-rc.d
	had_policy=0; [ -e "$policy" ] && had_policy=1
	if [ $had_policy = 0 ]; then
		printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"
		trap 'rm -f "$policy"' EXIT
	fi
	apt-get install -y -q --no-install-recommends "${need[@]}"
fi

if ! command -v "$GO" >/dev/null 2>&1; then
	echo "make test needs Go 1.26 (https://go.dev/dl/); not found as '$GO'" >&2
	exit 1
fi
"$GO" mod download
