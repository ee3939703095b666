package rollout

import (
	"fmt"
	"maps"
	"time"

	"switchyard/devices"
)

// AnswerTimeout is how long a board that was sent a job may stay online
// without any update report for that job before it is failed ("no
// answer"). The contract sets no such limit; without one, a job lost on
// the way (update/set is not retained) would hold its wave forever. It is
// far beyond what a board takes to say "downloading".
const AnswerTimeout = 10 * time.Minute

// ResendAfter is how long a board that was sent a job may stay online
// without any update report for it before the same job is sent again (and
// again every ResendAfter, until AnswerTimeout). update/set is QoS 1 but
// not retained: a job published just before the control plane died, or
// while the board was between sessions, can be lost. A board answers a
// repeat of its job in progress by ignoring it, and a repeat of a finished
// one by doing it again (a version it already runs is confirmed at once).
const ResendAfter = 30 * time.Second

// Step advances r to now, given what the control plane knows of its boards
// (f), and returns the jobs to send now, in order. They are already
// recorded in r (the board updating, with Job set), so the caller sends
// them and saves r.
//
// For each board updating or checking (also in a paused, halted or aborted
// rollout, so that boards already updating are followed to their end):
//
//   - Update mirrors the state of the board's latest report for its job.
//   - A report failed or rolled_back for its job: failed, Error
//     "<state>: <the report's error>".
//   - Offline, and not back within HealthWindow (from when it went offline,
//     or from when it entered its state if that is later): failed. (So with
//     a health window of 0, a board seen offline at any Step while it
//     updates, even for a restart, fails.)
//   - Updating, online, confirmed for its job and its info's firmware the
//     new version: checking, from now.
//   - Checking, online on the new version, HealthWindow passed since it
//     entered checking and its count advanced after that: updated.
//   - Updating, online, no report for its job ResendAfter after it was
//     sent the job (or came back online, if later): the same job is sent
//     again, every ResendAfter, while the rollout runs (a resend changes
//     nothing in r); AnswerTimeout after: failed, "no answer".
//
// Then, when failures exceed max_failures (a count, or a percentage of the
// targets, skipped boards not counted, rounded down) a running or paused
// rollout is halted: nothing more is ever sent.
//
// Then, when running: waiting boards that are online are sent their job,
// then the pending boards of the current wave (the first one not done), in
// order, while fewer than Parallel boards are updating or checking (and,
// when MaxFetching is set, fewer than it are fetching; when SendRate is
// set, no faster than it: Throttled says when that held a board back); a
// pending board offline at its turn becomes waiting instead. A wave is done
// when each of its boards is updated, failed, skipped or waiting; the next
// one starts at once, in the same Step.
//
// A running or paused rollout is done when every board is updated, failed
// or skipped. Counts is recounted, and Updated set to now when anything in
// r's JSON changed (so a caller saves and broadcasts r when Updated is now).
func (r *Rollout) Step(f Fleet, now time.Time) []Send {
	if r.State == Done {
		return nil
	}
	s := stepper{r: r, f: f, now: now}
	r.eachBoard(func(b *Board) {
		if b.State == BoardUpdating || b.State == BoardChecking {
			s.follow(b)
		}
	})
	if r.State == Running || r.State == Paused {
		if n, limit := r.failures(); n > limit {
			r.State = Halted
			r.Reason = fmt.Sprintf("%d %s, max_failures %s", n, plural(n, "failure", "failures"), r.limitText(limit))
			s.changed = true
		}
	}
	for i := range r.Waves {
		if w := &r.Waves[i]; w.State == WaveRunning && w.done() {
			w.State = WaveDone
			s.changed = true
		}
	}
	if r.State == Running {
		s.send()
	}
	if (r.State == Running || r.State == Paused) && r.allFinal() {
		r.State = Done
		s.changed = true
	}
	old := r.Counts
	r.Recount()
	if s.changed || !maps.Equal(old, r.Counts) {
		r.Updated = now
	}
	return s.sends
}

