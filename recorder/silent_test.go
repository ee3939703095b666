package recorder

import (
	"slices"
	"testing"
	"time"

	"switchyard/history"
)

// TestSilentOffline: a board marked offline for its silence (external
// broker mode) is stored with the reason silent; the late Will that may
// follow repeats the offline and says nothing new; its next message makes
// it online again.
func TestSilentOffline(t *testing.T) {
	st := openStore(t)
	r := newRecorder(t, Config{}, st, newClock(t0))
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	r.Record(history.Event{At: at(1), Device: "b", Kind: history.KindOnline, By: history.ByBoard})
	r.Record(history.Event{At: at(20), Device: "b", Kind: history.KindOffline, Value: history.OfflineSilent})
	r.Record(history.Event{At: at(30), Device: "b", Kind: history.KindOffline, Value: history.OfflineWill})
	r.Record(history.Event{At: at(40), Device: "b", Kind: history.KindOnline, By: history.ByBoard})
	flush(t, r)
	var got []string
	for _, e := range events(t, st, "b") {
		got = append(got, string(e.Kind)+" "+e.Value)
	}
	if want := []string{"online ", "offline silent", "online "}; !slices.Equal(got, want) {
		t.Errorf("newest first: got %q, want %q", got, want)
	}
}
