package update

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"switchyard/board"
	"switchyard/devices"
)

// FailMode makes every simulated board fail its updates in one way
// (--sim-update-fail), for demos and tests.
type FailMode string

// The fail modes.
const (
	FailNone     FailMode = ""
	FailDownload FailMode = "download" // the download fails: failed, download
	FailVerify   FailMode = "verify"   // the verification fails: failed, checksum
	FailStart    FailMode = "start"    // the new build "crashes" at start: rolled_back, crashed
	FailConfirm  FailMode = "confirm"  // the new build never confirms: rolled_back after the deadline
)

// ParseFailMode parses --sim-update-fail.
func ParseFailMode(s string) (FailMode, error) {
	switch m := FailMode(s); m {
	case FailNone, FailDownload, FailVerify, FailStart, FailConfirm:
		return m, nil
	}
	return "", fmt.Errorf("%q is not a fail mode: want download, verify, start or confirm", s)
}

// SimOptions configure the updater of simulated boards. StateDir empty
// means a temporary directory, removed by Close.
type SimOptions struct {
	Options
	Name string   // the firmware's name before its version in info ("devicefw")
	Fail FailMode // default none
}

// Sim updates simulated boards (info "update":"sim", "platform":"sim"):
// they download and verify for real (size, SHA-256, signature: the bytes
// can be anything), then restart their MQTT session as the new version, on
// trial, and confirm after the trial. Each board downloads for itself (its
// own request, hashed as it comes, nothing kept), so a rollout to simulated
// boards serves as many bytes as one to real ones.
type Sim struct {
	o   SimOptions
	tmp string // a temporary state directory to remove, or ""
}

// NewSim returns the updater for the simulated boards of one process.
func NewSim(o SimOptions) (*Sim, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	s := &Sim{o: o}
	if s.o.StateDir == "" {
		dir, err := os.MkdirTemp("", "devicefw-sim-")
		if err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
		s.o.StateDir, s.tmp = dir, dir
	}
	return s, nil
}

// Close stops the downloads and removes a temporary state directory.
// Call it once every Run has returned.
func (s *Sim) Close() {
	if s.tmp != "" {
		_ = os.RemoveAll(s.tmp)
	}
}

func (s *Sim) firmware(version string) string { return s.o.Name + " " + version }

// Run runs one simulated board on cfg (ID, Session, Interval…; its LED is
// a memory LED of Run's) until ctx is cancelled, across updates: a new
// version is a new board.Board on the same session, announcing it.
func (s *Sim) Run(ctx context.Context, cfg board.Config) error {
	sb := &simBoard{s: s, current: s.o.Version}
	led := new(board.MemoryLED)
	cfg.Updater, cfg.Platform, cfg.LED = sb, devices.PlatformSim, led
	cfg.Firmware, cfg.Version = s.firmware(sb.current), sb.current
	for {
		b, err := board.New(cfg)
		if err != nil {
			return err
		}
		if t := cfg.Trial; t != nil {
			var expired bool
			if expired, err = s.runTrial(ctx, b, sb); expired {
				on := led.On()
				cfg.Report = &devices.UpdateReport{Job: t.Job, State: devices.UpdateRolledBack, Version: cfg.Version,
					Error: devices.UpdateErrCrashed + ": hung: no confirmation within " + s.o.Deadline.String()}
				s.o.Log.Warn("rolled back", "id", cfg.ID, "job", t.Job, "error", cfg.Report.Error)
				cfg.InitialLED, cfg.Trial = &on, nil
				cfg.Firmware, cfg.Version = s.firmware(sb.version()), sb.version()
				continue
			}
		} else {
			err = b.Run(ctx)
		}
		var h *board.HandOver
		if !errors.As(err, &h) {
			return err
		}
		on := h.LED
		cfg.InitialLED, cfg.Report, cfg.Trial = &on, nil, nil
		job := h.Job
		switch {
		case job.Rollback():
			v := sb.rollback()
			cfg.Report = &devices.UpdateReport{Job: job.Job, State: devices.UpdateRolledBack, Version: v}
		case s.o.Fail == FailStart:
			cfg.Report = &devices.UpdateReport{Job: job.Job, State: devices.UpdateRolledBack, Version: job.Version,
				Error: devices.UpdateErrCrashed + ": simulated (--sim-update-fail start)"}
		default:
			sb.startTrial(job)
			cfg.Firmware, cfg.Version = s.firmware(job.Version), job.Version
			cfg.Trial = &board.Trial{Job: job.Job, Duration: s.o.Trial}
			continue
		}
		cfg.Firmware, cfg.Version = s.firmware(sb.version()), sb.version()
	}
}