// Pause stops sending jobs; boards already updating are followed. Only a
// running rollout can be paused.
func (r *Rollout) Pause(now time.Time) error {
	return r.transition("pause", now, Paused, Running)
}

// Resume lets a paused rollout send jobs again (at its next Step).
func (r *Rollout) Resume(now time.Time) error {
	return r.transition("resume", now, Running, Paused)
}

// Abort finishes a running or paused rollout by hand: nothing more is
// sent; boards already updating are followed to their end, as in a halted
// rollout.
func (r *Rollout) Abort(now time.Time) error {
	return r.transition("abort", now, Aborted, Running, Paused)
}

func (r *Rollout) transition(op string, now time.Time, to State, from ...State) error {
	for _, f := range from {
		if r.State == f {
			r.State = to
			r.Updated = now
			return nil
		}
	}
	return fmt.Errorf("%s rollout %s: it is %s: %w", op, r.ID, r.State, ErrState)
}

// Recount sets Counts from the boards' states: every state that at least
// one board is in, and no other. Plan and Step keep Counts counted; a
// caller that loads a rollout's boards from storage calls Recount.
func (r *Rollout) Recount() {
	c := map[BoardState]int{}
	r.eachBoard(func(b *Board) { c[b.State]++ })
	r.Counts = c
}

// eachBoard calls fn with every board of r, wave by wave, in order.
func (r *Rollout) eachBoard(fn func(*Board)) {
	for i := range r.Waves {
		for j := range r.Waves[i].Boards {
			fn(&r.Waves[i].Boards[j])
		}
	}
}

// failures returns how many boards failed and how many may fail without
// halting the rollout.
func (r *Rollout) failures() (n, limit int) {
	targets := 0
	r.eachBoard(func(b *Board) {
		if b.State == BoardFailed {
			n++
		}
		if b.State != BoardSkipped {
			targets++
		}
	})
	limit = r.Spec.MaxFailures.N
	if r.Spec.MaxFailures.Percent {
		limit = r.Spec.MaxFailures.N * targets / 100
	}
	return n, limit
}

