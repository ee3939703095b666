package rollout

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"
)

// modes gives every id the mode, and the ids at the positions of the
// canary order in special their own mode.
func modes(ids []string, mode string, special map[int]string) map[string]string {
	order := Order(ids)
	m := map[string]string{}
	for i, id := range order {
		m[id] = mode
		if sm, ok := special[i]; ok {
			m[id] = sm
		}
	}
	return m
}

func spec(waves []WaveSize, window time.Duration, maxFail Limit, parallel int) Spec {
	return Spec{Firmware: sha, Target: Target{All: true}, Waves: waves, HealthWindow: window, MaxFailures: maxFail, Parallel: parallel}
}

func TestStepWholeRollout(t *testing.T) {
	all := ids("b", 12)
	order := Order(all)
	s := newSim(t, modes(all, modeOK, nil), t0)
	r := Plan("r1", spec([]WaveSize{{Count: 1}, {Percent: 50}, {Percent: 100}}, time.Minute, Limit{}, 50), fw12, updatable(all), t0)

	// The canary alone; its report mirrored; checking from its confirm.
	if got := s.step(r, t0); !slices.Equal(got, []Send{{ID: order[0], Job: "r1/1"}}) {
		t.Fatalf("first Step sent %v, want the canary %s job r1/1", got, order[0])
	}
	s.step(r, t0.Add(sec(10)))
	if b := board(t, r, order[0]); b.State != BoardUpdating || b.Update != "trial" {
		t.Errorf("canary at +10s: %s, update %q; want updating, trial", b.State, b.Update)
	}
	s.step(r, t0.Add(sec(20)))
	if b := board(t, r, order[0]); b.State != BoardChecking || b.Update != "confirmed" || !b.Since.Equal(t0.Add(sec(20))) {
		t.Errorf("canary at +20s: %s since %v, update %q; want checking since +20s, confirmed", b.State, b.Since, b.Update)
	}
	end := s.run(r, t0.Add(sec(30)), t0.Add(time.Hour))

	if r.State != Done || !end.Equal(t0.Add(sec(240))) || !r.Updated.Equal(end) {
		t.Errorf("rollout %s at %v (updated %v), want done at +240s", r.State, end.Sub(t0), r.Updated.Sub(t0))
	}
	// Each wave starts in the Step where the previous one is done: the
	// canary updated at +80s (confirmed at +20s, health window 60s),
	// wave 2 at +160s.
	for i, id := range order {
		want := []time.Time{t0}
		switch {
		case i >= 6:
			want = []time.Time{t0.Add(sec(160))}
		case i >= 1:
			want = []time.Time{t0.Add(sec(80))}
		}
		if got := s.sent[id]; !slices.Equal(got, want) {
			t.Errorf("%s (#%d in canary order) sent at %v, want %v", id, i, got, want)
		}
	}
	var jobs, wantJobs []string
	for i, snd := range s.order {
		jobs = append(jobs, snd.ID+" "+snd.Job)
		wantJobs = append(wantJobs, order[i]+" r1/"+strconv.Itoa(i+1))
	}
	if !slices.Equal(jobs, wantJobs) || r.Jobs != 12 {
		t.Errorf("jobs %q (Jobs %d), want %q", jobs, r.Jobs, wantJobs)
	}
	r.eachBoard(func(b *Board) {
		if b.State != BoardUpdated || b.Update != "confirmed" || b.Error != "" {
			t.Errorf("%s: %s, update %q, error %q; want updated, confirmed", b.ID, b.State, b.Update, b.Error)
		}
	})
	for i, w := range r.Waves {
		if w.State != WaveDone {
			t.Errorf("wave %d %s, want done", i, w.State)
		}
	}
	if want := map[BoardState]int{BoardUpdated: 12}; !maps.Equal(r.Counts, want) {
		t.Errorf("counts %v, want %v", r.Counts, want)
	}
	if got := r.Step(s.f, end.Add(time.Hour)); got != nil || !r.Updated.Equal(end) {
		t.Errorf("Step after done: sent %v, Updated moved to %v", got, r.Updated)
	}
}

