package wsgateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"switchyard/devices"
	"switchyard/wsgateway"
)

// countingConn counts the bytes read from the connection.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// countingBrowser dials /ws as a browser that offers permessage-deflate
// (as Chromium and Firefox do) or not, counting the bytes it reads.
func (h *harness) countingBrowser(compress bool) (*browser, *atomic.Int64) {
	h.t.Helper()
	var n atomic.Int64
	d := websocket.Dialer{
		EnableCompression: compress,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return countingConn{c, &n}, nil
		},
	}
	return &browser{t: h.t, conn: h.dial(&d, h.wsURL("/ws"))}, &n
}

// rolloutOf is a rollout event listing boards boards, as the update
// service sends it.
func rolloutOf(id string, boards int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"event":"rollout","id":%q,"state":"running","waves":[{"size":%d,"state":"running","boards":[`, id, boards)
	for i := range boards {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"sim-%04d","state":"pending","error":"","job":"","update":""}`, i)
	}
	b.WriteString(`]}],"counts":{"pending":1000}}`)
	return []byte(b.String())
}

// TestBroadcastCompressed: a browser that offers permessage-deflate gets a
// big broadcast compressed, the same event as a browser that does not,
// in order with the fleet's events, which stay as they are; and its own
// compressed commands are understood.
func TestBroadcastCompressed(t *testing.T) {
	h := newHarness(t, wsgateway.Config{})
	b := h.onlineBoard("b1", "OFF")
	cmds := h.subscribe("devices/+/led/set")
	packed, packedN := h.countingBrowser(true)
	plain, plainN := h.countingBrowser(false)
	for _, br := range []*browser{packed, plain} {
		br.waitFor("b1", "info", "") // the snapshot's last event
	}
	before := []int64{packedN.Load(), plainN.Load()}

	ev := rolloutOf("r1", 1000)
	b.pub(devices.KindCount, "7", false)
	packed.waitFor("b1", "count", "7")
	plain.waitFor("b1", "count", "7")
	h.gw.Broadcast(ev)
	h.gw.Ingest("devices/b1/count", []byte("8"), time.Now())
	var want map[string]any
	if err := json.Unmarshal(ev, &want); err != nil {
		t.Fatal(err)
	}
	for i, br := range []*browser{packed, plain} {
		if e := br.nextEvent("the rollout"); e.Event != "rollout" || e.ID != "r1" {
			t.Fatalf("browser %d: got %v, want the rollout first", i, e)
		}
		if e := br.nextEvent("count 8"); e.Label != "count" || string(e.Value) != "8" {
			t.Errorf("browser %d: got %v after the rollout, want b1/count=8", i, e)
		}
	}
	gotPacked, gotPlain := packedN.Load()-before[0], plainN.Load()-before[1]
	t.Logf("a %d-byte rollout event: %d bytes on the wire compressed, %d plain", len(ev), gotPacked, gotPlain)
	if gotPlain < int64(len(ev)) || gotPacked*4 > gotPlain {
		t.Errorf("bytes read: compressed %d, plain %d; want the plain browser to read the whole event (%d) and the compressed one under a quarter of it",
			gotPacked, gotPlain, len(ev))
	}

	// gorilla compresses what it sends once agreed: the commands arrive,
	// on /ws and on the seed tutorial's /ws/<id>.
	packed.send(`{"device":"b1","action":"toggle"}`)
	if m := recvMQTT(t, cmds, "led/set from the compressing browser"); string(m.Payload()) != "TOGGLE" {
		t.Errorf("led/set payload %q, want TOGGLE", m.Payload())
	}
	single := &browser{t: t, conn: h.dial(&websocket.Dialer{EnableCompression: true}, h.wsURL("/ws/b1"))}
	single.waitFor("", "ledStatus", "")
	single.send("ON")
	if m := recvMQTT(t, cmds, "led/set from /ws/b1"); string(m.Payload()) != "ON" {
		t.Errorf("led/set payload %q, want ON", m.Payload())
	}
}

// TestCompressedMessageBounds: a compressed browser message that inflates
// past devices.MaxBrowserMessage closes the connection with 1009, and one
// with RSV1 when nothing was agreed with 1002.
func TestCompressedMessageBounds(t *testing.T) {
	h := newHarness(t, wsgateway.Config{})
	h.onlineBoard("b1", "OFF")
	for _, c := range []struct {
		name     string
		compress bool
		msg      string
		code     int
	}{
		{"a bomb", true, strings.Repeat(" ", 64*devices.MaxBrowserMessage), websocket.CloseMessageTooBig},
		{"RSV1 unagreed", false, `{"device":"b1","action":"toggle"}`, websocket.CloseProtocolError},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := h.dial(&websocket.Dialer{EnableCompression: c.compress}, h.wsURL("/ws"))
			if !c.compress { // nothing was agreed
				raw := conn.NetConn()
				// A masked text frame with RSV1 set, written by hand.
				p := []byte(c.msg)
				frame := append([]byte{0x80 | 0x40 | 0x1, 0x80 | byte(len(p)), 0, 0, 0, 0}, p...)
				if _, err := raw.Write(frame); err != nil {
					t.Fatal(err)
				}
			} else if err := conn.WriteMessage(websocket.TextMessage, []byte(c.msg)); err != nil {
				t.Fatal(err)
			}
			err := readUntilEnd(conn)
			if !websocket.IsCloseError(err, c.code) {
				t.Errorf("got %v, want close %d", err, c.code)
			}
		})
	}
}
