package rollout

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"switchyard/devices"
)

// The defaults and bounds of a spec (POST /api/rollouts).
const (
	DefaultHealthWindow = 60 * time.Second
	MaxHealthWindow     = 24 * time.Hour
	DefaultParallel     = 50
	MaxParallel         = 10000
)

// defaultWaves is a spec's waves when the body leaves them out: everyone at once.
var defaultWaves = []WaveSize{{Percent: 100}}

// ParseSpec reads and checks the body of POST /api/rollouts:
//
//	{"firmware":"<sha256>","target":{"all":true}|{"group":"G"}|{"tag":"T"}|{"ids":[…]},
//	 "waves":[1,"10%","100%"],"health_window":"60s","max_failures":1|"10%","parallel":50}
//
// firmware and target are required; the others default to waves
// ["100%"], health_window 60s, max_failures 0 and parallel 50. Every error
// names the key at fault, in one line, for a 400 answer. Unknown keys are
// errors. ParseSpec does not check that the firmware exists.
func ParseSpec(body []byte) (Spec, error) {
	var w struct {
		Firmware     json.RawMessage `json:"firmware"`
		Target       json.RawMessage `json:"target"`
		Waves        json.RawMessage `json:"waves"`
		HealthWindow json.RawMessage `json:"health_window"`
		MaxFailures  json.RawMessage `json:"max_failures"`
		Parallel     json.RawMessage `json:"parallel"`
	}
	if err := decodeStrict(body, &w); err != nil {
		return Spec{}, err
	}
	s := Spec{Waves: defaultWaves, HealthWindow: DefaultHealthWindow, Parallel: DefaultParallel}
	var err error
	if s.Firmware, err = parseFirmware(w.Firmware); err != nil {
		return Spec{}, err
	}
	if s.Target, err = parseTarget(w.Target); err != nil {
		return Spec{}, err
	}
	if !absent(w.Waves) {
		if s.Waves, err = parseWaves(w.Waves); err != nil {
			return Spec{}, err
		}
	}
	if !absent(w.HealthWindow) {
		if s.HealthWindow, err = parseHealthWindow(w.HealthWindow); err != nil {
			return Spec{}, err
		}
	}
	if !absent(w.MaxFailures) {
		if s.MaxFailures, err = parseLimit(w.MaxFailures); err != nil {
			return Spec{}, err
		}
	}
	if !absent(w.Parallel) {
		n, err := wholeNumber(w.Parallel)
		if err != nil || n < 1 || n > MaxParallel {
			return Spec{}, fmt.Errorf("parallel: %s: must be a whole number from 1 to %d", w.Parallel, MaxParallel)
		}
		s.Parallel = n
	}
	return s, nil
}

// MarshalJSON writes s in the shape ParseSpec reads, every key present
// (defaults included), so that ParseSpec(MarshalJSON(s)) gives s back.
func (s Spec) MarshalJSON() ([]byte, error) {
	waves := make([]json.RawMessage, len(s.Waves))
	for i, w := range s.Waves {
		waves[i] = json.RawMessage(w.String())
	}
	return json.Marshal(struct {
		Firmware     string            `json:"firmware"`
		Target       Target            `json:"target"`
		Waves        []json.RawMessage `json:"waves"`
		HealthWindow string            `json:"health_window"`
		MaxFailures  json.RawMessage   `json:"max_failures"`
		Parallel     int               `json:"parallel"`
	}{s.Firmware, s.Target, waves, s.HealthWindow.String(), json.RawMessage(s.MaxFailures.String()), s.Parallel})
}

// UnmarshalJSON reads what MarshalJSON writes (or any body ParseSpec
// accepts), with the same checks and defaults.
func (s *Spec) UnmarshalJSON(b []byte) error {
	p, err := ParseSpec(b)
	if err != nil {
		return err
	}
	*s = p
	return nil
}

// String returns w as it is written in a spec's waves: 3 or "10%" (quoted).
func (w WaveSize) String() string {
	if w.Count > 0 {
		return strconv.Itoa(w.Count)
	}
	return strconv.Quote(strconv.Itoa(w.Percent) + "%")
}

