package wsgateway

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// TestFrameHeaders: RFC 6455 section 5.2 headers for a final, unmasked
// server frame, at each length boundary.
func TestFrameHeaders(t *testing.T) {
	tests := []struct {
		op   byte
		n    int
		want string // hex
	}{
		{opText, 0, "8100"},
		{opText, 1, "8101"},
		{opText, 125, "817d"},
		{opText, 126, "817e007e"},
		{opText, 65535, "817effff"},
		{opText, 65536, "817f0000000000010000"},
		{opText, 1 << 24, "817f0000000001000000"},
		{opPing, 0, "8900"},
		{opPong, 5, "8a05"},
		{opClose, 2, "8802"},
	}
	for _, tt := range tests {
		if got := hex.EncodeToString(appendFrameHeader(nil, tt.op, tt.n)); got != tt.want {
			t.Errorf("header(op %#x, %d bytes) = %s, want %s", tt.op, tt.n, got, tt.want)
		}
	}
}

func TestChunksFrame(t *testing.T) {
	a, b := []byte(`{"a":1}`), []byte(`{"b":2},{"c":3}`)
	long := []byte(strings.Repeat("x", 200))
	tests := []struct {
		name    string
		chunks  [][]byte
		events  int
		payload string
	}{
		{"one event", [][]byte{a}, 1, `{"a":1}`},
		{"array", [][]byte{a, b}, 3, `[{"a":1},{"b":2},{"c":3}]`},
		{"long", [][]byte{long, a}, 2, "[" + string(long) + `,{"a":1}]`},
	}
	for _, tt := range tests {
		got := appendRound([]byte("keep"), &round{chunks: tt.chunks, events: tt.events})
		want := append(appendFrameHeader([]byte("keep"), opText, len(tt.payload)), tt.payload...)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: frame %q, want %q", tt.name, got, want)
		}
	}
}

// TestMarkedFrames: a broadcast's whole frame in the queue splits the
// events around it into text frames of their own, each an array only when
// it holds more than one event, in queue order.
func TestMarkedFrames(t *testing.T) {
	a, bc, d := []byte(`{"a":1}`), []byte(`{"b":2},{"c":3}`), []byte(`{"d":4}`)
	text := func(payload string) []byte { return append(appendFrameHeader(nil, opText, len(payload)), payload...) }
	p := prepare([]byte(`{"event":"rollout","id":"r1"}`))
	tests := []struct {
		name string
		r    round
		want [][]byte
	}{
		{"between", round{chunks: [][]byte{a, p.plain, bc}, marks: []frameMark{{1, 1}}, events: 3},
			[][]byte{text(`{"a":1}`), p.plain, text(`[{"b":2},{"c":3}]`)}},
		{"first, and two", round{chunks: [][]byte{p.plain, a, d, p.plain}, marks: []frameMark{{0, 0}, {3, 2}}, events: 2},
			[][]byte{p.plain, text(`[{"a":1},{"d":4}]`), p.plain}},
		{"alone", round{chunks: [][]byte{p.plain}, marks: []frameMark{{0, 0}}}, [][]byte{p.plain}},
	}
	for _, tt := range tests {
		if got, want := appendRound(nil, &tt.r), bytes.Join(tt.want, nil); !bytes.Equal(got, want) {
			t.Errorf("%s: got %q, want %q", tt.name, got, want)
		}
	}
}

// FuzzRoundEncoding: a round encoded into a buffer (a pool turn) and the
// same round streamed through a small buffer to a connection (a browser's
// own goroutine) are the same bytes, and gorilla/websocket, reading them as
// a browser does, finds in them the pong, the ping and the events that went
// in, or the close frame, in well-formed frames.
func FuzzRoundEncoding(f *testing.F) {
	f.Add([]byte(`{"a":1}{"b":2}`), uint8(2), uint8(0), uint8(0b1000), uint32(0), uint8(7))
	f.Add([]byte("hello"), uint8(1), uint8(5), uint8(0b0011), uint32(200), uint8(1))
	f.Add([]byte("abc"), uint8(3), uint8(0), uint8(0b0100), uint32(66000), uint8(63))
	f.Add([]byte{}, uint8(0), uint8(0), uint8(0b0001), uint32(0), uint8(0))
	f.Add([]byte("bye"), uint8(0), uint8(0), uint8(0b10000), uint32(1001), uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, cuts, pongLen, flags uint8, pad uint32, bufCap uint8) {
		r := round{ping: flags&2 != 0, single: flags&4 != 0, events: 1}
		if flags&8 != 0 {
			r.events = 2 // an array
		}
		if flags&1 != 0 {
			r.pong = append([]byte{}, data[:min(int(pongLen)%126, len(data))]...) // a control frame's payload: 125 bytes at most
		}
		// The events: data cut in up to 7 chunks, the first padded past
		// the 125 and 65535 byte length boundaries as pad says.
		n := int(cuts % 8)
		for i := range n {
			lo, hi := i*len(data)/n, (i+1)*len(data)/n
			r.chunks = append(r.chunks, data[lo:hi:hi])
		}
		if n > 0 {
			r.chunks[0] = append(bytes.Repeat([]byte("x"), int(pad%70000)), r.chunks[0]...)
		}

		var closeCode int
		var closeText string
		if flags&16 != 0 { // a close frame, alone (as the writer sends it)
			closeCode, closeText = 3000+int(pad%2000), hex.EncodeToString(data)[:min(2*len(data), 123)]
			r = round{close: websocket.FormatCloseMessage(closeCode, closeText)}
		}

		encoded := appendRound(nil, &r)
		var sink memConn
		w := frameWriter{buf: make([]byte, 0, int(bufCap%64)+1), ws: &wsConn{Conn: &sink}}
		r.encode(&w)
		w.flush()
		if w.err != nil || !bytes.Equal(sink.out.Bytes(), encoded) {
			t.Fatalf("streamed (err %v) %d bytes, buffered %d: not the same", w.err, sink.out.Len(), len(encoded))
		}

		var want []string
		if r.pong != nil {
			want = append(want, "pong "+string(r.pong))
		}
		if r.ping {
			want = append(want, "ping ")
		}
		switch {
		case r.single:
			for _, ch := range r.chunks {
				want = append(want, "text "+string(ch))
			}
		case len(r.chunks) > 0:
			p := string(bytes.Join(r.chunks, []byte(",")))
			if r.events > 1 {
				p = "[" + p + "]"
			}
			want = append(want, "text "+p)
		}
		ws, _ := gorillaClient(t, encoded, 0)
		var got []string
		ws.SetPongHandler(func(s string) error { got = append(got, "pong "+s); return nil })
		ws.SetPingHandler(func(s string) error { got = append(got, "ping "+s); return nil })
		var err error
		for {
			var op int
			var msg []byte
			if op, msg, err = ws.ReadMessage(); err != nil {
				break
			}
			if op != websocket.TextMessage {
				t.Fatalf("message of type %d, want text", op)
			}
			got = append(got, "text "+string(msg))
		}
		var ce *websocket.CloseError
		switch {
		case r.close != nil:
			if !errors.As(err, &ce) || ce.Code != closeCode || ce.Text != closeText {
				t.Fatalf("gorilla stopped with %v, want close %d %q", err, closeCode, closeText)
			}
		case !errors.As(err, &ce) || ce.Code != websocket.CloseAbnormalClosure || ce.Text != io.ErrUnexpectedEOF.Error():
			t.Fatalf("gorilla stopped with %v, want the end of the input after whole frames", err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("gorilla read %d frames %.200q, want %d %.200q", len(got), got, len(want), want)
		}
	})
}
