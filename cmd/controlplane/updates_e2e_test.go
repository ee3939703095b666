package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/bcrypt"

	"switchyard/internal/fakeboard"
	"switchyard/internal/testutil"
)

// updatesConfig writes a config with storage under dir, anonymous access
// off and the users ada (admin), vera (viewer), board-1 and board-2
// (devices), each with the password "pw-<name>", on the ports given.
func updatesConfig(t *testing.T, dir, mqttPort, httpPort string) string {
	t.Helper()
	hash := func(name string) string {
		h, err := bcrypt.GenerateFromPassword([]byte("pw-"+name), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	cfg := filepath.Join(dir, "config.yaml")
	body := fmt.Sprintf(`
mqtt: {listen: '127.0.0.1:%s'}
http: {listen: '127.0.0.1:%s'}
storage: {path: %q}
log: {level: debug}
auth:
  anonymous: "off"
  users:
    - {name: ada, password_hash: %q, role: admin}
    - {name: vera, password_hash: %q, role: viewer}
    - {name: board-1, password_hash: %q, role: device}
    - {name: board-2, password_hash: %q, role: device}
`, mqttPort, httpPort, filepath.Join(dir, "data", "retained.log"), hash("ada"), hash("vera"), hash("board-1"), hash("board-2"))
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// as makes an HTTP request as user ("" for none) and returns the status,
// headers and body.
func (p *proc) as(user, method, path string, body []byte, hdr ...string) (int, http.Header, []byte) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.http+path, bytes.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, "pw-"+user)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := (&http.Client{Timeout: wait}).Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// watch opens /ws as ada.
func (p *proc) watch(t *testing.T) *websocket.Conn {
	t.Helper()
	hdr := http.Header{}
	hdr.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("ada:pw-ada")))
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(p.http, "http")+"/ws", hdr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rolloutEvent is the part of a /ws rollout event the test reads.
type rolloutEvent struct {
	Event string `json:"event"`
	ID    string `json:"id"`
	State string `json:"state"`
	Waves []struct {
		Boards []struct{ ID, State string } `json:"boards"`
	} `json:"waves"`
}

func (r rolloutEvent) board(id string) string {
	for _, w := range r.Waves {
		for _, b := range w.Boards {
			if b.ID == id {
				return b.State
			}
		}
	}
	return ""
}

// waitRollout reads /ws frames until a rollout event of id satisfies
// cond.
func waitRollout(t *testing.T, c *websocket.Conn, id string, cond func(rolloutEvent) bool) rolloutEvent {
	t.Helper()
	deadline := time.Now().Add(3 * wait)
	var last rolloutEvent
	for {
		_ = c.SetReadDeadline(deadline)
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("rollout %s: no event in the awaited state (last %+v): %v", id, last, err)
		}
		var evs []json.RawMessage
		if len(data) > 0 && data[0] == '[' {
			json.Unmarshal(data, &evs)
		} else {
			evs = append(evs, data)
		}
		for _, raw := range evs {
			var ev rolloutEvent
			if json.Unmarshal(raw, &ev) != nil || ev.Event != "rollout" || ev.ID != id {
				continue
			}
			last = ev
			if cond(ev) {
				return ev
			}
		}
	}
}

