// The audit log of the service's actions: firmware uploads and deletes,
// rollout starts, pauses, resumes and aborts.

package updates

import (
	"context"
	"net/http"
	"time"

	"switchyard/auth"
	"switchyard/history"
)

// Auditor keeps the audit log; Audit must not block.
type Auditor interface {
	Audit(e history.Entry)
}

// auditTarget is where a handler leaves what it acted on, when that is
// not in the path (the sha256 of an upload, the id of a new rollout).
type auditTargetKey struct{}

// setAuditTarget names what the request acted on in its audit entry.
func setAuditTarget(r *http.Request, target string) {
	if p, ok := r.Context().Value(auditTargetKey{}).(*string); ok {
		*p = target
	}
}

// statusWriter remembers the status of the answer.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// audited records each request to fn in the audit log (when there is
// one) as the action action(r) names: ok for a 2xx answer, denied for 401
// or 403, failed otherwise; the target is the path's {sha} or {id}, or
// what the handler set with setAuditTarget. A request whose action is ""
// (a path that names no action) is not recorded.
func (s *Service) audited(action func(*http.Request) history.Action, fn http.HandlerFunc) http.HandlerFunc {
	if s.cfg.Audit == nil {
		return fn
	}
	return func(w http.ResponseWriter, r *http.Request) {
		target := r.PathValue("sha")
		if target == "" {
			target = r.PathValue("id")
		}
		sw := &statusWriter{ResponseWriter: w}
		fn(sw, r.WithContext(context.WithValue(r.Context(), auditTargetKey{}, &target)))
		a := action(r)
		if a == "" {
			return
		}
		res := history.ResultFailed
		switch {
		case sw.code == 0 || sw.code < 300:
			res = history.ResultOK
		case sw.code == http.StatusUnauthorized || sw.code == http.StatusForbidden:
			res = history.ResultDenied
		}
		id, _ := auth.FromContext(r.Context())
		s.cfg.Audit.Audit(history.Entry{At: time.Now(), Actor: id.Actor(), Action: a, Target: target, Result: res, Remote: r.RemoteAddr})
	}
}

// always is an audited action that does not depend on the request.
func always(a history.Action) func(*http.Request) history.Action {
	return func(*http.Request) history.Action { return a }
}

// rolloutAction is the audited action of POST /api/rollouts/{id}/{action}.
func rolloutAction(r *http.Request) history.Action {
	switch r.PathValue("action") {
	case "pause":
		return history.ActionRolloutPause
	case "resume":
		return history.ActionRolloutResume
	case "abort":
		return history.ActionRolloutAbort
	}
	return ""
}
