package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"switchyard/board/boardtest"
	"switchyard/devices"
	"switchyard/internal/testutil"
)

// The update tests play the control plane with an httptest server that
// serves firmware (Range included) and an MQTT observer that sends jobs,
// against real devicefw processes built from two versions of the binary.

// updWait bounds every wait for an update report: a job's whole course
// under a loaded machine.
const updWait = 45 * time.Second

// Short trial and deadline, so that a test sees them through.
const (
	testTrial    = "1s"
	testDeadline = "6s"
)

// devicefwVersion builds devicefw with main.version set to v.
func devicefwVersion(t *testing.T, v string) string {
	t.Helper()
	return testutil.BuildBinary(t, "switchyard/cmd/devicefw", "-ldflags=-X main.version="+v)
}

// fwServer serves firmware at /firmware/<sha256>, as the control plane's
// GET /firmware/<sha256> does.
type fwServer struct {
	*httptest.Server
	key ed25519.PrivateKey

	mu       sync.Mutex
	files    map[string][]byte // by the path's SHA-256 (which need not be the bytes')
	requests []string          // "GET <sha> <Range>" of every request
	gate     chan struct{}     // while set, a request without Range gets half the bytes, then waits for it to close
}

func newFWServer(t *testing.T) *fwServer {
	t.Helper()
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &fwServer{key: key, files: map[string][]byte{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	t.Cleanup(s.open) // a handler still waiting must end before Close
	return s
}

func (s *fwServer) serve(w http.ResponseWriter, r *http.Request) {
	sha, ok := strings.CutPrefix(r.URL.Path, "/firmware/")
	s.mu.Lock()
	b, found := s.files[sha]
	s.requests = append(s.requests, strings.TrimSpace("GET "+sha+" "+r.Header.Get("Range")))
	gate := s.gate
	s.mu.Unlock()
	if !ok || !found {
		http.NotFound(w, r)
		return
	}
	if gate != nil && r.Header.Get("Range") == "" {
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b[:len(b)/2])
		http.NewResponseController(w).Flush()
		select { // the rest never comes: the board is killed meanwhile
		case <-gate:
		case <-r.Context().Done():
		}
		return
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}

// hold makes downloads stop half way until open.
func (s *fwServer) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = make(chan struct{})
}

func (s *fwServer) open() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

func (s *fwServer) requestLog() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// publicKey is the base64 update key for --update-key.
func (s *fwServer) publicKey() string {
	return base64.StdEncoding.EncodeToString(s.key.Public().(ed25519.PublicKey))
}

// add serves b and returns a job installing it as version, signed by the
// server's key.
func (s *fwServer) add(b []byte, version string) devices.UpdateCommand {
	sum := sha256.Sum256(b)
	return s.addAs(hex.EncodeToString(sum[:]), b, version, s.key)
}

// addAs serves b under sha and returns a job for it signed by key.
func (s *fwServer) addAs(sha string, b []byte, version string, key ed25519.PrivateKey) devices.UpdateCommand {
	s.mu.Lock()
	s.files[sha] = b
	s.mu.Unlock()
	digest, _ := hex.DecodeString(sha)
	return devices.UpdateCommand{
		Version: version, URL: s.URL + "/firmware/" + sha, SHA256: sha, Size: int64(len(b)),
		Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(key, digest)),
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// watcher follows one board's topics through an observer and remembers
// the latest payload of each.
type watcher struct {
	t      *testing.T
	obs    *boardtest.Observer
	id     string
	latest map[string]string
}

func watch(t *testing.T, brokerURL, id string) *watcher {
	t.Helper()
	return &watcher{t: t, obs: boardtest.Observe(t, brokerURL, topics.DeviceFilter(id)), id: id, latest: map[string]string{}}
}

// until consumes messages until ok says so, or fails the test after
// within.
func (w *watcher) until(within time.Duration, what string, ok func(boardtest.Msg) bool) boardtest.Msg {
	w.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m := <-w.obs.C:
			w.latest[m.Topic] = m.Payload
			if ok(m) {
				return m
			}
		case <-deadline:
			w.t.Fatalf("%s: not within %s; latest: update %s, info %s, status %s", what, within,
				w.latest[topics.Update(w.id)], w.latest[topics.Info(w.id)], w.latest[topics.Status(w.id)])
			return boardtest.Msg{}
		}
	}
}

