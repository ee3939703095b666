package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"switchyard/devices"
	"switchyard/internal/testutil"
	"switchyard/rollout"
)

// takeoverLimit is the contract's bound on a takeover: another control
// plane drives the rollouts within 30 s of the primary's death.
const takeoverLimit = 30 * time.Second

// pgCluster is two control planes in external mode on one Mosquitto and
// one PostgreSQL database, sharing a storage directory (the update key,
// the session key and the firmware files: see docs/scale-out.md).
type pgCluster struct {
	mq    *testutil.Mosquitto
	token string // ada's (admin) API token, on both
	cfgs  [2]string
	cps   [2]*proc
}

func newPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	db := testutil.StartPostgres(t)
	c := &pgCluster{mq: testutil.StartMosquitto(t, false)}
	secret := make([]byte, 16)
	rand.Read(secret)
	c.token = hex.EncodeToString(secret)
	digest := sha256.Sum256([]byte(c.token))
	dir := t.TempDir()
	for i := range c.cfgs {
		port := testutil.FreePort(t)
		c.cfgs[i] = filepath.Join(dir, fmt.Sprintf("config-%d.yaml", i))
		body := fmt.Sprintf(`mqtt: {mode: external, url: 'tcp://127.0.0.1:%s'}
http: {listen: '127.0.0.1:%s', public_url: 'http://127.0.0.1:%s'}
database: {url: %q}
storage: {path: %q}
log: {level: info}
auth:
  users:
    - {name: ada, role: admin, tokens: [%q]}
`, c.mq.Port, port, port, db, filepath.Join(dir, "data", fmt.Sprintf("cp-%d.log", i)), hex.EncodeToString(digest[:]))
		if err := os.WriteFile(c.cfgs[i], []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func (c *pgCluster) api(t *testing.T, i int, method, path string, body []byte) (int, []byte) {
	t.Helper()
	return bearerRequest(t, c.cps[i].http, c.token, method, path, body)
}

var primaryGauge = regexp.MustCompile(`(?m)^switchyard_primary (\d)$`)

// primary reads control plane i's gauge switchyard_primary (-1 when it
// does not answer).
func (c *pgCluster) primary(t *testing.T, i int) int {
	t.Helper()
	code, body := c.api(t, i, "GET", "/metrics", nil)
	m := primaryGauge.FindSubmatch(body)
	if code != http.StatusOK || m == nil {
		return -1
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// waitBoards waits until control plane i shows every board of ids online
// on devicefw version. No event says when the API has a board's
// messages: it polls.
func (c *pgCluster) waitBoards(t *testing.T, i int, version string, ids []string) {
	t.Helper()
	testutil.WaitFor(t, roWait, func() error {
		code, body := c.api(t, i, "GET", "/api/devices", nil)
		var ds []roDevice
		if code != http.StatusOK || json.Unmarshal(body, &ds) != nil {
			return fmt.Errorf("GET /api/devices: %d %s", code, body)
		}
		for _, id := range ids {
			j := slices.IndexFunc(ds, func(d roDevice) bool { return d.ID == id })
			if j < 0 || !ds[j].Online || ds[j].Info.Firmware != "devicefw "+version {
				return fmt.Errorf("control plane %d: board %s not online on devicefw %s", i, id, version)
			}
		}
		return nil
	})
}

// TestTwoControlPlanesOnePostgres runs two control planes on one
// PostgreSQL database and one Mosquitto: A, started first, is the
// primary. A rollout started on B (a follower) is driven by A, paused and
// resumed through B; a tag set on A shows on B. A is killed with SIGKILL
// in the middle of the rollout: B takes over within 30 s and finishes it,
// serving the build from the shared firmware directory; an MQTT observer
// of the board topics sees no board sent a job twice, and the history has
// each board's online once per connection.
func TestTwoControlPlanesOnePostgres(t *testing.T) {
	t.Parallel()
	c := newPGCluster(t)
	const a, b = 0, 1
	c.cps[a] = start(t, c.cfgs[a])
	c.cps[b] = start(t, c.cfgs[b])
	if got := c.primary(t, a); got != 1 {
		t.Fatalf("A (started first): switchyard_primary %d, want 1\n%s", got, c.cps[a].logs())
	}
	if got := c.primary(t, b); got != 0 {
		t.Fatalf("B: switchyard_primary %d, want 0\n%s", got, c.cps[b].logs())
	}
	if !strings.Contains(c.cps[b].logs(), "following: another control plane is the primary") {
		t.Errorf("B's logs do not say it follows:\n%s", c.cps[b].logs())
	}

	// The observer sees every board message on the broker; rollout
	// events come from B's /ws, the control plane that stays.
	fleet := newRoFleet()
	brokerURL := "tcp://127.0.0.1:" + c.mq.Port
	fleet.observe(t, brokerURL)
	fleet.listen(t, "ws"+strings.TrimPrefix(c.cps[b].http, "http")+"/ws", c.token)
	code, body := c.api(t, b, "GET", "/api/update-key", nil)
	var key struct {
		PublicKey string `json:"public_key"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &key) != nil || key.PublicKey == "" {
		t.Fatalf("GET /api/update-key: %d %s", code, body)
	}
	const n = 4
	sim := &roBoard{argv: []string{roDevicefw(t, "1.0"), "--broker", brokerURL, "--id", "pg", "--sim", strconv.Itoa(n),
		"--interval", roInterval, "--state-dir", t.TempDir(), "--update-trial", roTrial, "--update-deadline", roDeadline,
		"--update-key", key.PublicKey}}
	if err := sim.start(t); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("pg-%d", i+1)
	}
	c.waitBoards(t, a, "1.0", ids)
	c.waitBoards(t, b, "1.0", ids)

	// A tag set on A shows on B (it reloads names and tags every 5 s).
	if code, body := c.api(t, a, "PATCH", "/api/devices/pg-1", []byte(`{"tags":["blue"]}`)); code != http.StatusOK {
		t.Fatalf("PATCH on A: %d %s", code, body)
	}
	testutil.WaitFor(t, roWait, func() error {
		code, body := c.api(t, b, "GET", "/api/devices/pg-1", nil)
		if code != http.StatusOK || !strings.Contains(string(body), `"tags":["blue"]`) {
			return fmt.Errorf("B does not show pg-1's tag yet: %d %s", code, body)
		}
		return nil
	})

	// The build is uploaded on A; the rollout is started on B.
	build := make([]byte, 64<<10)
	rand.Read(build)
	code, body = c.api(t, a, "POST", "/api/firmware?version=2.0&platform="+devices.PlatformSim, build)
	var fw struct {
		SHA256 string `json:"sha256"`
	}
	if code != http.StatusCreated || json.Unmarshal(body, &fw) != nil {
		t.Fatalf("upload on A: %d %s", code, body)
	}
	code, body = c.api(t, b, "POST", "/api/rollouts", []byte(roSpec(fw.SHA256, ids, `[1,"100%"]`, "3s", 0)))
	var ro roView
	if code != http.StatusCreated || json.Unmarshal(body, &ro) != nil {
		t.Fatalf("POST /api/rollouts on B: %d %s", code, body)
	}
	canary := rollout.Order(ids)[0]
	// A, the primary, picks it up and sends the canary its job.
	fleet.wait(t, "the canary's job on MQTT", func() bool { jobs, _ := fleet.jobsL(canary); return len(jobs) > 0 })
	// Pause and resume through B: A applies them and B answers.
	for _, step := range []struct{ action, state string }{{"pause", "paused"}, {"resume", "running"}} {
		code, body := c.api(t, b, "POST", "/api/rollouts/"+ro.ID+"/"+step.action, nil)
		var v roView
		if code != http.StatusOK || json.Unmarshal(body, &v) != nil || v.State != step.state {
			t.Fatalf("%s on B: %d %s, want 200 %s", step.action, code, body, step.state)
		}
	}

	// A dies in the middle of the rollout (the canary updating, the other
	// boards waiting for it).
	if err := c.cps[a].p.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-c.cps[a].p.Exited()
	testutil.WaitFor(t, takeoverLimit+5*time.Second, func() error {
		if c.primary(t, b) != 1 {
			return fmt.Errorf("B is not the primary %v after A was killed", time.Since(killed).Round(time.Second))
		}
		return nil
	})
	if took := time.Since(killed); took > takeoverLimit {
		t.Errorf("B took over %v after A was killed, want within %v", took.Round(time.Second), takeoverLimit)
	}
	t.Logf("B took over %v after A was killed", time.Since(killed).Round(100*time.Millisecond))
	if !strings.Contains(c.cps[b].logs(), "this control plane is now the primary") {
		t.Errorf("B's logs have no line saying it became the primary:\n%s", c.cps[b].logs())
	}

	done := fleet.waitRollout(t, ro.ID, "finished", func(v roView) bool { return rollout.State(v.State).Finished() })
	if done.State != string(rollout.Done) {
		t.Fatalf("rollout %s, want done: %+v", done.State, done)
	}
	if done.Counts[string(rollout.BoardUpdated)] != n {
		t.Errorf("rollout done with counts %v, want %d updated", done.Counts, n)
	}
	// No board was sent a job twice: one update/set per board, each job
	// id once.
	seen := map[string]string{}
	fleet.mu.Lock()
	for _, id := range ids {
		jobs, _ := fleet.jobsL(id)
		if len(jobs) != 1 {
			t.Errorf("board %s was sent %d jobs %+v, want exactly 1", id, len(jobs), jobs)
		}
		for _, j := range jobs {
			if other, ok := seen[j.Job]; ok {
				t.Errorf("job %s sent to %s and %s", j.Job, other, id)
			}
			seen[j.Job] = id
			if id != canary && !strings.HasPrefix(j.URL, c.cps[b].http+"/firmware/") {
				t.Errorf("board %s's job (sent by B) downloads from %s, want B", id, j.URL)
			}
		}
	}
	fleet.mu.Unlock()
	// B serves the build A received, from the shared firmware directory.
	code, body = c.api(t, b, "GET", "/firmware/"+fw.SHA256, nil)
	if sum := sha256.Sum256(body); code != http.StatusOK || hex.EncodeToString(sum[:]) != fw.SHA256 {
		t.Errorf("GET /firmware/%s on B: %d, %d bytes of another build", fw.SHA256, code, len(body))
	}

	// The history has every board's online once per connection: the
	// online and offline events alternate, none recorded twice (by A and
	// by B).
	for _, id := range ids {
		code, body := c.api(t, b, "GET", "/api/devices/"+id+"/history?limit=1000", nil)
		var h struct {
			Events []histEvent `json:"events"`
		}
		if code != http.StatusOK || json.Unmarshal(body, &h) != nil {
			t.Fatalf("history of %s: %d %s", id, code, body)
		}
		last, onlines := "", 0
		for _, e := range h.Events { // newest first
			if e.Kind != "online" && e.Kind != "offline" {
				continue
			}
			if e.Kind == "online" {
				onlines++
			}
			if e.Kind == last {
				t.Errorf("board %s: two %s events in a row: %v", id, e.Kind, h.Events)
			}
			last = e.Kind
		}
		if onlines == 0 {
			t.Errorf("board %s: no online event in its history: %v", id, h.Events)
		}
	}
	c.cps[b].stop()
}
