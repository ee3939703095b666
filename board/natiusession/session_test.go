package natiusession_test

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"switchyard/board"
	"switchyard/board/boardtest"
	"switchyard/board/check"
	"switchyard/board/natiusession"
	"switchyard/devices"
)

func newSession(t testing.TB, url string) board.Session {
	addr := strings.TrimPrefix(url, "tcp://")
	return natiusession.New(func(ctx context.Context) (io.ReadWriteCloser, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	})
}

func TestSession(t *testing.T) {
	boardtest.SessionSuite(t, newSession)
}

// TestCheckPasses runs devicefw check against a board on this session:
// what a TinyGo board does on the wire, minus the WiFi.
func TestCheckPasses(t *testing.T) {
	br := boardtest.Start(t)
	// Subscribe before the board publishes: see boardtest's gate.
	led := devices.MustTopics("").LED("natiu")
	obs := boardtest.Observe(t, br.URL, led)
	boardtest.RunBoard(t, newSession(t, br.URL), "natiu")
	obs.Expect(t, led, "OFF")
	ok, err := check.Run(context.Background(), check.Config{
		ID: "natiu", Session: boardtest.PahoSession(t, br.URL), ClientID: "checker", Timeout: 5 * time.Second,
	}, func(r check.Result) {
		if !r.OK {
			t.Error(r)
		}
	})
	if err != nil || !ok {
		t.Fatalf("check: got %t, %v; want every rule passed", ok, err)
	}
}

// TestSilentBroker: a broker that accepts the connection and then says
// nothing more is declared lost after about 1.5 keepalives.
func TestSilentBroker(t *testing.T) {
	client, server := net.Pipe()
	t.Cleanup(func() { server.Close() })
	go func() { // the silent broker; ends when the pipe is closed
		var buf [256]byte
		_, _ = server.Read(buf[:])                 // CONNECT
		_, _ = server.Write([]byte{0x20, 2, 0, 0}) // CONNACK, accepted
		for {
			if _, err := server.Read(buf[:]); err != nil {
				return
			}
		}
	}()
	s := natiusession.New(func(context.Context) (io.ReadWriteCloser, error) { return client, nil })
	lost := make(chan error, 1)
	err := s.Connect(context.Background(), board.ConnectOptions{
		ClientID: "quiet", KeepAlive: time.Second,
		OnLost: func(err error) { lost <- err },
	})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer s.Disconnect(context.Background())
	start := time.Now()
	select {
	case <-lost:
		if d := time.Since(start); d < time.Second || d > 3*time.Second {
			t.Errorf("lost after %s, want about 1.5s", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("silent broker not noticed within 5s")
	}
}

func TestRefused(t *testing.T) {
	client, server := net.Pipe()
	t.Cleanup(func() { server.Close() })
	go func() { // a broker that refuses; ends after its answer
		var buf [256]byte
		_, _ = server.Read(buf[:])
		_, _ = server.Write([]byte{0x20, 2, 0, 5}) // not authorized
	}()
	s := natiusession.New(func(context.Context) (io.ReadWriteCloser, error) { return client, nil })
	err := s.Connect(context.Background(), board.ConnectOptions{ClientID: "x"})
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("Connect: got %v, want a refusal", err)
	}
	if err := s.Publish(context.Background(), "a", nil, 0, false); err == nil {
		t.Error("Publish without a connection: got nil error")
	}
}
