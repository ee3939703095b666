//go:build linux

package update

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"switchyard/board"
	"switchyard/devices"
)

// How devicefw on Linux updates itself: pending-then-commit under the old
// build's supervision.
//
//   - A job is downloaded, verified (size, SHA-256, signature, ELF for
//     this machine) and installed as builds/<sha256> while state.json's
//     current build stays what it was; state.json records the pending job
//     and its phase at every step.
//   - The old process then stops its board (restarting, offline, a clean
//     disconnect) and starts the new build as its child, on trial, and
//     supervises it. The child confirms itself once it has stayed
//     connected for the trial: only then does state.json name it current.
//   - A child that exits before it confirms, or has not confirmed by the
//     deadline, is rolled back: the supervisor kills it, clears the
//     pending job and runs its own board again, LED as the child left it.
//   - At every start, state.json decides what runs: the current build
//     (exec'd in place when it is not the running executable), and a job
//     that was pending when the process died is reported interrupted.
//
// So a kill -9 or a power cut at any moment leaves state.json naming a
// build that ran and confirmed (the old one, or the new one once it
// confirmed), and the next start runs it.

// The environment markers between builds; none is a flag.
const (
	envTrial = "SWITCHYARD_UPDATE_TRIAL" // a job id: this process is the build on trial for it
	envLED   = "SWITCHYARD_UPDATE_LED"   // ON or OFF: the LED state handed over
	envExec  = "SWITCHYARD_UPDATE_EXEC"  // the path this process was exec'd to at start (a loop guard)
	// envHold holds a job at a phase (downloading, verifying, installing)
	// until the process ends: for tests that kill devicefw at that phase.
	envHold = "SWITCHYARD_UPDATE_HOLD"
)

// stopGrace is how long a supervisor whose child exited with status 0
// before confirming waits for its own stop signal: a stop (systemd's
// SIGTERM to the whole unit, Ctrl-C to the process group) reaches both,
// and the child may be first.
const stopGrace = 2 * time.Second

// stopKillAfter bounds how long a supervisor that forwarded a stop to its
// child waits before it kills it.
const stopKillAfter = 15 * time.Second

// Binary is the updater of devicefw on Linux (info "update":"binary").
// OpenBinary does what must happen at every start; Run runs the board
// across updates.
type Binary struct {
	o      BinaryOptions
	st     stateDir
	exe    string // the running executable
	env    map[string]string
	fetch  *fetcher // nil without a key or a usable state directory
	broken error    // why the state directory is unusable; nil when it is fine

	// How the board starts (set by OpenBinary).
	initialLED *bool
	report     *devices.UpdateReport
	trial      *board.Trial // this process is a build on trial
}

var _ board.Updater = (*Binary)(nil)

