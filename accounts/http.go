// The HTTP side: the routes, reading bodies, answering and auditing.

package accounts

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"switchyard/auth"
	"switchyard/history"
	"switchyard/internal/httpapi"
	"switchyard/store"
)

// Handler is one HTTP route of the service, for the gateway to serve
// behind its access rules.
type Handler = httpapi.Route

// Handlers returns the service's routes. The token routes are open to
// every viewer: the handler lets a user manage its own tokens, and only
// an admin anybody's.
func (s *Service) Handlers() []Handler {
	h := func(pattern string, role auth.Role, fn http.HandlerFunc) Handler {
		return Handler{Pattern: pattern, Role: role, Handler: fn}
	}
	return []Handler{
		h("POST /api/boards", auth.RoleAdmin, s.createBoard),
		h("GET /api/users", auth.RoleAdmin, s.listUsers),
		h("POST /api/users", auth.RoleAdmin, s.createUser),
		h("PATCH /api/users/{name}", auth.RoleAdmin, s.changeUser),
		h("DELETE /api/users/{name}", auth.RoleAdmin, s.deleteUser),
		h("POST /api/users/{name}/tokens", auth.RoleViewer, s.createToken),
		h("DELETE /api/users/{name}/tokens/{id}", auth.RoleViewer, s.deleteToken),
	}
}

// maxBody bounds a request's JSON body.
const maxBody = 16 << 10

// call is one request to a route that changes something: every answer
// goes through ok or fail, which also audit it.
type call struct {
	s      *Service
	w      http.ResponseWriter
	r      *http.Request
	who    auth.Identity // the caller (the gateway put it in the context)
	action history.Action
	target string
}

func (s *Service) newCall(w http.ResponseWriter, r *http.Request, a history.Action, target string) *call {
	who, _ := auth.FromContext(r.Context())
	return &call{s: s, w: w, r: r, who: who, action: a, target: target}
}

// ok answers v with code and audits the action as done.
func (c *call) ok(code int, v any) {
	c.s.audit(c.who.Actor(), c.action, c.target, history.ResultOK, c.r.RemoteAddr)
	if v == nil {
		c.w.WriteHeader(code)
		return
	}
	httpapi.WriteJSON(c.w, code, v)
}

// fail answers {"error": …} with code and audits the action as denied
// (403) or failed.
func (c *call) fail(code int, format string, args ...any) {
	res := history.ResultFailed
	if code == http.StatusForbidden || code == http.StatusUnauthorized {
		res = history.ResultDenied
	}
	c.s.audit(c.who.Actor(), c.action, c.target, res, c.r.RemoteAddr)
	httpapi.Error(c.w, code, format, args...)
}

// applied answers 500 when err, the error of applying a change that is
// saved (see Service.apply), is not nil, and reports whether it is nil.
func (c *call) applied(err error) bool {
	if err != nil {
		c.fail(http.StatusInternalServerError, "saved, but not in effect until the next change or restart: %v", err)
		return false
	}
	return true
}

// storeFailed answers a store's error: 404 for store.ErrNotFound (the
// user or token went meanwhile), else 500.
func (c *call) storeFailed(err error) {
	code := http.StatusInternalServerError
	if errors.Is(err, store.ErrNotFound) {
		code = http.StatusNotFound
	}
	c.fail(code, "%v", err)
}

// decode reads the request's body, one JSON object with only the fields
// of v, into v; on an error it answers 400 itself (want describes the
// body) and returns false.
func (c *call) decode(v any, want string) bool {
	dec := json.NewDecoder(http.MaxBytesReader(c.w, c.r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		c.fail(http.StatusBadRequest, "bad body: %v; want %s", err, want)
		return false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		c.fail(http.StatusBadRequest, "bad body: data after the JSON object; want %s", want)
		return false
	}
	return true
}
