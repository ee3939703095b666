// Package cluster holds no code, only tests: Switchyard across several
// processes, as it is deployed beyond one machine, on loopback. Real
// engines run as separate processes (a three-node NATS cluster with MQTT,
// two bridged Mosquittos, haproxy in front of control planes), with the
// real controlplane binaries in external broker mode and devicefw fleets
// of simulated boards. The tests kill and restart those processes and
// check what a user sees: every board back, every dashboard agreeing,
// commands from any control plane reaching any board, and the system
// saying so (/healthz 503) when it cannot work.
//
// The topologies are the ones deploy/cluster/ runs by hand (make
// cluster-demo) and configures for real hosts.
package cluster
