package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/bcrypt"

	"switchyard/internal/testutil"
)

// The onboarding tests run issue 14 from end to end against the real
// binary with auth.anonymous "off": boards added through the API and
// started with exactly the command (or environment file) it returns,
// users created, logged in, disabled and deleted, tokens made and
// revoked, all read back as a user would, audit log included.

// obRig is a control plane where nobody is anonymous: ada is a config
// admin with a password and an API token; vic a config viewer.
type obRig struct {
	anonymous         string // auth.anonymous
	dir, cfg, storage string
	adaToken          string
	mqttPort, port    string
	cp                *proc
}

func newObRig(t *testing.T) *obRig { return newObRigAnon(t, "off") }

// newObRigAnon is newObRig with auth.anonymous set to anonymous.
func newObRigAnon(t *testing.T, anonymous string) *obRig {
	t.Helper()
	dir := t.TempDir()
	secret := make([]byte, 16)
	rand.Read(secret)
	r := &obRig{anonymous: anonymous, dir: dir, cfg: filepath.Join(dir, "config.yaml"), storage: filepath.Join(dir, "data", "retained.log"),
		adaToken: hex.EncodeToString(secret), mqttPort: testutil.FreePort(t), port: testutil.FreePort(t)}
	r.writeConfig(t, true)
	r.cp = start(t, r.cfg)
	return r
}

