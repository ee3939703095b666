// Names and tags people give boards: PATCH /api/devices/<id>, kept by
// Config.Meta across restarts, and tags as command targets
// (POST /api/tags/<tag>/led; /ws {"tag":…} is in commands.go).

package wsgateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"switchyard/devices"
	"switchyard/history"
	"switchyard/internal/httpapi"
)

// loadMetaTimeout bounds reading the saved names and tags at start.
const loadMetaTimeout = 30 * time.Second

// loadMeta sets on fleet the names and tags saved in ms; they win over the
// declared ones. A saved entry the fleet refuses (edited by hand, say) is
// logged and left out rather than stopping the control plane.
func loadMeta(fleet *devices.Fleet, ms MetaStore, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), loadMetaTimeout)
	defer cancel()
	saved, err := ms.DeviceMeta(ctx)
	if err != nil {
		return fmt.Errorf("load device names and tags: %w", err)
	}
	for _, m := range saved {
		if _, err := fleet.SetMeta(m, nil); err != nil {
			log.Warn("saved device name and tags ignored", "device", m.ID, "err", err)
		}
	}
	return nil
}

// reloadMeta applies the names and tags saved in Config.Meta that differ
// from the fleet's: those another control plane sharing the database
// set (sharedPoller). Browsers hear of each change as of a PATCH here.
// Without Config.Meta it does nothing.
func (g *Gateway) reloadMeta(ctx context.Context) error {
	ms := g.cfg.Meta
	if ms == nil {
		return nil
	}
	g.patchMu.Lock() // not between a PATCH's save and its apply
	defer g.patchMu.Unlock()
	saved, err := ms.DeviceMeta(ctx)
	if err != nil {
		return fmt.Errorf("reload device names and tags: %w", err)
	}
	return g.runOnLoop(func() {
		var evs []devices.Event
		for _, m := range saved {
			old := g.fleet.Meta(m.ID)
			if old.Name == m.Name && old.HasTags == m.HasTags && slices.Equal(old.Tags, m.Tags) {
				continue
			}
			n := len(evs)
			if evs, err = g.fleet.SetMeta(m, evs); err != nil {
				continue // refused at start already (loadMeta logs it)
			}
			if d, known := g.fleet.Get(m.ID); known && len(evs) > n && g.cfg.Observer != nil {
				g.cfg.Observer.DeviceChanged(d)
			}
		}
		g.fanOut(evs)
	})
}

// Tagged returns the ids of the known boards with tag t, sorted. It is
// safe for concurrent use.
func (g *Gateway) Tagged(t string) []string {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.fleet.Tagged(t)
}

// patchBody is the body of PATCH /api/devices/<id>; a field left out (or
// null) is left as it is.
type patchBody struct {
	Name *string   `json:"name"`
	Tags *[]string `json:"tags"`
}

// patchDevice sets a board's name and tags: saved first (when Config.Meta
// is set), then applied on the loop, in order with the fleet's events, and
// broadcast to every /ws browser as a meta event.
func (g *Gateway) patchDevice(w http.ResponseWriter, r *http.Request) {
	if _, known := g.pathDevice(w, r); !known {
		return
	}
	id := r.PathValue("id")
	var body patchBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, devices.MaxBrowserMessage))
	dec.DisallowUnknownFields()
	const want = `want {"name":"…","tags":["…"]}, either field optional`
	if err := dec.Decode(&body); err != nil {
		httpapi.Error(w, http.StatusBadRequest, "bad body: %v; %s", err, want)
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		httpapi.Error(w, http.StatusBadRequest, "bad body: data after the JSON object; %s", want)
		return
	}
	if body.Name == nil && body.Tags == nil {
		httpapi.Error(w, http.StatusBadRequest, "bad body: nothing to change; %s", want)
		return
	}
	var tags []string
	if body.Name != nil {
		if err := devices.ValidateName(*body.Name); err != nil {
			httpapi.Error(w, http.StatusBadRequest, "name: %v", err)
			return
		}
	}
	if body.Tags != nil {
		var err error
		if tags, err = devices.NormalizeTags(*body.Tags); err != nil {
			httpapi.Error(w, http.StatusBadRequest, "tags: %v", err)
			return
		}
	}

	// One change at a time, from reading the old meta to applying the
	// new: two PATCHes of one board are saved in the order they apply.
	g.patchMu.Lock()
	defer g.patchMu.Unlock()
	g.mu.RLock()
	old, known := g.fleet.Meta(id), g.fleet.Known(id)
	g.mu.RUnlock()
	if !known {
		httpapi.Error(w, http.StatusNotFound, "unknown device %q", id) // forgotten meanwhile
		return
	}
	m := old
	if body.Name != nil {
		m.Name = *body.Name
	}
	if body.Tags != nil {
		m.Tags, m.HasTags = tags, true
	}
	var audits []history.Action
	if m.Name != old.Name {
		audits = append(audits, history.ActionRename)
	}
	if m.HasTags != old.HasTags || !slices.Equal(m.Tags, old.Tags) {
		audits = append(audits, history.ActionRetag)
	}
	if ms := g.cfg.Meta; ms != nil {
		if err := ms.SaveDeviceMeta(r.Context(), m); err != nil {
			g.auditEach(r, id, history.ResultFailed, audits...)
			httpapi.Error(w, http.StatusInternalServerError, "%v", err)
			return
		}
	}
	var d devices.Device
	var setErr error
	err := g.runOnLoop(func() {
		var evs []devices.Event
		if evs, setErr = g.fleet.SetMeta(m, nil); setErr != nil {
			return // checked above: not expected
		}
		g.fanOut(evs)
		if d, known = g.fleet.Get(id); known && g.cfg.Observer != nil {
			g.cfg.Observer.DeviceChanged(d)
		}
	})
	switch {
	case err != nil:
		httpapi.Error(w, http.StatusServiceUnavailable, "%v", err)
	case setErr != nil:
		httpapi.Error(w, http.StatusBadRequest, "%v", setErr)
	case !known:
		// Forgotten meanwhile: its name and tags wait for it.
		httpapi.Error(w, http.StatusNotFound, "unknown device %q", id)
	default:
		g.auditEach(r, id, history.ResultOK, audits...)
		httpapi.WriteJSON(w, http.StatusOK, g.toJSON(&d))
	}
}

// auditEach records each of actions, done by the caller of r to target
// with result.
func (g *Gateway) auditEach(r *http.Request, target string, result history.Result, actions ...history.Action) {
	for _, a := range actions {
		g.audit(requestActor(r), a, target, result, r.RemoteAddr)
	}
}

// postTagLED switches every known board with the path's tag, as
// postGroupLED does a group's: 202 with a command per board and the boards
// skipped; 404 when no board has the tag.
func (g *Gateway) postTagLED(w http.ResponseWriter, r *http.Request) {
	tag := r.PathValue("tag")
	ids := g.Tagged(tag)
	if len(ids) == 0 {
		httpapi.Error(w, http.StatusNotFound, "no board has tag %q", tag)
		return
	}
	cmd, ok := decodeAction(w, r)
	if !ok {
		return
	}
	res := g.commandGroup(ids, cmd, requestActor(r))
	res.Tag = tag
	g.auditGroup(r, "tag:"+tag, res)
	httpapi.WriteJSON(w, http.StatusAccepted, res)
}
