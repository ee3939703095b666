package devices

import (
	"errors"
	"strings"
	"testing"
)

// TestKindTable holds the kind table to the contract's "MQTT topics" table,
// and every row, including rows added later, to the rules the topic code
// relies on.
func TestKindTable(t *testing.T) {
	for _, tc := range []struct {
		k         Kind
		suffix    string
		fromBoard bool
		known     bool
		qos       byte
		retained  bool
	}{
		{KindStatus, "status", true, true, 1, true},
		{KindLED, "led", true, true, 1, true},
		{KindCount, "count", true, true, 0, false},
		{KindInfo, "info", true, true, 1, true},
		{KindLEDSet, "led/set", false, false, 1, false},
		{KindUpdate, "update", true, false, 1, true},
		{KindUpdateSet, "update/set", false, false, 1, false},
		{KindUnknown, "unknown", false, false, 0, false},
		{Kind(255), "unknown", false, false, 0, false}, // outside the table
	} {
		if got := tc.k.MakesKnown(); got != tc.known {
			t.Errorf("%v.MakesKnown() = %v, want %v", tc.k, got, tc.known)
		}
		if got := tc.k.String(); got != tc.suffix {
			t.Errorf("Kind(%d).String() = %q, want %q", tc.k, got, tc.suffix)
		}
		if got := tc.k.FromBoard(); got != tc.fromBoard {
			t.Errorf("%v.FromBoard() = %v, want %v", tc.k, got, tc.fromBoard)
		}
		if got := tc.k.QoS(); got != tc.qos {
			t.Errorf("%v.QoS() = %d, want %d", tc.k, got, tc.qos)
		}
		if got := tc.k.Retained(); got != tc.retained {
			t.Errorf("%v.Retained() = %v, want %v", tc.k, got, tc.retained)
		}
	}

	tp := MustTopics("devices")
	seen := map[string]bool{}
	for _, k := range Kinds() {
		s := k.String()
		if k == KindUnknown || seen[s] || s == "unknown" {
			t.Errorf("kind %d: suffix %q is KindUnknown's or repeats another kind's", k, s)
		}
		seen[s] = true
		for _, level := range strings.Split(s, "/") {
			if level == "" || strings.ContainsAny(level, "+#$\x00") {
				t.Errorf("kind %q: level %q is empty or holds a wildcard, $ or NUL", s, level)
			}
		}
		topic := tp.Topic("b1", k)
		if got := MatchFilter(tp.BoardFilter(), topic); got != k.FromBoard() {
			t.Errorf("BoardFilter %q matches %q: %v, want %v (FromBoard)", tp.BoardFilter(), topic, got, k.FromBoard())
		}
		if !MatchFilter(tp.DeviceFilter("b1"), topic) || !MatchFilter(tp.AllFilter(), topic) {
			t.Errorf("DeviceFilter or AllFilter does not match %q", topic)
		}
	}
	if len(seen) == 0 {
		t.Error("Kinds() is empty")
	}
}

func TestParseBytesAllocatesNothing(t *testing.T) {
	tp := MustTopics("home/boards")
	topic := []byte("home/boards/kitchen-17/led/set")
	if n := testing.AllocsPerRun(100, func() {
		if _, _, ok := tp.ParseBytes(topic); !ok {
			t.Fatal("ParseBytes failed")
		}
	}); n != 0 {
		t.Errorf("ParseBytes allocates %v times per call, want 0", n)
	}
}

func TestMatchFilter(t *testing.T) {
	for _, tc := range []struct {
		filter, topic string
		want          bool
	}{
		{"devices/+/+", "devices/b1/led", true},
		{"devices/+/+", "devices/b1/led/set", false},
		{"devices/+/+", "devices/b1", false},
		{"devices/#", "devices/b1/led/set", true},
		{"devices/#", "other/b1", false},
		{"#", "a/b", true},
		{"a/b", "a/b", true},
		{"a/b", "a/b/c", false},
		{"a/b/c", "a/b", false},
		{"home/boards/+/+", "home/boards/x/count", true},
		{"devices/b1/#", "devices/b10/led", false},
	} {
		if got := MatchFilter(tc.filter, tc.topic); got != tc.want {
			t.Errorf("MatchFilter(%q, %q) = %v, want %v", tc.filter, tc.topic, got, tc.want)
		}
	}
}

func TestFilterUnder(t *testing.T) {
	tp := MustTopics("home/boards")
	for _, tc := range []struct {
		filter         string
		under, underB1 bool
	}{
		{"home/boards/#", true, false},
		{"home/boards/+/led", true, false},
		{"home/boards/b1/#", true, true},
		{"home/boards/b1/led/set", true, true},
		{"home/boards/b10/led", true, false}, // b10 is not b1
		{"home/boards/b1", true, false},      // P/<id> itself is not below P/<id>
		{"home/boards", false, false},
		{"home/boards/", false, false},
		{"home/+/b1/led", false, false}, // a wildcard above P reaches other trees
		{"home/#", false, false},
		{"#", false, false},
		{"home/boardsx/b1", false, false},
	} {
		if got := tp.Under(tc.filter); got != tc.under {
			t.Errorf("Under(%q) = %v, want %v", tc.filter, got, tc.under)
		}
		if got := tp.UnderDevice("b1", tc.filter); got != tc.underB1 {
			t.Errorf("UnderDevice(b1, %q) = %v, want %v", tc.filter, got, tc.underB1)
		}
		if got := FilterUnder(tp.Prefix(), tc.filter); got != tc.under {
			t.Errorf("FilterUnder(%q, %q) = %v, want %v", tp.Prefix(), tc.filter, got, tc.under)
		}
	}
}

