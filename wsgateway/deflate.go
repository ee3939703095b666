// Compression (RFC 7692 permessage-deflate, without context takeover in
// either direction, as gorilla negotiates it): a big broadcast is
// compressed once and the same bytes go to every browser that agreed,
// and browsers' compressed messages are inflated.
//
// Why: a rollout's event lists every board (about 100 bytes each) and
// goes to every browser at each change. With 1,000 boards and 100
// browsers that was 10 MB of writes per broadcast, and the live path's
// p99 during a rollout rose from 4-5 ms to 8-10 ms; with broadcasts off
// it stayed at 4-5 ms (bench/rollout.sh, run 2). The event compresses
// about twelvefold (TestBroadcastCompressed measures it). Browsers offer
// permessage-deflate (Chromium and Firefox always do); small messages, the
// live path's, are sent as they are: compressing each per browser would
// cost more than it saves.

package wsgateway

import (
	"bytes"
	"compress/flate"
	"io"
	"net/http"
	"strings"
	"sync"
)

// compressMin is the smallest broadcast worth compressing.
const compressMin = 1 << 10

// prepared is a broadcast's frames, encoded once for every browser.
type prepared struct {
	plain  []byte // a text frame with the event as it is
	packed []byte // the same compressed (RSV1 set); nil when not worth it
}

// prepare encodes event's frames.
func prepare(event []byte) *prepared {
	p := &prepared{plain: append(appendFrameHeader(make([]byte, 0, len(event)+10), opText, len(event)), event...)}
	if len(event) < compressMin {
		return p
	}
	z := deflate(event)
	if len(z) >= len(event) {
		return p
	}
	frame := appendFrameHeader(make([]byte, 0, len(z)+10), opText, len(z))
	frame[0] |= rsv1
	p.packed = append(frame, z...)
	return p
}

// rsv1 marks a compressed message (RFC 7692 section 6).
const rsv1 = 0x40

// flateWriters are deflaters at BestSpeed: a broadcast is compressed on
// its caller's goroutine.
var flateWriters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed) // a valid level: never an error
	return w
}}

// deflate compresses p as one message without context takeover: a raw
// DEFLATE stream, flushed, without the final 0x00 0x00 0xff 0xff.
func deflate(p []byte) []byte {
	var b bytes.Buffer
	w := flateWriters.Get().(*flate.Writer)
	defer flateWriters.Put(w)
	w.Reset(&b)
	_, _ = w.Write(p) // a bytes.Buffer does not fail
	_ = w.Flush()
	return bytes.TrimSuffix(b.Bytes(), deflateTail[:4])
}

// deflateTail ends a message for the inflater: the four bytes the sender
// left off and an empty final block, so the reader meets its end.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

var flateReaders sync.Pool

// inflate decompresses a browser's message z (without context takeover),
// errTooBig when it would be over limit bytes.
func inflate(z []byte, limit int) ([]byte, error) {
	src := io.MultiReader(bytes.NewReader(z), bytes.NewReader(deflateTail))
	r, _ := flateReaders.Get().(io.ReadCloser)
	if r == nil {
		r = flate.NewReader(src)
	} else {
		_ = r.(flate.Resetter).Reset(src, nil) // flate's Reset never fails
	}
	defer flateReaders.Put(r)
	msg, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	switch {
	case err != nil:
		return nil, protocolError("compressed message: " + err.Error())
	case len(msg) > limit:
		return nil, errTooBig
	}
	return msg, nil
}

// offersDeflate reports whether the handshake r offers permessage-deflate,
// which gorilla's Upgrader (EnableCompression) then accepts.
func offersDeflate(r *http.Request) bool {
	for _, v := range r.Header.Values("Sec-WebSocket-Extensions") {
		for _, ext := range strings.Split(v, ",") {
			name, _, _ := strings.Cut(ext, ";")
			if strings.TrimSpace(name) == "permessage-deflate" {
				return true
			}
		}
	}
	return false
}
