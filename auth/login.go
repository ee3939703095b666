// Logging in: board secrets by SHA-256, people's passwords by bcrypt (a
// bounded, remembered and coalesced check), every failure throttled per
// client address.

package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// rememberFor is how long a password bcrypt accepted is accepted again
// without bcrypt.
const rememberFor = 10 * time.Minute

// Login checks a user name and password sent by the client at remote (its
// address, host:port or host: HTTP's r.RemoteAddr, MQTT's cl.Net.Remote).
//
// A board account's secret is checked by its SHA-256 digest (microseconds);
// a person's password by bcrypt, at most one check per core at a time,
// concurrent checks of the same password coalesced into one, and a success
// remembered for 10 minutes. An unknown or disabled name costs a bcrypt
// check like a known one, so names cannot be probed.
//
// Failures are counted per address (see throttle.go): once an address is
// throttled, Login returns a *ThrottledError (errors.Is ErrThrottled)
// without checking anything. Any other failure is ErrBadCredentials.
func (a *Authority) Login(name, password, remote string) (Identity, error) {
	host := addressKey(remote)
	mac := a.creds.mac(password)
	woken := false // by a bcrypt check of host that ended: pass it on unless taking a slot
	for {
		if err := a.throttle.refused(host); err != nil {
			return Identity{}, err
		}
		e, v := a.quick(name, password, mac)
		if v != needBcrypt {
			if woken {
				a.throttle.passOn(host)
			}
			if v == accepted {
				if id, ok := a.confirm(e); ok {
					return id, nil
				}
			}
			a.throttle.failed(host)
			return Identity{}, ErrBadCredentials
		}
		slot, wait, err := a.throttle.acquire(host)
		if err != nil {
			return Identity{}, err
		}
		if wait != nil {
			<-wait // a check of host ended: try again (it may be remembered now)
			woken = true
			continue
		}
		id, ok := a.slow(e, name, password, mac)
		a.throttle.release(host, slot, !ok)
		if !ok {
			return Identity{}, ErrBadCredentials
		}
		return id, nil
	}
}

// verdict is what quick makes of a login.
type verdict uint8

const (
	needBcrypt verdict = iota // a person's password, not remembered; or an unknown name (a dummy check)
	accepted                  // a board's secret, or a remembered password
	rejected                  // a wrong board secret
)

// quick checks what costs microseconds: a board's secret, a remembered
// password. e is name's entry (nil: none).
func (a *Authority) quick(name, password string, mac [32]byte) (*entry, verdict) {
	e := a.snap.Load().users[name]
	switch {
	case e == nil || e.disabled || (!e.hasSec && e.hash == ""):
		return e, needBcrypt // the dummy check
	case e.hasSec:
		sum := sha256.Sum256([]byte(password))
		if subtle.ConstantTimeCompare(sum[:], e.secret[:]) == 1 {
			return e, accepted
		}
		if e.hash == "" {
			return e, rejected
		}
	}
	if a.creds.remembered(e.name, e.hash, mac, a.now()) {
		return e, accepted
	}
	return e, needBcrypt
}

// slow runs the bcrypt check quick left: e's password, or, for a name
// with none (e nil, disabled, or tokens only), the dummy.
func (a *Authority) slow(e *entry, name, password string, mac [32]byte) (Identity, bool) {
	if e == nil || e.disabled || e.hash == "" {
		a.creds.dummyCheck(password)
		return Identity{}, false
	}
	if !a.creds.verify(name, e.hash, password, mac, a.now()) {
		return Identity{}, false
	}
	return a.confirm(e)
}

// confirm returns e's identity as the current list has it: a password
// checked against a list SetAccounts has replaced since is accepted only
// if the user is still there, enabled, with the same credentials.
func (a *Authority) confirm(e *entry) (Identity, bool) {
	cur := a.snap.Load().users[e.name]
	if cur == nil || cur.disabled || !cur.sameCredentials(e) {
		return Identity{}, false
	}
	return cur.identity(), true
}

