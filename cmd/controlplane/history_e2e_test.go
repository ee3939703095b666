package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/bcrypt"

	"switchyard/internal/testutil"
)

// The history tests run issue 13 from end to end: a real control plane
// with its SQLite database, devicefw boards, a browser on /ws,
// mosquitto_pub as an anonymous and as a logged-in MQTT client, kill -9
// and restarts; they read what happened back from /api/devices/<id>/history
// and /api/audit as a user would.

// histRig is a control plane with ada (admin, password and API token) and
// otto (operator, password), anonymous access for local clients.
type histRig struct {
	cfg   string
	token string
	cp    *proc
}

func newHistRig(t *testing.T) *histRig {
	t.Helper()
	dir := t.TempDir()
	secret := make([]byte, 16)
	rand.Read(secret)
	r := &histRig{cfg: filepath.Join(dir, "config.yaml"), token: hex.EncodeToString(secret)}
	digest := sha256.Sum256([]byte(r.token))
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	body := fmt.Sprintf(`mqtt: {listen: '127.0.0.1:%s'}
http: {listen: '127.0.0.1:%s'}
storage: {path: %q}
log: {level: info}
auth:
  users:
    - {name: ada, role: admin, password_hash: %q, tokens: [%q]}
    - {name: otto, role: operator, password_hash: %q}
`, testutil.FreePort(t), testutil.FreePort(t), filepath.Join(dir, "data", "retained.log"),
		hash("ada-pw"), hex.EncodeToString(digest[:]), hash("otto-pw"))
	if err := os.WriteFile(r.cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	r.cp = start(t, r.cfg)
	return r
}

// api makes a request as ada and returns the status and body.
func (r *histRig) api(t *testing.T, method, path string) (int, []byte) {
	t.Helper()
	return bearerRequest(t, r.cp.http, r.token, method, path, nil)
}

// histEvent is an event of /api/devices/<id>/history.
type histEvent struct {
	At    time.Time `json:"at"`
	Kind  string    `json:"kind"`
	Value string    `json:"value"`
	By    string    `json:"by"`
}

func (e histEvent) String() string { return e.Kind + "(" + e.Value + " by " + e.By + ")" }

// history returns a board's history, oldest first.
func (r *histRig) history(t *testing.T, id string) []histEvent {
	t.Helper()
	code, body := r.api(t, "GET", "/api/devices/"+id+"/history?limit=1000")
	var h struct {
		Events []histEvent `json:"events"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &h) != nil {
		t.Fatalf("GET /api/devices/%s/history: %d %s", id, code, body)
	}
	for i, j := 0, len(h.Events)-1; i < j; i, j = i+1, j-1 {
		h.Events[i], h.Events[j] = h.Events[j], h.Events[i]
	}
	return h.Events
}

// waitHistory waits until board id's history, oldest first, ends with
// want (each "kind(value by who)"). The history is written in batches a
// fraction of a second apart, and nothing announces a write: it polls.
func (r *histRig) waitHistory(t *testing.T, id string, want ...string) []histEvent {
	t.Helper()
	var got []histEvent
	testutil.WaitFor(t, wait, func() error {
		got = r.history(t, id)
		if len(got) < len(want) {
			return fmt.Errorf("history of %s: %v, want it to end with %v", id, got, want)
		}
		for i, w := range want {
			if g := got[len(got)-len(want)+i].String(); g != w {
				return fmt.Errorf("history of %s: %v, want it to end with %v", id, got, want)
			}
		}
		return nil
	})
	return got
}

// board starts devicefw as board id and waits until it is online.
func (r *histRig) board(t *testing.T, id string) *testutil.Process {
	t.Helper()
	p, _, err := testutil.Start(t, exec.Command(roDevicefw(t, "1.0"), "--broker", "tcp://127.0.0.1:"+r.cp.mqttPort,
		"--id", id, "--interval", "500ms", "--state-dir", t.TempDir()), roOnlineLine, wait)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHistoryOfABoardsLife: a board comes online, is switched from a
// browser (as ada), by an anonymous MQTT client and by a logged-in one,
// loses its connection (kill -9: its Last Will), comes back, and the
// control plane restarts under it; /history tells all of it, in order,
// each with who caused it. A board already offline at the restart gets
// no second offline.
func TestHistoryOfABoardsLife(t *testing.T) {
	mqttTool(t, "mosquitto_pub")
	r := newHistRig(t)
	b := r.board(t, "life-1")
	r.waitHistory(t, "life-1", "online( by board)", "info(firmware devicefw 1.0, platform "+roPlatform+" by board)", "led(OFF by board)")

	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(r.cp.http, "http")+"/ws?token="+r.token, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	go func() { // ends when the connection closes: reads so that the server never blocks on us
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"device":"life-1","action":"on"}`)); err != nil {
		t.Fatal(err)
	}
	r.waitHistory(t, "life-1", "command(ON applied by ada)", "led(ON by ada)")

	r.cp.pub(t, "-i", "tool-1", "-t", "devices/life-1/led/set", "-m", "OFF")
	r.waitHistory(t, "life-1", "command(OFF applied by mqtt:tool-1)", "led(OFF by mqtt:tool-1)")
	r.cp.pub(t, "-i", "otto-laptop", "-u", "otto", "-P", "otto-pw", "-t", "devices/life-1/led/set", "-m", "toggle")
	r.waitHistory(t, "life-1", "command(TOGGLE applied by mqtt:otto)", "led(ON by mqtt:otto)")

	if err := b.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.waitHistory(t, "life-1", "offline(will by )")
	r.board(t, "life-1")
	r.waitHistory(t, "life-1", "offline(will by )", "online( by board)", "led(OFF by board)") // it boots with its LED off

	gone := r.board(t, "gone-1")
	r.waitHistory(t, "gone-1", "info(firmware devicefw 1.0, platform "+roPlatform+" by board)", "led(OFF by board)")
	gone.Kill()
	r.waitHistory(t, "gone-1", "offline(will by )")

	r.cp.stop()
	r.cp = start(t, r.cfg) // the same ports: life-1 comes back by itself
	got := r.waitHistory(t, "life-1", "offline(restart by )", "online( by board)")
	for i := 1; i < len(got); i++ {
		if got[i].At.Before(got[i-1].At) {
			t.Errorf("history out of order at %d: %v", i, got)
		}
	}
	if h := r.history(t, "gone-1"); h[len(h)-1].String() != "offline(will by )" {
		t.Errorf("gone-1, offline before the restart: history ends %v, want offline(will by ) (no second offline)", h[len(h)-3:])
	}
}

