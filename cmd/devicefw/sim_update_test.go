package main

import (
	"crypto/rand"
	"fmt"
	"testing"

	"switchyard/board/boardtest"
	"switchyard/devices"
	"switchyard/internal/testutil"
)

// simFirmware is a "build" for simulated boards: any bytes do.
func simFirmware(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 1<<20)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// startSims runs n simulated boards with prefix id in this process, with
// the update flags and extra arguments.
func startSims(t *testing.T, brokerURL, key, id string, n int, extra ...string) func() int {
	t.Helper()
	args := append([]string{"--broker", brokerURL, "--id", id, "--sim", fmt.Sprint(n), "--interval", "200ms",
		"--update-key", key, "--update-trial", testTrial, "--update-deadline", testDeadline}, extra...)
	var stderr testutil.Buffer
	stop := startRun(t, args, nil, &stderr)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("devicefw stderr:\n%s", stderr.String())
		}
	})
	return stop
}

// TestSimUpdate: simulated boards download once for all, verify, restart
// their session as the new version on trial, confirm with the LED kept,
// and roll back on request; a job for the version running, and a second
// job while one runs, are answered at once.
func TestSimUpdate(t *testing.T) {
	t.Parallel()
	br, srv := newSimRig(t)
	w1, w2 := watch(t, br.URL, "su-1"), watch(t, br.URL, "su-2")
	stop := startSims(t, br.URL, srv.publicKey(), "su", 2)
	w1.online(version)
	w2.online(version)
	w1.setLED("ON", "ON")

	job := srv.add(simFirmware(t), "2.0.0")
	w1.send("s1", job)
	w1.report("s1", devices.UpdateRestarting)
	w1.report("s1", devices.UpdateTrial)
	w1.expectRuns("2.0.0", "ON")
	w1.report("s1", devices.UpdateConfirmed)
	w2.send("s2", job)
	w2.report("s2", devices.UpdateConfirmed)
	w2.expectRuns("2.0.0", "OFF")
	if got := srv.requestLog(); len(got) != 2 {
		t.Errorf("requests: got %q, want one download by each board", got)
	}
	var info devices.Info
	if err := parseInfo(w1.latest[topics.Info("su-1")], &info); err != nil || info.Platform != "sim" || info.Update != "sim" {
		t.Errorf("info: got %s, want platform sim and update sim", w1.latest[topics.Info("su-1")])
	}

	w2.send("s3", job)
	w2.report("s3", devices.UpdateConfirmed) // already running

	srv.hold()
	w2.send("s4", srv.add(simFirmware(t), "3.0.0"))
	w2.report("s4", devices.UpdateDownloading)
	w2.send("s5", job)
	if got := w2.report("s5", devices.UpdateFailed); got.Error != devices.UpdateErrBusy {
		t.Errorf("second job: got %+v, want failed busy", got)
	}
	srv.open() // the rest never comes for the held request: it retries with Range
	w2.report("s4", devices.UpdateConfirmed)
	w2.expectRuns("3.0.0", "OFF")

	w1.send("r1", devices.UpdateCommand{Action: devices.UpdateActionRollback})
	if got := w1.report("r1", devices.UpdateRolledBack); got.Running != version {
		t.Errorf("rollback: got %+v, want running %s", got, version)
	}
	w1.expectRuns(version, "ON")
	w1.send("r2", devices.UpdateCommand{Action: devices.UpdateActionRollback})
	w1.report("r2", devices.UpdateRolledBack) // and forth again: the previous build is 2.0.0
	w1.expectRuns("2.0.0", "ON")
	if code := stop(); code != 0 {
		t.Errorf("exit status: got %d, want 0", code)
	}
}

func parseInfo(payload string, info *devices.Info) error {
	i, err := devices.ParseInfo([]byte(payload))
	*info = i
	return err
}

// TestSimUpdateFail: every --sim-update-fail mode ends its job as the
// contract says, and the board runs the old version afterwards.
func TestSimUpdateFail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		mode  string
		state devices.UpdateState
		word  string
	}{
		{"download", devices.UpdateFailed, devices.UpdateErrDownload},
		{"verify", devices.UpdateFailed, devices.UpdateErrChecksum},
		{"start", devices.UpdateRolledBack, devices.UpdateErrCrashed},
		{"confirm", devices.UpdateRolledBack, devices.UpdateErrCrashed},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			br, srv := newSimRig(t)
			id := "sf-" + tt.mode
			w := watch(t, br.URL, id+"-1")
			stop := startSims(t, br.URL, srv.publicKey(), id, 1, "--sim-update-fail", tt.mode)
			w.online(version)
			w.setLED("ON", "ON")
			w.send("f1", srv.add(simFirmware(t), "2.0.0"))
			if tt.mode == "confirm" {
				w.report("f1", devices.UpdateTrial)
				w.expectRuns("2.0.0", "ON")
			}
			got := w.report("f1", tt.state)
			if !devices.UpdateErrorIs(got.Error, tt.word) {
				t.Errorf("got %+v, want %s with error %q", got, tt.state, tt.word)
			}
			w.expectRuns(version, "ON")
			if code := stop(); code != 0 {
				t.Errorf("exit status: got %d, want 0", code)
			}
		})
	}
}

func newSimRig(t *testing.T) (*boardtest.Broker, *fwServer) {
	t.Helper()
	return boardtest.Start(t), newFWServer(t)
}
