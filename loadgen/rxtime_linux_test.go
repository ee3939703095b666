package loadgen

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// TestRxConnTimestamps: reads through rxConn carry the kernel's receive
// time, between the peer's write and the read; EOF and deadlines behave as
// on a plain net.Conn.
func TestRxConnTimestamps(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var rx *rxConn
	c, err := rxDial(&rx)(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if rx == nil || c != net.Conn(rx) {
		t.Fatal("rxDial did not hand out its rxConn")
	}
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}

	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	buf := make([]byte, 64)
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: err = %v, want a deadline error", err)
	}
	c.SetReadDeadline(time.Time{})

	for i := range 3 {
		before := time.Now()
		if _, err := peer.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		n, err := io.ReadFull(c, buf[:5])
		after := time.Now()
		if err != nil || string(buf[:n]) != "hello" {
			t.Fatalf("read %d: %q, %v", i, buf[:n], err)
		}
		got := time.Unix(0, rx.last.Load())
		// The kernel's clock may be a little coarser than Go's: allow 1 ms.
		if got.Before(before.Add(-time.Millisecond)) || got.After(after) {
			t.Errorf("read %d: receive time %v, want between %v and %v", i, got, before, after)
		}
	}
	peer.Close()
	if n, err := c.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("read after the peer closed = %d, %v; want 0, EOF", n, err)
	}
}

func TestParseRxTimestampRejectsGarbage(t *testing.T) {
	for _, oob := range [][]byte{nil, {1, 2, 3}, make([]byte, 64)} {
		if _, ok := parseRxTimestamp(oob); ok {
			t.Errorf("parseRxTimestamp(%v) = ok, want none", oob)
		}
	}
}