func TestStepCanaryFailureHalts(t *testing.T) {
	all := ids("b", 12)
	order := Order(all)
	s := newSim(t, modes(all, modeRollback, nil), t0)
	r := Plan("r1", spec([]WaveSize{{Count: 1}, {Percent: 10}, {Percent: 100}}, time.Minute, Limit{}, 50), fw12, updatable(all), t0)
	s.run(r, t0, t0.Add(2*time.Hour))

	if r.State != Halted || r.Reason != "1 failure, max_failures 0" || !r.Updated.Equal(t0.Add(sec(20))) {
		t.Errorf("rollout %s %q updated at %v; want halted \"1 failure, max_failures 0\" at +20s", r.State, r.Reason, r.Updated.Sub(t0))
	}
	if len(s.order) != 1 || s.order[0].ID != order[0] {
		t.Errorf("sent %v; want only the canary %s", s.order, order[0])
	}
	if b := board(t, r, order[0]); b.State != BoardFailed || b.Error != "rolled_back: crashed: exit status 2" || b.Update != "rolled_back" {
		t.Errorf("canary %s %q, update %q", b.State, b.Error, b.Update)
	}
	if want := map[BoardState]int{BoardFailed: 1, BoardPending: 11}; !maps.Equal(r.Counts, want) {
		t.Errorf("counts %v, want %v", r.Counts, want)
	}
	if err := r.Resume(t0.Add(3 * time.Hour)); !errors.Is(err, ErrState) {
		t.Errorf("Resume of a halted rollout = %v, want ErrState", err)
	}
}

func TestStepFailuresPercentAndFollowAfterHalt(t *testing.T) {
	all := ids("b", 12)
	cands := append(updatable(all),
		Candidate{ID: "old", Platform: "linux/arm"}, Candidate{ID: "new", Platform: "sim", Method: "sim", Firmware: "devicefw 1.2"})
	pct := []WaveSize{{Percent: 100}}

	// 10 % of 12 targets (the skipped boards not counted) is 1.2: one
	// failure is allowed, the second halts.
	s := newSim(t, modes(all, modeOK, map[int]string{0: modeRollback}), t0)
	r := Plan("r1", spec(pct, time.Minute, Limit{N: 10, Percent: true}, 50), fw12, cands, t0)
	s.run(r, t0, t0.Add(time.Hour))
	if want := map[BoardState]int{BoardUpdated: 11, BoardFailed: 1, BoardSkipped: 2}; r.State != Done || !maps.Equal(r.Counts, want) {
		t.Errorf("one failure: %s %v, want done %v", r.State, r.Counts, want)
	}

	s = newSim(t, modes(all, modeOK, map[int]string{0: modeRollback, 1: modeFail}), t0)
	r = Plan("r2", spec(pct, time.Minute, Limit{N: 10, Percent: true}, 50), fw12, cands, t0)
	s.run(r, t0, t0.Add(time.Hour))
	// Halted at +20s, when the second failure came; the ten boards already
	// updating were followed to their end.
	if r.State != Halted || r.Reason != "2 failures, max_failures 10% (1 of 12 boards)" {
		t.Errorf("two failures: %s %q", r.State, r.Reason)
	}
	if want := map[BoardState]int{BoardUpdated: 10, BoardFailed: 2, BoardSkipped: 2}; !maps.Equal(r.Counts, want) || !r.Updated.Equal(t0.Add(sec(80))) {
		t.Errorf("two failures: counts %v updated at %v; want %v at +80s", r.Counts, r.Updated.Sub(t0), want)
	}
	if b := board(t, r, Order(all)[1]); b.Error != "failed: checksum: want ab…, got cd…" {
		t.Errorf("failed board's error %q", b.Error)
	}
}

