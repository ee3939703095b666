package wsgateway

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"switchyard/devices"
	"switchyard/internal/idlemem"
)

// What the hand-written framing saves over gorilla/websocket's, measured;
// frame.go and reader.go quote the figures.

// BenchmarkFrameWrite: one browser's round of events, written as a frame
// to a connection that takes everything (memConn: the system call, 5-30
// µs on loopback, is left out, so only the framing is measured), by the
// pool's encoding and by gorilla's three ways to write a message.
func BenchmarkFrameWrite(b *testing.B) {
	ev := devices.Event{Device: "board-1234", Label: devices.LabelCount, Count: 123456}
	one := ev.AppendJSON(nil)
	five := [][]byte{one, one, one, one, one}
	upg := &websocket.Upgrader{WriteBufferSize: 4096, WriteBufferPool: &sync.Pool{}} // as the gateway's
	own := func(r round) func(b *testing.B) {
		return func(b *testing.B) {
			c := &memConn{discard: true}
			buf := make([]byte, 0, 16<<10)
			b.ReportAllocs()
			for b.Loop() {
				buf = appendRound(buf[:0], &r)
				_, _ = c.Write(buf)
			}
		}
	}
	b.Run("1 event/own", own(round{chunks: [][]byte{one}}))
	b.Run("1 event/gorilla WriteMessage", func(b *testing.B) {
		ws := gorillaServer(b, &memConn{discard: true}, upg)
		b.ReportAllocs()
		for b.Loop() {
			_ = ws.WriteMessage(websocket.TextMessage, one)
		}
	})
	b.Run("1 event/gorilla PreparedMessage", func(b *testing.B) {
		ws := gorillaServer(b, &memConn{discard: true}, upg)
		pm, err := websocket.NewPreparedMessage(websocket.TextMessage, one) // once per fan-out: not counted
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			_ = ws.WritePreparedMessage(pm)
		}
	})
	b.Run("5 events/own", own(round{chunks: five, events: 5}))
	b.Run("5 events/gorilla NextWriter", func(b *testing.B) {
		ws := gorillaServer(b, &memConn{discard: true}, upg)
		b.ReportAllocs()
		for b.Loop() {
			w, _ := ws.NextWriter(websocket.TextMessage)
			_, _ = w.Write(openBracket)
			for i, ch := range five {
				if i > 0 {
					_, _ = w.Write(comma)
				}
				_, _ = w.Write(ch)
			}
			_, _ = w.Write(closeBracket)
			_ = w.Close()
		}
	})
}

// BenchmarkIdleReader: the heap and goroutine stack an idle browser's read
// side holds, reader.go's msgReader against gorilla's Conn reading (with
// the 1 KiB read buffer the gateway gave it), each in a goroutine of its
// own parked in a read on a connection that sends nothing. The figures
// include what both hold alike (the server's and the client's sockets).
func BenchmarkIdleReader(b *testing.B) {
	own := newUpgrader(nil)
	gor := newUpgrader(nil)
	gor.ReadBufferSize = 1024
	for _, tc := range []struct {
		name string
		upg  *websocket.Upgrader
		read func(*websocket.Conn)
	}{
		{"own", own, func(ws *websocket.Conn) { readOwn(ws.NetConn()) }},
		{"gorilla", gor, func(ws *websocket.Conn) {
			defer ws.Close()
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var readers sync.WaitGroup
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ws, err := tc.upg.Upgrade(w, r, nil)
				if err != nil {
					return
				}
				readers.Go(func() { tc.read(ws) }) // ends when the client closes
			}))
			defer srv.Close()
			defer readers.Wait() // after idlemem has closed the clients
			idlemem.PerConn(b, "browser", IdleBrowser(strings.TrimPrefix(srv.URL, "http://"), "/", 0))
		})
	}
}

// readOwn reads as client.readPump does, with a frame as small.
func readOwn(c net.Conn) {
	defer c.Close()
	m := msgReader{conn: c, wait: time.Hour, limit: devices.MaxBrowserMessage, ping: func([]byte) {}}
	for {
		if _, err := m.next(); err != nil {
			return
		}
	}
}

// IdleBrowser returns an idlemem opener: it dials addr, does a WebSocket
// handshake for path written by hand, and reads the first frames frames
// (the connect snapshot), keeping nothing of them: the browser is idle and
// holds nothing but its socket. (Exported for bench_test.go.)
func IdleBrowser(addr, path string, frames int) func(int) (net.Conn, error) {
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	return func(int) (net.Conn, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		if err := handshake(c, req, frames); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
}

// handshake sends req on c, reads the 101 answer and then frames frames
// (unmasked, from the server), keeping nothing.
func handshake(c net.Conn, req []byte, frames int) error {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(req); err != nil {
		return err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("handshake: %s", resp.Status)
	}
	for range frames {
		hdr := make([]byte, 10)
		if _, err := io.ReadFull(br, hdr[:2]); err != nil {
			return err
		}
		n := uint64(hdr[1] & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(br, hdr[2:4]); err != nil {
				return err
			}
			n = uint64(binary.BigEndian.Uint16(hdr[2:4]))
		case 127:
			if _, err := io.ReadFull(br, hdr[2:10]); err != nil {
				return err
			}
			n = binary.BigEndian.Uint64(hdr[2:10])
		}
		if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
			return err
		}
	}
	return nil
}
