// Package pahostore holds a paho.mqtt.golang Store that keeps nothing.
//
// With auto-reconnect, paho v1.5.1 resends the QoS 1 messages in its store
// after a reconnect (resume), and that resume races with the new
// connection's outgoing goroutine: the race detector reports the packet's
// Dup flag written by one and read by the other, and claimID can then close
// a token's channel twice ("panic: close of closed channel" in
// flowComplete; seen in CI on 2026-12-02 after a broker restart). With
// Nop, there is nothing to resume: a message in flight when the
// connection drops is not resent, and whoever sent it sees no PUBACK.
// Callers here republish their state on every connect (the e2e boards) or
// time the command out (the external-broker gateway), so nothing needs
// paho's resend.
package pahostore

import "github.com/eclipse/paho.mqtt.golang/packets"

// Nop is a paho Store that stores nothing.
type Nop struct{}

// Open does nothing.
func (Nop) Open() {}

// Put forgets message.
func (Nop) Put(string, packets.ControlPacket) {}

// Get finds nothing.
func (Nop) Get(string) packets.ControlPacket { return nil }

// All lists nothing.
func (Nop) All() []string { return nil }

// Del does nothing.
func (Nop) Del(string) {}

// Close does nothing.
func (Nop) Close() {}

// Reset does nothing.
func (Nop) Reset() {}
