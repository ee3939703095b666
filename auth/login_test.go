package auth

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"switchyard/internal/testutil"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// countBcrypt makes a count the bcrypt checks it runs.
func countBcrypt(a *Authority) *atomic.Int64 {
	n := new(atomic.Int64)
	a.creds.compare = func(h, pw []byte) error {
		n.Add(1)
		return bcrypt.CompareHashAndPassword(h, pw)
	}
	return n
}

// waitFor waits for cond, which no event announces.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, testutil.Until(what, cond))
}

func TestBoardSecretNeedsNoBcrypt(t *testing.T) {
	a, _ := layered(t)
	n := countBcrypt(a)
	a.SetAccounts([]Account{{Name: "board-1", Role: RoleDevice, SecretDigest: digest("s3cret")}})
	for i := range 3 {
		if _, err := a.Login("board-1", "s3cret", fmt.Sprintf("192.0.2.%d:1", i)); err != nil {
			t.Fatalf("Login(board-1) = %v", err)
		}
	}
	if _, err := a.Login("board-1", "wrong", "192.0.2.9:1"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("Login(board-1, wrong) = %v", err)
	}
	if got := n.Load(); got != 0 {
		t.Errorf("%d bcrypt checks for board secrets, want 0", got)
	}
}

func TestRememberedPasswords(t *testing.T) {
	a, clk := layered(t)
	n := countBcrypt(a)
	zed := Account{Name: "zed", Role: RoleOperator, PasswordHash: hash(t, "pwz")}
	a.SetAccounts([]Account{zed})
	type step struct {
		what       string
		do         func()
		name, pw   string
		ok         bool
		bcryptRuns int64 // checks this login costs
	}
	for i, s := range []step{
		{what: "first login", name: "zed", pw: "pwz", ok: true, bcryptRuns: 1},
		{what: "again", name: "zed", pw: "pwz", ok: true, bcryptRuns: 0},
		{what: "a wrong password is never remembered", name: "zed", pw: "nope", ok: false, bcryptRuns: 1},
		{what: "9 minutes on", do: func() { clk.advance(9 * time.Minute) }, name: "zed", pw: "pwz", ok: true, bcryptRuns: 0},
		{what: "10 minutes after the check", do: func() { clk.advance(time.Minute) }, name: "zed", pw: "pwz", ok: true, bcryptRuns: 1},
		{what: "remembered anew", name: "zed", pw: "pwz", ok: true, bcryptRuns: 0},
		{what: "config users too", name: "ada", pw: "pwa", ok: true, bcryptRuns: 1},
		{what: "config users remembered", name: "ada", pw: "pwa", ok: true, bcryptRuns: 0},
		{what: "password changed: the old one", do: func() {
			zed.PasswordHash = hash(t, "new-pw")
			a.SetAccounts([]Account{zed})
		}, name: "zed", pw: "pwz", ok: false, bcryptRuns: 1},
		{what: "the new one", name: "zed", pw: "new-pw", ok: true, bcryptRuns: 1},
		{what: "disabled", do: func() {
			zed.Disabled = true
			a.SetAccounts([]Account{zed})
		}, name: "zed", pw: "new-pw", ok: false, bcryptRuns: 1}, // the dummy check
		{what: "enabled again: checked again", do: func() {
			zed.Disabled = false
			a.SetAccounts([]Account{zed})
		}, name: "zed", pw: "new-pw", ok: true, bcryptRuns: 1},
		{what: "removed", do: func() { a.SetAccounts(nil) }, name: "zed", pw: "new-pw", ok: false, bcryptRuns: 1},
		{what: "unknown names cost a check", name: "who", pw: "x", ok: false, bcryptRuns: 1},
	} {
		if s.do != nil {
			s.do()
		}
		before := n.Load()
		from := fmt.Sprintf("192.0.2.%d:1", i) // no throttling here
		_, err := a.Login(s.name, s.pw, from)
		if (err == nil) != s.ok {
			t.Errorf("%s: Login(%s, %s) = %v, want ok=%v", s.what, s.name, s.pw, err, s.ok)
		}
		if got := n.Load() - before; got != s.bcryptRuns {
			t.Errorf("%s: %d bcrypt checks, want %d", s.what, got, s.bcryptRuns)
		}
	}
}

