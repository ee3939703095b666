package wsgateway

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"sync"
	"time"

	"switchyard/auth"
	"switchyard/internal/origin"
)

// Authenticator is what the gateway needs of the user list.
type Authenticator interface {
	Login(name, password string) (auth.Identity, error)
	Token(token string) (auth.Identity, error)
	User(name string) (auth.Identity, bool)
	Anonymous(remoteAddr string) (auth.Identity, error)
}

// sessionCookie is the name of the dashboard's session cookie.
const sessionCookie = "switchyard_session"

var errNoCredentials = errors.New("credentials required")

// identify returns who sent r: an API token (Bearer, or ?token= on a
// WebSocket handshake), HTTP Basic credentials, a session cookie, or else an
// anonymous client where anonymous access applies. Wrong credentials are an
// error, never a fallback to anonymous.
func (g *Gateway) identify(r *http.Request, tokenInQuery bool) (auth.Identity, error) {
	id, _, err := g.identifySession(r, tokenInQuery)
	return id, err
}

// identifySession is identify that also returns the session id when r was
// identified by its session cookie ("" otherwise).
func (g *Gateway) identifySession(r *http.Request, tokenInQuery bool) (auth.Identity, string, error) {
	a := g.cfg.Auth
	if a == nil {
		return auth.Identity{Role: auth.RoleAdmin, Anonymous: true}, "", nil
	}
	if h := r.Header.Get("Authorization"); h != "" {
		if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
			id, err := a.Token(strings.TrimSpace(tok))
			return id, "", err
		}
		if name, pw, ok := r.BasicAuth(); ok {
			id, err := a.Login(name, pw)
			return id, "", err
		}
		return auth.Identity{}, "", auth.ErrBadCredentials
	}
	if tokenInQuery {
		if tok := r.URL.Query().Get("token"); tok != "" {
			id, err := a.Token(tok)
			return id, "", err
		}
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		if name, sid, ok := g.sessions.verify(c.Value, time.Now()); ok {
			if id, ok := a.User(name); ok {
				return id, sid, nil
			}
		}
	}
	remote := r.RemoteAddr
	if !origin.LocalHost(r.Host) {
		// A loopback client asking for another name may be a page of that
		// name re-resolved to 127.0.0.1 (DNS rebinding): it does not get
		// the anonymous access of a local client.
		remote = ""
	}
	id, err := a.Anonymous(remote)
	if err != nil {
		return auth.Identity{}, "", errNoCredentials
	}
	return id, "", nil
}

// sameOrigin refuses a state-changing request sent by a page of another
// origin (a browser always sends Origin on POST and DELETE; curl sends
// none).
func (g *Gateway) sameOrigin(w http.ResponseWriter, r *http.Request) bool {
	if origin.Allowed(r, g.cfg.AllowedOrigins) {
		return true
	}
	httpError(w, http.StatusForbidden, "cross-origin request from %q refused", r.Header.Get("Origin"))
	return false
}

// guardAPI identifies an API request and checks its role: watching needs
// viewer, changing anything needs operator (and the same origin).
func (g *Gateway) guardAPI(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := g.identify(r, false)
		switch {
		case err != nil:
			w.Header().Set("WWW-Authenticate", `Basic realm="switchyard", charset="UTF-8"`)
			httpError(w, http.StatusUnauthorized, "%v: log in, or send HTTP Basic credentials or a Bearer token", err)
			return
		case !id.CanWatch():
			httpError(w, http.StatusForbidden, "role %s may not use the API", id.Role)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !g.sameOrigin(w, r) {
				return
			}
			if !id.CanCommand() {
				httpError(w, http.StatusForbidden, "role %s may watch but not command", id.Role)
				return
			}
		}
		next(w, r)
	}
}

// serveIndex serves the dashboard page, or sends the browser to log in.
func (g *Gateway) serveIndex(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/" {
		id, err := g.identify(r, true)
		if err != nil {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if !id.CanWatch() {
			httpError(w, http.StatusForbidden, "role %s has no dashboard", id.Role)
			return
		}
	}
	g.static.ServeHTTP(w, r)
}