// writeConfig writes the config file, with ada (the config admin) or
// without her.
func (r *obRig) writeConfig(t *testing.T, withAda bool) {
	t.Helper()
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	digest := sha256.Sum256([]byte(r.adaToken))
	users := fmt.Sprintf("    - {name: vic, role: viewer, password_hash: %q}\n", hash("vic-password"))
	if withAda {
		users += fmt.Sprintf("    - {name: ada, role: admin, password_hash: %q, tokens: [%q]}\n", hash("ada-password"), hex.EncodeToString(digest[:]))
	}
	body := fmt.Sprintf(`mqtt: {listen: '127.0.0.1:%s'}
http: {listen: '127.0.0.1:%s'}
storage: {path: %q}
log: {level: info}
auth:
  anonymous: %q
  users:
%s`, r.mqttPort, r.port, r.storage, r.anonymous, users)
	if err := os.WriteFile(r.cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// obClient makes requests as one caller: a Bearer token, HTTP Basic
// credentials ("name:password"), or the session cookie of its jar.
type obClient struct {
	r      *obRig
	token  string
	basic  string
	client *http.Client
}

func (r *obRig) as(token, basic string) *obClient {
	return &obClient{r: r, token: token, basic: basic, client: &http.Client{Timeout: wait,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// ada is the config admin, by her token.
func (r *obRig) ada() *obClient { return r.as(r.adaToken, "") }

// do sends a request with a JSON body (when not "") and returns the
// status and the body.
func (c *obClient) do(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, c.r.cp.http+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	case c.basic != "":
		name, pw, _ := strings.Cut(c.basic, ":")
		req.SetBasicAuth(name, pw)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// must is do that fails the test unless the status is want, and decodes
// the answer into v (when not nil).
func (c *obClient) must(t *testing.T, want int, method, path, body string, v any) {
	t.Helper()
	code, b := c.do(t, method, path, body)
	if code != want {
		t.Fatalf("%s %s %s = %d %s, want %d", method, path, body, code, b, want)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s %s: %s: %v", method, path, b, err)
		}
	}
}

// obBoard is the answer to POST /api/boards.
type obBoard struct {
	ID, Username, Password, Broker string
	UpdateKey                      string `json:"update_key"`
	Command, Env                   string
}

// obDevice is a device of /api/devices.
type obDevice struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Online   bool     `json:"online"`
	LastSeen *string  `json:"last_seen"`
	Tags     []string `json:"tags"`
	New      bool     `json:"new"`
}

// waitDevice polls (nothing announces it) until board id's answer to c
// satisfies ok.
func (c *obClient) waitDevice(t *testing.T, id string, what string, ok func(code int, d obDevice) bool) {
	t.Helper()
	testutil.WaitFor(t, wait, func() error {
		code, b := c.do(t, "GET", "/api/devices/"+id, "")
		var d obDevice
		json.Unmarshal(b, &d)
		if !ok(code, d) {
			return fmt.Errorf("board %s: %d %s, want %s", id, code, b, what)
		}
		return nil
	})
}

// devicefw starts devicefw with argv (argv[0] "devicefw" is the binary)
// and the environment env, its builds in a temporary directory (given in
// the environment: argv stays as given), and returns it once it logs
// that it started.
func devicefwAs(t *testing.T, argv []string, env ...string) *testutil.Process {
	t.Helper()
	if argv[0] != "devicefw" {
		t.Fatalf("command %q does not run devicefw", argv)
	}
	cmd := exec.Command(roDevicefw(t, "1.0"), argv[1:]...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DEVICEFW_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, append(env, "DEVICEFW_STATE_DIR="+t.TempDir())...)
	p, _, err := testutil.Start(t, cmd, regexp.MustCompile(`msg="devicefw starting"`), wait)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// linesWith returns the lines of log that contain s.
func linesWith(log, s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			out = append(out, sc.Text())
		}
	}
	return out
}

// loggedAt is the time of a log line of slog's text handler.
func loggedAt(t *testing.T, line string) time.Time {
	t.Helper()
	f := strings.Fields(line)
	if len(f) == 0 || !strings.HasPrefix(f[0], "time=") {
		t.Fatalf("log line %q has no time", line)
	}
	at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(f[0], "time="))
	if err != nil {
		t.Fatalf("log line %q: %v", line, err)
	}
	return at
}

// TestOnboardingBoards: an admin adds a board through the API; it shows
// at once, waiting; devicefw started with exactly the returned command
// comes online, and one started with the returned environment file does
// too. Deleting the first disconnects it within a second, and it cannot
// connect again.
func TestOnboardingBoards(t *testing.T) {
	r := newObRig(t)
	ada := r.ada()
	var b obBoard
	ada.must(t, http.StatusCreated, "POST", "/api/boards", `{"id":"ob-1","name":"Bench board","tags":["lab"]}`, &b)
	if want := "tcp://127.0.0.1:" + r.mqttPort; b.Broker != want || b.Username != "ob-1" || b.UpdateKey == "" {
		t.Errorf("POST /api/boards = %+v, want broker %s, username ob-1 and the update key", b, want)
	}
	var d obDevice
	ada.must(t, http.StatusOK, "GET", "/api/devices/ob-1", "", &d)
	if d.Online || d.LastSeen != nil || d.Name != "Bench board" || !slices.Equal(d.Tags, []string{"lab"}) || d.New {
		t.Errorf("the new board = %+v, want it offline, never seen, named, tagged, not new", d)
	}

	b1 := devicefwAs(t, strings.Fields(b.Command))
	ada.waitDevice(t, "ob-1", "online", func(code int, d obDevice) bool { return code == 200 && d.Online })

	// The environment file, as systemd's EnvironmentFile reads it.
	var b2 obBoard
	ada.must(t, http.StatusCreated, "POST", "/api/boards", `{"id":"ob-2"}`, &b2)
	var env []string
	for _, line := range strings.Split(strings.TrimSpace(b2.Env), "\n") {
		if !strings.HasPrefix(line, "DEVICEFW_") || !strings.Contains(line, "=") {
			t.Fatalf("env line %q", line)
		}
		env = append(env, line)
	}
	devicefwAs(t, []string{"devicefw"}, env...)
	ada.waitDevice(t, "ob-2", "online", func(code int, d obDevice) bool { return code == 200 && d.Online })

	// Deleted: disconnected at once, refused when it tries again.
	t0 := time.Now()
	ada.must(t, http.StatusNoContent, "DELETE", "/api/devices/ob-1", "", nil)
	var down []string
	testutil.WaitFor(t, wait, func() error {
		if down = linesWith(b1.Log(), "mqtt connection down"); len(down) < 2 {
			return fmt.Errorf("devicefw: %d disconnects, want 2 (the kick, a refused retry):\n%s", len(down), b1.Log())
		}
		return nil
	})
	b1.Kill() // its next refusals would throttle 127.0.0.1 for the rest of the test
	if took := loggedAt(t, down[0]).Sub(t0); took > time.Second {
		t.Errorf("the deleted board was disconnected after %v, want within 1 s", took)
	}
	if !strings.Contains(strings.ToLower(down[1]), "authori") && !strings.Contains(strings.ToLower(down[1]), "password") {
		t.Errorf("the retry was not refused for its credentials: %s", down[1])
	}
	if code, body := ada.do(t, "GET", "/api/devices/ob-1", ""); code != http.StatusNotFound {
		t.Errorf("the deleted board after its retry: %d %s, want 404", code, body)
	}
	var users []struct{ Name string }
	ada.must(t, http.StatusOK, "GET", "/api/users", "", &users)
	for _, u := range users {
		if u.Name == "ob-1" {
			t.Errorf("the deleted board's user is still listed: %+v", users)
		}
	}
	if code, _ := ada.do(t, "POST", "/api/boards", `{"id":"ob-2"}`); code != http.StatusConflict {
		t.Errorf("POST /api/boards with a taken id = %d, want 409", code)
	}
	r.waitAudit(t, ada, "ada board-create ob-1 ok", "ada board-create ob-2 ok", "ada user-delete ob-1 ok", "ada forget ob-1 ok", "ada board-create ob-2 failed")
}

// waitAudit polls the audit log (written in batches; nothing announces a
// write) until it holds every one of want ("actor action target result").
func (r *obRig) waitAudit(t *testing.T, c *obClient, want ...string) {
	t.Helper()
	testutil.WaitFor(t, wait, func() error {
		var log struct {
			Entries []struct{ Actor, Action, Target, Result string }
		}
		c.must(t, http.StatusOK, "GET", "/api/audit?limit=1000", "", &log)
		var got []string
		for _, e := range log.Entries {
			got = append(got, fmt.Sprintf("%s %s %s %s", e.Actor, e.Action, e.Target, e.Result))
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				return fmt.Errorf("audit log %q: no %q", got, w)
			}
		}
		return nil
	})
}

func newJar(t *testing.T) http.CookieJar {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return jar
}

// login logs c in at /login and keeps the session cookie.
func (c *obClient) login(t *testing.T, name, password string) {
	t.Helper()
	resp, err := c.client.PostForm(c.r.cp.http+"/login", url.Values{"name": {name}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login %s: %d, want 303", name, resp.StatusCode)
	}
	u, _ := url.Parse(c.r.cp.http)
	if len(c.client.Jar.Cookies(u)) == 0 {
		t.Fatalf("login %s: no session cookie", name)
	}
}

// TestOnboardingUsers: an operator created through the API logs in and
// switches a board; disabled, its open /ws is closed and its cookie
// refused. A token is created, used and revoked. Config users cannot be
// changed; the last enabled admin stays, also when it is in the database.
func TestOnboardingUsers(t *testing.T) {
	r := newObRig(t)
	ada := r.ada()
	var b obBoard
	ada.must(t, http.StatusCreated, "POST", "/api/boards", `{"id":"ob-3"}`, &b)
	devicefwAs(t, strings.Fields(b.Command))
	ada.waitDevice(t, "ob-3", "online", func(code int, d obDevice) bool { return code == 200 && d.Online })

	ada.must(t, http.StatusCreated, "POST", "/api/users", `{"name":"olga","role":"operator","password":"olga-password"}`, nil)
	olga := r.as("", "")
	olga.client.Jar = newJar(t)
	olga.login(t, "olga", "olga-password")
	olga.must(t, http.StatusAccepted, "POST", "/api/devices/ob-3/led", `{"action":"toggle"}`, nil)

	// Her browser, open on /ws with her cookie.
	hdr := http.Header{}
	u, _ := url.Parse(r.cp.http)
	for _, c := range olga.client.Jar.Cookies(u) {
		hdr.Add("Cookie", c.String())
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(r.cp.http, "http")+"/ws", hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if _, _, err := ws.ReadMessage(); err != nil { // the snapshot
		t.Fatal(err)
	}
	closed := make(chan time.Time, 1)
	go func() { // ends when the connection ends (closed by the server, or at cleanup)
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				closed <- time.Now()
				return
			}
		}
	}()
	t0 := time.Now()
	var changed struct{ Disabled bool }
	ada.must(t, http.StatusOK, "PATCH", "/api/users/olga", `{"disabled":true}`, &changed)
	if !changed.Disabled {
		t.Errorf("PATCH olga disabled: %+v", changed)
	}
	if at := testutil.Recv(t, closed, wait, "olga's /ws closed"); at.Sub(t0) > time.Second {
		t.Errorf("olga's /ws was closed %v after she was disabled, want within 1 s", at.Sub(t0))
	}
	if code, _ := olga.do(t, "GET", "/api/devices", ""); code != http.StatusUnauthorized {
		t.Errorf("olga's cookie once disabled: %d, want 401", code)
	}

	// A token: made by its user, used, revoked.
	ada.must(t, http.StatusCreated, "POST", "/api/users", `{"name":"tom","role":"viewer","password":"tom-password"}`, nil)
	tom := r.as("", "tom:tom-password")
	var tok struct{ ID, Token string }
	tom.must(t, http.StatusCreated, "POST", "/api/users/tom/tokens", "", &tok)
	byToken := r.as(tok.Token, "")
	byToken.must(t, http.StatusOK, "GET", "/api/devices/ob-3", "", nil)
	tom.must(t, http.StatusNoContent, "DELETE", "/api/users/tom/tokens/"+tok.ID, "", nil)
	if code, _ := byToken.do(t, "GET", "/api/devices/ob-3", ""); code != http.StatusUnauthorized {
		t.Errorf("a revoked token: %d, want 401", code)
	}
	if code, _ := tom.do(t, "POST", "/api/users/olga/tokens", ""); code != http.StatusForbidden {
		t.Errorf("tom makes olga's token: %d, want 403", code)
	}

	// Config users are read-only.
	for _, c := range [][3]string{
		{"PATCH", "/api/users/ada", `{"role":"viewer"}`},
		{"PATCH", "/api/users/vic", `{"password":"0123456789"}`},
		{"DELETE", "/api/users/ada", ""},
		{"POST", "/api/users/vic/tokens", ""},
	} {
		if code, body := ada.do(t, c[0], c[1], c[2]); code != http.StatusConflict {
			t.Errorf("%s %s %s = %d %s, want 409", c[0], c[1], c[2], code, body)
		}
	}

	// The last enabled admin stays: with ada gone from config.yaml, root
	// (from the database) is the only one.
	ada.must(t, http.StatusCreated, "POST", "/api/users", `{"name":"root","role":"admin","password":"root-password"}`, nil)
	r.cp.stop()
	r.writeConfig(t, false)
	r.cp = start(t, r.cfg)
	root := r.as("", "root:root-password")
	for _, c := range [][3]string{
		{"PATCH", "/api/users/root", `{"role":"operator"}`},
		{"PATCH", "/api/users/root", `{"disabled":true}`},
		{"DELETE", "/api/users/root", ""},
	} {
		if code, body := root.do(t, c[0], c[1], c[2]); code != http.StatusConflict {
			t.Errorf("%s %s %s (the last admin) = %d %s, want 409", c[0], c[1], c[2], code, body)
		}
	}
	// Restarted: the board created before reconnects with its secret.
	root.waitDevice(t, "ob-3", "online again", func(code int, d obDevice) bool { return code == 200 && d.Online })
	root.must(t, http.StatusNoContent, "DELETE", "/api/users/olga", "", nil)

	r.waitAudit(t, root,
		"ada user-create olga ok", "olga command ob-3 ok", "ada user-change olga ok",
		"ada user-create tom ok", "tom token-create tom/"+tok.ID+" ok", "tom token-delete tom/"+tok.ID+" ok",
		"tom token-create olga denied",
		"ada user-change ada failed", "ada user-change vic failed", "ada user-delete ada failed", "ada token-create vic failed",
		"root user-change root failed", "root user-delete root failed", "root user-delete olga ok")
}

// TestOnboardingNewBoard: with anonymous access for local clients, a
// board that connects without being created is "new" until an admin
// adopts it, which gives it credentials; forgotten instead, it is new
// again when it comes back.
func TestOnboardingNewBoard(t *testing.T) {
	r := newObRigAnon(t, "local")
	ada := r.ada()
	anon := devicefwAs(t, []string{"devicefw", "--broker", "tcp://127.0.0.1:" + r.mqttPort, "--id", "stray-1"})
	devicefwAs(t, []string{"devicefw", "--broker", "tcp://127.0.0.1:" + r.mqttPort, "--id", "stray-2"})
	for _, id := range []string{"stray-1", "stray-2"} {
		ada.waitDevice(t, id, "online and new", func(code int, d obDevice) bool { return code == 200 && d.Online && d.New })
	}
	var list []obDevice
	ada.must(t, http.StatusOK, "GET", "/api/devices", "", &list)
	if len(list) != 2 || !list[0].New || !list[1].New {
		t.Errorf("GET /api/devices = %+v, want both new", list)
	}

	// Adopted: no longer new, still online on its anonymous connection;
	// the credentials it gets connect it too.
	var b obBoard
	ada.must(t, http.StatusCreated, "POST", "/api/boards", `{"id":"stray-1","name":"Found"}`, &b)
	var d obDevice
	ada.must(t, http.StatusOK, "GET", "/api/devices/stray-1", "", &d)
	if d.New || !d.Online || d.Name != "Found" {
		t.Errorf("the adopted board = %+v, want online, not new, named Found", d)
	}
	if b.Password == "" || !strings.Contains(b.Command, "--password "+b.Password) {
		t.Errorf("adopting gave no credentials: %+v", b)
	}
	if err := anon.Stop(wait); err != nil {
		t.Fatal(err)
	}
	ada.waitDevice(t, "stray-1", "offline", func(code int, d obDevice) bool { return code == 200 && !d.Online })
	devicefwAs(t, strings.Fields(b.Command))
	ada.waitDevice(t, "stray-1", "online with its credentials", func(code int, d obDevice) bool { return code == 200 && d.Online && !d.New })

	// Forgotten: gone, and new again when it publishes again.
	ada.must(t, http.StatusNoContent, "DELETE", "/api/devices/stray-2", "", nil)
	ada.waitDevice(t, "stray-2", "back, new", func(code int, d obDevice) bool { return code == 200 && d.Online && d.New })
	r.waitAudit(t, ada, "ada board-create stray-1 ok", "ada forget stray-2 ok")
}
