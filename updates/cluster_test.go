package updates

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"switchyard/broker"
	"switchyard/devices"
	"switchyard/internal/fakeboard"
	"switchyard/internal/testutil"
	"switchyard/store"
)

// role is a Role the test switches.
type role struct{ on atomic.Bool }

func (r *role) Primary() bool { return r.on.Load() }

// follower starts a second update service beside e's, as another control
// plane sharing e's database, firmware directory and broker would run:
// its own store connection, HTTP server and events.
func (e *env) follower(r Role) *env {
	e.t.Helper()
	f := &env{t: e.t, dir: e.dir, key: e.key, b: e.b, events: &recorder{}, reg: prometheus.NewRegistry(), logs: &testutil.Buffer{}}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var err error
	if f.db, err = store.Open(ctx, "sqlite:"+filepath.Join(e.dir, "switchyard.db"), store.Options{}); err != nil {
		e.t.Fatal(err)
	}
	files, err := store.NewFiles(filepath.Join(e.dir, "firmware"))
	if err != nil {
		e.t.Fatal(err)
	}
	mux := http.NewServeMux()
	f.srv = httptest.NewServer(mux)
	if f.svc, err = New(Config{
		Store: f.db, Files: files, Publisher: e.b, Broadcaster: f.events, Key: e.key,
		PublicURL: f.srv.URL, StepInterval: 50 * time.Millisecond, Role: r,
		Logger:     slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: f.reg,
	}); err != nil {
		e.t.Fatal(err)
	}
	for _, h := range f.svc.Handlers() {
		mux.Handle(h.Pattern, h.Handler)
	}
	if err := e.b.Subscribe(devices.MustTopics("devices").BoardFilter(), func(m broker.Message) {
		f.svc.Ingest(m.Topic, m.Payload)
	}); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		f.srv.Close()
		f.svc.Close()
		f.db.Close()
		if e.t.Failed() {
			e.t.Logf("second service's log:\n%s", f.logs.String())
		}
	})
	return f
}

// TestTwoServicesOnePrimary runs two update services on one database: a
// rollout created on the follower is driven by the primary; pause and
// resume asked of the follower are applied by the primary; the follower
// shows the primary's progress; when the roles change hands in the middle
// of the rollout the new primary finishes it, and no board is sent a job
// twice.
func TestTwoServicesOnePrimary(t *testing.T) {
	roleA, roleB := &role{}, &role{}
	roleA.on.Store(true)
	a := newEnv(t, func(c *Config) { c.Role = roleA })
	b := a.follower(roleB)
	boards := a.boards(3, "1.0", fakeboard.OK)
	b.known("b-1", "b-2", "b-3")
	fw := a.upload("2.0", "sim", build(t, 1000))

	// Created on the follower: the primary picks it up and sends the
	// canary its job; the follower's browsers see the progress.
	// The canary's health window is long enough for the pause to come
	// before the second wave.
	r := b.start(`{"firmware":"` + fw.SHA256 + `","target":{"all":true},"waves":[1,"100%"],"health_window":"5s"}`)
	canary := r.Waves[0].Boards[0].ID
	testutil.WaitFor(t, wait, func() error {
		if len(boards[canary].Jobs()) == 0 {
			return errors.New("the canary has no job yet")
		}
		return nil
	})
	// Paused through the follower: answered once the primary applied it.
	var got rolloutJSON
	b.must(http.StatusOK, "POST", "/api/rollouts/"+r.ID+"/pause", nil, &got)
	if got.State != "paused" {
		t.Fatalf("pause through the follower answered %+v", got)
	}
	b.must(http.StatusConflict, "POST", "/api/rollouts/"+r.ID+"/pause", nil, nil)
	a.waitRollout(r.ID, nil, stateIs("paused"))

	// The roles change hands; resume is asked of the old primary, now
	// the follower.
	roleA.on.Store(false)
	roleB.on.Store(true)
	testutil.WaitFor(t, wait, func() error {
		if !strings.Contains(b.logs.String(), "driving the rollouts") || !strings.Contains(a.logs.String(), "following the primary's rollouts") {
			return errors.New("the roles have not changed hands yet")
		}
		return nil
	})
	a.must(http.StatusOK, "POST", "/api/rollouts/"+r.ID+"/resume", nil, &got)
	if got.State != "running" {
		t.Fatalf("resume through the old primary answered %+v", got)
	}
	done := b.waitRollout(r.ID, inOrder, stateIs("done"))
	if done.Counts["updated"] != 3 {
		t.Errorf("done with counts %v, want 3 updated", done.Counts)
	}
	a.waitRollout(r.ID, nil, stateIs("done")) // the follower sees it too
	for id, bd := range boards {
		jobs := bd.Jobs()
		if len(jobs) != 1 {
			t.Errorf("board %s (canary %v): %d jobs %+v, want exactly 1", id, id == canary, len(jobs), jobs)
		}
	}
}
