package wsgateway

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
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
		asArray bool
		payload string
	}{
		{"one event", [][]byte{a}, false, `{"a":1}`},
		{"array", [][]byte{a, b}, true, `[{"a":1},{"b":2},{"c":3}]`},
		{"long", [][]byte{long, a}, true, "[" + string(long) + `,{"a":1}]`},
	}
	for _, tt := range tests {
		got := appendRound([]byte("keep"), &round{chunks: tt.chunks, asArray: tt.asArray})
		want := append(appendFrameHeader([]byte("keep"), opText, len(tt.payload)), tt.payload...)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: frame %q, want %q", tt.name, got, want)
		}
	}
}