func TestStepOfflineBoardsWait(t *testing.T) {
	all := ids("b", 6)
	order := Order(all)
	s := newSim(t, modes(all, modeOK, nil), t0)
	s.setAway(order[0], true, t0.Add(-time.Minute)) // the canary
	s.setAway(order[3], true, t0.Add(-time.Minute))
	r := Plan("r1", spec([]WaveSize{{Count: 1}, {Percent: 100}}, time.Minute, Limit{}, 50), fw12, updatable(all), t0)

	// The offline canary waits and does not hold its wave: the next wave
	// starts in the same Step, without the other offline board.
	got := s.step(r, t0)
	want := []Send{{order[1], "r1/1"}, {order[2], "r1/2"}, {order[4], "r1/3"}, {order[5], "r1/4"}}
	if !slices.Equal(got, want) {
		t.Errorf("first Step sent %v, want %v", got, want)
	}
	if r.Waves[0].State != WaveDone || r.Waves[1].State != WaveRunning {
		t.Errorf("waves %s, %s; want done, running", r.Waves[0].State, r.Waves[1].State)
	}
	s.run(r, t0.Add(sec(10)), t0.Add(sec(90)))
	if want := map[BoardState]int{BoardUpdated: 4, BoardWaiting: 2}; r.State != Running || !maps.Equal(r.Counts, want) || r.Waves[1].State != WaveDone {
		t.Errorf("at +90s: %s %v, wave 2 %s; want running %v, wave 2 done", r.State, r.Counts, r.Waves[1].State, want)
	}

	// Back online: sent their jobs at the next Step, in wave order.
	s.setAway(order[3], false, t0.Add(sec(95)))
	s.setAway(order[0], false, t0.Add(sec(95)))
	if got, want := s.step(r, t0.Add(sec(100))), []Send{{order[0], "r1/5"}, {order[3], "r1/6"}}; !slices.Equal(got, want) {
		t.Errorf("back online: sent %v, want %v", got, want)
	}
	end := s.run(r, t0.Add(sec(110)), t0.Add(time.Hour))
	if want := map[BoardState]int{BoardUpdated: 6}; r.State != Done || !maps.Equal(r.Counts, want) || !end.Equal(t0.Add(sec(180))) {
		t.Errorf("end: %s %v at %v; want done %v at +180s", r.State, r.Counts, end.Sub(t0), want)
	}
}

func TestStepParallel(t *testing.T) {
	all := ids("b", 10)
	order := Order(all)
	s := newSim(t, modes(all, modeOK, nil), t0)
	s.setAway(order[1], true, t0.Add(-time.Minute))
	r := Plan("r1", spec(nil, sec(30), Limit{}, 3), fw12, updatable(all), t0)

	// The offline board at its turn waits and takes no place.
	if got, want := s.step(r, t0), []Send{{order[0], "r1/1"}, {order[2], "r1/2"}, {order[3], "r1/3"}}; !slices.Equal(got, want) {
		t.Errorf("first Step sent %v, want %v", got, want)
	}
	peak := 0
	for now := t0.Add(sec(10)); r.State == Running && now.Before(t0.Add(time.Hour)); now = now.Add(sec(10)) {
		if now.Equal(t0.Add(sec(200))) {
			s.setAway(order[1], false, now)
		}
		s.step(r, now)
		peak = max(peak, r.Counts[BoardUpdating]+r.Counts[BoardChecking])
	}
	if peak != 3 {
		t.Errorf("at most %d boards updating at once, want 3 (parallel)", peak)
	}
	var sentOrder []string
	for _, snd := range s.order {
		sentOrder = append(sentOrder, snd.ID)
	}
	wantOrder := append(append([]string{order[0]}, order[2:]...), order[1])
	if r.State != Done || !slices.Equal(sentOrder, wantOrder) {
		t.Errorf("%s after sending %q; want done after %q", r.State, sentOrder, wantOrder)
	}
	// Nine boards online, three at a time, 50s each (confirmed at +20s,
	// window 30s): sent at 0, 50 and 100; the waiting one when back at 200.
	for i, want := range []time.Duration{0, 200, 0, 0, 50, 50, 50, 100, 100, 100} {
		if got := s.sent[order[i]]; !slices.Equal(got, []time.Time{t0.Add(want * time.Second)}) {
			t.Errorf("#%d in canary order sent at %v, want +%ds", i, got, want)
		}
	}
}