// OpenBinary prepares the updater at a start, before the board runs. It
// reads state.json: a job left pending by a process that died is
// reported interrupted (rolled_back if its build was on trial, else
// failed), and when state.json's current build is not the running
// executable it is exec'd in its place (so OpenBinary does not return).
// A process started as the build on trial of a job starts on trial.
// Without a usable state directory the board runs but refuses updates;
// that is an error only when a key is set.
func OpenBinary(o BinaryOptions) (*Binary, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the running executable: %w", err)
	}
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		exe = p
	}
	u := &Binary{o: o, st: stateDir{o.StateDir}, exe: exe, env: envMap(o.Env)}
	if err := u.st.ensure(); err != nil {
		if o.Key != nil {
			return nil, err
		}
		o.Log.Warn("updates refused: no update key, and no state directory", "err", err)
		u.broken = err
		return u, nil
	}
	if led, ok := u.env[envLED]; ok {
		on := led == devices.LEDPayload(true)
		u.initialLED = &on
	}
	if job := u.env[envTrial]; job != "" {
		// Fails the build on trial, which its supervisor then rolls back.
		if err := u.openTrial(job); err != nil {
			return nil, err
		}
	} else {
		u.st.quarantine(o.Log)
		if err := u.start(); err != nil {
			// Whatever is wrong with the state, this build works: it runs,
			// refusing updates, rather than leaving the board with none.
			o.Log.Warn("update state unusable: running this build, updates refused", "err", err)
			u.broken = err
			return u, nil
		}
	}
	if o.Key != nil {
		if u.fetch, err = newFetcher(u.st.path(downloadsDir), o.HTTPClient, o.Username, o.Password, o.Log); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// Close stops a download in flight.
func (u *Binary) Close() {
	if u.fetch != nil {
		u.fetch.close()
	}
}

// openTrial starts this process as the build on trial for job.
func (u *Binary) openTrial(job string) error {
	st, err := u.st.load()
	if err != nil {
		return err
	}
	if p := st.Pending; p == nil || p.Job != job || p.Phase != phaseTrial {
		return fmt.Errorf("started as the build on trial for update job %s, but that trial is over", job)
	}
	u.trial = &board.Trial{Job: job, Duration: u.o.Trial}
	u.o.Log.Info("on trial", "job", job, "version", u.o.Version, "trial", u.o.Trial)
	return nil
}

// start is what every start but a trial's does: settle a job left pending
// by a process that died, and run the current build.
func (u *Binary) start() error {
	var execTo string
	var handedLED *bool
	err := u.st.update(func(st *state) error {
		keep := ""
		if p := st.Pending; p != nil {
			st.Pending = nil
			if p.Phase == phaseTrial { // the new build had started: the old one runs again
				on := u.trialLED(p.LED == devices.LEDPayload(true))
				handedLED = &on
				st.Last = &devices.UpdateReport{Job: p.Job, State: devices.UpdateRolledBack, Version: p.Version,
					Error: devices.UpdateErrInterrupted + ": stopped during the trial, before it confirmed"}
			} else { // nothing had changed yet
				keep = p.SHA256 // a .part to resume
				st.Last = &devices.UpdateReport{Job: p.Job, State: devices.UpdateFailed, Version: p.Version,
					Error: devices.UpdateErrInterrupted + ": stopped while " + p.Phase}
			}
			u.o.Log.Warn("update job interrupted", "job", p.Job, "phase", p.Phase, "report", string(st.Last.State))
		}
		if st.Current != "" && st.Installed != nil && sameFile(u.exe, st.Installed.Path) {
			if sum, err := fileSHA256(u.exe); err == nil && sum != st.Installed.SHA256 {
				u.o.Log.Warn("the installed executable changed since the last update: it runs, the builds are dropped",
					"path", u.exe, "dropped", st.Current)
				st.Current, st.CurrentVersion, st.Previous, st.PreviousVersion, st.Installed = "", "", "", "", nil
			}
		}
		if target := u.currentPath(st); target != "" && !sameFile(u.exe, target) {
			if u.env[envExec] == target {
				u.o.Log.Warn("exec'd the current build, but it is not the running executable: running this one", "current", target, "running", u.exe)
			} else {
				execTo = target
			}
		}
		u.st.gc(*st, keep)
		if st.Last != nil {
			r := *st.Last
			u.report = &r
		}
		return nil
	})
	if err != nil {
		return err
	}
	if u.initialLED == nil {
		u.initialLED = handedLED
	}
	if execTo != "" {
		u.o.Log.Info("running the current build", "path", execTo)
		err := u.exec(execTo, u.initialLED)
		u.o.Log.Warn("could not run the current build: running this one", "path", execTo, "err", err)
	}
	return nil
}

// currentPath is the executable of the state's current build; "" when
// the state does not know it (nothing was ever updated).
func (u *Binary) currentPath(st *state) string {
	switch {
	case st.Current != "":
		return u.st.build(st.Current)
	case st.Installed != nil:
		return st.Installed.Path
	}
	return ""
}

// exec replaces this process with the executable at path (same PID, same
// arguments), handing it the LED state. It returns only on failure.
func (u *Binary) exec(path string, led *bool) error {
	env := append(stripMarkers(u.o.Env), envExec+"="+path)
	if led != nil {
		env = append(env, envLED+"="+devices.LEDPayload(*led))
	}
	return syscall.Exec(path, u.o.Args, env)
}

// Method is "binary".
func (u *Binary) Method() string { return devices.UpdateMethodBinary }

// Update runs a job: see board.Updater.
func (u *Binary) Update(ctx context.Context, job devices.UpdateCommand, report func(devices.UpdateReport)) (devices.UpdateReport, bool) {
	if job.Rollback() {
		return u.prepareRollback()
	}
	if u.o.Key == nil {
		return devices.UpdateReport{State: devices.UpdateFailed, Error: devices.UpdateErrNoKey}, false
	}
	if u.broken != nil {
		return devices.UpdateReport{State: devices.UpdateFailed, Error: devices.UpdateErrUnsupported + ": update state unusable: " + u.broken.Error()}, false
	}
	err := u.install(ctx, job, report)
	if ctx.Err() != nil {
		return devices.UpdateReport{}, false // the board is stopping; the next start reports the job interrupted
	}
	if err != nil {
		r := devices.UpdateReport{State: devices.UpdateFailed, Version: job.Version, Error: wordOf(err, devices.UpdateErrDownload)}
		if serr := u.st.update(func(st *state) error {
			if st.Pending != nil && st.Pending.Job == job.Job {
				st.Pending = nil
			}
			last := r
			last.Job, last.Running = job.Job, u.o.Version
			st.Last = &last
			return nil
		}); serr != nil {
			u.o.Log.Warn("record failed job", "job", job.Job, "err", serr)
		}
		return r, false
	}
	return devices.UpdateReport{State: devices.UpdateRestarting, Version: job.Version}, true
}

// install downloads, verifies and installs job's build as builds/<sha256>,
// recording each phase; nothing runs it yet and state.json's current build
// is unchanged.
func (u *Binary) install(ctx context.Context, job devices.UpdateCommand, report func(devices.UpdateReport)) error {
	phase := func(ph string) error {
		return u.st.update(func(st *state) error {
			if ph == phaseDownloading {
				st.Pending = &pending{Job: job.Job, Version: job.Version, SHA256: job.SHA256}
				u.st.gc(*st, job.SHA256)
			}
			if st.Pending == nil || st.Pending.Job != job.Job {
				return fmt.Errorf("job %s is no longer pending", job.Job)
			}
			st.Pending.Phase = ph
			return nil
		})
	}
	if err := phase(phaseDownloading); err != nil {
		return err
	}
	progress := func(pct int) { report(devices.UpdateReport{State: devices.UpdateDownloading, Progress: pct}) }
	path, err := u.have(job)
	if err == nil {
		progress(100)
	} else if path, _, err = u.fetch.get(ctx, job, progress); err != nil {
		return err
	}
	u.hold(ctx, phaseDownloading)

	if err := phase(phaseVerifying); err != nil {
		return err
	}
	report(devices.UpdateReport{State: devices.UpdateVerifying})
	u.hold(ctx, phaseVerifying)
	if err := verifySignature(u.o.Key, job); err != nil {
		u.discard(job.SHA256, path)
		return err
	}
	if err := checkExecutable(path); err != nil {
		u.discard(job.SHA256, path)
		return err
	}

	if err := phase(phaseInstalling); err != nil {
		return err
	}
	report(devices.UpdateReport{State: devices.UpdateInstalling})
	u.hold(ctx, phaseInstalling)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	build := u.st.build(job.SHA256)
	if path == build {
		return nil
	}
	if err := makeExecutable(path); err != nil {
		return failure(devices.UpdateErrDownload, "install: %v", err)
	}
	if err := os.Rename(path, build); err != nil {
		return failure(devices.UpdateErrDownload, "install: %v", err)
	}
	u.fetch.forget(job.SHA256)
	if err := syncDir(filepath.Dir(build)); err != nil {
		return failure(devices.UpdateErrDownload, "install: %v", err)
	}
	return nil
}

// makeExecutable sets mode 0755 and syncs the file, so that the mode is
// on disk before the rename that installs it.
func makeExecutable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Chmod(0o755); err != nil {
		return err
	}
	return f.Sync()
}

