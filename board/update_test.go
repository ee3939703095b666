package board_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"switchyard/board"
	"switchyard/devices"
	"switchyard/internal/testutil"
)

// fakeUpdater hands every Update and Confirm call to the test, which
// answers it.
type fakeUpdater struct {
	updates  chan *fakeJob
	confirms chan fakeConfirm
}

type fakeJob struct {
	cmd    devices.UpdateCommand
	report func(devices.UpdateReport)
	end    chan fakeEnd
}

type fakeEnd struct {
	r        devices.UpdateReport
	handOver bool
}

type fakeConfirm struct {
	job    string
	answer chan error
}

func newFakeUpdater() *fakeUpdater {
	return &fakeUpdater{updates: make(chan *fakeJob), confirms: make(chan fakeConfirm)}
}

func (u *fakeUpdater) Method() string { return "fake" }

func (u *fakeUpdater) Update(ctx context.Context, cmd devices.UpdateCommand, report func(devices.UpdateReport)) (devices.UpdateReport, bool) {
	j := &fakeJob{cmd: cmd, report: report, end: make(chan fakeEnd)}
	select {
	case u.updates <- j:
	case <-ctx.Done():
		return devices.UpdateReport{}, false
	}
	select {
	case e := <-j.end:
		return e.r, e.handOver
	case <-ctx.Done():
		return devices.UpdateReport{}, false
	}
}

