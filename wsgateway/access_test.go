package wsgateway_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"switchyard/auth"
	"switchyard/wsgateway"
)

const operatorToken = "op-token-123"

func newAuthHarness(t *testing.T, cfg wsgateway.Config) *harness {
	t.Helper()
	h := func(pw string) string { return hashPW(t, pw) }
	sum := sha256.Sum256([]byte(operatorToken))
	az, err := auth.New(auth.Config{Anonymous: auth.AnonOff, Users: []auth.User{
		{Name: "board-7", PasswordHash: h("pw7"), Role: auth.RoleDevice},
		{Name: "vera", PasswordHash: h("pwv"), Role: auth.RoleViewer},
		{Name: "otto", PasswordHash: h("pwo"), Role: auth.RoleOperator, Tokens: []string{hex.EncodeToString(sum[:])}},
		{Name: "ada", PasswordHash: h("pwa"), Role: auth.RoleAdmin},
	}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Auth = az
	return newHarness(t, cfg)
}

// noRedirect is an HTTP client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (h *harness) req(method, path, body string, hdr http.Header) *http.Response {
	h.t.Helper()
	r, _ := http.NewRequest(method, h.http.URL+path, strings.NewReader(body))
	for k, v := range hdr {
		r.Header[k] = v
	}
	resp, err := noRedirect.Do(r)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func basic(user, pw string) http.Header {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pw)
	return r.Header
}

func TestLoginFlowAndSessions(t *testing.T) {
	h := newAuthHarness(t, wsgateway.Config{})
	if r := h.req("GET", "/", "", nil); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
		t.Fatalf("GET / without a session = %d → %q, want 303 /login", r.StatusCode, r.Header.Get("Location"))
	}
	if r := h.req("GET", "/login", "", nil); r.StatusCode != 200 {
		t.Errorf("GET /login = %d", r.StatusCode)
	}
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	if r := h.req("POST", "/login", url.Values{"name": {"vera"}, "password": {"wrong"}}.Encode(), form); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("bad password = %d, want 401", r.StatusCode)
	}
	if r := h.req("POST", "/login", url.Values{"name": {"board-7"}, "password": {"pw7"}}.Encode(), form); r.StatusCode != http.StatusForbidden {
		t.Errorf("a device logging in to the dashboard = %d, want 403", r.StatusCode)
	}
	cross := form.Clone()
	cross.Set("Origin", "http://evil.example")
	if r := h.req("POST", "/login", url.Values{"name": {"vera"}, "password": {"pwv"}}.Encode(), cross); r.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin login = %d, want 403", r.StatusCode)
	}
	r := h.req("POST", "/login", url.Values{"name": {"vera"}, "password": {"pwv"}}.Encode(), form)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" {
		t.Fatalf("login = %d → %q, want 303 /", r.StatusCode, r.Header.Get("Location"))
	}
	var session *http.Cookie
	for _, c := range r.Cookies() {
		if c.Name == "switchyard_session" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie = %+v, want HttpOnly SameSite=Strict", session)
	}
	withCookie := func(c *http.Cookie) http.Header { return http.Header{"Cookie": {c.Name + "=" + c.Value}} }
	if r := h.req("GET", "/", "", withCookie(session)); r.StatusCode != 200 {
		t.Errorf("GET / with a session = %d", r.StatusCode)
	}
	if r := h.req("GET", "/api/devices", "", withCookie(session)); r.StatusCode != 200 {
		t.Errorf("API with a session = %d", r.StatusCode)
	}
	// The session is a viewer's: watching yes, commanding no.
	if r := h.req("DELETE", "/api/devices/x", "", withCookie(session)); r.StatusCode != http.StatusForbidden {
		t.Errorf("viewer DELETE = %d, want 403", r.StatusCode)
	}
	tampered := *session
	tampered.Value = strings.Replace(session.Value, session.Value[:4], "AAAA", 1)
	if r := h.req("GET", "/api/devices", "", withCookie(&tampered)); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("tampered cookie = %d, want 401", r.StatusCode)
	}
	r = h.req("POST", "/logout", "", withCookie(session))
	if r.StatusCode != http.StatusSeeOther || len(r.Cookies()) == 0 || r.Cookies()[0].MaxAge >= 0 {
		t.Errorf("logout = %d, cookies %v", r.StatusCode, r.Cookies())
	}
}