// String returns l as it is written in a spec's max_failures: 2 or "10%"
// (quoted).
func (l Limit) String() string {
	if l.Percent {
		return strconv.Quote(strconv.Itoa(l.N) + "%")
	}
	return strconv.Itoa(l.N)
}

// decodeStrict decodes exactly one JSON object into v, refusing unknown keys.
func decodeStrict(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return errors.New("empty body: want a JSON object")
	}
	if body[0] != '{' {
		return errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg := strings.TrimPrefix(err.Error(), "json: ")
		if key, ok := strings.CutPrefix(msg, "unknown field "); ok {
			return fmt.Errorf("unknown key %s", key)
		}
		return fmt.Errorf("invalid JSON: %s", msg)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("invalid JSON: more data after the object")
	}
	return nil
}

// absent reports whether a key was left out or given as null.
func absent(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// jsonString returns raw as a string when it is a JSON string.
func jsonString(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// wholeNumber returns raw as an int when it is a JSON number without
// fraction or exponent.
func wholeNumber(raw json.RawMessage) (int, error) {
	n, err := strconv.Atoi(string(raw))
	if err == nil && strconv.Itoa(n) != string(raw) {
		return 0, fmt.Errorf("%s is not written as a whole number", raw)
	}
	return n, err
}

// percent returns the N of "N%".
func percent(s string) (int, bool) {
	num, ok := strings.CutSuffix(s, "%")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(num)
	return n, err == nil && strconv.Itoa(n) == num
}

func parseFirmware(raw json.RawMessage) (string, error) {
	if absent(raw) {
		return "", errors.New("firmware: missing: give the sha256 of an uploaded build")
	}
	s, ok := jsonString(raw)
	if !ok || !devices.ValidSHA256(s) {
		return "", fmt.Errorf("firmware: %s is not a SHA-256 in lowercase hex (64 digits)", raw)
	}
	return s, nil
}

const targetHelp = `give exactly one of {"all":true}, {"group":"G"}, {"tag":"T"}, {"ids":[…]}`

func parseTarget(raw json.RawMessage) (Target, error) {
	if absent(raw) {
		return Target{}, errors.New("target: missing: " + targetHelp)
	}
	var w struct {
		All   json.RawMessage `json:"all"`
		Group json.RawMessage `json:"group"`
		Tag   json.RawMessage `json:"tag"`
		IDs   json.RawMessage `json:"ids"`
	}
	if err := decodeStrict(raw, &w); err != nil {
		return Target{}, fmt.Errorf("target: %v: %s", err, targetHelp)
	}
	var given []string
	for _, g := range []struct {
		name string
		raw  json.RawMessage
	}{{"all", w.All}, {"group", w.Group}, {"tag", w.Tag}, {"ids", w.IDs}} {
		if !absent(g.raw) {
			given = append(given, g.name)
		}
	}
	switch {
	case len(given) == 0:
		return Target{}, errors.New("target: no selector: " + targetHelp)
	case len(given) > 1:
		return Target{}, fmt.Errorf("target: %s and %s given together: %s", strings.Join(given[:len(given)-1], ", "), given[len(given)-1], targetHelp)
	case !absent(w.All):
		if string(w.All) != "true" {
			return Target{}, fmt.Errorf(`target: "all" is %s, must be true`, w.All)
		}
		return Target{All: true}, nil
	case !absent(w.Group):
		g, ok := jsonString(w.Group)
		if !ok || g == "" {
			return Target{}, fmt.Errorf("target: group %s is not a group name", w.Group)
		}
		return Target{Group: g}, nil
	case !absent(w.Tag):
		t, ok := jsonString(w.Tag)
		if !ok || !devices.ValidTag(t) {
			return Target{}, fmt.Errorf("target: tag %s is not 1 to %d of a-z 0-9 _ -", w.Tag, devices.MaxTagLen)
		}
		return Target{Tag: t}, nil
	}
	var ids []string
	if w.IDs[0] != '[' || json.Unmarshal(w.IDs, &ids) != nil {
		return Target{}, fmt.Errorf("target: ids %s is not a list of device ids", w.IDs)
	}
	if len(ids) == 0 {
		return Target{}, errors.New("target: empty ids list")
	}
	seen := make(map[string]int, len(ids))
	for i, id := range ids {
		if err := devices.ValidateID(id); err != nil {
			return Target{}, fmt.Errorf("target: ids[%d]: %w", i, err)
		}
		if j, dup := seen[id]; dup {
			return Target{}, fmt.Errorf("target: ids[%d] %q repeats ids[%d]", i, id, j)
		}
		seen[id] = i
	}
	return Target{IDs: ids}, nil
}

// parseWaves reads the waves: counts >= 1 or "N%" (1-100), cumulative,
// each exceeding the previous one of its kind, the last "100%".
func parseWaves(raw json.RawMessage) ([]WaveSize, error) {
	var items []json.RawMessage
	if raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
		return nil, fmt.Errorf(`waves: %s is not a list like [1,"10%%","100%%"]`, raw)
	}
	if len(items) == 0 {
		return nil, errors.New(`waves: empty list (leave waves out for ["100%"])`)
	}
	waves := make([]WaveSize, len(items))
	lastCount, lastPercent := -1, -1 // index of the previous wave of each kind
	for i, it := range items {
		if s, ok := jsonString(it); ok {
			p, ok := percent(s)
			if !ok || p < 1 || p > 100 {
				return nil, fmt.Errorf(`waves[%d]: %s is neither a count nor a percentage from "1%%" to "100%%"`, i, it)
			}
			if lastPercent >= 0 && p <= waves[lastPercent].Percent {
				return nil, fmt.Errorf("waves[%d]: %s does not exceed waves[%d] %s: waves are cumulative", i, it, lastPercent, waves[lastPercent])
			}
			waves[i], lastPercent = WaveSize{Percent: p}, i
			continue
		}
		n, err := wholeNumber(it)
		if err != nil || n < 1 {
			return nil, fmt.Errorf(`waves[%d]: %s is neither a count (a whole number, at least 1) nor a percentage like "10%%"`, i, it)
		}
		if lastCount >= 0 && n <= waves[lastCount].Count {
			return nil, fmt.Errorf("waves[%d]: %d does not exceed waves[%d] %d: waves are cumulative", i, n, lastCount, waves[lastCount].Count)
		}
		waves[i], lastCount = WaveSize{Count: n}, i
	}
	if last := waves[len(waves)-1]; last.Percent != 100 {
		return nil, fmt.Errorf(`waves: the last wave must be "100%%", not %s`, last)
	}
	return waves, nil
}

func parseHealthWindow(raw json.RawMessage) (time.Duration, error) {
	s, ok := jsonString(raw)
	if !ok {
		return 0, fmt.Errorf(`health_window: %s is not a duration string like "60s"`, raw)
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		return 0, fmt.Errorf(`health_window: %q is not a duration like "60s" or "5m"`, s)
	case d < 0:
		return 0, fmt.Errorf("health_window: %q is negative", s)
	case d > MaxHealthWindow:
		return 0, fmt.Errorf("health_window: %q is over %v", s, MaxHealthWindow)
	}
	return d, nil
}

func parseLimit(raw json.RawMessage) (Limit, error) {
	if s, ok := jsonString(raw); ok {
		p, ok := percent(s)
		if !ok || p < 0 || p > 100 {
			return Limit{}, fmt.Errorf(`max_failures: %s is neither a count nor a percentage from "0%%" to "100%%"`, raw)
		}
		return Limit{N: p, Percent: true}, nil
	}
	n, err := wholeNumber(raw)
	if err != nil || n < 0 {
		return Limit{}, fmt.Errorf(`max_failures: %s is neither a count (a whole number, at least 0) nor a percentage like "10%%"`, raw)
	}
	return Limit{N: n}, nil
}
