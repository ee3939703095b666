package wsgateway_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"switchyard/auth"
	"switchyard/internal/testutil"
	"switchyard/wsgateway"
)

// whoami answers who the gateway says the caller is (auth.FromContext).
func whoami(w http.ResponseWriter, r *http.Request) {
	id, ok := auth.FromContext(r.Context())
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(caller{OK: ok, Name: id.Name, Role: id.Role.String(), Anonymous: id.Anonymous})
}

// caller is whoami's answer, and GET /api/me's.
type caller struct {
	OK        bool   `json:"ok"`
	Name      string `json:"name"`
	Role      string `json:"role"`
	Anonymous bool   `json:"anonymous"`
}

// testRoutes are mounted routes of each role, all answering whoami.
var testRoutes = []wsgateway.Route{
	{Pattern: "GET /firmware/{sha}", Role: auth.RoleDevice, Handler: http.HandlerFunc(whoami)},
	{Pattern: "GET /api/things", Role: auth.RoleViewer, Handler: http.HandlerFunc(whoami)},
	{Pattern: "POST /api/things", Role: auth.RoleAdmin, Handler: http.HandlerFunc(whoami)},
	{Pattern: "POST /api/things/{id}/poke", Role: auth.RoleOperator, Handler: http.HandlerFunc(whoami)},
	{Pattern: "PATCH /api/things/{id}", Role: auth.RoleAdmin, Handler: http.HandlerFunc(whoami)},
}

