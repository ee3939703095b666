package wsgateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// gorilla/websocket as the independent party for the framing code: the
// tests decode the writer's frames and produce the reader's with it, and
// the benchmarks compare against it. Everything runs on memConn: no
// network, nothing but the framing measured.

// memConn is a net.Conn in memory: Read drains in, Write appends to out
// (only counts, with discard set) and then calls respond, when set.
// Deadlines are ignored.
type memConn struct {
	in, out bytes.Buffer
	discard bool
	respond func(*memConn)
}

func (c *memConn) Read(p []byte) (int, error) { return c.in.Read(p) }

func (c *memConn) Write(p []byte) (int, error) {
	if !c.discard {
		c.out.Write(p)
	}
	if c.respond != nil {
		c.respond(c)
	}
	return len(p), nil
}

func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// gorillaClient returns gorilla's client end of a connection whose server
// answers the handshake and then sends frames. What the client writes after
// the handshake collects in the returned memConn's out; writeBuf is its
// write buffer (0: gorilla's default), which a message that does not fit
// crosses in fragments.
func gorillaClient(tb testing.TB, frames []byte, writeBuf int) (*websocket.Conn, *memConn) {
	tb.Helper()
	c := &memConn{}
	c.respond = func(c *memConn) {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(c.out.Bytes())))
		if err != nil {
			return // not all of it yet
		}
		c.respond = nil
		c.out.Reset()
		sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		fmt.Fprintf(&c.in, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Accept: %s\r\n\r\n", base64.StdEncoding.EncodeToString(sum[:]))
		c.in.Write(frames)
	}
	d := websocket.Dialer{
		NetDialContext:  func(context.Context, string, string) (net.Conn, error) { return c, nil },
		WriteBufferSize: writeBuf,
	}
	ws, _, err := d.Dial("ws://gateway.test/ws", nil)
	if err != nil {
		tb.Fatal(err)
	}
	return ws, c
}

// gorillaServer returns gorilla's server end of a connection on c, after a
// handshake through upg.
func gorillaServer(tb testing.TB, c net.Conn, upg *websocket.Upgrader) *websocket.Conn {
	tb.Helper()
	req := httptest.NewRequest(http.MethodGet, "http://gateway.test/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	ws, err := upg.Upgrade(hijacked{httptest.NewRecorder(), c}, req, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return ws
}

// hijacked is a ResponseWriter that hands conn over to the upgrader.
type hijacked struct {
	*httptest.ResponseRecorder
	conn net.Conn
}

func (h hijacked) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return h.conn, bufio.NewReadWriter(bufio.NewReader(h.conn), bufio.NewWriter(h.conn)), nil
}
