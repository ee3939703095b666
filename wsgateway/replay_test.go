package wsgateway_test

import (
	"testing"
	"time"

	"switchyard/devices"
	"switchyard/history"
	"switchyard/internal/testutil"
	"switchyard/wsgateway"
)

// histAll is a History that hands every event to a channel.
type histAll chan history.Event

func (h histAll) Record(e history.Event)         { h <- e }
func (h histAll) Count(string, int64, time.Time) {}

// An external broker sends its retained messages again on every
// subscription: what the gateway already holds makes no event and no
// history; a retained message that differs is applied.
func TestRetainedReplay(t *testing.T) {
	hist := make(histAll, 64)
	h := newHarness(t, wsgateway.Config{History: hist})
	br := h.browser("/ws", nil)
	retained := wsgateway.Origin{Retained: true}
	ingest := func(topic, payload string, from wsgateway.Origin) {
		h.gw.IngestFrom("devices/b1/"+topic, []byte(payload), time.Now(), from)
	}
	state := func() {
		ingest("status", "online", retained)
		ingest("led", "ON", retained)
		ingest("info", `{"id":"b1","firmware":"1.0","board":"sim"}`, retained)
	}
	state()
	br.waitFor("b1", "online", "true")
	br.waitFor("b1", "ledStatus", `"LED ON"`)
	br.waitFor("b1", "info", "")
	for _, want := range []history.Kind{history.KindOnline, history.KindLED, history.KindInfo} {
		if e := testutil.Recv(t, hist, wait, string(want)); e.Kind != want {
			t.Fatalf("history: %s %q, want %s", e.Kind, e.Value, want)
		}
	}

	state() // the replay
	ingest("count", "5", wsgateway.Origin{})
	if e, err := br.next(); err != nil || e.Device != "b1" || e.Label != "count" || string(e.Value) != "5" {
		t.Errorf("after the replay: %v %v, want the count 5 and nothing before it", e, err)
	}

	ingest("led", "OFF", retained) // news: the board changed it while unheard
	br.waitFor("b1", "ledStatus", `"LED OFF"`)
	if e := testutil.Recv(t, hist, wait, "led OFF"); e.Kind != history.KindLED || e.Value != "OFF" {
		t.Errorf("history: %s %q, want led OFF (nothing for the replay)", e.Kind, e.Value)
	}
}

// A silent board's retained status, sent again, does not bring it back:
// only a fresh message does.
func TestRetainedReplayOfSilentBoard(t *testing.T) {
	hist := make(histAll, 64)
	h := newHarness(t, wsgateway.Config{History: hist, SilenceGrace: time.Second, SilenceIntervals: 2})
	br := h.browser("/ws", nil)
	b := h.board("b1")
	b.pub(devices.KindStatus, "online", true)
	br.waitFor("b1", "online", "true")
	br.waitFor("b1", "online", "false") // silent
	h.gw.IngestFrom("devices/b1/status", []byte("online"), time.Now(), wsgateway.Origin{Retained: true})
	h.gw.Ingest("devices/b2/count", []byte("1"), time.Now()) // a marker
	if e, err := br.next(); err != nil || e.Device != "b2" {
		t.Fatalf("after the replay: %v %v, want b2's first event and nothing of b1 before it", e, err)
	}
	b.pub(devices.KindCount, "3", false)
	br.waitFor("b1", "online", "true")
	for _, want := range []string{"online ", "offline " + history.OfflineSilent, "online "} {
		var e history.Event
		for e.Device != "b1" {
			e = testutil.Recv(t, hist, wait, want)
		}
		if string(e.Kind)+" "+e.Value != want {
			t.Errorf("history of b1: %s %q, want %s", e.Kind, e.Value, want)
		}
	}
}
