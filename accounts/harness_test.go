package accounts_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"switchyard/accounts"
	"switchyard/auth"
	"switchyard/history"
	"switchyard/store"
)

// rootPassword is the password of the config admin "root".
const rootPassword = "root-password"

// kicks records the users the service disconnected.
type kicks struct {
	mu    sync.Mutex
	mqtt  []string
	close []string
}

func (k *kicks) DisconnectUser(name string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.mqtt = append(k.mqtt, name)
	return 1
}

func (k *kicks) CloseUser(name string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.close = append(k.close, name)
}

// take returns the users kicked since the last take; each must have been
// both disconnected and closed.
func (k *kicks) take(t *testing.T) []string {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	if !slices.Equal(k.mqtt, k.close) {
		t.Errorf("kicked over MQTT %q, browsers %q: want the same users", k.mqtt, k.close)
	}
	out := k.mqtt
	k.mqtt, k.close = nil, nil
	return out
}

// audits records the audit log.
type audits struct {
	mu      sync.Mutex
	entries []history.Entry
}

func (a *audits) Audit(e history.Entry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, e)
}

// take returns the entries since the last take as "actor action target
// result".
func (a *audits) take(t *testing.T) []string {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, e := range a.entries {
		out = append(out, fmt.Sprintf("%s %s %s %s", e.Actor, e.Action, e.Target, e.Result))
		if e.At.IsZero() {
			t.Errorf("audit entry %+v has no time", e)
		}
	}
	a.entries = nil
	return out
}

// fleet records what the service declares, and plays boards online.
type fleet struct {
	mu       sync.Mutex
	declared []string        // "id name tags"
	online   map[string]bool // by id
	// onAsk, when set, runs (once, on its own goroutine) when Online is
	// first asked: a Will the broker publishes a moment later.
	onAsk func()
}

func (f *fleet) Online(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.onAsk != nil {
		go f.onAsk() // ends when the fake Will is applied
		f.onAsk = nil
	}
	return f.online[id]
}

func (f *fleet) setOnline(id string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.online == nil {
		f.online = map[string]bool{}
	}
	f.online[id] = on
}

func (f *fleet) Declare(id, name string, tags []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := "nil"
	if tags != nil {
		t = "[" + strings.Join(tags, ",") + "]"
	}
	f.declared = append(f.declared, fmt.Sprintf("%s %q %s", id, name, t))
	return nil
}

func (f *fleet) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.declared
	f.declared = nil
	return out
}

// rig is a Service on a real SQLite store and a real user list, served
// behind a guard that plays the gateway's: HTTP Basic or a Bearer token,
// the route's role, the caller in the context.
type rig struct {
	t     *testing.T
	svc   *accounts.Service
	db    *store.DB
	az    *auth.Authority
	kicks *kicks
	audit *audits
	fleet *fleet
	srv   *httptest.Server
	addr  atomic.Int64 // a fresh client address per login check: no throttling
}

type rigOptions struct {
	users   []auth.User // config users; nil: root (admin) and cfgboard (device, ids cfg-1 and cfg-2)
	broker  accounts.BrokerConfig
	prefix  string
	db      string // the database URL; "": a new SQLite file
	refresh time.Duration
}

