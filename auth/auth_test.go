package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"switchyard/devices"
)

func hash(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func digest(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

func testAuthority(t *testing.T, anon Anonymous) *Authority {
	t.Helper()
	a, err := New(Config{
		Anonymous: anon,
		Topics:    devices.MustTopics("home/boards"),
		Users: []User{
			{Name: "board-7", PasswordHash: hash(t, "pw7"), Role: RoleDevice},
			{Name: "pair", PasswordHash: hash(t, "pwp"), Role: RoleDevice, IDs: []string{"left", "right"}},
			{Name: "vera", PasswordHash: hash(t, "pwv"), Role: RoleViewer},
			{Name: "otto", PasswordHash: hash(t, "pwo"), Role: RoleOperator, Tokens: []string{digest("secret-token")}},
			{Name: "ada", PasswordHash: hash(t, "pwa"), Role: RoleAdmin},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestLoginAndTokens(t *testing.T) {
	a := testAuthority(t, AnonOff)
	for range 2 { // the second time from the verified cache
		id, err := a.Login("otto", "pwo", "192.0.2.1:1000")
		if err != nil || id.Role != RoleOperator || id.Name != "otto" || id.Anonymous {
			t.Fatalf("Login(otto) = %+v, %v", id, err)
		}
	}
	for _, tc := range []struct{ name, pw string }{{"otto", "wrong"}, {"otto", ""}, {"nobody", "pwo"}, {"", ""}} {
		if _, err := a.Login(tc.name, tc.pw, "192.0.2.2:1000"); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("Login(%q, %q) = %v, want ErrBadCredentials", tc.name, tc.pw, err)
		}
	}
	if id, err := a.Token("secret-token"); err != nil || id.Name != "otto" {
		t.Errorf("Token = %+v, %v", id, err)
	}
	if _, err := a.Token(digest("secret-token")); err == nil {
		t.Error("the digest itself was accepted as a token")
	}
	if id, err := a.Login("board-7", "pw7", "192.0.2.1:1001"); err != nil || len(id.IDs) != 1 || id.IDs[0] != "board-7" {
		t.Errorf("device ids default to the name: %+v, %v", id, err)
	}
}

func TestAnonymousModes(t *testing.T) {
	for _, tc := range []struct {
		mode   Anonymous
		remote string
		ok     bool
	}{
		{AnonLocal, "127.0.0.1:5000", true},
		{AnonLocal, "[::1]:5000", true},
		{AnonLocal, "127.8.9.10:1", true},
		{AnonLocal, "192.168.1.20:5000", false},
		{AnonLocal, "garbage", false},
		{AnonOff, "127.0.0.1:5000", false},
		{AnonOn, "192.168.1.20:5000", true},
	} {
		id, err := testAuthority(t, tc.mode).Anonymous(tc.remote)
		if (err == nil) != tc.ok {
			t.Errorf("mode %d from %s: %v, want ok=%v", tc.mode, tc.remote, err, tc.ok)
		}
		if err == nil && (!id.Anonymous || id.Role != RoleOperator) {
			t.Errorf("anonymous identity = %+v, want an anonymous operator", id)
		}
	}
	for _, s := range []string{"off", "local", "on", ""} {
		if _, err := ParseAnonymous(s); err != nil {
			t.Errorf("ParseAnonymous(%q): %v", s, err)
		}
	}
	if _, err := ParseAnonymous("maybe"); err == nil {
		t.Error("ParseAnonymous(maybe) accepted")
	}
}

func TestRights(t *testing.T) {
	a := testAuthority(t, AnonLocal)
	a.extra = []string{"homeassistant"}
	ids := map[string]Identity{}
	for _, n := range []string{"board-7", "pair", "vera", "otto", "ada"} {
		ids[n], _ = a.User(n)
	}
	ids["anon"], _ = a.Anonymous("127.0.0.1:1")

	type check struct {
		who, topic string
		pub, sub   bool
	}
	for _, c := range []check{
		// A board: its own tree only, however the wildcards are placed.
		{"board-7", "home/boards/board-7/status", true, true},
		{"board-7", "home/boards/board-7/led/set", true, true},
		{"board-7", "home/boards/board-7/#", false, true},
		{"board-7", "home/boards/board-8/status", false, false},
		{"board-7", "home/boards/board-70/status", false, false},
		{"board-7", "home/boards/+/status", false, false},
		{"board-7", "home/boards/#", false, false},
		{"board-7", "home/+/board-7/status", false, false},
		{"board-7", "#", false, false},
		{"board-7", "home/boards/board-7", false, false},
		{"pair", "home/boards/right/led", true, true},
		{"pair", "home/boards/pair/led", false, false},
		// Viewer: watch the tree, publish nothing.
		{"vera", "home/boards/#", false, true},
		{"vera", "home/boards/x/led/set", false, true},
		{"vera", "#", false, false},
		{"vera", "$SYS/#", false, false},
		{"vera", "other/x", false, false},
		// Operator: viewer plus commands.
		{"otto", "home/boards/x/led/set", true, true},
		{"otto", "home/boards/x/led", false, true},
		{"otto", "home/boards/+/led/set", false, true},
		{"otto", "home/boards/bad id/led/set", false, true},
		// Admin: everything.
		{"ada", "$SYS/broker/clients", true, true},
		{"ada", "#", true, true},
		// Anonymous: under P/ and the extra trees, never $SYS.
		{"anon", "home/boards/x/led", true, true},
		{"anon", "home/boards/#", false, true},
		{"anon", "homeassistant/light/x/config", true, true},
		{"anon", "$SYS/#", false, false},
		{"anon", "#", false, false},
		{"anon", "$share/g/home/boards/#", false, false},
		{"anon", "elsewhere/x", false, false},
	} {
		id := ids[c.who]
		if got := a.CanPublish(id, c.topic); got != c.pub && !strings.ContainsAny(c.topic, "+#") {
			t.Errorf("%s publish %s = %v, want %v", c.who, c.topic, got, c.pub)
		}
		if got := a.CanSubscribe(id, c.topic); got != c.sub {
			t.Errorf("%s subscribe %s = %v, want %v", c.who, c.topic, got, c.sub)
		}
	}
	for _, c := range []struct {
		who, clientID string
		ok            bool
	}{
		{"board-7", "board-7", true}, {"board-7", "board-8", false},
		{"pair", "left", true}, {"pair", "pair", false},
		{"vera", "anything", true}, {"anon", "x", true},
	} {
		if got := a.CanUseClientID(ids[c.who], c.clientID); got != c.ok {
			t.Errorf("%s as client %s = %v, want %v", c.who, c.clientID, got, c.ok)
		}
	}
	if ids["vera"].CanCommand() || !ids["vera"].CanWatch() || !ids["otto"].CanCommand() || ids["board-7"].CanWatch() {
		t.Error("HTTP rights by role are wrong")
	}
}

func TestConfigErrors(t *testing.T) {
	good := hash(t, "x")
	for _, tc := range []struct {
		u    User
		want string
	}{
		{User{Name: "", Role: RoleViewer}, "name is empty"},
		{User{Name: "a", PasswordHash: good}, "role is required"},
		{User{Name: "a", Role: RoleViewer, PasswordHash: "plaintext"}, "not a bcrypt hash"},
		{User{Name: "a b", Role: RoleDevice}, "ids"},
		{User{Name: "a", Role: RoleDevice, IDs: []string{"x/y"}}, "ids"},
		{User{Name: "a", Role: RoleViewer, IDs: []string{"x"}}, "device role only"},
		{User{Name: "a", Role: RoleViewer, Tokens: []string{"abc"}}, "SHA-256"},
	} {
		_, err := New(Config{Users: []User{tc.u}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.u, err, tc.want)
		}
	}
	if _, err := New(Config{Users: []User{{Name: "a", Role: RoleViewer}, {Name: "a", Role: RoleAdmin}}}); err == nil {
		t.Error("duplicate names accepted")
	}
}
