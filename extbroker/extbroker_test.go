package extbroker_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"switchyard/auth"
	"switchyard/broker"
	"switchyard/extbroker"
	"switchyard/internal/testutil"
)

const wait = 10 * time.Second

// startBroker runs the embedded broker on a free loopback port as the
// "external" broker, with an admin user (cp) and a viewer (watch), both
// with the password "right".
func startBroker(t *testing.T) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	b := embedded(t, auth.Config{Anonymous: auth.AnonOff, Users: []auth.User{
		{Name: "cp", PasswordHash: string(h), Role: auth.RoleAdmin},
		{Name: "watch", PasswordHash: string(h), Role: auth.RoleViewer},
	}})
	return "tcp://" + b.Addr().String()
}

// embedded runs the embedded broker with the access rules of cfg on a
// free loopback port, closed when the test ends.
func embedded(t *testing.T, cfg auth.Config) *broker.Broker {
	t.Helper()
	az, err := auth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(broker.Config{Listen: "127.0.0.1:0", Auth: az})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// records is a slog handler that hands every record to a channel.
type records chan slog.Record

func (r records) Enabled(context.Context, slog.Level) bool { return true }
func (r records) Handle(_ context.Context, rec slog.Record) error {
	select {
	case r <- rec:
	default: // the test reads what it needs; never block the client
	}
	return nil
}
func (r records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r records) WithGroup(string) slog.Handler      { return r }

func TestWrongPasswordIsLoggedAndRetried(t *testing.T) {
	url := startBroker(t)
	logs := make(records, 64)
	x, err := extbroker.New(extbroker.Config{URL: url, Username: "cp", Password: "wrong", Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	x.Start()
	defer x.Close()
	deadline := time.After(wait)
	for {
		select {
		case rec := <-logs:
			var errText string
			rec.Attrs(func(a slog.Attr) bool {
				if a.Key == "err" {
					errText = a.Value.String()
				}
				return true
			})
			if rec.Level == slog.LevelError && strings.Contains(rec.Message, "cannot connect") {
				if !strings.Contains(strings.ToLower(errText), "not authorized") && !strings.Contains(strings.ToLower(errText), "bad user name or password") {
					t.Errorf("error = %q, want the broker's refusal", errText)
				}
				if err := x.Healthy(); !errors.Is(err, extbroker.ErrNotConnected) {
					t.Errorf("Healthy = %v, want ErrNotConnected", err)
				}
				return
			}
		case <-deadline:
			t.Fatal("no error logged for a refused password")
		}
	}
}

func TestPublishSubscribeClear(t *testing.T) {
	url := startBroker(t)
	x, err := extbroker.New(extbroker.Config{URL: url, Username: "cp", Password: "right"})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan extbroker.Message, 16)
	if err := x.Subscribe("devices/#", func(m extbroker.Message) { got <- m }); err != nil {
		t.Fatal(err)
	}
	connected(t, x)
	// Publish can race the subscription made in onConnect: retained, the
	// message arrives either way.
	if err := x.Publish("devices/b1/led", []byte("ON"), true, 1); err != nil {
		t.Fatal(err)
	}
	next := func(what string) extbroker.Message {
		t.Helper()
		return testutil.Recv(t, got, wait, what)
	}
	if m := next("the retained led"); m.Topic != "devices/b1/led" || string(m.Payload) != "ON" {
		t.Errorf("got %s %q, want devices/b1/led ON", m.Topic, m.Payload)
	}
	n, err := x.ClearRetained("devices/b1/#")
	if err != nil || n != 1 {
		t.Fatalf("ClearRetained = %d, %v; want 1, nil", n, err)
	}
	if m := next("the clear of the led"); m.Topic != "devices/b1/led" || len(m.Payload) != 0 {
		t.Errorf("got %s %q, want an empty devices/b1/led", m.Topic, m.Payload)
	}
	if n, err := x.ClearRetained("devices/b1"); err != nil || n != 0 {
		t.Errorf("ClearRetained(devices/b1) = %d, %v; want 0, nil: the filter matches no topic below it", n, err)
	}
	x.Close()
	x.Close() // idempotent
	if err := x.Publish("devices/b1/led", []byte("ON"), true, 1); err == nil {
		t.Error("publish after Close succeeded")
	}
}

func TestValidateURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"tcp://127.0.0.1:1883", true},
		{"ssl://broker.local:8883", true},
		{"ws://127.0.0.1:9001/mqtt", true},
		{"http://127.0.0.1", false},
		{"tcp://", false},
		{"127.0.0.1:1883", false},
	} {
		if err := extbroker.ValidateURL(tc.url); (err == nil) != tc.ok {
			t.Errorf("ValidateURL(%q) = %v, want ok %v", tc.url, err, tc.ok)
		}
	}
}

