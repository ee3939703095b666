// Access: who a request comes from (token, credentials, session, anonymous),
// what its role allows, and logging in and out.

package wsgateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"switchyard/auth"
	"switchyard/history"
	"switchyard/internal/httpapi"
	"switchyard/internal/origin"
)

// Authenticator is what the gateway needs of the user list.
type Authenticator interface {
	// Login's remote is the client's address, for throttling.
	Login(name, password, remote string) (auth.Identity, error)
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
			id, err := g.loginBasic(r, name, pw)
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

// basicMemo is the outcome of a request's HTTP Basic credentials, checked
// once however many handlers identify the request (refuseDevices, then
// the route's guard): checked twice, a wrong password would count as two
// failed logins, and a throttled one as two refusals.
type basicMemo struct {
	done bool
	id   auth.Identity
	err  error
}

type basicMemoKey struct{}

// withBasicMemo gives r a basicMemo when it carries HTTP Basic
// credentials.
func withBasicMemo(r *http.Request) *http.Request {
	if _, _, ok := r.BasicAuth(); !ok {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), basicMemoKey{}, new(basicMemo)))
}

// loginBasic checks r's HTTP Basic credentials (once per request, see
// basicMemo).
func (g *Gateway) loginBasic(r *http.Request, name, pw string) (auth.Identity, error) {
	m, _ := r.Context().Value(basicMemoKey{}).(*basicMemo)
	if m != nil && m.done {
		return m.id, m.err
	}
	id, err := g.cfg.Auth.Login(name, pw, r.RemoteAddr)
	g.noteThrottled(r, name, err)
	if m != nil {
		*m = basicMemo{done: true, id: id, err: err}
	}
	return id, err
}

// noteThrottled counts a login refused by throttling (err a
// *auth.ThrottledError; any other err is ignored), and writes the first of
// its interval to the audit log and the log.
func (g *Gateway) noteThrottled(r *http.Request, name string, err error) {
	var te *auth.ThrottledError
	if !errors.As(err, &te) {
		return
	}
	g.m.throttled.Inc()
	if te.First {
		g.audit(name, history.ActionLogin, AuditThrottled, history.ResultDenied, r.RemoteAddr)
		g.log.Warn("logins refused: too many failures from this address", "remote", r.RemoteAddr, "name", name, "retry_after", te.RetryAfter)
	}
}

// AuditThrottled is the target of the audit entry of a login refused
// because its address failed too often (once per refusal interval).
const AuditThrottled = "throttled"

// refuseIdentity answers a request whose identification failed with err:
// 429 with Retry-After when its address is throttled, else 401 (see
// unauthorized).
func refuseIdentity(w http.ResponseWriter, r *http.Request, err error) {
	var te *auth.ThrottledError
	if errors.As(err, &te) {
		w.Header().Set("Retry-After", strconv.Itoa(te.RetryAfterSeconds()))
		httpapi.Error(w, http.StatusTooManyRequests, "too many failed logins from your address: try again in %d s", te.RetryAfterSeconds())
		return
	}
	unauthorized(w, r, err)
}

// sameOrigin refuses a state-changing request sent by a page of another
// origin (a browser always sends Origin on POST and DELETE; curl sends
// none).
func (g *Gateway) sameOrigin(w http.ResponseWriter, r *http.Request) bool {
	if origin.Allowed(r, g.cfg.AllowedOrigins) {
		return true
	}
	httpapi.Error(w, http.StatusForbidden, "cross-origin request from %q refused", r.Header.Get("Origin"))
	return false
}

// guardAPI identifies an API request and checks its role: watching needs
// viewer, changing anything needs operator (and the same origin).
func (g *Gateway) guardAPI(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := g.identify(r, false)
		switch {
		case err != nil:
			refuseIdentity(w, r, err)
			return
		case !id.CanWatch():
			httpapi.Error(w, http.StatusForbidden, "role %s may not use the API", id.Role)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if !g.sameOrigin(w, r) {
				return
			}
			if !id.CanCommand() {
				httpapi.Error(w, http.StatusForbidden, "role %s may watch but not command", id.Role)
				return
			}
		}
		next(w, r.WithContext(auth.NewContext(r.Context(), id)))
	}
}

