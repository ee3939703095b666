package devices

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidateID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"board-1", true},
		{"A_z-09", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{"+", false},
		{"#", false},
		{"a/b", false},
		{"a b", false},
		{"ümlaut", false},
		{"a.b", false},
	} {
		err := ValidateID(tc.id)
		if got := err == nil; got != tc.ok {
			t.Errorf("ValidateID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
		if got := ValidID(tc.id); got != tc.ok {
			t.Errorf("ValidID(%q) = %v, want %v", tc.id, got, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidID) {
			t.Errorf("ValidateID(%q) error %v does not wrap ErrInvalidID", tc.id, err)
		}
	}
}

func TestSanitizeID(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"raspberrypi", "raspberrypi"},
		{"my.host.local", "my-host-local"},
		{"", "board"},
		{strings.Repeat("x", 70), strings.Repeat("x", 64)},
		{"héllo", "h--llo"},
	} {
		got := SanitizeID(tc.in)
		if got != tc.want {
			t.Errorf("SanitizeID(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if !ValidID(got) {
			t.Errorf("SanitizeID(%q) = %q is not a valid id", tc.in, got)
		}
	}
}

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Command
	}{
		{"ON", CmdOn}, {"on", CmdOn}, {"On", CmdOn},
		{"OFF", CmdOff}, {"off", CmdOff},
		{"TOGGLE", CmdToggle}, {"toggle", CmdToggle}, {"ToGgLe", CmdToggle},
		{" toggle\n", CmdToggle},
		{"", CmdNone}, {"1", CmdNone}, {"onn", CmdNone}, {"{}", CmdNone}, {"flip", CmdNone},
	} {
		got, err := ParseCommand([]byte(tc.in))
		if got != tc.want {
			t.Errorf("ParseCommand(%q) = %v, want %v", tc.in, got, tc.want)
		}
		if (err == nil) != (tc.want != CmdNone) {
			t.Errorf("ParseCommand(%q) error = %v", tc.in, err)
		}
	}
	if CmdToggle.Apply(true) || !CmdToggle.Apply(false) || !CmdOn.Apply(false) || CmdOff.Apply(true) {
		t.Error("Command.Apply is wrong")
	}
}

