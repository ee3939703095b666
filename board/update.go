package board

import (
	"context"
	"errors"
	"fmt"
	"time"

	"switchyard/devices"
)

// Updates (v2): the board side of P/<id>/update/set and P/<id>/update.
//
// The board owns the protocol: it answers what it can at once (no
// updater, a job for the version running, a second job while one is in
// progress, a duplicate delivery), and it publishes every report, retained
// and at QoS 1, and its last one again after every (re)connect. The work
// itself (download, verification, installation) is an Updater's, run on a
// goroutine of the board's (the update goroutine) so that counting and LED
// commands go on meanwhile; it sends its reports to the Run goroutine over
// a channel. When a job needs the board to stop for the next build, the
// Updater says so and Run returns a *HandOver to its caller, which starts
// that build: a process, or another Board in the same process.

// Updater installs new builds of a board's firmware. A board calls it
// from its update goroutine, one call at a time, never from Run's.
type Updater interface {
	// Method names the update method in info ("binary", "sim").
	Method() string
	// Update carries out job: an install, or a switch back to the previous
	// build when job.Rollback(). It calls report for each state on the way
	// (downloading with progress, verifying, installing); the board fills
	// in Job and Running, and Version when empty. It returns the job's last
	// report: failed, with the contract's error word; or, with handOver
	// set, restarting: then the board publishes it, says offline,
	// disconnects and Run returns a *HandOver, and whoever called Run
	// starts the next build. When ctx is cancelled (Run is returning) it
	// returns soon; what it returns then is dropped.
	Update(ctx context.Context, job devices.UpdateCommand, report func(devices.UpdateReport)) (last devices.UpdateReport, handOver bool)
	// Confirm makes the build on trial for job the current one, for good.
	// A board on trial calls it once it has stayed connected for the
	// trial's Duration after publishing status, info and led; when it
	// returns nil the board publishes confirmed. An error (the trial is
	// over, say) leaves the board on trial, unconfirmed.
	Confirm(ctx context.Context, job string) error
}

// Trial puts a board on trial: it runs a new build that has not yet
// confirmed itself (see Config.Trial).
type Trial struct {
	Job      string        // the job that installed this build
	Duration time.Duration // how long to stay connected before confirming
}

// HandOver is what Run returns when an update job hands the board over to
// the next build: the board has published restarting (when connected),
// said offline and disconnected. The caller starts the next build with
// the LED state LED.
type HandOver struct {
	Job devices.UpdateCommand
	LED bool // the LED state the board left
}

func (h *HandOver) Error() string {
	return "handed over to the next build (update job " + h.Job.Job + ")"
}

// errHandOver ends serve and wait when a job hands the board over.
var errHandOver = errors.New("hand over")

// updateMsg is what the update goroutine sends the Run goroutine.
type updateMsg struct {
	r    devices.UpdateReport
	kind msgKind
	err  error // of a failed confirmation
}

type msgKind int

const (
	msgReport        msgKind = iota // a state on the way
	msgEnd                          // the job's last report
	msgHandOver                     // the last report (restarting); the board stops
	msgConfirmFailed                // Confirm failed: err
)

// updateState is a board's update bookkeeping, owned by the Run goroutine
// (msgs excepted).
type updateState struct {
	msgs chan updateMsg // from the update goroutine

	job    *devices.UpdateCommand // the job in progress (a trial's too); nil when none
	cancel context.CancelFunc     // cancels the update goroutine; nil when none runs
	done   chan struct{}          // closed when the update goroutine has ended

	last     *devices.UpdateReport // published after every (re)connect; nil before any
	handOver *HandOver             // set by a hand-over, for Run to return

	trial  *Trial // on trial and not yet confirmed
	timer  Timer  // the trial timer while it runs
	trialC <-chan time.Time
}

// initUpdate sets up the update state of a new board from cfg.
func (b *Board) initUpdate(cfg Config) error {
	// Unbuffered: a report has reached the Run goroutine when the
	// Updater's report returns; it waits while Run is busy (a connect, at
	// most OpTimeout).
	b.upd.msgs = make(chan updateMsg)
	if cfg.Report != nil {
		b.record(*cfg.Report)
	}
	if t := cfg.Trial; t != nil {
		switch {
		case b.updater == nil:
			return errors.New("on trial without an updater")
		case t.Job == "" || t.Duration <= 0:
			return fmt.Errorf("trial needs a job and a positive duration, got %q and %s", t.Job, t.Duration)
		}
		tr := *t
		b.upd.trial = &tr
		b.upd.job = &devices.UpdateCommand{Job: t.Job, Version: b.version}
		b.record(devices.UpdateReport{Job: t.Job, State: devices.UpdateTrial, Version: b.version})
	}
	return nil
}

