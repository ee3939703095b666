package wsgateway_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"switchyard/devices"
	"switchyard/wsgateway"
)

// frameEvents reads the next frame and returns its events, as labels with
// values ("count=3", "ledStatus=\"LED ON\"", "command=pending").
func (b *browser) frameEvents() []string {
	b.t.Helper()
	b.pending = nil
	if _, err := b.next(); err != nil {
		b.t.Fatalf("reading a frame: %v", err)
	}
	return b.lastFrame
}

// TestCountsWaitForTheNextFanOut: with many browsers, counts wait (up to
// the coalescing gap, an hour here, so nothing but another message can
// release them) and go out in one frame with the next state message,
// which is never held; a command's pending event likewise waits for the
// board's confirmation and shares its frame.
func TestCountsWaitForTheNextFanOut(t *testing.T) {
	h := newHarness(t, wsgateway.Config{CoalescePerBrowser: time.Hour, CoalesceMax: time.Hour})
	cmds := h.subscribe("devices/+/led/set")
	b := h.onlineBoard("b1", "OFF")
	br := h.browser("/ws", nil)
	br.waitFor("b1", "ledStatus", `"LED OFF"`) // the snapshot
	b.pub(devices.KindLED, "OFF", true)        // state: at once, whatever the gap
	br.waitFor("b1", "ledStatus", `"LED OFF"`)

	for i := 1; i <= 5; i++ {
		b.pub(devices.KindCount, strconv.Itoa(i), false)
	}
	b.pub(devices.KindLED, "ON", true)
	got := strings.Join(br.frameEvents(), " ")
	if want := `count=1 count=2 count=3 count=4 count=5 ledStatus="LED ON"`; got != want {
		t.Errorf("frame after five counts and a state = %s, want %s", got, want)
	}

	br.send(`{"device":"b1","action":"toggle"}`)
	recvMQTT(t, cmds, "led/set")
	b.pub(devices.KindLED, "OFF", true)
	got = strings.Join(br.frameEvents(), " ")
	if want := `command=pending ledStatus="LED OFF" command=applied`; got != want {
		t.Errorf("frame after a toggle and its confirmation = %s, want %s", got, want)
	}
}
