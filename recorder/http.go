package recorder

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"switchyard/auth"
	"switchyard/devices"
	"switchyard/history"
	"switchyard/internal/httpapi"
)

// Handler is one HTTP route of the recorder, for the gateway to serve
// behind its access rules.
type Handler = httpapi.Route

// Handlers returns the history API's routes (contract: "History, audit
// log, tags"). They read the database: what was recorded since the last
// flush (FlushEvery) is not in their answers yet.
func (r *Recorder) Handlers() []Handler {
	return []Handler{
		{Pattern: "GET /api/devices/{id}/history", Role: auth.RoleViewer, Handler: r.forDevice(r.getHistory)},
		{Pattern: "GET /api/devices/{id}/counts", Role: auth.RoleViewer, Handler: r.forDevice(r.getCounts)},
		{Pattern: "GET /api/audit", Role: auth.RoleAdmin, Handler: http.HandlerFunc(r.getAudit)},
	}
}

// queryTimeout bounds the database's answer to one request.
const queryTimeout = 10 * time.Second

// eventJSON is an event as GET /api/devices/<id>/history answers it. By
// is always there: "" when who caused the event is not known.
type eventJSON struct {
	At    string       `json:"at"`
	Kind  history.Kind `json:"kind"`
	Value string       `json:"value"`
	By    string       `json:"by"`
}

// entryJSON is an audit entry as GET /api/audit answers it; every field is
// always there, "" when empty.
type entryJSON struct {
	At     string         `json:"at"`
	Actor  string         `json:"actor"`
	Action history.Action `json:"action"`
	Target string         `json:"target"`
	Result history.Result `json:"result"`
	Remote string         `json:"remote"`
}

// pointJSON is a count point as /counts answers it: [RFC 3339, count].
type pointJSON history.Point

func (p pointJSON) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 40)
	b = append(b, '[', '"')
	b = p.At.UTC().AppendFormat(b, time.RFC3339)
	b = append(b, '"', ',')
	b = strconv.AppendInt(b, p.Count, 10)
	return append(b, ']'), nil
}

// stamp is t as the API writes times: RFC 3339 in UTC, to the second.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// forDevice serves a board's route: serve gets the board's id once the
// board is known or has history (else the answer is 404), the query's
// parameters, and a context bounded by queryTimeout.
func (r *Recorder) forDevice(serve func(ctx context.Context, w http.ResponseWriter, id string, v url.Values)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx, cancel := context.WithTimeout(req.Context(), queryTimeout)
		defer cancel()
		if id, ok := r.pathDevice(ctx, w, req); ok {
			serve(ctx, w, id, req.URL.Query())
		}
	})
}

// getHistory answers GET /api/devices/{id}/history?since=&until=&limit=.
func (r *Recorder) getHistory(ctx context.Context, w http.ResponseWriter, id string, v url.Values) {
	q, err := history.ParseQuery(v.Get("since"), v.Get("until"), v.Get("limit"))
	if err != nil {
		httpapi.Error(w, http.StatusBadRequest, "%v", err)
		return
	}
	events, err := r.store.Events(ctx, id, q)
	if err != nil {
		httpapi.Error(w, http.StatusInternalServerError, "%v", err)
		return
	}
	out := make([]eventJSON, len(events))
	for i, e := range events {
		out[i] = eventJSON{At: stamp(e.At), Kind: e.Kind, Value: e.Value, By: e.By}
	}
	httpapi.WriteJSON(w, http.StatusOK, struct {
		Events []eventJSON `json:"events"`
	}{out})
}

// getCounts answers GET /api/devices/{id}/counts?since=&until=&step=:
// the last count of each step, oldest first, since now − 24 h by default.
func (r *Recorder) getCounts(ctx context.Context, w http.ResponseWriter, id string, v url.Values) {
	q, err := history.ParseQuery(v.Get("since"), v.Get("until"), "")
	if err != nil {
		httpapi.Error(w, http.StatusBadRequest, "%v", err)
		return
	}
	step, err := history.ParseStep(v.Get("step"))
	if err != nil {
		httpapi.Error(w, http.StatusBadRequest, "%v", err)
		return
	}
	if q.Since.IsZero() {
		q.Since = r.cfg.Now().Add(-history.DefaultCountsWindow)
	}
	pts, err := r.store.Points(ctx, id, q.Since, q.Until)
	if err != nil {
		httpapi.Error(w, http.StatusInternalServerError, "%v", err)
		return
	}
	pts = history.Downsample(pts, step)
	out := make([]pointJSON, len(pts))
	for i, p := range pts {
		out[i] = pointJSON(p)
	}
	httpapi.WriteJSON(w, http.StatusOK, struct {
		Step   string      `json:"step"`
		Points []pointJSON `json:"points"`
	}{history.FormatStep(step), out})
}

// getAudit answers GET /api/audit?since=&until=&limit=&actor=.
func (r *Recorder) getAudit(w http.ResponseWriter, req *http.Request) {
	ctx, cancel := context.WithTimeout(req.Context(), queryTimeout)
	defer cancel()
	v := req.URL.Query()
	q, err := history.ParseQuery(v.Get("since"), v.Get("until"), v.Get("limit"))
	if err != nil {
		httpapi.Error(w, http.StatusBadRequest, "%v", err)
		return
	}
	entries, err := r.store.AuditLog(ctx, q, v.Get("actor"))
	if err != nil {
		httpapi.Error(w, http.StatusInternalServerError, "%v", err)
		return
	}
	out := make([]entryJSON, len(entries))
	for i, e := range entries {
		out[i] = entryJSON{At: stamp(e.At), Actor: e.Actor, Action: e.Action, Target: e.Target, Result: e.Result, Remote: e.Remote}
	}
	httpapi.WriteJSON(w, http.StatusOK, struct {
		Entries []entryJSON `json:"entries"`
	}{out})
}

// pathDevice returns the request's board id when the board is known
// (Config.Known) or has history; otherwise it answers 404, as the
// gateway's /api/devices/<id> does for an unknown or invalid id, and
// reports false. The board is checked before the query, as everywhere in
// the API.
func (r *Recorder) pathDevice(ctx context.Context, w http.ResponseWriter, req *http.Request) (string, bool) {
	id := req.PathValue("id")
	if !devices.ValidID(id) {
		httpapi.Error(w, http.StatusNotFound, "unknown device %q", id)
		return "", false
	}
	if r.cfg.Known != nil && r.cfg.Known(id) {
		return id, true
	}
	has, err := r.store.HasHistory(ctx, id)
	if err != nil {
		httpapi.Error(w, http.StatusInternalServerError, "%v", err)
		return "", false
	}
	if !has {
		httpapi.Error(w, http.StatusNotFound, "unknown device %q", id)
		return "", false
	}
	return id, true
}