// report waits for the update report of job in state; it fails at once
// when the job ends in another state.
func (w *watcher) report(job string, state devices.UpdateState) devices.UpdateReport {
	w.t.Helper()
	var got devices.UpdateReport
	w.until(updWait, fmt.Sprintf("update %s %s", job, state), func(m boardtest.Msg) bool {
		if m.Topic != topics.Update(w.id) {
			return false
		}
		r, err := devices.ParseUpdateReport([]byte(m.Payload))
		if err != nil {
			w.t.Fatalf("update report %q: %v", m.Payload, err)
		}
		if r.Job != job {
			return false
		}
		if r.State != state && r.State.Final() {
			w.t.Fatalf("update %s: got %s, want %s", job, m.Payload, state)
		}
		got = r
		return r.State == state
	})
	return got
}

// status waits for the board's status.
func (w *watcher) status(want string) {
	w.t.Helper()
	w.until(updWait, "status "+want, func(m boardtest.Msg) bool {
		return m.Topic == topics.Status(w.id) && m.Payload == want
	})
}

// online waits until the board is online running version: status online
// and an info with that firmware, in either order.
func (w *watcher) online(version string) {
	w.t.Helper()
	w.until(updWait, "online with devicefw "+version, func(m boardtest.Msg) bool {
		info, err := devices.ParseInfo([]byte(w.latest[topics.Info(w.id)]))
		return err == nil && info.Firmware == "devicefw "+version && w.latest[topics.Status(w.id)] == devices.Online
	})
}

// expectRuns checks what the board announced last: its firmware and LED.
func (w *watcher) expectRuns(version, led string) {
	w.t.Helper()
	info, err := devices.ParseInfo([]byte(w.latest[topics.Info(w.id)]))
	if err != nil || info.Firmware != "devicefw "+version {
		w.t.Errorf("info: got %s, want firmware devicefw %s", w.latest[topics.Info(w.id)], version)
	}
	if got := w.latest[topics.LED(w.id)]; got != led {
		w.t.Errorf("led: got %q, want %q", got, led)
	}
}

// send publishes job with id on the board's update/set.
func (w *watcher) send(id string, job devices.UpdateCommand) {
	w.t.Helper()
	job.Job = id
	w.obs.Publish(w.t, topics.UpdateSet(w.id), string(job.AppendJSON(nil)), false)
}

func (w *watcher) setLED(cmd, want string) {
	w.t.Helper()
	w.obs.Publish(w.t, topics.LEDSet(w.id), cmd, false)
	w.until(updWait, "led "+want, func(m boardtest.Msg) bool { return m.Topic == topics.LED(w.id) && m.Payload == want })
}

// fwProc is one devicefw process started on a state directory.
type fwProc struct {
	*testutil.Process
}

var onlineLine = regexp.MustCompile(`msg=online `)

// startFW starts bin as board id with the update flags, the key unless
// key is "", and extra environment.
func startFW(t *testing.T, bin, brokerURL, id, key, stateDir string, env ...string) fwProc {
	t.Helper()
	args := []string{"--broker", brokerURL, "--id", id, "--interval", "200ms",
		"--update-trial", testTrial, "--update-deadline", testDeadline, "--state-dir", stateDir}
	if key != "" {
		args = append(args, "--update-key", key)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	p, _, err := testutil.Start(t, cmd, onlineLine, updWait)
	if err != nil {
		t.Fatal(err)
	}
	return fwProc{p}
}

// kill9 kills the process with SIGKILL and waits until it has gone.
func (p fwProc) kill9(t *testing.T) {
	t.Helper()
	if err := p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Exited():
	case <-time.After(updWait):
		t.Fatal("devicefw still runs after SIGKILL")
	}
}