// TestUpdatesEndToEnd runs the real binary with anonymous access off:
// `controlplane update-key` prints the key GET /api/update-key shows, each
// route answers 401 and 403 by role, a board downloads with its device
// credentials, and a rollout over two boards (paho, platform sim) goes on
// to done across a restart of the control plane in the middle of it.
func TestUpdatesEndToEnd(t *testing.T) {
	dir := t.TempDir()
	cfg := updatesConfig(t, dir, testutil.FreePort(t), testutil.FreePort(t))
	out, err := exec.Command(binary(t), "update-key", "--config", cfg).Output()
	if err != nil {
		t.Fatalf("update-key before the first start: %v", err)
	}
	printed := strings.TrimSpace(string(out))
	pub, err := base64.StdEncoding.DecodeString(printed)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		t.Fatalf("update-key printed %q: not a base64 ed25519 public key", out)
	}
	p := start(t, cfg)

	code, _, body := p.as("vera", "GET", "/api/update-key", nil)
	var key struct {
		PublicKey string `json:"public_key"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &key) != nil || key.PublicKey != printed {
		t.Errorf("GET /api/update-key: %d %s, want the key update-key printed (%s)", code, body, printed)
	}

	data := make([]byte, 200_000)
	rand.Read(data)
	code, _, body = p.as("ada", "POST", "/api/firmware?version=2.0&platform=sim", data)
	var fw struct{ SHA256 string }
	if code != http.StatusCreated || json.Unmarshal(body, &fw) != nil {
		t.Fatalf("upload as admin: %d %s", code, body)
	}
	spec := []byte(`{"firmware":"` + fw.SHA256 + `","target":{"ids":["board-1","board-2"]},"waves":[1,"100%"],"health_window":"2s"}`)
	for _, tc := range []struct {
		user, method, path string
		body               []byte
		want               int
	}{
		{"", "GET", "/api/update-key", nil, 401},
		{"board-1", "GET", "/api/update-key", nil, 403},
		{"vera", "POST", "/api/firmware?version=3.0&platform=sim", []byte("x"), 403},
		{"board-1", "GET", "/api/firmware", nil, 403},
		{"vera", "GET", "/api/firmware", nil, 200},
		{"", "GET", "/firmware/" + fw.SHA256, nil, 401},
		{"board-1", "GET", "/firmware/" + fw.SHA256, nil, 200},
		{"vera", "GET", "/firmware/" + fw.SHA256, nil, 200},
		{"vera", "DELETE", "/api/firmware/" + fw.SHA256, nil, 403},
		{"vera", "POST", "/api/rollouts", spec, 403},
		{"board-1", "GET", "/api/rollouts", nil, 403},
		{"vera", "GET", "/api/rollouts", nil, 200},
		{"vera", "POST", "/api/rollouts/x/abort", nil, 403},
	} {
		if code, _, body := p.as(tc.user, tc.method, tc.path, tc.body); code != tc.want {
			t.Errorf("%s %s as %q: %d %s, want %d", tc.method, tc.path, tc.user, code, body, tc.want)
		}
	}
	code, hdr, body := p.as("board-1", "GET", "/firmware/"+fw.SHA256, nil, "Range", "bytes=150000-")
	if code != http.StatusPartialContent || !bytes.Equal(body, data[150000:]) || hdr.Get("Content-Range") != "bytes 150000-199999/200000" {
		t.Errorf("a board resuming its download: %d %q, %d bytes", code, hdr.Get("Content-Range"), len(body))
	}

	var boards []*fakeboard.Board
	for _, id := range []string{"board-1", "board-2"} {
		boards = append(boards, fakeboard.Start(t, fakeboard.Config{
			Broker: "tcp://127.0.0.1:" + p.mqttPort, ID: id, Version: "1.0", Key: pub,
			Username: id, Password: "pw-" + id,
		}))
	}
	// The gateway shows a board once it has its messages, which the update
	// service has had before it (it takes them on the delivery goroutine,
	// the gateway on its loop). No event says so: poll.
	for _, id := range []string{"board-1", "board-2"} {
		testutil.WaitFor(t, wait, func() error {
			_, _, body := p.as("vera", "GET", "/api/devices/"+id, nil)
			var d struct {
				Online bool
				Info   struct{ Platform string }
			}
			if json.Unmarshal(body, &d) != nil || !d.Online || d.Info.Platform != "sim" {
				return fmt.Errorf("%s not online with its info: %s", id, body)
			}
			return nil
		})
	}
	code, _, body = p.as("ada", "POST", "/api/rollouts", spec)
	var r rolloutEvent
	if code != http.StatusCreated || json.Unmarshal(body, &r) != nil || r.State != "running" {
		t.Fatalf("POST /api/rollouts: %d %s, want 201 and a running rollout", code, body)
	}
	_, _, body = p.as("vera", "GET", "/api/rollouts", nil)
	var list []rolloutEvent
	if err := json.Unmarshal(body, &list); err != nil || len(list) != 1 || list[0].ID != r.ID {
		t.Fatalf("GET /api/rollouts: %s, want the one rollout", body)
	}
	canary := r.Waves[0].Boards[0].ID
	// The canary confirmed on 2.0 and its health window runs: stop the
	// control plane there, and start it again on the same storage.
	waitRollout(t, p.watch(t), r.ID, func(ev rolloutEvent) bool { return ev.board(canary) == "checking" })
	p.stop()
	p = start(t, cfg)
	done := waitRollout(t, p.watch(t), r.ID, func(ev rolloutEvent) bool { return ev.State == "done" })
	for _, id := range []string{"board-1", "board-2"} {
		if st := done.board(id); st != "updated" {
			t.Errorf("after the restart, %s is %s, want updated", id, st)
		}
	}
	for i, b := range boards {
		jobs := b.Jobs()
		if b.Version() != "2.0" || len(jobs) != 1 {
			t.Errorf("board-%d runs %s after %d jobs, want 2.0 after 1", i+1, b.Version(), len(jobs))
			continue
		}
		if want := p.http + "/firmware/" + fw.SHA256; jobs[0].URL != want {
			t.Errorf("board-%d downloaded from %s, want %s", i+1, jobs[0].URL, want)
		}
	}
	_, _, metrics := p.as("", "GET", "/metrics", nil)
	for _, want := range []string{`switchyard_rollouts{state="done"} 1`, `switchyard_rollout_boards{state="updated"} 0`, "switchyard_firmware_served_bytes_total 200000"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	p.stop()
}