// TestAuditLog: a failed and a good login, a command and a forget are in
// /api/audit, newest first, with who, what, the result and the address;
// a viewer may not read it.
func TestAuditLog(t *testing.T) {
	r := newHistRig(t)
	r.board(t, "aud-1")
	login := func(name, pw string) int {
		t.Helper()
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, err := http.NewRequest("POST", r.cp.http+"/login", strings.NewReader("name="+name+"&password="+pw))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", r.cp.http)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := login("otto", "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("login with a wrong password: %d, want 401", code)
	}
	if code := login("otto", "otto-pw"); code != http.StatusSeeOther {
		t.Fatalf("login: %d, want 303", code)
	}
	req, _ := http.NewRequest("POST", r.cp.http+"/api/devices/aud-1/led", strings.NewReader(`{"action":"toggle"}`))
	req.Header.Set("Authorization", "Bearer "+r.token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST led: %v %v", resp, err)
	}
	r.waitHistory(t, "aud-1", "command(TOGGLE applied by ada)", "led(ON by ada)")
	if code, body := r.api(t, "DELETE", "/api/devices/aud-1"); code != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", code, body)
	}

	type entry struct {
		Actor, Action, Target, Result, Remote string
	}
	want := []entry{ // newest first
		{"ada", "forget", "aud-1", "ok", ""},
		{"ada", "command", "aud-1", "ok", ""},
		{"otto", "login", "", "ok", ""},
		{"otto", "login", "", "failed", ""},
	}
	testutil.WaitFor(t, wait, func() error {
		code, body := r.api(t, "GET", "/api/audit?limit=10")
		var a struct {
			Entries []entry `json:"entries"`
		}
		if code != http.StatusOK || json.Unmarshal(body, &a) != nil {
			return fmt.Errorf("GET /api/audit: %d %s", code, body)
		}
		if len(a.Entries) != len(want) {
			return fmt.Errorf("audit log %+v, want %+v", a.Entries, want)
		}
		for i, e := range a.Entries {
			if !strings.HasPrefix(e.Remote, "127.0.0.1:") {
				return fmt.Errorf("entry %d remote %q, want 127.0.0.1:port", i, e.Remote)
			}
			e.Remote = ""
			if e != want[i] {
				return fmt.Errorf("audit log %+v, want %+v", a.Entries, want)
			}
		}
		return nil
	})
	req, _ = http.NewRequest("GET", r.cp.http+"/api/audit", nil)
	req.SetBasicAuth("otto", "otto-pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET /api/audit as an operator: %d, want 403", resp.StatusCode)
	}
	// The forgotten board's history stays, with its forget.
	if h := r.history(t, "aud-1"); len(h) == 0 || h[len(h)-1].String() != "forgotten( by ada)" {
		t.Errorf("history of the forgotten board ends %v, want forgotten( by ada)", h)
	}
}