// handleUpdate answers a job from update/set, or starts it.
func (b *Board) handleUpdate(ctx context.Context, m Message) error {
	if m.Retained {
		b.log.Warn("ignoring retained update job (commands must not be retained)", "id", b.id)
		return nil
	}
	job, err := devices.ParseUpdateCommand(m.Payload)
	if err != nil {
		b.log.Warn("ignoring update job", "id", b.id, "err", err)
		return nil
	}
	failed := func(word string) devices.UpdateReport {
		return devices.UpdateReport{Job: job.Job, State: devices.UpdateFailed, Version: job.Version, Error: word}
	}
	switch {
	case b.updater == nil:
		b.log.Info("update job refused: this board cannot update", "id", b.id, "job", job.Job)
		return b.report(ctx, failed(devices.UpdateErrUnsupported), true)
	case b.upd.job != nil && b.upd.job.Job == job.Job:
		b.log.Debug("update job delivered again, already in progress", "id", b.id, "job", job.Job)
		return nil
	case b.upd.job != nil:
		// Not recorded as the last report: the job in progress still is
		// what a (re)connect announces.
		b.log.Info("update job refused: busy", "id", b.id, "job", job.Job, "in_progress", b.upd.job.Job)
		return b.report(ctx, failed(devices.UpdateErrBusy), false)
	case !job.Rollback() && devices.RunsVersion(b.firmware, job.Version):
		b.log.Info("update job for the version running: confirmed", "id", b.id, "job", job.Job, "version", job.Version)
		return b.report(ctx, devices.UpdateReport{Job: job.Job, State: devices.UpdateConfirmed, Version: job.Version}, true)
	}
	b.log.Info("update job", "id", b.id, "job", job.Job, "version", job.Version, "action", job.Action)
	b.upd.job = &job
	b.startJob(func(ctx context.Context) updateMsg {
		last, handOver := b.updater.Update(ctx, job, func(r devices.UpdateReport) {
			select {
			case b.upd.msgs <- updateMsg{r: r}:
			case <-ctx.Done():
			}
		})
		if handOver {
			return updateMsg{r: last, kind: msgHandOver}
		}
		return updateMsg{r: last, kind: msgEnd}
	})
	return nil
}

// startJob runs f on the update goroutine and sends its answer to Run.
func (b *Board) startJob(f func(context.Context) updateMsg) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	b.upd.cancel, b.upd.done = cancel, done
	go func() { // ends when f returns: the job is over, or stopJob cancelled ctx
		defer close(done)
		m := f(ctx)
		select {
		case b.upd.msgs <- m:
		case <-ctx.Done():
		}
	}()
}

// stopJob cancels the update goroutine, if one runs, and waits for it.
func (b *Board) stopJob() {
	if b.upd.cancel == nil {
		return
	}
	b.upd.cancel()
	<-b.upd.done
	b.upd.cancel, b.upd.done = nil, nil
}

// onUpdate handles a message from the update goroutine. It publishes
// reports when connected and records them for the next connect either
// way. It returns errHandOver when the board must stop.
func (b *Board) onUpdate(ctx context.Context, m updateMsg) error {
	if m.kind != msgReport {
		b.stopJob() // it has sent its last message: it is ending
	}
	job := b.upd.job
	if job == nil { // cannot happen: reports come only while a job runs
		return nil
	}
	switch m.kind {
	case msgConfirmFailed:
		b.log.Warn("could not confirm the build on trial", "id", b.id, "job", job.Job, "err", m.err)
		return nil
	case msgEnd:
		b.upd.job, b.upd.trial = nil, nil
	case msgHandOver:
		b.upd.handOver = &HandOver{Job: *job, LED: b.on}
	}
	if m.r.Version == "" {
		m.r.Version = job.Version
	}
	m.r.Job = job.Job
	if m.kind != msgReport {
		b.log.Info("update", "id", b.id, "job", job.Job, "state", string(m.r.State), "error", m.r.Error)
	}
	var err error
	if b.connected {
		err = b.report(ctx, m.r, true)
	} else {
		b.record(m.r)
	}
	if m.kind == msgHandOver {
		return errHandOver // the board stops whether or not restarting went out
	}
	return err
}

// report publishes r on P/<id>/update (retained, QoS 1), recording it as
// the last report when keep is set.
func (b *Board) report(ctx context.Context, r devices.UpdateReport, keep bool) error {
	r.Running = b.version
	if keep {
		b.record(r)
	}
	if !b.connected {
		return nil
	}
	return b.publish(ctx, b.updTopic, r.AppendJSON(nil), 1, true)
}

func (b *Board) record(r devices.UpdateReport) {
	r.Running = b.version
	b.upd.last = &r
}

// resyncUpdate runs at the end of every connect: it publishes the last
// report and starts the trial timer of a board on trial.
func (b *Board) resyncUpdate(ctx context.Context) error {
	if r := b.upd.last; r != nil {
		if err := b.sess.Publish(ctx, b.updTopic, r.AppendJSON(nil), 1, true); err != nil {
			return fmt.Errorf("publish %s: %w", b.updTopic, err)
		}
	}
	if b.upd.trial != nil && b.upd.cancel == nil {
		b.upd.timer = b.clock.NewTimer(b.upd.trial.Duration)
		b.upd.trialC = b.upd.timer.C()
	}
	return nil
}

func (b *Board) stopTrialTimer() {
	if b.upd.timer != nil {
		b.upd.timer.Stop()
		b.upd.timer, b.upd.trialC = nil, nil
	}
}

// startConfirm runs when the board has stayed connected for its trial:
// Confirm runs on the update goroutine.
func (b *Board) startConfirm() {
	b.stopTrialTimer()
	job := b.upd.trial.Job
	b.log.Info("trial passed, confirming", "id", b.id, "job", job)
	b.startJob(func(ctx context.Context) updateMsg {
		if err := b.updater.Confirm(ctx, job); err != nil {
			return updateMsg{kind: msgConfirmFailed, err: err}
		}
		return updateMsg{r: devices.UpdateReport{State: devices.UpdateConfirmed}, kind: msgEnd}
	})
}

// handOver ends Run for a hand-over: offline, disconnect, *HandOver.
func (b *Board) handOver() error {
	if err := b.drop(true); err != nil {
		b.log.Warn("handing over without saying offline", "id", b.id, "err", err)
	}
	b.log.Info("handing over to the next build", "id", b.id, "job", b.upd.handOver.Job.Job)
	return b.upd.handOver
}
