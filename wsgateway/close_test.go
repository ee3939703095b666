package wsgateway_test

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"switchyard/devices"
	"switchyard/wsgateway"
)

// TestCloseCodes: where docs/protocol.md (and the contract, for 1009)
// promise a close code, the browser gets it in a close frame. (Logout's
// 1008 is tested in TestLogoutEndsTheSession, shutdown's 1001 in
// TestCloseSendsGoingAway.)
func TestCloseCodes(t *testing.T) {
	h := newHarness(t, wsgateway.Config{})
	h.onlineBoard("b1", "OFF")
	tests := []struct {
		name   string
		path   string
		cause  func(br *browser)
		code   int
		reason string // its start
	}{
		{"message too big", "/ws", func(br *browser) {
			br.send(`{"device":"b1","action":"` + strings.Repeat("x", devices.MaxBrowserMessage) + `"}`)
		}, websocket.CloseMessageTooBig, "message too big"},
		{"protocol error: an unmasked frame", "/ws", func(br *browser) {
			if _, err := br.conn.NetConn().Write([]byte{0x81, 0x01, 'x'}); err != nil {
				t.Fatal(err)
			}
		}, websocket.CloseProtocolError, "frame from the browser not masked"},
		{"the browser's close code is echoed", "/ws", func(br *browser) {
			msg := websocket.FormatCloseMessage(4001, "bye")
			if err := br.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(wait)); err != nil {
				t.Fatal(err)
			}
		}, 4001, ""},
		{"a close without a code is answered 1000", "/ws", func(br *browser) {
			if err := br.conn.WriteControl(websocket.CloseMessage, nil, time.Now().Add(wait)); err != nil {
				t.Fatal(err)
			}
		}, websocket.CloseNormalClosure, ""},
		{"the board is forgotten (last: b1 is gone after it)", "/ws/b1", func(*browser) {
			if code := h.do("DELETE", "/api/devices/b1", "", nil); code/100 != 2 {
				t.Fatalf("DELETE = %d", code)
			}
		}, websocket.CloseGoingAway, "device removed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			br := h.browser(tt.path, nil)
			tt.cause(br)
			var ce *websocket.CloseError
			if err := readUntilEnd(br.conn); !errors.As(err, &ce) || ce.Code != tt.code || !strings.HasPrefix(ce.Text, tt.reason) {
				t.Errorf("connection ended with %v, want close %d %q", err, tt.code, tt.reason)
			}
		})
	}
}

// TestDroppedBrowserGetsNoCloseFrame: a browser that falls too far behind
// is cut off at once, without a close frame (it would wait behind all the
// browser does not read; docs/protocol.md says so): the browser sees its
// connection end or reset, never a close code such as 1008.
func TestDroppedBrowserGetsNoCloseFrame(t *testing.T) {
	h := newHarness(t, wsgateway.Config{QueueBytes: 32 << 10})
	b := h.onlineBoard("b1", "OFF")
	conn := h.dial(&tinyReadBuffer, h.smallSendServer()+"/ws")
	// ~300 KB for a browser that does not read: far more than the socket
	// buffers (16 KiB to send, 4 KiB to receive) and the 32 KiB queue.
	big := `{"id":"b1","firmware":"test","board":"paho","pad":"` + strings.Repeat("x", 3000) + `"}`
	for range 100 {
		b.pub(devices.KindInfo, big, false)
	}
	h.waitFor(func() bool { return strings.Contains(h.metrics(), "\nswitchyard_browsers_dropped_slow_total 1\n") })

	err := readUntilEnd(conn)
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure: // 1006: gorilla's name for "ended without a close frame"
		t.Errorf("dropped browser got a close frame: %v, want none", err)
	case errors.As(err, &ne) && ne.Timeout():
		t.Errorf("dropped browser still connected: %v", err)
	}
}