// login logs name in through the form and returns the session cookie.
func (h *harness) login(name, pw string) *http.Cookie {
	h.t.Helper()
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	r := h.req("POST", "/login", url.Values{"name": {name}, "password": {pw}}.Encode(), form)
	for _, c := range r.Cookies() {
		if c.Name == "switchyard_session" && c.Value != "" {
			return c
		}
	}
	h.t.Fatalf("login %s = %d, no session cookie", name, r.StatusCode)
	return nil
}

func TestLogoutEndsTheSession(t *testing.T) {
	store := &memRevoked{}
	key := []byte("0123456789abcdef0123456789abcdef")
	h := newAuthHarness(t, wsgateway.Config{SessionKey: key, RevokedSessions: store})
	first, second := h.login("vera", "pwv"), h.login("vera", "pwv")
	if first.Value == second.Value {
		t.Fatal("two logins got the same cookie")
	}
	withCookie := func(c *http.Cookie) http.Header { return http.Header{"Cookie": {c.Name + "=" + c.Value}} }
	br := h.browser("/ws", withCookie(first))
	if r := h.req("POST", "/logout", "", withCookie(first)); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout = %d, want 303", r.StatusCode)
	}
	// Its WebSocket is closed with 1008 "logged out".
	if err := readUntilEnd(br.conn); !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
		t.Errorf("browser of the ended session: %v, want close 1008", err)
	}
	// The old cookie identifies nobody any more, on any path.
	if r := h.req("GET", "/api/devices", "", withCookie(first)); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("API with a logged-out cookie = %d, want 401", r.StatusCode)
	}
	if r := h.req("GET", "/", "", withCookie(first)); r.StatusCode != http.StatusSeeOther {
		t.Errorf("dashboard with a logged-out cookie = %d, want 303 to /login", r.StatusCode)
	}
	if _, resp, err := websocket.DefaultDialer.Dial(h.wsURL("/ws"), withCookie(first)); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/ws with a logged-out cookie: %v, want a 401 handshake", err)
	}
	// The same user's other session goes on.
	if r := h.req("GET", "/api/devices", "", withCookie(second)); r.StatusCode != http.StatusOK {
		t.Errorf("API with the other session = %d, want 200", r.StatusCode)
	}
	// A gateway started again with the same key and store (a restart)
	// still refuses the ended session and accepts the other.
	if len(store.m) != 1 {
		t.Fatalf("stored revocations = %v, want 1", store.m)
	}
	h2 := newAuthHarness(t, wsgateway.Config{SessionKey: key, RevokedSessions: store})
	if r := h2.req("GET", "/api/devices", "", withCookie(first)); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("after a restart, a logged-out cookie = %d, want 401", r.StatusCode)
	}
	if r := h2.req("GET", "/api/devices", "", withCookie(second)); r.StatusCode != http.StatusOK {
		t.Errorf("after a restart, the other session = %d, want 200", r.StatusCode)
	}
}

// memRevoked is a RevokedSessions in memory (cmd/controlplane's file is
// tested there). Shared, it is one that several gateways share, as the
// database is: SaveRevoked adds instead of replacing.
type memRevoked struct {
	shared bool
	mu     sync.Mutex
	m      map[string]time.Time
}

func (s *memRevoked) LoadRevoked() (map[string]time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m), nil
}

func (s *memRevoked) SaveRevoked(m map[string]time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shared && s.m != nil {
		maps.Copy(s.m, m)
		return nil
	}
	s.m = maps.Clone(m)
	return nil
}