// connected starts x and waits until it is connected.
func connected(t *testing.T, x *extbroker.Client) {
	t.Helper()
	x.Start()
	t.Cleanup(func() { x.Close() })
	testutil.WaitFor(t, wait, x.Healthy) // no event tells when paho has connected
}

// messages is a subscriber's messages.
type messages chan extbroker.Message

func (ms messages) handle(m extbroker.Message) { ms <- m }

// want reads messages until it has seen, on every topic in want, the
// payload want gives.
func (ms messages) want(t *testing.T, what string, want map[string]string) {
	t.Helper()
	deadline := time.After(wait)
	for len(want) > 0 {
		select {
		case m := <-ms:
			if p, ok := want[m.Topic]; ok && p == string(m.Payload) {
				delete(want, m.Topic)
			}
		case <-deadline:
			t.Fatalf("%s: never got %v", what, want)
		}
	}
}

// A clear that cannot be published keeps its topic, and the next call
// clears it. The broker restarts empty, so nothing but the kept topics
// can tell the client what to clear.
func TestClearRetainedKeepsTopicsUntilCleared(t *testing.T) {
	m := testutil.StartMosquitto(t, false) // a restart forgets every retained message
	url := "tcp://127.0.0.1:" + m.Port
	logs := make(records, 256)
	x, err := extbroker.New(extbroker.Config{URL: url, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	got := make(messages, 16)
	if err := x.Subscribe("devices/#", got.handle); err != nil {
		t.Fatal(err)
	}
	connected(t, x)
	for _, topic := range []string{"devices/b1/led", "devices/b1/count"} {
		if err := x.Publish(topic, []byte("1"), true, 1); err != nil {
			t.Fatal(err)
		}
	}
	got.want(t, "retained", map[string]string{"devices/b1/led": "1", "devices/b1/count": "1"})

	m.Stop()
	deadline := time.After(wait)
	for lost := false; !lost; {
		select {
		case rec := <-logs:
			lost = strings.Contains(rec.Message, "connection lost")
		case <-deadline:
			t.Fatal("the client never noticed the broker stopping")
		}
	}
	if n, err := x.ClearRetained("devices/b1/#"); err == nil || n != 0 {
		t.Fatalf("ClearRetained with the broker down = %d, %v; want 0 and an error", n, err)
	} else if !errors.Is(err, extbroker.ErrNotConnected) {
		t.Errorf("ClearRetained with the broker down: %v, want ErrNotConnected", err)
	}

	m.Start()
	// A second client watches the clears; its Subscribe returns once the
	// broker granted it.
	y, err := extbroker.New(extbroker.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	connected(t, y)
	watch := make(messages, 16)
	if err := y.Subscribe("devices/#", watch.handle); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, wait, x.Healthy) // paho reconnects on its own: no event tells when
	if n, err := x.ClearRetained("devices/b1/#"); err != nil || n != 2 {
		t.Fatalf("ClearRetained after the restart = %d, %v; want 2, nil", n, err)
	}
	watch.want(t, "clears", map[string]string{"devices/b1/led": "", "devices/b1/count": ""})
	if n, err := x.ClearRetained("devices/b1/#"); err != nil || n != 0 {
		t.Errorf("ClearRetained once cleared = %d, %v; want 0, nil", n, err)
	}
}
