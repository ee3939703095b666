package wsgateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"switchyard/auth"
	"switchyard/devices"
)

// Handler returns the HTTP handler for the dashboard, /ws, /ws/<id>, the
// REST API, /healthz and /metrics.
func (g *Gateway) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) { g.serveWS(w, r, "") })
	mux.HandleFunc("GET /ws/{id}", func(w http.ResponseWriter, r *http.Request) { g.serveWS(w, r, r.PathValue("id")) })
	mux.HandleFunc("GET /api/devices", g.guardAPI(g.listDevices))
	mux.HandleFunc("GET /api/devices/{id}", g.guardAPI(g.getDevice))
	mux.HandleFunc("POST /api/devices/{id}/led", g.guardAPI(g.postLED))
	mux.HandleFunc("DELETE /api/devices/{id}", g.guardAPI(g.deleteDevice))
	mux.HandleFunc("GET /api/commands/{id}", g.guardAPI(g.getCommand))
	mux.HandleFunc("GET /api/groups", g.guardAPI(g.listGroups))
	mux.HandleFunc("POST /api/groups/{name}/led", g.guardAPI(g.postGroupLED))
	mux.HandleFunc("GET /healthz", g.healthz)
	mux.HandleFunc("GET /metrics", g.serveMetrics)
	mux.HandleFunc("GET /login", g.loginForm)
	mux.HandleFunc("POST /login", g.login)
	mux.HandleFunc("POST /logout", g.logout)
	mux.HandleFunc("GET /", g.serveIndex)
	mux.HandleFunc("GET /api/", apiNoGET(mux)) // not the dashboard's files
	return g.refuseDevices(jsonErrors(mux))
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
				httpError(w, rec.code, "%s %s: %s", r.Method, r.URL.Path, strings.ToLower(http.StatusText(rec.code)))
				return
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// apiNoGET answers a GET under /api/ that no API pattern takes: 405 when
// the path takes other methods, else 404 (both in JSON).
func apiNoGET(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{http.MethodPost, http.MethodDelete} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := mux.Handler(probe); pattern != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			httpError(w, http.StatusNotFound, "GET %s: not found", r.URL.Path)
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		httpError(w, http.StatusMethodNotAllowed, "GET %s: method not allowed", r.URL.Path)
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

// refuseDevices answers 403 to a board's credentials on every path but
// /healthz: the device role has no HTTP access at all, not even to pages
// that are otherwise public.
func (g *Gateway) refuseDevices(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.cfg.Auth != nil && r.URL.Path != "/healthz" && hasCredentials(r) {
			if id, err := g.identify(r, true); err == nil && id.Role == auth.RoleDevice {
				httpError(w, http.StatusForbidden, "role device has no HTTP access")
				return
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

// deviceJSON is a device in the REST API.
type deviceJSON struct {
	ID       string          `json:"id"`
	Name     string          `json:"name"`
	Online   bool            `json:"online"`
	LED      *string         `json:"led"`
	Count    *int64          `json:"count"`
	Info     json.RawMessage `json:"info"`
	LastSeen *string         `json:"last_seen"`
}

func toJSON(d *devices.Device) deviceJSON {
	j := deviceJSON{ID: d.ID, Name: d.Name(), Online: d.Online}
	if d.HasLED {
		s := devices.LEDPayload(d.LEDOn)
		j.LED = &s
	}
	if d.HasCount {
		n := d.Count
		j.Count = &n
	}
	if d.Info.Raw != nil {
		j.Info = d.Info.Raw
	}
	if !d.LastSeen.IsZero() {
		s := d.LastSeen.UTC().Format(time.RFC3339)
		j.LastSeen = &s
	}
	return j
}

func (g *Gateway) listDevices(w http.ResponseWriter, _ *http.Request) {
	g.mu.RLock()
	snap := g.fleet.Snapshot(nil)
	g.mu.RUnlock()
	out := make([]deviceJSON, len(snap))
	for i := range snap {
		out[i] = toJSON(&snap[i])
	}
	writeJSON(w, http.StatusOK, out)
}

func (g *Gateway) getDevice(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	g.mu.RLock()
	d, ok := g.fleet.Get(id)
	g.mu.RUnlock()
	if !ok {
		httpError(w, http.StatusNotFound, "unknown device %q", id)
		return
	}
	writeJSON(w, http.StatusOK, toJSON(&d))
}

func (g *Gateway) postLED(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	g.mu.RLock()
	_, known := g.fleet.Get(id)
	g.mu.RUnlock()
	if !known {
		httpError(w, http.StatusNotFound, "unknown device %q", id)
		return
	}
	cmd, ok := decodeAction(w, r)
	if !ok {
		return
	}
	switch c, err := g.command(id, cmd); {
	case err == nil:
		writeJSON(w, http.StatusAccepted, toCommandJSON(&c))
	case errors.Is(err, errUnknownDevice):
		httpError(w, http.StatusNotFound, "%v", err)
	case errors.Is(err, errOffline):
		httpError(w, http.StatusConflict, "%v", err)
	default:
		httpError(w, http.StatusServiceUnavailable, "%v", err)
	}
}

// decodeAction reads a {"action":"toggle"|"on"|"off"} body, answering 400
// itself when it is bad.
func decodeAction(w http.ResponseWriter, r *http.Request) (devices.Command, bool) {
	var body struct {
		Action *string `json:"action"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, devices.MaxBrowserMessage))
	if err := dec.Decode(&body); err != nil {
		httpError(w, http.StatusBadRequest, `bad body: %v; want {"action":"toggle"}`, err)
		return devices.CmdNone, false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		httpError(w, http.StatusBadRequest, `bad body: data after the JSON object; want {"action":"toggle"}`)
		return devices.CmdNone, false
	}
	if body.Action == nil {
		httpError(w, http.StatusBadRequest, `bad body: missing "action" (toggle, on or off)`)
		return devices.CmdNone, false
	}
	cmd, err := devices.ParseAction(*body.Action)
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return devices.CmdNone, false
	}
	return cmd, true
}

func (g *Gateway) deleteDevice(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	switch err := g.forget(id); {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, errUnknownDevice):
		httpError(w, http.StatusNotFound, "%v", err)
	default:
		httpError(w, http.StatusServiceUnavailable, "%v", err)
	}
}

func (g *Gateway) healthz(w http.ResponseWriter, _ *http.Request) {
	if err := g.Healthy(); err != nil {
		httpError(w, http.StatusServiceUnavailable, "unhealthy: %v", err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "ok\n")
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client may have gone; nothing to do
}

// httpError answers {"error": message}.
func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// commandJSON is a tracked command in the REST API.
type commandJSON struct {
	ID      string `json:"id"`
	Device  string `json:"device"`
	Command string `json:"command"`
	State   string `json:"state"`
	Created string `json:"created"`
	Updated string `json:"updated"`
}

func toCommandJSON(c *command) commandJSON {
	return commandJSON{ID: c.ID, Device: c.Device, Command: c.Command.Payload(), State: c.State,
		Created: c.Created.UTC().Format(time.RFC3339Nano), Updated: c.Updated.UTC().Format(time.RFC3339Nano)}
}

func (g *Gateway) getCommand(w http.ResponseWriter, r *http.Request) {
	c, ok := g.cmds.get(r.PathValue("id"))
	if !ok {
		httpError(w, http.StatusNotFound, "unknown command %q", r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, toCommandJSON(&c))
}

func (g *Gateway) listGroups(w http.ResponseWriter, _ *http.Request) {
	out := map[string][]string{allGroup: g.groupMembers(allGroup)}
	for name := range g.cfg.Groups {
		out[name] = g.groupMembers(name)
	}
	writeJSON(w, http.StatusOK, out)
}

func (g *Gateway) postGroupLED(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, ok := g.cfg.Groups[name]; !ok && name != allGroup {
		httpError(w, http.StatusNotFound, "unknown group %q", name)
		return
	}
	cmd, ok := decodeAction(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusAccepted, g.commandGroup(name, cmd))
}

// groupResult answers a group command: a command per board, and why the
// others were skipped.
type groupResult struct {
	Group    string            `json:"group"`
	Commands []commandJSON     `json:"commands"`
	Skipped  map[string]string `json:"skipped"`
}

// commandGroup sends cmd to every board of a group; each gets its own
// led/set and its own tracked command.
func (g *Gateway) commandGroup(name string, cmd devices.Command) groupResult {
	res := groupResult{Group: name, Commands: []commandJSON{}, Skipped: map[string]string{}}
	for _, id := range g.groupMembers(name) {
		c, err := g.command(id, cmd)
		if err != nil {
			res.Skipped[id] = err.Error()
			continue
		}
		res.Commands = append(res.Commands, toCommandJSON(&c))
	}
	return res
}

// allGroup names every known board.
const allGroup = "all"

// groupMembers returns the ids of a group, sorted ("all": every known board).
func (g *Gateway) groupMembers(name string) []string {
	if name == allGroup {
		g.mu.RLock()
		defer g.mu.RUnlock()
		var ids []string
		for _, d := range g.fleet.Snapshot(nil) {
			ids = append(ids, d.ID)
		}
		return ids
	}
	ids := append([]string(nil), g.cfg.Groups[name]...)
	slices.Sort(ids)
	return ids
}
