package devices

import (
	"strings"
	"testing"
	"time"
)

func TestParseInfoInterval(t *testing.T) {
	for _, tc := range []struct {
		info string
		want int64
	}{
		{`{"id":"b","interval_ms":1000}`, 1000},
		{`{"id":"b","interval_ms": 250 ,"name":"x"}`, 250},
		{`{"id":"b"}`, 0},
		{`{"id":"b","interval_ms":"1000"}`, 0},
		{`{"id":"b","interval_ms":1.5}`, 0},
		{`{"id":"b","interval_ms":1e3}`, 0},
		{`{"id":"b","interval_ms":-5}`, 0},
		{`{"id":"b","interval_ms":99999999999999999999999}`, 0},
		{`{"id":"b","interval_ms":100,"interval_ms":"x"}`, 0},   // a later string wins
		{`{"id":"b","interval_ms":"x","interval_ms":100}`, 100}, // a later number wins
		{`{"id":"b","extra":{"interval_ms":100}}`, 0},           // top level only
		{`{"id":"b","interval_ms":null}`, 0},
	} {
		i, err := ParseInfo([]byte(tc.info))
		if err != nil {
			t.Errorf("ParseInfo(%s): %v", tc.info, err)
			continue
		}
		if i.IntervalMS != tc.want {
			t.Errorf("ParseInfo(%s).IntervalMS = %d, want %d", tc.info, i.IntervalMS, tc.want)
		}
	}
}

