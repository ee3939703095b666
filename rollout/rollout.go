// Package rollout decides firmware rollouts: which boards a rollout
// targets and skips, how they fall into waves, when each board is sent its
// job, and when a board, a wave and the rollout are done, failed or halted.
//
// It is pure: standard library and package devices only, no goroutines,
// no I/O, the time passed in. The control plane's update service (package
// updates) feeds it what the boards say and sends what it decides;
// package store keeps its records in SQL.
package rollout

import (
	"errors"
	"time"
)

// ErrState is wrapped by the errors of Pause, Resume and Abort when the
// rollout's state does not allow them (409 in the API).
var ErrState = errors.New("not possible in this state")

// Firmware is one uploaded build: its bytes live in a file named by SHA256.
type Firmware struct {
	SHA256    string    `json:"sha256"`   // lowercase hex of the bytes
	Version   string    `json:"version"`  // as the build reports it ("1.2" for "devicefw 1.2")
	Platform  string    `json:"platform"` // "linux/arm64", "sim", …
	Size      int64     `json:"size"`
	Uploaded  time.Time `json:"uploaded"`
	Signature []byte    `json:"-"` // ed25519 by the update key over the 32 raw digest bytes
}

// State is a rollout's state.
type State string

// The states of a rollout. Halted, aborted and done are finished: nothing
// more is ever sent, and a finished rollout is never resumed.
const (
	Running State = "running"
	Paused  State = "paused" // nothing is sent until resumed; boards already updating are followed
	Halted  State = "halted" // failures exceeded max_failures
	Aborted State = "aborted"
	Done    State = "done" // every board updated, failed or skipped
)

// Finished reports whether s is halted, aborted or done.
func (s State) Finished() bool { return s == Halted || s == Aborted || s == Done }

// WaveState is a wave's state.
type WaveState string

// The states of a wave.
const (
	WavePending WaveState = "pending"
	WaveRunning WaveState = "running"
	WaveDone    WaveState = "done" // every board updated, failed, skipped or waiting
)

// BoardState is one board's state in a rollout.
type BoardState string

// The states of a board in a rollout. Updated, failed and skipped are
// final.
const (
	BoardPending  BoardState = "pending"  // its turn has not come
	BoardWaiting  BoardState = "waiting"  // offline at its turn: sent its job when it comes back, without holding the wave
	BoardUpdating BoardState = "updating" // sent its job; downloading, installing or in trial
	BoardChecking BoardState = "checking" // confirmed on the new version; its health window runs
	BoardUpdated  BoardState = "updated"
	BoardFailed   BoardState = "failed"
	BoardSkipped  BoardState = "skipped" // never sent anything; Error says why
)

// Final reports whether s is updated, failed or skipped.
func (s BoardState) Final() bool { return s == BoardUpdated || s == BoardFailed || s == BoardSkipped }

// Target selects the boards of a rollout: exactly one field is set.
type Target struct {
	All   bool     `json:"all,omitempty"`
	Group string   `json:"group,omitempty"`
	Tag   string   `json:"tag,omitempty"`
	IDs   []string `json:"ids,omitempty"`
}

// WaveSize is one entry of a spec's waves: a count of boards (Count > 0)
// or a percentage of the targets (Percent 1-100), cumulative.
type WaveSize struct {
	Count   int
	Percent int
}

// Limit is max_failures: a count, or a percentage of the targets when
// Percent is set.
type Limit struct {
	N       int
	Percent bool
}

// Spec is what POST /api/rollouts asks for; ParseSpec reads and checks it
// and fills the defaults. Plan and Step also read nil Waves as ["100%"] and
// Parallel 0 as 50; HealthWindow 0 means no health window.
type Spec struct {
	Firmware     string // SHA-256 of the build
	Target       Target
	Waves        []WaveSize    // default [100%]
	HealthWindow time.Duration // default 60s
	MaxFailures  Limit         // default 0: the first failure halts
	Parallel     int           // default 50
}

