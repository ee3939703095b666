package rollout

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"switchyard/devices"
)

var sha = strings.Repeat("ab", 32)

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want Spec
	}{
		{"defaults", `{"firmware":"` + sha + `","target":{"all":true}}`,
			Spec{Firmware: sha, Target: Target{All: true}, Waves: []WaveSize{{Percent: 100}}, HealthWindow: time.Minute, Parallel: 50}},
		{"nulls are defaults", `{"firmware":"` + sha + `","target":{"group":"lab","tag":null},"waves":null,"health_window":null,"max_failures":null,"parallel":null}`,
			Spec{Firmware: sha, Target: Target{Group: "lab"}, Waves: []WaveSize{{Percent: 100}}, HealthWindow: time.Minute, Parallel: 50}},
		{"everything", ` {"firmware":"` + sha + `","target":{"ids":["b-1","b_2"]},"waves":[1,"10%",5,"100%"],"health_window":"5m30s","max_failures":"10%","parallel":10000} `,
			Spec{Firmware: sha, Target: Target{IDs: []string{"b-1", "b_2"}}, Waves: []WaveSize{{Count: 1}, {Percent: 10}, {Count: 5}, {Percent: 100}},
				HealthWindow: 5*time.Minute + 30*time.Second, MaxFailures: Limit{N: 10, Percent: true}, Parallel: 10000}},
		{"tag, count limit, zero window", `{"firmware":"` + sha + `","target":{"tag":"floor-2"},"health_window":"0s","max_failures":3,"parallel":1}`,
			Spec{Firmware: sha, Target: Target{Tag: "floor-2"}, Waves: []WaveSize{{Percent: 100}}, MaxFailures: Limit{N: 3}, Parallel: 1}},
		{"bounds", `{"firmware":"` + sha + `","target":{"all":true},"waves":["1%","100%"],"health_window":"24h","max_failures":"0%"}`,
			Spec{Firmware: sha, Target: Target{All: true}, Waves: []WaveSize{{Percent: 1}, {Percent: 100}}, HealthWindow: 24 * time.Hour, MaxFailures: Limit{Percent: true}, Parallel: 50}},
	} {
		got, err := ParseSpec([]byte(tc.body))
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: ParseSpec = %+v, %v; want %+v", tc.name, got, err, tc.want)
			continue
		}
		j, err := json.Marshal(got)
		if err != nil {
			t.Fatalf("%s: marshal: %v", tc.name, err)
		}
		var back Spec
		if err := json.Unmarshal(j, &back); err != nil || !reflect.DeepEqual(back, got) {
			t.Errorf("%s: round trip through %s = %+v, %v; want %+v", tc.name, j, back, err, got)
		}
	}
}

func TestSpecMarshalJSON(t *testing.T) {
	s := Spec{Firmware: sha, Target: Target{Tag: "lab"}, Waves: []WaveSize{{Count: 1}, {Percent: 10}, {Percent: 100}},
		HealthWindow: 90 * time.Second, MaxFailures: Limit{N: 5, Percent: true}, Parallel: 7}
	got, err := json.Marshal(s)
	want := `{"firmware":"` + sha + `","target":{"tag":"lab"},"waves":[1,"10%","100%"],"health_window":"1m30s","max_failures":"5%","parallel":7}`
	if err != nil || string(got) != want {
		t.Errorf("Marshal = %s, %v; want %s", got, err, want)
	}
}

