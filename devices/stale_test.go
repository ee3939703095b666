package devices

import (
	"testing"
	"time"
)

// TestFleetStale: a retained message sent again is stale when the fleet
// holds what it says, or when it is a silent board's status.
func TestFleetStale(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f, err := NewFleet([]Declared{{ID: "declared"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	apply := func(id string, k Kind, p string, at time.Time) {
		t.Helper()
		if _, err := f.Apply(id, k, []byte(p), at, nil); err != nil {
			t.Fatal(err)
		}
	}
	apply("b", KindStatus, "online", t0)
	apply("b", KindLED, "ON", t0)
	apply("b", KindInfo, `{"id":"b","interval_ms":1000}`, t0)
	apply("b", KindUpdate, `{"job":"j1","state":"confirmed","version":"1.2","running":"1.2","progress":100}`, t0)
	apply("c", KindCount, "4", t0) // online, inferred from a count: no status known
	apply("s", KindStatus, "online", t0)
	f.MarkSilent(Silence{}, t0.Add(time.Minute), t0, nil) // s (and b, c) silent
	apply("b", KindStatus, "online", t0.Add(time.Minute)) // b back
	apply("c", KindCount, "5", t0.Add(time.Minute))       // c back

	for _, tc := range []struct {
		id, payload string
		k           Kind
		want        bool
	}{
		{"b", "online", KindStatus, true},
		{"b", "offline", KindStatus, false},
		{"b", "ON", KindLED, true},
		{"b", "on", KindLED, true}, // case-insensitive, as Apply reads it
		{"b", "OFF", KindLED, false},
		{"b", `{"id":"b","interval_ms":1000}`, KindInfo, true},
		{"b", `{"id":"b","interval_ms":500}`, KindInfo, false},
		{"b", `{"job":"j1","state":"confirmed","version":"1.2","running":"1.2","progress":100}`, KindUpdate, true},
		{"b", `{"job":"j2","state":"confirmed","version":"1.3","running":"1.3","progress":100}`, KindUpdate, false},
		{"b", "7", KindCount, false},
		{"b", "", KindStatus, false},   // a clear is news
		{"b", "bogus", KindLED, false}, // Apply reports it
		{"c", "online", KindStatus, false},
		{"c", "ON", KindLED, false},
		{"s", "online", KindStatus, true}, // silent: only a fresh message revives it
		{"s", "offline", KindStatus, true},
		{"declared", "online", KindStatus, false},
		{"unknown", "online", KindStatus, false},
	} {
		if got := f.Stale(tc.id, tc.k, []byte(tc.payload)); got != tc.want {
			t.Errorf("Stale(%s, %s, %q) = %v, want %v", tc.id, tc.k, tc.payload, got, tc.want)
		}
	}
}
