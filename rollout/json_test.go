package rollout

import (
	"bytes"
	"encoding/json"
	"flag"
	"slices"
	"testing"
	"time"

	"switchyard/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	testutil.GoldenJSON(t, name, got, *update)
}

// goldenRollout is a rollout in the middle of its second wave: the canary
// updated, one board checking, one failed, one waiting, two skipped.
func goldenRollout(t *testing.T) *Rollout {
	all := []string{"kitchen", "hall", "garage", "porch"}
	order := Order(all)
	s := newSim(t, modes(all, modeOK, map[int]string{1: modeRollback}), t0)
	s.setAway(order[3], true, t0.Add(-time.Minute))
	cands := append(updatable(all),
		Candidate{ID: "attic", Platform: "esp32c3", Firmware: "devicefw-tiny 1.1"},
		Candidate{ID: "shed", Platform: "sim", Method: "sim", Firmware: "devicefw 1.2"})
	sp := Spec{Firmware: sha, Target: Target{Tag: "house"}, Waves: []WaveSize{{Count: 1}, {Percent: 100}},
		HealthWindow: time.Minute, MaxFailures: Limit{N: 50, Percent: true}, Parallel: 10}
	created := t0.In(time.FixedZone("CET", 3600)).Add(123 * time.Millisecond)
	r := Plan("r7", sp, fw12, cands, created)
	s.run(r, created, created.Add(sec(100)))
	return r
}

func TestRolloutJSONGolden(t *testing.T) {
	r := goldenRollout(t)
	got, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "rollout.json", got)

	// A value marshals the same as a pointer.
	if v, err := json.Marshal(*r); err != nil || !bytes.Equal(v, got) {
		t.Errorf("Marshal(*r) = %s, %v; want %s", v, err, got)
	}
}

func TestRolloutJSONShape(t *testing.T) {
	for _, r := range []*Rollout{goldenRollout(t), Plan("r0", Spec{}, fw12, nil, t0), {}} {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		want := []string{"counts", "created", "firmware", "health_window", "id", "max_failures", "parallel",
			"platform", "reason", "state", "target", "updated", "version", "waves"}
		if !slices.Equal(keys, want) {
			t.Errorf("keys %q, want %q", keys, want)
		}
		if string(m["waves"]) == "null" || string(m["counts"]) == "null" {
			t.Errorf("null list or map in %s", b)
		}
		var created string
		if err := json.Unmarshal(m["created"], &created); err != nil {
			t.Fatal(err)
		}
		if _, err := time.Parse(time.RFC3339, created); err != nil || created[len(created)-1] != 'Z' {
			t.Errorf("created %q is not RFC 3339 in UTC: %v", created, err)
		}
	}
}
