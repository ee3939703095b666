// Frame encoding (RFC 6455, server to client: unmasked): the frames the
// writer sends, encoded by hand straight from the shared event chunks.
//
// Why not gorilla's writer: a pool turn writes a round with one
// non-blocking write(2) and, when the socket takes only part of it, hands
// the rest to the browser's own goroutine in the middle of a frame
// (writer.go); gorilla's writes block, and a frame it has begun cannot
// change hands. Writing by hand also lets gorilla's Conn go after the
// handshake, and with it most of an idle browser's read side (reader.go).
// The encoding is cheaper too, though that is little next to the write's
// system call (5-30 µs on loopback). Per frame, framing only (go test
// -run '^$' -bench FrameWrite -benchtime 200000x ./wsgateway, four runs
// on a shared 2-core VM):
//
//	1 event (a count)     here          26-40 ns, 0 allocs
//	                      gorilla       WriteMessage 137-204 ns, 1 alloc (24 B);
//	                                    PreparedMessage 64-98 ns, 0 allocs
//	                                    (prepared once per fan-out, not counted)
//	5 events, an array    here          69-120 ns, 0 allocs
//	                      gorilla       NextWriter 217-443 ns, 2 allocs (72 B)
//
// FuzzRoundEncoding checks the frames against gorilla's reader.

package wsgateway

import "time"

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// appendFrameHeader appends the header of a final, unmasked frame of
// opcode op carrying n payload bytes.
func appendFrameHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xffff:
		return append(b, 126, byte(n>>8), byte(n))
	default:
		return append(b, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// round is what a writer sends in one go: a pong, a ping, then the
// events, as one text frame (a JSON array when it holds more than one) on
// /ws, or one frame per event on /ws/<id>; or a close frame alone.
type round struct {
	close  []byte   // the close frame's payload; nil: none
	pong   []byte   // the payload of the pong to send; nil: none
	ping   bool     // send a ping
	chunks [][]byte // /ws: chunks of comma-joined events; /ws/<id>: one event each
	single bool     // /ws/<id>: one frame per chunk
	events int      // /ws: the events in chunks (whole frames not counted)
	// /ws: the chunks that are whole frames of their own (a broadcast's,
	// see prepared), in order; the chunks between them go as text frames,
	// each an array when it holds more than one event.
	marks []frameMark
}

// frameMark says chunks[at] is a whole frame, with events events queued
// before it.
type frameMark struct{ at, events int }

// encode writes r's frames to w.
func (r *round) encode(w *frameWriter) {
	if r.close != nil {
		w.header(opClose, len(r.close))
		w.write(r.close)
	}
	if r.pong != nil {
		w.header(opPong, len(r.pong))
		w.write(r.pong)
	}
	if r.ping {
		w.header(opPing, 0)
	}
	if r.single {
		for _, f := range r.chunks { // one object per frame, as the seed tutorial expects
			w.header(opText, len(f))
			w.write(f)
		}
		return
	}
	start, before := 0, 0
	for _, mk := range r.marks {
		encodeText(w, r.chunks[start:mk.at], mk.events-before > 1)
		w.write(r.chunks[mk.at])
		start, before = mk.at+1, mk.events
	}
	encodeText(w, r.chunks[start:], r.events-before > 1)
}

// encodeText writes chunks as one text frame, in [ ] when asArray; nothing
// when there are none.
func encodeText(w *frameWriter, chunks [][]byte, asArray bool) {
	if len(chunks) == 0 {
		return
	}
	w.header(opText, chunksLen(chunks, asArray))
	if asArray {
		w.write(openBracket)
	}
	for i, ch := range chunks {
		if i > 0 {
			w.write(comma)
		}
		w.write(ch)
	}
	if asArray {
		w.write(closeBracket)
	}
}

var openBracket, comma, closeBracket = []byte("["), []byte(","), []byte("]")

// chunksLen is the payload length of chunks joined by commas, wrapped in
// [ ] when asArray.
func chunksLen(chunks [][]byte, asArray bool) int {
	n := max(len(chunks)-1, 0) // commas
	for _, ch := range chunks {
		n += len(ch)
	}
	if asArray {
		n += 2
	}
	return n
}

// appendRound appends r's frames to b.
func appendRound(b []byte, r *round) []byte {
	w := frameWriter{buf: b}
	r.encode(&w)
	return w.buf
}

// frameWriter takes encoded frames. Without ws it appends them to buf,
// which grows (a pool turn: its round is small). With ws it writes buf out
// whenever it is full, so that a large round streams through buf's
// capacity; the first error sticks.
type frameWriter struct {
	buf      []byte
	ws       *wsConn   // nil: append only
	deadline time.Time // for the whole round
	waited   bool      // a write had to wait for the socket
	err      error
}

func (w *frameWriter) header(op byte, n int) {
	var h [10]byte // the longest header: 2 + 8 (length)
	w.write(appendFrameHeader(h[:0], op, n))
}

func (w *frameWriter) write(p []byte) {
	if w.ws == nil {
		w.buf = append(w.buf, p...)
		return
	}
	for len(p) > 0 && w.err == nil {
		n := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf, p = w.buf[:len(w.buf)+n], p[n:]
		if len(w.buf) == cap(w.buf) {
			w.flush()
		}
	}
}

// flush writes out what buf holds, trying without waiting first to tell
// whether the socket made it wait. Without ws it does nothing.
func (w *frameWriter) flush() {
	if w.ws == nil {
		return
	}
	p := w.buf
	w.buf = w.buf[:0]
	if len(p) == 0 || w.err != nil {
		return
	}
	if w.ws.raw != nil {
		n, err := w.ws.writeNow(p)
		if w.err = err; err != nil || n == len(p) {
			return
		}
		p, w.waited = p[n:], true
	}
	w.err = w.ws.writeWait(p, w.deadline)
}
