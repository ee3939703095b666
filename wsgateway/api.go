// The REST API's handlers: devices, commands and groups as JSON (names
// and tags are in meta.go).

package wsgateway

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"switchyard/auth"
	"switchyard/devices"
	"switchyard/history"
	"switchyard/internal/httpapi"
)

// deviceJSON is a device in the REST API.
type deviceJSON struct {
	ID       string          `json:"id"`
	Name     string          `json:"name"`
	Online   bool            `json:"online"`
	LED      *string         `json:"led"`
	Count    *int64          `json:"count"`
	Info     json.RawMessage `json:"info"`
	LastSeen *string         `json:"last_seen"`
	Tags     []string        `json:"tags"`     // sorted; [] when none
	Firmware *string         `json:"firmware"` // info's firmware; null when unknown
	New      bool            `json:"new"`      // connected, but neither declared nor adopted (Config.Adopted)
}

// toJSON is d in the API.
func (g *Gateway) toJSON(d *devices.Device) deviceJSON {
	j := deviceJSON{ID: d.ID, Name: d.Name(), Online: d.Online, Tags: d.Tags, New: g.isNew(d)}
	if j.Tags == nil {
		j.Tags = []string{}
	}
	if d.Info.Firmware != "" {
		fw := d.Info.Firmware
		j.Firmware = &fw
	}
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
		out[i] = g.toJSON(&snap[i])
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

// pathDevice returns the known device the path's {id} names, or answers
// 404.
func (g *Gateway) pathDevice(w http.ResponseWriter, r *http.Request) (devices.Device, bool) {
	id := r.PathValue("id")
	d, ok := g.device(id)
	if !ok {
		httpapi.Error(w, http.StatusNotFound, "unknown device %q", id)
	}
	return d, ok
}

func (g *Gateway) getDevice(w http.ResponseWriter, r *http.Request) {
	if d, ok := g.pathDevice(w, r); ok {
		httpapi.WriteJSON(w, http.StatusOK, g.toJSON(&d))
	}
}

func (g *Gateway) postLED(w http.ResponseWriter, r *http.Request) {
	d, known := g.pathDevice(w, r)
	if !known {
		return
	}
	id := d.ID
	cmd, ok := decodeAction(w, r)
	if !ok {
		return
	}
	c, err := g.command(id, cmd, requestActor(r))
	g.audit(requestActor(r), history.ActionCommand, id, auditResult(err), r.RemoteAddr)
	switch {
	case err == nil:
		httpapi.WriteJSON(w, http.StatusAccepted, toCommandJSON(&c))
	case errors.Is(err, errUnknownDevice):
		httpapi.Error(w, http.StatusNotFound, "%v", err)
	case errors.Is(err, errOffline):
		httpapi.Error(w, http.StatusConflict, "%v", err)
	default:
		httpapi.Error(w, http.StatusServiceUnavailable, "%v", err)
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
		httpapi.Error(w, http.StatusBadRequest, `bad body: %v; want {"action":"toggle"}`, err)
		return devices.CmdNone, false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		httpapi.Error(w, http.StatusBadRequest, `bad body: data after the JSON object; want {"action":"toggle"}`)
		return devices.CmdNone, false
	}
	if body.Action == nil {
		httpapi.Error(w, http.StatusBadRequest, `bad body: missing "action" (toggle, on or off)`)
		return devices.CmdNone, false
	}
	cmd, err := devices.ParseAction(*body.Action)
	if err != nil {
		httpapi.Error(w, http.StatusBadRequest, "%v", err)
		return devices.CmdNone, false
	}
	return cmd, true
}

func (g *Gateway) deleteDevice(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if hook := g.cfg.Forgetting; hook != nil && g.Known(id) {
		if err := hook(r.Context(), id); err != nil {
			g.audit(requestActor(r), history.ActionForget, id, history.ResultFailed, r.RemoteAddr)
			httpapi.Error(w, http.StatusInternalServerError, "forget %s: %v", id, err)
			return
		}
	}
	err := g.forget(id, requestActor(r))
	if !errors.Is(err, errUnknownDevice) {
		g.audit(requestActor(r), history.ActionForget, id, auditResult(err), r.RemoteAddr)
	}
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, errUnknownDevice):
		httpapi.Error(w, http.StatusNotFound, "%v", err)
	default:
		httpapi.Error(w, http.StatusServiceUnavailable, "%v", err)
	}
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
		httpapi.Error(w, http.StatusNotFound, "unknown command %q", r.PathValue("id"))
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, toCommandJSON(&c))
}

func (g *Gateway) listGroups(w http.ResponseWriter, _ *http.Request) {
	out := map[string][]string{allGroup: g.groupMembers(allGroup)}
	for name := range g.cfg.Groups {
		out[name] = g.groupMembers(name)
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
}

func (g *Gateway) postGroupLED(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, ok := g.cfg.Groups[name]; !ok && name != allGroup {
		httpapi.Error(w, http.StatusNotFound, "unknown group %q", name)
		return
	}
	cmd, ok := decodeAction(w, r)
	if !ok {
		return
	}
	res := g.commandGroup(g.groupMembers(name), cmd, requestActor(r))
	res.Group = name
	g.auditGroup(r, "group:"+name, res)
	httpapi.WriteJSON(w, http.StatusAccepted, res)
}

// meJSON is the caller as GET /api/me answers: the dashboard shows what
// the role allows (the Updates view to admins).
type meJSON struct {
	Name      string `json:"name"` // "" when anonymous
	Role      string `json:"role"`
	Anonymous bool   `json:"anonymous"`
}

func (g *Gateway) me(w http.ResponseWriter, r *http.Request) {
	id, _ := auth.FromContext(r.Context()) // guardAPI put it there
	httpapi.WriteJSON(w, http.StatusOK, meJSON{Name: id.Name, Role: id.Role.String(), Anonymous: id.Anonymous})
}
