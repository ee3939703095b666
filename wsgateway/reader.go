// Reading from browsers: the frames a browser sends (RFC 6455, client to
// server: always masked), parsed by hand; gorilla/websocket only does the
// handshake.
//
// The reason is memory: an idle browser's only goroutine is its reader,
// parked in a read, and a reader this shallow fits the runtime's smallest
// stack (2 KiB), where gorilla's read path needs 4 KiB and its Conn and
// read buffer stay allocated. Browser messages are small
// (devices.MaxBrowserMessage) and rare; a frame is read with a few exact
// reads and nothing is buffered between messages. Per idle browser, the
// read side alone (go test -run '^$' -bench IdleReader -benchtime 3000x
// ./wsgateway, four runs; both ends' sockets counted in each):
//
//	here                                  heap 1.21-1.26 KiB, stack 2.1 KiB
//	gorilla's Conn (1 KiB read buffer)    heap 2.37-2.45 KiB, stack 3.9 KiB
//
// that is about 1.2 KiB of heap and 1.8 KiB of stack less per browser,
// some 29 MiB for 10,000 idle browsers. FuzzMsgReader feeds it any bytes;
// FuzzMsgReaderReadsGorilla checks it reads what gorilla sends.

package wsgateway

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
	"unicode/utf8"
)

// errTooBig is a message over the read limit (closed with 1009).
var errTooBig = errors.New("message too big")

// protocolError is a frame RFC 6455 forbids (closed with 1002).
type protocolError string

func (e protocolError) Error() string { return "protocol error: " + string(e) }

// closeFrame is the browser's close frame: the connection is ending.
type closeFrame struct {
	code   int // 1005 (no status) when the frame has none
	reason string
}

func (e closeFrame) Error() string { return fmt.Sprintf("close %d %s", e.code, e.reason) }

// Close codes beyond those gorilla names for us.
const (
	closeNormal      = 1000
	closeProtocol    = 1002
	closeNoStatus    = 1005
	closeTooBig      = 1009
	maxControlLength = 125
)

// msgReader reads one browser's messages. Its methods are for the reading
// goroutine only.
type msgReader struct {
	conn  net.Conn
	wait  time.Duration // each frame part's deadline: a browser may be silent that long (it answers pings well within)
	limit int           // largest message, bytes
	ping  func([]byte)  // called with each ping's payload (a copy is the callee's to make)
	// inflate: permessage-deflate was agreed; a message whose first frame
	// has RSV1 set is compressed (deflate.go).
	inflate bool
}

// next reads frames until a whole data message (text or binary, possibly
// fragmented, with control frames in between) and returns its payload.
// Errors: a closeFrame, errTooBig, a protocolError, or the read's.
func (m *msgReader) next() ([]byte, error) {
	var msg []byte
	inMessage, compressed := false, false
	for {
		var h [14]byte // the longest header: 2 + 8 (length) + 4 (mask)
		if err := m.read(h[:2]); err != nil {
			return nil, err
		}
		fin, op, rsv := h[0]&0x80 != 0, h[0]&0x0f, h[0]&0x70
		switch {
		case rsv == rsv1 && m.inflate && (op == 0x1 || op == 0x2):
			compressed = true // a compressed message's first frame
		case rsv != 0 && m.inflate:
			return nil, protocolError("reserved bits set other than RSV1 on a message's first frame")
		case rsv != 0:
			return nil, protocolError("reserved bits set (no extension was agreed)")
		}
		if h[1]&0x80 == 0 {
			return nil, protocolError("frame from the browser not masked")
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			if err := m.read(h[2:4]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(h[2:4]))
		case 127:
			if err := m.read(h[2:10]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(h[2:10])
		}
		if err := m.read(h[10:14]); err != nil {
			return nil, err
		}
		mask := h[10:14]

		if op >= 0x8 { // control: whole, short, may come between fragments
			if !fin || n > maxControlLength {
				return nil, protocolError("fragmented or long control frame")
			}
			p := make([]byte, n) // not a [125]byte on the stack: see the top
			if err := m.read(p); err != nil {
				return nil, err
			}
			unmask(p, mask)
			switch op {
			case 0x8:
				return nil, parseClose(p)
			case 0x9:
				m.ping(p)
			case 0xA: // pong: the read itself proves the browser alive
			default:
				return nil, protocolError(fmt.Sprintf("unknown opcode %#x", op))
			}
			continue
		}

		switch op {
		case 0x0:
			if !inMessage {
				return nil, protocolError("continuation frame without a message")
			}
		case 0x1, 0x2:
			if inMessage {
				return nil, protocolError("new message inside a fragmented one")
			}
			inMessage = true
		default:
			return nil, protocolError(fmt.Sprintf("unknown opcode %#x", op))
		}
		if n > uint64(m.limit-len(msg)) {
			return nil, errTooBig
		}
		start := len(msg)
		msg = append(msg, make([]byte, n)...)
		if err := m.read(msg[start:]); err != nil {
			return nil, err
		}
		unmask(msg[start:], mask)
		if fin && compressed {
			return inflate(msg, m.limit)
		}
		if fin {
			return msg, nil
		}
	}
}

// read fills p within a fresh deadline: each part of a frame (its header,
// its payload) must come within wait, so a browser cannot hold a
// half-read message by trickling a byte now and then.
func (m *msgReader) read(p []byte) error {
	if err := m.conn.SetReadDeadline(time.Now().Add(m.wait)); err != nil {
		return err
	}
	_, err := io.ReadFull(m.conn, p)
	return err
}

// unmask XORs a frame's whole payload p with its masking key.
func unmask(p, key []byte) {
	for i := range p {
		p[i] ^= key[i&3]
	}
}

// parseClose reads a close frame's payload (RFC 6455 section 5.5.1).
func parseClose(p []byte) error {
	switch {
	case len(p) == 0:
		return closeFrame{code: closeNoStatus}
	case len(p) == 1:
		return protocolError("close frame with a one-byte payload")
	}
	code := int(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return protocolError(fmt.Sprintf("close code %d", code))
	}
	if !utf8.Valid(p[2:]) {
		return protocolError("close reason not UTF-8")
	}
	return closeFrame{code: code, reason: string(p[2:])}
}

// validCloseCode reports whether a peer may send code (RFC 6455 section
// 7.4).
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}
