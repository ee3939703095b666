package accounts_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"switchyard/accounts"
	"switchyard/auth"
	"switchyard/internal/testutil"
	"switchyard/store"
)

// boardCreated is the answer to POST /api/boards.
type boardCreated struct {
	ID        string `json:"id"`
	Username  string `json:"username"`
	Password  string `json:"password"`
	Broker    string `json:"broker"`
	UpdateKey string `json:"update_key"`
	Command   string `json:"command"`
	Env       string `json:"env"`
}

func TestCreateBoard(t *testing.T) {
	r := newRig(t, rigOptions{})
	var b boardCreated
	code := r.do(root, "POST", "/api/boards", `{"id":"kitchen","name":"Kitchen","tags":["b","a","b"]}`, &b)
	if code != http.StatusCreated {
		t.Fatalf("POST /api/boards = %d", code)
	}
	// The secret: 32 random bytes, base64url without padding.
	if raw, err := base64.RawURLEncoding.DecodeString(b.Password); err != nil || len(raw) != 32 {
		t.Errorf("password %q: %v, %d bytes; want 32 bytes of base64url", b.Password, err, len(raw))
	}
	want := boardCreated{ID: "kitchen", Username: "kitchen", Password: b.Password,
		Broker: "tcp://127.0.0.1:1883", UpdateKey: "S0VZ+/=",
		Command: "devicefw --broker tcp://127.0.0.1:1883 --id kitchen --username kitchen --password " + b.Password + " --update-key S0VZ+/=",
		Env: "DEVICEFW_BROKER=tcp://127.0.0.1:1883\nDEVICEFW_ID=kitchen\nDEVICEFW_USERNAME=kitchen\n" +
			"DEVICEFW_PASSWORD=" + b.Password + "\nDEVICEFW_UPDATE_KEY=S0VZ+/=\n"}
	if b != want {
		t.Errorf("POST /api/boards =\n %+v\nwant\n %+v", b, want)
	}
	if got := r.fleet.take(); !slices.Equal(got, []string{`kitchen "Kitchen" [a,b]`}) {
		t.Errorf("declared %q, want kitchen with its name and tags", got)
	}

	// The board logs in with its secret, as a device of its id, at once;
	// the secret is stored only as its digest.
	id, err := r.az.Login("kitchen", b.Password, "10.0.0.1:1")
	if err != nil || id.Role != auth.RoleDevice || !slices.Equal(id.IDs, []string{"kitchen"}) {
		t.Errorf("board login = %+v, %v; want device [kitchen]", id, err)
	}
	stored, err := r.db.Accounts(context.Background())
	if err != nil || len(stored) != 1 || stored[0].SecretDigest != digestOf(b.Password) || stored[0].PasswordHash != "" {
		t.Errorf("stored = %+v, %v; want the secret's SHA-256 only", stored, err)
	}
	if boards, err := r.db.Boards(context.Background()); err != nil || len(boards) != 1 || boards[0].CreatedBy != "root" {
		t.Errorf("stored boards = %+v, %v", boards, err)
	}
	for id, want := range map[string]bool{"kitchen": true, "cfg-2": true, "stray": false} {
		if got := r.svc.Adopted(id); got != want {
			t.Errorf("Adopted(%s) = %v, want %v", id, got, want)
		}
	}
	if got := r.users(); !slices.Equal(got, []string{"cfgboard device config tokens:0", "kitchen device database tokens:0", "root admin config tokens:0"}) {
		t.Errorf("users = %q", got)
	}

	// Refused, and nothing made.
	for _, c := range []struct {
		body string
		want int
	}{
		{`{"id":"kitchen"}`, http.StatusConflict},  // a board (and user) already
		{`{"id":"root"}`, http.StatusConflict},     // a config user
		{`{"id":"cfg-2"}`, http.StatusConflict},    // a config device user's board
		{`{"id":"bad id"}`, http.StatusBadRequest}, // not an id
		{`{"id":"ok-1","tags":["No"]}`, http.StatusBadRequest},
		{`{"id":"ok-2","color":"red"}`, http.StatusBadRequest}, // unknown field
		{`{"id":"ok-3","name":"` + strings.Repeat("n", 65) + `"}`, http.StatusBadRequest},
	} {
		if code := r.do(root, "POST", "/api/boards", c.body, nil); code != c.want {
			t.Errorf("POST /api/boards %s = %d, want %d", c.body, code, c.want)
		}
	}
	if got := r.fleet.take(); len(got) != 0 {
		t.Errorf("refused boards declared: %q", got)
	}
	if got := r.audit.take(t); !slices.Equal(got, []string{
		"root board-create kitchen ok",
		"root board-create kitchen failed", "root board-create root failed", "root board-create cfg-2 failed",
		"root board-create bad id failed", "root board-create ok-1 failed", "root board-create  failed",
		"root board-create ok-3 failed",
	}) {
		t.Errorf("audit = %q", got)
	}

	// Tags left out: the board's stay as they are (nil); [] sets none.
	if code := r.do(root, "POST", "/api/boards", `{"id":"porch"}`, nil); code != http.StatusCreated {
		t.Errorf("POST porch = %d", code)
	}
	if code := r.do(root, "POST", "/api/boards", `{"id":"attic","tags":[]}`, nil); code != http.StatusCreated {
		t.Errorf("POST attic = %d", code)
	}
	if got := r.fleet.take(); !slices.Equal(got, []string{`porch "" nil`, `attic "" []`}) {
		t.Errorf("declared %q", got)
	}
}

