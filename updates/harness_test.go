package updates

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"switchyard/broker"
	"switchyard/devices"
	"switchyard/internal/testutil"
	"switchyard/rollout"
	"switchyard/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/eclipse/paho%2emqtt%2egolang.(*router).matchAndDispatch"),
		goleak.IgnoreTopFunction("github.com/mochi-mqtt/server/v2.(*Client).WriteLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		// database/sql's connection opener lives as long as the *sql.DB.
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
	)
}

const wait = 10 * time.Second

// env is one control plane's update side on loopback: a real Mochi
// broker, a real SQLite store and firmware directory, the service, and
// an HTTP server that mounts its handlers as they are (no access rules:
// those are the gateway's, tested in cmd/controlplane).
type env struct {
	t      *testing.T
	dir    string // the store's, files' and retained messages' directory, kept across restarts
	listen string // the broker's address, kept across restarts (boards reconnect to it)
	key    ed25519.PrivateKey
	b      *broker.Broker
	db     *store.DB
	svc    *Service
	srv    *httptest.Server
	events *recorder
	reg    *prometheus.Registry
	logs   *testutil.Buffer
	once   sync.Once
}

// options change an env's service config before it starts.
type option func(*Config)

// newEnv starts an env in a fresh directory.
func newEnv(t *testing.T, opts ...option) *env {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return startEnv(t, t.TempDir(), "127.0.0.1:"+testutil.FreePort(t), key, opts...)
}