func (g *Gateway) serveMetrics(w http.ResponseWriter, r *http.Request) {
	switch g.cfg.Metrics {
	case MetricsOff:
		http.NotFound(w, r)
		return
	case MetricsAuth:
		if id, err := g.identify(r, false); err != nil || !id.CanWatch() {
			w.Header().Set("WWW-Authenticate", `Basic realm="switchyard", charset="UTF-8"`)
			httpError(w, http.StatusUnauthorized, "metrics need credentials")
			return
		}
	}
	g.m.handler().ServeHTTP(w, r)
}

// MetricsAccess says who may read /metrics.
type MetricsAccess uint8

// The http.metrics settings.
const (
	MetricsPublic MetricsAccess = iota // anybody (the default)
	MetricsAuth                        // like the API: a viewer or more
	MetricsOff                         // not served
)

// ParseMetricsAccess parses http.metrics: public, auth or off.
func ParseMetricsAccess(s string) (MetricsAccess, error) {
	switch s {
	case "", "public":
		return MetricsPublic, nil
	case "auth":
		return MetricsAuth, nil
	case "off":
		return MetricsOff, nil
	}
	return MetricsPublic, fmt.Errorf("%q: want public, auth or off", s)
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · Switchyard</title>
<style>
:root{color-scheme:light dark;font-family:system-ui,sans-serif}
body{display:grid;place-items:center;min-height:100vh;margin:0;background:Canvas;color:CanvasText}
form{display:grid;gap:.75rem;width:min(20rem,90vw);padding:1.5rem;border:1px solid GrayText;border-radius:.75rem}
input,button{font:inherit;padding:.5rem}button{cursor:pointer}
.err{color:#c62828;margin:0}
</style></head><body>
<form method="post" action="/login">
<h1>Switchyard</h1>
{{if .Error}}<p class="err" role="alert">{{.Error}}</p>{{end}}
<label>Name <input name="name" autocomplete="username" required autofocus value="{{.Name}}"></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Log in</button>
</form></body></html>`))

func (g *Gateway) loginForm(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = loginPage.Execute(w, struct{ Error, Name string }{})
}

func (g *Gateway) login(w http.ResponseWriter, r *http.Request) {
	if !g.sameOrigin(w, r) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	name, pw := r.PostFormValue("name"), r.PostFormValue("password")
	var id auth.Identity
	err := errNoCredentials
	if g.cfg.Auth != nil {
		id, err = g.cfg.Auth.Login(name, pw)
	}
	code, msg := http.StatusUnauthorized, "Wrong name or password."
	if err == nil && !id.CanWatch() {
		// Right credentials, but of a role with no HTTP access (device).
		err = fmt.Errorf("role %s has no dashboard", id.Role)
		code, msg = http.StatusForbidden, fmt.Sprintf("The %s role has no access to the dashboard.", id.Role)
	}
	if err != nil {
		g.log.Info("login refused", "name", name, "remote", r.RemoteAddr, "err", err)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		_ = loginPage.Execute(w, struct{ Error, Name string }{msg, name})
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name:     sessionCookie,
		Value:    g.sessions.issue(name, time.Now()),
		Path:     "/",
		MaxAge:   int(g.cfg.SessionTTL / time.Second),
		HttpOnly: true,
		Secure:   g.cfg.SecureCookies,
		SameSite: http.SameSiteStrictMode,
	})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// logout ends the request's session: its cookie no longer identifies
// anybody, here or after a restart (see RevokedSessions), and the
// WebSockets it opened are closed.
func (g *Gateway) logout(w http.ResponseWriter, r *http.Request) {
	if !g.sameOrigin(w, r) {
		return
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		sid, err := g.sessions.revoke(c.Value, time.Now())
		if err != nil {
			// Ended here; only a restart could bring it back.
			g.log.Error("log out", "err", err)
		}
		if sid != "" {
			g.closeSession(sid)
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: g.cfg.SecureCookies, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// bucket is a token bucket: rate tokens a second, at most burst.
type bucket struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func (b *bucket) allow(now time.Time, rate float64, burst int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last.IsZero() {
		b.tokens = float64(burst)
	} else {
		b.tokens = min(float64(burst), b.tokens+now.Sub(b.last).Seconds()*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
