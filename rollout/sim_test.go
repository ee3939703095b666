package rollout

import (
	"testing"
	"time"
)

// fleet is a fake Fleet: the control plane's view of each board.
type fleet map[string]View

func (f fleet) View(id string) View { return f[id] }

// How a simulated board answers a job, by the time since it was sent.
const (
	modeOK         = "ok"          // trial at +10s, confirmed at +20s
	modeRollback   = "rollback"    // trial at +10s, rolled_back at +20s (crashed)
	modeFail       = "fail"        // failed at +10s (checksum)
	modeSilent     = "silent"      // never answers
	modeTrialAway  = "trial-away"  // trial at +10s, offline at +15s, back at +40s confirmed on the new version
	modeGone       = "gone"        // trial at +10s, offline at +15s for good
	modeCheckAway  = "check-away"  // confirmed at +20s, offline at +30s for good
	modeLateInfo   = "late-info"   // confirmed at +20s with the old info; the new info at +50s
	modeStuckCount = "stuck-count" // like ok, but its count never advances after the job
)

// simBoard is one simulated board.
type simBoard struct {
	mode string
	job  string
	sent time.Time
	away bool // held offline by the test
}

// sim simulates boards answering update jobs per the contract, with time
// passed in: advance moves every board to now, then the test calls Step.
type sim struct {
	t      *testing.T
	f      fleet
	boards map[string]*simBoard
	sent   map[string][]time.Time // every job send, by board
	resent map[string][]time.Time // every resend of a job with no answer, by board
	order  []Send                 // every send, in order
}

func newSim(t *testing.T, modes map[string]string, now time.Time) *sim {
	s := &sim{t: t, f: fleet{}, boards: map[string]*simBoard{}, sent: map[string][]time.Time{}, resent: map[string][]time.Time{}}
	for id, mode := range modes {
		s.boards[id] = &simBoard{mode: mode}
		s.f[id] = View{Known: true, Online: true, Firmware: "devicefw 1.1", Since: now.Add(-time.Hour), LastCount: now}
	}
	return s
}

// setAway holds board id offline (or lets it back) from now.
func (s *sim) setAway(id string, away bool, now time.Time) {
	s.boards[id].away = away
	s.advanceOne(id, now)
}

func online(v *View, on bool, now time.Time) {
	if v.Online != on {
		v.Online, v.Since = on, now
	}
}

func (s *sim) advance(now time.Time) {
	for id := range s.boards {
		s.advanceOne(id, now)
	}
}

func (s *sim) advanceOne(id string, now time.Time) {
	b, v := s.boards[id], s.f[id]
	on := !b.away
	report := func(state, err string) {
		v.HasReport = true
		v.Report = ReportView{Job: b.job, State: state, Version: "1.2", Running: "1.1", Error: err}
		if state == "confirmed" || state == "trial" {
			v.Report.Running = "1.2"
		}
	}
	if b.job != "" {
		d := now.Sub(b.sent)
		switch b.mode {
		case modeOK, modeStuckCount, modeLateInfo:
			switch {
			case d >= 20*time.Second:
				report("confirmed", "")
				v.Firmware = "devicefw 1.2"
				if b.mode == modeLateInfo && d < 50*time.Second {
					v.Firmware = "devicefw 1.1"
				}
			case d >= 10*time.Second:
				report("trial", "")
				v.Firmware = "devicefw 1.2"
				if b.mode == modeLateInfo {
					v.Firmware = "devicefw 1.1"
				}
			default:
				report("downloading", "")
			}
		case modeRollback:
			switch {
			case d >= 20*time.Second:
				report("rolled_back", "crashed: exit status 2")
				v.Firmware = "devicefw 1.1"
			case d >= 10*time.Second:
				report("trial", "")
				v.Firmware = "devicefw 1.2"
			default:
				report("downloading", "")
			}
		case modeFail:
			if d >= 10*time.Second {
				report("failed", "checksum: want ab…, got cd…")
			} else {
				report("downloading", "")
			}
		case modeSilent:
		case modeTrialAway, modeGone:
			switch {
			case d >= 40*time.Second && b.mode == modeTrialAway:
				report("confirmed", "")
			case d >= 15*time.Second:
				on = false
			case d >= 10*time.Second:
				report("trial", "")
				v.Firmware = "devicefw 1.2"
			default:
				report("downloading", "")
			}
		case modeCheckAway:
			switch {
			case d >= 30*time.Second:
				on = false
			case d >= 20*time.Second:
				report("confirmed", "")
				v.Firmware = "devicefw 1.2"
			default:
				report("downloading", "")
			}
		default:
			s.t.Fatalf("board %s: unknown mode %q", id, b.mode)
		}
	}
	online(&v, on, now)
	if v.Online && !(b.mode == modeStuckCount && b.job != "") {
		v.LastCount = now
	}
	s.f[id] = v
}

