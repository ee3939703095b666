package updates

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"switchyard/internal/fakeboard"
	"switchyard/internal/testutil"
	"switchyard/rollout"
)

// boards connects n boards b-1 … b-n running version, in mode.
func (e *env) boards(n int, version, mode string) map[string]*fakeboard.Board {
	e.t.Helper()
	out := map[string]*fakeboard.Board{}
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("b-%d", i)
		out[id] = fakeboard.Start(e.t, fakeboard.Config{
			Broker: e.mqttURL(), ID: id, Version: version, Mode: mode, Key: e.key.Public().(ed25519.PublicKey),
		})
	}
	e.known(slices.Collect(maps.Keys(out))...)
	return out
}

// known waits until the service knows ids online with their info (no
// event says so: it polls the fleet view).
func (e *env) known(ids ...string) {
	e.t.Helper()
	testutil.WaitFor(e.t, wait, func() error {
		for _, c := range e.svc.fleet.candidates(ids) {
			if !c.Online || c.Platform == "" {
				return fmt.Errorf("board %s not known online with its info yet", c.ID)
			}
		}
		return nil
	})
}

// inOrder checks that a wave's boards get jobs only once every board of
// the earlier waves is updated, failed, skipped or waiting.
func inOrder(r rolloutJSON) error {
	for i, w := range r.Waves {
		for _, b := range w.Boards {
			if b.State == "pending" || b.State == "waiting" || b.State == "skipped" {
				continue
			}
			for _, earlier := range r.Waves[:i] {
				for _, o := range earlier.Boards {
					if o.State != "updated" && o.State != "failed" && o.State != "skipped" && o.State != "waiting" {
						return fmt.Errorf("board %s of wave %d is %s while %s of an earlier wave is %s", b.ID, i, b.State, o.ID, o.State)
					}
				}
			}
		}
	}
	return nil
}

func TestRolloutInWavesToDone(t *testing.T) {
	e := newEnv(t)
	boards := e.boards(6, "1.0", fakeboard.OK)
	fw := e.upload("2.0", "sim", build(t, 50_000))
	r := e.start(`{"firmware":"` + fw.SHA256 + `","target":{"all":true},"waves":[1,"50%","100%"],"health_window":"1s","parallel":2}`)
	if r.State != "running" || len(r.Waves) != 3 || r.Waves[0].Size != 1 || r.Waves[1].Size != 3 || r.Waves[2].Size != 6 {
		t.Fatalf("created %+v, want running with waves of 1, 3, 6", r)
	}
	ids := slices.Sorted(maps.Keys(boards))
	if canary := rollout.Order(ids)[0]; r.Waves[0].Boards[0].ID != canary {
		t.Errorf("canary %s, want %s (the first in rollout.Order)", r.Waves[0].Boards[0].ID, canary)
	}
	maxUpdating := 0
	done := e.waitRollout(r.ID, func(r rolloutJSON) error {
		maxUpdating = max(maxUpdating, r.Counts["updating"]+r.Counts["checking"])
		return inOrder(r)
	}, stateIs("done"))
	if done.Counts["updated"] != 6 {
		t.Errorf("done with counts %v, want 6 updated", done.Counts)
	}
	if maxUpdating > 2 {
		t.Errorf("%d boards updating at once, parallel is 2", maxUpdating)
	}
	for id, b := range boards {
		jobs := b.Jobs()
		if b.Version() != "2.0" || len(jobs) != 1 {
			t.Errorf("board %s: runs %s after %d jobs, want 2.0 after 1", id, b.Version(), len(jobs))
			continue
		}
		j := jobs[0]
		if !strings.HasPrefix(j.Job, r.ID+"/") || j.Version != "2.0" || j.SHA256 != fw.SHA256 || j.Size != fw.Size ||
			j.URL != e.srv.URL+"/firmware/"+fw.SHA256 {
			t.Errorf("board %s: job %+v", id, j)
		}
	}
	// The canary got the first job.
	if j := boards[r.Waves[0].Boards[0].ID].Jobs()[0].Job; j != r.ID+"/1" {
		t.Errorf("canary's job %s, want %s/1", j, r.ID)
	}
	if got := e.metric("switchyard_rollouts", "done"); got != 1 {
		t.Errorf("switchyard_rollouts{state=done} = %v, want 1", got)
	}
	if got := e.metric("switchyard_firmware_served_bytes_total", ""); got != 6*50_000 {
		t.Errorf("bytes served %v, want %v", got, 6*50_000)
	}
	var got rolloutJSON
	e.must(http.StatusOK, "GET", "/api/rollouts/"+r.ID, nil, &got)
	if got.State != "done" || got.Counts["updated"] != 6 {
		t.Errorf("GET /api/rollouts/%s: %+v", r.ID, got)
	}
	if snap := e.svc.Snapshot(); len(snap) != 0 {
		t.Errorf("snapshot after done: %d rollouts, want none", len(snap))
	}
	// What was saved is what is shown.
	stored, err := e.db.Rollouts(t.Context())
	if err != nil || len(stored) != 1 || stored[0].State != rollout.Done || stored[0].Counts[rollout.BoardUpdated] != 6 {
		t.Errorf("stored: %v %+v", err, stored)
	}
}