func TestBrokerURL(t *testing.T) {
	for _, c := range []struct {
		name   string
		broker accounts.BrokerConfig
		prefix string
		want   string // the command's flags after --broker URL
	}{
		{"request host", accounts.BrokerConfig{TCPPort: 1884}, "", "--broker tcp://127.0.0.1:1884 --id b1"},
		{"public url", accounts.BrokerConfig{PublicURL: "https://switchyard.lan:8443", TCPPort: 1883}, "",
			"--broker tcp://switchyard.lan:1883 --id b1"},
		{"public url, IPv6", accounts.BrokerConfig{PublicURL: "http://[fd00::7]:8080", TCPPort: 1883}, "",
			"--broker tcp://[fd00::7]:1883 --id b1"},
		{"TLS only", accounts.BrokerConfig{PublicURL: "https://switchyard.lan", TLSPort: 8883}, "",
			"--broker ssl://switchyard.lan:8883 --id b1"},
		{"external", accounts.BrokerConfig{URL: "tcp://a:1883,tcp://b:1883", TCPPort: 1}, "",
			"--broker tcp://a:1883,tcp://b:1883 --id b1"},
		{"prefix", accounts.BrokerConfig{TCPPort: 1883}, "home/boards",
			"--broker tcp://127.0.0.1:1883 --id b1 --username b1 --password P --prefix home/boards"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, rigOptions{broker: c.broker, prefix: c.prefix})
			var b boardCreated
			if code := r.do(root, "POST", "/api/boards", `{"id":"b1"}`, &b); code != http.StatusCreated {
				t.Fatalf("POST /api/boards = %d", code)
			}
			cmd := strings.Replace(b.Command, b.Password, "P", 1)
			if !strings.HasPrefix(cmd, "devicefw "+c.want) {
				t.Errorf("command %q, want it to start with devicefw %s", cmd, c.want)
			}
			if url, _, _ := strings.Cut(strings.TrimPrefix(c.want, "--broker "), " "); b.Broker != url ||
				!strings.HasPrefix(b.Env, "DEVICEFW_BROKER="+url+"\n") {
				t.Errorf("broker %q, env %q; want %s", b.Broker, b.Env, url)
			}
			if c.prefix != "" && !strings.Contains(b.Env, "\nDEVICEFW_PREFIX="+c.prefix+"\n") {
				t.Errorf("env %q: no DEVICEFW_PREFIX", b.Env)
			}
		})
	}
}

