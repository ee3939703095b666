package rollout

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"time"

	"switchyard/devices"
)

// Order returns ids in canary order: sorted by the SHA-256 of the id (as
// lowercase hex, which sorts like the raw digest), ties by id. The order
// depends only on the ids, so the first wave of every rollout over the
// same boards is the same canary. ids is not modified.
func Order(ids []string) []string {
	type keyed struct {
		sum [sha256.Size]byte
		id  string
	}
	ks := make([]keyed, len(ids))
	for i, id := range ids {
		ks[i] = keyed{sha256.Sum256([]byte(id)), id}
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		if c := bytes.Compare(a.sum[:], b.sum[:]); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	out := make([]string, len(ks))
	for i, k := range ks {
		out[i] = k.id
	}
	return out
}

// Plan creates rollout id of fw over the targeted boards cands (one per
// board; a repeated id counts once, the first).
//
// A candidate is skipped, with the reason in Error, when its platform is
// not the firmware's, when it cannot update (no method in its info), or
// when it already runs the firmware's version (by its info's firmware or
// its latest update report's running). The others, the targets, are put in
// canary order (Order) and cut into waves by WaveSizes.
//
// Skipped boards stay visible in the rollout's JSON: they are listed in the
// last wave, after its targets, sorted by id (they never hold it: a wave
// is done when each board is updated, failed, skipped or waiting). When
// every board is skipped, that is a single wave of size 0, done, and the
// rollout is done at once; with no candidates at all it has no waves and
// is done.
//
// The rollout starts running with its first wave running; nothing is sent
// until Step.
func Plan(id string, spec Spec, fw Firmware, cands []Candidate, now time.Time) *Rollout {
	r := &Rollout{
		ID: id, Firmware: fw.SHA256, Version: fw.Version, Platform: fw.Platform,
		State: Running, Created: now, Updated: now, Spec: spec, Waves: []Wave{},
	}
	seen := make(map[string]bool, len(cands))
	var targets []string
	var skipped []Board
	for _, c := range cands {
		if seen[c.ID] {
			continue
		}
		seen[c.ID] = true
		if why := skipReason(c, fw); why != "" {
			skipped = append(skipped, Board{ID: c.ID, State: BoardSkipped, Error: why, Since: now})
			continue
		}
		targets = append(targets, c.ID)
	}
	slices.SortFunc(skipped, func(a, b Board) int { return strings.Compare(a.ID, b.ID) })

	targets = Order(targets)
	prev := 0
	for _, size := range WaveSizes(spec.Waves, len(targets)) {
		w := Wave{Size: size, State: WavePending, Boards: make([]Board, 0, size-prev)}
		for _, t := range targets[prev:size] {
			w.Boards = append(w.Boards, Board{ID: t, State: BoardPending, Since: now})
		}
		r.Waves = append(r.Waves, w)
		prev = size
	}
	switch {
	case len(r.Waves) > 0:
		r.Waves[0].State = WaveRunning
		last := &r.Waves[len(r.Waves)-1]
		last.Boards = append(last.Boards, skipped...)
	case len(skipped) > 0:
		r.Waves = append(r.Waves, Wave{Size: 0, State: WaveDone, Boards: skipped})
		r.State = Done
	default:
		r.State = Done
	}
	r.Recount()
	return r
}

// skipReason returns why c is skipped by a rollout of fw, or "".
func skipReason(c Candidate, fw Firmware) string {
	switch {
	case c.Platform != fw.Platform:
		platform := c.Platform
		if platform == "" {
			platform = "unknown"
		}
		return fmt.Sprintf("platform %s, firmware for %s", platform, fw.Platform)
	case c.Method == "":
		return "cannot update"
	case devices.RunsVersion(c.Firmware, fw.Version) || devices.RunsVersion(c.Running, fw.Version):
		return "already runs " + fw.Version
	}
	return ""
}

// WaveSizes returns the cumulative sizes of the waves of n targets: a
// count k is min(k, n); a percentage p is p·n/100 rounded down (the
// contract's "up to p %"), but at least one more than the previous wave,
// and at most n. A wave that would add nobody is dropped, so the sizes
// strictly increase; the last is n (a final wave of n is added if waves
// stop short, which ParseSpec never lets happen). nil waves mean ["100%"].
func WaveSizes(waves []WaveSize, n int) []int {
	if len(waves) == 0 {
		waves = defaultWaves
	}
	var sizes []int
	prev := 0
	for _, w := range waves {
		s := min(w.Count, n)
		if w.Count <= 0 {
			s = min(max(w.Percent*n/100, prev+1), n)
		}
		if s > prev {
			sizes = append(sizes, s)
			prev = s
		}
	}
	if prev < n {
		sizes = append(sizes, n)
	}
	return sizes
}