// have returns builds/<sha256> when the job's build is there already (the
// previous build, say) with the job's size and SHA-256.
func (u *Binary) have(job devices.UpdateCommand) (string, error) {
	path := u.st.build(job.SHA256)
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.Size() != job.Size {
		return "", errors.New("size differs")
	}
	sum, err := fileSHA256(path)
	if err != nil || sum != job.SHA256 {
		_ = os.Remove(path)
		return "", errors.New("checksum differs")
	}
	return path, nil
}

// discard removes bytes that failed verification.
func (u *Binary) discard(sha, path string) {
	if path != u.st.build(sha) {
		_ = os.Remove(path)
		u.fetch.forget(sha)
	}
}

// hold blocks until ctx ends when envHold names phase.
func (u *Binary) hold(ctx context.Context, phase string) {
	if u.env[envHold] == phase {
		u.o.Log.Warn("holding the update job ("+envHold+")", "phase", phase)
		<-ctx.Done()
	}
}

// prepareRollback checks that there is a previous build to go back to;
// the switch itself happens once the board has stopped (rollbackExec).
func (u *Binary) prepareRollback() (devices.UpdateReport, bool) {
	st, err := u.st.load()
	if err != nil {
		return devices.UpdateReport{State: devices.UpdateFailed, Error: devices.UpdateErrNoPrevious + ": " + err.Error()}, false
	}
	path := u.previousPath(&st)
	if path == "" {
		return devices.UpdateReport{State: devices.UpdateFailed, Error: devices.UpdateErrNoPrevious}, false
	}
	if _, err := os.Stat(path); err != nil {
		return devices.UpdateReport{State: devices.UpdateFailed, Error: devices.UpdateErrNoPrevious + ": " + err.Error()}, false
	}
	return devices.UpdateReport{State: devices.UpdateRestarting, Version: st.PreviousVersion}, true
}