// call sends a request and returns the answer's status, header and body.
func (h *harness) call(method, path, body string, hdr http.Header) (int, http.Header, []byte) {
	h.t.Helper()
	r, err := http.NewRequest(method, h.http.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range hdr {
		r.Header[k] = v
	}
	resp, err := noRedirect.Do(r)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: read answer: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, data
}

// with returns hdr with the extra header fields kv (name, value, ...).
func with(hdr http.Header, kv ...string) http.Header {
	out := hdr.Clone()
	if out == nil {
		out = http.Header{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

// TestMountedRoutesAccess: routes of other packages answer 401 without
// credentials, 403 below their role (and for boards everywhere but the
// routes open to the device role), 403 to another origin's page, and pass
// the caller's identity to the handler.
func TestMountedRoutesAccess(t *testing.T) {
	h := newAuthHarness(t, wsgateway.Config{Routes: testRoutes})
	session := h.login("ada", "pwa")
	cookie := http.Header{"Cookie": {session.Name + "=" + session.Value}}
	bearer := http.Header{"Authorization": {"Bearer " + operatorToken}}
	board, viewer, admin := basic("board-7", "pw7"), basic("vera", "pwv"), basic("ada", "pwa")
	for _, tc := range []struct {
		name, method, path string
		hdr                http.Header
		want               int
		who                string // the caller the handler saw, "name role"; "" when it must not run
	}{
		{"a board downloads with its credentials", "GET", "/firmware/abc", board, 200, "board-7 device"},
		{"a viewer downloads too", "GET", "/firmware/abc", viewer, 200, "vera viewer"},
		{"no credentials", "GET", "/firmware/abc", nil, 401, ""},
		{"wrong password", "GET", "/firmware/abc", basic("board-7", "nope"), 401, ""},
		{"a board posting to a device route's path", "POST", "/firmware/abc", board, 403, ""},
		{"a viewer posting to a device route's path", "POST", "/firmware/abc", viewer, 405, ""},
		{"a board on a viewer route", "GET", "/api/things", board, 403, ""},
		{"a board on the API", "GET", "/api/devices", board, 403, ""},
		{"a board on /api/me", "GET", "/api/me", board, 403, ""},
		{"a viewer on a viewer route", "GET", "/api/things", viewer, 200, "vera viewer"},
		{"an operator's token on a viewer route", "GET", "/api/things", bearer, 200, "otto operator"},
		{"no credentials on a viewer route", "GET", "/api/things", nil, 401, ""},
		{"a page's fetch after its session ended", "GET", "/api/things", with(nil, "Sec-Fetch-Mode", "cors", "Cookie", "switchyard_session=expired"), 401, ""},
		{"a viewer on an admin route", "POST", "/api/things", viewer, 403, ""},
		{"an operator on an admin route", "POST", "/api/things", bearer, 403, ""},
		{"an admin on an admin route", "POST", "/api/things", admin, 200, "ada admin"},
		{"an admin's session, same origin", "POST", "/api/things", with(cookie, "Origin", h.http.URL), 200, "ada admin"},
		{"an admin's session, another origin", "POST", "/api/things", with(cookie, "Origin", "http://evil.example"), 403, ""},
		{"an operator on an operator route", "POST", "/api/things/t1/poke", bearer, 200, "otto operator"},
		{"a viewer on an operator route", "POST", "/api/things/t1/poke", viewer, 403, ""},
		{"an admin patching", "PATCH", "/api/things/t1", admin, 200, "ada admin"},
		{"a method no route takes", "PUT", "/api/things", admin, 405, ""},
		{"GET where only POST is served", "GET", "/api/things/t1/poke", admin, 405, ""},
		{"GET where only PATCH is served", "GET", "/api/things/t1", admin, 405, ""},
		{"GET of nothing under /api", "GET", "/api/nothing", admin, 404, ""},
		{"healthz for a board", "GET", "/healthz", board, 200, ""},
	} {
		code, hdr, body := h.call(tc.method, tc.path, "", tc.hdr)
		if code != tc.want {
			t.Errorf("%s: %s %s = %d %s, want %d", tc.name, tc.method, tc.path, code, body, tc.want)
			continue
		}
		switch {
		case tc.who != "":
			var c caller
			if err := json.Unmarshal(body, &c); err != nil || !c.OK || c.Name+" "+c.Role != tc.who {
				t.Errorf("%s: the handler saw %s (%v), want %q", tc.name, body, err, tc.who)
			}
		case code >= 400:
			var e struct{ Error string }
			if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
				t.Errorf("%s: %d answered %q, want a JSON error", tc.name, code, body)
			}
		}
		fromScript := tc.hdr.Get("Sec-Fetch-Mode") == "cors"
		if code == http.StatusUnauthorized && !fromScript && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("%s: 401 without WWW-Authenticate: Basic (%q)", tc.name, hdr.Get("WWW-Authenticate"))
		}
		if code == http.StatusUnauthorized && fromScript && hdr.Get("WWW-Authenticate") != "" {
			t.Errorf("%s: 401 to a page's script with WWW-Authenticate %q: the browser would pop up its login box", tc.name, hdr.Get("WWW-Authenticate"))
		}
		if code == http.StatusMethodNotAllowed && hdr.Get("Allow") == "" {
			t.Errorf("%s: 405 without Allow", tc.name)
		}
	}
	// What GET /api/me says, to the dashboard.
	for _, tc := range []struct {
		hdr  http.Header
		want caller
	}{
		{viewer, caller{Name: "vera", Role: "viewer"}},
		{cookie, caller{Name: "ada", Role: "admin"}},
		{bearer, caller{Name: "otto", Role: "operator"}},
	} {
		code, _, body := h.call("GET", "/api/me", "", tc.hdr)
		var got caller
		if err := json.Unmarshal(body, &got); code != 200 || err != nil || got != tc.want {
			t.Errorf("GET /api/me as %s = %d %s, want 200 %+v", tc.want.Name, code, body, tc.want)
		}
	}
}

// TestMountedRoutesAnonymous: without an Authenticator everybody is an
// anonymous admin; with anonymous local access a loopback client is an
// operator, enough for a device route, not for an admin one.
func TestMountedRoutesAnonymous(t *testing.T) {
	open := newHarness(t, wsgateway.Config{Routes: testRoutes})
	if code, _, body := open.call("POST", "/api/things", "", nil); code != 200 || !strings.Contains(string(body), `"role":"admin","anonymous":true`) {
		t.Errorf("no Authenticator: POST /api/things = %d %s, want 200 as an anonymous admin", code, body)
	}
	az, err := auth.New(auth.Config{Anonymous: auth.AnonLocal})
	if err != nil {
		t.Fatal(err)
	}
	local := newHarness(t, wsgateway.Config{Auth: az, Routes: testRoutes})
	if code, _, body := local.call("GET", "/firmware/abc", "", nil); code != 200 || !strings.Contains(string(body), `"role":"operator","anonymous":true`) {
		t.Errorf("anonymous local: GET /firmware/abc = %d %s, want 200 as an anonymous operator", code, body)
	}
	if code, _, body := local.call("POST", "/api/things", "", nil); code != http.StatusForbidden {
		t.Errorf("anonymous local: POST /api/things = %d %s, want 403", code, body)
	}
	if code, _, body := local.call("GET", "/api/me", "", nil); code != 200 || !strings.Contains(string(body), `"name":"","role":"operator","anonymous":true`) {
		t.Errorf("anonymous local: GET /api/me = %d %s", code, body)
	}
}

// TestMountedRoutesOutliveServerTimeouts: a route's handler can move the
// connection's read and write deadlines past the server's timeouts (a large
// upload from a slow client), and reads the body without a size limit. The
// same handler without moving them fails: the test shows what it measures.
func TestMountedRoutesOutliveServerTimeouts(t *testing.T) {
	const timeout = 100 * time.Millisecond // the server's Read and WriteTimeout
	started := make(chan error, 1)
	upload := func(extend bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var err error
			if extend {
				rc := http.NewResponseController(w)
				err = rc.SetReadDeadline(time.Now().Add(time.Minute))
				if err == nil {
					err = rc.SetWriteDeadline(time.Now().Add(time.Minute))
				}
			}
			started <- err
			n, err := io.Copy(io.Discard, r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			fmt.Fprintf(w, "%d", n)
		}
	}
	h := newHarness(t, wsgateway.Config{Routes: []wsgateway.Route{
		{Pattern: "POST /api/upload", Role: auth.RoleAdmin, Handler: upload(true)},
		{Pattern: "POST /api/upload-plain", Role: auth.RoleAdmin, Handler: upload(false)},
	}})
	srv := httptest.NewUnstartedServer(h.gw.Handler())
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = timeout, timeout
	srv.Start()
	defer srv.Close()

	const size = 8 << 20 // far beyond any limit the gateway sets on its own API
	// post sends the head and 1 MiB of the body, waits for the handler to
	// start, pauses three times the server's timeouts (the slow client is
	// what is tested), sends the rest and reads the answer.
	post := func(path string) (string, error) {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			return "", err
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		body := bytes.Repeat([]byte("x"), size)
		head := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", path, srv.Listener.Addr(), size)
		if _, err := conn.Write(append([]byte(head), body[:1<<20]...)); err != nil {
			return "", err
		}
		if err := testutil.Recv(t, started, wait, "the handler's start"); err != nil {
			return "", fmt.Errorf("the handler could not move the deadlines: %w", err)
		}
		time.Sleep(3 * timeout) // the client's pause: the condition under test, not a synchronisation
		if _, err := conn.Write(body[1<<20:]); err != nil {
			return "", err
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		got, err := io.ReadAll(resp.Body)
		return fmt.Sprintf("%d %s", resp.StatusCode, got), err
	}
	if got, err := post("/api/upload"); err != nil || got != fmt.Sprintf("200 %d", size) {
		t.Errorf("a slow upload to a handler that moved its deadlines: %q, %v; want 200 %d", got, err, size)
	}
	if got, err := post("/api/upload-plain"); err == nil && got == fmt.Sprintf("200 %d", size) {
		t.Errorf("a slow upload to a handler that kept the server's timeouts succeeded (%q): the test measures nothing", got)
	}
}

// TestRouteConfigErrors: a mounted route that is incomplete, invalid or
// collides with another is an error of New, naming the route.
func TestRouteConfigErrors(t *testing.T) {
	ok := http.HandlerFunc(whoami)
	for _, tc := range []struct {
		name   string
		routes []wsgateway.Route
		want   string
	}{
		{"empty pattern", []wsgateway.Route{{Role: auth.RoleAdmin, Handler: ok}}, `routes[0] "": empty pattern`},
		{"no handler", []wsgateway.Route{{Pattern: "GET /x", Role: auth.RoleAdmin}}, `routes[0] "GET /x": no handler`},
		{"no role", []wsgateway.Route{{Pattern: "GET /x", Handler: ok}}, `routes[0] "GET /x": role none`},
		{"a bad pattern", []wsgateway.Route{{Pattern: "GET /x/{", Role: auth.RoleAdmin, Handler: ok}}, `routes[0] "GET /x/{"`},
		{"the gateway's own path", []wsgateway.Route{{Pattern: "GET /healthz", Role: auth.RoleViewer, Handler: ok}}, `routes[0] "GET /healthz"`},
		{"two alike", []wsgateway.Route{
			{Pattern: "GET /x", Role: auth.RoleViewer, Handler: ok},
			{Pattern: "GET /x", Role: auth.RoleAdmin, Handler: ok},
		}, `routes[1] "GET /x"`},
	} {
		gw, err := wsgateway.New(wsgateway.Config{Routes: tc.routes}, nil)
		if err == nil {
			gw.Close()
			t.Errorf("%s: New succeeded, want an error with %q", tc.name, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}
