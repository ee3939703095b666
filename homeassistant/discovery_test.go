package homeassistant

import (
	"encoding/json"
	"flag"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"switchyard/devices"
	"switchyard/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testutil.GoldenJSON(t, name, got, *update)
}

func TestConfigsGolden(t *testing.T) {
	tp := devices.MustTopics("devices")
	info, err := devices.ParseInfo([]byte(`{"id":"kitchen","firmware":"devicefw 1.2.0","board":"esp32","name":"Kitchen light"}`))
	if err != nil {
		t.Fatal(err)
	}
	known := devices.Device{ID: "kitchen", Info: info}
	msgs := Configs(tp, "homeassistant", &known)
	if msgs[0].Topic != "homeassistant/light/kitchen/led/config" || msgs[1].Topic != "homeassistant/sensor/kitchen/count/config" {
		t.Errorf("topics %s, %s", msgs[0].Topic, msgs[1].Topic)
	}
	golden(t, "light.json", msgs[0].Payload)
	golden(t, "sensor.json", msgs[1].Payload)

	// Before its info arrives: name is the id, model and sw_version left out.
	bare := devices.Device{ID: "b-1"}
	golden(t, "light-bare.json", Configs(devices.MustTopics("home/boards"), "ha", &bare)[0].Payload)

	// Every key Home Assistant documents for these entities, nothing else.
	var m map[string]any
	json.Unmarshal(msgs[0].Payload, &m)
	for _, k := range []string{"name", "unique_id", "command_topic", "state_topic", "payload_on", "payload_off",
		"availability_topic", "payload_available", "payload_not_available", "device"} {
		if _, ok := m[k]; !ok {
			t.Errorf("light lacks %q", k)
		}
	}
	if len(m) != 10 {
		t.Errorf("light has %d keys, want 10", len(m))
	}
}

type recorder struct {
	mu   sync.Mutex
	msgs []Message
	got  chan struct{}
}

func (r *recorder) Publish(topic string, payload []byte, retain bool, qos byte) error {
	r.mu.Lock()
	r.msgs = append(r.msgs, Message{topic, payload})
	r.mu.Unlock()
	r.got <- struct{}{}
	return nil
}

func (r *recorder) wait(t *testing.T, n int) []Message {
	t.Helper()
	for range n {
		select {
		case <-r.got:
		case <-time.After(5 * time.Second):
			t.Fatalf("fewer than %d publishes", n)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.msgs
	r.msgs = nil
	return out
}

func TestDiscoveryLifecycle(t *testing.T) {
	r := &recorder{got: make(chan struct{}, 100)}
	d := New(devices.MustTopics(""), "", r, nil)
	defer d.Close()
	dev := devices.Device{ID: "b1"}
	d.DeviceChanged(dev)
	if msgs := r.wait(t, 2); len(msgs[0].Payload) == 0 {
		t.Fatal("no config published for a new board")
	}
	d.DeviceChanged(dev) // unchanged: nothing
	fleet := func() []devices.Device { return []devices.Device{dev} }
	d.HAStatus([]byte("offline"), fleet)
	d.HAStatus([]byte("online"), fleet) // all again
	if msgs := r.wait(t, 2); msgs[0].Topic != "homeassistant/light/b1/led/config" {
		t.Errorf("republish: %v", msgs)
	}
	d.DeviceRemoved("b1")
	for _, m := range r.wait(t, 2) {
		if len(m.Payload) != 0 {
			t.Errorf("removal published %s", m.Payload)
		}
	}
	select {
	case <-r.got:
		t.Error("an unchanged board or an offline H/status published something")
	default:
	}
	d.Close()
}

// gate is a Publisher that hands every message to the test and waits until
// the test takes it (or open is closed).
type gate struct {
	got  chan Message
	open chan struct{}
}

func (g *gate) Publish(topic string, payload []byte, retain bool, qos byte) error {
	select {
	case g.got <- Message{topic, payload}:
	case <-g.open:
	}
	return nil
}

func (g *gate) take(t *testing.T) Message {
	t.Helper()
	select {
	case m := <-g.got:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no publish")
	}
	return Message{}
}

// A burst of "online" while a republish is under way queues nothing and
// costs one more republish, not one per message; the fleet is copied by
// the sender, never by the caller of HAStatus (a broker hook).
func TestHAStatusBurstCoalesces(t *testing.T) {
	g := &gate{got: make(chan Message), open: make(chan struct{})}
	d := New(devices.MustTopics(""), "", g, nil)
	defer d.Close()
	var copies atomic.Int32
	fleet := func() []devices.Device {
		copies.Add(1)
		return []devices.Device{{ID: "b1"}, {ID: "b2"}}
	}
	const perRound = 4 // two boards, two configs each

	d.HAStatus([]byte("online"), fleet)
	first := g.take(t) // the sender copied the fleet and waits in its first publish
	const burst = 1000
	for range burst {
		d.HAStatus([]byte("online"), fleet)
	}
	if got := copies.Load(); got != 1 {
		t.Errorf("fleet copied %d times during the burst, want 1 (the round under way)", got)
	}
	d.mu.Lock()
	queued := len(d.queue)
	d.mu.Unlock()
	if queued != 0 {
		t.Errorf("%d messages queued by %d online messages, want 0", queued, burst)
	}

	msgs := []Message{first}
	for range 2*perRound - 1 { // the rest of this round and one more
		msgs = append(msgs, g.take(t))
	}
	close(g.open) // any further round publishes without waiting, and is counted below
	d.Close()
	if got := copies.Load(); got != 2 {
		t.Errorf("fleet copied %d times for %d online messages, want 2 (one round under way, one for the burst)", got, burst+1)
	}
	for i, m := range msgs {
		if want := msgs[i%perRound].Topic; m.Topic != want || len(m.Payload) == 0 {
			t.Errorf("publish %d: %s %d bytes, want a config on %s", i, m.Topic, len(m.Payload), want)
		}
	}
}
