// Package soak holds the soak test: the real controlplane binary under a
// steady load of boards and browsers for a bounded time, checking that
// goroutines, file descriptors and memory stay flat and that no event is
// lost. `make test` runs a short version; `make soak` the long one
// (SOAK_DURATION, SOAK_BOARDS, SOAK_BROWSERS).
package soak
