package broker

import (
	"bufio"
	"bytes"
	"net"
	"path/filepath"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// TestMochiRetainedSweepStopped fails when a Mochi upgrade renames the
// ticker stopRetainedSweep stops: see expiry.go for why it is stopped.
func TestMochiRetainedSweepStopped(t *testing.T) {
	srv := mqtt.New(nil)
	defer srv.Close()
	if err := stopRetainedSweep(srv); err != nil {
		t.Fatalf("stopRetainedSweep: %v (see broker/expiry.go)", err)
	}
}

func TestRetainExpiryExpiresOnlyDueMessages(t *testing.T) {
	srv := mqtt.New(nil)
	defer srv.Close()
	e := newRetainExpiry(srv, nil)
	retain := func(topic, payload string, expiry int64) {
		pk := packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Retain: true},
			TopicName:   topic, Payload: []byte(payload), ProtocolVersion: 5, Expiry: expiry,
		}
		srv.Topics.RetainMessage(pk)
		e.OnRetainMessage(nil, pk, 1)
	}
	retain("a/expires", "x", 100)
	retain("b/never", "y", 0)
	retain("c/later", "z", 200)
	retain("d/replaced", "old", 100)
	retain("d/replaced", "new", 0) // a message without expiry replaced it
	retain("e/cleared", "old", 100)
	retain("e/cleared", "", 0) // cleared by an empty retained message

	for _, step := range []struct {
		now  int64
		want string // the retained topics left, in order
	}{
		{100, "a/expires b/never c/later d/replaced"}, // expired only once now is past the expiry
		{101, "b/never c/later d/replaced"},
		{201, "b/never d/replaced"},
		{1 << 40, "b/never d/replaced"},
	} {
		e.expire(step.now)
		var got string
		for _, topic := range []string{"a/expires", "b/never", "c/later", "d/replaced", "e/cleared"} {
			if _, ok := srv.Topics.Retained.Get(topic); ok {
				if got != "" {
					got += " "
				}
				got += topic
			}
		}
		if got != step.want {
			t.Errorf("after expire(%d): retained %q, want %q", step.now, got, step.want)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.due) != 0 {
		t.Errorf("still tracked after every expiry passed: %v", e.due)
	}
}

// mqtt5Retain publishes payload retained on topic with a message expiry
// interval of expiry seconds, as an MQTT 5 client (paho.mqtt.golang speaks
// 3.1.1 only), and returns once the broker has handled it (its answer to a
// ping sent after the publish).
func mqtt5Retain(t *testing.T, addr, topic, payload string, expiry uint32) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(wait))
	var out bytes.Buffer
	connect := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Connect},
		ProtocolVersion: 5,
		Connect:         packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 30, ClientIdentifier: "mqtt5-publisher"},
	}
	if err := connect.ConnectEncode(&out); err != nil {
		t.Fatal(err)
	}
	pub := packets.Packet{
		FixedHeader:     packets.FixedHeader{Type: packets.Publish, Retain: true},
		ProtocolVersion: 5,
		TopicName:       topic,
		Payload:         []byte(payload),
		Properties:      packets.Properties{MessageExpiryInterval: expiry},
	}
	if err := pub.PublishEncode(&out); err != nil {
		t.Fatal(err)
	}
	ping := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pingreq}, ProtocolVersion: 5}
	if err := ping.PingreqEncode(&out); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(out.Bytes()); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	for { // CONNACK, then PINGRESP: each a fixed header byte and a length
		h, err := r.ReadByte()
		if err != nil {
			t.Fatalf("waiting for the broker's answers: %v", err)
		}
		n, err := r.ReadByte() // both answers are short: a one-byte length
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Discard(int(n)); err != nil {
			t.Fatal(err)
		}
		if h>>4 == packets.Connack && n >= 2 {
			continue
		}
		if h>>4 == packets.Pingresp {
			return
		}
		t.Fatalf("unexpected packet type %d from the broker", h>>4)
	}
}

// TestRetainedMessageWithExpiryExpires: an MQTT 5 client's retained message
// with an expiry is gone once it has expired, from memory and from the
// stored log; retained messages without one stay.
func TestRetainedMessageWithExpiryExpires(t *testing.T) {
	path := filepath.Join(t.TempDir(), "retained.log")
	b := startBroker(t, Config{StoragePath: path})
	if b.expiry == nil {
		t.Fatal("the broker kept Mochi's sweep (see TestMochiRetainedSweepStopped)")
	}
	c := connect(t, "tcp://"+b.Addr().String(), "b1")
	publish(t, c, "devices/b1/led", "ON", true)
	mqtt5Retain(t, b.Addr().String(), "weather/now", "sunny", 1)
	if _, ok := b.srv.Topics.Retained.Get("weather/now"); !ok {
		t.Fatal("the message with an expiry was not retained at all")
	}
	// No event says a message expired: poll, with a deadline.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, ok := b.srv.Topics.Retained.Get("weather/now"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the retained message with a 1 s expiry was still there after 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := retained(t, "tcp://"+b.Addr().String(), "devices/#", "devices/b1/led"); got["devices/b1/led"] != "ON" {
		t.Errorf("a retained message without expiry: got %v", got)
	}
	c.Disconnect(0)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b2 := startBroker(t, Config{StoragePath: path})
	if _, ok := b2.srv.Topics.Retained.Get("weather/now"); ok {
		t.Error("the expired message came back from the stored log after a restart")
	}
	if pk, ok := b2.srv.Topics.Retained.Get("devices/b1/led"); !ok || string(pk.Payload) != "ON" {
		t.Errorf("devices/b1/led after a restart: %q, %v; want ON", pk.Payload, ok)
	}
}
