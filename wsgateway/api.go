package wsgateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

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
	mux.HandleFunc("GET /healthz", g.healthz)
	mux.HandleFunc("GET /metrics", g.serveMetrics)
	mux.HandleFunc("GET /login", g.loginForm)
	mux.HandleFunc("POST /login", g.login)
	mux.HandleFunc("POST /logout", g.logout)
	mux.HandleFunc("GET /", g.serveIndex)
	return mux
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
	var body struct {
		Action *string `json:"action"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, devices.MaxBrowserMessage))
	if err := dec.Decode(&body); err != nil {
		httpError(w, http.StatusBadRequest, `bad body: %v; want {"action":"toggle"}`, err)
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		httpError(w, http.StatusBadRequest, `bad body: data after the JSON object; want {"action":"toggle"}`)
		return
	}
	if body.Action == nil {
		httpError(w, http.StatusBadRequest, `bad body: missing "action" (toggle, on or off)`)
		return
	}
	cmd, err := devices.ParseAction(*body.Action)
	if err != nil {
		httpError(w, http.StatusBadRequest, "%v", err)
		return
	}
	switch err := g.command(id, cmd); {
	case err == nil:
		writeJSON(w, http.StatusAccepted, map[string]string{"device": id, "command": cmd.Payload()})
	case errors.Is(err, errUnknownDevice):
		httpError(w, http.StatusNotFound, "%v", err)
	case errors.Is(err, errOffline):
		httpError(w, http.StatusConflict, "%v", err)
	default:
		httpError(w, http.StatusServiceUnavailable, "%v", err)
	}
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