func TestStepMaxFetching(t *testing.T) {
	all := ids("b", 10)
	order := Order(all)
	s := newSim(t, modes(all, modeOK, nil), t0)
	r := Plan("r1", spec(nil, sec(30), Limit{}, 10), fw12, updatable(all), t0)
	r.MaxFetching = 3

	peak := 0
	for now := t0; r.State == Running && now.Before(t0.Add(time.Hour)); now = now.Add(sec(10)) {
		s.step(r, now)
		n := 0
		r.eachBoard(func(b *Board) {
			if fetching(b) {
				n++
			}
		})
		peak = max(peak, n)
	}
	if peak != 3 {
		t.Errorf("at most %d boards fetching at once, want 3 (MaxFetching)", peak)
	}
	if want := map[BoardState]int{BoardUpdated: 10}; r.State != Done || !maps.Equal(r.Counts, want) {
		t.Errorf("end: %s %v, want done %v", r.State, r.Counts, want)
	}
	// A board leaves fetching when it reports trial (+10s after its job):
	// three jobs every 10s, in canary order, though parallel is 10.
	for i, want := range []time.Duration{0, 0, 0, 10, 10, 10, 20, 20, 20, 30} {
		if got := s.sent[order[i]]; !slices.Equal(got, []time.Time{t0.Add(want * time.Second)}) {
			t.Errorf("#%d in canary order sent at %v, want +%ds", i, got, want)
		}
	}
}

func TestStepSendRate(t *testing.T) {
	all := ids("b", 10)
	order := Order(all)
	s := newSim(t, modes(all, modeOK, nil), t0)
	r := Plan("r1", spec(nil, sec(30), Limit{}, 10), fw12, updatable(all), t0)
	r.SendRate = 10 // bursts of 2 (a fifth of a second's worth)

	type step struct {
		at        time.Duration
		sent      int
		throttled bool
	}
	for _, st := range []step{
		{0, 2, true},                        // a full burst
		{50 * time.Millisecond, 0, true},    // half a job's worth refilled
		{100 * time.Millisecond, 1, true},   // one more
		{100 * time.Millisecond, 0, true},   // no time has passed
		{time.Second, 2, true},              // refilled up to the burst, not ten
		{1300 * time.Millisecond, 2, true},  // three jobs' worth, burst two
		{5 * time.Second, 2, true},          // 9 of 10 sent
		{5100 * time.Millisecond, 1, false}, // 10: nothing left to hold back
		{5300 * time.Millisecond, 0, false},
		{9 * time.Second, 0, false},
	} {
		got := len(s.step(r, t0.Add(st.at)))
		if got != st.sent || r.Throttled != st.throttled {
			t.Errorf("+%v: sent %d, throttled %v; want %d, %v", st.at, got, r.Throttled, st.sent, st.throttled)
		}
	}
	// In canary order, as without a rate.
	var sentOrder []string
	for _, snd := range s.order {
		sentOrder = append(sentOrder, snd.ID)
	}
	if !slices.Equal(sentOrder, order) {
		t.Errorf("sent %q, want %q", sentOrder, order)
	}
	for now := t0.Add(10 * time.Second); r.State == Running && now.Before(t0.Add(time.Hour)); now = now.Add(sec(10)) {
		s.step(r, now)
	}
	if want := map[BoardState]int{BoardUpdated: 10}; r.State != Done || !maps.Equal(r.Counts, want) {
		t.Errorf("end: %s %v, want done %v", r.State, r.Counts, want)
	}
}

func TestStepWaitingBoardsRespectParallel(t *testing.T) {
	all := ids("b", 4)
	order := Order(all)
	s := newSim(t, modes(all, modeOK, nil), t0)
	for _, id := range order[:3] {
		s.setAway(id, true, t0.Add(-time.Minute))
	}
	r := Plan("r1", spec(nil, time.Minute, Limit{}, 2), fw12, updatable(all), t0)
	if got, want := s.step(r, t0), []Send{{order[3], "r1/1"}}; !slices.Equal(got, want) {
		t.Errorf("first Step sent %v, want %v", got, want)
	}
	for _, id := range order[:3] {
		s.setAway(id, false, t0.Add(sec(5)))
	}
	// One place left: the first waiting board in order takes it.
	if got, want := s.step(r, t0.Add(sec(10))), []Send{{order[0], "r1/2"}}; !slices.Equal(got, want) {
		t.Errorf("back online: sent %v, want %v", got, want)
	}
	s.run(r, t0.Add(sec(20)), t0.Add(time.Hour))
	if want := map[BoardState]int{BoardUpdated: 4}; r.State != Done || !maps.Equal(r.Counts, want) {
		t.Errorf("end: %s %v, want done %v", r.State, r.Counts, want)
	}
}