func (u *Binary) previousPath(st *state) string {
	switch {
	case st.Previous == installedBuild && st.Installed != nil:
		return st.Installed.Path
	case st.Previous != "" && st.Previous != installedBuild:
		return u.st.build(st.Previous)
	}
	return ""
}

// rollbackExec switches state.json's current and previous builds and
// execs the previous one in place (same PID), which announces
// rolled_back. It returns only when that failed, with the state as it
// was and the report to publish.
func (u *Binary) rollbackExec(h *board.HandOver) devices.UpdateReport {
	var target string
	var undo state
	err := u.st.update(func(st *state) error {
		undo = *st
		if target = u.previousPath(st); target == "" {
			return errors.New("it is gone")
		}
		cur := st.Current
		if cur == "" && st.Installed != nil {
			cur = installedBuild
		}
		prev := st.Previous
		if prev == installedBuild {
			prev = ""
		}
		prevVersion := st.PreviousVersion
		st.Current, st.CurrentVersion = prev, prevVersion
		st.Previous, st.PreviousVersion = cur, u.o.Version
		st.Last = &devices.UpdateReport{Job: h.Job.Job, State: devices.UpdateRolledBack, Version: prevVersion, Running: prevVersion}
		return nil
	})
	if err == nil {
		u.o.Log.Info("rolling back", "job", h.Job.Job, "to", target)
		err = u.exec(target, &h.LED)
		if serr := u.st.update(func(st *state) error { *st = undo; return nil }); serr != nil {
			u.o.Log.Warn("undo rollback", "err", serr)
		}
	}
	return devices.UpdateReport{Job: h.Job.Job, State: devices.UpdateFailed, Error: devices.UpdateErrNoPrevious + ": " + err.Error()}
}

