package wsgateway_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"switchyard/devices"
	"switchyard/wsgateway"
)

// nextEvent reads b's next event, failing the test on an error.
func (b *browser) nextEvent(what string) event {
	b.t.Helper()
	e, err := b.next()
	if err != nil {
		b.t.Fatalf("waiting for %s: %v", what, err)
	}
	return e
}

// TestBroadcastReachesDashboardsOnly: Broadcast's events reach every /ws
// browser in order with the fleet's events, and no /ws/<id> browser; what
// is not one JSON object is refused.
func TestBroadcastReachesDashboardsOnly(t *testing.T) {
	h := newHarness(t, wsgateway.Config{})
	h.onlineBoard("b1", "OFF")
	dash := []*browser{h.browser("/ws", nil), h.browser("/ws", nil)}
	for _, d := range dash {
		d.waitFor("b1", "info", "") // the snapshot's last event
	}
	single := h.browser("/ws/b1", nil)
	single.waitFor("", "ledStatus", "")

	// Ingest directly, so that the order of the calls is the order of the
	// events.
	now := time.Now()
	h.gw.Ingest("devices/b1/count", []byte("5"), now)
	for _, bad := range []string{``, `not json`, `[{"event":"rollout"}]`, `{"event":"rollout"`, `"rollout"`} {
		h.gw.Broadcast([]byte(bad))
	}
	ev := []byte(`{"event":"rollout","id":"r1","state":"running"}`)
	h.gw.Broadcast(ev)
	copy(ev, "XXXXXXXX") // Broadcast copied it
	h.gw.Ingest("devices/b1/count", []byte("6"), now)
	for i, d := range dash {
		var got []string
		for range 3 {
			got = append(got, d.nextEvent("count, rollout, count").String())
		}
		if want := "b1/count=5 event rollout r1 b1/count=6"; strings.Join(got, " ") != want {
			t.Errorf("dashboard %d got %v, want %s", i, got, want)
		}
	}
	// The single-board browser's next events are the counts alone.
	for _, want := range []string{"5", "6"} {
		if e := single.nextEvent("count " + want); e.Label != "count" || string(e.Value) != want || e.Event != "" {
			t.Errorf("/ws/b1 got %v, want count=%s", e, want)
		}
	}
}

// TestBroadcastNeverWaitsForASlowBrowser: a browser that does not read is
// dropped when its queue overflows; Broadcast's caller never waits, and a
// browser that keeps up gets every event, in order.
func TestBroadcastNeverWaitsForASlowBrowser(t *testing.T) {
	h := newHarness(t, wsgateway.Config{QueueBytes: 512 << 10})
	h.onlineBoard("b1", "OFF")
	good := h.browser("/ws", nil)
	good.waitFor("b1", "info", "") // the snapshot's last event
	slow := h.dial(&tinyReadBuffer, h.wsURL("/ws"))

	// ~12 MB in batches of 300 kB, each broadcast once the good browser
	// has the last: more than loopback socket buffers and the queue bound
	// hold for the slow one, never more than the bound behind for the good.
	pad := strings.Repeat("x", 3000)
	next := 1
	for batch := 1; batch <= 40; batch++ {
		for range 100 {
			h.gw.Broadcast(fmt.Appendf(nil, `{"event":"rollout","id":"r%d","pad":%q}`, next, pad))
			next++
		}
		for want := next - 100; want < next; want++ {
			if e := good.nextEvent("a rollout event"); e.Event != "rollout" || e.ID != fmt.Sprintf("r%d", want) {
				t.Fatalf("good browser got %v, want rollout r%d", e, want)
			}
		}
	}
	h.wantDroppedSlow(slow)
}

// TestSnapshotExtrasAndUpdateLabel: a /ws browser gets Config.Snapshot's
// events right after the fleet's state (bad ones left out); a board's
// update report reaches /ws browsers as the update label, live and in the
// connect snapshot, and never /ws/<id> browsers.
func TestSnapshotExtrasAndUpdateLabel(t *testing.T) {
	var calls atomic.Int64
	h := newHarness(t, wsgateway.Config{Snapshot: func() [][]byte {
		calls.Add(1)
		return [][]byte{[]byte(`{"event":"rollout","id":"r1"}`), []byte(`oops`), []byte(`{"event":"rollout","id":"r2"}`)}
	}})
	b := h.onlineBoard("b1", "OFF")
	single := h.browser("/ws/b1", nil)
	single.waitFor("", "ledStatus", "")
	if n := calls.Load(); n != 0 {
		t.Errorf("a /ws/<id> browser called Snapshot %d times", n)
	}
	live := h.browser("/ws", nil)
	var got []string
	for range 5 {
		got = append(got, live.nextEvent("the snapshot").String())
	}
	want := `b1/online=true b1/ledStatus="LED OFF" b1/info={"id":"b1","firmware":"test","board":"paho"} event rollout r1 event rollout r2`
	if strings.Join(got, " ") != want {
		t.Errorf("connect snapshot:\n got %v\nwant %s", got, want)
	}

	report := `{"job":"r1/1","state":"downloading","version":"2.0","running":"1.0","progress":40}`
	b.pub(devices.KindUpdate, report, true)
	if e := live.waitFor("b1", "update", ""); string(e.Value) != report {
		t.Errorf("live update event %s, want %s", e.Value, report)
	}
	b.pub(devices.KindCount, "7", false)
	if e := single.nextEvent("count 7"); e.Label != "count" || string(e.Value) != "7" {
		t.Errorf("/ws/b1 got %v after an update report, want count=7 (no update label in its dialect)", e)
	}
	// A browser connecting now gets the report in the snapshot, after the
	// board's other state and before the extras.
	later := h.browser("/ws", nil)
	got = got[:0]
	for range 6 {
		got = append(got, later.nextEvent("the snapshot").String())
	}
	if got[4] != "b1/update="+report || got[5] != "event rollout r1" {
		t.Errorf("snapshot after an update report: %v, want update then the extras", got)
	}
}
