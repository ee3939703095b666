// Package boardtest runs a real Mochi MQTT broker on 127.0.0.1 for tests,
// and observes it with a real Paho client. It is for tests only.
package boardtest

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pmqtt "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"switchyard/board"
	"switchyard/board/pahosession"
	"switchyard/internal/mqttnet"
	"switchyard/internal/testutil"
)

// Wait bounds every wait for an event in these helpers.
const Wait = 10 * time.Second

// Broker is a running Mochi broker.
type Broker struct {
	Addr   string // host:port
	URL    string // tcp://host:port
	Server *mqtt.Server

	ln        net.Listener
	closeOnce sync.Once
	subID     int
}

// Start starts a broker on a free port of 127.0.0.1; it is closed when the
// test ends.
func Start(t testing.TB) *Broker { return StartAt(t, "127.0.0.1:0") }

// StartAt starts a broker listening on addr, retrying for a while if the
// port is still held (as right after a restart on the same port).
func StartAt(t testing.TB, addr string) *Broker {
	t.Helper()
	var ln net.Listener
	testutil.WaitFor(t, Wait, func() error { // no event tells when a port becomes free
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumMessageExpiryInterval = 0
	caps.MaximumClientWritesPending = 256
	srv := mqtt.New(&mqtt.Options{
		InlineClient:           true,
		Capabilities:           caps,
		SysTopicResendInterval: 3600,
		Logger:                 slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		t.Fatalf("add hook: %v", err)
	}
	// As the control plane's broker: a board that reconnects at once (on
	// every update) keeps its new session.
	if err := srv.AddHook(mqttnet.NewHandOver(srv), nil); err != nil {
		t.Fatalf("add hook: %v", err)
	}
	if err := srv.AddListener(listeners.NewNet("t", ln)); err != nil {
		t.Fatalf("add listener: %v", err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	b := &Broker{Addr: ln.Addr().String(), URL: "tcp://" + ln.Addr().String(), Server: srv, ln: ln}
	t.Cleanup(b.Close)
	return b
}

// Close stops the broker; it is idempotent (Mochi's Close is not). It
// stops accepting and then closes Mochi through mqttnet.CloseServer, which
// avoids Mochi's shutdown deadlock.
func (b *Broker) Close() {
	b.closeOnce.Do(func() {
		_ = b.ln.Close()
		_ = mqttnet.CloseServer(b.Server, Wait)
	})
}

// Kill drops a client's connection abruptly, as a dead network would, so
// the broker publishes its Will. It closes the socket under the broker's
// feet rather than calling Client.Stop: a stopped client whose read loop
// is between two packets ends quietly, without its Will.
func (b *Broker) Kill(clientID string) error {
	cl, ok := b.Server.Clients.Get(clientID)
	if !ok || cl.Net.Conn == nil {
		return errors.New("no client " + clientID)
	}
	return cl.Net.Conn.Close()
}

// Watch subscribes to filter inside the broker (Mochi's inline client) and
// returns every matching message published from now on. Unlike an MQTT
// client, which the broker drops messages for when its queue is full, a
// watch sees every message, so it can follow a thousand boards.
func (b *Broker) Watch(t testing.TB, filter string) <-chan Msg {
	t.Helper()
	c := make(chan Msg, 16384)
	b.subID++
	err := b.Server.Subscribe(filter, b.subID, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		select {
		case c <- Msg{Topic: pk.TopicName, Payload: string(pk.Payload), Retained: pk.FixedHeader.Retain}:
		default:
			t.Errorf("watch %s: buffer full, dropped %s", filter, pk.TopicName)
		}
	})
	if err != nil {
		t.Fatalf("watch %s: %v", filter, err)
	}
	return c
}

// Msg is a message an Observer received.
type Msg struct {
	Topic    string
	Payload  string
	Retained bool
}

// observers numbers the observers' client ids, which must be unique.
var observers atomic.Int64

// Observer is a Paho client subscribed to a filter, as a third party would.
type Observer struct {
	C      chan Msg // every message received, in order
	client pmqtt.Client
}

// Observe connects a Paho client to url and subscribes to filter (QoS 1);
// it disconnects when the test ends.
func Observe(t testing.TB, url, filter string) *Observer {
	t.Helper()
	o := &Observer{C: make(chan Msg, 4096)}
	opts := pmqtt.NewClientOptions().AddBroker(url).
		SetClientID(fmt.Sprintf("observer-%d", observers.Add(1))).
		SetAutoReconnect(false).SetCleanSession(true).SetProtocolVersion(4).
		SetDefaultPublishHandler(func(_ pmqtt.Client, m pmqtt.Message) {
			select {
			case o.C <- Msg{Topic: m.Topic(), Payload: string(m.Payload()), Retained: m.Retained()}:
			default:
				t.Errorf("observer: buffer full, dropped %s", m.Topic())
			}
		})
	o.client = pmqtt.NewClient(opts)
	if tok := o.client.Connect(); !tok.WaitTimeout(Wait) || tok.Error() != nil {
		t.Fatalf("observer connect %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { o.client.Disconnect(100) })
	if tok := o.client.Subscribe(filter, 1, nil); !tok.WaitTimeout(Wait) || tok.Error() != nil {
		t.Fatalf("observer subscribe %s: %v", filter, tok.Error())
	}
	// Mochi sends the SUBACK before it scans its retained messages; the
	// answer to a later packet from this client comes after the scan (see
	// gate for why that matters).
	if tok := o.client.Unsubscribe("boardtest/never-subscribed"); !tok.WaitTimeout(Wait) || tok.Error() != nil {
		t.Fatalf("observer unsubscribe: %v", tok.Error())
	}
	return o
}

// Publish publishes at QoS 1 and waits for the acknowledgement.
func (o *Observer) Publish(t testing.TB, topic, payload string, retain bool) {
	t.Helper()
	if tok := o.client.Publish(topic, 1, retain, payload); !tok.WaitTimeout(Wait) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// Expect waits for a message on topic with payload, skipping others, and
// returns it.
func (o *Observer) Expect(t testing.TB, topic, payload string) Msg {
	t.Helper()
	timeout := time.After(Wait)
	for {
		select {
		case m := <-o.C:
			if m.Topic == topic && m.Payload == payload {
				return m
			}
		case <-timeout:
			t.Fatalf("no %s %q within %s", topic, payload, Wait)
		}
	}
}

// Next waits for the next message on topic, skipping others.
func (o *Observer) Next(t testing.TB, topic string) Msg {
	t.Helper()
	timeout := time.After(Wait)
	for {
		select {
		case m := <-o.C:
			if m.Topic == topic {
				return m
			}
		case <-timeout:
			t.Fatalf("no message on %s within %s", topic, Wait)
		}
	}
}

// Board is a real board running against a broker.
type Board struct {
	LED  *board.MemoryLED
	Stop func() error // cancels Run, waits for it and returns its result
}

// PahoSession returns a Paho session to url.
func PahoSession(t testing.TB, url string) board.Session {
	t.Helper()
	s, err := pahosession.New(pahosession.Options{Broker: url, ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("pahosession.New: %v", err)
	}
	return s
}

// RunBoard runs a board on sess until the test ends. It counts every 200 ms
// and reconnects within 200 ms.
func RunBoard(t testing.TB, sess board.Session, id string) *Board {
	t.Helper()
	return runBoard(t, board.Config{Session: sess}, id)
}

// RunFailover is RunBoard for a board that fails over between brokers.
func RunFailover(t testing.TB, brokers []board.Broker, id string) *Board {
	t.Helper()
	return runBoard(t, board.Config{Brokers: brokers}, id)
}

func runBoard(t testing.TB, cfg board.Config, id string) *Board {
	t.Helper()
	rb := &Board{LED: new(board.MemoryLED)}
	cfg.ID, cfg.Model, cfg.LED = id, "sim", rb.LED
	cfg.Interval, cfg.MinBackoff, cfg.MaxBackoff = 200*time.Millisecond, 20*time.Millisecond, 200*time.Millisecond
	cfg.OpTimeout = 2 * time.Second
	cfg.Log = slog.New(slog.NewTextHandler(t.Output(), nil))
	b, err := board.New(cfg)
	if err != nil {
		t.Fatalf("board.New: %v", err)
	}
	run := testutil.Go(b.Run)
	rb.Stop = sync.OnceValue(func() error { return run.Stop(Wait) })
	t.Cleanup(func() { rb.Stop() })
	return rb
}