func TestRolloutHaltsAtTheCanary(t *testing.T) {
	e := newEnv(t)
	boards := e.boards(4, "1.0", fakeboard.RollBack)
	fw := e.upload("2.0", "sim", build(t, 1000))
	r := e.start(`{"firmware":"` + fw.SHA256 + `","target":{"ids":["b-1","b-2","b-3","b-4"]},"waves":[1,"100%"],"health_window":"1s"}`)
	halted := e.waitRollout(r.ID, inOrder, stateIs("halted"))
	canary := halted.Waves[0].Boards[0]
	if canary.State != "failed" || !strings.Contains(canary.Error, "crashed") || halted.Reason == "" {
		t.Errorf("halted with canary %+v, reason %q; want failed, naming crashed, and a reason", canary, halted.Reason)
	}
	for id, b := range boards {
		if n := len(b.Jobs()); id != canary.ID && n != 0 {
			t.Errorf("board %s (not the canary) was sent %d jobs", id, n)
		}
	}
	// Halted is finished: nothing resumes it, and its build may go.
	e.must(http.StatusConflict, "POST", "/api/rollouts/"+r.ID+"/resume", nil, nil)
	e.must(http.StatusNoContent, "DELETE", "/api/firmware/"+fw.SHA256, nil, nil)
}

func TestRolloutCreateRules(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Groups = map[string][]string{"kitchen": {"b-1", "b-2"}} })
	e.boards(2, "1.0", fakeboard.OK)
	onSim := e.upload("2.0", "sim", build(t, 100))
	same := e.upload("1.0", "sim", build(t, 100))
	other := e.upload("2.0", "linux/arm64", build(t, 100))

	// Every board skipped: created, done at once, nothing sent.
	for _, tc := range []struct {
		fw, why string
	}{{same.SHA256, "already runs 1.0"}, {other.SHA256, "platform sim"}} {
		r := e.start(`{"firmware":"` + tc.fw + `","target":{"group":"kitchen"}}`)
		if r.State != "done" || r.Counts["skipped"] != 2 || !strings.Contains(r.Waves[0].Boards[0].Error, tc.why) {
			t.Errorf("all skipped (%s): %+v", tc.why, r)
		}
	}
	// A board unknown here is skipped with the others sent their jobs.
	r := e.start(`{"firmware":"` + onSim.SHA256 + `","target":{"ids":["b-1","ghost"]},"health_window":"10s"}`)
	if r.State != "running" || r.board("ghost") != "skipped" || r.board("b-1") != "pending" {
		t.Errorf("with an unknown board: %+v", r)
	}
	// b-1 is in that rollout: a second one targeting it is refused, naming it.
	code, body := e.do("POST", "/api/rollouts", []byte(`{"firmware":"`+onSim.SHA256+`","target":{"all":true}}`))
	if code != http.StatusConflict || !strings.Contains(string(body), r.ID) || !strings.Contains(string(body), "b-1") {
		t.Errorf("overlap: %d %s, want 409 naming %s and b-1", code, body, r.ID)
	}
	// ... but b-2 alone may go (ghost, skipped there, too).
	e.start(`{"firmware":"` + onSim.SHA256 + `","target":{"ids":["b-2","ghost"]}}`)
	// The build of a rollout not finished stays.
	code, body = e.do("DELETE", "/api/firmware/"+onSim.SHA256, nil)
	if code != http.StatusConflict || !strings.Contains(string(body), r.ID) && !strings.Contains(string(body), "rollout") {
		t.Errorf("delete a build in use: %d %s, want 409 naming the rollout", code, body)
	}

	for _, tc := range []struct {
		name, body string
		want       int
		says       string
	}{
		{"not json", `{`, 400, "JSON"},
		{"unknown firmware", `{"firmware":"` + strings.Repeat("a", 64) + `","target":{"all":true}}`, 400, "firmware"},
		{"unknown group", `{"firmware":"` + onSim.SHA256 + `","target":{"group":"garage"}}`, 400, "garage"},
		{"no tags here", `{"firmware":"` + onSim.SHA256 + `","target":{"tag":"attic"}}`, 400, "tags are not available"},
		{"bad waves", `{"firmware":"` + onSim.SHA256 + `","target":{"all":true},"waves":["10%"]}`, 400, "waves"},
	} {
		code, body := e.do("POST", "/api/rollouts", []byte(tc.body))
		var msg struct{ Error string }
		if code != tc.want || json.Unmarshal(body, &msg) != nil || !strings.Contains(msg.Error, tc.says) {
			t.Errorf("%s: %d %s, want %d naming %q", tc.name, code, body, tc.want, tc.says)
		}
	}
	e.must(http.StatusNotFound, "GET", "/api/rollouts/nope", nil, nil)
	e.must(http.StatusNotFound, "POST", "/api/rollouts/nope/pause", nil, nil)
	e.must(http.StatusNotFound, "POST", "/api/rollouts/"+r.ID+"/explode", nil, nil)
	var list []rolloutJSON
	e.must(http.StatusOK, "GET", "/api/rollouts", nil, &list)
	if len(list) != 4 || list[len(list)-1].State != "done" {
		t.Errorf("list: %d rollouts, want 4, oldest (done) last: %+v", len(list), list)
	}
}

