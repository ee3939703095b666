package extbroker_test

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"switchyard/extbroker"
	"switchyard/internal/testutil"
)

// On a three-node NATS cluster: the client connects to the first node of
// its list and sees a board's retained led published at another node,
// and again at its repeated subscription (NATS resends retained messages
// for an identical filter). With two nodes killed the one left has no
// JetStream quorum: it delivers nothing (the probe tells) or drops the
// connection, and refuses new ones; the client stays unhealthy.
func TestNatsProbeAndRetained(t *testing.T) {
	c := testutil.StartNatsCluster(t)
	retain(t, c.URL(1), "devices/b1/led", "ON")
	logs := make(records, 4096)
	x, err := extbroker.New(extbroker.Config{URL: c.URLs(0), ClientID: "cp-nats", Resubscribe: 500 * time.Millisecond,
		ProbeInterval: 500 * time.Millisecond, ProbeTimeout: 2 * time.Second, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	got := make(messages, 64)
	if err := x.Subscribe("devices/#", got.handle); err != nil {
		t.Fatal(err)
	}
	connected(t, x)
	if u := connectedTo(t, logs); u != c.URL(0) {
		t.Fatalf("connected to %s, want %s", u, c.URL(0))
	}
	for _, what := range []string{"the retained led", "the retained led again"} {
		if m := testutil.Recv(t, got, wait, what); m.Topic != "devices/b1/led" || string(m.Payload) != "ON" || !m.Retain {
			t.Fatalf("%s: got %s %q retain %v, want devices/b1/led ON retained", what, m.Topic, m.Payload, m.Retain)
		}
	}

	c.Kill(1)
	c.Kill(2)
	// Either the probe tells, or (with js_api_timeout 1s, as
	// testutil's nodes run) the node left closes the connection itself
	// once a JetStream request of the session fails.
	logged(t, logs, time.Minute, "the connection not working", func(a map[string]string) bool {
		return a["url"] == c.URL(0) && (strings.HasPrefix(a["msg"], "external broker not working: probe not answered in 2s") ||
			strings.HasPrefix(a["msg"], "external broker connection lost"))
	})
	// The node left is tried again, and does not work.
	logged(t, logs, time.Minute, "a failed attempt at the node left", func(a map[string]string) bool {
		return strings.HasPrefix(a["msg"], "cannot connect") && a["url"] == c.URL(0)
	})
	if err := x.Healthy(); !errors.Is(err, extbroker.ErrNotConnected) {
		t.Errorf("Healthy = %v with no quorum, want ErrNotConnected", err)
	}
}