func TestSilenceLimit(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rule     Silence
		interval int64
		want     time.Duration
	}{
		{"contract, interval unknown", Silence{}, 0, 18 * time.Second},
		{"contract, 100 ms", Silence{}, 100, 15300 * time.Millisecond},
		{"contract, 10 s", Silence{}, 10000, 45 * time.Second},
		{"short, for tests", Silence{Grace: 200 * time.Millisecond, Intervals: 2}, 500, 1200 * time.Millisecond},
		{"absurd interval: the default", Silence{}, 1 << 50, 18 * time.Second},
	} {
		d := Device{Info: Info{IntervalMS: tc.interval}}
		if got := tc.rule.Limit(&d); got != tc.want {
			t.Errorf("%s: Limit = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestFleetSilence runs scripts of board messages and silence checks
// against one board "b" (and a quiet neighbour "q" where a script uses it)
// under the contract's rule, and compares the events and state.
func TestFleetSilence(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	type step struct {
		at   time.Duration // after t0
		kind string        // a topic kind applied to id; "" runs MarkSilent; "deaf" sets listening to at

		id      string // "" means "b"
		payload string
		want    string // the events, as on the wire, space-separated
	}
	const (
		off   = `{"device":"b","label":"online","value":false}`
		on    = `{"device":"b","label":"online","value":true}`
		count = `{"device":"b","label":"count","value":%s}`
	)
	for _, tc := range []struct {
		name   string
		steps  []step
		online bool // b at the end
		silent bool
	}{
		{"quiet past 3 × 1 s + 15 s, then counts again", []step{
			{at: 0, kind: "status", payload: "online", want: on},
			{at: 18 * time.Second, want: ""}, // exactly the limit: not yet
			{at: 18*time.Second + time.Millisecond, want: off},
			{at: 60 * time.Second, want: ""}, // marked once
			{at: 61 * time.Second, kind: "count", payload: "7", want: on + " " + strings.Replace(count, "%s", "7", 1)},
			{at: 62 * time.Second, want: ""},
		}, true, false},
		{"interval from info", []step{
			{at: 0, kind: "status", payload: "online", want: on},
			{at: 0, kind: "info", payload: `{"id":"b","interval_ms":5000}`, want: `{"device":"b","label":"info","value":{"id":"b","interval_ms":5000}}`},
			{at: 30 * time.Second, want: ""},
			{at: 30*time.Second + time.Millisecond, want: off},
		}, false, true},
		{"every message counts, not only counts", []step{
			{at: 0, kind: "status", payload: "online", want: on},
			{at: 10 * time.Second, kind: "led", payload: "ON", want: `{"device":"b","label":"ledStatus","value":"LED ON"}`},
			{at: 28 * time.Second, want: ""},
			{at: 28*time.Second + time.Millisecond, want: off},
		}, false, true},
		{"a status online brings it back once", []step{
			{at: 0, kind: "count", payload: "1", want: on + " " + strings.Replace(count, "%s", "1", 1)},
			{at: 20 * time.Second, want: off},
			{at: 21 * time.Second, kind: "status", payload: "online", want: on},
		}, true, false},
		{"a led brings it back", []step{
			{at: 0, kind: "status", payload: "online", want: on},
			{at: 20 * time.Second, want: off},
			{at: 21 * time.Second, kind: "led", payload: "OFF", want: on + ` {"device":"b","label":"ledStatus","value":"LED OFF"}`},
		}, true, false},
		{"an update report brings it back", []step{
			{at: 0, kind: "status", payload: "online", want: on},
			{at: 20 * time.Second, want: off},
			{at: 21 * time.Second, kind: "update", payload: `{"job":"j1","state":"verifying"}`, want: on + ` {"device":"b","label":"update","value":{"job":"j1","state":"verifying","version":"","running":"","progress":0}}`},
		}, true, false},
		{"a late Will after the silence: offline, until the board counts (the Will was stale)", []step{
			{at: 0, kind: "status", payload: "online", want: on},
			{at: 20 * time.Second, want: off},
			{at: 21 * time.Second, kind: "status", payload: "offline", want: off},
			{at: 22 * time.Second, kind: "count", payload: "3", want: on + " " + strings.Replace(count, "%s", "3", 1)},
		}, true, false},
		{"quiet while the control plane could not hear does not count", []step{
			{at: 0, kind: "status", payload: "online", want: on},
			{at: 60 * time.Second, kind: "deaf"}, // its broker connection came back
			{at: 78 * time.Second, want: ""},
			{at: 78*time.Second + time.Millisecond, want: off},
		}, false, true},
		{"listening from the future: nothing judged", []step{
			{at: 0, kind: "status", payload: "online", want: on},
			{at: 60 * time.Second, kind: "deaf"},
			{at: 30 * time.Second, want: ""},
		}, true, false},
		{"offline boards are not judged", []step{
			{at: 0, kind: "status", payload: "offline", want: off},
			{at: time.Hour, want: ""},
		}, false, false},
		{"only the quiet one", []step{
			{at: 0, kind: "status", id: "q", payload: "online", want: `{"device":"q","label":"online","value":true}`},
			{at: 0, kind: "status", payload: "online", want: on},
			{at: 15 * time.Second, kind: "count", payload: "2", want: strings.Replace(count, "%s", "2", 1)},
			{at: 20 * time.Second, want: `{"device":"q","label":"online","value":false}`},
		}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			listening := t0
			f, err := NewFleet([]Declared{{ID: "never-seen"}}, 0)
			if err != nil {
				t.Fatal(err)
			}
			kinds := map[string]Kind{"status": KindStatus, "count": KindCount, "led": KindLED, "info": KindInfo, "update": KindUpdate}
			for i, s := range tc.steps {
				var evs []Event
				now := t0.Add(s.at)
				switch s.kind {
				case "deaf":
					listening = now
				case "":
					evs = f.MarkSilent(Silence{}, now, listening, nil)
				default:
					id := s.id
					if id == "" {
						id = "b"
					}
					k, ok := kinds[s.kind]
					if !ok {
						t.Fatalf("step %d: no kind %q", i, s.kind)
					}
					if evs, err = f.Apply(id, k, []byte(s.payload), now, nil); err != nil {
						t.Fatalf("step %d: %v", i, err)
					}
				}
				var got []string
				for _, ev := range evs {
					got = append(got, string(ev.AppendJSON(nil)))
				}
				if g := strings.Join(got, " "); g != s.want {
					t.Errorf("step %d (%s at %v): events\n%s\nwant\n%s", i, s.kind, s.at, g, s.want)
				}
			}
			d, _ := f.Get("b")
			if d.Online != tc.online || d.Silent != tc.silent || f.Silent("b") != tc.silent {
				t.Errorf("b online %v silent %v, want online %v silent %v", d.Online, d.Silent, tc.online, tc.silent)
			}
			online := 0
			for _, d := range f.Snapshot(nil) {
				if d.Online {
					online++
				}
			}
			if f.OnlineCount() != online {
				t.Errorf("OnlineCount = %d, want %d", f.OnlineCount(), online)
			}
		})
	}
}
