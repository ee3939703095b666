package wsgateway

import (
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// clientFrame builds a browser's frame: masked with key, first byte b0
// (FIN, RSV, opcode) given whole.
func clientFrame(b0 byte, payload []byte, masked bool) []byte {
	key := []byte{0x12, 0x34, 0x56, 0x78}
	f := []byte{b0}
	n := len(payload)
	m := byte(0)
	if masked {
		m = 0x80
	}
	switch {
	case n < 126:
		f = append(f, m|byte(n))
	case n <= 0xffff:
		f = append(f, m|126, byte(n>>8), byte(n))
	default:
		f = append(f, m|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	if !masked {
		return append(f, payload...)
	}
	f = append(f, key...)
	p := append([]byte(nil), payload...)
	unmask(p, key)
	return append(f, p...)
}

func text(p string) []byte { return clientFrame(0x81, []byte(p), true) }

// bytesReader returns a msgReader on data.
func bytesReader(data []byte, pings *[]string) *msgReader {
	return &msgReader{conn: &byteConn{r: bytes.NewReader(data)}, wait: 5 * time.Second, limit: 4096,
		ping: func(p []byte) { *pings = append(*pings, string(p)) }}
}

func TestMsgReader(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 4096)
	cat := func(fs ...[]byte) []byte { return bytes.Join(fs, nil) }
	tests := []struct {
		name  string
		in    []byte
		msgs  []string
		pings []string
		err   error // errors.Is / As target kind; nil: io.EOF after msgs
	}{
		{"one text", text(`{"a":1}`), []string{`{"a":1}`}, nil, nil},
		{"two texts", cat(text("a"), text("b")), []string{"a", "b"}, nil, nil},
		{"binary is a message too", clientFrame(0x82, []byte("bin"), true), []string{"bin"}, nil, nil},
		{"empty", text(""), []string{""}, nil, nil},
		{"16-bit length", text(string(big[:300])), []string{string(big[:300])}, nil, nil},
		{"at the limit", text(string(big)), []string{string(big)}, nil, nil},
		{"fragments with a ping between", cat(clientFrame(0x01, []byte("he"), true), clientFrame(0x89, []byte("p"), true),
			clientFrame(0x00, []byte("l"), true), clientFrame(0x80, []byte("lo"), true)), []string{"hello"}, []string{"p"}, nil},
		{"pong is skipped", cat(clientFrame(0x8A, nil, true), text("x")), []string{"x"}, nil, nil},
		{"ping without payload", cat(clientFrame(0x89, nil, true), text("x")), []string{"x"}, []string{""}, nil},
		{"close with code", clientFrame(0x88, []byte{0x03, 0xE8, 'b', 'y', 'e'}, true), nil, nil, closeFrame{1000, "bye"}},
		{"close without code", clientFrame(0x88, nil, true), nil, nil, closeFrame{code: closeNoStatus}},
		{"over the limit", text(string(big) + "y"), nil, nil, errTooBig},
		{"over the limit in fragments", cat(clientFrame(0x01, big[:3000], true), clientFrame(0x80, big[:1200], true)), nil, nil, errTooBig},
		{"64-bit length over the limit", clientFrame(0x81, bytes.Repeat([]byte("z"), 70000), true), nil, nil, errTooBig},
		{"unmasked", clientFrame(0x81, []byte("x"), false), nil, nil, protocolError("")},
		{"reserved bit", clientFrame(0xC1, []byte("x"), true), nil, nil, protocolError("")},
		{"unknown data opcode", clientFrame(0x83, []byte("x"), true), nil, nil, protocolError("")},
		{"unknown control opcode", clientFrame(0x8B, nil, true), nil, nil, protocolError("")},
		{"continuation first", clientFrame(0x80, []byte("x"), true), nil, nil, protocolError("")},
		{"text inside a message", cat(clientFrame(0x01, []byte("a"), true), text("b")), nil, nil, protocolError("")},
		{"fragmented ping", clientFrame(0x09, nil, true), nil, nil, protocolError("")},
		{"long ping", clientFrame(0x89, big[:126], true), nil, nil, protocolError("")},
		{"bad close code", clientFrame(0x88, []byte{0x03, 0xED}, true), nil, nil, protocolError("")},
		{"one-byte close", clientFrame(0x88, []byte{0x03}, true), nil, nil, protocolError("")},
		{"truncated", text("hello")[:4], nil, nil, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pings []string
			m := bytesReader(tt.in, &pings)
			var got []string
			var err error
			for {
				var msg []byte
				if msg, err = m.next(); err != nil {
					break
				}
				got = append(got, string(msg))
			}
			if len(got) != len(tt.msgs) {
				t.Fatalf("messages %q, want %q", got, tt.msgs)
			}
			for i := range got {
				if got[i] != tt.msgs[i] {
					t.Errorf("message %d = %q, want %q", i, got[i], tt.msgs[i])
				}
			}
			if len(pings) != len(tt.pings) {
				t.Errorf("pings %q, want %q", pings, tt.pings)
			}
			switch want := tt.err.(type) {
			case nil:
				if err != io.EOF {
					t.Errorf("err = %v, want EOF after the messages", err)
				}
			case closeFrame:
				var cf closeFrame
				if !errors.As(err, &cf) || cf != want {
					t.Errorf("err = %v, want %v", err, want)
				}
			case protocolError:
				var pe protocolError
				if !errors.As(err, &pe) {
					t.Errorf("err = %v, want a protocol error", err)
				}
			default:
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want %v", err, want)
				}
			}
		})
	}
}

