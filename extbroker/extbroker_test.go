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
)

const wait = 10 * time.Second

// startBroker runs the embedded broker on a free loopback port as the
// "external" broker, with one admin user.
func startBroker(t *testing.T) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	az, err := auth.New(auth.Config{Anonymous: auth.AnonOff, Users: []auth.User{
		{Name: "cp", PasswordHash: string(h), Role: auth.RoleAdmin},
	}})
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
	return "tcp://" + b.Addr().String()
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
	x.Start()
	defer x.Close()
	deadline := time.Now().Add(wait)
	for x.Healthy() != nil { // no event tells when paho has connected: poll with a deadline
		if time.Now().After(deadline) {
			t.Fatal("not connected")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Publish can race the subscription made in onConnect: retained, the
	// message arrives either way.
	if err := x.Publish("devices/b1/led", []byte("ON"), true, 1); err != nil {
		t.Fatal(err)
	}
	next := func(what string) extbroker.Message {
		t.Helper()
		select {
		case m := <-got:
			return m
		case <-time.After(wait):
			t.Fatalf("no %s", what)
		}
		return extbroker.Message{}
	}
	if m := next("message"); m.Topic != "devices/b1/led" || string(m.Payload) != "ON" {
		t.Errorf("got %s %q, want devices/b1/led ON", m.Topic, m.Payload)
	}
	n, err := x.ClearRetained("devices/b1/#")
	if err != nil || n != 1 {
		t.Fatalf("ClearRetained = %d, %v; want 1, nil", n, err)
	}
	if m := next("clear"); m.Topic != "devices/b1/led" || len(m.Payload) != 0 {
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