func TestParseSpecErrors(t *testing.T) {
	// body returns a valid body with key set to the raw JSON val (or
	// removed when val is "").
	body := func(key, val string) string {
		m := map[string]json.RawMessage{
			"firmware": json.RawMessage(`"` + sha + `"`),
			"target":   json.RawMessage(`{"all":true}`),
		}
		if val == "" {
			delete(m, key)
		} else {
			m[key] = json.RawMessage(val)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("test body %s=%s: %v", key, val, err)
		}
		return string(b)
	}
	for _, tc := range []struct {
		name, body, wantErr string
	}{
		{"empty body", " ", "empty body"},
		{"not an object", `[1]`, "not a JSON object"},
		{"broken JSON", `{"firmware":`, "invalid JSON"},
		{"trailing data", body("parallel", "2") + `{}`, "more data after the object"},
		{"unknown key", body("wave", `[1]`), `unknown key "wave"`},

		{"no firmware", body("firmware", ""), "firmware: missing"},
		{"firmware upper case", body("firmware", `"`+strings.ToUpper(sha)+`"`), "is not a SHA-256 in lowercase hex"},
		{"firmware short", body("firmware", `"abc"`), "is not a SHA-256"},
		{"firmware a number", body("firmware", `12`), "firmware: 12 is not a SHA-256"},

		{"no target", body("target", ""), "target: missing"},
		{"target null", body("target", "null"), "target: missing"},
		{"target empty", body("target", `{}`), "target: no selector"},
		{"target two", body("target", `{"all":true,"tag":"x"}`), "target: all and tag given together"},
		{"target unknown key", body("target", `{"name":"x"}`), `target: unknown key "name"`},
		{"target a string", body("target", `"all"`), "target: not a JSON object"},
		{"all false", body("target", `{"all":false}`), `"all" is false, must be true`},
		{"all a string", body("target", `{"all":"yes"}`), `"all" is "yes", must be true`},
		{"empty group", body("target", `{"group":""}`), `target: group "" is not a group name`},
		{"group a number", body("target", `{"group":3}`), "target: group 3 is not a group name"},
		{"bad tag", body("target", `{"tag":"Floor 2"}`), `target: tag "Floor 2" is not 1 to 32 of a-z 0-9 _ -`},
		{"long tag", body("target", `{"tag":"`+strings.Repeat("t", 33)+`"}`), "is not 1 to 32"},
		{"empty ids", body("target", `{"ids":[]}`), "target: empty ids list"},
		{"ids not a list", body("target", `{"ids":"a"}`), "target: ids \"a\" is not a list of device ids"},
		{"ids numbers", body("target", `{"ids":[1]}`), "is not a list of device ids"},
		{"invalid id", body("target", `{"ids":["ok","bad/id"]}`), "target: ids[1]: invalid device id"},
		{"empty id", body("target", `{"ids":[""]}`), "target: ids[0]: invalid device id: empty"},
		{"repeated id", body("target", `{"ids":["a","b","a"]}`), `target: ids[2] "a" repeats ids[0]`},

		{"waves not a list", body("waves", `"100%"`), "waves: \"100%\" is not a list"},
		{"waves empty", body("waves", `[]`), "waves: empty list"},
		{"wave zero", body("waves", `[0,"100%"]`), "waves[0]: 0 is neither a count"},
		{"wave negative", body("waves", `[-1,"100%"]`), "waves[0]: -1 is neither a count"},
		{"wave fraction", body("waves", `[1.5,"100%"]`), "waves[0]: 1.5 is neither a count"},
		{"wave exponent", body("waves", `[1e2,"100%"]`), "waves[0]: 1e2 is neither a count"},
		{"wave bool", body("waves", `[true,"100%"]`), "waves[0]: true is neither a count"},
		{"wave 0%", body("waves", `["0%","100%"]`), `waves[0]: "0%" is neither a count nor a percentage from "1%" to "100%"`},
		{"wave 101%", body("waves", `["101%"]`), `waves[0]: "101%" is neither`},
		{"wave no %", body("waves", `["10","100%"]`), `waves[0]: "10" is neither`},
		{"wave word", body("waves", `["ten%","100%"]`), `waves[0]: "ten%" is neither`},
		{"wave 5.5%", body("waves", `["5.5%","100%"]`), `waves[0]: "5.5%" is neither`},
		{"wave +5%", body("waves", `["+5%","100%"]`), `waves[0]: "+5%" is neither`},
		{"counts not increasing", body("waves", `[2,2,"100%"]`), "waves[1]: 2 does not exceed waves[0] 2: waves are cumulative"},
		{"counts decreasing across a percent", body("waves", `[5,"10%",3,"100%"]`), "waves[2]: 3 does not exceed waves[0] 5"},
		{"percents not increasing", body("waves", `["10%","10%","100%"]`), `waves[1]: "10%" does not exceed waves[0] "10%"`},
		{"100% twice", body("waves", `["100%",5,"100%"]`), `waves[2]: "100%" does not exceed waves[0] "100%"`},
		{"last not 100%", body("waves", `[1,"50%"]`), `waves: the last wave must be "100%", not "50%"`},
		{"last a count", body("waves", `[1,"50%",20]`), `the last wave must be "100%", not 20`},

		{"window a number", body("health_window", `60`), `health_window: 60 is not a duration string like "60s"`},
		{"window no unit", body("health_window", `"60"`), `health_window: "60" is not a duration`},
		{"window negative", body("health_window", `"-1s"`), `health_window: "-1s" is negative`},
		{"window too long", body("health_window", `"25h"`), `health_window: "25h" is over 24h0m0s`},

		{"max_failures negative", body("max_failures", `-1`), "max_failures: -1 is neither a count"},
		{"max_failures fraction", body("max_failures", `0.5`), "max_failures: 0.5 is neither a count"},
		{"max_failures 101%", body("max_failures", `"101%"`), `max_failures: "101%" is neither a count nor a percentage from "0%" to "100%"`},
		{"max_failures no %", body("max_failures", `"3"`), `max_failures: "3" is neither`},
		{"max_failures list", body("max_failures", `[1]`), "max_failures: [1] is neither"},

		{"parallel zero", body("parallel", `0`), "parallel: 0: must be a whole number from 1 to 10000"},
		{"parallel too many", body("parallel", `10001`), "parallel: 10001: must be"},
		{"parallel a string", body("parallel", `"5"`), `parallel: "5": must be`},
		{"parallel fraction", body("parallel", `2.5`), "parallel: 2.5: must be"},
	} {
		got, err := ParseSpec([]byte(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("%s: ParseSpec(%s) = %+v, %v; want an error with %q", tc.name, tc.body, got, err, tc.wantErr)
			continue
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %q is not one line", tc.name, err)
		}
		var s Spec
		if uerr := json.Unmarshal([]byte(tc.body), &s); uerr == nil {
			t.Errorf("%s: Spec.UnmarshalJSON accepted what ParseSpec refused", tc.name)
		}
	}
}

func TestParseSpecInvalidIDWrapsErrInvalidID(t *testing.T) {
	_, err := ParseSpec([]byte(`{"firmware":"` + sha + `","target":{"ids":["a b"]}}`))
	if !errors.Is(err, devices.ErrInvalidID) {
		t.Errorf("error %v does not wrap devices.ErrInvalidID", err)
	}
}

// FuzzParseSpec checks that whatever ParseSpec accepts survives a round
// trip through MarshalJSON unchanged.
func FuzzParseSpec(f *testing.F) {
	f.Add(`{"firmware":"` + sha + `","target":{"all":true}}`)
	f.Add(`{"firmware":"` + sha + `","target":{"ids":["a","b"]},"waves":[1,"10%",5,"100%"],"health_window":"1h2m3.5s","max_failures":"10%","parallel":3}`)
	f.Add(`{"firmware":"` + sha + `","target":{"tag":"t"},"max_failures":0,"health_window":"0s"}`)
	f.Fuzz(func(t *testing.T, body string) {
		s, err := ParseSpec([]byte(body))
		if err != nil {
			return
		}
		j, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("marshal %+v: %v", s, err)
		}
		back, err := ParseSpec(j)
		if err != nil || !reflect.DeepEqual(back, s) {
			t.Fatalf("round trip of %s through %s = %+v, %v", body, j, back, err)
		}
	})
}
