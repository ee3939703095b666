// Routes: Handler, every path the gateway serves, and its JSON answers
// (errors included).

package wsgateway

import (
	"fmt"
	"io"
	"net/http"
	"strings"

	"switchyard/auth"
	"switchyard/internal/httpapi"
)

// Handler returns the HTTP handler for the dashboard, /ws, /ws/<id>, the
// REST API, /healthz, /metrics and the mounted routes (Config.Routes).
func (g *Gateway) Handler() http.Handler { return g.handler }

// newHandler builds the handler Handler returns; a mounted route that
// is invalid or collides with another is an error.
func (g *Gateway) newHandler() (http.Handler, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) { g.serveWS(w, r, "") })
	mux.HandleFunc("GET /ws/{id}", func(w http.ResponseWriter, r *http.Request) { g.serveWS(w, r, r.PathValue("id")) })
	mux.HandleFunc("GET /api/devices", g.guardAPI(g.listDevices))
	mux.HandleFunc("GET /api/devices/{id}", g.guardAPI(g.getDevice))
	mux.HandleFunc("POST /api/devices/{id}/led", g.guardAPI(g.postLED))
	mux.HandleFunc("DELETE /api/devices/{id}", g.guardAPI(g.deleteDevice))
	mux.HandleFunc("PATCH /api/devices/{id}", g.guardAPI(g.patchDevice))
	mux.HandleFunc("GET /api/commands/{id}", g.guardAPI(g.getCommand))
	mux.HandleFunc("GET /api/groups", g.guardAPI(g.listGroups))
	mux.HandleFunc("POST /api/groups/{name}/led", g.guardAPI(g.postGroupLED))
	mux.HandleFunc("POST /api/tags/{tag}/led", g.guardAPI(g.postTagLED))
	mux.HandleFunc("GET /api/me", g.guardAPI(g.me))
	mux.HandleFunc("GET /healthz", g.healthz)
	mux.HandleFunc("GET /metrics", g.serveMetrics)
	mux.HandleFunc("GET /login", g.loginForm)
	mux.HandleFunc("POST /login", g.login)
	mux.HandleFunc("POST /logout", g.logout)
	mux.HandleFunc("GET /", g.serveIndex)
	mux.HandleFunc("GET /api/", apiNoGET(mux)) // not the dashboard's files
	// The patterns of the mounted routes open to boards.
	forDevices := map[string]bool{}
	for i, rt := range g.cfg.Routes {
		err := checkRoute(rt)
		if err == nil {
			err = handle(mux, rt.Pattern, g.guardRoute(rt))
		}
		if err != nil {
			return nil, fmt.Errorf("routes[%d] %q: %w", i, rt.Pattern, err)
		}
		if rt.Role == auth.RoleDevice {
			forDevices[rt.Pattern] = true
		}
	}
	return g.refuseDevices(mux, forDevices, jsonErrors(mux)), nil
}

// jsonErrors answers in JSON ({"error": ...}) where mux matches no pattern:
// 404 for a path it does not serve, 405 (with Allow) for a method a path
// does not take. ServeMux would answer those in plain text.
func jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern == "" {
			rec := &statusOnly{header: http.Header{}}
			h.ServeHTTP(rec, r)
			if rec.code == http.StatusNotFound || rec.code == http.StatusMethodNotAllowed {
				if allow := rec.header.Get("Allow"); allow != "" {
					w.Header().Set("Allow", allow)
				}
				httpapi.Error(w, rec.code, "%s %s: %s", r.Method, r.URL.Path, strings.ToLower(http.StatusText(rec.code)))
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// apiNoGET answers a GET under /api/ that no API pattern takes: 405 (with
// Allow) when the path takes other methods, else 404 (both in JSON).
func apiNoGET(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			httpapi.Error(w, http.StatusNotFound, "GET %s: not found", r.URL.Path)
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		httpapi.Error(w, http.StatusMethodNotAllowed, "GET %s: method not allowed", r.URL.Path)
	}
}

// statusOnly is a ResponseWriter that keeps the status and the header and
// drops the body.
type statusOnly struct {
	header http.Header
	code   int
}

func (s *statusOnly) Header() http.Header { return s.header }

func (s *statusOnly) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
}

func (s *statusOnly) Write(b []byte) (int, error) {
	s.WriteHeader(http.StatusOK)
	return len(b), nil
}

func (g *Gateway) healthz(w http.ResponseWriter, _ *http.Request) {
	if err := g.Healthy(); err != nil {
		httpapi.Error(w, http.StatusServiceUnavailable, "unhealthy: %v", err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}