// Confirm makes the build on trial current: see board.Updater. Under the
// state lock it checks that the trial still runs (the supervisor has not
// given up on it), so a confirmation and a rollback never both happen.
func (u *Binary) Confirm(ctx context.Context, job string) error {
	var after state
	err := u.st.update(func(st *state) error {
		p := st.Pending
		if p == nil || p.Job != job || p.Phase != phaseTrial {
			return fmt.Errorf("the trial of update job %s is over", job)
		}
		prev := st.Current
		if prev == "" && st.Installed != nil {
			prev = installedBuild
		}
		st.Previous, st.PreviousVersion = prev, p.FromVersion
		st.Current, st.CurrentVersion = p.SHA256, p.Version
		st.Pending = nil
		st.Last = &devices.UpdateReport{Job: job, State: devices.UpdateConfirmed, Version: p.Version, Running: u.o.Version}
		after = *st
		return nil
	})
	if err != nil {
		return err
	}
	u.st.gc(after, "")
	u.o.Log.Info("confirmed", "job", job, "version", u.o.Version)
	return nil
}

// Run runs the board on cfg (its Session, ID and info fields; cmd sets
// them) until ctx is cancelled, across updates, and returns the exit
// status for the process: 0, or the status of a child build this process
// went on supervising after it confirmed.
func (u *Binary) Run(ctx context.Context, cfg board.Config) (int, error) {
	cfg.Updater = u
	cfg.Platform = runtime.GOOS + "/" + runtime.GOARCH
	cfg.Version = u.o.Version
	cfg.InitialLED, cfg.Report, cfg.Trial = u.initialLED, u.report, u.trial
	if u.trial != nil {
		mark := func(s board.Session) board.Session { return &connectMark{Session: s, path: u.st.path(trialConnFile)} }
		if cfg.Session != nil {
			cfg.Session = mark(cfg.Session)
		}
		brokers := make([]board.Broker, len(cfg.Brokers))
		for i, br := range cfg.Brokers {
			brokers[i] = board.Broker{URL: br.URL, Session: mark(br.Session)}
		}
		cfg.Brokers = brokers
	}
	for {
		led, closer, err := u.openLED()
		if err != nil {
			return 1, err
		}
		if u.trial != nil {
			led = ledFile{LED: led, path: u.st.path(trialLEDFile)}
		}
		cfg.LED = led
		b, err := board.New(cfg)
		if err != nil {
			closer.Close()
			return 1, err
		}
		err = b.Run(ctx)
		closer.Close()
		var h *board.HandOver
		if !errors.As(err, &h) {
			return 0, err
		}
		on := h.LED
		cfg.InitialLED, cfg.Trial = &on, nil
		if h.Job.Rollback() {
			r := u.rollbackExec(h)
			cfg.Report = &r
			continue
		}
		out := u.supervise(ctx, h)
		switch out.kind {
		case outConfirmed:
			return out.code, nil
		case outStopped:
			return 0, nil
		}
		on = out.led
		cfg.Report = &out.report
	}
}

func (u *Binary) openLED() (board.LED, io.Closer, error) {
	if u.o.OpenLED == nil {
		return new(board.MemoryLED), io.NopCloser(nil), nil
	}
	return u.o.OpenLED()
}

// outcome is how a supervised trial ended.
type outcome struct {
	kind   int
	code   int                  // outConfirmed: the child's exit status
	led    bool                 // outRolledBack: the LED state the child left
	report devices.UpdateReport // outRolledBack: the report to publish
}

const (
	outRolledBack = iota // the old build runs again
	outConfirmed         // the child confirmed and has exited: this process exits with its status
	outStopped           // this process was asked to stop during the trial
)

