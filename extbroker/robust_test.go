package extbroker_test

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"switchyard/auth"
	"switchyard/extbroker"
	"switchyard/internal/testutil"
)

// logged reads log records until one satisfies match, and returns its
// attributes (and "msg"); it fails the test after timeout.
func logged(t *testing.T, logs records, timeout time.Duration, what string, match func(attrs map[string]string) bool) map[string]string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case rec := <-logs:
			attrs := map[string]string{"msg": rec.Message}
			rec.Attrs(func(a slog.Attr) bool {
				attrs[a.Key] = a.Value.String()
				return true
			})
			if match(attrs) {
				return attrs
			}
		case <-deadline:
			t.Fatalf("never logged: %s", what)
			return nil
		}
	}
}

// anonBroker runs the embedded broker on a free loopback port, anonymous
// clients welcome under devices/ and switchyard/ (so the probe topic) and
// refused anything else.
func anonBroker(t *testing.T) string {
	t.Helper()
	b := embedded(t, auth.Config{Anonymous: auth.AnonOn, ExtraPrefixes: []string{"switchyard"}})
	return "tcp://" + b.Addr().String()
}

// noSubackBroker accepts MQTT connections and answers CONNECT, then
// nothing: a subscription is never granted.
func noSubackBroker(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex // guards conns
	var conns []net.Conn
	wg.Add(1)
	go func() { // ends when the listener closes
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { // ends when the connection closes
				defer wg.Done()
				if readPacket(c) == nil { // CONNECT
					_, _ = c.Write([]byte{0x20, 2, 0, 0}) // CONNACK, accepted
				}
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "tcp://" + ln.Addr().String()
}

// readPacket reads one MQTT packet from c and discards it.
func readPacket(c net.Conn) error {
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil { // fixed header
		return err
	}
	n, mult := 0, 1
	for {
		if _, err := io.ReadFull(c, b); err != nil {
			return err
		}
		n += int(b[0]&0x7f) * mult
		if b[0]&0x80 == 0 {
			break
		}
		mult *= 128
	}
	_, err := io.CopyN(io.Discard, c, int64(n))
	return err
}

// A node that never grants a subscription, and one that refuses a
// filter, are no working connection: the client says why and goes on to
// the next URL, and is healthy only on the node that grants everything.
func TestUngrantedSubscriptionTriesTheNext(t *testing.T) {
	mute, refusing := noSubackBroker(t), anonBroker(t)
	good := testutil.StartMosquitto(t, false).URL
	logs := make(records, 1024)
	x, err := extbroker.New(extbroker.Config{URL: mute + "," + refusing + "," + good, Timeout: 500 * time.Millisecond, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"devices/#", "other/#"} {
		if err := x.Subscribe(f, func(extbroker.Message) {}); err != nil {
			t.Fatal(err)
		}
	}
	x.Start()
	defer x.Close()
	cannot := map[string]string{} // url → why
	at := logged(t, logs, wait, "a connection", func(a map[string]string) bool {
		if strings.HasPrefix(a["msg"], "cannot connect") {
			cannot[a["url"]] = a["err"]
		}
		return a["msg"] == "connected to the external broker"
	})
	if at["url"] != good {
		t.Fatalf("connected to %s, want %s", at["url"], good)
	}
	if why := cannot[mute]; !strings.Contains(why, "timed out") {
		t.Errorf("at the node that never answers SUBSCRIBE: %q, want a timeout", why)
	}
	if why := cannot[refusing]; !strings.Contains(why, "other/#") || !strings.Contains(why, "refused") {
		t.Errorf("at the node that refuses other/#: %q, want a refusal naming the filter", why)
	}
	testutil.WaitFor(t, wait, x.Healthy) // set before the log line: normally already so
}

// A filter refused while connected: Subscribe says so, and the
// connection, which no longer has every filter, is dropped; every
// reconnect is refused too, so the client stays unhealthy.
func TestSubscribeRefusedWhileConnected(t *testing.T) {
	url := anonBroker(t)
	logs := make(records, 1024)
	x, err := extbroker.New(extbroker.Config{URL: url, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Subscribe("devices/#", func(extbroker.Message) {}); err != nil {
		t.Fatal(err)
	}
	connected(t, x)
	if err := x.Subscribe("$SYS/#", func(extbroker.Message) {}); !errors.Is(err, extbroker.ErrRefused) {
		t.Fatalf("Subscribe($SYS/#) = %v, want ErrRefused", err)
	} else if !strings.Contains(err.Error(), "$SYS/#") {
		t.Errorf("error %q does not name the filter", err)
	}
	logged(t, logs, wait, "the reconnect refused", func(a map[string]string) bool {
		return strings.HasPrefix(a["msg"], "cannot connect") && strings.Contains(a["err"], "$SYS/#")
	})
	if err := x.Healthy(); !errors.Is(err, extbroker.ErrNotConnected) {
		t.Errorf("Healthy = %v with a filter refused, want ErrNotConnected", err)
	}
	x.Close()
	if err := x.Subscribe("devices/#", func(extbroker.Message) {}); !errors.Is(err, extbroker.ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want ErrClosed", err)
	}
}

// A broker that hangs keeps the TCP connection open: only the probe
// tells. The client says so and moves to the next node.
func TestUnansweredProbeTriesTheNext(t *testing.T) {
	hung, good := testutil.StartMosquitto(t, false), testutil.StartMosquitto(t, false)
	logs := make(records, 1024)
	x, err := extbroker.New(extbroker.Config{URL: hung.URL + "," + good.URL, ClientID: "cp/1",
		ProbeInterval: 100 * time.Millisecond, ProbeTimeout: 500 * time.Millisecond, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	connected(t, x)
	if u := connectedTo(t, logs); u != hung.URL {
		t.Fatalf("connected to %s, want %s", u, hung.URL)
	}
	hung.Pause()
	t.Cleanup(hung.Resume)
	logged(t, logs, wait, "the probe not answered", func(a map[string]string) bool {
		return strings.HasPrefix(a["msg"], "external broker not working: probe not answered in 500ms") && a["url"] == hung.URL
	})
	if u := connectedTo(t, logs); u != good.URL {
		t.Fatalf("connected to %s, want %s", u, good.URL)
	}
	testutil.WaitFor(t, wait, x.Healthy)
}

// After connecting, the client subscribes once more: the broker sends
// the retained messages again, marked retained; a message published
// while subscribed is not.
func TestRetainedSentAgain(t *testing.T) {
	m := testutil.StartMosquitto(t, false)
	retain(t, m.URL, "devices/b1/led", "ON")
	x, err := extbroker.New(extbroker.Config{URL: m.URL, Resubscribe: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	got := make(messages, 16)
	if err := x.Subscribe("devices/#", got.handle); err != nil {
		t.Fatal(err)
	}
	connected(t, x)
	for _, what := range []string{"the retained led", "the retained led again"} {
		if m := testutil.Recv(t, got, wait, what); m.Topic != "devices/b1/led" || string(m.Payload) != "ON" || !m.Retain {
			t.Fatalf("%s: got %s %q retain %v, want devices/b1/led ON retained", what, m.Topic, m.Payload, m.Retain)
		}
	}
	if err := x.Publish("devices/b1/count", []byte("1"), false, 1); err != nil {
		t.Fatal(err)
	}
	if m := testutil.Recv(t, got, wait, "the count"); m.Topic != "devices/b1/count" || m.Retain {
		t.Errorf("got %s %q retain %v, want devices/b1/count not retained", m.Topic, m.Payload, m.Retain)
	}
}

// A broker whose ACL predates the probe (it refuses the probe topic and
// grants every filter) still gives a working connection, judged by the
// connection alone; the client says so once.
func TestProbeTopicRefusedByACL(t *testing.T) {
	b := embedded(t, auth.Config{Anonymous: auth.AnonOn}) // devices/ only
	if err := b.Publish("devices/b1/led", []byte("ON"), true, 1); err != nil {
		t.Fatal(err)
	}
	logs := make(records, 1024)
	x, err := extbroker.New(extbroker.Config{URL: "tcp://" + b.Addr().String(), Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan extbroker.Message, 4)
	if err := x.Subscribe("devices/#", func(m extbroker.Message) { got <- m }); err != nil {
		t.Fatal(err)
	}
	x.Start()
	defer x.Close()
	logged(t, logs, wait, "the probe topic's refusal", func(a map[string]string) bool {
		return strings.Contains(a["msg"], "refuses the probe topic") && a["probe_topic"] != ""
	})
	testutil.WaitFor(t, wait, x.Healthy)
	if m := testutil.Recv(t, got, wait, "the retained led"); m.Topic != "devices/b1/led" || string(m.Payload) != "ON" {
		t.Errorf("got %s %q, want devices/b1/led ON", m.Topic, m.Payload)
	}
}

// Once a broker granted the probe topic, a refusal of it (here another
// node whose ACL predates the probe; on NATS a node that lost its quorum)
// is no longer taken for an old ACL: the connection fails, and /healthz
// does not turn healthy on a connection nothing probes.
func TestProbeRefusedAfterGranted(t *testing.T) {
	good := testutil.StartMosquitto(t, false)
	acl := embedded(t, auth.Config{Anonymous: auth.AnonOn}) // devices/ only
	aclURL := "tcp://" + acl.Addr().String()
	logs := make(records, 4096)
	x, err := extbroker.New(extbroker.Config{URL: good.URL + "," + aclURL, ClientID: "cp-1",
		ProbeInterval: 100 * time.Millisecond, ProbeTimeout: 500 * time.Millisecond, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	connected(t, x)
	good.Pause()
	t.Cleanup(good.Resume)
	logged(t, logs, wait, "the probe topic refused by the second broker, as an error", func(a map[string]string) bool {
		return a["url"] == aclURL && strings.Contains(a["err"], "refused") && strings.Contains(a["err"], "switchyard/probe/cp-1")
	})
	if err := x.Healthy(); err == nil {
		t.Error("healthy on a broker that refuses the probe topic after another granted it")
	}
}