// credentials runs bcrypt checks: at most one per core at a time (sem),
// one for all concurrent logins with the same name and password
// (flights), and none for a password accepted in the last rememberFor
// (verified).
type credentials struct {
	sem     chan struct{}               // a slot per core
	queued  atomic.Int64                // checks waiting for a slot
	compare func(hash, pw []byte) error // bcrypt.CompareHashAndPassword; tests count the calls
	key     [32]byte                    // HMAC key of the remembered passwords' digests
	gen     func(pw []byte, cost int) ([]byte, error)

	mu       sync.Mutex          // guards the fields below
	verified map[string]verified // user name → its password last accepted by bcrypt
	flights  map[string]*flight  // name, hash and password digest → the check running
	dummy    []byte              // a hash nobody's password matches, compared for unknown names; nil: none yet
}

// verified is a password bcrypt accepted: never the password itself but
// its HMAC, with the hash it matched and when.
type verified struct {
	mac  [32]byte
	hash string
	at   time.Time
}

// flight is a bcrypt check others may wait for.
type flight struct {
	done    chan struct{} // closed when ok is set
	ok      bool
	waiters int // logins waiting for it besides the one running it (tests)
}

func newCredentials() *credentials {
	c := &credentials{
		sem:      make(chan struct{}, runtime.NumCPU()),
		compare:  bcrypt.CompareHashAndPassword,
		gen:      bcrypt.GenerateFromPassword,
		verified: map[string]verified{},
		flights:  map[string]*flight{},
	}
	_, _ = rand.Read(c.key[:]) // never fails (crypto/rand)
	return c
}

func (c *credentials) mac(pw string) [32]byte {
	m := hmac.New(sha256.New, c.key[:])
	m.Write([]byte(pw))
	var sum [32]byte
	m.Sum(sum[:0])
	return sum
}

// bcrypt runs one bcrypt check, waiting for a free core.
func (c *credentials) bcrypt(hash, pw string) bool {
	c.queued.Add(1)
	c.sem <- struct{}{}
	c.queued.Add(-1)
	defer func() { <-c.sem }()
	return c.compare([]byte(hash), []byte(pw)) == nil
}

// remembered reports whether bcrypt accepted the password of digest mac
// for name's hash less than rememberFor ago.
func (c *credentials) remembered(name, hash string, mac [32]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.verified[name]
	return ok && v.hash == hash && !now.Before(v.at) && now.Sub(v.at) < rememberFor && hmac.Equal(v.mac[:], mac[:])
}

// verify reports whether pw (of digest mac) matches name's bcrypt hash:
// remembered, or checked, joining a check of the same password already
// running.
func (c *credentials) verify(name, hash, pw string, mac [32]byte, now time.Time) bool {
	if c.remembered(name, hash, mac, now) {
		return true
	}
	key := name + "\x00" + hash + "\x00" + string(mac[:])
	c.mu.Lock()
	f, joined := c.flights[key]
	if joined {
		f.waiters++
	} else {
		f = &flight{done: make(chan struct{})}
		c.flights[key] = f
	}
	c.mu.Unlock()
	if joined {
		<-f.done
		return f.ok
	}
	f.ok = c.bcrypt(hash, pw)
	c.mu.Lock()
	delete(c.flights, key)
	if f.ok {
		// Keyed by the hash too: a check that was running when
		// SetAccounts changed the password is never used for the new one.
		c.verified[name] = verified{mac: mac, hash: hash, at: now}
	}
	c.mu.Unlock()
	close(f.done)
	return f.ok
}

// dummyCheck spends a bcrypt check on pw for a name that has no password,
// so that it takes as long as a real one.
func (c *credentials) dummyCheck(pw string) {
	c.mu.Lock()
	d := c.dummy
	c.mu.Unlock()
	if d != nil {
		c.bcrypt(string(d), pw)
	}
}

// setDummy makes the dummy hash, at hash's cost, unless there is one.
func (c *credentials) setDummy(hash string) error {
	cost, err := bcrypt.Cost([]byte(hash))
	c.mu.Lock()
	have := c.dummy != nil
	c.mu.Unlock()
	if err != nil || have {
		return nil
	}
	d, err := c.gen([]byte("\x00no such user\x00"), cost)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.dummy == nil {
		c.dummy = d
	}
	c.mu.Unlock()
	return nil
}

// forget drops what is remembered of names' passwords.
func (c *credentials) forget(names []string) {
	c.mu.Lock()
	for _, n := range names {
		delete(c.verified, n)
	}
	c.mu.Unlock()
}