// supervise starts the build of job h as a child process on trial and
// waits for it: it returns when the child has exited, or when it was
// killed at the deadline (rolled back).
func (u *Binary) supervise(ctx context.Context, h *board.HandOver) outcome {
	job := h.Job
	var p pending
	err := u.st.update(func(st *state) error {
		if st.Pending == nil || st.Pending.Job != job.Job {
			return fmt.Errorf("update job %s is no longer pending", job.Job)
		}
		st.Pending.Phase, st.Pending.LED, st.Pending.FromVersion = phaseTrial, devices.LEDPayload(h.LED), u.o.Version
		if st.Current == "" && st.Installed == nil {
			sum, err := fileSHA256(u.exe)
			if err != nil {
				return err
			}
			st.Installed = &installed{Path: u.exe, SHA256: sum}
		}
		p = *st.Pending
		return nil
	})
	if err != nil {
		return u.rolledBack(job, h.LED, devices.UpdateErrCrashed+": not started: "+err.Error())
	}
	u.writeTrialLED(h.LED)
	_ = os.Remove(u.st.path(trialConnFile))

	c, err := u.startChild(p)
	if err != nil {
		return u.endTrial(p, h.LED, devices.UpdateErrCrashed+": "+err.Error())
	}
	u.o.Log.Info("started the new build on trial", "job", job.Job, "version", job.Version, "pid", c.pid, "deadline", u.o.Deadline)
	deadline := time.NewTimer(u.o.Deadline)
	defer deadline.Stop()
	stop := ctx.Done()
	stopping := false
	var killC <-chan time.Time // after a forwarded stop: kill a child that does not end
	for {
		select {
		case <-stop: // forward the stop; a pending trial is reported interrupted at the next start
			stop, stopping = nil, true
			_ = c.proc.Signal(syscall.SIGTERM)
			kill := time.NewTimer(stopKillAfter)
			defer kill.Stop()
			killC = kill.C
		case <-killC:
			u.o.Log.Warn("the child did not stop: killing it", "pid", c.pid)
			_ = c.proc.Kill()
		case <-deadline.C:
			if stopping {
				continue // the child is stopping; killC bounds it
			}
			why := devices.UpdateErrNeverConn + ": not connected to the broker within " + u.o.Deadline.String()
			if _, err := os.Stat(u.st.path(trialConnFile)); err == nil {
				why = devices.UpdateErrCrashed + ": hung: connected, but no confirmation within " + u.o.Deadline.String()
			}
			if out, rolled := u.tryRollback(p, h.LED, why); rolled {
				_ = c.proc.Kill()
				<-c.exited
				u.o.Log.Warn("rolled back", "job", job.Job, "error", why)
				return out
			}
			u.o.Log.Info("the new build confirmed; supervising it", "job", job.Job, "pid", c.pid)
		case ps := <-c.exited:
			if st, err := u.st.load(); err == nil && st.Pending == nil && st.Current == p.SHA256 {
				return outcome{kind: outConfirmed, code: exitCode(ps)}
			}
			if !stopping && ps.Success() {
				select {
				case <-ctx.Done():
					stopping = true
				case <-time.After(stopGrace):
				}
			}
			if stopping {
				u.o.Log.Info("stopped during the trial", "job", job.Job)
				return outcome{kind: outStopped}
			}
			why := devices.UpdateErrCrashed + ": " + ps.String()
			u.o.Log.Warn("the new build ended before it confirmed", "job", job.Job, "status", ps.String())
			return u.endTrial(p, h.LED, why)
		}
	}
}

// endTrial rolls back a trial whose child has ended.
func (u *Binary) endTrial(p pending, led bool, why string) outcome {
	if out, rolled := u.tryRollback(p, led, why); rolled {
		return out
	}
	// Confirmed after all, then ended: the next start runs it.
	return outcome{kind: outConfirmed, code: 1}
}

// tryRollback ends the trial of p under the state lock unless the child
// confirmed first; rolled reports whether it did.
func (u *Binary) tryRollback(p pending, handed bool, why string) (out outcome, rolled bool) {
	var after state
	r := devices.UpdateReport{Job: p.Job, State: devices.UpdateRolledBack, Version: p.Version, Running: u.o.Version, Error: why}
	err := u.st.update(func(st *state) error {
		if st.Pending == nil || st.Pending.Job != p.Job {
			return nil
		}
		st.Pending = nil
		st.Last = &r
		rolled = true
		after = *st
		return nil
	})
	if err != nil { // the state is unusable: the old build runs all the same
		u.o.Log.Warn("record rollback", "job", p.Job, "err", err)
		rolled = true
	}
	if !rolled {
		return outcome{}, false
	}
	if err == nil {
		u.st.gc(after, "")
	}
	return outcome{kind: outRolledBack, led: u.trialLED(handed), report: r}, true
}

