package history

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)

func TestSampler(t *testing.T) {
	type obs struct {
		id    string
		count int64
		at    time.Duration // after t0
	}
	tests := []struct {
		name string
		obs  []obs
		due  time.Duration // Due at t0+due, after the observations; 0: not called
		want []Point
	}{
		{"one step, nothing due yet", []obs{{"a", 1, 0}, {"a", 2, 30 * time.Second}}, 59 * time.Second, nil},
		{"the last count of a step, when the next starts", []obs{{"a", 1, 0}, {"a", 2, 59 * time.Second}, {"a", 3, 61 * time.Second}}, 0,
			[]Point{{"a", t0, 2}}},
		{"a board that stopped gets its step at Due", []obs{{"a", 7, 10 * time.Second}}, 60 * time.Second,
			[]Point{{"a", t0, 7}}},
		{"boards apart", []obs{{"a", 1, 0}, {"b", 5, 0}, {"a", 2, 60 * time.Second}}, 0,
			[]Point{{"a", t0, 1}}},
		{"a skipped step leaves no point", []obs{{"a", 1, 0}, {"a", 9, 5 * time.Minute}}, 0,
			[]Point{{"a", t0, 1}}},
		{"a clock step back keeps the newer step", []obs{{"a", 1, 2 * time.Minute}, {"a", 2, 0}, {"a", 3, 3 * time.Minute}}, 0,
			[]Point{{"a", t0.Add(2 * time.Minute), 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSampler(0)
			var got []Point
			for _, o := range tt.obs {
				got = s.Observe(o.id, o.count, t0.Add(o.at), got)
			}
			if tt.due > 0 {
				got = s.Due(t0.Add(tt.due), got)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSamplerDueOnce(t *testing.T) {
	s := NewSampler(time.Minute)
	s.Observe("a", 1, t0, nil)
	if got := s.Due(t0.Add(time.Minute), nil); len(got) != 1 {
		t.Fatalf("first Due: got %v, want one point", got)
	}
	if got := s.Due(t0.Add(2*time.Minute), nil); len(got) != 0 {
		t.Errorf("second Due: got %v, want none (already written)", got)
	}
	s.Observe("b", 1, t0, nil)
	s.Forget("b")
	if got := s.Due(t0.Add(time.Hour), nil); len(got) != 0 {
		t.Errorf("Due after Forget: got %v, want none", got)
	}
}

func TestParseQuery(t *testing.T) {
	tests := []struct {
		since, until, limit string
		want                Query
		bad                 bool
	}{
		{"", "", "", Query{Limit: DefaultLimit}, false},
		{"2026-12-03T14:00:00Z", "", "5", Query{Since: t0, Limit: 5}, false},
		{"", "2026-12-03T14:00:00Z", "1000", Query{Until: t0, Limit: 1000}, false},
		{"yesterday", "", "", Query{}, true},
		{"", "", "0", Query{}, true},
		{"", "", "1001", Query{}, true},
		{"", "", "ten", Query{}, true},
		{"2026-12-03T14:00:00Z", "2026-12-03T14:00:00Z", "", Query{}, true},
	}
	for _, tt := range tests {
		got, err := ParseQuery(tt.since, tt.until, tt.limit)
		if tt.bad {
			if !errors.Is(err, ErrBadQuery) {
				t.Errorf("ParseQuery(%q, %q, %q): got err %v, want ErrBadQuery", tt.since, tt.until, tt.limit, err)
			}
			continue
		}
		if err != nil || !got.Since.Equal(tt.want.Since) || !got.Until.Equal(tt.want.Until) || got.Limit != tt.want.Limit {
			t.Errorf("ParseQuery(%q, %q, %q): got %+v, %v, want %+v", tt.since, tt.until, tt.limit, got, err, tt.want)
		}
	}
}

func TestParseStep(t *testing.T) {
	for in, want := range map[string]time.Duration{"": time.Minute, "1m": time.Minute, "15m": 15 * time.Minute, "1h": time.Hour, "24h": 24 * time.Hour} {
		if got, err := ParseStep(in); err != nil || got != want {
			t.Errorf("ParseStep(%q): got %v, %v, want %v", in, got, err, want)
		}
		if want != time.Minute || in == "1m" {
			if got := FormatStep(want); got != in {
				t.Errorf("FormatStep(%v): got %q, want %q", want, got, in)
			}
		}
	}
	for _, in := range []string{"30s", "90s", "25h", "x", "-1m"} {
		if _, err := ParseStep(in); !errors.Is(err, ErrBadQuery) {
			t.Errorf("ParseStep(%q): got %v, want ErrBadQuery", in, err)
		}
	}
}

func TestDownsample(t *testing.T) {
	m := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	pts := []Point{{"a", m(0), 1}, {"a", m(1), 2}, {"a", m(14), 3}, {"a", m(15), 4}, {"a", m(31), 5}}
	got := Downsample(pts, 15*time.Minute)
	want := []Point{{"a", m(0), 3}, {"a", m(15), 4}, {"a", m(30), 5}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestByMQTT(t *testing.T) {
	if got := ByMQTT("alice", "c1"); got != "mqtt:alice" {
		t.Errorf("got %q, want mqtt:alice", got)
	}
	if got := ByMQTT("", "c1"); got != "mqtt:c1" {
		t.Errorf("got %q, want mqtt:c1", got)
	}
}