func TestPauseResumeAbort(t *testing.T) {
	for _, tc := range []struct {
		from             State
		pause, resume    State // "" when refused
		abort            State
		reasonAfterAbort string
	}{
		{from: Running, pause: Paused, abort: Aborted},
		{from: Paused, resume: Running, abort: Aborted},
		{from: Halted},
		{from: Aborted},
		{from: Done},
	} {
		for _, op := range []struct {
			name string
			fn   func(*Rollout, time.Time) error
			want State
		}{{"pause", (*Rollout).Pause, tc.pause}, {"resume", (*Rollout).Resume, tc.resume}, {"abort", (*Rollout).Abort, tc.abort}} {
			r := &Rollout{ID: "r1", State: tc.from, Updated: t0}
			now := t0.Add(time.Minute)
			err := op.fn(r, now)
			if op.want == "" {
				wantMsg := op.name + " rollout r1: it is " + string(tc.from) + ": not possible in this state"
				if !errors.Is(err, ErrState) || err.Error() != wantMsg || r.State != tc.from || !r.Updated.Equal(t0) {
					t.Errorf("%s of %s: %v, state %s, updated %v; want %q, unchanged", op.name, tc.from, err, r.State, r.Updated, wantMsg)
				}
				continue
			}
			if err != nil || r.State != op.want || !r.Updated.Equal(now) {
				t.Errorf("%s of %s: %v, state %s, updated %v; want %s at %v", op.name, tc.from, err, r.State, r.Updated, op.want, now)
			}
		}
	}
}

func TestStepPausedAndAborted(t *testing.T) {
	all := ids("b", 4)
	order := Order(all)
	waves := []WaveSize{{Count: 1}, {Percent: 100}}

	s := newSim(t, modes(all, modeOK, nil), t0)
	r := Plan("r1", spec(waves, time.Minute, Limit{}, 50), fw12, updatable(all), t0)
	s.step(r, t0)
	if err := r.Pause(t0.Add(sec(5))); err != nil {
		t.Fatal(err)
	}
	s.run(r, t0.Add(sec(10)), t0.Add(sec(200)))
	// Paused: the canary is followed to its end, nothing more is sent and
	// the next wave does not start.
	if b := board(t, r, order[0]); r.State != Paused || b.State != BoardUpdated || len(s.order) != 1 || r.Waves[1].State != WavePending {
		t.Errorf("paused: %s, canary %s, sent %v, wave 2 %s", r.State, b.State, s.order, r.Waves[1].State)
	}
	if err := r.Resume(t0.Add(sec(205))); err != nil {
		t.Fatal(err)
	}
	if got := s.step(r, t0.Add(sec(210))); len(got) != 3 || r.Waves[1].State != WaveRunning {
		t.Errorf("resumed: sent %v, wave 2 %s; want 3 sends, running", got, r.Waves[1].State)
	}
	s.run(r, t0.Add(sec(220)), t0.Add(time.Hour))
	if r.State != Done {
		t.Errorf("resumed rollout ended %s, want done", r.State)
	}

	// A paused rollout whose last boards end is done.
	s = newSim(t, modes(all, modeOK, nil), t0)
	r = Plan("r4", spec(nil, time.Minute, Limit{}, 50), fw12, updatable(all), t0)
	s.step(r, t0)
	if err := r.Pause(t0.Add(sec(5))); err != nil {
		t.Fatal(err)
	}
	if end := s.run(r, t0.Add(sec(10)), t0.Add(time.Hour)); r.State != Done || !end.Equal(t0.Add(sec(80))) {
		t.Errorf("paused in its last wave: %s at %v, want done at +80s", r.State, end.Sub(t0))
	}

	// A paused rollout whose canary fails is halted all the same.
	s = newSim(t, modes(all, modeRollback, nil), t0)
	r = Plan("r2", spec(waves, time.Minute, Limit{}, 50), fw12, updatable(all), t0)
	s.step(r, t0)
	if err := r.Pause(t0.Add(sec(5))); err != nil {
		t.Fatal(err)
	}
	s.run(r, t0.Add(sec(10)), t0.Add(sec(100)))
	if r.State != Halted || r.Reason != "1 failure, max_failures 0" {
		t.Errorf("paused rollout with a failed canary: %s %q; want halted", r.State, r.Reason)
	}

	s = newSim(t, modes(all, modeOK, nil), t0)
	r = Plan("r3", spec(waves, time.Minute, Limit{}, 50), fw12, updatable(all), t0)
	s.step(r, t0)
	if err := r.Abort(t0.Add(sec(5))); err != nil {
		t.Fatal(err)
	}
	s.run(r, t0.Add(sec(10)), t0.Add(time.Hour))
	if want := map[BoardState]int{BoardUpdated: 1, BoardPending: 3}; r.State != Aborted || !maps.Equal(r.Counts, want) || len(s.order) != 1 {
		t.Errorf("aborted: %s %v after sending %v; want aborted %v after the canary", r.State, r.Counts, s.order, want)
	}
	if !r.Updated.Equal(t0.Add(sec(80))) {
		t.Errorf("aborted rollout updated at %v, want +80s (the canary updated)", r.Updated.Sub(t0))
	}
}