// startEnv starts an env on dir (a restart when dir holds one already).
func startEnv(t *testing.T, dir, listen string, key ed25519.PrivateKey, opts ...option) *env {
	t.Helper()
	e := &env{t: t, dir: dir, listen: listen, key: key, events: &recorder{}, reg: prometheus.NewRegistry(), logs: &testutil.Buffer{}}
	b, err := broker.New(broker.Config{Listen: listen, StoragePath: filepath.Join(dir, "retained.log")})
	if err != nil {
		t.Fatal(err)
	}
	e.b = b
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if e.db, err = store.Open(ctx, "sqlite:"+filepath.Join(dir, "switchyard.db"), store.Options{}); err != nil {
		t.Fatal(err)
	}
	files, err := store.NewFiles(filepath.Join(dir, "firmware"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	e.srv = httptest.NewServer(mux)
	_, port, _ := net.SplitHostPort(e.srv.Listener.Addr().String())
	httpPort, _ := strconv.Atoi(port)
	cfg := Config{
		Store: e.db, Files: files, Publisher: b, Broadcaster: e.events, Key: key,
		BoardAddr: func(id string) (string, bool) {
			a, ok := b.ClientLocalAddr(id)
			if !ok {
				return "", false
			}
			return a.String(), true
		},
		HTTPPort:     httpPort,
		StepInterval: 50 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer:   e.reg,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if e.svc, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	for _, h := range e.svc.Handlers() {
		mux.Handle(h.Pattern, h.Handler)
	}
	// Subscribed before Start, as cmd/controlplane does: the retained
	// messages come first.
	if err := b.Subscribe(devices.MustTopics("devices").BoardFilter(), func(m broker.Message) {
		e.svc.Ingest(m.Topic, m.Payload)
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.stop)
	return e
}

// stop closes everything in reverse order; it may be called again.
func (e *env) stop() {
	e.once.Do(func() {
		e.srv.Close()
		e.svc.Close()
		e.b.Close()
		e.db.Close()
		if e.t.Failed() {
			e.t.Logf("service log:\n%s", e.logs.String())
		}
	})
}

// restart stops the env and starts another on the same directory, broker
// address and key.
func (e *env) restart() *env {
	e.t.Helper()
	e.stop()
	return startEnv(e.t, e.dir, e.listen, e.key)
}

func (e *env) mqttURL() string { return "tcp://" + e.b.Addr().String() }

// do makes an HTTP request and returns the status and body.
func (e *env) do(method, path string, body []byte, hdr ...string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp.StatusCode, b
}

// must makes a request that must answer want, and decodes its JSON into v
// (when not nil).
func (e *env) must(want int, method, path string, body []byte, v any) {
	e.t.Helper()
	code, b := e.do(method, path, body)
	if code != want {
		e.t.Fatalf("%s %s: %d %s, want %d", method, path, code, b, want)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			e.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
}

// upload uploads a build and returns its record.
func (e *env) upload(version, platform string, data []byte) rollout.Firmware {
	e.t.Helper()
	var fw rollout.Firmware
	e.must(http.StatusCreated, "POST", "/api/firmware?version="+version+"&platform="+platform, data, &fw)
	return fw
}

// rolloutJSON is a rollout as the API shows it.
type rolloutJSON struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	State   string `json:"state"`
	Reason  string `json:"reason"`
	Waves   []struct {
		Size   int    `json:"size"`
		State  string `json:"state"`
		Boards []struct {
			ID, State, Error, Job, Update string
		} `json:"boards"`
	} `json:"waves"`
	Counts map[string]int `json:"counts"`
	Event  string         `json:"event"`
}

// board returns a board's state in r, "" when r does not list it.
func (r rolloutJSON) board(id string) string {
	for _, w := range r.Waves {
		for _, b := range w.Boards {
			if b.ID == id {
				return b.State
			}
		}
	}
	return ""
}

// start creates a rollout from a spec (JSON) and returns it.
func (e *env) start(spec string) rolloutJSON {
	e.t.Helper()
	var r rolloutJSON
	e.must(http.StatusCreated, "POST", "/api/rollouts", []byte(spec), &r)
	return r
}

// recorder is a Broadcaster that keeps every event for the test.
type recorder struct {
	mu     sync.Mutex
	events [][]byte
	more   chan struct{} // closed and replaced at each event
}

func (r *recorder) Broadcast(ev []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, bytes.Clone(ev))
	if r.more != nil {
		close(r.more)
		r.more = nil
	}
}

// next returns the events from index i on, waiting until there is one or
// the deadline passes (then it returns none).
func (r *recorder) next(i int, deadline time.Time) [][]byte {
	r.mu.Lock()
	if i < len(r.events) {
		defer r.mu.Unlock()
		return r.events[i:]
	}
	if r.more == nil {
		r.more = make(chan struct{})
	}
	more := r.more
	r.mu.Unlock()
	select {
	case <-more:
	case <-time.After(time.Until(deadline)):
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.events[i:]
}

// waitRollout reads the rollout events (from the first) until one of
// rollout id satisfies cond, checking each with check (when not nil).
func (e *env) waitRollout(id string, check func(rolloutJSON) error, cond func(rolloutJSON) bool) rolloutJSON {
	e.t.Helper()
	deadline := time.Now().Add(wait)
	var last rolloutJSON
	for i := 0; ; {
		evs := e.events.next(i, deadline)
		if len(evs) == 0 {
			e.t.Fatalf("rollout %s: no event with the awaited state within %v; last: %+v", id, wait, last)
		}
		i += len(evs)
		for _, ev := range evs {
			var r rolloutJSON
			if err := json.Unmarshal(ev, &r); err != nil {
				e.t.Fatalf("event %s: %v", ev, err)
			}
			if r.Event != "rollout" || r.ID != id {
				continue
			}
			last = r
			if check != nil {
				if err := check(r); err != nil {
					e.t.Fatalf("rollout %s: %v\nevent: %s", id, err, ev)
				}
			}
			if cond(r) {
				return r
			}
		}
	}
}

// stateIs is a waitRollout condition.
func stateIs(s string) func(rolloutJSON) bool {
	return func(r rolloutJSON) bool { return r.State == s }
}

// metric returns the value of a metric (with its one label value, or
// none) from the env's registry.
func (e *env) metric(name, label string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" || len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	e.t.Fatalf("no metric %s{%s}", name, label)
	return 0
}

// build returns n bytes of a made-up build.
func build(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