func (u *fakeUpdater) Confirm(ctx context.Context, job string) error {
	c := fakeConfirm{job: job, answer: make(chan error)}
	select {
	case u.confirms <- c:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-c.answer:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// updateRig is a board with an updater, run through the fakes.
type updateRig struct {
	*rig
	upd *fakeUpdater
	run *testutil.Background
}

func startUpdateBoard(t *testing.T, cfg board.Config) *updateRig {
	t.Helper()
	r := &updateRig{rig: &rig{sess: newFakeSession(), clk: newFakeClock(), led: new(board.MemoryLED)}, upd: newFakeUpdater()}
	cfg.ID, cfg.Model, cfg.Session, cfg.LED, cfg.Clock = "b1", "test", r.sess, r.led, r.clk
	cfg.Rand, cfg.MinBackoff, cfg.MaxBackoff = maxRand, 100*time.Millisecond, time.Second
	if cfg.Updater == nil {
		cfg.Updater = r.upd
	}
	b, err := board.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r.run = testutil.Go(b.Run)
	t.Cleanup(func() {
		r.run.Cancel()
		deadline := time.After(waitFor)
		for { // answer whatever the board still says while it stops
			select {
			case <-r.sess.calls:
			case <-r.clk.timers:
			case <-r.run.Done():
				return
			case <-deadline:
				t.Error("Run did not return")
				return
			}
		}
	})
	return r
}

func (r *updateRig) deliverJob(payload string) {
	r.sess.deliver(board.Message{Topic: "devices/b1/update/set", Payload: []byte(payload)})
}

func (r *updateRig) nextJob(t *testing.T) *fakeJob {
	t.Helper()
	return testutil.Recv(t, r.upd.updates, waitFor, "an Update call")
}

// quiet proves the board has handled everything before and published
// nothing else: a tick makes it count, and count n is the next call.
func (r *updateRig) quiet(t *testing.T, n int) {
	t.Helper()
	r.clk.fireTick(t)
	r.sess.expect(t, fmt.Sprintf("publish devices/b1/count %d q0", n))
}

func updateLine(job, state, version, running string, progress int, errWord string) string {
	r := devices.UpdateReport{Job: job, State: devices.UpdateState(state), Version: version, Running: running, Progress: progress, Error: errWord}
	return "publish devices/b1/update " + string(r.AppendJSON(nil)) + " q1 r"
}

func resyncWith(info, led string, extra ...string) []string {
	lines := []string{
		connectB1,
		"subscribe devices/b1/led/set q0",
		"subscribe devices/b1/update/set q0",
		"subscribe devices/b1/status q0",
		"publish devices/b1/status online q1 r",
		"publish devices/b1/info " + info + " q1 r",
		"publish devices/b1/led " + led + " q1 r",
	}
	return append(lines, extra...)
}

func job(id, version string) string {
	return fmt.Sprintf(`{"job":%q,"version":%q,"url":"http://cp/firmware/x","sha256":"%064x","size":10,"signature":"%s"}`,
		id, version, 1, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==")
}

func TestUpdateUnsupported(t *testing.T) {
	r := startBoard(t, newFakeSession())
	r.sess.expect(t, resync("OFF")...)
	set := "devices/b1/update/set"
	// Garbage and a retained job are ignored; a job is refused.
	r.sess.deliver(board.Message{Topic: set, Payload: []byte(`{"job":"j0"}`)})
	r.sess.deliver(board.Message{Topic: set, Payload: []byte(job("j0", "2")), Retained: true})
	r.sess.deliver(board.Message{Topic: set, Payload: []byte(job("j1", "2"))})
	unsupported := updateLine("j1", "failed", "2", "devicefw", 0, "unsupported")
	r.sess.expect(t, unsupported)
	r.clk.fireTick(t)
	r.sess.expect(t, "publish devices/b1/count 0 q0")
	// The report is the board's last: it comes again after a reconnect.
	r.sess.lose()
	r.sess.expect(t, "disconnect")
	r.clk.nextTimer(t, 100*time.Millisecond-1).c <- time.Time{}
	r.sess.expect(t, append(resync("OFF"), unsupported)...)
}

func TestUpdateJob(t *testing.T) {
	r := startUpdateBoard(t, board.Config{Firmware: "devicefw 1", Platform: "linux/amd64"})
	info := `{"id":"b1","firmware":"devicefw 1","board":"test","interval_ms":1000,"platform":"linux/amd64","update":"fake"}`
	r.sess.expect(t, resyncWith(info, "OFF")...)

	r.deliverJob(job("j1", "2"))
	j := r.nextJob(t)
	if j.cmd.Job != "j1" || j.cmd.Version != "2" {
		t.Fatalf("Update got job %+v, want j1 for version 2", j.cmd)
	}
	go j.report(devices.UpdateReport{State: devices.UpdateDownloading, Progress: 10}) // ends once the board takes it
	r.sess.expect(t, updateLine("j1", "downloading", "2", "1", 10, ""))

	// While the job runs the board counts and obeys LED commands.
	r.quiet(t, 0)
	r.sess.deliver(board.Message{Topic: "devices/b1/led/set", Payload: []byte("ON")})
	r.sess.expect(t, "publish devices/b1/led ON q1 r")
	// The same job again (a QoS 1 redelivery) is ignored; another job,
	// even one for the version running, is refused as busy.
	r.deliverJob(job("j1", "2"))
	r.quiet(t, 1)
	r.deliverJob(job("j2", "1"))
	r.sess.expect(t, updateLine("j2", "failed", "1", "1", 0, "busy"))

	j.end <- fakeEnd{r: devices.UpdateReport{State: devices.UpdateFailed, Error: "checksum: want x, got y"}}
	r.sess.expect(t, updateLine("j1", "failed", "2", "1", 0, "checksum: want x, got y"))
	// Nothing in progress: a job for the version running is confirmed at
	// once, without the updater.
	r.deliverJob(job("j3", "1"))
	confirmed := updateLine("j3", "confirmed", "1", "1", 0, "")
	r.sess.expect(t, confirmed)
	r.quiet(t, 2)

	// The last report comes again after a reconnect (not the busy one).
	r.sess.lose()
	r.sess.expect(t, "disconnect")
	r.clk.nextTimer(t, 100*time.Millisecond-1).c <- time.Time{}
	r.sess.expect(t, resyncWith(info, "ON", confirmed)...)

	// Reports made while offline wait for the next connect.
	r.deliverJob(job("j4", "2"))
	j = r.nextJob(t)
	r.sess.lose()
	r.sess.expect(t, "disconnect")
	backoff := r.clk.nextTimer(t, 100*time.Millisecond-1)
	j.report(devices.UpdateReport{State: devices.UpdateDownloading, Progress: 50})
	backoff.c <- time.Time{}
	r.sess.expect(t, resyncWith(info, "ON", updateLine("j4", "downloading", "2", "1", 50, ""))...)
}

func TestUpdateHandOver(t *testing.T) {
	r := startUpdateBoard(t, board.Config{Firmware: "devicefw 1"})
	info := `{"id":"b1","firmware":"devicefw 1","board":"test","interval_ms":1000,"update":"fake"}`
	r.sess.expect(t, resyncWith(info, "OFF")...)
	r.sess.deliver(board.Message{Topic: "devices/b1/led/set", Payload: []byte("toggle")})
	r.sess.expect(t, "publish devices/b1/led ON q1 r")

	r.deliverJob(`{"job":"r1","action":"rollback"}`)
	j := r.nextJob(t)
	if !j.cmd.Rollback() {
		t.Fatalf("Update got %+v, want a rollback", j.cmd)
	}
	j.end <- fakeEnd{r: devices.UpdateReport{State: devices.UpdateRestarting, Version: "0.9"}, handOver: true}
	r.sess.expect(t, updateLine("r1", "restarting", "0.9", "1", 0, ""),
		"publish devices/b1/status offline q1 r", "disconnect")
	select {
	case <-r.run.Done():
	case <-time.After(waitFor):
		t.Fatal("Run did not return after the hand-over")
	}
	var h *board.HandOver
	if err := r.run.Stop(waitFor); !errors.As(err, &h) || h.Job.Job != "r1" || !h.LED {
		t.Fatalf("Run: got %v, want a *HandOver for r1 with the LED on", err)
	}
}

func TestUpdateTrial(t *testing.T) {
	on := true
	r := startUpdateBoard(t, board.Config{
		Firmware: "devicefw 2", InitialLED: &on,
		Trial: &board.Trial{Job: "j1", Duration: time.Minute},
	})
	info := `{"id":"b1","firmware":"devicefw 2","board":"test","interval_ms":1000,"update":"fake"}`
	trial := updateLine("j1", "trial", "2", "2", 0, "")
	// The new build starts with the LED handed over, says it is on trial
	// after status, info and led, and starts its trial.
	r.sess.expect(t, resyncWith(info, "ON", trial)...)
	r.clk.nextTimer(t, time.Minute)
	if !r.led.On() {
		t.Error("LED: got off, want on (handed over)")
	}
	// On trial, a job is in progress.
	r.deliverJob(job("j2", "3"))
	r.sess.expect(t, updateLine("j2", "failed", "3", "2", 0, "busy"))

	// A lost connection restarts the trial: it must be unbroken.
	r.sess.lose()
	r.sess.expect(t, "disconnect")
	r.clk.nextTimer(t, 100*time.Millisecond-1).c <- time.Time{}
	r.sess.expect(t, resyncWith(info, "ON", trial)...)
	tm := r.clk.nextTimer(t, time.Minute)
	tm.c <- time.Time{}
	c := testutil.Recv(t, r.upd.confirms, waitFor, "a Confirm call")
	if c.job != "j1" {
		t.Fatalf("Confirm: got job %q, want j1", c.job)
	}
	r.quiet(t, 0) // Confirm runs on the update goroutine
	c.answer <- nil
	r.sess.expect(t, updateLine("j1", "confirmed", "2", "2", 0, ""))
	// Confirmed: no longer busy.
	r.deliverJob(job("j3", "3"))
	r.nextJob(t)
}

func TestUpdateReportAtStart(t *testing.T) {
	rep := devices.UpdateReport{Job: "j9", State: devices.UpdateRolledBack, Version: "2", Error: "interrupted"}
	r := startUpdateBoard(t, board.Config{Firmware: "devicefw 1", Report: &rep})
	info := `{"id":"b1","firmware":"devicefw 1","board":"test","interval_ms":1000,"update":"fake"}`
	r.sess.expect(t, resyncWith(info, "OFF", updateLine("j9", "rolled_back", "2", "1", 0, "interrupted"))...)
}

func TestNewRejectsTrial(t *testing.T) {
	sess := newFakeSession()
	for _, tt := range []struct {
		name string
		cfg  board.Config
		want string
	}{
		{"trial without updater", board.Config{ID: "a", Session: sess, Trial: &board.Trial{Job: "j", Duration: time.Second}}, "without an updater"},
		{"trial without job", board.Config{ID: "a", Session: sess, Updater: newFakeUpdater(), Trial: &board.Trial{Duration: time.Second}}, "needs a job"},
	} {
		if _, err := board.New(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}
