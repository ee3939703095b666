package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	pmqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"switchyard/devices"
	"switchyard/internal/testutil"
	"switchyard/rollout"
)

// The rollout tests run issue 12 from end to end with real processes and
// real files: the controlplane binary with its database and firmware
// directory on loopback ports of its own, devicefw built twice from the
// real source (versions 1.0 and 1.1, set with -ldflags), each board a
// process with its own --state-dir and the control plane's update key,
// and builds that crash, hang, are tampered with or are for another
// machine. They drive the control plane over its API as an admin (with an
// API token) and follow the boards on MQTT (every message under
// devices/#, as a third party sees them) and the rollouts on /ws (as the
// dashboard does).

const (
	roWait     = 90 * time.Second // bounds one wait: a rollout's whole course on a loaded machine
	roTrial    = "1s"             // devicefw --update-trial
	roDeadline = "8s"             // devicefw --update-deadline
	roInterval = "500ms"          // devicefw --interval: the count a health window watches
)

// roNotConfirmed is the error word a build that connected but never
// confirmed (it hung) is rolled back with: the contract's "crashed"
// ("crashed: hung: …", docs/devicefw.md).
const roNotConfirmed = devices.UpdateErrCrashed

var roTopics = devices.MustTopics(devices.DefaultPrefix)

// The LED payloads.
var roOn, roOff = devices.LEDPayload(true), devices.LEDPayload(false)

// roPlatform is the platform devicefw reports on this machine (checked
// against the boards' info by the tests).
var roPlatform = runtime.GOOS + "/" + runtime.GOARCH

// roDevicefw builds devicefw with main.version set to v.
func roDevicefw(t *testing.T, v string) string {
	t.Helper()
	return testutil.BuildBinary(t, "switchyard/cmd/devicefw", "-ldflags=-X main.version="+v)
}

// roBuild builds one of devicefw's test builds (testdata/crash, which
// exits with status 3 at start, or testdata/hang, which never connects),
// with env added to go build's (GOARCH=… for another machine).
func roBuild(t *testing.T, name string, env ...string) []byte {
	t.Helper()
	return roRead(t, testutil.BuildBinaryEnv(t, env, "switchyard/cmd/devicefw/testdata/"+name))
}

func roRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// roRig is a control plane with an admin token, the update key it
// prints, the MQTT and /ws view of it, and the two devicefw versions.
type roRig struct {
	cfg      string // the config file
	storage  string // storage.path: the database, firmware/ and the update key are beside it
	token    string // ada's (admin) API token
	cp       *proc
	key      string // the update key's public half, base64
	fleet    *roFleet
	v10, v11 string // devicefw 1.0 and 1.1
}