func hash(t testing.TB, pw string) string {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	if o.users == nil {
		o.users = []auth.User{
			{Name: "root", PasswordHash: hash(t, rootPassword), Role: auth.RoleAdmin},
			{Name: "cfgboard", PasswordHash: hash(t, "cfgboard-pw"), Role: auth.RoleDevice, IDs: []string{"cfg-1", "cfg-2"}},
		}
	}
	if o.broker == (accounts.BrokerConfig{}) {
		o.broker.TCPPort = 1883
	}
	if o.db == "" {
		o.db = "sqlite:" + filepath.Join(t.TempDir(), "switchyard.db")
	}
	db, err := store.Open(context.Background(), o.db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	az, err := auth.New(auth.Config{Anonymous: auth.AnonOff, Users: o.users})
	if err != nil {
		t.Fatal(err)
	}
	cfgDevices := map[string]string{}
	for _, u := range o.users {
		for _, id := range u.IDs {
			cfgDevices[id] = u.Name
		}
	}
	r := &rig{t: t, db: db, az: az, kicks: &kicks{}, audit: &audits{}, fleet: &fleet{}}
	r.svc, err = accounts.New(accounts.Config{
		Store: db, Auth: az, Kicker: r.kicks, Audit: r.audit, ConfigDevices: cfgDevices,
		Broker: o.broker, UpdateKey: "S0VZ+/=", Prefix: o.prefix, PasswordCost: bcrypt.MinCost, Refresh: o.refresh,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.svc.Close)
	if err := r.svc.Attach(r.fleet); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, h := range r.svc.Handlers() {
		mux.Handle(h.Pattern, r.guard(h.Role, h.Handler))
	}
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

// guard lets in a caller with credentials and a role of at least role,
// as the gateway does.
func (r *rig) guard(role auth.Role, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var id auth.Identity
		var err error
		if tok, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
			id, err = r.az.Token(tok)
		} else if name, pw, ok := req.BasicAuth(); ok {
			id, err = r.az.Login(name, pw, req.RemoteAddr)
		} else {
			err = auth.ErrNeedCredentials
		}
		switch {
		case err != nil:
			http.Error(w, err.Error(), http.StatusUnauthorized)
		case id.Role < role:
			http.Error(w, "role", http.StatusForbidden)
		default:
			h.ServeHTTP(w, req.WithContext(auth.NewContext(req.Context(), id)))
		}
	})
}

// cred is how a request authenticates: "name:password" (HTTP Basic) or
// "token:T" (Bearer).
type cred string

const root cred = "root:" + rootPassword

// do sends a request and decodes a JSON answer into v (when not nil);
// it returns the status.
func (r *rig) do(c cred, method, path string, body any, v any) int {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		if s, ok := body.(string); ok {
			rd = strings.NewReader(s)
		} else {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequest(method, r.srv.URL+path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	if tok, ok := strings.CutPrefix(string(c), "token:"); ok {
		req.Header.Set("Authorization", "Bearer "+tok)
	} else if name, pw, ok := strings.Cut(string(c), ":"); ok {
		req.SetBasicAuth(name, pw)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode < 300 && len(data) > 0 {
		if err := json.Unmarshal(data, v); err != nil {
			r.t.Fatalf("%s %s: %s: %v", method, path, data, err)
		}
	}
	if resp.StatusCode >= 400 && !bytes.Contains(data, []byte(`"error"`)) && resp.StatusCode != 401 && resp.StatusCode != 403 {
		r.t.Errorf("%s %s: %d %s: want a JSON error", method, path, resp.StatusCode, data)
	}
	return resp.StatusCode
}

// login reports whether name logs in with password, over a fresh address
// each time (failures there do not throttle the next check).
func (r *rig) login(name, password string) bool {
	_, err := r.az.Login(name, password, fmt.Sprintf("10.1.%d.%d:1234", r.addr.Add(1)/250, r.addr.Load()%250))
	return err == nil
}

// userJSON is a user as the API shows it.
type userJSON struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Source   string `json:"source"`
	Disabled bool   `json:"disabled"`
	Tokens   []struct {
		ID      string  `json:"id"`
		Created *string `json:"created"`
	} `json:"tokens"`
}

// users returns GET /api/users as "name role source [disabled] tokens:N".
func (r *rig) users() []string {
	r.t.Helper()
	var list []userJSON
	if code := r.do(root, "GET", "/api/users", nil, &list); code != http.StatusOK {
		r.t.Fatalf("GET /api/users = %d", code)
	}
	var out []string
	for _, u := range list {
		s := fmt.Sprintf("%s %s %s", u.Name, u.Role, u.Source)
		if u.Disabled {
			s += " disabled"
		}
		if u.Tokens == nil {
			r.t.Errorf("user %s: tokens null, want an array", u.Name)
		}
		out = append(out, fmt.Sprintf("%s tokens:%d", s, len(u.Tokens)))
	}
	return out
}

func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
