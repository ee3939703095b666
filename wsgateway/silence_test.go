package wsgateway_test

import (
	"testing"
	"time"

	"switchyard/devices"
	"switchyard/history"
	"switchyard/internal/testutil"
	"switchyard/wsgateway"
)

// histEvents is a History that hands the online and offline events to a
// channel.
type histEvents chan history.Event

func (h histEvents) Record(e history.Event) {
	if e.Kind == history.KindOnline || e.Kind == history.KindOffline {
		h <- e
	}
}
func (h histEvents) Count(string, int64, time.Time) {}

// A board that stops sending without its Will being published (it stays
// connected and says nothing, as a board behind a dead broker node looks)
// is marked offline, silent, after its intervals plus the grace, and is
// online again at its next count; browsers see both and the history
// records offline "silent" and online. The harness stamps messages with
// whole seconds, so the window is kept above a second.
func TestSilentBoardOffline(t *testing.T) {
	hist := make(histEvents, 64)
	h := newHarness(t, wsgateway.Config{History: hist, SilenceGrace: time.Second, SilenceIntervals: 2})
	br := h.browser("/ws", nil)
	b := h.board("b1")
	b.pub(devices.KindStatus, "online", true)
	b.pub(devices.KindInfo, `{"id":"b1","firmware":"test","board":"paho","interval_ms":500}`, true)
	b.pub(devices.KindCount, "1", false)
	br.waitFor("b1", "online", "true")
	br.waitFor("b1", "count", "1")
	if e := testutil.Recv(t, hist, wait, "online in the history"); e.Kind != history.KindOnline {
		t.Fatalf("history: %+v, want online", e)
	}

	// Nothing more from b1 (its connection stays up: no Will).
	br.waitFor("b1", "online", "false")
	if e := testutil.Recv(t, hist, wait, "offline in the history"); e.Kind != history.KindOffline || e.Value != history.OfflineSilent {
		t.Errorf("history: %s %q, want offline %q", e.Kind, e.Value, history.OfflineSilent)
	}
	var d apiDevice
	if code := h.do("GET", "/api/devices/b1", "", &d); code != 200 || d.Online {
		t.Errorf("GET b1 = %d online %v, want 200 offline", code, d.Online)
	}

	b.pub(devices.KindCount, "2", false)
	br.waitFor("b1", "online", "true")
	br.waitFor("b1", "count", "2")
	if e := testutil.Recv(t, hist, wait, "online again in the history"); e.Kind != history.KindOnline || e.By != history.ByBoard {
		t.Errorf("history: %s by %q, want online by board", e.Kind, e.By)
	}
}

// A board whose status turns offline while it goes on counting (a late
// Last Will of an older session, or a cluster node's stale retained copy
// after a failover) is online again at its next count: browsers see both,
// and the history records the offline and the online, by the board. No
// silence rule is needed for it.
func TestStaleOfflineEndsWithACount(t *testing.T) {
	hist := make(histEvents, 64)
	h := newHarness(t, wsgateway.Config{History: hist})
	br := h.browser("/ws", nil)
	b := h.board("b1")
	b.pub(devices.KindStatus, "online", true)
	b.pub(devices.KindCount, "1", false)
	br.waitFor("b1", "count", "1")
	if e := testutil.Recv(t, hist, wait, "online in the history"); e.Kind != history.KindOnline {
		t.Fatalf("history: %+v, want online", e)
	}
	b.pub(devices.KindStatus, "offline", true) // the stale Will
	br.waitFor("b1", "online", "false")
	if e := testutil.Recv(t, hist, wait, "offline in the history"); e.Kind != history.KindOffline {
		t.Errorf("history: %+v, want offline", e)
	}
	b.pub(devices.KindCount, "2", false)
	br.waitFor("b1", "online", "true")
	br.waitFor("b1", "count", "2")
	if e := testutil.Recv(t, hist, wait, "online again in the history"); e.Kind != history.KindOnline || e.By != history.ByBoard {
		t.Errorf("history: %s by %q, want online by board", e.Kind, e.By)
	}
	var d apiDevice
	if code := h.do("GET", "/api/devices/b1", "", &d); code != 200 || !d.Online {
		t.Errorf("GET b1 = %d online %v, want 200 online", code, d.Online)
	}
}
