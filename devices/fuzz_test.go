package devices

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// The fuzz targets run their seed corpus (f.Add and testdata/fuzz) in every
// `go test`; `make fuzz` runs them coverage-guided.

func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{"devices/b1/led", "devices/b1/led/set", "devices/+/status", "home/x/y/count", "devices//info", "devices/b1/info/"} {
		f.Add("devices", s)
	}
	f.Add("home/boards", "home/boards/b1/count")
	f.Fuzz(func(t *testing.T, prefix, topic string) {
		tp, err := NewTopics(prefix)
		if err != nil {
			return
		}
		id, k, ok := tp.Parse(topic)
		if bid, bk, bok := tp.ParseBytes([]byte(topic)); string(bid) != id || bk != k || bok != ok {
			t.Fatalf("ParseBytes(%q) = %q, %v, %v; Parse gave %q, %v, %v", topic, bid, bk, bok, id, k, ok)
		}
		if !ok {
			return
		}
		if !ValidID(id) {
			t.Fatalf("Parse(%q) gave invalid id %q", topic, id)
		}
		if got := tp.Topic(id, k); got != topic {
			t.Fatalf("Parse(%q) = %q, %v; rebuilt %q", topic, id, k, got)
		}
	})
}

func FuzzParsePayloads(f *testing.F) {
	for _, s := range []string{"ON", "off", "TOGGLE", " toggle ", "42", "-1", "online", "", "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		if cmd, err := ParseCommand(p); err == nil {
			if again, err := ParseCommand([]byte(cmd.Payload())); err != nil || again != cmd {
				t.Fatalf("command %q does not round-trip", p)
			}
		}
		if n, err := ParseCount(p); err == nil && n < 0 {
			t.Fatalf("ParseCount(%q) = %d", p, n)
		}
		if on, err := ParseLED(p); err == nil {
			if again, _ := ParseLED([]byte(LEDPayload(on))); again != on {
				t.Fatalf("led %q does not round-trip", p)
			}
		}
		_, _ = ParseStatus(p)
	})
}

// FuzzScanObject checks the hand-written JSON reader against encoding/json.
func FuzzScanObject(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"a":"b"}`, `{"id":"x","n":1.5e3,"l":[true,false,null],"o":{"p":"\u00e9\ud83d\ude00"}}`,
		`{"a":"\ud800"}`, `{"a":"\ud800\u0041"}`, `{"a":1,}`, `[1]`, `{"a" "b"}`, `{"a":01}`, `{"a":"\x"}`,
		`{"a":-}`, `{"a":1e}`, `{"a":"` + "\xff" + `"}`, strings.Repeat(`{"a":`, 40),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fields, err := scanObject(b)
		var m map[string]any
		stdErr := json.Unmarshal(b, &m)
		if err == nil && stdErr != nil {
			t.Fatalf("scanObject accepted %q, encoding/json: %v", b, stdErr)
		}
		// Stricter than encoding/json on purpose: invalid UTF-8 is refused, since
		// info objects go to browsers in text frames, which must be UTF-8.
		if err != nil && stdErr == nil && m != nil && utf8.Valid(b) && !strings.Contains(err.Error(), "deep") {
			t.Fatalf("scanObject refused %q (%v), encoding/json accepted it", b, err)
		}
		if err != nil {
			return
		}
		for k, v := range fields {
			if s, ok := m[k].(string); !ok || s != v {
				t.Fatalf("field %q = %q, encoding/json says %#v", k, v, m[k])
			}
		}
	})
}

func FuzzParseBrowserMessage(f *testing.F) {
	for _, s := range []string{`{"device":"b1","action":"toggle"}`, `{"device":"b 1","action":"on"}`, `{}`, `x`, `{"device":"b1","action":7}`,
		`{"tag":"kitchen","action":"on"}`, `{"group":"g","tag":"t","action":"on"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tg, cmd, err := ParseBrowserMessage(b)
		named := 0
		for _, s := range []string{tg.Device, tg.Group, tg.Tag} {
			if s != "" {
				named++
			}
		}
		if err == nil && (named != 1 || tg.Device != "" && !ValidID(tg.Device) || tg.Tag != "" && !ValidTag(tg.Tag) || cmd == CmdNone) {
			t.Fatalf("ParseBrowserMessage(%q) = %+v, %v, nil", b, tg, cmd)
		}
		if err != nil && cmd != CmdNone {
			t.Fatalf("ParseBrowserMessage(%q) returned a command with error %v", b, err)
		}
	})
}