// newRoRig starts a control plane on free loopback ports (kept across a
// restart, as a board's download URL names the HTTP port), anonymous
// access for local clients (the boards), and ada, an admin with an API
// token.
func newRoRig(t *testing.T) *roRig {
	t.Helper()
	dir := t.TempDir()
	secret := make([]byte, 16)
	rand.Read(secret)
	r := &roRig{
		cfg:     filepath.Join(dir, "config.yaml"),
		storage: filepath.Join(dir, "data", "retained.log"),
		token:   hex.EncodeToString(secret),
		fleet:   newRoFleet(),
		v10:     roDevicefw(t, "1.0"),
		v11:     roDevicefw(t, "1.1"),
	}
	digest := sha256.Sum256([]byte(r.token))
	body := fmt.Sprintf(`mqtt: {listen: '127.0.0.1:%s'}
http: {listen: '127.0.0.1:%s'}
storage: {path: %q}
log: {level: info}
auth:
  users:
    - {name: ada, role: admin, tokens: [%q]}
`, testutil.FreePort(t), testutil.FreePort(t), r.storage, hex.EncodeToString(digest[:]))
	if err := os.WriteFile(r.cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	r.start(t)
	code, b := r.api(t, "GET", "/api/update-key", nil)
	var key struct {
		PublicKey string `json:"public_key"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &key) != nil || key.PublicKey == "" {
		t.Fatalf("GET /api/update-key: %d %s", code, b)
	}
	r.key = key.PublicKey
	return r
}

// start starts the control plane on the rig's config and follows it.
func (r *roRig) start(t *testing.T) {
	t.Helper()
	r.cp = start(t, r.cfg)
	r.fleet.observe(t, r.brokerURL())
	r.fleet.listen(t, "ws"+strings.TrimPrefix(r.cp.http, "http")+"/ws", r.token)
}

// kill9 kills the control plane with SIGKILL and waits until it has gone.
func (r *roRig) kill9(t *testing.T) {
	t.Helper()
	if err := r.cp.p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.cp.p.Exited():
	case <-time.After(roWait):
		t.Fatal("the control plane still runs after SIGKILL")
	}
}

func (r *roRig) brokerURL() string { return "tcp://127.0.0.1:" + r.cp.mqttPort }

// api makes a request as ada and returns the status and body.
func (r *roRig) api(t *testing.T, method, path string, body []byte) (int, []byte) {
	t.Helper()
	return bearerRequest(t, r.cp.http, r.token, method, path, body)
}

// bearerRequest makes a request to base+path with a bearer token and
// returns the status and body.
func bearerRequest(t *testing.T, base, token, method, path string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: roWait}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// upload uploads a build and returns its SHA-256.
func (r *roRig) upload(t *testing.T, b []byte, version, platform string) string {
	t.Helper()
	q := url.Values{"version": {version}, "platform": {platform}}
	code, body := r.api(t, "POST", "/api/firmware?"+q.Encode(), b)
	var fw struct {
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	}
	if code != http.StatusCreated || json.Unmarshal(body, &fw) != nil || fw.Size != int64(len(b)) {
		t.Fatalf("upload %s for %s: %d %s", version, platform, code, body)
	}
	return fw.SHA256
}

// startRollout posts spec and returns the rollout created.
func (r *roRig) startRollout(t *testing.T, spec string) roView {
	t.Helper()
	code, body := r.api(t, "POST", "/api/rollouts", []byte(spec))
	var v roView
	if code != http.StatusCreated || json.Unmarshal(body, &v) != nil {
		t.Fatalf("POST /api/rollouts %s: %d %s", spec, code, body)
	}
	return v
}

// getRollout is GET /api/rollouts/<id>.
func (r *roRig) getRollout(t *testing.T, id string) roView {
	t.Helper()
	code, body := r.api(t, "GET", "/api/rollouts/"+id, nil)
	var v roView
	if code != http.StatusOK || json.Unmarshal(body, &v) != nil {
		t.Fatalf("GET /api/rollouts/%s: %d %s", id, code, body)
	}
	return v
}

// setLED commands board id's LED through the API and waits for the board
// to report it.
func (r *roRig) setLED(t *testing.T, id, led string) {
	t.Helper()
	code, body := r.api(t, "POST", "/api/devices/"+id+"/led", []byte(`{"action":"`+strings.ToLower(led)+`"}`))
	if code != http.StatusAccepted {
		t.Fatalf("POST /api/devices/%s/led %s: %d %s", id, led, code, body)
	}
	r.fleet.wait(t, "board "+id+" led "+led, func() bool { return r.fleet.latestL(id, devices.KindLED) == led })
}

// waitReady waits until the control plane shows every board of ids
// online, running devicefw version, able to update. No event says when
// the API has a board's messages: it polls.
func (r *roRig) waitReady(t *testing.T, version string, ids []string) {
	t.Helper()
	testutil.WaitFor(t, roWait, func() error {
		code, body := r.api(t, "GET", "/api/devices", nil)
		var ds []roDevice
		if code != http.StatusOK || json.Unmarshal(body, &ds) != nil {
			return fmt.Errorf("GET /api/devices: %d %s", code, body)
		}
		for _, id := range ids {
			i := slices.IndexFunc(ds, func(d roDevice) bool { return d.ID == id })
			if i < 0 {
				return fmt.Errorf("board %s unknown", id)
			}
			if d := ds[i]; !d.Online || d.Info.Firmware != "devicefw "+version || d.Info.Update == "" {
				return fmt.Errorf("board %s not online on devicefw %s with an update method: %+v", id, version, d)
			}
		}
		return nil
	})
}

// roDevice is the part of a device in GET /api/devices the tests read.
type roDevice struct {
	ID     string `json:"id"`
	Online bool   `json:"online"`
	Info   struct {
		Firmware string `json:"firmware"`
		Update   string `json:"update"`
	} `json:"info"`
}

// roBoard is one devicefw process: a board, or simulated boards.
type roBoard struct {
	state string   // its --state-dir
	argv  []string // executable and arguments, for a restart
	p     *testutil.Process
}

var roOnlineLine = regexp.MustCompile(`msg=online `)

// devicefw is devicefw bin (not started) on the rig's broker with the state
// directory, the update flags, key unless "" (no key), and extra flags,
// which win.
func (r *roRig) devicefw(bin, id, key, state string, extra ...string) *roBoard {
	b := &roBoard{state: state}
	b.argv = []string{bin, "--broker", r.brokerURL(), "--id", id, "--interval", roInterval, "--state-dir", state,
		"--update-trial", roTrial, "--update-deadline", roDeadline}
	if key != "" {
		b.argv = append(b.argv, "--update-key", key)
	}
	b.argv = append(b.argv, extra...)
	return b
}

// startBoards starts one devicefw process from bin for each id, all at
// once, and waits until each is online.
func (r *roRig) startBoards(t *testing.T, bin, key string, ids []string, extra ...string) map[string]*roBoard {
	t.Helper()
	boards := map[string]*roBoard{}
	for _, id := range ids {
		boards[id] = r.devicefw(bin, id, key, t.TempDir(), extra...)
	}
	r.startAll(t, boards)
	return boards
}

// startSim starts devicefw --sim n with ids prefix-1 … prefix-n, the
// update flags and extra flags.
func (r *roRig) startSim(t *testing.T, prefix string, n int, extra ...string) []string {
	t.Helper()
	b := r.devicefw(r.v10, prefix, r.key, t.TempDir(), append([]string{"--sim", strconv.Itoa(n)}, extra...)...)
	r.startAll(t, map[string]*roBoard{prefix: b})
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", prefix, i+1)
	}
	return ids
}

func (r *roRig) startAll(t *testing.T, boards map[string]*roBoard) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(boards))
	for _, b := range boards {
		wg.Go(func() { // ends when the process is online or has failed to start
			if err := b.start(t); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// start starts (or restarts) the process on its command line and state
// directory; it is killed at the end of the test.
func (b *roBoard) start(t *testing.T) error {
	p, _, err := testutil.Start(t, exec.Command(b.argv[0], b.argv[1:]...), roOnlineLine, roWait)
	b.p = p
	return err
}

// builds lists the builds a board keeps in its state directory.
func (b *roBoard) builds(t *testing.T) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(b.state, "builds"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// roView is a rollout as GET /api/rollouts/<id> and /ws show it.
type roView struct {
	Event   string         `json:"event"` // "rollout" on /ws
	ID      string         `json:"id"`
	Version string         `json:"version"`
	State   string         `json:"state"`
	Reason  string         `json:"reason"`
	Updated string         `json:"updated"`
	Waves   []roWave       `json:"waves"`
	Counts  map[string]int `json:"counts"`
}

type roWave struct {
	Size   int        `json:"size"`
	State  string     `json:"state"`
	Boards []roPlaced `json:"boards"`
}

// roPlaced is a board's place in a rollout.
type roPlaced struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Error  string `json:"error"`
	Job    string `json:"job"`
	Update string `json:"update"`
}

// board returns board id's place (zero when it has none).
func (v roView) board(id string) roPlaced {
	for _, w := range v.Waves {
		for _, b := range w.Boards {
			if b.ID == id {
				return b
			}
		}
	}
	return roPlaced{}
}

// ids returns the ids of the boards of wave i.
func (v roView) ids(i int) []string {
	var ids []string
	for _, b := range v.Waves[i].Boards {
		ids = append(ids, b.ID)
	}
	return ids
}

// roJobNumber is n of a job "<rollout>/<n>", -1 when it is not one.
func roJobNumber(rolloutID, job string) int {
	s, ok := strings.CutPrefix(job, rolloutID+"/")
	n, err := strconv.Atoi(s)
	if !ok || err != nil {
		return -1
	}
	return n
}

// roFailedWith reports whether a rollout board's error is "<state>: "
// followed by the contract's word (as rollout.Step writes a report's).
func roFailedWith(b roPlaced, state devices.UpdateState, word string) bool {
	rest, ok := strings.CutPrefix(b.Error, string(state)+": ")
	return b.State == string(rollout.BoardFailed) && ok && devices.UpdateErrorIs(rest, word)
}

// roFleet is what the tests saw of the control plane: every board message
// but counts, in the order the broker delivered them, how many counts
// each board sent, and every /ws rollout event.
type roFleet struct {
	mu       sync.Mutex
	changed  chan struct{}       // closed and replaced whenever anything below changes
	msgs     []roMsg             // every board message but counts
	latest   map[string]string   // the latest payload of each topic (counts excluded)
	counts   map[string]int      // count messages per board
	rollouts map[string][]roView // /ws events per rollout, in order
}

// roMsg is one board message.
type roMsg struct {
	id       string
	kind     devices.Kind
	payload  string
	retained bool // delivered from the broker's store at subscription
}

func newRoFleet() *roFleet {
	return &roFleet{
		changed: make(chan struct{}), latest: map[string]string{},
		counts: map[string]int{}, rollouts: map[string][]roView{},
	}
}

// notifyL wakes the waiters; mu is held.
func (f *roFleet) notifyL() {
	close(f.changed)
	f.changed = make(chan struct{})
}

var roObservers atomic.Int64

// observe subscribes a Paho client to devices/# on brokerURL; it feeds
// the fleet until the broker goes or the test ends.
func (f *roFleet) observe(t *testing.T, brokerURL string) {
	t.Helper()
	opts := pmqtt.NewClientOptions().AddBroker(brokerURL).
		SetClientID(fmt.Sprintf("rollout-observer-%d", roObservers.Add(1))).
		SetAutoReconnect(false).SetCleanSession(true).SetProtocolVersion(4).SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ pmqtt.Client, m pmqtt.Message) { f.add(m.Topic(), string(m.Payload()), m.Retained()) })
	c := pmqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(roWait) || tok.Error() != nil {
		t.Fatalf("observer: connect %s: %v", brokerURL, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	if tok := c.Subscribe(roTopics.AllFilter(), 1, nil); !tok.WaitTimeout(roWait) || tok.Error() != nil {
		t.Fatalf("observer: subscribe: %v", tok.Error())
	}
}

// add records one message (on Paho's goroutine, in order).
func (f *roFleet) add(topic, payload string, retained bool) {
	id, k, ok := roTopics.Parse(topic)
	if !ok {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if k == devices.KindCount {
		f.counts[id]++
	} else {
		f.msgs = append(f.msgs, roMsg{id: id, kind: k, payload: payload, retained: retained})
		f.latest[topic] = payload
	}
	f.notifyL()
}

// listen reads /ws as ada (by her token) and records every rollout event
// until the control plane goes or the test ends.
func (f *roFleet) listen(t *testing.T, wsURL, token string) {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Authorization": {"Bearer " + token}})
	if err != nil {
		t.Fatalf("/ws: %v", err)
	}
	done := make(chan struct{})
	go func() { // ends when the connection fails: closed at cleanup, or by the control plane
		defer close(done)
		for {
			_, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			f.addFrame(data)
		}
	}()
	t.Cleanup(func() {
		c.Close()
		<-done
	})
}

// addFrame records the rollout events of one /ws frame (an event or an
// array of them).
func (f *roFleet) addFrame(data []byte) {
	var raws []json.RawMessage
	if len(data) > 0 && data[0] == '[' {
		if json.Unmarshal(data, &raws) != nil {
			return
		}
	} else {
		raws = append(raws, data)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, raw := range raws {
		var v roView
		if json.Unmarshal(raw, &v) != nil || v.Event != "rollout" {
			continue
		}
		f.rollouts[v.ID] = append(f.rollouts[v.ID], v)
		f.notifyL()
	}
}

// wait waits until cond, called with mu held after every change, holds.
func (f *roFleet) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(roWait)
	for {
		f.mu.Lock()
		ok := cond()
		ch := f.changed
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("not within %v: %s\n%s", roWait, what, f.tail(40))
		}
	}
}

// tail describes the last n messages, for a failure.
func (f *roFleet) tail(n int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, m := range f.msgs[max(0, len(f.msgs)-n):] {
		fmt.Fprintf(&b, "  %s %s %s\n", m.id, m.kind, m.payload)
	}
	return b.String()
}

// latestL is the latest payload board id sent on kind; mu is held.
func (f *roFleet) latestL(id string, k devices.Kind) string {
	return f.latest[roTopics.Topic(id, k)]
}

// firmwareL is board id's latest info firmware; mu is held.
func (f *roFleet) firmwareL(id string) string {
	info, err := devices.ParseInfo([]byte(f.latestL(id, devices.KindInfo)))
	if err != nil {
		return ""
	}
	return info.Firmware
}

// reportsL returns the update reports board id sent for job, in order
// (replays of the retained one at a subscription excluded), with their
// places in msgs; mu is held.
func (f *roFleet) reportsL(id, job string) (reps []devices.UpdateReport, at []int) {
	for i, m := range f.msgs {
		if m.id != id || m.kind != devices.KindUpdate || m.retained {
			continue
		}
		rep, err := devices.ParseUpdateReport([]byte(m.payload))
		if err == nil && rep.Job == job {
			reps, at = append(reps, rep), append(at, i)
		}
	}
	return reps, at
}

// jobsL returns the update jobs sent to board id, in order, with their
// places in msgs; mu is held.
func (f *roFleet) jobsL(id string) (jobs []devices.UpdateCommand, at []int) {
	for i, m := range f.msgs {
		if m.id != id || m.kind != devices.KindUpdateSet {
			continue
		}
		cmd, err := devices.ParseUpdateCommand([]byte(m.payload))
		if err == nil {
			jobs, at = append(jobs, cmd), append(at, i)
		}
	}
	return jobs, at
}

// report waits for board id's update report of job in state, and fails
// the test when the job ends in another state.
func (f *roFleet) report(t *testing.T, id, job string, state devices.UpdateState) devices.UpdateReport {
	t.Helper()
	var got devices.UpdateReport
	f.wait(t, fmt.Sprintf("board %s: update %s %s", id, job, state), func() bool {
		reps, _ := f.reportsL(id, job)
		for _, rep := range reps {
			if rep.State == state || rep.State.Final() {
				got = rep
				return true
			}
		}
		return false
	})
	if got.State != state {
		t.Fatalf("board %s: update %s ended %+v, want %s", id, job, got, state)
	}
	return got
}

// ledOnL returns the last LED state board id published while its info
// said firmware (its led follows its info at every connection); mu is
// held.
func (f *roFleet) ledOnL(id, firmware string) string {
	current, led := "", ""
	for _, m := range f.msgs {
		if m.id != id || m.retained {
			continue
		}
		switch m.kind {
		case devices.KindInfo:
			if info, err := devices.ParseInfo([]byte(m.payload)); err == nil {
				current = info.Firmware
			}
		case devices.KindLED:
			if current == firmware {
				led = m.payload
			}
		}
	}
	return led
}

// counting waits until board id sends two more counts: it runs.
func (f *roFleet) counting(t *testing.T, id string) {
	t.Helper()
	f.mu.Lock()
	n := f.counts[id]
	f.mu.Unlock()
	f.wait(t, "board "+id+" counting", func() bool { return f.counts[id] >= n+2 })
}

// keptRunning checks that board id was refused job before anything
// changed: no report of it beyond verifying, never offline since it was
// sent, its info still devicefw version, and it still counts.
func (f *roFleet) keptRunning(t *testing.T, id, job, version string) {
	t.Helper()
	f.mu.Lock()
	jobs, at := f.jobsL(id)
	since := -1
	for i, j := range jobs {
		if j.Job == job {
			since = at[i]
		}
	}
	if since < 0 {
		t.Errorf("board %s: job %s never seen on MQTT", id, job)
		since = 0
	}
	for _, m := range f.msgs[since:] {
		if m.id != id {
			continue
		}
		if m.kind == devices.KindStatus && m.payload == devices.Offline {
			t.Errorf("board %s went offline after job %s", id, job)
		}
		if rep, err := devices.ParseUpdateReport([]byte(m.payload)); m.kind == devices.KindUpdate && err == nil && rep.Job == job {
			switch rep.State {
			case devices.UpdateInstalling, devices.UpdateRestarting, devices.UpdateTrial, devices.UpdateConfirmed, devices.UpdateRolledBack:
				t.Errorf("board %s: job %s went as far as %s, want it refused before anything changed", id, job, m.payload)
			}
		}
	}
	if fw := f.firmwareL(id); fw != "devicefw "+version {
		t.Errorf("board %s runs %q, want devicefw %s", id, fw, version)
	}
	f.mu.Unlock()
	f.counting(t, id)
}

// backOn waits until board id runs devicefw version again after job: an
// info with that firmware after the job's restarting report (if it had
// one; else its info never changed), then counts.
func (f *roFleet) backOn(t *testing.T, id, job, version string) {
	t.Helper()
	want := "devicefw " + version
	f.wait(t, fmt.Sprintf("board %s back on %s after job %s", id, want, job), func() bool {
		reps, at := f.reportsL(id, job)
		i := slices.IndexFunc(reps, func(r devices.UpdateReport) bool { return r.State == devices.UpdateRestarting })
		if i < 0 {
			return f.firmwareL(id) == want
		}
		for _, m := range f.msgs[at[i]:] {
			if m.id == id && m.kind == devices.KindInfo && !m.retained {
				if info, err := devices.ParseInfo([]byte(m.payload)); err == nil && info.Firmware == want {
					return f.latestL(id, devices.KindStatus) == devices.Online
				}
			}
		}
		return false
	})
	f.counting(t, id)
}

// waitRollout waits until the latest /ws event of rollout id satisfies
// cond, and returns it.
func (f *roFleet) waitRollout(t *testing.T, id, what string, cond func(roView) bool) roView {
	t.Helper()
	var got roView
	f.wait(t, "rollout "+id+" "+what, func() bool {
		evs := f.rollouts[id]
		if len(evs) == 0 || !cond(evs[len(evs)-1]) {
			return false
		}
		got = evs[len(evs)-1]
		return true
	})
	return got
}

// job waits until rollout id has sent board a job, and returns the job.
func (f *roFleet) job(t *testing.T, id, board string) string {
	t.Helper()
	v := f.waitRollout(t, id, "sending board "+board+" its job", func(v roView) bool {
		b := v.board(board)
		return b.Job != ""
	})
	b := v.board(board)
	return b.Job
}

// checkWaveOrder checks every /ws event of rollout id: no board of a wave
// has a job while an earlier wave is not done. It reports the first event
// that breaks the rule.
func (f *roFleet) checkWaveOrder(t *testing.T, id string) {
	t.Helper()
	f.mu.Lock()
	evs := slices.Clone(f.rollouts[id])
	f.mu.Unlock()
	if len(evs) == 0 {
		t.Errorf("rollout %s: no event on /ws", id)
	}
	for _, v := range evs {
		for k, w := range v.Waves {
			if !slices.ContainsFunc(w.Boards, func(b roPlaced) bool { return b.Job != "" }) {
				continue
			}
			for j := range k {
				if v.Waves[j].State != string(rollout.WaveDone) {
					t.Errorf("rollout %s at %s: wave %d has jobs while wave %d is %s", id, v.Updated, k+1, j+1, v.Waves[j].State)
					return
				}
			}
		}
	}
}

// checkSentAfterConfirmed checks on MQTT that the first job to each board
// of a wave came after every board of the wave before had confirmed.
func (f *roFleet) checkSentAfterConfirmed(t *testing.T, v roView) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := 1; k < len(v.Waves); k++ {
		for _, prev := range v.Waves[k-1].Boards {
			reps, at := f.reportsL(prev.ID, prev.Job)
			i := slices.IndexFunc(reps, func(r devices.UpdateReport) bool { return r.State == devices.UpdateConfirmed })
			if i < 0 {
				t.Errorf("wave %d: board %s never confirmed %s on MQTT", k, prev.ID, prev.Job)
				continue
			}
			for _, b := range v.Waves[k].Boards {
				if _, sent := f.jobsL(b.ID); len(sent) > 0 && sent[0] < at[i] {
					t.Errorf("wave %d: board %s was sent its job before board %s of wave %d confirmed", k+1, b.ID, prev.ID, k)
				}
			}
		}
	}
}

// checkUpdated checks that every board of ids is updated in v, confirmed
// its job (the only one it was sent) on MQTT running version, announces
// devicefw version, and (where leds names it) kept its LED.
func (f *roFleet) checkUpdated(t *testing.T, v roView, ids []string, version string, leds map[string]string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		b := v.board(id)
		if b.State != string(rollout.BoardUpdated) || b.Update != string(devices.UpdateConfirmed) {
			t.Errorf("rollout %s: board %s is %s (update %q, error %q), want updated after confirmed", v.ID, id, b.State, b.Update, b.Error)
		}
		if jobs, _ := f.jobsL(id); len(jobs) != 1 || jobs[0].Job != b.Job || jobs[0].Version != version {
			t.Errorf("board %s: jobs %+v on MQTT, want only %s installing %s", id, jobs, b.Job, version)
		}
		reps, _ := f.reportsL(id, b.Job)
		if len(reps) == 0 || reps[len(reps)-1].State != devices.UpdateConfirmed || reps[len(reps)-1].Running != version {
			t.Errorf("board %s: reports of %s %+v, want the last confirmed, running %s", id, b.Job, reps, version)
		}
		if fw := f.firmwareL(id); fw != "devicefw "+version {
			t.Errorf("board %s: info firmware %q, want devicefw %s", id, fw, version)
		}
		if want, ok := leds[id]; ok {
			if got := f.ledOnL(id, "devicefw "+version); got != want {
				t.Errorf("board %s: LED %q on devicefw %s, want %q as before the update", id, got, version, want)
			}
		}
	}
}

// checkUntouched checks that no board of ids was sent anything or
// reported any update, and that each is pending in v.
func (f *roFleet) checkUntouched(t *testing.T, v roView, ids []string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		if b := v.board(id); b.State != string(rollout.BoardPending) || b.Job != "" {
			t.Errorf("rollout %s: board %s is %+v, want pending without a job", v.ID, id, b)
		}
		for _, m := range f.msgs {
			if m.id == id && (m.kind == devices.KindUpdateSet || m.kind == devices.KindUpdate) {
				t.Errorf("board %s: %s %s, want nothing about updates", id, m.kind, m.payload)
			}
		}
	}
}

// roIDs returns n board ids prefix-01 …
func roIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%02d", prefix, i+1)
	}
	return ids
}

// roSpec writes a POST /api/rollouts body.
func roSpec(sha string, ids []string, waves, health string, maxFailures int) string {
	target, _ := json.Marshal(ids)
	return fmt.Sprintf(`{"firmware":%q,"target":{"ids":%s},"waves":%s,"health_window":%q,"max_failures":%d}`,
		sha, target, waves, health, maxFailures)
}

// TestRolloutTwelveBoardsInWaves: twelve devicefw processes on 1.0, their
// LEDs a mix of on and off, take 1.1 in waves 1 / 50 % / 100 % with a
// health window of 1 s: the rollout is done, every board confirmed and
// announces devicefw 1.1 with its LED as it was, each was sent one job,
// the canary is the deterministic one, and no wave's board was sent its
// job before the wave before was done (on /ws) and had confirmed (on
// MQTT).
func TestRolloutTwelveBoardsInWaves(t *testing.T) {
	t.Parallel()
	r := newRoRig(t)
	ids := roIDs("wave", 12)
	r.startBoards(t, r.v10, r.key, ids)
	r.waitReady(t, "1.0", ids)
	leds := map[string]string{}
	for i, id := range ids {
		leds[id] = [...]string{roOn, roOn, roOff}[i%3]
		r.setLED(t, id, leds[id])
	}
	r.fleet.mu.Lock()
	for _, id := range ids {
		if info, _ := devices.ParseInfo([]byte(r.fleet.latestL(id, devices.KindInfo))); info.Platform != roPlatform {
			t.Errorf("board %s: info platform %q, want %s", id, info.Platform, roPlatform)
		}
	}
	r.fleet.mu.Unlock()

	sha := r.upload(t, roRead(t, r.v11), "1.1", roPlatform)
	v := r.startRollout(t, fmt.Sprintf(`{"firmware":%q,"target":{"all":true},"waves":[1,"50%%","100%%"],"health_window":"1s","max_failures":0}`, sha))
	order := rollout.Order(ids)
	if len(v.Waves) != 3 || !slices.Equal(v.ids(0), order[:1]) || !slices.Equal(v.ids(1), order[1:6]) || !slices.Equal(v.ids(2), order[6:]) {
		t.Fatalf("waves %+v, want %v, %v, %v (canary order)", v.Waves, order[:1], order[1:6], order[6:])
	}
	done := r.fleet.waitRollout(t, v.ID, "done", func(v roView) bool { return v.State == string(rollout.Done) })
	got := r.getRollout(t, v.ID)
	if got.State != string(rollout.Done) || got.Counts[string(rollout.BoardUpdated)] != 12 || len(got.Counts) != 1 {
		t.Errorf("GET the rollout: %s, counts %v; want done with 12 updated", got.State, got.Counts)
	}
	r.fleet.checkUpdated(t, got, ids, "1.1", leds)
	r.fleet.checkWaveOrder(t, v.ID)
	r.fleet.checkSentAfterConfirmed(t, done)
	// Jobs are numbered in the order they were sent: wave by wave.
	earlier := 0 // the highest job number of the earlier waves
	for i, w := range got.Waves {
		highest := earlier
		for _, b := range w.Boards {
			n := roJobNumber(v.ID, b.Job)
			if n <= earlier {
				t.Errorf("wave %d: board %s has job %s, want a number above the earlier waves' %d", i+1, b.ID, b.Job, earlier)
			}
			highest = max(highest, n)
		}
		earlier = highest
	}
}

// TestRolloutBadBuildHaltsAtCanary: a build that exits at start and one
// that never connects, each rolled out to four boards with max_failures
// 0: the rollout halts at the canary, which reports rolled_back (crashed,
// never connected) and runs devicefw 1.0 again with its LED as it was;
// no other board is sent anything.
func TestRolloutBadBuildHaltsAtCanary(t *testing.T) {
	t.Parallel()
	r := newRoRig(t)
	for _, tt := range []struct {
		build, word string
	}{
		{"crash", devices.UpdateErrCrashed},
		{"hang", devices.UpdateErrNeverConn},
	} {
		t.Run(tt.build, func(t *testing.T) {
			t.Parallel()
			ids := roIDs(tt.build, 4)
			r.startBoards(t, r.v10, r.key, ids)
			r.waitReady(t, "1.0", ids)
			canary := rollout.Order(ids)[0]
			r.setLED(t, canary, roOn)
			sha := r.upload(t, roBuild(t, tt.build), "1.1-"+tt.build, roPlatform)
			// A health window longer than the deadline: the canary's own
			// report fails it, not its time offline while the build runs.
			v := r.startRollout(t, roSpec(sha, ids, `[1,"100%"]`, "30s", 0))
			if !slices.Equal(v.ids(0), []string{canary}) {
				t.Fatalf("first wave %v, want the canary %s", v.ids(0), canary)
			}
			r.fleet.waitRollout(t, v.ID, "halted", func(v roView) bool { return v.State == string(rollout.Halted) })
			got := r.getRollout(t, v.ID)
			b := got.board(canary)
			if got.State != string(rollout.Halted) || got.Reason == "" || !roFailedWith(b, devices.UpdateRolledBack, tt.word) {
				t.Errorf("rollout %s (%s), canary %+v; want halted, the canary failed rolled_back: %s", got.State, got.Reason, b, tt.word)
			}
			rep := r.fleet.report(t, canary, b.Job, devices.UpdateRolledBack)
			if !devices.UpdateErrorIs(rep.Error, tt.word) || rep.Running != "1.0" {
				t.Errorf("canary's report %+v, want rolled_back %s, running 1.0", rep, tt.word)
			}
			r.fleet.backOn(t, canary, b.Job, "1.0")
			r.fleet.mu.Lock()
			if led := r.fleet.latestL(canary, devices.KindLED); led != roOn {
				t.Errorf("canary's LED after the rollback: %q, want ON", led)
			}
			r.fleet.mu.Unlock()
			var others []string
			for _, id := range ids {
				if id != canary {
					others = append(others, id)
				}
			}
			r.fleet.checkUntouched(t, got, others)
		})
	}
}

// TestRolloutRefusedBeforeAnythingChanges: each way a build is refused,
// with the contract's error word, while the board keeps running 1.0: no
// key, another key, a file tampered with in the firmware directory after
// upload (same size), an executable for another machine under this
// platform's label; and a build labelled for another platform is never
// sent (skipped, with the reason).
func TestRolloutRefusedBeforeAnythingChanges(t *testing.T) {
	t.Parallel()
	r := newRoRig(t)
	_, otherKey, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	otherPub := base64.StdEncoding.EncodeToString(otherKey.Public().(ed25519.PublicKey))
	boards := r.startBoards(t, r.v10, r.key, []string{"tamper-1", "arch-1", "label-1"})
	boards["nokey-1"] = r.startBoards(t, r.v10, "", []string{"nokey-1"})["nokey-1"]
	boards["otherkey-1"] = r.startBoards(t, r.v10, otherPub, []string{"otherkey-1"})["otherkey-1"]
	var ids []string
	for id := range boards {
		ids = append(ids, id)
	}
	r.waitReady(t, "1.0", ids)

	good := r.upload(t, roRead(t, r.v11), "1.1", roPlatform)
	tampered := r.upload(t, roBuild(t, "hang"), "1.2", roPlatform)
	file := filepath.Join(filepath.Dir(r.storage), "firmware", tampered)
	data := roRead(t, file)
	for i := range data {
		data[i] ^= 0xff
	}
	if err := os.Chmod(file, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	otherArch := map[string]string{"amd64": "arm64"}[runtime.GOARCH]
	if otherArch == "" {
		otherArch = "amd64"
	}
	foreign := r.upload(t, roBuild(t, "crash", "GOOS=linux", "GOARCH="+otherArch, "CGO_ENABLED=0"), "1.3", roPlatform)
	otherPlatform := "linux/" + otherArch
	elsewhere := r.upload(t, roBuild(t, "crash"), "1.4", otherPlatform)

	for _, tt := range []struct {
		board, sha, word string
	}{
		{"nokey-1", good, devices.UpdateErrNoKey},
		{"otherkey-1", good, devices.UpdateErrSignature},
		{"tamper-1", tampered, devices.UpdateErrChecksum},
		{"arch-1", foreign, devices.UpdateErrPlatform},
	} {
		v := r.startRollout(t, roSpec(tt.sha, []string{tt.board}, `["100%"]`, "30s", 0))
		got := r.fleet.waitRollout(t, v.ID, "halted", func(v roView) bool { return v.State == string(rollout.Halted) })
		b := got.board(tt.board)
		if !roFailedWith(b, devices.UpdateFailed, tt.word) {
			t.Errorf("%s: rollout board %+v, want failed: %s", tt.board, b, tt.word)
		}
		rep := r.fleet.report(t, tt.board, b.Job, devices.UpdateFailed)
		if !devices.UpdateErrorIs(rep.Error, tt.word) || rep.Running != "1.0" {
			t.Errorf("%s: report %+v, want failed %q, running 1.0", tt.board, rep, tt.word)
		}
		r.fleet.keptRunning(t, tt.board, b.Job, "1.0")
		if got := boards[tt.board].builds(t); len(got) != 0 {
			t.Errorf("%s: builds kept %v, want none", tt.board, got)
		}
	}

	v := r.startRollout(t, roSpec(elsewhere, []string{"label-1"}, `["100%"]`, "30s", 0))
	b := v.board("label-1")
	if v.State != string(rollout.Done) || b.State != string(rollout.BoardSkipped) || !strings.Contains(b.Error, otherPlatform) || !strings.Contains(b.Error, roPlatform) {
		t.Errorf("a build for %s: rollout %s, board %+v; want done at once, the board skipped naming both platforms", otherPlatform, v.State, b)
	}
	// Nothing was sent: the next job the board gets is the one it reports
	// first (the rollouts are sent in order).
	last := r.startRollout(t, roSpec(good, []string{"label-1"}, `["100%"]`, "30s", 0))
	job := r.fleet.job(t, last.ID, "label-1")
	r.fleet.report(t, "label-1", job, devices.UpdateDownloading)
	r.fleet.mu.Lock()
	if jobs, _ := r.fleet.jobsL("label-1"); len(jobs) != 1 || jobs[0].Job != job {
		t.Errorf("label-1 was sent %+v, want only %s (nothing for the build of another platform)", jobs, job)
	}
	r.fleet.mu.Unlock()
}

// TestRolloutGoesOnAfterControlPlaneKilled: the control plane is killed
// with SIGKILL while the second of three waves runs, and started again on
// the same storage and config: the rollout goes on to done, every board
// on 1.1, each sent exactly one job across the restart.
func TestRolloutGoesOnAfterControlPlaneKilled(t *testing.T) {
	t.Parallel()
	r := newRoRig(t)
	ids := roIDs("cpkill", 4)
	// A deadline that outlasts the restart: the builds on trial then
	// reconnect and confirm, whatever their reconnect backoff.
	r.startBoards(t, r.v10, r.key, ids, "--update-deadline", "60s")
	r.waitReady(t, "1.0", ids)
	sha := r.upload(t, roRead(t, r.v11), "1.1", roPlatform)
	// The health window covers the boards' reconnection to the new
	// process: they count as offline from its start until they are back.
	v := r.startRollout(t, roSpec(sha, ids, `[1,"50%","100%"]`, "3s", 0))
	mid := r.fleet.waitRollout(t, v.ID, "in its second wave", func(v roView) bool {
		return len(v.Waves) == 3 && v.Waves[0].State == string(rollout.WaveDone) && v.Waves[1].Boards[0].Job != ""
	})
	second := mid.Waves[1].Boards[0]
	// Killed once the board has the job (a job saved but not yet
	// published when the process dies is lost: rollout.AnswerTimeout).
	r.fleet.wait(t, "the second wave's board at work", func() bool {
		reps, _ := r.fleet.reportsL(second.ID, second.Job)
		return len(reps) > 0
	})
	r.kill9(t)
	r.start(t)
	if !strings.Contains(r.cp.logs(), "rollout goes on") || !strings.Contains(r.cp.logs(), v.ID) {
		t.Errorf("the restarted control plane does not log that rollout %s goes on:\n%s", v.ID, r.cp.logs())
	}
	done := r.fleet.waitRollout(t, v.ID, "done", func(v roView) bool { return v.State == string(rollout.Done) })
	got := r.getRollout(t, v.ID)
	if got.State != string(rollout.Done) || got.Counts[string(rollout.BoardUpdated)] != len(ids) {
		t.Errorf("after the restart: rollout %s, counts %v; want done, all updated", got.State, got.Counts)
	}
	var nums []int
	for _, w := range got.Waves {
		for _, b := range w.Boards {
			nums = append(nums, roJobNumber(v.ID, b.Job))
		}
	}
	slices.Sort(nums)
	if !slices.Equal(nums, []int{1, 2, 3, 4}) {
		t.Errorf("job numbers %v, want 1-4: one job per board, none sent twice", nums)
	}
	r.fleet.checkWaveOrder(t, v.ID)
	r.fleet.mu.Lock()
	for _, id := range ids {
		if fw := r.fleet.firmwareL(id); fw != "devicefw 1.1" {
			t.Errorf("board %s runs %q, want devicefw 1.1", id, fw)
		}
		b := done.board(id)
		if b.State != string(rollout.BoardUpdated) {
			t.Errorf("board %s: %+v, want updated", id, b)
		}
	}
	r.fleet.mu.Unlock()
}

// TestRolloutBoardKilledOnTrial: the canary's devicefw is killed with
// SIGKILL while its new build is on trial, and started again by hand on
// the same state directory: it runs 1.0 (a working build) with its LED as
// it was and reports rolled_back interrupted, which the rollout records
// as the canary's failure; with max_failures 1 the rollout goes on and
// the other boards take 1.1.
func TestRolloutBoardKilledOnTrial(t *testing.T) {
	t.Parallel()
	r := newRoRig(t)
	ids := roIDs("trialkill", 3)
	order := rollout.Order(ids)
	canary := order[0]
	// The canary's trial outlasts the test, so that the kill lands in it.
	boards := r.startBoards(t, r.v10, r.key, order[:1], "--update-trial", "10m", "--update-deadline", "20m")
	r.startBoards(t, r.v10, r.key, order[1:])
	r.waitReady(t, "1.0", ids)
	r.setLED(t, canary, roOn)
	sha := r.upload(t, roRead(t, r.v11), "1.1", roPlatform)
	v := r.startRollout(t, roSpec(sha, ids, `[1,"100%"]`, "5s", 1))
	job := r.fleet.job(t, v.ID, canary)
	r.fleet.report(t, canary, job, devices.UpdateTrial)
	p := boards[canary].p
	m := regexp.MustCompile(`msg="started the new build on trial".* pid=(\d+)`).FindStringSubmatch(p.Log())
	if m == nil {
		t.Fatalf("no pid of the new build in the canary's log:\n%s", p.Log())
	}
	child, _ := strconv.Atoi(m[1])
	p.Kill()
	testutil.WaitFor(t, roWait, testutil.Until("the new build to end with its supervisor", func() bool { return testutil.Gone(child) }))

	// Started again as its service manager would, on the same state
	// directory, with the usual trial.
	if err := r.devicefw(r.v10, canary, r.key, boards[canary].state).start(t); err != nil {
		t.Fatal(err)
	}
	rep := r.fleet.report(t, canary, job, devices.UpdateRolledBack)
	if !devices.UpdateErrorIs(rep.Error, devices.UpdateErrInterrupted) || rep.Running != "1.0" {
		t.Errorf("canary after the restart: %+v, want rolled_back interrupted, running 1.0", rep)
	}
	r.fleet.backOn(t, canary, job, "1.0")
	done := r.fleet.waitRollout(t, v.ID, "done", func(v roView) bool { return v.State == string(rollout.Done) })
	got := r.getRollout(t, v.ID)
	if cb := got.board(canary); got.State != string(rollout.Done) || !roFailedWith(cb, devices.UpdateRolledBack, devices.UpdateErrInterrupted) {
		t.Errorf("rollout %s, canary %+v; want done, the canary failed rolled_back: interrupted", got.State, cb)
	}
	r.fleet.checkUpdated(t, got, order[1:], "1.1", nil)
	r.fleet.checkWaveOrder(t, done.ID)
	r.fleet.mu.Lock()
	if fw, led := r.fleet.firmwareL(canary), r.fleet.latestL(canary, devices.KindLED); fw != "devicefw 1.0" || led != roOn {
		t.Errorf("canary runs %q with LED %q, want devicefw 1.0 with ON", fw, led)
	}
	r.fleet.mu.Unlock()
}

// TestRolloutSimulatedBoards: simulated boards (devicefw --sim 6) take a
// build in waves and end done; with each --sim-update-fail mode the
// rollout halts at its canary with the mode's error, the canary runs 1.0
// again, and the other five are sent nothing.
func TestRolloutSimulatedBoards(t *testing.T) {
	t.Parallel()
	r := newRoRig(t)
	build := make([]byte, 1<<20)
	rand.Read(build)
	sha := r.upload(t, build, "2.0", devices.PlatformSim)
	fails := []struct {
		mode  string
		state devices.UpdateState
		word  string
	}{
		{"download", devices.UpdateFailed, devices.UpdateErrDownload},
		{"verify", devices.UpdateFailed, devices.UpdateErrChecksum},
		{"start", devices.UpdateRolledBack, devices.UpdateErrCrashed},
		{"confirm", devices.UpdateRolledBack, roNotConfirmed},
	}
	ok := r.startSim(t, "sim-ok", 6)
	fleets := map[string][]string{}
	for _, f := range fails {
		fleets[f.mode] = r.startSim(t, "sim-"+f.mode, 6, "--sim-update-fail", f.mode)
	}
	r.waitReady(t, "1.0", ok)
	for _, ids := range fleets {
		r.waitReady(t, "1.0", ids)
	}

	good := r.startRollout(t, roSpec(sha, ok, `[1,"50%","100%"]`, "1s", 0))
	halting := map[string]roView{}
	for _, f := range fails {
		halting[f.mode] = r.startRollout(t, roSpec(sha, fleets[f.mode], `[1,"50%","100%"]`, "30s", 0))
	}
	for _, f := range fails {
		v := r.fleet.waitRollout(t, halting[f.mode].ID, f.mode+": halted", func(v roView) bool { return v.State == string(rollout.Halted) })
		canary := v.Waves[0].Boards[0]
		if canary.ID != rollout.Order(fleets[f.mode])[0] || !roFailedWith(canary, f.state, f.word) {
			t.Errorf("%s: canary %+v, want %s failed %s: %s", f.mode, canary, rollout.Order(fleets[f.mode])[0], f.state, f.word)
		}
		rep := r.fleet.report(t, canary.ID, canary.Job, f.state)
		if !devices.UpdateErrorIs(rep.Error, f.word) {
			t.Errorf("%s: canary's report %+v, want error %s", f.mode, rep, f.word)
		}
		r.fleet.backOn(t, canary.ID, canary.Job, "1.0")
		var others []string
		for _, id := range fleets[f.mode] {
			if id != canary.ID {
				others = append(others, id)
			}
		}
		r.fleet.checkUntouched(t, r.getRollout(t, v.ID), others)
	}
	r.fleet.waitRollout(t, good.ID, "done", func(v roView) bool { return v.State == string(rollout.Done) })
	got := r.getRollout(t, good.ID)
	r.fleet.checkUpdated(t, got, ok, "2.0", nil)
	r.fleet.checkWaveOrder(t, good.ID)
	r.fleet.checkSentAfterConfirmed(t, got)
}