// A tag rollout targets exactly the boards with the tag.
func TestRolloutByTag(t *testing.T) {
	tagged := map[string][]string{"attic": {"b-4", "b-2"}}
	e := newEnv(t, func(c *Config) { c.Tags = func(tag string) []string { return tagged[tag] } })
	boards := e.boards(4, "1.0", fakeboard.OK)
	fw := e.upload("2.0", "sim", build(t, 100))
	r := e.start(`{"firmware":"` + fw.SHA256 + `","target":{"tag":"attic"},"health_window":"1s"}`)
	var ids []string
	for _, w := range r.Waves {
		for _, b := range w.Boards {
			ids = append(ids, b.ID)
		}
	}
	slices.Sort(ids)
	if got := strings.Join(ids, ","); got != "b-2,b-4" {
		t.Errorf("tag rollout targets %s, want b-2,b-4", got)
	}
	done := e.waitRollout(r.ID, inOrder, stateIs("done"))
	if done.Counts["updated"] != 2 {
		t.Errorf("done with %v, want 2 updated", done.Counts)
	}
	for _, id := range []string{"b-1", "b-3"} {
		if n := len(boards[id].Jobs()); n != 0 {
			t.Errorf("board %s (not tagged) was sent %d jobs", id, n)
		}
	}
	code, body := e.do("POST", "/api/rollouts", []byte(`{"firmware":"`+fw.SHA256+`","target":{"tag":"nobody"}}`))
	if code != http.StatusBadRequest || !strings.Contains(string(body), `no board has tag \"nobody\"`) {
		t.Errorf("a tag no board has: %d %s, want 400 saying so", code, body)
	}
}

func TestRolloutExternalNeedsPublicURL(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.BoardAddr = nil })
	fw := e.upload("2.0", "sim", build(t, 10))
	code, body := e.do("POST", "/api/rollouts", []byte(`{"firmware":"`+fw.SHA256+`","target":{"all":true}}`))
	if code != http.StatusBadRequest || !strings.Contains(string(body), "http.public_url") {
		t.Errorf("no public url, no board address: %d %s, want 400 naming http.public_url", code, body)
	}
}

