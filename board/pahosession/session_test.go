//go:build !tinygo

package pahosession_test

import (
	"context"
	"strings"
	"testing"

	"switchyard/board"
	"switchyard/board/boardtest"
	"switchyard/board/pahosession"
)

func TestSession(t *testing.T) {
	boardtest.SessionSuite(t, boardtest.PahoSession)
}

func TestValidateBroker(t *testing.T) {
	tests := []struct {
		url  string
		want string // error substring, "" for valid
	}{
		{"tcp://localhost:1883", ""},
		{"ssl://broker.example:8883", ""},
		{"ws://localhost:8080/mqtt", ""},
		{"wss://broker.example/mqtt", ""},
		{"http://localhost:1883", "scheme must be"},
		{"mqtt://localhost:1883", "scheme must be"},
		{"localhost:1883", "scheme must be"},
		{"tcp://", "no host"},
		{"tcp://a b:1", "invalid broker URL"},
		{"http://u:hunter2@localhost:1883", `"http://u:xxxxx@localhost:1883"`}, // a password never shows
	}
	for _, tt := range tests {
		err := pahosession.ValidateBroker(tt.url)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("ValidateBroker(%q): got %v, want error containing %q", tt.url, err, tt.want)
		}
	}
}

func TestNotConnected(t *testing.T) {
	s, err := pahosession.New(pahosession.Options{Broker: "tcp://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Publish(ctx, "a", nil, 0, false); err == nil {
		t.Error("Publish without a connection: got nil error")
	}
	if err := s.Connect(ctx, board.ConnectOptions{ClientID: "x"}); err == nil {
		t.Error("Connect to a closed port: got nil error")
	}
	s2, err := pahosession.New(pahosession.Options{Broker: "tcp://u:hunter2@127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Connect(ctx, board.ConnectOptions{ClientID: "x"}); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Connect with a password in the URL: got %v, want an error without the password", err)
	}
	for range 2 { // idempotent
		if err := s.Disconnect(ctx); err != nil {
			t.Errorf("Disconnect: %v", err)
		}
	}
}
