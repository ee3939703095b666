// Package devices is the Switchyard domain: device ids, MQTT topics, payloads,
// the WebSocket event wire format and the fleet state the control plane keeps.
//
// It is the wire contract as code. It does no I/O, starts no goroutines and
// never reads the clock: callers pass time in. It imports only small parts of
// the standard library (no encoding/json, no reflection), so the board
// firmware core can use it under TinyGo too.
//
// Topic strings are built and parsed in topics.go and nowhere else (a test
// in internal/archtest holds the module to that), and the topic kinds are
// one table there.
package devices