func TestRolloutPauseResumeAbort(t *testing.T) {
	e := newEnv(t)
	boards := e.boards(3, "1.0", fakeboard.OK)
	fw := e.upload("2.0", "sim", build(t, 1000))
	r := e.start(`{"firmware":"` + fw.SHA256 + `","target":{"all":true},"waves":[1,"100%"],"health_window":"1s"}`)
	var got rolloutJSON
	e.must(http.StatusOK, "POST", "/api/rollouts/"+r.ID+"/pause", nil, &got)
	if got.State != "paused" {
		t.Fatalf("pause answered %+v", got)
	}
	e.must(http.StatusConflict, "POST", "/api/rollouts/"+r.ID+"/pause", nil, nil)
	// The canary may have had its job before the pause: it finishes. No
	// other board gets one while paused.
	e.waitRollout(r.ID, nil, func(r rolloutJSON) bool {
		c := r.Waves[0].Boards[0].State
		return r.State == "paused" && (c == "pending" || c == "updated")
	})
	if snap := e.svc.Snapshot(); len(snap) != 1 || !strings.Contains(string(snap[0]), `"state":"paused"`) {
		t.Errorf("snapshot while paused: %q", snap)
	}
	sent := 0
	for _, b := range boards {
		sent += len(b.Jobs())
	}
	if sent > 1 {
		t.Errorf("%d jobs sent by a paused rollout, want the canary's at most", sent)
	}
	e.must(http.StatusOK, "POST", "/api/rollouts/"+r.ID+"/resume", nil, &got)
	if got.State != "running" {
		t.Errorf("resume answered %+v", got)
	}
	e.waitRollout(r.ID, inOrder, stateIs("done"))
	e.must(http.StatusConflict, "POST", "/api/rollouts/"+r.ID+"/abort", nil, nil)

	// Abort: nothing more is sent.
	fw3 := e.upload("3.0", "sim", build(t, 1000))
	for _, b := range boards {
		b.SetMode(fakeboard.Vanish) // the canary goes and never comes back
	}
	r = e.start(`{"firmware":"` + fw3.SHA256 + `","target":{"all":true},"waves":[1,"100%"],"health_window":"1h"}`)
	e.waitRollout(r.ID, nil, func(r rolloutJSON) bool { return r.Waves[0].Boards[0].Update == "restarting" })
	e.must(http.StatusOK, "POST", "/api/rollouts/"+r.ID+"/abort", nil, &got)
	if got.State != "aborted" {
		t.Errorf("abort answered %+v", got)
	}
	e.must(http.StatusConflict, "POST", "/api/rollouts/"+r.ID+"/resume", nil, nil)
	for id, b := range boards {
		if n := len(b.Jobs()); id != r.Waves[0].Boards[0].ID && n != 1 {
			t.Errorf("board %s: %d jobs, want only the first rollout's", id, n)
		}
	}
}

// TestRolloutGoesOnAfterRestart stops the control plane's update side
// (service, broker, database) in the middle of a rollout and starts it
// again on the same storage: the rollout goes on to done, and no board is
// sent a second job.
func TestRolloutGoesOnAfterRestart(t *testing.T) {
	e := newEnv(t)
	boards := e.boards(4, "1.0", fakeboard.OK)
	fw := e.upload("2.0", "sim", build(t, 10_000))
	r := e.start(`{"firmware":"` + fw.SHA256 + `","target":{"all":true},"waves":[1,"100%"],"health_window":"300ms","parallel":1}`)
	e.waitRollout(r.ID, inOrder, func(r rolloutJSON) bool {
		return r.Counts["updated"] >= 2 && r.Counts["updating"]+r.Counts["checking"] == 1
	})

	e = e.restart()
	if snap := e.svc.Snapshot(); len(snap) != 1 || !strings.Contains(string(snap[0]), `"id":"`+r.ID+`"`) {
		t.Fatalf("after restart the snapshot has %q, want rollout %s", snap, r.ID)
	}
	done := e.waitRollout(r.ID, inOrder, stateIs("done"))
	if done.Counts["updated"] != 4 {
		t.Errorf("done with %v, want 4 updated", done.Counts)
	}
	for id, b := range boards {
		if n := len(b.Jobs()); b.Version() != "2.0" || n != 1 {
			t.Errorf("board %s: runs %s after %d jobs, want 2.0 after 1", id, b.Version(), n)
		}
	}
}
