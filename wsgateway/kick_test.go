package wsgateway_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/bcrypt"

	"switchyard/auth"
	"switchyard/devices"
	"switchyard/wsgateway"
)

func hashPW(t *testing.T, pw string) string {
	t.Helper()
	b, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func tokenDigest(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

func cookieHeader(c *http.Cookie) http.Header { return http.Header{"Cookie": {c.Name + "=" + c.Value}} }

// TestCloseUser: a disabled user's browsers are closed however they
// authenticated (session, HTTP Basic, token), and none of its credentials
// work any more; another user's browser goes on.
func TestCloseUser(t *testing.T) {
	az, err := auth.New(auth.Config{Anonymous: auth.AnonOff})
	if err != nil {
		t.Fatal(err)
	}
	olga := auth.Account{Name: "olga", Role: auth.RoleOperator, PasswordHash: hashPW(t, "pwl"),
		Tokens: []auth.TokenRecord{{ID: "t1", Digest: tokenDigest("olga-token")}}}
	zoe := auth.Account{Name: "zoe", Role: auth.RoleViewer, PasswordHash: hashPW(t, "pwz")}
	az.SetAccounts([]auth.Account{olga, zoe})
	h := newHarness(t, wsgateway.Config{Auth: az})
	b := h.board("b1")
	b.online("OFF")
	h.waitDeviceWith("b1", basic("zoe", "pwz"))

	session := h.login("olga", "pwl")
	olgas := []*browser{
		h.browser("/ws", cookieHeader(session)),
		h.browser("/ws/b1", basic("olga", "pwl")),
		h.browser("/ws?token=olga-token", nil),
	}
	olgas[0].waitFor("b1", "ledStatus", "")
	olgas[1].waitFor("", "ledStatus", "") // /ws/<id> names no device
	olgas[2].waitFor("b1", "ledStatus", "")
	other := h.browser("/ws", cookieHeader(h.login("zoe", "pwz")))
	other.waitFor("b1", "ledStatus", "")

	olga.Disabled = true
	if revoked := az.SetAccounts([]auth.Account{olga, zoe}); !slices.Equal(revoked, []string{"olga"}) {
		t.Fatalf("revoked = %v, want [olga]", revoked)
	}
	h.gw.CloseUser("olga")
	for i, br := range olgas {
		if err := readUntilEnd(br.conn); !websocket.IsCloseError(err, websocket.ClosePolicyViolation) || !strings.Contains(err.Error(), "access revoked") {
			t.Errorf("olga's browser %d: %v, want close 1008 access revoked", i, err)
		}
	}
	for _, tc := range []struct {
		what string
		hdr  http.Header
		path string
	}{
		{"session", cookieHeader(session), "/api/devices"},
		{"basic", basic("olga", "pwl"), "/api/devices"},
		{"token", http.Header{"Authorization": {"Bearer olga-token"}}, "/api/devices"},
	} {
		if r := h.req("GET", tc.path, "", tc.hdr); r.StatusCode != http.StatusUnauthorized {
			t.Errorf("olga's %s after disabling = %d, want 401", tc.what, r.StatusCode)
		}
	}
	if _, resp, err := websocket.DefaultDialer.Dial(h.wsURL("/ws"), cookieHeader(session)); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("/ws with olga's cookie: %v, want a 401 handshake", err)
	}
	b.pub(devices.KindLED, "ON", true)
	other.waitFor("b1", "ledStatus", `"LED ON"`)
}

// fromAddress is an HTTP client whose connections come from the loopback
// address ip (127.0.0.2: another machine, as far as throttling goes).
func fromAddress(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{
		Transport:     &http.Transport{DialContext: func(ctx context.Context, n, a string) (net.Conn, error) { return d.DialContext(ctx, n, a) }},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// TestLoginThrottled: after five wrong passwords within a minute, an
// address gets 429 with Retry-After on /login (the form again), HTTP
// Basic and a WebSocket handshake, even with the right password; each
// refusal is counted, the first audited; another address logs in.
func TestLoginThrottled(t *testing.T) {
	audit := &auditLog{}
	h := newAuthHarness(t, wsgateway.Config{Audit: audit, MQTTThrottled: func() uint64 { return 7 }})
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	post := func(c *http.Client, name, pw string) (*http.Response, string) {
		r, _ := http.NewRequest("POST", h.http.URL+"/login", strings.NewReader(url.Values{"name": {name}, "password": {pw}}.Encode()))
		r.Header = form.Clone()
		resp, err := c.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	for i := range 5 {
		if r, _ := post(noRedirect, "ada", "guess"); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password %d = %d, want 401", i+1, r.StatusCode)
		}
	}
	for _, pw := range []string{"guess", "pwa"} {
		r, body := post(noRedirect, "ada", pw)
		if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "60" ||
			!strings.Contains(body, "Too many failed logins") || !strings.Contains(body, "<form") {
			t.Errorf("/login with %q from the throttled address = %d, Retry-After %q, body %q; want 429, 60, the form with a message",
				pw, r.StatusCode, r.Header.Get("Retry-After"), body)
		}
	}
	resp, err := noRedirect.Do(func() *http.Request {
		r, _ := http.NewRequest("GET", h.http.URL+"/api/devices", nil)
		r.SetBasicAuth("ada", "pwa")
		return r
	}())
	if err != nil {
		t.Fatal(err)
	}
	var answer struct{ Error string }
	_ = json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(answer.Error, "too many failed logins") {
		t.Errorf("HTTP Basic from the throttled address = %d, Retry-After %q, error %q; want 429 and a JSON error",
			resp.StatusCode, resp.Header.Get("Retry-After"), answer.Error)
	}
	if _, resp, err := websocket.DefaultDialer.Dial(h.wsURL("/ws"), basic("ada", "pwa")); err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("/ws with HTTP Basic from the throttled address: %v, want a 429 handshake", err)
	}
	if r, _ := post(fromAddress("127.0.0.2"), "ada", "pwa"); r.StatusCode != http.StatusSeeOther {
		t.Errorf("the right password from another address = %d, want 303", r.StatusCode)
	}

	resp, err = http.Get(h.http.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`switchyard_auth_throttled_total{via="http"} 4`, `switchyard_auth_throttled_total{via="mqtt"} 7`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	var throttled []string
	for _, e := range audit.take() {
		if strings.Contains(e, wsgateway.AuditThrottled) {
			throttled = append(throttled, e)
		}
	}
	if want := []string{"ada login throttled denied"}; !slices.Equal(throttled, want) {
		t.Errorf("audited refusals %q, want %q (once per interval)", throttled, want)
	}
}

// TestBasicCountsOnce: a request with wrong HTTP Basic credentials is one
// failed login, though two handlers identify it (the device check, then
// the API's guard): the sixth, not the third, is refused.
func TestBasicCountsOnce(t *testing.T) {
	h := newAuthHarness(t, wsgateway.Config{})
	for i := range 5 {
		if r := h.req("GET", "/api/devices", "", basic("vera", "nope")); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password %d = %d, want 401", i+1, r.StatusCode)
		}
	}
	if r := h.req("GET", "/api/devices", "", basic("vera", "nope")); r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the sixth wrong password = %d, want 429", r.StatusCode)
	}
}