// TestRememberedKeyedByHash: a check that was running while SetAccounts
// changed the password is not remembered for the new password.
func TestRememberedKeyedByHash(t *testing.T) {
	a, _ := layered(t)
	old := hash(t, "old")
	a.SetAccounts([]Account{{Name: "zed", Role: RoleViewer, PasswordHash: old}})
	gate := make(chan struct{})
	entered := make(chan struct{})
	a.creds.compare = func(h, pw []byte) error {
		close(entered)
		<-gate
		return bcrypt.CompareHashAndPassword(h, pw)
	}
	res := make(chan error)
	go func() { // ends when its Login returns
		_, err := a.Login("zed", "old", "192.0.2.1:1")
		res <- err
	}()
	<-entered
	a.SetAccounts([]Account{{Name: "zed", Role: RoleViewer, PasswordHash: hash(t, "new")}})
	close(gate)
	if err := <-res; !errors.Is(err, ErrBadCredentials) {
		t.Errorf("a login checked against the replaced password = %v, want ErrBadCredentials", err)
	}
	a.creds.compare = bcrypt.CompareHashAndPassword
	if _, err := a.Login("zed", "old", "192.0.2.1:1"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("the old password after the change = %v, want ErrBadCredentials", err)
	}
}

// TestBcryptOnePerCore: bcrypt checks beyond one per core wait for a core.
func TestBcryptOnePerCore(t *testing.T) {
	if got, want := cap(newCredentials().sem), runtime.NumCPU(); got != want {
		t.Errorf("bcrypt slots = %d, want one per core (%d)", got, want)
	}
	a, _ := layered(t)
	const slots, logins = 2, 7
	a.creds.sem = make(chan struct{}, slots)
	var inside, most atomic.Int64
	gate := make(chan struct{})
	a.creds.compare = func(h, pw []byte) error {
		n := inside.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-gate
		inside.Add(-1)
		return bcrypt.ErrMismatchedHashAndPassword
	}
	var wg sync.WaitGroup
	for i := range logins {
		wg.Go(func() { // ends when its Login returns
			// Other names, passwords and addresses: nothing coalesces or throttles.
			_, _ = a.Login(fmt.Sprintf("user%d", i), fmt.Sprintf("pw%d", i), fmt.Sprintf("192.0.2.%d:1", i))
		})
	}
	waitFor(t, "every check running or waiting for a core", func() bool {
		return inside.Load() == slots && a.creds.queued.Load() == logins-slots
	})
	close(gate)
	wg.Wait()
	if got := most.Load(); got != slots {
		t.Errorf("at most %d bcrypt checks ran at once, want %d", got, slots)
	}
}

// TestConcurrentLoginsCoalesce: boards sharing one bcrypt user, connecting
// at once, cost one check.
func TestConcurrentLoginsCoalesce(t *testing.T) {
	a, _ := layered(t)
	a.SetAccounts([]Account{{Name: "fleet", Role: RoleDevice, IDs: []string{"b1"}, PasswordHash: hash(t, "shared")}})
	var runs atomic.Int64
	gate := make(chan struct{})
	a.creds.compare = func(h, pw []byte) error {
		runs.Add(1)
		<-gate
		return bcrypt.CompareHashAndPassword(h, pw)
	}
	const logins = 20
	errs := make(chan error, logins)
	for i := range logins {
		go func() { // ends when its Login returns
			_, err := a.Login("fleet", "shared", fmt.Sprintf("192.0.2.%d:1", i))
			errs <- err
		}()
	}
	waitFor(t, "every login waiting for the one check", func() bool {
		a.creds.mu.Lock()
		defer a.creds.mu.Unlock()
		for _, f := range a.creds.flights {
			return f.waiters == logins-1
		}
		return false
	})
	close(gate)
	for range logins {
		if err := <-errs; err != nil {
			t.Errorf("Login(fleet) = %v", err)
		}
	}
	if got := runs.Load(); got != 1 {
		t.Errorf("%d bcrypt checks for %d concurrent logins, want 1", got, logins)
	}
}