func TestStepBoardOutcomes(t *testing.T) {
	window := time.Minute
	for _, tc := range []struct {
		mode      string
		at        time.Duration // when the board is final
		want      BoardState
		wantError string
	}{
		{mode: modeOK, at: sec(80), want: BoardUpdated},
		// Offline during the trial, back on the new version in time: fine,
		// its health window runs from the confirm at +40s.
		{mode: modeTrialAway, at: sec(100), want: BoardUpdated},
		// Offline from +15s: failed a health window later.
		{mode: modeGone, at: sec(80), want: BoardFailed, wantError: "offline, not back on 1.2 within 1m0s"},
		// Offline while checking, from +30s.
		{mode: modeCheckAway, at: sec(90), want: BoardFailed, wantError: "offline, not back on 1.2 within 1m0s"},
		// Confirmed before its info says the new version: checking only
		// from the new info at +50s.
		{mode: modeLateInfo, at: sec(110), want: BoardUpdated},
		{mode: modeFail, at: sec(10), want: BoardFailed, wantError: "failed: checksum: want ab…, got cd…"},
		{mode: modeRollback, at: sec(20), want: BoardFailed, wantError: "rolled_back: crashed: exit status 2"},
		{mode: modeSilent, at: AnswerTimeout, want: BoardFailed, wantError: "no answer: no update report for job r1/1 in 10m0s"},
	} {
		s := newSim(t, map[string]string{"b": tc.mode}, t0)
		r := Plan("r1", spec(nil, window, Limit{N: 1}, 50), fw12, updatable([]string{"b"}), t0)
		end := s.run(r, t0, t0.Add(time.Hour))
		b := board(t, r, "b")
		if b.State != tc.want || b.Error != tc.wantError || !end.Equal(t0.Add(tc.at)) || !b.Since.Equal(end) {
			t.Errorf("%s: %s %q at %v; want %s %q at %v", tc.mode, b.State, b.Error, end.Sub(t0), tc.want, tc.wantError, tc.at)
		}
		if r.State != Done {
			t.Errorf("%s: rollout %s, want done", tc.mode, r.State)
		}
	}
}

func TestStepNoAnswerCountsOnlineTime(t *testing.T) {
	// A silent board offline for a while after its job (less than the
	// health window) has AnswerTimeout from when it came back.
	s := newSim(t, map[string]string{"b": modeSilent}, t0)
	r := Plan("r1", spec(nil, time.Minute, Limit{N: 1}, 50), fw12, updatable([]string{"b"}), t0)
	s.step(r, t0)
	s.setAway("b", true, t0.Add(sec(5)))
	s.setAway("b", false, t0.Add(sec(55)))
	end := s.run(r, t0.Add(sec(10)), t0.Add(time.Hour))
	if b := board(t, r, "b"); b.State != BoardFailed || !end.Equal(t0.Add(sec(55)+AnswerTimeout+sec(5))) {
		t.Errorf("%s %q at %v; want failed at the first Step %v after +55s", b.State, b.Error, end.Sub(t0), AnswerTimeout)
	}
}