// builds lists the executables in the state directory.
func builds(t *testing.T, stateDir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(stateDir, "builds"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// updateRig is a broker, a firmware server and the two versions.
type updateRig struct {
	br     *boardtest.Broker
	srv    *fwServer
	v1, v2 string // devicefw 1.0.0 and 2.0.0
	state  string
}

func newUpdateRig(t *testing.T) *updateRig {
	t.Helper()
	return &updateRig{
		br: boardtest.Start(t), srv: newFWServer(t),
		v1: devicefwVersion(t, "1.0.0"), v2: devicefwVersion(t, "2.0.0"),
		state: t.TempDir(),
	}
}

func (r *updateRig) start(t *testing.T, id string, env ...string) fwProc {
	t.Helper()
	return startFW(t, r.v1, r.br.URL, id, r.srv.publicKey(), r.state, env...)
}

// TestUpdateConfirmedThenRolledBack is the good path and the way back:
// guarantees 0, 2 and 5 (already running), the thin parent, the start
// that runs the current build, and {"action":"rollback"}.
func TestUpdateConfirmedThenRolledBack(t *testing.T) {
	t.Parallel()
	r := newUpdateRig(t)
	w := watch(t, r.br.URL, "upd-ok")
	p := r.start(t, "upd-ok")
	w.online("1.0.0")
	w.setLED("ON", "ON")

	job := r.srv.add(readFile(t, r.v2), "2.0.0")
	w.send("j1", job)
	for _, s := range []devices.UpdateState{devices.UpdateDownloading, devices.UpdateVerifying, devices.UpdateInstalling,
		devices.UpdateRestarting, devices.UpdateTrial} {
		w.report("j1", s)
	}
	// The new build confirms only after status, info with its firmware
	// and led (guarantee 2), and it started with the LED as it was (0).
	w.expectRuns("2.0.0", "ON")
	if got := w.report("j1", devices.UpdateConfirmed); got.Running != "2.0.0" || got.Version != "2.0.0" {
		t.Errorf("confirmed: got %+v, want version and running 2.0.0", got)
	}
	w.expectRuns("2.0.0", "ON")
	if got := builds(t, r.state); len(got) != 1 || got[0] != job.SHA256 {
		t.Errorf("builds: got %v, want only %s", got, job.SHA256)
	}
	// A job for the version running is confirmed at once (guarantee 5).
	w.send("j2", job)
	w.report("j2", devices.UpdateConfirmed)

	// The old process stays as a thin parent: a stop reaches the new
	// build, which says offline, and both exit 0.
	if err := p.Stop(updWait); err != nil {
		t.Fatalf("stop after the update: %v", err)
	}
	w.status(devices.Offline)

	// The next start (the installed executable is still 1.0.0) runs the
	// current build, 2.0.0, and says how the last job it ran ended (j2
	// was answered without running).
	p = r.start(t, "upd-ok")
	w.online("2.0.0")
	w.report("j1", devices.UpdateConfirmed)
	w.setLED("OFF", "OFF")
	w.setLED("ON", "ON")

	// Back to the previous build without a download: it runs 1.0.0 in
	// place, LED as it was.
	before := len(r.srv.requestLog())
	w.send("r1", devices.UpdateCommand{Action: devices.UpdateActionRollback})
	w.report("r1", devices.UpdateRestarting)
	if got := w.report("r1", devices.UpdateRolledBack); got.Running != "1.0.0" || got.Error != "" {
		t.Errorf("rolled_back: got %+v, want running 1.0.0 and no error", got)
	}
	w.expectRuns("1.0.0", "ON")
	if got := r.srv.requestLog()[before:]; len(got) != 0 {
		t.Errorf("the rollback downloaded: %v", got)
	}
	if err := p.Stop(updWait); err != nil {
		t.Fatalf("stop after the rollback: %v", err)
	}
}

// TestUpdateBadBuildRolledBack: a build that exits at start, and one that
// hangs without connecting (killed at the deadline), are rolled back and
// the old build runs again, LED as it was (guarantees 3 and 0).
func TestUpdateBadBuildRolledBack(t *testing.T) {
	t.Parallel()
	deadline, _ := time.ParseDuration(testDeadline)
	for _, tt := range []struct {
		build, word, detail string
		after               time.Duration // at least this long after restarting
	}{
		{"crash", devices.UpdateErrCrashed, "exit status 3", 0},
		{"hang", devices.UpdateErrNeverConn, "within " + testDeadline, deadline / 2},
	} {
		t.Run(tt.build, func(t *testing.T) {
			t.Parallel()
			r := newUpdateRig(t)
			bad := testutil.BuildBinary(t, "./testdata/"+tt.build)
			id := "upd-" + tt.build
			w := watch(t, r.br.URL, id)
			p := r.start(t, id)
			w.online("1.0.0")
			w.setLED("ON", "ON")
			w.send("b1", r.srv.add(readFile(t, bad), "9.0.0"))
			w.report("b1", devices.UpdateRestarting)
			restarting := time.Now()
			got := w.report("b1", devices.UpdateRolledBack)
			if !devices.UpdateErrorIs(got.Error, tt.word) || !strings.Contains(got.Error, tt.detail) || got.Running != "1.0.0" {
				t.Errorf("rolled_back: got %+v, want error %s (%s), running 1.0.0", got, tt.word, tt.detail)
			}
			if d := time.Since(restarting); d < tt.after {
				t.Errorf("rolled back %s after restarting, want the deadline %s", d, deadline)
			}
			w.expectRuns("1.0.0", "ON")
			if n := strings.Count(p.Log(), tt.build+": "); n != 1 {
				t.Errorf("the %s build ran %d times, want once", tt.build, n)
			}
			if got := builds(t, r.state); len(got) != 0 {
				t.Errorf("builds after the rollback: got %v, want none (the running build is the installed one)", got)
			}
			if err := p.Stop(updWait); err != nil {
				t.Fatalf("stop: %v", err)
			}
		})
	}
}

// TestUpdateRefused: what fails verification is refused before anything
// changes, with the contract's words (guarantee 1).
func TestUpdateRefused(t *testing.T) {
	t.Parallel()
	r := newUpdateRig(t)
	v2 := readFile(t, r.v2)
	good := r.srv.add(v2, "2.0.0")
	_, otherKey, _ := ed25519.GenerateKey(nil)
	// An executable for another machine: the same ELF, another e_machine.
	foreign := bytes.Clone(v2)
	machine := uint16(62) // EM_X86_64
	if binary.LittleEndian.Uint16(foreign[18:]) == machine {
		machine = 183 // EM_AARCH64
	}
	binary.LittleEndian.PutUint16(foreign[18:], machine)
	wrongSize := good
	wrongSize.Size++
	tests := []struct {
		name string
		job  devices.UpdateCommand
		want string
	}{
		{"wrong checksum", r.srv.addAs(strings.Repeat("ab", 32), v2, "2.0.0", r.srv.key), devices.UpdateErrChecksum},
		{"wrong signature", r.srv.addAs(good.SHA256, v2, "2.0.0", otherKey), devices.UpdateErrSignature},
		{"wrong size", wrongSize, devices.UpdateErrSize},
		{"another machine", r.srv.add(foreign, "2.0.0"), devices.UpdateErrPlatform},
		{"not an executable", r.srv.add(bytes.Repeat([]byte("not an ELF file\n"), 1000), "2.0.0"), devices.UpdateErrPlatform},
	}
	w := watch(t, r.br.URL, "upd-bad")
	p := r.start(t, "upd-bad")
	w.online("1.0.0")
	for i, tt := range tests {
		id := fmt.Sprintf("bad%d", i)
		w.send(id, tt.job)
		got := w.report(id, devices.UpdateFailed)
		if !devices.UpdateErrorIs(got.Error, tt.want) {
			t.Errorf("%s: got error %q, want %q", tt.name, got.Error, tt.want)
		}
		w.expectRuns("1.0.0", "OFF")
	}
	if got := builds(t, r.state); len(got) != 0 {
		t.Errorf("builds: got %v, want none", got)
	}
	if err := p.Stop(updWait); err != nil {
		t.Fatalf("stop: %v", err)
	}

	// Without a key every update is refused at once, without a download.
	before := len(r.srv.requestLog())
	w = watch(t, r.br.URL, "upd-nokey")
	p = startFW(t, r.v1, r.br.URL, "upd-nokey", "", t.TempDir())
	w.online("1.0.0")
	w.send("nokey", good)
	if got := w.report("nokey", devices.UpdateFailed); got.Error != devices.UpdateErrNoKey {
		t.Errorf("without a key: got error %q, want %q", got.Error, devices.UpdateErrNoKey)
	}
	if got := r.srv.requestLog()[before:]; len(got) != 0 {
		t.Errorf("without a key it downloaded: %v", got)
	}
	if err := p.Stop(updWait); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// TestUpdateKilledWhileDownloading: a kill -9 during the download leaves
// the old build, which reports failed interrupted, and the next job
// resumes the download with Range (guarantee 4); a job while one is in
// progress is refused busy without disturbing it (guarantee 5).
func TestUpdateKilledWhileDownloading(t *testing.T) {
	t.Parallel()
	r := newUpdateRig(t)
	w := watch(t, r.br.URL, "upd-dl")
	p := r.start(t, "upd-dl")
	w.online("1.0.0")
	w.setLED("ON", "ON")
	job := r.srv.add(readFile(t, r.v2), "2.0.0")
	r.srv.hold()
	w.send("d1", job)
	w.until(updWait, "half the download", func(m boardtest.Msg) bool {
		rep, err := devices.ParseUpdateReport([]byte(m.Payload))
		return m.Topic == topics.Update("upd-dl") && err == nil && rep.Job == "d1" && rep.Progress >= 40
	})
	w.send("d2", job)
	if got := w.report("d2", devices.UpdateFailed); got.Error != devices.UpdateErrBusy {
		t.Errorf("second job: got error %q, want busy", got.Error)
	}
	w.setLED("OFF", "OFF") // and the board goes on meanwhile
	p.kill9(t)
	w.status(devices.Offline) // the Will

	r.srv.open()
	p = r.start(t, "upd-dl")
	w.online("1.0.0")
	got := w.report("d1", devices.UpdateFailed)
	if !devices.UpdateErrorIs(got.Error, devices.UpdateErrInterrupted) {
		t.Errorf("after the restart: got %+v, want failed interrupted", got)
	}
	w.send("d3", job)
	w.report("d3", devices.UpdateConfirmed)
	w.expectRuns("2.0.0", "OFF")
	resumed := false
	for _, req := range r.srv.requestLog() {
		if strings.HasPrefix(req, "GET "+job.SHA256+" bytes=") && !strings.HasSuffix(req, "bytes=0-") {
			resumed = true
		}
	}
	if !resumed {
		t.Errorf("requests: %q; want one resuming with Range", r.srv.requestLog())
	}
	if err := p.Stop(updWait); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// TestUpdateKilledWhileInstalling: a kill -9 while installing leaves the
// old build, nothing installed, failed interrupted (guarantee 4).
func TestUpdateKilledWhileInstalling(t *testing.T) {
	t.Parallel()
	r := newUpdateRig(t)
	w := watch(t, r.br.URL, "upd-inst")
	p := r.start(t, "upd-inst", "SWITCHYARD_UPDATE_HOLD=installing")
	w.online("1.0.0")
	w.send("i1", r.srv.add(readFile(t, r.v2), "2.0.0"))
	w.report("i1", devices.UpdateInstalling)
	p.kill9(t)

	p = r.start(t, "upd-inst")
	w.online("1.0.0")
	if got := w.report("i1", devices.UpdateFailed); !devices.UpdateErrorIs(got.Error, devices.UpdateErrInterrupted) {
		t.Errorf("after the restart: got %+v, want failed interrupted", got)
	}
	if got := builds(t, r.state); len(got) != 0 {
		t.Errorf("builds: got %v, want none", got)
	}
	if err := p.Stop(updWait); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// TestUpdateKilledDuringTrial: a kill -9 of devicefw while the new build
// is on trial takes the new build with it (no orphan), and the next start
// runs the old build, reporting rolled_back interrupted with the LED the
// new build left (guarantees 4 and 0).
func TestUpdateKilledDuringTrial(t *testing.T) {
	t.Parallel()
	r := newUpdateRig(t)
	w := watch(t, r.br.URL, "upd-trial")
	// A trial longer than the test, so that the kill lands in it.
	cmd := exec.Command(r.v1, "--broker", r.br.URL, "--id", "upd-trial", "--interval", "200ms",
		"--update-trial", "10m", "--update-deadline", "20m", "--state-dir", r.state, "--update-key", r.srv.publicKey())
	proc, _, err := testutil.Start(t, cmd, onlineLine, updWait)
	if err != nil {
		t.Fatal(err)
	}
	p := fwProc{proc}
	w.online("1.0.0")
	w.send("t1", r.srv.add(readFile(t, r.v2), "2.0.0"))
	w.report("t1", devices.UpdateTrial)
	w.setLED("ON", "ON") // the new build on trial changes the LED
	m := regexp.MustCompile(`msg="started the new build on trial".* pid=(\d+)`).FindStringSubmatch(p.Log())
	if m == nil {
		t.Fatalf("no child pid in the log:\n%s", p.Log())
	}
	pid, _ := strconv.Atoi(m[1])
	p.kill9(t)
	testutil.WaitFor(t, updWait, func() error { // no event tells when another process's child is gone
		if testutil.Gone(pid) {
			return nil
		}
		return fmt.Errorf("the new build (pid %d) still runs after its supervisor was killed", pid)
	})

	p = r.start(t, "upd-trial")
	w.online("1.0.0")
	if got := w.report("t1", devices.UpdateRolledBack); !devices.UpdateErrorIs(got.Error, devices.UpdateErrInterrupted) {
		t.Errorf("after the restart: got %+v, want rolled_back interrupted", got)
	}
	w.expectRuns("1.0.0", "ON")
	if err := p.Stop(updWait); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// TestUpdateThenInstalledByHand: an executable installed by hand over the
// one a build replaced wins over the builds at the next start.
func TestUpdateThenInstalledByHand(t *testing.T) {
	t.Parallel()
	r := newUpdateRig(t)
	installed := filepath.Join(t.TempDir(), "devicefw")
	install := func(src string) {
		t.Helper()
		tmp := installed + ".new"
		if err := os.WriteFile(tmp, readFile(t, src), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, installed); err != nil {
			t.Fatal(err)
		}
	}
	install(r.v1)
	w := watch(t, r.br.URL, "upd-hand")
	p := startFW(t, installed, r.br.URL, "upd-hand", r.srv.publicKey(), r.state)
	w.online("1.0.0")
	w.send("j1", r.srv.add(readFile(t, r.v2), "2.0.0"))
	w.report("j1", devices.UpdateConfirmed)
	if err := p.Stop(updWait); err != nil {
		t.Fatalf("stop: %v", err)
	}

	// The same bytes as the build, but installed by hand: it runs itself,
	// not the build, which goes.
	install(r.v2)
	p = startFW(t, installed, r.br.URL, "upd-hand", r.srv.publicKey(), r.state)
	w.online("2.0.0")
	if !strings.Contains(p.Log(), "the installed executable changed since the last update") || strings.Contains(p.Log(), "running the current build") {
		t.Errorf("log: want the installed executable to win over the build:\n%s", p.Log())
	}
	if got := builds(t, r.state); len(got) != 0 {
		t.Errorf("builds: got %v, want none", got)
	}
	if err := p.Stop(updWait); err != nil {
		t.Fatalf("stop: %v", err)
	}
}

// TestUpdateStoppedLikeSystemd stops devicefw the way systemd does with
// KillMode=control-group: SIGTERM to every process of the unit (here, of
// its process group), the supervisor and the new build alike. Both stop
// cleanly with status 0, during a trial and after a confirmation; a stop
// during the trial is an interruption: the next start runs the old build.
func TestUpdateStoppedLikeSystemd(t *testing.T) {
	t.Parallel()
	r := newUpdateRig(t)
	w := watch(t, r.br.URL, "upd-sysd")
	job := r.srv.add(readFile(t, r.v2), "2.0.0")
	start := func(trial string) fwProc {
		t.Helper()
		cmd := exec.Command(r.v1, "--broker", r.br.URL, "--id", "upd-sysd", "--interval", "200ms",
			"--update-trial", trial, "--update-deadline", "20m", "--state-dir", r.state, "--update-key", r.srv.publicKey())
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a group of its own, as a unit's cgroup
		p, _, err := testutil.Start(t, cmd, onlineLine, updWait)
		if err != nil {
			t.Fatal(err)
		}
		return fwProc{p}
	}
	stopAll := func(p fwProc, what string) {
		t.Helper()
		if err := syscall.Kill(-p.Pid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(updWait); err != nil {
			t.Errorf("%s: got %v, want exit status 0", what, err)
		}
		w.status(devices.Offline)
	}

	p := start("10m")
	w.online("1.0.0")
	w.send("s1", job)
	w.report("s1", devices.UpdateTrial)
	stopAll(p, "stop during the trial")
	p = start(testTrial)
	w.online("1.0.0")
	if got := w.report("s1", devices.UpdateRolledBack); !devices.UpdateErrorIs(got.Error, devices.UpdateErrInterrupted) {
		t.Errorf("after a stop during the trial: got %+v, want rolled_back interrupted", got)
	}

	w.send("s2", job)
	w.report("s2", devices.UpdateConfirmed)
	stopAll(p, "stop after the confirmation")
}
