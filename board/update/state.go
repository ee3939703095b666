//go:build linux

package update

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"syscall"

	"switchyard/devices"
)

// The state directory of the binary updater (--state-dir):
//
//	state.json          the state below, replaced atomically
//	state.lock          flock(2) around every read-modify-write of state.json
//	builds/<sha256>     executables: the current build, the previous one, one on trial
//	downloads/<sha>.part a download in progress, kept to resume with Range
//	downloads/<sha>     a complete download, checked, not yet installed
//	trial.led           the LED state of a build on trial ("1" or "0"), kept by it
//	trial.connected     made by a build on trial once it has reached the broker
const (
	stateFile     = "state.json"
	lockFile      = "state.lock"
	buildsDir     = "builds"
	downloadsDir  = "downloads"
	trialLEDFile  = "trial.led"
	trialConnFile = "trial.connected"
)

// installedBuild in state.previous names the installed executable
// (Installed.Path) rather than a build in builds/.
const installedBuild = "installed"

// The phases of a pending job, in order.
const (
	phaseDownloading = "downloading"
	phaseVerifying   = "verifying"
	phaseInstalling  = "installing"
	phaseTrial       = "trial"
)

// state is state.json. Current and Previous name builds: a SHA-256 of a
// file in builds/, "" for Current and "installed" for Previous meaning
// the installed executable; Previous "" means there is none.
type state struct {
	Current         string                `json:"current,omitempty"`
	CurrentVersion  string                `json:"current_version,omitempty"`
	Previous        string                `json:"previous,omitempty"`
	PreviousVersion string                `json:"previous_version,omitempty"`
	Installed       *installed            `json:"installed,omitempty"` // set when a build first replaced the installed executable
	Pending         *pending              `json:"pending,omitempty"`   // the job in progress
	Last            *devices.UpdateReport `json:"last,omitempty"`      // the last job's outcome, announced after every start
}

// installed is the installed executable (/usr/local/bin/devicefw) when a
// build first replaced it. A different SHA-256 there at a start means
// someone installed a new executable by hand: it wins over the builds.
type installed struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// pending is a job in progress and how far it got.
type pending struct {
	Job         string `json:"job"`
	Version     string `json:"version"`
	SHA256      string `json:"sha256"`
	Phase       string `json:"phase"`
	LED         string `json:"led,omitempty"`          // trial: the LED state handed over
	FromVersion string `json:"from_version,omitempty"` // trial: the version of the supervising build
}

// stateDir is the binary updater's state directory.
type stateDir struct{ dir string }

func (s stateDir) path(name ...string) string {
	return filepath.Join(append([]string{s.dir}, name...)...)
}

func (s stateDir) build(sha string) string { return s.path(buildsDir, sha) }

// ensure makes the directory and its subdirectories.
func (s stateDir) ensure() error {
	for _, d := range []string{s.dir, s.path(buildsDir), s.path(downloadsDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
	}
	return nil
}

// update runs f on the state under the lock and writes the state back
// when f changed it. Processes that share the directory (a supervisor and
// the build on trial) serialise through the lock, so a confirmation and a
// rollback never both happen.
func (s stateDir) update(f func(*state) error) error {
	lock, err := os.OpenFile(s.path(lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("lock state: %w", err)
	}
	defer lock.Close() // releases the lock
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock state: %w", err)
	}
	st, err := s.read()
	if err != nil {
		return err
	}
	before := st
	if st.Pending != nil {
		p := *st.Pending
		before.Pending = &p
	}
	if err := f(&st); err != nil {
		return err
	}
	if reflect.DeepEqual(st, before) {
		return nil
	}
	return s.write(st)
}

// quarantine moves a state.json that cannot be parsed (a disk fault, a
// hand edit: writes are atomic) out of the way, so that the board starts
// on the installed executable rather than not at all.
func (s stateDir) quarantine(log *slog.Logger) {
	_, err := s.read()
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	if !errors.As(err, &syn) && !errors.As(err, &typ) {
		return
	}
	bad := s.path(stateFile + ".corrupt")
	if rerr := os.Rename(s.path(stateFile), bad); rerr != nil {
		log.Warn("corrupt update state, and it cannot be moved aside", "err", err, "rename", rerr)
		return
	}
	log.Warn("corrupt update state moved aside: running the installed executable", "err", err, "to", bad)
}

// load reads the state under the lock.
func (s stateDir) load() (state, error) {
	var st state
	err := s.update(func(cur *state) error { st = *cur; return nil })
	return st, err
}

func (s stateDir) read() (state, error) {
	var st state
	b, err := os.ReadFile(s.path(stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("read state %s: %w", s.path(stateFile), err)
	}
	return st, nil
}

// write replaces state.json atomically: a power cut leaves the old one or
// the new one, never a torn one.
func (s stateDir) write(st state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return writeFileAtomic(s.path(stateFile), append(b, '\n'), 0o600)
}

// writeFileAtomic writes a temporary file, syncs it, renames it over name
// and syncs the directory.
func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	tmp := name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return syncDir(filepath.Dir(name))
}

// builds returns the builds the state still needs.
func (st *state) builds() map[string]bool {
	keep := map[string]bool{}
	for _, b := range []string{st.Current, st.Previous} {
		if b != "" && b != installedBuild {
			keep[b] = true
		}
	}
	if st.Pending != nil {
		keep[st.Pending.SHA256] = true
	}
	return keep
}

// gc removes builds the state no longer needs, and the downloads but
// those of keepDownload (a .part kept to resume).
func (s stateDir) gc(st state, keepDownload string) {
	keep := st.builds()
	if entries, err := os.ReadDir(s.path(buildsDir)); err == nil {
		for _, e := range entries {
			if !keep[e.Name()] {
				_ = os.Remove(s.path(buildsDir, e.Name()))
			}
		}
	}
	if entries, err := os.ReadDir(s.path(downloadsDir)); err == nil {
		for _, e := range entries {
			if keepDownload == "" || (e.Name() != keepDownload && e.Name() != keepDownload+".part") {
				_ = os.Remove(s.path(downloadsDir, e.Name()))
			}
		}
	}
}