// TestLogoutSharedStore: two gateways with one key and one shared store
// (control planes on one database): a logout on A is refused on B within
// SharedPoll, and B's WebSockets of that session are closed; a logout on
// B then keeps A's in the store.
func TestLogoutSharedStore(t *testing.T) {
	store := &memRevoked{shared: true}
	key := []byte("0123456789abcdef0123456789abcdef")
	cfg := wsgateway.Config{SessionKey: key, RevokedSessions: store, SharedPoll: 20 * time.Millisecond}
	a, b := newAuthHarness(t, cfg), newAuthHarness(t, cfg)
	first, second := a.login("vera", "pwv"), a.login("vera", "pwv")
	withCookie := func(c *http.Cookie) http.Header { return http.Header{"Cookie": {c.Name + "=" + c.Value}} }
	if r := b.req("GET", "/api/devices", "", withCookie(first)); r.StatusCode != http.StatusOK {
		t.Fatalf("A's cookie on B = %d, want 200", r.StatusCode)
	}
	br := b.browser("/ws", withCookie(first))
	if r := a.req("POST", "/logout", "", withCookie(first)); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout on A = %d, want 303", r.StatusCode)
	}
	b.waitFor(func() bool {
		return b.req("GET", "/api/devices", "", withCookie(first)).StatusCode == http.StatusUnauthorized
	})
	if err := readUntilEnd(br.conn); !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
		t.Errorf("B's browser of the session ended on A: %v, want close 1008", err)
	}
	if r := b.req("POST", "/logout", "", withCookie(second)); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout on B = %d, want 303", r.StatusCode)
	}
	a.waitFor(func() bool {
		return a.req("GET", "/api/devices", "", withCookie(second)).StatusCode == http.StatusUnauthorized
	})
	if m, _ := store.LoadRevoked(); len(m) != 2 {
		t.Errorf("stored revocations = %v, want both logouts", m)
	}
}

func TestAPIRefusals(t *testing.T) {
	h := newAuthHarness(t, wsgateway.Config{Metrics: wsgateway.MetricsAuth})
	b := h.board("b1")
	b.online("OFF")
	bearer := http.Header{"Authorization": {"Bearer " + operatorToken}}
	h.waitDeviceWith("b1", bearer)
	for _, tc := range []struct {
		name, method, path, body string
		hdr                      http.Header
		want                     int
	}{
		{"no credentials", "GET", "/api/devices", "", nil, 401},
		{"bad basic", "GET", "/api/devices", "", basic("vera", "nope"), 401},
		{"bad token", "GET", "/api/devices", "", http.Header{"Authorization": {"Bearer nope"}}, 401},
		{"viewer basic", "GET", "/api/devices", "", basic("vera", "pwv"), 200},
		{"device role", "GET", "/api/devices", "", basic("board-7", "pw7"), 403},
		{"viewer command", "POST", "/api/devices/b1/led", `{"action":"on"}`, basic("vera", "pwv"), 403},
		{"operator token command", "POST", "/api/devices/b1/led", `{"action":"on"}`, bearer, 202},
		{"operator basic command", "POST", "/api/devices/b1/led", `{"action":"off"}`, basic("otto", "pwo"), 202},
		{"cross-origin command", "POST", "/api/devices/b1/led", `{"action":"on"}`,
			http.Header{"Authorization": {"Bearer " + operatorToken}, "Origin": {"http://evil.example"}}, 403},
		{"healthz needs nothing", "GET", "/healthz", "", nil, 200},
		{"metrics need credentials", "GET", "/metrics", "", nil, 401},
		{"metrics for a viewer", "GET", "/metrics", "", basic("vera", "pwv"), 200},
		{"dashboard for a device", "GET", "/", "", basic("board-7", "pw7"), 403},
		{"assets for a device", "GET", "/app.js", "", basic("board-7", "pw7"), 403},
		{"login page for a device", "GET", "/login", "", basic("board-7", "pw7"), 403},
		{"healthz for a device", "GET", "/healthz", "", basic("board-7", "pw7"), 200},
	} {
		if r := h.req(tc.method, tc.path, tc.body, tc.hdr); r.StatusCode != tc.want {
			t.Errorf("%s: %s %s = %d, want %d", tc.name, tc.method, tc.path, r.StatusCode, tc.want)
		}
	}
}

