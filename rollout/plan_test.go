package rollout

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var fw12 = Firmware{SHA256: sha, Version: "1.2", Platform: "sim", Size: 100, Uploaded: t0}

func ids(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i+1)
	}
	return out
}

// updatable returns candidates that a rollout of fw12 targets.
func updatable(ids []string) []Candidate {
	cs := make([]Candidate, len(ids))
	for i, id := range ids {
		cs[i] = Candidate{ID: id, Platform: "sim", Method: "sim", Firmware: "devicefw 1.1", Running: "1.1", Online: true}
	}
	return cs
}

func TestOrder(t *testing.T) {
	// The canary must not change between versions of the control plane:
	// this order was checked with sha256sum.
	six := ids("board", 6)
	want := []string{"board-6", "board-4", "board-5", "board-2", "board-1", "board-3"}
	if got := Order(six); !slices.Equal(got, want) {
		t.Errorf("Order(%q) = %q, want %q", six, got, want)
	}

	all := ids("b", 200)
	want = Order(all)
	for i := 1; i < len(want); i++ {
		a, b := sha256.Sum256([]byte(want[i-1])), sha256.Sum256([]byte(want[i]))
		if hex.EncodeToString(a[:]) > hex.EncodeToString(b[:]) {
			t.Fatalf("Order: %q before %q, but its hash sorts after", want[i-1], want[i])
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		in := slices.Clone(all)
		rng.Shuffle(len(in), func(i, j int) { in[i], in[j] = in[j], in[i] })
		before := slices.Clone(in)
		if got := Order(in); !slices.Equal(got, want) {
			t.Fatalf("Order of a shuffled input differs: %q…, want %q…", got[:3], want[:3])
		}
		if !slices.Equal(in, before) {
			t.Fatal("Order modified its input")
		}
	}
	if got := Order([]string{"x", "a", "x"}); !slices.Equal(got, Order([]string{"x", "x", "a"})) || len(got) != 3 {
		t.Errorf("Order with a repeated id = %q", got)
	}
	if got := Order(nil); len(got) != 0 {
		t.Errorf("Order(nil) = %q", got)
	}
}

func TestWaveSizes(t *testing.T) {
	canary := []WaveSize{{Count: 1}, {Percent: 10}, {Percent: 100}}
	half := []WaveSize{{Percent: 50}, {Percent: 100}}
	counts := []WaveSize{{Count: 1}, {Count: 3}, {Percent: 100}}
	for _, tc := range []struct {
		waves []WaveSize
		n     int
		want  []int
	}{
		{canary, 0, nil},
		{canary, 1, []int{1}},
		{canary, 2, []int{1, 2}},
		{canary, 12, []int{1, 2, 12}},
		{canary, 25, []int{1, 2, 25}}, // "up to 10 %": 2.5 rounds down
		{canary, 1000, []int{1, 100, 1000}},
		{half, 1, []int{1}},
		{half, 3, []int{1, 3}},
		{half, 12, []int{6, 12}},
		{counts, 1, []int{1}},
		{counts, 2, []int{1, 2}},
		{counts, 12, []int{1, 3, 12}},
		{[]WaveSize{{Percent: 1}, {Percent: 2}, {Percent: 100}}, 10, []int{1, 2, 10}}, // at least one more each time
		{[]WaveSize{{Percent: 50}, {Count: 2}, {Percent: 100}}, 10, []int{5, 10}},     // a count below the previous adds nobody
		{nil, 7, []int{7}},
		{[]WaveSize{{Count: 2}}, 5, []int{2, 5}}, // not ParseSpec's: the rest still gets a wave
	} {
		if got := WaveSizes(tc.waves, tc.n); !slices.Equal(got, tc.want) {
			t.Errorf("WaveSizes(%v, %d) = %v, want %v", tc.waves, tc.n, got, tc.want)
		}
	}
}

func TestPlanWaves(t *testing.T) {
	spec := Spec{Firmware: sha, Target: Target{All: true}, Waves: []WaveSize{{Count: 1}, {Percent: 10}, {Percent: 100}}, Parallel: 50}
	all := ids("b", 12)
	r := Plan("r1", spec, fw12, updatable(all), t0)
	if r.ID != "r1" || r.Firmware != sha || r.Version != "1.2" || r.Platform != "sim" || r.State != Running ||
		!r.Created.Equal(t0) || !r.Updated.Equal(t0) || r.Jobs != 0 {
		t.Errorf("Plan = %+v", r)
	}
	order := Order(all)
	var gotSizes, wantSizes []int
	var got [][]string
	for _, w := range r.Waves {
		gotSizes = append(gotSizes, w.Size)
		var ws []string
		for _, b := range w.Boards {
			ws = append(ws, b.ID)
			if b.State != BoardPending || b.Error != "" || b.Job != "" || !b.Since.Equal(t0) {
				t.Errorf("board %+v, want pending since t0", b)
			}
		}
		got = append(got, ws)
	}
	wantSizes = []int{1, 2, 12}
	want := [][]string{order[:1], order[1:2], order[2:]}
	if !slices.Equal(gotSizes, wantSizes) || !reflect.DeepEqual(got, want) {
		t.Errorf("waves %v %q, want %v %q", gotSizes, got, wantSizes, want)
	}
	if states := []WaveState{r.Waves[0].State, r.Waves[1].State, r.Waves[2].State}; !slices.Equal(states, []WaveState{WaveRunning, WavePending, WavePending}) {
		t.Errorf("wave states %v", states)
	}
	if want := map[BoardState]int{BoardPending: 12}; !maps.Equal(r.Counts, want) {
		t.Errorf("counts %v, want %v", r.Counts, want)
	}
}

func TestPlanSkips(t *testing.T) {
	cands := []Candidate{
		{ID: "arm", Platform: "linux/arm64", Method: "binary", Firmware: "devicefw 1.1"},
		{ID: "esp", Platform: "esp32c3", Firmware: "devicefw 1.1"},
		{ID: "noinfo"},
		{ID: "cannot", Platform: "sim", Firmware: "devicefw 1.1"},
		{ID: "has-info", Platform: "sim", Method: "sim", Firmware: "devicefw 1.2"},
		{ID: "has-bare", Platform: "sim", Method: "sim", Firmware: "1.2"},
		{ID: "has-running", Platform: "sim", Method: "sim", Firmware: "devicefw 1.1", Running: "1.2"},
		{ID: "near-miss", Platform: "sim", Method: "sim", Firmware: "devicefw 1.12", Running: "1.12"},
		{ID: "ok", Platform: "sim", Method: "sim", Firmware: "devicefw 1.1"},
		{ID: "ok", Platform: "esp32c3"}, // a repeated id counts once, the first
	}
	wantSkip := map[string]string{
		"arm":         "platform linux/arm64, firmware for sim",
		"esp":         "platform esp32c3, firmware for sim",
		"noinfo":      "platform unknown, firmware for sim",
		"cannot":      "cannot update",
		"has-info":    "already runs 1.2",
		"has-bare":    "already runs 1.2",
		"has-running": "already runs 1.2",
	}
	spec := Spec{Waves: []WaveSize{{Count: 1}, {Percent: 100}}, Parallel: 50}
	r := Plan("r1", spec, fw12, cands, t0)
	if len(r.Waves) != 2 || r.State != Running {
		t.Fatalf("Plan: %d waves, state %s; want 2, running", len(r.Waves), r.State)
	}
	var targets []string
	for _, w := range r.Waves[:1] {
		for _, b := range w.Boards {
			targets = append(targets, b.ID)
		}
	}
	last := r.Waves[1].Boards
	// The last wave: its target, then the skipped boards sorted by id.
	var lastIDs []string
	for _, b := range last {
		lastIDs = append(lastIDs, b.ID)
		if why, skip := wantSkip[b.ID]; skip {
			if b.State != BoardSkipped || b.Error != why {
				t.Errorf("%s: %s %q, want skipped %q", b.ID, b.State, b.Error, why)
			}
		} else if b.State != BoardPending {
			t.Errorf("%s: %s, want pending", b.ID, b.State)
		}
	}
	wantTargets := Order([]string{"near-miss", "ok"})
	wantLast := []string{wantTargets[1], "arm", "cannot", "esp", "has-bare", "has-info", "has-running", "noinfo"}
	if !slices.Equal(targets, wantTargets[:1]) || !slices.Equal(lastIDs, wantLast) {
		t.Errorf("waves %q, %q; want %q, %q", targets, lastIDs, wantTargets[:1], wantLast)
	}
	if r.Waves[0].Size != 1 || r.Waves[1].Size != 2 {
		t.Errorf("sizes %d, %d; want 1, 2 (skipped boards not counted)", r.Waves[0].Size, r.Waves[1].Size)
	}
	if want := map[BoardState]int{BoardPending: 2, BoardSkipped: 7}; !maps.Equal(r.Counts, want) {
		t.Errorf("counts %v, want %v", r.Counts, want)
	}
}

func TestPlanAllSkippedIsDone(t *testing.T) {
	cands := []Candidate{{ID: "b", Platform: "sim", Method: "sim", Firmware: "devicefw 1.2"}, {ID: "a", Platform: "linux/arm"}}
	r := Plan("r1", Spec{Parallel: 50}, fw12, cands, t0)
	if r.State != Done || len(r.Waves) != 1 {
		t.Fatalf("Plan = %s with %d waves; want done with 1", r.State, len(r.Waves))
	}
	w := r.Waves[0]
	if w.Size != 0 || w.State != WaveDone || len(w.Boards) != 2 || w.Boards[0].ID != "a" || w.Boards[1].State != BoardSkipped {
		t.Errorf("wave = %+v", w)
	}
	if sends := r.Step(fleet{}, t0.Add(time.Hour)); sends != nil || !r.Updated.Equal(t0) {
		t.Errorf("Step of a done rollout sent %v, updated %v", sends, r.Updated)
	}

	empty := Plan("r2", Spec{}, fw12, nil, t0)
	if empty.State != Done || empty.Waves == nil || len(empty.Waves) != 0 || len(empty.Counts) != 0 {
		t.Errorf("Plan with no candidates = %+v; want done, no waves", empty)
	}
}
