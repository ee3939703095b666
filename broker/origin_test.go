package broker

import (
	"testing"
	"time"

	"switchyard/auth"
)

// TestMessageOrigin: an inline subscriber learns who published: a user
// that logged in, an anonymous client by id, the control plane itself
// (no client), and a Last Will, marked as one.
func TestMessageOrigin(t *testing.T) {
	b := authBroker(t, auth.AnonLocal, Config{})
	got := make(chan Message, 16)
	if err := b.Subscribe("devices/#", func(m Message) { m.Payload = append([]byte(nil), m.Payload...); got <- m }); err != nil {
		t.Fatal(err)
	}
	var skipped []string
	next := func(topic string) Message {
		t.Helper()
		for {
			select {
			case m := <-got:
				if m.Topic == topic {
					return m
				}
				skipped = append(skipped, m.Topic+" "+string(m.Payload))
			case <-time.After(wait):
				t.Fatalf("no message on %s (skipped before: %q)", topic, skipped)
			}
		}
	}
	otto := mustDial(t, b, creds{"otto-laptop", "otto", "pwo", ""})
	anon := mustDial(t, b, creds{"anon-1", "", "", ""})
	board := mustDial(t, b, creds{"board-7", "board-7", "pw7", "devices/board-7/status"})

	otto.Publish("devices/board-7/led/set", 1, false, "ON").WaitTimeout(wait)
	if m := next("devices/board-7/led/set"); m.Client != "otto-laptop" || m.User != "otto" || m.Will {
		t.Errorf("operator's command: got client %q user %q will %v, want otto-laptop, otto, false", m.Client, m.User, m.Will)
	}
	anon.Publish("devices/board-7/led/set", 1, false, "OFF").WaitTimeout(wait)
	if m := next("devices/board-7/led/set"); m.Client != "anon-1" || m.User != "" {
		t.Errorf("anonymous command: got client %q user %q, want anon-1 and no user", m.Client, m.User)
	}
	if err := b.Publish("devices/board-7/led/set", []byte("TOGGLE"), false, 1); err != nil {
		t.Fatal(err)
	}
	if m := next("devices/board-7/led/set"); m.Client != "" || m.User != "" {
		t.Errorf("the control plane's command: got client %q user %q, want neither", m.Client, m.User)
	}
	board.Publish("devices/board-7/status", 1, true, "offline").WaitTimeout(wait)
	if m := next("devices/board-7/status"); m.Will || m.Client != "board-7" || m.User != "board-7" {
		t.Errorf("the board's own offline: got client %q user %q will %v, want board-7, board-7, false", m.Client, m.User, m.Will)
	}
	// The connection breaks: the broker sends the board's Will. (Closed
	// under Mochi, not with Client.Stop: a Stop while the client's
	// goroutine still handles the PUBLISH above ends its read loop
	// without an error, and so without the Will.)
	cl, ok := b.srv.Clients.Get("board-7")
	if !ok {
		t.Fatal("board-7 is not connected")
	}
	cl.Net.Conn.Close()
	if m := next("devices/board-7/status"); !m.Will || m.Client != "board-7" || string(m.Payload) != "offline" {
		t.Errorf("the Will: got client %q will %v payload %q, want board-7, a Will, offline", m.Client, m.Will, m.Payload)
	}
}

// TestRestoredMessagesAreMarked: a subscriber before Start gets the stored
// retained messages marked Restored, a live one after Start is not.
func TestRestoredMessagesAreMarked(t *testing.T) {
	path := t.TempDir() + "/retained.log"
	b1 := startBroker(t, Config{StoragePath: path})
	if err := b1.Publish("devices/a/led", []byte("ON"), true, 1); err != nil {
		t.Fatal(err)
	}
	b1.Close()

	b2, err := New(Config{Listen: "127.0.0.1:0", StoragePath: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b2.Close() })
	got := make(chan Message, 4)
	if err := b2.Subscribe("devices/#", func(m Message) { got <- m }); err != nil {
		t.Fatal(err)
	}
	if err := b2.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if !m.Restored || m.Topic != "devices/a/led" {
			t.Errorf("got %s restored %v, want devices/a/led restored", m.Topic, m.Restored)
		}
	case <-time.After(wait):
		t.Fatal("the stored message never came")
	}
	if err := b2.Publish("devices/a/led", []byte("OFF"), true, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m.Restored {
			t.Errorf("a live message is marked restored")
		}
	case <-time.After(wait):
		t.Fatal("the live message never came")
	}
}
