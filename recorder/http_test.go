package recorder

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"switchyard/auth"
	"switchyard/history"
	"switchyard/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// apiServer serves the recorder's handlers on a real SQLite store holding
// a small history: board b1 (known) with events, counts and a forget,
// board gone (forgotten: history only), board known (known, no history),
// and an audit log. The clock is t0 + 2 h.
func apiServer(t *testing.T) *httptest.Server {
	t.Helper()
	st := openStore(t)
	c := newClock(t0.Add(2 * time.Hour))
	known := map[string]bool{"b1": true, "known": true}
	r := newRecorder(t, Config{Known: func(id string) bool { return known[id] }}, st, c)

	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for _, e := range []history.Event{
		{At: at(0), Device: "b1", Kind: history.KindOnline},
		{At: at(time.Second), Device: "b1", Kind: history.KindInfo, Value: "firmware 1.2.0"},
		{At: at(10 * time.Second), Device: "b1", Kind: history.KindLED, Value: "ON", By: "alice"},
		{At: at(10 * time.Second), Device: "b1", Kind: history.KindCommand, Value: "TOGGLE applied", By: "alice"},
		{At: at(20 * time.Second), Device: "b1", Kind: history.KindLED, Value: "OFF", By: history.ByMQTT("", "kitchen-switch")},
		{At: at(30 * time.Second), Device: "b1", Kind: history.KindLED, Value: "ON", By: history.ByBoard},
		{At: at(time.Minute), Device: "b1", Kind: history.KindOffline, Value: history.OfflineWill},
		{At: at(90 * time.Second), Device: "b1", Kind: history.KindOnline},
		{At: at(0), Device: "gone", Kind: history.KindOnline},
		{At: at(time.Hour), Device: "gone", Kind: history.KindForgotten, By: "bob"},
	} {
		r.Record(e)
	}
	for _, e := range []history.Entry{
		{At: at(0), Actor: "mallory", Action: history.ActionLogin, Result: history.ResultDenied, Remote: "192.0.2.7:51000"},
		{At: at(time.Second), Actor: "alice", Action: history.ActionLogin, Result: history.ResultOK, Remote: "192.0.2.8:51001"},
		{At: at(10 * time.Second), Actor: "alice", Action: history.ActionCommand, Target: "b1", Result: history.ResultOK, Remote: "192.0.2.8:51001"},
		{At: at(time.Hour), Actor: "bob", Action: history.ActionForget, Target: "gone", Result: history.ResultOK, Remote: "192.0.2.9:51002"},
		{At: at(time.Hour + time.Minute), Actor: "alice", Action: history.ActionLogout, Result: history.ResultOK, Remote: "192.0.2.8:51001"},
	} {
		r.Audit(e)
	}
	// b1 counts at 1 Hz for 40 minutes, from t0 + 1 h 10 min (inside the
	// default window of 24 h before the clock) and once more a day
	// before (outside it).
	r.Count("b1", 7, at(-23*time.Hour-time.Minute))
	for s := 0; s < 40*60; s++ {
		r.Count("b1", int64(1000+s), at(70*time.Minute+time.Duration(s)*time.Second))
	}
	flush(t, r)
	if err := r.Close(); err != nil { // the last minute's count too
		t.Fatal(err)
	}

	mux := http.NewServeMux()
	for _, h := range r.Handlers() {
		mux.Handle(h.Pattern, h.Handler)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// get returns the status, Content-Type and body of GET path.
func get(t *testing.T, srv *httptest.Server, path string) (int, string, []byte) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

func TestAPIGolden(t *testing.T) {
	srv := apiServer(t)
	for _, tc := range []struct{ path, golden string }{
		{"/api/devices/b1/history", "history.json"},
		{"/api/devices/b1/history?limit=2", "history_limit.json"},
		{"/api/devices/b1/history?since=2026-12-03T14:00:10Z&until=2026-12-03T14:01:00Z", "history_window.json"},
		{"/api/devices/gone/history", "history_forgotten.json"},
		{"/api/devices/known/history", "history_empty.json"},
		{"/api/devices/b1/counts", "counts.json"},
		{"/api/devices/b1/counts?step=15m", "counts_15m.json"},
		{"/api/devices/b1/counts?since=2026-12-02T00:00:00Z&until=2026-12-03T15:15:00Z&step=1h", "counts_since.json"},
		{"/api/devices/known/counts", "counts_empty.json"},
		{"/api/audit", "audit.json"},
		{"/api/audit?actor=alice&limit=2", "audit_actor.json"},
		{"/api/audit?since=2026-12-03T14:00:10Z&until=2026-12-03T15:00:00Z", "audit_window.json"},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			code, ctype, body := get(t, srv, tc.path)
			if code != http.StatusOK || ctype != "application/json" {
				t.Fatalf("GET %s: got %d %s %s, want 200 application/json", tc.path, code, ctype, body)
			}
			testutil.GoldenJSON(t, tc.golden, body, *update)
		})
	}
}

// TestAPIErrors answers every refusal with its status and
// {"error": message}, all in one golden file.
func TestAPIErrors(t *testing.T) {
	srv := apiServer(t)
	type answer struct {
		Status int             `json:"status"`
		Body   json.RawMessage `json:"body"`
	}
	got := map[string]answer{}
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/api/devices/nobody/history", http.StatusNotFound},
		{"/api/devices/nobody/counts", http.StatusNotFound},
		{"/api/devices/bad%2Bid/history", http.StatusNotFound},
		{"/api/devices/nobody/history?limit=0", http.StatusNotFound}, // the board is checked first
		{"/api/devices/b1/history?limit=0", http.StatusBadRequest},
		{"/api/devices/b1/history?limit=1001", http.StatusBadRequest},
		{"/api/devices/b1/history?since=yesterday", http.StatusBadRequest},
		{"/api/devices/b1/history?since=2026-12-03T15:00:00Z&until=2026-12-03T14:00:00Z", http.StatusBadRequest},
		{"/api/devices/known/counts?step=30s", http.StatusBadRequest},
		{"/api/devices/b1/counts?since=today", http.StatusBadRequest},
		{"/api/audit?limit=ten", http.StatusBadRequest},
		{"/api/audit?until=noon", http.StatusBadRequest},
	} {
		code, ctype, body := get(t, srv, tc.path)
		if code != tc.code || ctype != "application/json" {
			t.Errorf("GET %s: got %d %s, want %d application/json", tc.path, code, ctype, tc.code)
		}
		var e map[string]string
		if err := json.Unmarshal(body, &e); err != nil || len(e) != 1 || e["error"] == "" {
			t.Errorf("GET %s: body %s, want {\"error\": message}", tc.path, body)
		}
		got[tc.path] = answer{code, body}
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	testutil.GoldenJSON(t, "errors.json", b, *update)
}

func TestHandlersRoutes(t *testing.T) {
	r := newRecorder(t, Config{}, openStore(t), nil)
	var got []string
	for _, h := range r.Handlers() {
		got = append(got, fmt.Sprintf("%s %s", h.Pattern, h.Role))
		if h.Handler == nil {
			t.Errorf("%s: no handler", h.Pattern)
		}
	}
	want := []string{
		"GET /api/devices/{id}/history " + auth.RoleViewer.String(),
		"GET /api/devices/{id}/counts " + auth.RoleViewer.String(),
		"GET /api/audit " + auth.RoleAdmin.String(),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("routes:\n got %v\nwant %v", got, want)
	}
}