func TestUsers(t *testing.T) {
	r := newRig(t, rigOptions{})
	var u userJSON
	if code := r.do(root, "POST", "/api/users", `{"name":"otto","role":"operator","password":"otto-secret"}`, &u); code != http.StatusCreated {
		t.Fatalf("POST /api/users = %d", code)
	}
	if u.Name != "otto" || u.Role != "operator" || u.Source != "database" || u.Disabled || u.Tokens == nil || len(u.Tokens) != 0 {
		t.Errorf("created %+v", u)
	}
	if !r.login("otto", "otto-secret") {
		t.Error("otto cannot log in at once")
	}
	stored, _ := r.db.Accounts(context.Background())
	if len(stored) != 1 || !strings.HasPrefix(stored[0].PasswordHash, "$2") || strings.Contains(stored[0].PasswordHash, "otto-secret") {
		t.Errorf("stored %+v: want a bcrypt hash", stored)
	}

	for _, c := range []struct {
		body string
		want int
	}{
		{`{"name":"otto","role":"viewer","password":"0123456789"}`, http.StatusConflict},
		{`{"name":"root","role":"viewer","password":"0123456789"}`, http.StatusConflict},
		{`{"name":"vera","role":"viewer","password":"012345678"}`, http.StatusBadRequest}, // 9 characters
		{`{"name":"vera","role":"boss","password":"0123456789"}`, http.StatusBadRequest},
		{`{"name":"ve ra","role":"viewer","password":"0123456789"}`, http.StatusBadRequest},
		{`{"name":"vera","role":"viewer"}`, http.StatusBadRequest},
	} {
		if code := r.do(root, "POST", "/api/users", c.body, nil); code != c.want {
			t.Errorf("POST /api/users %s = %d, want %d", c.body, code, c.want)
		}
	}
	if code := r.do(root, "POST", "/api/users", `{"name":"vera.v@lab","role":"viewer","password":"ünïcødé-pw"}`, nil); code != http.StatusCreated {
		t.Errorf("POST vera.v@lab = %d, want 201", code)
	}
	if got := r.users(); !slices.Equal(got, []string{"cfgboard device config tokens:0", "otto operator database tokens:0",
		"root admin config tokens:0", "vera.v@lab viewer database tokens:0"}) {
		t.Errorf("users = %q", got)
	}
	if got := r.kicks.take(t); len(got) != 0 {
		t.Errorf("creating users kicked %q", got)
	}

	// Change: a role (its clients are disconnected, to log in again under
	// the new one), a password, disabled.
	if code := r.do(root, "PATCH", "/api/users/otto", `{"role":"viewer"}`, &u); code != http.StatusOK || u.Role != "viewer" {
		t.Errorf("PATCH otto role = %d %+v", code, u)
	}
	if got := r.kicks.take(t); !slices.Equal(got, []string{"otto"}) {
		t.Errorf("role change kicked %q, want otto", got)
	}
	if code := r.do(root, "PATCH", "/api/users/otto", `{"password":"otto-secret-2"}`, nil); code != http.StatusOK {
		t.Errorf("PATCH otto password = %d", code)
	}
	if r.login("otto", "otto-secret") || !r.login("otto", "otto-secret-2") {
		t.Error("after a password change: the old password works or the new does not")
	}
	if code := r.do(root, "PATCH", "/api/users/otto", `{"disabled":true}`, &u); code != http.StatusOK || !u.Disabled {
		t.Errorf("PATCH otto disabled = %d %+v", code, u)
	}
	if r.login("otto", "otto-secret-2") {
		t.Error("a disabled user logs in")
	}
	if got := r.kicks.take(t); !slices.Contains(got, "otto") {
		t.Errorf("password change and disabling kicked %q, want otto", got)
	}
	for _, c := range []struct {
		path, body string
		want       int
	}{
		{"/api/users/root", `{"disabled":true}`, http.StatusConflict},   // config: read-only
		{"/api/users/nobody", `{"disabled":true}`, http.StatusNotFound}, // unknown
		{"/api/users/otto", `{}`, http.StatusBadRequest},                // nothing to change
		{"/api/users/otto", `{"role":"boss"}`, http.StatusBadRequest},
		{"/api/users/otto", `{"password":"short"}`, http.StatusBadRequest},
		{"/api/users/vera.v@lab", `{"role":"device"}`, http.StatusBadRequest}, // a device user's name is a board id
	} {
		if code := r.do(root, "PATCH", c.path, c.body, nil); code != c.want {
			t.Errorf("PATCH %s %s = %d, want %d", c.path, c.body, code, c.want)
		}
	}

	// Delete.
	if code := r.do(root, "DELETE", "/api/users/root", nil, nil); code != http.StatusConflict {
		t.Errorf("DELETE root (config) = %d, want 409", code)
	}
	if code := r.do(root, "DELETE", "/api/users/otto", nil, nil); code != http.StatusNoContent {
		t.Errorf("DELETE otto = %d, want 204", code)
	}
	if code := r.do(root, "DELETE", "/api/users/otto", nil, nil); code != http.StatusNotFound {
		t.Errorf("DELETE otto again = %d, want 404", code)
	}
	if got := r.kicks.take(t); !slices.Equal(got, []string{"otto"}) {
		t.Errorf("delete kicked %q, want otto", got)
	}
	if got := r.users(); !slices.Equal(got, []string{"cfgboard device config tokens:0", "root admin config tokens:0",
		"vera.v@lab viewer database tokens:0"}) {
		t.Errorf("users after delete = %q", got)
	}
	if got := r.audit.take(t); !slices.Equal(got, []string{
		"root user-create otto ok",
		"root user-create otto failed", "root user-create root failed", "root user-create vera failed",
		"root user-create vera failed", "root user-create ve ra failed", "root user-create vera failed",
		"root user-create vera.v@lab ok",
		"root user-change otto ok", "root user-change otto ok", "root user-change otto ok",
		"root user-change root failed", "root user-change nobody failed", "root user-change otto failed",
		"root user-change otto failed", "root user-change otto failed", "root user-change vera.v@lab failed",
		"root user-delete root failed", "root user-delete otto ok", "root user-delete otto failed",
	}) {
		t.Errorf("audit = %q", got)
	}
}