func (h *harness) waitDeviceWith(id string, hdr http.Header) {
	h.t.Helper()
	h.waitFor(func() bool {
		r, _ := http.NewRequest("GET", h.http.URL+"/api/devices/"+id, nil)
		r.Header = hdr
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var d apiDevice
		return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&d) == nil && d.Online
	})
}

func TestWebSocketAccess(t *testing.T) {
	h := newAuthHarness(t, wsgateway.Config{CommandRate: 1, CommandBurst: 2, MaxBrowsers: 3})
	b := h.board("b1")
	b.online("OFF")
	h.waitDeviceWith("b1", basic("vera", "pwv"))
	for _, tc := range []struct {
		path string
		hdr  http.Header
		want int
	}{
		{"/ws", nil, 401},
		{"/ws/b1", nil, 401},
		{"/ws?token=wrong", nil, 401},
		{"/ws", basic("board-7", "pw7"), 403},
	} {
		_, resp, err := websocket.DefaultDialer.Dial(h.wsURL(tc.path), tc.hdr)
		if err == nil || resp == nil || resp.StatusCode != tc.want {
			t.Errorf("%s: %v, want HTTP %d", tc.path, err, tc.want)
		}
	}
	viewer := h.browser("/ws", basic("vera", "pwv"))
	viewer.waitFor("b1", "ledStatus", "")
	viewer.send(`{"device":"b1","action":"toggle"}`)
	if e := viewer.waitFor("b1", "error", ""); !strings.Contains(string(e.Value), "forbidden") {
		t.Errorf("viewer command answered %s, want forbidden", e.Value)
	}
	op := h.browser("/ws?token="+operatorToken, nil)
	op.waitFor("b1", "ledStatus", "")
	cmds := h.subscribe("devices/+/led/set")
	for range 2 { // the burst
		op.send(`{"device":"b1","action":"toggle"}`)
		recvMQTT(t, cmds, "a command within the rate")
	}
	op.send(`{"device":"b1","action":"toggle"}`)
	if e := op.waitFor("b1", "error", ""); !strings.Contains(string(e.Value), "too many commands") {
		t.Errorf("over the rate: %s", e.Value)
	}
	// MaxBrowsers 3: a third connects (registered once its snapshot
	// arrives), a fourth is refused.
	h.browser("/ws", basic("vera", "pwv")).waitFor("b1", "ledStatus", "")
	_, resp, err := websocket.DefaultDialer.Dial(h.wsURL("/ws"), basic("vera", "pwv"))
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("fourth browser: %v, want HTTP 503", err)
	}
}

// TestAnonymousLocalNeedsALocalName: a loopback request that names another
// host (a page re-resolved to 127.0.0.1: DNS rebinding) gets no anonymous
// access; one that names this machine does.
func TestAnonymousLocalNeedsALocalName(t *testing.T) {
	az, err := auth.New(auth.Config{Anonymous: auth.AnonLocal})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, wsgateway.Config{Auth: az})
	b := h.board("b1")
	b.online("OFF")
	h.waitDevice("b1", func(apiDevice) bool { return true })
	for _, tc := range []struct {
		host string
		want int
	}{
		{"", http.StatusNoContent}, // the address dialled: 127.0.0.1:port
		{"localhost", http.StatusNoContent},
		{"attacker.example", http.StatusUnauthorized},
	} {
		port := h.http.URL[strings.LastIndex(h.http.URL, ":"):]
		r, _ := http.NewRequest("DELETE", h.http.URL+"/api/devices/b1", nil)
		if tc.host != "" {
			r.Host = tc.host + port
			r.Header.Set("Origin", "http://"+r.Host) // what the page's browser sends: same origin
		}
		resp, err := noRedirect.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("DELETE with Host %q = %d, want %d", tc.host, resp.StatusCode, tc.want)
		}
		if tc.want == http.StatusNoContent {
			b.online("OFF") // known again for the next case
			h.waitDevice("b1", func(apiDevice) bool { return true })
		}
	}
	if _, resp, err := websocket.DefaultDialer.Dial(h.wsURL("/ws"), http.Header{"Host": {"attacker.example"}}); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/ws with Host attacker.example: %v, want a 401 handshake", err)
	}
}
