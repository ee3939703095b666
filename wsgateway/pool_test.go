package wsgateway

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"
)

// TestReadyQueue: first in, first out across the array's reuse (start over
// when empty, move down when half taken).
func TestReadyQueue(t *testing.T) {
	r := newTestQueue()
	cs := make([]*client, 300)
	for i := range cs {
		cs[i] = &client{remote: strconv.Itoa(i)}
	}
	next, want := 0, 0
	pop := func() {
		t.Helper()
		c, ok := r.pop()
		if !ok || c != cs[want] {
			t.Fatalf("pop = %v, %v; want browser %d", c, ok, want)
		}
		want++
	}
	// Pushes and pops interleaved so the queue neither empties nor stays
	// short: pop moves the rest down more than once.
	for next < 200 {
		for range 3 {
			r.push(cs[next])
			next++
		}
		pop()
	}
	for want < next {
		pop()
	}
	if r.head != 0 || len(r.q) != 0 {
		t.Errorf("empty queue: head %d, len %d; want both 0", r.head, len(r.q))
	}
	r.push(cs[next])
	r.stop()
	pop()
	if c, ok := r.pop(); ok {
		t.Errorf("pop of a stopped, empty queue = %v, want none", c)
	}

	if raceEnabled {
		return
	}
	r = newTestQueue()
	if n := testing.AllocsPerRun(100, func() {
		for _, c := range cs[:100] {
			r.push(c)
		}
		for range cs[:100] {
			r.pop()
		}
	}); n != 0 {
		t.Errorf("%v allocations per 100 pushes and pops once the array has grown, want 0", n)
	}
}

func newTestQueue() *readyQueue {
	r := &readyQueue{}
	r.cond.L = &r.mu
	return r
}

// TestWriteNowDoesNotAllocate: a frame written without waiting leaves no
// garbage (one per frame per browser was most of the gateway's).
func TestWriteNowDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cli, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	w := newWSConn(srv)
	if w.raw == nil {
		t.Fatal("no raw connection on plain TCP")
	}
	payload := []byte(`{"device":"b1","label":"count","value":1}`)
	frame := append(appendFrameHeader(nil, opText, len(payload)), payload...)
	var werr error
	allocs := testing.AllocsPerRun(100, func() {
		if n, err := w.writeNow(frame); err != nil || n != len(frame) {
			werr = fmt.Errorf("writeNow = %d, %v; want %d, nil", n, err, len(frame))
		}
	})
	if werr != nil {
		t.Fatal(werr)
	}
	if allocs != 0 {
		t.Errorf("%v allocations per writeNow, want 0", allocs)
	}
	got := make([]byte, len(frame))
	if _, err := io.ReadFull(cli, got); err != nil || !bytes.Equal(got, frame) {
		t.Errorf("the peer read %q, %v; want %q", got, err, frame)
	}
}