func TestStepResendsAJobWithNoAnswer(t *testing.T) {
	// A silent board (its job lost) is sent the same job again every
	// ResendAfter while the rollout runs, from when it came back online.
	s := newSim(t, map[string]string{"b": modeSilent}, t0)
	r := Plan("r1", spec(nil, time.Minute, Limit{N: 1}, 50), fw12, updatable([]string{"b"}), t0)
	s.step(r, t0)
	s.setAway("b", true, t0.Add(sec(5)))
	s.setAway("b", false, t0.Add(sec(55)))
	s.run(r, t0.Add(sec(10)), t0.Add(sec(150)))
	want := []time.Time{t0.Add(sec(90)), t0.Add(sec(120)), t0.Add(sec(150))}
	if got := s.resent["b"]; !slices.Equal(got, want) {
		t.Errorf("resent at %v, want %v", got, want)
	}
	if got := s.sent["b"]; len(got) != 1 {
		t.Errorf("new jobs at %v, want one", got)
	}
	if b := board(t, r, "b"); b.State != BoardUpdating || b.Job != "r1/1" || r.Jobs != 1 {
		t.Errorf("%s job %s, %d jobs; want updating r1/1, 1 job", b.State, b.Job, r.Jobs)
	}
	// Paused: no resends.
	if err := r.Pause(t0.Add(sec(151))); err != nil {
		t.Fatal(err)
	}
	s.run(r, t0.Add(sec(160)), t0.Add(sec(300)))
	if got := s.resent["b"]; len(got) != len(want) {
		t.Errorf("paused rollout resent at %v", got[len(want):])
	}
}

func TestStepHealthNeedsCount(t *testing.T) {
	s := newSim(t, map[string]string{"b": modeStuckCount}, t0)
	r := Plan("r1", spec(nil, time.Minute, Limit{}, 50), fw12, updatable([]string{"b"}), t0)
	s.run(r, t0, t0.Add(time.Hour))
	if b := board(t, r, "b"); b.State != BoardChecking || r.State != Running {
		t.Fatalf("count stuck: %s, rollout %s; want checking, running", b.State, r.State)
	}
	now := t0.Add(time.Hour + sec(10))
	s.advance(now)
	v := s.f["b"]
	v.LastCount = now
	s.f["b"] = v
	r.Step(s.f, now)
	if b := board(t, r, "b"); b.State != BoardUpdated || r.State != Done {
		t.Errorf("count advancing again: %s, rollout %s; want updated, done", b.State, r.State)
	}
}

func TestStepIgnoresOtherJobs(t *testing.T) {
	f := fleet{"b": {Known: true, Online: true, Firmware: "devicefw 1.1", Since: t0,
		HasReport: true, Report: ReportView{Job: "r0/7", State: "failed", Error: "busy"}}}
	r := Plan("r1", spec(nil, time.Minute, Limit{}, 50), fw12, updatable([]string{"b"}), t0)
	r.Step(f, t0)
	r.Step(f, t0.Add(time.Minute))
	if b := board(t, r, "b"); b.State != BoardUpdating || b.Update != "" || r.State != Running || !r.Updated.Equal(t0) {
		t.Errorf("a report of another job: %s update %q, rollout %s updated %v; want updating, running, unchanged since t0", b.State, b.Update, r.State, r.Updated)
	}
	v := f["b"]
	v.Report = ReportView{Job: "r1/1", State: "downloading"}
	f["b"] = v
	r.Step(f, t0.Add(2*time.Minute))
	if b := board(t, r, "b"); b.Update != "downloading" || !r.Updated.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("its own report: update %q, updated %v; want downloading, now", b.Update, r.Updated)
	}
}

func TestStepUnknownBoardWaits(t *testing.T) {
	r := Plan("r1", spec(nil, time.Minute, Limit{}, 50), fw12, updatable([]string{"gone"}), t0)
	if got := r.Step(fleet{}, t0); got != nil || board(t, r, "gone").State != BoardWaiting || r.State != Running {
		t.Errorf("a board the fleet does not know: sent %v, %s, rollout %s; want waiting, running", got, board(t, r, "gone").State, r.State)
	}
}