// The last enabled admin can be neither demoted, disabled nor deleted.
func TestLastAdmin(t *testing.T) {
	db := "sqlite:" + t.TempDir() + "/s.db"
	seed, err := store.Open(context.Background(), db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = seed.CreateAccount(context.Background(), store.Account{Name: "ada", Role: "admin", PasswordHash: hash(t, "ada-password"), Created: time.Now()})
	seed.Close()
	if err != nil {
		t.Fatal(err)
	}
	// No admin in config: ada, from the database, is the only one.
	r := newRig(t, rigOptions{db: db, users: []auth.User{{Name: "vic", PasswordHash: hash(t, "vic-password"), Role: auth.RoleViewer}}})
	ada := cred("ada:ada-password")
	for _, c := range []struct{ method, body string }{
		{"PATCH", `{"role":"operator"}`},
		{"PATCH", `{"disabled":true}`},
		{"DELETE", ""},
	} {
		var body any
		if c.body != "" {
			body = c.body
		}
		if code := r.do(ada, c.method, "/api/users/ada", body, nil); code != http.StatusConflict {
			t.Errorf("%s ada %s (the last admin) = %d, want 409", c.method, c.body, code)
		}
	}
	// A password change keeps her admin: allowed.
	if code := r.do(ada, "PATCH", "/api/users/ada", `{"password":"ada-password"}`, nil); code != http.StatusOK {
		t.Errorf("PATCH ada password = %d, want 200", code)
	}
	if code := r.do(ada, "POST", "/api/users", `{"name":"bob","role":"admin","password":"bob-password"}`, nil); code != http.StatusCreated {
		t.Fatalf("POST bob = %d", code)
	}
	if code := r.do(ada, "PATCH", "/api/users/ada", `{"disabled":true}`, nil); code != http.StatusOK {
		t.Errorf("disable ada with bob there = %d, want 200", code)
	}
	bob := cred("bob:bob-password")
	if code := r.do(bob, "DELETE", "/api/users/bob", nil, nil); code != http.StatusConflict {
		t.Errorf("DELETE bob, now the last enabled admin = %d, want 409", code)
	}
	if code := r.do(bob, "DELETE", "/api/users/ada", nil, nil); code != http.StatusNoContent {
		t.Errorf("DELETE ada (disabled) = %d, want 204", code)
	}
}

func TestTokens(t *testing.T) {
	r := newRig(t, rigOptions{})
	for _, body := range []string{
		`{"name":"otto","role":"operator","password":"otto-secret"}`,
		`{"name":"vera","role":"viewer","password":"vera-secret"}`,
	} {
		if code := r.do(root, "POST", "/api/users", body, nil); code != http.StatusCreated {
			t.Fatalf("POST %s = %d", body, code)
		}
	}
	otto := cred("otto:otto-secret")
	var tok struct{ ID, Token string }
	if code := r.do(otto, "POST", "/api/users/otto/tokens", nil, &tok); code != http.StatusCreated || len(tok.ID) != 16 || len(tok.Token) != 64 {
		t.Fatalf("otto's own token = %d %+v", code, tok)
	}
	// It works at once, as otto.
	if id, err := r.az.Token(tok.Token); err != nil || id.Name != "otto" || id.Role != auth.RoleOperator {
		t.Errorf("Token = %+v, %v; want otto", id, err)
	}
	ottoTok := cred("token:" + tok.Token)
	var other struct{ ID, Token string }
	if code := r.do(ottoTok, "POST", "/api/users/otto/tokens", nil, &other); code != http.StatusCreated {
		t.Errorf("a second token, made with the first = %d", code)
	}
	// Not another user's, unless admin; not a config user's.
	if code := r.do(otto, "POST", "/api/users/vera/tokens", nil, nil); code != http.StatusForbidden {
		t.Errorf("otto makes vera's token = %d, want 403", code)
	}
	if code := r.do(otto, "DELETE", "/api/users/vera/tokens/x", nil, nil); code != http.StatusForbidden {
		t.Errorf("otto deletes vera's token = %d, want 403", code)
	}
	var veraTok struct{ ID, Token string }
	if code := r.do(root, "POST", "/api/users/vera/tokens", nil, &veraTok); code != http.StatusCreated {
		t.Errorf("root makes vera's token = %d, want 201", code)
	}
	if code := r.do(root, "POST", "/api/users/root/tokens", nil, nil); code != http.StatusConflict {
		t.Errorf("a config user's token = %d, want 409", code)
	}
	if code := r.do(root, "POST", "/api/users/nobody/tokens", nil, nil); code != http.StatusNotFound {
		t.Errorf("an unknown user's token = %d, want 404", code)
	}

	var list []userJSON
	r.do(root, "GET", "/api/users", nil, &list)
	for _, u := range list {
		if u.Name != "otto" {
			continue
		}
		var ids []string
		for _, tk := range u.Tokens {
			ids = append(ids, tk.ID)
			if tk.Created == nil {
				t.Errorf("token %s: created null", tk.ID)
			} else if _, err := time.Parse(time.RFC3339, *tk.Created); err != nil {
				t.Errorf("token %s: created %q: %v", tk.ID, *tk.Created, err)
			}
		}
		if !slices.Equal(ids, []string{tok.ID, other.ID}) && !slices.Equal(ids, []string{other.ID, tok.ID}) {
			t.Errorf("otto's tokens %q, want %s and %s", ids, tok.ID, other.ID)
		}
	}

	// Revoked: refused at once; a second delete is 404.
	if code := r.do(otto, "DELETE", "/api/users/otto/tokens/"+tok.ID, nil, nil); code != http.StatusNoContent {
		t.Errorf("DELETE otto's token = %d, want 204", code)
	}
	if _, err := r.az.Token(tok.Token); err == nil {
		t.Error("a revoked token still works")
	}
	if code := r.do(ottoTok, "GET", "/api/users", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("a request with the revoked token = %d, want 401", code)
	}
	if code := r.do(otto, "DELETE", "/api/users/otto/tokens/"+tok.ID, nil, nil); code != http.StatusNotFound {
		t.Errorf("DELETE the revoked token again = %d, want 404", code)
	}
	if code := r.do(root, "DELETE", "/api/users/vera/tokens/"+veraTok.ID, nil, nil); code != http.StatusNoContent {
		t.Errorf("root deletes vera's token = %d, want 204", code)
	}
	if got := r.audit.take(t); !slices.Equal(got, []string{
		"root user-create otto ok", "root user-create vera ok",
		"otto token-create otto/" + tok.ID + " ok", "otto token-create otto/" + other.ID + " ok",
		"otto token-create vera denied", "otto token-delete vera/x denied",
		"root token-create vera/" + veraTok.ID + " ok", "root token-create root failed", "root token-create nobody failed",
		"otto token-delete otto/" + tok.ID + " ok", "otto token-delete otto/" + tok.ID + " failed",
		"root token-delete vera/" + veraTok.ID + " ok",
	}) {
		t.Errorf("audit = %q", got)
	}
}

func TestForgetting(t *testing.T) {
	r := newRig(t, rigOptions{})
	var b boardCreated
	if code := r.do(root, "POST", "/api/boards", `{"id":"kitchen"}`, &b); code != http.StatusCreated {
		t.Fatal(code)
	}
	r.audit.take(t)
	r.kicks.take(t)
	// The board is online; once kicked, its Will comes a moment later:
	// Forgetting returns only once the fleet shows it offline.
	r.fleet.setOnline("kitchen", true)
	r.fleet.mu.Lock()
	r.fleet.onAsk = func() { r.fleet.setOnline("kitchen", false) }
	r.fleet.mu.Unlock()
	ctx := auth.NewContext(context.Background(), auth.Identity{Name: "root", Role: auth.RoleAdmin})
	if err := r.svc.Forgetting(ctx, "kitchen"); err != nil {
		t.Fatal(err)
	}
	if r.fleet.Online("kitchen") {
		t.Error("Forgetting returned before the kicked board's Will was applied")
	}
	if r.login("kitchen", b.Password) {
		t.Error("a forgotten board's user still logs in")
	}
	if got := r.kicks.take(t); !slices.Equal(got, []string{"kitchen"}) {
		t.Errorf("kicked %q, want kitchen", got)
	}
	if r.svc.Adopted("kitchen") {
		t.Error("a forgotten board is still adopted")
	}
	if got := r.audit.take(t); !slices.Equal(got, []string{"root user-delete kitchen ok"}) {
		t.Errorf("audit = %q", got)
	}
	// A board not onboarded here: nothing to do.
	if err := r.svc.Forgetting(ctx, "stray"); err != nil {
		t.Errorf("Forgetting(stray) = %v", err)
	}
	if got := r.kicks.take(t); len(got) != 0 {
		t.Errorf("forgetting stray kicked %q", got)
	}
	// It can be created again.
	if code := r.do(root, "POST", "/api/boards", `{"id":"kitchen"}`, nil); code != http.StatusCreated {
		t.Errorf("POST kitchen again = %d", code)
	}

	// Deleting its user instead: the board is no longer onboarded either,
	// and can be adopted again.
	if code := r.do(root, "DELETE", "/api/users/kitchen", nil, nil); code != http.StatusNoContent {
		t.Errorf("DELETE /api/users/kitchen = %d", code)
	}
	if r.svc.Adopted("kitchen") {
		t.Error("a board whose user was deleted is still adopted")
	}
	if boards, err := r.db.Boards(ctx); err != nil || len(boards) != 0 {
		t.Errorf("boards = %+v, %v; want none", boards, err)
	}
	if code := r.do(root, "POST", "/api/boards", `{"id":"kitchen"}`, nil); code != http.StatusCreated {
		t.Errorf("POST kitchen once more = %d", code)
	}
}

// At start the stored users log in, and the onboarded boards are
// declared.
func TestNewLoads(t *testing.T) {
	db := "sqlite:" + t.TempDir() + "/s.db"
	r := newRig(t, rigOptions{db: db})
	var b boardCreated
	if code := r.do(root, "POST", "/api/boards", `{"id":"kitchen","name":"K"}`, &b); code != http.StatusCreated {
		t.Fatal(code)
	}
	if code := r.do(root, "POST", "/api/users", `{"name":"otto","role":"operator","password":"otto-secret"}`, nil); code != http.StatusCreated {
		t.Fatal(code)
	}
	r2 := newRig(t, rigOptions{db: db})
	if !r2.login("kitchen", b.Password) || !r2.login("otto", "otto-secret") {
		t.Error("stored users do not log in after a restart")
	}
	if got := r2.fleet.take(); !slices.Equal(got, []string{`kitchen "" nil`}) {
		t.Errorf("declared at start %q, want kitchen (its name is the gateway's to keep)", got)
	}
}

// Two control planes sharing a database: what one changes, the other
// applies at its next refresh.
func TestRefresh(t *testing.T) {
	db := "sqlite:" + t.TempDir() + "/s.db"
	a := newRig(t, rigOptions{db: db})
	b := newRig(t, rigOptions{db: db, refresh: 10 * time.Millisecond})
	if code := a.do(root, "POST", "/api/users", `{"name":"otto","role":"operator","password":"otto-secret"}`, nil); code != http.StatusCreated {
		t.Fatal(code)
	}
	testutil.WaitFor(t, 5*time.Second, testutil.Until("otto logs in on b", func() bool { return b.login("otto", "otto-secret") }))
	if code := a.do(root, "POST", "/api/boards", `{"id":"kitchen"}`, nil); code != http.StatusCreated {
		t.Fatal(code)
	}
	testutil.WaitFor(t, 5*time.Second, testutil.Until("b declares kitchen", func() bool {
		return slices.Contains(b.fleet.take(), `kitchen "" nil`)
	}))
	if !b.svc.Adopted("kitchen") {
		t.Error("b: kitchen not adopted")
	}
	if code := a.do(root, "DELETE", "/api/users/otto", nil, nil); code != http.StatusNoContent {
		t.Fatal(code)
	}
	var kicked []string
	testutil.WaitFor(t, 5*time.Second, testutil.Until("b kicks otto", func() bool {
		kicked = append(kicked, b.kicks.take(t)...)
		return slices.Contains(kicked, "otto")
	}))
	if b.login("otto", "otto-secret") {
		t.Error("b: a user deleted on a still logs in")
	}
	b.svc.Close()
	b.svc.Close() // idempotent
}
