package auth

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// layered is an Authority with config users ada (admin) and cfgbot
// (device), on a clock the test moves.
func layered(t *testing.T) (*Authority, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	a, err := New(Config{Anonymous: AnonOff, Now: clk.now, Users: []User{
		{Name: "ada", PasswordHash: hash(t, "pwa"), Role: RoleAdmin, Tokens: []string{digest("ada-token")}},
		{Name: "cfgbot", PasswordHash: hash(t, "pwc"), Role: RoleDevice},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return a, clk
}

func TestSetAccountsLayers(t *testing.T) {
	a, _ := layered(t)
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	revoked := a.SetAccounts([]Account{
		{Name: "zed", Role: RoleOperator, PasswordHash: hash(t, "pwz"), Tokens: []TokenRecord{{ID: "t1", Digest: digest("zed-token"), Created: created}}},
		{Name: "board-1", Role: RoleDevice, SecretDigest: digest("s3cret")},
		{Name: "ada", Role: RoleViewer, PasswordHash: hash(t, "other")}, // config wins
		{Name: "bob", Role: RoleAdmin, PasswordHash: hash(t, "pwb"), Disabled: true},
		{Name: "eve", Role: RoleAdmin, PasswordHash: hash(t, "pwe")},
		{Name: "", Role: RoleAdmin},      // refused by Check: left out
		{Name: "nobody", Role: RoleNone}, // likewise
		{Name: "thief", Role: RoleViewer, Tokens: []TokenRecord{{ID: "x", Digest: digest("ada-token")}}}, // a digest ada holds
	})
	if len(revoked) != 0 {
		t.Errorf("first SetAccounts revoked %v, want none", revoked)
	}
	got := a.Users()
	want := []UserView{
		{Name: "ada", Role: RoleAdmin, Source: SourceConfig, Tokens: []TokenView{{ID: digest("ada-token")[:8]}}},
		{Name: "board-1", Role: RoleDevice, Source: SourceDatabase},
		{Name: "bob", Role: RoleAdmin, Source: SourceDatabase, Disabled: true},
		{Name: "cfgbot", Role: RoleDevice, Source: SourceConfig},
		{Name: "eve", Role: RoleAdmin, Source: SourceDatabase},
		{Name: "thief", Role: RoleViewer, Source: SourceDatabase},
		{Name: "zed", Role: RoleOperator, Source: SourceDatabase, Tokens: []TokenView{{ID: "t1", Created: created}}},
	}
	if !slices.EqualFunc(got, want, func(x, y UserView) bool {
		return x.Name == y.Name && x.Role == y.Role && x.Source == y.Source && x.Disabled == y.Disabled && slices.Equal(x.Tokens, y.Tokens)
	}) {
		t.Errorf("Users() =\n%+v\nwant\n%+v", got, want)
	}
	for _, tc := range []struct {
		name              string
		taken, fromConfig bool
	}{
		{"ada", true, true}, {"cfgbot", true, true}, {"zed", true, false}, {"bob", true, false}, {"nobody", false, false}, {"x", false, false},
	} {
		if got := a.Taken(tc.name); got != tc.taken {
			t.Errorf("Taken(%s) = %v, want %v", tc.name, got, tc.taken)
		}
		if got := a.FromConfig(tc.name); got != tc.fromConfig {
			t.Errorf("FromConfig(%s) = %v, want %v", tc.name, got, tc.fromConfig)
		}
	}
	if got := a.EnabledAdmins(); got != 2 { // ada and eve; bob is disabled
		t.Errorf("EnabledAdmins() = %d, want 2", got)
	}
	if id, err := a.Token("zed-token"); err != nil || id.Name != "zed" || id.Role != RoleOperator {
		t.Errorf("Token(zed-token) = %+v, %v", id, err)
	}
	if id, err := a.Token("ada-token"); err != nil || id.Name != "ada" {
		t.Errorf("Token(ada-token) = %+v, %v: config keeps its token", id, err)
	}
	if id, ok := a.User("ada"); !ok || id.Role != RoleAdmin {
		t.Errorf("User(ada) = %+v, %v: config must win over the database", id, ok)
	}
	if _, ok := a.User("bob"); ok {
		t.Error("User(bob) found a disabled user")
	}
	if id, ok := a.User("board-1"); !ok || !slices.Equal(id.IDs, []string{"board-1"}) {
		t.Errorf("User(board-1) = %+v, %v: device ids default to the name", id, ok)
	}
	if id, err := a.Login("board-1", "s3cret", "192.0.2.1:1"); err != nil || id.Name != "board-1" {
		t.Errorf("Login(board-1) = %+v, %v", id, err)
	}
	if id, err := a.Login("ada", "pwa", "192.0.2.1:1"); err != nil || id.Role != RoleAdmin {
		t.Errorf("Login(ada) with the config password = %+v, %v", id, err)
	}
	if _, err := a.Login("ada", "other", "192.0.2.1:1"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("Login(ada) with the shadowed database password = %v, want ErrBadCredentials", err)
	}
}

func TestSetAccountsRevokes(t *testing.T) {
	pw1, pw2 := hash(t, "one"), hash(t, "two")
	base := []Account{
		{Name: "keep", Role: RoleOperator, PasswordHash: pw1},
		{Name: "op", Role: RoleOperator, PasswordHash: pw1},
		{Name: "board", Role: RoleDevice, SecretDigest: digest("s1")},
	}
	change := func(name string, fn func(*Account)) []Account {
		out := slices.Clone(base)
		for i := range out {
			if out[i].Name == name {
				fn(&out[i])
			}
		}
		return out
	}
	for _, tc := range []struct {
		what  string
		accts []Account
		want  []string
	}{
		{"nothing changed", base, nil},
		{"a token added", change("op", func(a *Account) { a.Tokens = []TokenRecord{{ID: "t", Digest: digest("t")}} }), nil},
		{"removed", base[:1], []string{"board", "op"}},
		{"disabled", change("op", func(a *Account) { a.Disabled = true }), []string{"op"}},
		{"password changed", change("op", func(a *Account) { a.PasswordHash = pw2 }), []string{"op"}},
		{"secret changed", change("board", func(a *Account) { a.SecretDigest = digest("s2") }), []string{"board"}},
		{"demoted", change("op", func(a *Account) { a.Role = RoleViewer }), []string{"op"}},
		{"ids changed", change("board", func(a *Account) { a.IDs = []string{"board", "other"} }), []string{"board"}},
		{"a new user", append(slices.Clone(base), Account{Name: "new", Role: RoleViewer}), nil},
		{"a config name", append(slices.Clone(base), Account{Name: "ada", Role: RoleViewer}), nil},
	} {
		t.Run(tc.what, func(t *testing.T) {
			a, _ := layered(t)
			a.SetAccounts(base)
			if got := a.SetAccounts(tc.accts); !slices.Equal(got, tc.want) {
				t.Errorf("revoked = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAccountCheck(t *testing.T) {
	for _, tc := range []struct {
		acct Account
		want string // "" for no error
	}{
		{Account{Name: "p", Role: RoleViewer, PasswordHash: hash(t, "x")}, ""},
		{Account{Name: "b", Role: RoleDevice, SecretDigest: digest("x"), IDs: []string{"b", "c"}}, ""},
		{Account{Name: "", Role: RoleViewer}, "name is empty"},
		{Account{Name: "p", Role: RoleNone}, "role is required"},
		{Account{Name: "p", Role: RoleViewer, PasswordHash: "plain"}, "not a bcrypt hash"},
		{Account{Name: "b", Role: RoleDevice, SecretDigest: "abc"}, "not a SHA-256"},
		{Account{Name: "b c", Role: RoleDevice}, "ids"},
		{Account{Name: "p", Role: RoleViewer, IDs: []string{"x"}}, "device role only"},
		{Account{Name: "p", Role: RoleViewer, Tokens: []TokenRecord{{ID: "t", Digest: "zz"}}}, "tokens"},
	} {
		err := tc.acct.Check()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: Check() = %v, want %q", tc.acct, err, tc.want)
		}
	}
}

func TestDisabledLogsInNowhere(t *testing.T) {
	a, _ := layered(t)
	acct := Account{Name: "zed", Role: RoleOperator, PasswordHash: hash(t, "pwz"), Tokens: []TokenRecord{{ID: "t1", Digest: digest("zed-token")}}}
	a.SetAccounts([]Account{acct})
	if _, err := a.Login("zed", "pwz", "192.0.2.1:1"); err != nil {
		t.Fatalf("Login(zed) = %v", err)
	}
	acct.Disabled = true
	if got := a.SetAccounts([]Account{acct}); !slices.Equal(got, []string{"zed"}) {
		t.Errorf("revoked = %v, want [zed]", got)
	}
	if _, err := a.Login("zed", "pwz", "192.0.2.1:1"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("Login(disabled zed) = %v, want ErrBadCredentials", err)
	}
	if _, err := a.Token("zed-token"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("Token(disabled zed's) = %v, want ErrBadCredentials", err)
	}
	if _, ok := a.User("zed"); ok {
		t.Error("User(disabled zed) = true")
	}
	if !a.Taken("zed") {
		t.Error("a disabled name is free to take")
	}
}
