package loadgen

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
)

// serverFrame is an unmasked frame as a server writes it.
func serverFrame(h0 byte, payload []byte) []byte {
	f := []byte{h0}
	switch {
	case len(payload) < 126:
		f = append(f, byte(len(payload)))
	case len(payload) <= 0xffff:
		f = append(f, 126)
		f = binary.BigEndian.AppendUint16(f, uint16(len(payload)))
	default:
		f = append(f, 127)
		f = binary.BigEndian.AppendUint64(f, uint64(len(payload)))
	}
	return append(f, payload...)
}

// deflated is payload as permessage-deflate sends it.
func deflated(t *testing.T, payload string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := flate.NewWriter(&buf, flate.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(payload))
	w.Flush()
	return bytes.TrimSuffix(buf.Bytes(), []byte{0x00, 0x00, 0xff, 0xff})
}

// readClientFrame reads one masked frame from fd and returns its opcode
// and unmasked payload.
func readClientFrame(t *testing.T, fd int) (byte, []byte) {
	t.Helper()
	buf := make([]byte, 256)
	n, err := syscall.Read(fd, buf)
	if err != nil || n < 6 {
		t.Fatalf("read the browser's frame: %d bytes, %v", n, err)
	}
	if buf[1]&0x80 == 0 {
		t.Fatalf("frame % x: want masked", buf[:n])
	}
	size := int(buf[1] & 0x7f)
	key, payload := buf[2:6], buf[6:n]
	if len(payload) != size {
		t.Fatalf("frame % x: payload %d bytes, header says %d", buf[:n], len(payload), size)
	}
	out := make([]byte, size)
	for i := range payload {
		out[i] = payload[i] ^ key[i&3]
	}
	return buf[0] & 0x0f, out
}

// TestPollFrames feeds pollFrames a server's stream in pieces of every
// size: whole messages come out once each, fragments joined, a ping in
// the middle of a fragmented message answered with its pong.
func TestPollFrames(t *testing.T) {
	long := strings.Repeat("x", 300)
	huge := strings.Repeat("y", 70000)
	var stream []byte
	stream = append(stream, serverFrame(0x81, []byte("one"))...)
	stream = append(stream, serverFrame(0x01, []byte("tw"))...) // text, not final
	stream = append(stream, serverFrame(0x89, []byte("p1"))...) // ping between fragments
	stream = append(stream, serverFrame(0x80, []byte("o"))...)  // continuation, final
	stream = append(stream, serverFrame(0x81, []byte(long))...)
	stream = append(stream, serverFrame(0x82, []byte(huge))...)
	stream = append(stream, serverFrame(0xc1, deflated(t, `[{"device":"d"}]`))...) // RSV1: compressed
	want := []string{"one", "two", long, huge, `[{"device":"d"}]`}

	for _, piece := range []int{1, 3, 7, 1000, len(stream)} {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		b := &browser{pfd: fds[0]}
		var got []string
		collect := func(msg []byte, compressed bool) error {
			text, err := measured(msg, compressed)
			got = append(got, string(text))
			return err
		}
		for rest := stream; len(rest) > 0; {
			n := min(piece, len(rest))
			b.pbuf = append(b.pbuf, rest[:n]...)
			rest = rest[n:]
			if err := b.pollFrames(collect); err != nil {
				t.Fatalf("pieces of %d: %v", piece, err)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("pieces of %d: got %d messages, want %d", piece, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("pieces of %d: message %d is %.20q… (%d bytes), want %.20q… (%d bytes)", piece, i, got[i], len(got[i]), want[i], len(want[i]))
			}
		}
		if len(b.pbuf) != 0 {
			t.Errorf("pieces of %d: %d bytes left over, want none", piece, len(b.pbuf))
		}
		if op, payload := readClientFrame(t, fds[1]); op != 0xA || string(payload) != "p1" {
			t.Errorf("pieces of %d: answered the ping with opcode %#x %q, want a pong 0xa \"p1\"", piece, op, payload)
		}
		syscall.Close(fds[0])
		syscall.Close(fds[1])
	}
}

// TestPollFramesEnd: a close frame is answered and ends the connection; a
// masked frame from the server is an error.
func TestPollFramesEnd(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	none := func([]byte, bool) error { return errors.New("no message expected") }

	b := &browser{pfd: fds[0], pbuf: serverFrame(0x88, []byte{0x03, 0xe9, 'b', 'y', 'e'})}
	if err := b.pollFrames(none); err != io.EOF {
		t.Errorf("close frame: got %v, want io.EOF", err)
	}
	if op, payload := readClientFrame(t, fds[1]); op != 0x8 || !bytes.Equal(payload, []byte{0x03, 0xe9}) {
		t.Errorf("answered the close with opcode %#x % x, want 0x8 03 e9", op, payload)
	}

	masked := serverFrame(0x81, []byte("hi"))
	masked[1] |= 0x80
	b = &browser{pfd: fds[0], pbuf: masked}
	if err := b.pollFrames(none); err == nil || err == io.EOF {
		t.Errorf("masked server frame: got %v, want an error", err)
	}
}

// TestMeasured: another package's event is skipped, compressed or not.
func TestMeasured(t *testing.T) {
	tests := []struct {
		name       string
		msg        []byte
		compressed bool
		want       string // "" : skipped
	}{
		{"plain", []byte(`{"device":"a","label":"count","value":1}`), false, `{"device":"a","label":"count","value":1}`},
		{"plain event", []byte(`{"event":"rollout"}`), false, ""},
		{"compressed", deflated(t, `[{"device":"a"}]`), true, `[{"device":"a"}]`},
		{"compressed event", deflated(t, `{"event":"rollout","big":"`+strings.Repeat("z", 5000)+`"}`), true, ""},
		{"compressed short", deflated(t, `[]`), true, `[]`},
	}
	for _, tt := range tests {
		got, err := measured(tt.msg, tt.compressed)
		if err != nil || string(got) != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}