func TestPrefix(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		ok     bool
	}{
		{"devices", true},
		{"home/boards", true},
		{"", true}, // default
		{"/devices", false},
		{"devices/", false},
		{"a//b", false},
		{"dev+ices", false},
		{"dev#", false},
		{"$SYS", false},
	} {
		_, err := NewTopics(tc.prefix)
		if got := err == nil; got != tc.ok {
			t.Errorf("NewTopics(%q) = %v, want ok=%v", tc.prefix, err, tc.ok)
		}
	}
}

func TestTopicsBuildAndParse(t *testing.T) {
	for _, prefix := range []string{"devices", "home/boards"} {
		tp := MustTopics(prefix)
		for _, k := range Kinds() {
			topic := tp.Topic("b-1", k)
			if want := prefix + "/b-1/" + k.String(); topic != want {
				t.Errorf("Topic(b-1, %v) = %q, want %q", k, topic, want)
			}
			id, got, ok := tp.Parse(topic)
			if !ok || id != "b-1" || got != k {
				t.Errorf("Parse(%q) = %q, %v, %v; want b-1, %v, true", topic, id, got, ok, k)
			}
			bid, bgot, bok := tp.ParseBytes([]byte(topic))
			if string(bid) != id || bgot != got || bok != ok {
				t.Errorf("ParseBytes(%q) = %q, %v, %v; Parse gave %q, %v, %v", topic, bid, bgot, bok, id, got, ok)
			}
		}
	}
	tp := MustTopics("devices")
	for _, topic := range []string{
		"devices", "devices/", "devices/b1", "devices/b1/", "devices/b1/other",
		"devices/b1/led/set/x", "devices/+/led", "devices/b 1/led", "other/b1/led",
		"devices//led", "devicesx/b1/led", "devices/b1/status/x", "devices/b1/unknown",
	} {
		if id, k, ok := tp.Parse(topic); ok {
			t.Errorf("Parse(%q) = %q, %v, ok; want not ok", topic, id, k)
		}
		if id, k, ok := tp.ParseBytes([]byte(topic)); ok {
			t.Errorf("ParseBytes(%q) = %q, %v, ok; want not ok", topic, id, k)
		}
	}
	if got, want := tp.BoardFilter(), "devices/+/+"; got != want {
		t.Errorf("BoardFilter = %q, want %q", got, want)
	}
	if got, want := tp.CommandFilter(), "devices/+/led/set"; got != want {
		t.Errorf("CommandFilter = %q, want %q", got, want)
	}
	if got, want := tp.DeviceFilter("x"), "devices/x/#"; got != want {
		t.Errorf("DeviceFilter = %q, want %q", got, want)
	}
}

func TestTopicsCheckID(t *testing.T) {
	tp := MustTopics("devices")
	for _, tc := range []struct {
		topic string
		bad   bool
	}{
		{"devices/b-1/count", false},
		{"devices/b-1/led/set", false},
		{"other/b.1/count", false},    // not under P
		{"devices/b1/other", false},   // not a board topic
		{"devices/b.1/count", true},   // '.'
		{"devices/b 1/status", true},  // space
		{"devices//led", true},        // empty
		{"devices/a.b/led/set", true}, // a command to a bad id
		{"devices/" + strings.Repeat("x", 65) + "/info", true},
	} {
		err := tp.CheckID(tc.topic)
		if (err != nil) != tc.bad {
			t.Errorf("CheckID(%q) = %v, want bad %v", tc.topic, err, tc.bad)
		}
		if err != nil && !errors.Is(err, ErrInvalidID) {
			t.Errorf("CheckID(%q) = %v, want it to wrap ErrInvalidID", tc.topic, err)
		}
	}
}

// The probe topic is the control plane's own and lies outside P whatever
// the prefix: no filter P/+/+ or P/# matches it, Parse and CheckID see no
// board in it.
func TestProbeTopic(t *testing.T) {
	for _, tc := range []struct {
		prefix, clientID, want string
	}{
		{"devices", "switchyard-host-8080", "switchyard/probe/switchyard-host-8080"},
		{"", "cp 1/a+b#", "switchyard/probe/cp-1-a-b-"},
		{"switchyard", "cp1", "switchyard-probe/cp1"},
		{"switchyard/probe", "cp1", "switchyard-probe/cp1"},
		{"switchyard-probe", "cp1", "switchyard/probe/cp1"},
		{"switchyard-probe/x", "cp1", "switchyard/probe/cp1"},
		{"home/boards", "status", "switchyard/probe/status"},
	} {
		tp := MustTopics(tc.prefix)
		got := tp.Probe(tc.clientID)
		if got != tc.want {
			t.Errorf("prefix %q: Probe(%q) = %q, want %q", tc.prefix, tc.clientID, got, tc.want)
		}
		for _, f := range []string{tp.BoardFilter(), tp.AllFilter(), tp.CommandFilter()} {
			if MatchFilter(f, got) {
				t.Errorf("prefix %q: %s matches the probe topic %q", tc.prefix, f, got)
			}
		}
		if _, _, ok := tp.Parse(got); ok {
			t.Errorf("prefix %q: Parse(%q) found a board", tc.prefix, got)
		}
		if err := tp.CheckID(got); err != nil {
			t.Errorf("prefix %q: CheckID(%q) = %v, want nil", tc.prefix, got, err)
		}
	}
}
