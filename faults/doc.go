// Package faults holds fault tests: the real controlplane and devicefw
// binaries, on loopback, under kill -9, frozen boards and broker restarts.
package faults
