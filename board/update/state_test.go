//go:build linux

package update

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"reflect"
	"sort"
	"testing"

	"switchyard/devices"
)

func TestStateRoundTrip(t *testing.T) {
	s := stateDir{t.TempDir()}
	if err := s.ensure(); err != nil {
		t.Fatal(err)
	}
	empty, err := s.load()
	if err != nil || !reflect.DeepEqual(empty, state{}) {
		t.Fatalf("no state.json: got %+v, %v; want the zero state", empty, err)
	}
	want := state{
		Current: "aa", CurrentVersion: "2", Previous: installedBuild, PreviousVersion: "1",
		Installed: &installed{Path: "/usr/local/bin/devicefw", SHA256: "cc"},
		Pending:   &pending{Job: "j2", Version: "3", SHA256: "bb", Phase: phaseTrial, LED: "ON", FromVersion: "2"},
		Last:      &devices.UpdateReport{Job: "j1", State: devices.UpdateConfirmed, Version: "2", Running: "2"},
	}
	if err := s.update(func(st *state) error { *st = want; return nil }); err != nil {
		t.Fatal(err)
	}
	got, err := s.load()
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
	if _, err := os.Stat(s.path(stateFile + ".tmp")); !os.IsNotExist(err) {
		t.Errorf("the temporary file is left (%v)", err)
	}

	// An update that fails changes nothing; one that changes nothing
	// writes nothing.
	fi, _ := os.Stat(s.path(stateFile))
	if err := s.update(func(st *state) error { st.Current = "zz"; return errors.New("no") }); err == nil {
		t.Error("the error of f was lost")
	}
	if err := s.update(func(st *state) error { st.Pending.Phase = phaseTrial; return nil }); err != nil {
		t.Errorf("an update changing nothing wrote: %v", err)
	}
	if after, _ := os.Stat(s.path(stateFile)); !os.SameFile(fi, after) {
		t.Error("state.json was replaced")
	}
}

func TestStateGC(t *testing.T) {
	s := stateDir{t.TempDir()}
	if err := s.ensure(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"cur", "prev", "pend", "old"} {
		if err := os.WriteFile(s.build(name), nil, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"x.part", "x", "y.part"} {
		if err := os.WriteFile(s.path(downloadsDir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.gc(state{Current: "cur", Previous: "prev", Pending: &pending{SHA256: "pend"}}, "x")
	list := func(dir string) []string {
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		sort.Strings(names)
		return names
	}
	if got, want := list(s.path(buildsDir)), []string{"cur", "pend", "prev"}; !reflect.DeepEqual(got, want) {
		t.Errorf("builds: got %v, want %v", got, want)
	}
	if got, want := list(s.path(downloadsDir)), []string{"x", "x.part"}; !reflect.DeepEqual(got, want) {
		t.Errorf("downloads: got %v, want %v", got, want)
	}
}

func TestStateQuarantine(t *testing.T) {
	s := stateDir{t.TempDir()}
	if err := s.ensure(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.path(stateFile), []byte(`{"current":`), 0o600); err != nil {
		t.Fatal(err)
	}
	s.quarantine(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if st, err := s.load(); err != nil || !reflect.DeepEqual(st, state{}) {
		t.Errorf("after the quarantine: got %+v, %v; want the zero state", st, err)
	}
	if b, err := os.ReadFile(s.path(stateFile + ".corrupt")); err != nil || string(b) != `{"current":` {
		t.Errorf("the corrupt state: got %q, %v; want it kept aside", b, err)
	}
}