// Board is one board's place in a rollout.
type Board struct {
	ID    string     `json:"id"`
	State BoardState `json:"state"`
	Error string     `json:"error"` // why skipped or failed; "" otherwise
	Job   string     `json:"job"`   // the job last sent to it, "<rollout id>/<n>"; "" before
	// Since is when the board entered State (health windows and offline
	// timeouts run from it). Storage must keep it: with a zero Since every
	// timeout of an updating or checking board is already due.
	Since time.Time `json:"-"`
	// Update is the board's last reported update state for Job.
	Update string `json:"update"`
	// resent is when Step last sent Job again (not stored: after a restart
	// a lost job is sent again at most once more than otherwise).
	resent time.Time
}

// Wave is one wave of a rollout: the boards it adds to the earlier ones,
// in canary order. The last wave also lists the skipped boards, after its
// own (see Plan).
type Wave struct {
	Size   int       `json:"size"` // targets in this wave and the earlier ones, as planned (skipped boards not counted)
	State  WaveState `json:"state"`
	Boards []Board   `json:"boards"`
}

// Rollout is one rollout and every board's state in it. Its JSON is the
// contract's answer of GET /api/rollouts/<id> (plus the spec's settings).
type Rollout struct {
	ID       string             `json:"id"`
	Firmware string             `json:"firmware"`
	Version  string             `json:"version"`
	Platform string             `json:"platform"`
	State    State              `json:"state"`
	Reason   string             `json:"reason"` // why halted; "" otherwise
	Created  time.Time          `json:"created"`
	Updated  time.Time          `json:"updated"`
	Spec     Spec               `json:"-"`
	Waves    []Wave             `json:"waves"`
	Counts   map[BoardState]int `json:"counts"`
	// Jobs is how many jobs were sent: the next job is <ID>/<Jobs+1>.
	Jobs int `json:"-"`
	// MaxFetching, above 0, bounds the boards fetching at once: updating
	// and not yet past downloading (no report for their job yet, or
	// downloading). The caller sets it from its download capacity before
	// each Step, so that a wave of a thousand boards with parallel 1000
	// does not open a thousand downloads (and a thousand new MQTT
	// sessions) at once: jobs go out as earlier boards finish fetching.
	// Not stored; 0 means no bound beyond Parallel.
	MaxFetching int `json:"-"`
	// SendRate, above 0, bounds how fast Step starts boards: jobs a second,
	// with bursts of SendBurst (a fifth of a second's worth, at least
	// one). The caller sets it before each Step, so that the boards of a
	// big wave on a fast network do not all restart their MQTT sessions
	// within the same second. Not stored; 0 means no bound.
	SendRate float64 `json:"-"`
	// Throttled reports whether the last Step held back a board that
	// SendRate alone kept from starting: the caller steps again soon
	// (within a SendBurst's refill) rather than at its usual pace.
	Throttled bool `json:"-"`

	sendTokens float64   // boards Step may start now (see SendRate)
	sendAt     time.Time // when sendTokens was last filled up
}

// SendBurst is how many boards Step may start at once at SendRate.
func (r *Rollout) SendBurst() float64 { return max(1, r.SendRate/5) }

// fillSends tops up the boards Step may start for the time since the last
// Step, up to SendBurst.
func (r *Rollout) fillSends(now time.Time) {
	if r.sendAt.IsZero() {
		r.sendTokens = r.SendBurst()
	} else if d := now.Sub(r.sendAt); d > 0 {
		r.sendTokens = min(r.SendBurst(), r.sendTokens+r.SendRate*d.Seconds())
	}
	r.sendAt = now
}

// Candidate is what the control plane knows of a targeted board when a
// rollout is planned.
type Candidate struct {
	ID       string
	Platform string // info.platform
	Method   string // info.update; empty: cannot update
	Firmware string // info.firmware
	Running  string // running of its latest update report, if any
	Online   bool
}

// View is what the control plane knows of a board now, as Step sees it.
type View struct {
	Known    bool
	Online   bool
	Firmware string // info.firmware
	// Report is the board's latest update report (HasReport set).
	HasReport bool
	Report    ReportView
	// Since is when Online last changed (the start of the control plane
	// counts as a change to offline).
	Since time.Time
	// LastCount is when the board's count last advanced.
	LastCount time.Time
}

// ReportView is the part of a board's update report a rollout reads.
type ReportView struct {
	Job, State, Version, Running, Error string
}

// Fleet gives Step the current view of a board.
type Fleet interface {
	View(id string) View
}

// Send is a decision of Step: send board ID its update job Job.
type Send struct {
	ID  string
	Job string
}