// FuzzMsgReader: whatever a browser sends, the reader returns messages
// within the limit or an error, and never panics.
func FuzzMsgReader(f *testing.F) {
	f.Add(text(`{"device":"b1","action":"toggle"}`))
	f.Add(append(clientFrame(0x01, []byte("a"), true), clientFrame(0x80, []byte("b"), true)...))
	f.Add(clientFrame(0x88, []byte{0x03, 0xE8}, true))
	f.Add([]byte{0x81, 0xFF, 0, 0, 0, 0, 0, 0, 0x10, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var pings []string
		m := bytesReader(data, &pings)
		for range 100 {
			msg, err := m.next()
			if err != nil {
				return
			}
			if len(msg) > 4096 {
				t.Fatalf("message of %d bytes over the 4096 limit", len(msg))
			}
		}
	})
}

// byteConn is a net.Conn reading from r (deadlines ignored).
type byteConn struct {
	net.Conn
	r io.Reader
}

func (c *byteConn) Read(p []byte) (int, error)      { return c.r.Read(p) }
func (c *byteConn) SetReadDeadline(time.Time) error { return nil }

// FuzzMsgReaderReadsGorilla: what gorilla/websocket sends as a browser
// (text and binary messages, fragmented when they do not fit its write
// buffer, pings between them), msgReader reads back: each message whole
// and in order, each ping, and errTooBig at a message over the limit.
func FuzzMsgReaderReadsGorilla(f *testing.F) {
	f.Add([]byte(`{"device":"b1","action":"toggle"}`), uint8(1), uint8(0), uint16(0))
	f.Add([]byte("toggleONoff"), uint8(3), uint8(2), uint16(3))
	f.Add(bytes.Repeat([]byte("y"), 5000), uint8(1), uint8(1), uint16(700))
	f.Fuzz(func(t *testing.T, data []byte, cuts, pingAt uint8, writeBuf uint16) {
		ws, conn := gorillaClient(t, nil, int(writeBuf%2048))
		n := int(cuts%5) + 1
		var msgs, pings []string
		for i := range n + 1 {
			if i == int(pingAt)%(n+1) {
				p := data[:min(len(data), 125)]
				if err := ws.WriteControl(websocket.PingMessage, p, time.Now().Add(time.Second)); err != nil {
					t.Fatal(err)
				}
				pings = append(pings, string(p))
			}
			if i == n {
				break
			}
			msg := data[i*len(data)/n : (i+1)*len(data)/n]
			if err := ws.WriteMessage(websocket.TextMessage+i%2, msg); err != nil { // text, binary, text...
				t.Fatal(err)
			}
			msgs = append(msgs, string(msg))
		}

		var gotPings []string
		m := bytesReader(conn.out.Bytes(), &gotPings)
		for i, want := range msgs {
			got, err := m.next()
			if len(want) > m.limit {
				if !errors.Is(err, errTooBig) {
					t.Fatalf("message %d of %d bytes: %v, want errTooBig", i, len(want), err)
				}
				return
			}
			if err != nil || string(got) != want {
				t.Fatalf("message %d = %.100q (err %v), want %.100q", i, got, err, want)
			}
		}
		if _, err := m.next(); err != io.EOF {
			t.Fatalf("after the messages: %v, want EOF", err)
		}
		if !slices.Equal(gotPings, pings) {
			t.Fatalf("pings %q, want %q", gotPings, pings)
		}
	})
}