// runTrial runs the board of a new version on trial until it confirms (and
// then on, until ctx is cancelled or it hands over) or until the deadline:
// expired reports that it was stopped unconfirmed then.
func (s *Sim) runTrial(ctx context.Context, b *board.Board, sb *simBoard) (expired bool, err error) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx) }() // ends when runCtx is cancelled (the deadline, or ctx) or the board hands over
	deadline := time.NewTimer(s.o.Deadline)
	defer deadline.Stop()
	select {
	case err := <-done:
		return false, err
	case <-sb.confirmed:
		return false, <-done
	case <-deadline.C:
		if !sb.abandon() { // it confirmed just now
			return false, <-done
		}
		cancel()
		<-done
		return true, nil
	}
}

// simBoard is the board.Updater of one simulated board.
type simBoard struct {
	s *Sim

	mu                sync.Mutex    // guards current, previous, the trial fields
	current, previous string        // versions; previous "" when there is none
	trialJob          string        // the job on trial, "" when none (or abandoned)
	trialVersion      string        // the version on trial
	confirmed         chan struct{} // closed by Confirm
}

var _ board.Updater = (*simBoard)(nil)

func (sb *simBoard) version() string {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.current
}

func (sb *simBoard) startTrial(job devices.UpdateCommand) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.trialJob, sb.trialVersion, sb.confirmed = job.Job, job.Version, make(chan struct{})
}

// abandon ends an unconfirmed trial; false when it confirmed already.
func (sb *simBoard) abandon() bool {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	select {
	case <-sb.confirmed:
		return false
	default:
	}
	sb.trialJob = ""
	return true
}

// rollback switches to the previous version and returns it.
func (sb *simBoard) rollback() string {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.current, sb.previous = sb.previous, sb.current
	return sb.current
}

// Method is "sim".
func (sb *simBoard) Method() string { return devices.UpdateMethodSim }

// Update downloads and verifies for real, then hands over: see
// board.Updater.
func (sb *simBoard) Update(ctx context.Context, job devices.UpdateCommand, report func(devices.UpdateReport)) (devices.UpdateReport, bool) {
	failed := func(word string) (devices.UpdateReport, bool) {
		return devices.UpdateReport{State: devices.UpdateFailed, Error: word}, false
	}
	if job.Rollback() {
		sb.mu.Lock()
		prev := sb.previous
		sb.mu.Unlock()
		if prev == "" {
			return failed(devices.UpdateErrNoPrevious)
		}
		return devices.UpdateReport{State: devices.UpdateRestarting, Version: prev}, true
	}
	s := sb.s
	if s.o.Key == nil {
		return failed(devices.UpdateErrNoKey)
	}
	if s.o.Fail == FailDownload {
		report(devices.UpdateReport{State: devices.UpdateDownloading})
		return failed(devices.UpdateErrDownload + ": simulated (--sim-update-fail download)")
	}
	if err := streamSim(ctx, s.o.HTTPClient, s.o.Username, s.o.Password, job, func(pct int) {
		report(devices.UpdateReport{State: devices.UpdateDownloading, Progress: pct})
	}); err != nil {
		if ctx.Err() != nil {
			return failed(devices.UpdateErrInterrupted)
		}
		return failed(wordOf(err, devices.UpdateErrDownload))
	}
	report(devices.UpdateReport{State: devices.UpdateVerifying})
	if s.o.Fail == FailVerify {
		return failed(devices.UpdateErrChecksum + ": simulated (--sim-update-fail verify)")
	}
	if err := verifySignature(s.o.Key, job); err != nil {
		return failed(err.Error())
	}
	report(devices.UpdateReport{State: devices.UpdateInstalling})
	return devices.UpdateReport{State: devices.UpdateRestarting}, true
}

// Confirm makes the version on trial current, unless the fail mode is
// confirm: then it never returns before ctx ends (the deadline rolls it
// back).
func (sb *simBoard) Confirm(ctx context.Context, job string) error {
	if sb.s.o.Fail == FailConfirm {
		<-ctx.Done()
		return ctx.Err()
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if sb.trialJob != job {
		return fmt.Errorf("the trial of update job %s is over", job)
	}
	sb.previous, sb.current = sb.current, sb.trialVersion
	sb.trialJob = ""
	close(sb.confirmed)
	return nil
}