// TestLoginThrottled: the contract's scenario, through Login.
func TestLoginThrottled(t *testing.T) {
	a, clk := layered(t)
	n := countBcrypt(a)
	a.SetAccounts([]Account{{Name: "board-1", Role: RoleDevice, SecretDigest: digest("s3cret")}})
	const guesser = "198.51.100.7"
	for i := range 5 {
		clk.advance(time.Second)
		// From ever other ports: the host is what counts.
		if _, err := a.Login("ada", fmt.Sprintf("guess%d", i), fmt.Sprintf("%s:%d", guesser, 40000+i)); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("guess %d = %v, want ErrBadCredentials", i, err)
		}
	}
	checks := n.Load()
	for i, tc := range []struct{ name, pw string }{{"ada", "guess6"}, {"ada", "pwa"}, {"board-1", "s3cret"}} {
		_, err := a.Login(tc.name, tc.pw, guesser+":50000")
		var te *ThrottledError
		if !errors.As(err, &te) || !errors.Is(err, ErrThrottled) {
			t.Fatalf("Login(%s) from the guesser = %v, want a ThrottledError", tc.name, err)
		}
		if te.RetryAfter != time.Minute || te.First != (i == 0) || te.RetryAfterSeconds() != 60 {
			t.Errorf("Login(%s) from the guesser = %+v, want RetryAfter 1m, First %v", tc.name, te, i == 0)
		}
	}
	if got := n.Load(); got != checks {
		t.Errorf("%d bcrypt checks for throttled attempts, want none", got-checks)
	}
	if id, err := a.Login("ada", "pwa", "198.51.100.8:1"); err != nil || id.Name != "ada" {
		t.Errorf("Login(ada) from another address = %+v, %v", id, err)
	}
	clk.advance(time.Minute)
	if _, err := a.Login("ada", "pwa", guesser+":1"); err != nil {
		t.Errorf("Login(ada) from the guesser after a minute = %v", err)
	}
}

// TestFleetBehindOneAddress: boards sharing one bcrypt user behind one
// address (a NAT, or loopback) connecting at once: five are let into the
// check (the slots of the address), the rest wait, and all get in with
// one bcrypt check.
func TestFleetBehindOneAddress(t *testing.T) {
	a, _ := layered(t)
	a.SetAccounts([]Account{{Name: "fleet", Role: RoleDevice, IDs: []string{"b1"}, PasswordHash: hash(t, "shared")}})
	var runs atomic.Int64
	gate := make(chan struct{})
	a.creds.compare = func(h, pw []byte) error {
		runs.Add(1)
		<-gate
		return bcrypt.CompareHashAndPassword(h, pw)
	}
	const logins, nat = 30, "203.0.113.9"
	errs := make(chan error, logins)
	for i := range logins {
		go func() { // ends when its Login returns
			_, err := a.Login("fleet", "shared", fmt.Sprintf("%s:%d", nat, 1000+i))
			errs <- err
		}()
	}
	waitFor(t, "five logins in the check and the rest waiting", func() bool {
		a.throttle.mu.Lock()
		defer a.throttle.mu.Unlock()
		st := a.throttle.addrs[nat]
		return st != nil && st.pending == maxFailures && len(st.waiters) == logins-maxFailures
	})
	close(gate)
	for range logins {
		if err := testutil.Recv(t, errs, 10*time.Second, "a login"); err != nil {
			t.Errorf("Login(fleet) = %v", err)
		}
	}
	if got := runs.Load(); got != 1 {
		t.Errorf("%d bcrypt checks, want 1", got)
	}
	a.throttle.mu.Lock()
	left := len(a.throttle.addrs)
	a.throttle.mu.Unlock()
	if left != 0 {
		t.Errorf("%d addresses remembered after logins that all succeeded, want 0", left)
	}
}