func TestParseValues(t *testing.T) {
	if on, err := ParseLED([]byte("ON")); err != nil || !on {
		t.Errorf("ParseLED(ON) = %v, %v", on, err)
	}
	if on, err := ParseLED([]byte("off")); err != nil || on {
		t.Errorf("ParseLED(off) = %v, %v", on, err)
	}
	if _, err := ParseLED([]byte("TOGGLE")); err == nil {
		t.Error("ParseLED(TOGGLE) accepted")
	}
	if on, err := ParseStatus([]byte("online")); err != nil || !on {
		t.Errorf("ParseStatus(online) = %v, %v", on, err)
	}
	if _, err := ParseStatus([]byte("up")); err == nil {
		t.Error("ParseStatus(up) accepted")
	}
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"42", 42, true}, {"9223372036854775807", 1<<63 - 1, true},
		{"-1", 0, false}, {"+1", 0, false}, {"1.5", 0, false}, {"", 0, false},
		{"abc", 0, false}, {"99999999999999999999", 0, false}, {"0x10", 0, false},
		{" 7\n", 7, true}, {" ", 0, false}, {"12a", 0, false}, {"9999999999999999999", 0, false},
	} {
		got, err := ParseCount([]byte(tc.in))
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("ParseCount(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseInfo(t *testing.T) {
	in := ` {"id":"b1","firmware":"devicefw 1.0","board":"esp32","name":"Kitchen \u00e9","ip":"10.0.0.5","interval_ms":1000,"extra":{"a":[1,2,null]}} `
	info, err := ParseInfo([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if info.ID != "b1" || info.Firmware != "devicefw 1.0" || info.Board != "esp32" || info.Name != "Kitchen é" || info.IP != "10.0.0.5" {
		t.Errorf("ParseInfo fields = %+v", info)
	}
	if got, want := string(info.Raw), strings.TrimSpace(in); got != want {
		t.Errorf("Raw = %s, want %s", got, want)
	}
	for _, bad := range []string{"", "[]", `"x"`, "{", `{"a":}`, `{"a":1}x`, `{"a":1,}`, "null", strings.Repeat("[", 40)} {
		if _, err := ParseInfo([]byte(bad)); err == nil {
			t.Errorf("ParseInfo(%q) accepted", bad)
		}
	}
	if _, err := ParseInfo([]byte(`{"a":"` + strings.Repeat("x", MaxInfoSize) + `"}`)); err == nil {
		t.Error("oversized info accepted")
	}
}

func TestAppendInfo(t *testing.T) {
	got := string(AppendInfo(nil, "b1", "devicefw 0.1", "sim", `say "hi"`, "", 1000))
	want := `{"id":"b1","firmware":"devicefw 0.1","board":"sim","name":"say \"hi\"","interval_ms":1000}`
	if got != want {
		t.Errorf("AppendInfo = %s, want %s", got, want)
	}
	info, err := ParseInfo([]byte(got))
	if err != nil || info.Name != `say "hi"` {
		t.Errorf("round trip: %+v, %v", info, err)
	}
}

func TestEventJSON(t *testing.T) {
	for _, tc := range []struct {
		ev            Event
		multi, single string
	}{
		{Event{Device: "b1", Label: LabelLED, On: true}, `{"device":"b1","label":"ledStatus","value":"LED ON"}`, `{"label":"ledStatus","value":"LED ON"}`},
		{Event{Device: "b1", Label: LabelLED}, `{"device":"b1","label":"ledStatus","value":"LED OFF"}`, `{"label":"ledStatus","value":"LED OFF"}`},
		{Event{Device: "b1", Label: LabelCount, Count: 42}, `{"device":"b1","label":"count","value":42}`, `{"label":"count","value":42}`},
		{Event{Device: "b1", Label: LabelOnline, On: true}, `{"device":"b1","label":"online","value":true}`, ``},
		{Event{Device: "b1", Label: LabelInfo, Info: []byte(`{"id":"b1"}`)}, `{"device":"b1","label":"info","value":{"id":"b1"}}`, ``},
		{Event{Device: "b1", Label: LabelRemoved, On: true}, `{"device":"b1","label":"removed","value":true}`, ``},
		{Event{Device: "b1", Label: LabelCommand, CommandID: "c1", Command: CmdToggle, Message: "pending"}, `{"device":"b1","label":"command","value":{"id":"c1","command":"TOGGLE","state":"pending"}}`, ``},
		{Event{Device: "b1", Label: LabelMeta, Info: []byte(`{"name":"Hall","tags":["a"]}`)}, `{"device":"b1","label":"meta","value":{"name":"Hall","tags":["a"]}}`, ``},
		{Event{Label: LabelError, Message: `bad "x"`}, `{"label":"error","value":"bad \"x\""}`, `{"label":"error","value":"bad \"x\""}`},
	} {
		if got := string(tc.ev.AppendJSON(nil)); got != tc.multi {
			t.Errorf("AppendJSON = %s, want %s", got, tc.multi)
		}
		if !json.Valid([]byte(tc.multi)) {
			t.Errorf("%s is not valid JSON", tc.multi)
		}
		if tc.single != "" {
			if !tc.ev.SingleBoard() {
				t.Errorf("%v should be in the single-board dialect", tc.ev.Label)
			}
			if got := string(tc.ev.AppendSingle(nil)); got != tc.single {
				t.Errorf("AppendSingle = %s, want %s", got, tc.single)
			}
		} else if tc.ev.SingleBoard() {
			t.Errorf("%v should not be in the single-board dialect", tc.ev.Label)
		}
	}
}

func TestParseBrowserMessage(t *testing.T) {
	for _, tc := range []struct {
		in      string
		target  Target
		cmd     Command
		errPart string
	}{
		{`{"device":"b1","action":"toggle"}`, Target{Device: "b1"}, CmdToggle, ""},
		{`{"action":"ON","device":"b1"}`, Target{Device: "b1"}, CmdOn, ""},
		{`{"device":"b1","action":"Off","extra":[1]}`, Target{Device: "b1"}, CmdOff, ""},
		{`not json`, Target{}, CmdNone, "not a JSON object"},
		{`{"device":"b1","action":"toggle"`, Target{}, CmdNone, "invalid JSON"},
		{`{"action":"toggle"}`, Target{}, CmdNone, `missing "device"`},
		{`{"device":"b/1","action":"toggle"}`, Target{}, CmdNone, "invalid device id"},
		{`{"device":"b1"}`, Target{Device: "b1"}, CmdNone, `missing "action"`},
		{`{"device":"b1","action":"explode"}`, Target{Device: "b1"}, CmdNone, `unknown action "explode"`},
		{`{"device":1,"action":"toggle"}`, Target{}, CmdNone, `missing "device"`},
		{`{"group":"kitchen","action":"OFF"}`, Target{Group: "kitchen"}, CmdOff, ""},
		{`{"group":"","action":"on"}`, Target{}, CmdNone, `"group" must be`},
		{`{"tag":"floor-2","action":"toggle"}`, Target{Tag: "floor-2"}, CmdToggle, ""},
		{`{"tag":"Floor","action":"on"}`, Target{}, CmdNone, `"tag": invalid tag "Floor"`},
		{`{"tag":"","action":"on"}`, Target{}, CmdNone, `"tag": invalid tag: empty`},
		{`{"tag":"attic"}`, Target{Tag: "attic"}, CmdNone, `missing "action"`},
		{`{"device":"b1","group":"g","action":"on"}`, Target{}, CmdNone, `name one of "device", "group" and "tag"`},
		{`{"group":"g","tag":"t","action":"on"}`, Target{}, CmdNone, `name one of`},
		{`{"device":"b1","tag":"t","action":"on"}`, Target{}, CmdNone, `name one of`},
	} {
		target, cmd, err := ParseBrowserMessage([]byte(tc.in))
		if target != tc.target || cmd != tc.cmd {
			t.Errorf("ParseBrowserMessage(%s) = %+v, %v; want %+v, %v", tc.in, target, cmd, tc.target, tc.cmd)
		}
		if tc.errPart == "" && err != nil {
			t.Errorf("ParseBrowserMessage(%s) error %v", tc.in, err)
		}
		if tc.errPart != "" && (err == nil || !strings.Contains(err.Error(), tc.errPart)) {
			t.Errorf("ParseBrowserMessage(%s) error %v, want it to contain %q", tc.in, err, tc.errPart)
		}
		if err != nil && !errors.Is(err, ErrBadMessage) {
			t.Errorf("ParseBrowserMessage(%s) error %v does not wrap ErrBadMessage", tc.in, err)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"b\s`, "ctl\x00\x01\n\t", "<a&b>", "é ü 🙂", "bad\xffutf8", "\u2028\u2029"} {
		b := AppendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("AppendJSONString(%q) = %s: %v", s, b, err)
			continue
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if got != want {
			t.Errorf("round trip of %q = %q, want %q", s, got, want)
		}
	}
}

func TestFleet(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f, err := NewFleet([]Declared{{ID: "zeta", Name: "Zeta board"}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	apply := func(id string, k Kind, p string) []Event {
		t.Helper()
		evs, err := f.Apply(id, k, []byte(p), t0, nil)
		if err != nil {
			t.Fatalf("Apply(%s, %v, %q): %v", id, k, p, err)
		}
		return evs
	}
	if evs := apply("b1", KindLEDSet, "ON"); len(evs) != 0 || f.Len() != 1 {
		t.Errorf("led/set made a device known: %v, len %d", evs, f.Len())
	}
	if evs := apply("b1", KindStatus, ""); len(evs) != 0 || f.Len() != 1 {
		t.Errorf("empty payload made a device known: %v, len %d", evs, f.Len())
	}
	apply("gone", KindLED, "ON")
	if evs := apply("gone", KindStatus, ""); len(evs) != 1 || evs[0].Label != LabelRemoved || f.Len() != 1 {
		t.Errorf("an empty status did not forget a known board: %v, len %d", evs, f.Len())
	}
	evs := apply("b1", KindStatus, "online")
	if len(evs) != 1 || evs[0].Label != LabelOnline || !evs[0].On {
		t.Errorf("status online events = %+v", evs)
	}
	apply("b1", KindLED, "ON")
	if evs := apply("b1", KindLED, "ON"); len(evs) != 1 || evs[0].Label != LabelLED {
		t.Errorf("unchanged led must still be an event: %+v", evs)
	}
	apply("b1", KindCount, "7")
	apply("a0", KindCount, "1")
	apply("a0", KindStatus, "offline") // its Will, after its last count
	if _, err := f.Apply("b1", KindCount, []byte("x"), t0, nil); !errors.Is(err, ErrBadPayload) {
		t.Errorf("bad count error = %v", err)
	}
	if f.OnlineCount() != 1 || f.Len() != 3 {
		t.Errorf("online %d len %d, want 1 3", f.OnlineCount(), f.Len())
	}
	snap := f.Snapshot(nil)
	var ids []string
	for _, d := range snap {
		ids = append(ids, d.ID)
	}
	if got, want := strings.Join(ids, ","), "a0,b1,zeta"; got != want {
		t.Errorf("snapshot order %s, want %s", got, want)
	}
	b1 := snap[1]
	if !b1.Online || !b1.HasLED || !b1.LEDOn || b1.Count != 7 || !b1.LastSeen.Equal(t0) || b1.Name() != "b1" {
		t.Errorf("b1 = %+v", b1)
	}
	if snap[2].Name() != "Zeta board" || !snap[2].LastSeen.IsZero() {
		t.Errorf("zeta = %+v", snap[2])
	}
	var got []string
	for _, ev := range f.AppendEvents(nil) {
		got = append(got, string(ev.AppendJSON(nil)))
	}
	want := []string{
		`{"device":"a0","label":"online","value":false}`,
		`{"device":"a0","label":"count","value":1}`,
		`{"device":"b1","label":"online","value":true}`,
		`{"device":"b1","label":"ledStatus","value":"LED ON"}`,
		`{"device":"b1","label":"count","value":7}`,
		`{"device":"zeta","label":"online","value":false}`,
		`{"device":"zeta","label":"meta","value":{"name":"Zeta board","tags":[]}}`, // a config name
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("snapshot events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if ev, ok := f.Forget("b1"); !ok || ev.Label != LabelRemoved {
		t.Errorf("Forget(b1) = %+v, %v", ev, ok)
	}
	if _, ok := f.Forget("b1"); ok {
		t.Error("Forget twice succeeded")
	}
	if f.OnlineCount() != 0 || f.Len() != 2 {
		t.Errorf("after forget online %d len %d", f.OnlineCount(), f.Len())
	}
	apply("zeta", KindInfo, `{"id":"zeta","name":"from info","firmware":"f","board":"b"}`)
	if d, _ := f.Get("zeta"); d.Name() != "Zeta board" {
		t.Errorf("config name must win over info name, got %q", d.Name())
	}
	apply("a0", KindInfo, `{"id":"a0","name":"from info","firmware":"f","board":"b"}`)
	if d, _ := f.Get("a0"); d.Name() != "from info" {
		t.Errorf("info name = %q", d.Name())
	}
}

// A count comes only from a connected board, so it says online where no
// status has: a declared board never seen, a board forgotten while it
// stayed connected.
func TestFleetCountImpliesOnline(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	labels := func(evs []Event) string {
		var s []string
		for _, ev := range evs {
			s = append(s, string(ev.AppendJSON(nil)))
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		name     string
		declared []Declared
		before   [][2]string // kind, payload applied to "b" first
		want     string      // events of the count "5" that follows
		online   bool
	}{
		{"unknown board", nil, nil,
			`{"device":"b","label":"online","value":true} {"device":"b","label":"count","value":5}`, true},
		{"declared, never seen", []Declared{{ID: "b"}}, nil,
			`{"device":"b","label":"online","value":true} {"device":"b","label":"count","value":5}`, true},
		{"forgotten while connected", nil, [][2]string{{"status", "online"}, {"status", ""}},
			`{"device":"b","label":"online","value":true} {"device":"b","label":"count","value":5}`, true},
		{"online", nil, [][2]string{{"status", "online"}},
			`{"device":"b","label":"count","value":5}`, true},
		// A stale offline: a late Will of an older session, or a cluster
		// node's stale retained copy, while the board counts on.
		{"offline", nil, [][2]string{{"status", "online"}, {"status", "offline"}},
			`{"device":"b","label":"online","value":true} {"device":"b","label":"count","value":5}`, true},
		{"offline, never online", nil, [][2]string{{"status", "offline"}},
			`{"device":"b","label":"online","value":true} {"device":"b","label":"count","value":5}`, true},
		{"counted before, status unknown", nil, [][2]string{{"count", "4"}},
			`{"device":"b","label":"count","value":5}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := NewFleet(tc.declared, 0)
			if err != nil {
				t.Fatal(err)
			}
			kinds := map[string]Kind{"status": KindStatus, "count": KindCount}
			for _, m := range tc.before {
				if _, err := f.Apply("b", kinds[m[0]], []byte(m[1]), t0, nil); err != nil {
					t.Fatal(err)
				}
			}
			evs, err := f.Apply("b", KindCount, []byte("5"), t0, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := labels(evs); got != tc.want {
				t.Errorf("events = %s, want %s", got, tc.want)
			}
			d, _ := f.Get("b")
			if d.Online != tc.online || (f.OnlineCount() == 1) != tc.online {
				t.Errorf("online = %v (count %d), want %v", d.Online, f.OnlineCount(), tc.online)
			}
		})
	}
}

func TestFleetLimit(t *testing.T) {
	f, _ := NewFleet(nil, 2)
	for _, id := range []string{"a", "b"} {
		if _, err := f.Apply(id, KindCount, []byte("1"), time.Time{}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.Apply("c", KindCount, []byte("1"), time.Time{}, nil); !errors.Is(err, ErrFleetFull) {
		t.Errorf("third device: %v, want ErrFleetFull", err)
	}
	if _, err := f.Apply("a", KindCount, []byte("2"), time.Time{}, nil); err != nil {
		t.Errorf("known device refused when full: %v", err)
	}
	if _, err := NewFleet([]Declared{{ID: "bad id"}}, 0); err == nil {
		t.Error("invalid declared id accepted")
	}
}

func TestFleetDeclare(t *testing.T) {
	f, _ := NewFleet([]Declared{{ID: "a"}}, 3)
	if _, err := f.SetMeta(Meta{ID: "b", Name: "Bee", Tags: []string{"x"}, HasTags: true}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Apply("a", KindStatus, []byte("online"), time.Unix(1, 0), nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id        string
		wantAdded bool
		wantEvs   string // labels
		wantErr   error
	}{
		{"b", true, "online meta", nil}, // its run-time name and tags with it
		{"b", false, "", nil},           // known already: left as it is
		{"a", false, "", nil},           // online: stays online
		{"c", true, "online", nil},
		{"d", false, "", ErrFleetFull},
	}
	labels := func(evs []Event) string {
		var s []string
		for _, ev := range evs {
			s = append(s, ev.Label.String())
		}
		return strings.Join(s, " ")
	}
	for _, tc := range tests {
		evs, added, err := f.Declare(tc.id, nil)
		if added != tc.wantAdded || labels(evs) != tc.wantEvs || !errors.Is(err, tc.wantErr) {
			t.Errorf("Declare(%s) = %s, %v, %v; want %s, %v, %v", tc.id, labels(evs), added, err, tc.wantEvs, tc.wantAdded, tc.wantErr)
		}
	}
	if d, _ := f.Get("b"); d.Online || d.Name() != "Bee" || !d.HasTag("x") || !d.LastSeen.IsZero() {
		t.Errorf("declared b = %+v, want offline, named Bee, tagged x, never seen", d)
	}
	if d, _ := f.Get("a"); !d.Online || f.OnlineCount() != 1 {
		t.Errorf("a declared again: online %v (count %d), want still online", d.Online, f.OnlineCount())
	}
	if _, _, err := f.Declare("bad id", nil); err == nil {
		t.Error("Declare(bad id) accepted")
	}
}