// unauthorized answers 401 to a request whose credentials are missing or
// wrong (err says which), asking for HTTP Basic credentials, except from
// a script of a page (the dashboard's fetch after its session ended):
// there the header would make the browser pop up its own login box over
// the dashboard, which sends the page to /login instead.
func unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode == "" || mode == "navigate" {
		w.Header().Set("WWW-Authenticate", `Basic realm="switchyard", charset="UTF-8"`)
	}
	httpapi.Error(w, http.StatusUnauthorized, "%v: log in, or send HTTP Basic credentials or a Bearer token", err)
}

// refuseDevices answers 403 to a board's credentials on every path but
// /healthz and the mounted routes open to the device role (patterns in
// open): the device role has no other HTTP access, not even to pages that
// are otherwise public.
func (g *Gateway) refuseDevices(mux *http.ServeMux, open map[string]bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = withBasicMemo(r)
		if g.cfg.Auth != nil && r.URL.Path != "/healthz" && hasCredentials(r) {
			_, pattern := mux.Handler(r)
			if !open[pattern] { // a route open to boards checks the role itself
				if id, err := g.identify(r, true); err == nil && id.Role == auth.RoleDevice {
					httpapi.Error(w, http.StatusForbidden, "role device has no HTTP access here")
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// hasCredentials reports whether r carries any credentials at all.
func hasCredentials(r *http.Request) bool {
	if r.Header.Get("Authorization") != "" || r.URL.Query().Get("token") != "" {
		return true
	}
	_, err := r.Cookie(sessionCookie)
	return err == nil
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
		id, err = g.cfg.Auth.Login(name, pw, r.RemoteAddr)
		g.noteThrottled(r, name, err)
	}
	code, msg := http.StatusUnauthorized, "Wrong name or password."
	var te *auth.ThrottledError
	if errors.As(err, &te) {
		code, msg = http.StatusTooManyRequests, fmt.Sprintf("Too many failed logins from your address. Try again in %s.", waitText(te.RetryAfterSeconds()))
		w.Header().Set("Retry-After", strconv.Itoa(te.RetryAfterSeconds()))
	} else if err == nil && !id.CanWatch() {
		// Right credentials, but of a role with no HTTP access (device).
		err = fmt.Errorf("role %s has no dashboard", id.Role)
		code, msg = http.StatusForbidden, fmt.Sprintf("The %s role has no access to the dashboard.", id.Role)
	}
	if err != nil {
		if code != http.StatusTooManyRequests { // audited once per interval by noteThrottled
			res := history.ResultFailed
			if code == http.StatusForbidden {
				res = history.ResultDenied
			}
			g.audit(name, history.ActionLogin, "", res, r.RemoteAddr)
			g.log.Info("login refused", "name", name, "remote", r.RemoteAddr, "err", err)
		}
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
	g.audit(name, history.ActionLogin, "", history.ResultOK, r.RemoteAddr)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// waitText says n seconds the way a person reads it: "45 seconds", "2 minutes".
func waitText(n int) string {
	switch {
	case n == 1:
		return "1 second"
	case n < 60:
		return fmt.Sprintf("%d seconds", n)
	case n < 120:
		return "1 minute"
	}
	return fmt.Sprintf("%d minutes", (n+59)/60)
}

// logout ends the request's session: its cookie no longer identifies
// anybody, here or after a restart (see RevokedSessions), and the
// WebSockets it opened are closed.
func (g *Gateway) logout(w http.ResponseWriter, r *http.Request) {
	if !g.sameOrigin(w, r) {
		return
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		if name, _, ok := g.sessions.verify(c.Value, time.Now()); ok {
			g.audit(name, history.ActionLogout, "", history.ResultOK, r.RemoteAddr)
		}
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