// step advances the boards to now, steps r, receives its sends and checks
// what must hold after every Step.
func (s *sim) step(r *Rollout, now time.Time) []Send {
	s.t.Helper()
	s.advance(now)
	before := r.Updated
	sends := r.Step(s.f, now)
	var jobs []Send // new jobs, not resends
	for _, snd := range sends {
		b := s.boards[snd.ID]
		if b == nil {
			s.t.Fatalf("%v: sent %v to an unknown board", now, snd)
		}
		if !s.f[snd.ID].Online {
			s.t.Errorf("%v: sent %v to an offline board", now, snd)
		}
		if snd.Job == b.job { // a resend of a job with no answer: the board goes on as it was
			s.resent[snd.ID] = append(s.resent[snd.ID], now)
			continue
		}
		b.job, b.sent = snd.Job, now
		s.sent[snd.ID] = append(s.sent[snd.ID], now)
		s.order = append(s.order, snd)
		jobs = append(jobs, snd)
	}
	s.check(r, now, before, jobs)
	if len(sends) > len(jobs) && r.State != Running {
		s.t.Errorf("%v: a %s rollout resent jobs %v", now, r.State, sends)
	}
	return sends
}

// check holds the invariants of a rollout after a Step at now.
func (s *sim) check(r *Rollout, now, before time.Time, sends []Send) {
	s.t.Helper()
	counts := map[BoardState]int{}
	active := 0
	r.eachBoard(func(b *Board) {
		counts[b.State]++
		if b.State == BoardUpdating || b.State == BoardChecking {
			active++
		}
	})
	for st, n := range counts {
		if r.Counts[st] != n {
			s.t.Errorf("%v: Counts %v, but the boards count %v", now, r.Counts, counts)
			break
		}
	}
	if len(counts) != len(r.Counts) {
		s.t.Errorf("%v: Counts %v, but the boards count %v", now, r.Counts, counts)
	}
	if p := r.Spec.Parallel; active > p {
		s.t.Errorf("%v: %d boards updating or checking, parallel %d", now, active, p)
	}
	if len(sends) > 0 && !r.Updated.Equal(now) {
		s.t.Errorf("%v: Step sent %v but Updated is %v", now, sends, r.Updated)
	}
	if !r.Updated.Equal(now) && !r.Updated.Equal(before) {
		s.t.Errorf("%v: Updated %v, neither now nor as before (%v)", now, r.Updated, before)
	}
	if len(sends) > 0 && r.State != Running {
		s.t.Errorf("%v: a %s rollout sent %v", now, r.State, sends)
	}
}

// run steps r every 10s from start until until (included), and returns
// the time of the last Step. It stops early when r is done; a halted or
// aborted rollout is stepped on, since its boards are still followed.
func (s *sim) run(r *Rollout, start, until time.Time) time.Time {
	s.t.Helper()
	now := start
	for ; !now.After(until); now = now.Add(10 * time.Second) {
		s.step(r, now)
		if r.State.Finished() && r.State != Halted && r.State != Aborted {
			return now
		}
	}
	return now.Add(-10 * time.Second)
}

// board returns the board id of r.
func board(t *testing.T, r *Rollout, id string) *Board {
	t.Helper()
	var found *Board
	r.eachBoard(func(b *Board) {
		if b.ID == id {
			found = b
		}
	})
	if found == nil {
		t.Fatalf("no board %s in rollout", id)
	}
	return found
}

func sec(n int) time.Duration { return time.Duration(n) * time.Second }