// rolledBack is the outcome of a trial that could not even start.
func (u *Binary) rolledBack(job devices.UpdateCommand, led bool, why string) outcome {
	r := devices.UpdateReport{Job: job.Job, State: devices.UpdateRolledBack, Version: job.Version, Running: u.o.Version, Error: why}
	_ = u.st.update(func(st *state) error {
		if st.Pending != nil && st.Pending.Job == job.Job {
			st.Pending = nil
		}
		st.Last = &r
		return nil
	})
	return outcome{kind: outRolledBack, led: led, report: r}
}

// child is a build on trial, started by startChild.
type child struct {
	pid    int
	proc   *os.Process
	exited chan *os.ProcessState // receives the state once it has exited
}

// startChild starts the build of p with this process's arguments and
// environment, marked as on trial for p's job, with the LED state.
func (u *Binary) startChild(p pending) (*child, error) {
	cmd := exec.Command(u.st.build(p.SHA256))
	cmd.Args = u.o.Args
	cmd.Env = append(stripMarkers(u.o.Env), envTrial+"="+p.Job, envLED+"="+p.LED)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	// A kill -9 of the supervisor must not leave the child running: the
	// kernel kills it when the thread that started it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c := &child{exited: make(chan *os.ProcessState, 1)}
	started := make(chan error, 1)
	go func() { // ends when the child has exited; supervise always waits for that (it kills the child at the deadline)
		// Pdeathsig belongs to this thread: it stays locked (and alive)
		// until the child has ended, and ends with this goroutine.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		c.exited <- cmd.ProcessState
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	c.proc, c.pid = cmd.Process, cmd.Process.Pid
	return c, nil
}

// trialLED returns the LED state the build on trial left (it records
// every change), or handed when it recorded none.
func (u *Binary) trialLED(handed bool) bool {
	b, err := os.ReadFile(u.st.path(trialLEDFile))
	if err != nil || len(b) != 1 {
		return handed
	}
	return b[0] == '1'
}

func (u *Binary) writeTrialLED(on bool) {
	_ = os.WriteFile(u.st.path(trialLEDFile), ledByte(on), 0o600)
}

func ledByte(on bool) []byte {
	if on {
		return []byte{'1'}
	}
	return []byte{'0'}
}

// ledFile is the LED of a build on trial: it records every change in the
// state directory, for the supervisor (or the next start) to hand the LED
// state back to the old build.
type ledFile struct {
	board.LED
	path string
}

func (l ledFile) Set(on bool) error {
	if err := l.LED.Set(on); err != nil {
		return err
	}
	_ = os.WriteFile(l.path, ledByte(on), 0o600)
	return nil
}

// connectMark is the Session of a build on trial: it leaves a file once
// the broker has accepted a connection, so that the supervisor can tell
// "never connected" from a hung build ("crashed: hung").
type connectMark struct {
	board.Session
	path string
	once sync.Once
}

func (s *connectMark) Connect(ctx context.Context, o board.ConnectOptions) error {
	err := s.Session.Connect(ctx, o)
	if err == nil {
		s.once.Do(func() { _ = os.WriteFile(s.path, nil, 0o600) })
	}
	return err
}

// exitCode is a child's exit status for this process to exit with.
func exitCode(ps *os.ProcessState) int {
	if c := ps.ExitCode(); c >= 0 {
		return c
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return 1
}

// envMap returns the variables of env.
func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// stripMarkers returns env without the update markers.
func stripMarkers(env []string) []string {
	out := make([]string, 0, len(env)+3)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "SWITCHYARD_UPDATE_") {
			out = append(out, kv)
		}
	}
	return out
}

// sameFile reports whether a and b are the same file.
func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