// limitText writes max_failures for a halt's Reason: "2", or "10% (1 of 12
// boards)".
func (r *Rollout) limitText(limit int) string {
	if !r.Spec.MaxFailures.Percent {
		return fmt.Sprint(limit)
	}
	targets := 0
	r.eachBoard(func(b *Board) {
		if b.State != BoardSkipped {
			targets++
		}
	})
	return fmt.Sprintf("%d%% (%d of %d %s)", r.Spec.MaxFailures.N, limit, targets, plural(targets, "board", "boards"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// allFinal reports whether every board of r is updated, failed or skipped.
func (r *Rollout) allFinal() bool {
	all := true
	r.eachBoard(func(b *Board) { all = all && b.State.Final() })
	return all
}

// done reports whether each board of w is updated, failed, skipped or
// waiting.
func (w *Wave) done() bool {
	for _, b := range w.Boards {
		if !b.State.Final() && b.State != BoardWaiting {
			return false
		}
	}
	return true
}

// stepper is one Step in progress.
type stepper struct {
	r       *Rollout
	f       Fleet
	now     time.Time
	changed bool // something in r's JSON changed
	sends   []Send
}

// set moves b to state st from now.
func (s *stepper) set(b *Board, st BoardState, why string) {
	b.State, b.Error, b.Since = st, why, s.now
	s.changed = true
}

// follow advances b, updating or checking, by what the fleet says of it.
func (s *stepper) follow(b *Board) {
	v := s.f.View(b.ID)
	online := v.Known && v.Online
	mine := v.HasReport && v.Report.Job == b.Job
	if mine && b.Update != v.Report.State {
		b.Update = v.Report.State
		s.changed = true
	}
	window := s.r.Spec.HealthWindow
	if mine {
		switch st := devices.UpdateState(v.Report.State); st {
		case devices.UpdateFailed, devices.UpdateRolledBack:
			why := string(st)
			if v.Report.Error != "" {
				why += ": " + v.Report.Error
			}
			s.set(b, BoardFailed, why)
			return
		}
	}
	if !online {
		if s.now.Sub(later(v.Since, b.Since)) >= window {
			s.set(b, BoardFailed, fmt.Sprintf("offline, not back on %s within %v", s.r.Version, window))
		}
		return
	}
	newVersion := devices.RunsVersion(v.Firmware, s.r.Version)
	if b.State == BoardUpdating {
		switch {
		case mine && v.Report.State == string(devices.UpdateConfirmed) && newVersion:
			s.set(b, BoardChecking, "")
		case !mine && s.now.Sub(later(v.Since, b.Since)) >= AnswerTimeout:
			s.set(b, BoardFailed, fmt.Sprintf("no answer: no update report for job %s in %v", b.Job, AnswerTimeout))
		case !mine && s.r.State == Running && s.now.Sub(later(v.Since, b.Since, b.resent)) >= ResendAfter:
			b.resent = s.now
			s.sends = append(s.sends, Send{ID: b.ID, Job: b.Job})
		}
		return
	}
	if newVersion && s.now.Sub(b.Since) >= window && v.LastCount.After(b.Since) {
		s.set(b, BoardUpdated, "")
	}
}

// send starts the jobs a running rollout may start now.
func (s *stepper) send() {
	r := s.r
	parallel := r.Spec.Parallel
	if parallel <= 0 {
		parallel = DefaultParallel
	}
	room := parallel
	fetchRoom := r.MaxFetching
	r.eachBoard(func(b *Board) {
		if b.State == BoardUpdating || b.State == BoardChecking {
			room--
		}
		if fetching(b) {
			fetchRoom--
		}
	})
	if r.MaxFetching > 0 {
		room = min(room, fetchRoom)
	}
	limited := false // SendRate, not Parallel or MaxFetching, set room
	if r.SendRate > 0 {
		r.fillSends(s.now)
		if n := int(r.sendTokens); n < room {
			room, limited = n, true
		}
	}
	started, held := len(s.sends), false // held: a board could start but for room
	defer func() {
		if r.SendRate > 0 {
			r.sendTokens -= float64(len(s.sends) - started)
		}
		r.Throttled = limited && held
	}()
	// Waiting boards come first: they are from earlier turns.
	r.eachBoard(func(b *Board) {
		if b.State != BoardWaiting || !s.online(b.ID) {
			return
		}
		if room <= 0 {
			held = true
			return
		}
		s.start(b)
		room--
	})
	for i := range r.Waves {
		w := &r.Waves[i]
		if w.State == WaveDone {
			continue
		}
		if w.State == WavePending {
			w.State = WaveRunning
			s.changed = true
		}
		for j := range w.Boards {
			b := &w.Boards[j]
			if b.State != BoardPending {
				continue
			}
			if room <= 0 {
				held = true
				break
			}
			if !s.online(b.ID) {
				s.set(b, BoardWaiting, "")
				continue
			}
			s.start(b)
			room--
		}
		if !w.done() {
			return
		}
		w.State = WaveDone
	}
}

// fetching reports whether b was sent its job and has not yet reported
// past downloading (see Rollout.MaxFetching).
func fetching(b *Board) bool {
	return b.State == BoardUpdating && (b.Update == "" || b.Update == string(devices.UpdateDownloading))
}

func (s *stepper) online(id string) bool {
	v := s.f.View(id)
	return v.Known && v.Online
}

// start records b's next job and queues it to be sent.
func (s *stepper) start(b *Board) {
	s.r.Jobs++
	b.Job = fmt.Sprintf("%s/%d", s.r.ID, s.r.Jobs)
	b.Update = ""
	s.set(b, BoardUpdating, "")
	s.sends = append(s.sends, Send{ID: b.ID, Job: b.Job})
}

// later returns the later of a and b.
func later(ts ...time.Time) time.Time {
	var l time.Time
	for _, t := range ts {
		if t.After(l) {
			l = t
		}
	}
	return l
}
