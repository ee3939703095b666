// Package auth holds Switchyard's users, roles and anonymous access, and
// decides what each identity may do: over MQTT (connect, publish,
// subscribe, use a client id) and over HTTP (watch, command).
//
// It is shared by the broker (a Mochi hook) and the gateway (login,
// sessions, tokens), so one list of users serves both. People's passwords
// are bcrypt hashes; generated board secrets and API tokens are stored as
// SHA-256 digests. Failed logins are throttled per client address.
package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"switchyard/devices"
)

// Role is what a user may do.
type Role uint8

// The roles of the contract, least to most.
const (
	RoleNone     Role = iota
	RoleDevice        // a board: its own topics only; no HTTP
	RoleViewer        // watch; no commands
	RoleOperator      // watch and command
	RoleAdmin         // everything, $SYS included
)

// String returns the role's config name.
func (r Role) String() string {
	switch r {
	case RoleDevice:
		return "device"
	case RoleViewer:
		return "viewer"
	case RoleOperator:
		return "operator"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// ParseRole parses a config role name.
func ParseRole(s string) (Role, error) {
	for r := RoleDevice; r <= RoleAdmin; r++ {
		if s == r.String() {
			return r, nil
		}
	}
	return RoleNone, fmt.Errorf("role %q: want device, viewer, operator or admin", s)
}

// Anonymous says who may connect without credentials.
type Anonymous uint8

// The auth.anonymous modes.
const (
	AnonLocal Anonymous = iota // clients on a loopback address (the default)
	AnonOff                    // nobody
	AnonOn                     // everybody: a trusted network
)

// ParseAnonymous parses auth.anonymous: off, local or on. Empty means local.
func ParseAnonymous(s string) (Anonymous, error) {
	switch strings.ToLower(s) {
	case "", "local":
		return AnonLocal, nil
	case "off", "false":
		return AnonOff, nil
	case "on", "true":
		return AnonOn, nil
	}
	return AnonLocal, fmt.Errorf("%q: want off, local or on", s)
}

// User is one entry of auth.users.
type User struct {
	Name         string
	PasswordHash string   // bcrypt
	Role         Role     // required
	IDs          []string // device role: the board ids it may be; default [Name]
	Tokens       []string // SHA-256 hex digests of API tokens
}

// Config configures an Authority.
type Config struct {
	Anonymous Anonymous
	Users     []User
	// Topics is the board topic layout; the zero value means "devices".
	Topics devices.Topics
	// ExtraPrefixes are other topic trees anonymous clients may use (the
	// Home Assistant discovery prefix when it is on).
	ExtraPrefixes []string
	// Now is the clock of remembered logins and throttling; nil means
	// time.Now.
	Now func() time.Time
}

// Identity is who a client is, once authenticated (or let in anonymously).
type Identity struct {
	Name      string // empty when anonymous
	Role      Role
	IDs       []string // device role
	Anonymous bool
}

// AnonymousActor is Actor for an identity that needed no credentials.
const AnonymousActor = "anonymous"

// Actor names the identity in the history and the audit log: the user
// name, or AnonymousActor.
func (id Identity) Actor() string {
	if id.Anonymous || id.Name == "" {
		return AnonymousActor
	}
	return id.Name
}

// CanWatch reports whether the identity may see the dashboard, /ws and the API.
func (id Identity) CanWatch() bool { return id.Role >= RoleViewer }

// CanCommand reports whether the identity may switch boards.
func (id Identity) CanCommand() bool { return id.Role >= RoleOperator }

// Errors returned by the Authority.
var (
	ErrBadCredentials  = errors.New("bad user name or password")
	ErrNeedCredentials = errors.New("credentials required")
	// ErrThrottled is wrapped in a *ThrottledError.
	ErrThrottled = errors.New("too many failed logins")
)

// Authority authenticates clients and checks their rights. It is safe for
// concurrent use.
//
// Its users come in two layers: the config layer (auth.users, fixed at New,
// read-only) and the database layer (SetAccounts, replaced whole at any
// time). A config user wins over a database account of the same name. Both
// are read through one immutable snapshot behind an atomic pointer, so a
// login sees the old list or the new one, never a mix, and takes no lock
// to read it.
type Authority struct {
	anon   Anonymous
	topics devices.Topics
	extra  []string
	now    func() time.Time

	config *layer                   // auth.users: fixed at New
	snap   atomic.Pointer[snapshot] // config + database; replaced by SetAccounts
	setMu  sync.Mutex               // serialises SetAccounts

	creds    *credentials // bcrypt: bounded, remembered, coalesced (login.go)
	throttle *throttle    // failed logins per address (throttle.go)
}

// New checks cfg and returns an Authority. Every error names the user.
func New(cfg Config) (*Authority, error) {
	if cfg.Topics.Prefix() == "" {
		cfg.Topics = devices.MustTopics(devices.DefaultPrefix)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	a := &Authority{
		anon:     cfg.Anonymous,
		topics:   cfg.Topics,
		now:      now,
		config:   &layer{users: map[string]*entry{}, tokens: map[string]*entry{}},
		creds:    newCredentials(),
		throttle: newThrottle(now),
	}
	for _, p := range cfg.ExtraPrefixes {
		if p != "" {
			a.extra = append(a.extra, p)
		}
	}
	for i := range cfg.Users {
		u := cfg.Users[i]
		where := fmt.Sprintf("auth.users[%d] (%s)", i, u.Name)
		if u.Name == "" {
			return nil, fmt.Errorf("auth.users[%d]: name is empty", i)
		}
		if _, dup := a.config.users[u.Name]; dup {
			return nil, fmt.Errorf("%s: duplicate name", where)
		}
		e, err := newEntry(u.Name, u.Role, u.IDs, u.PasswordHash, "", false)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		e.config = true
		for _, t := range u.Tokens {
			t = strings.ToLower(t)
			if b, err := hex.DecodeString(t); err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("%s: tokens: %q is not a SHA-256 hex digest (make one with `controlplane new-token`)", where, t)
			}
			if _, dup := a.config.tokens[t]; dup {
				return nil, fmt.Errorf("%s: tokens: digest used twice", where)
			}
			a.config.tokens[t] = e
			e.tokens = append(e.tokens, TokenView{ID: t[:8]})
		}
		a.config.users[u.Name] = e
	}
	// Unknown names must take as long as known ones: compare against a hash
	// of the same cost as the configured ones (none: see SetAccounts).
	for _, u := range cfg.Users {
		if err := a.creds.setDummy(u.PasswordHash); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
	}
	a.snap.Store(a.config.snapshot())
	return a, nil
}

// Token checks an API token (the secret, not its digest).
func (a *Authority) Token(token string) (Identity, error) {
	sum := sha256.Sum256([]byte(token))
	if e, ok := a.snap.Load().tokens[hex.EncodeToString(sum[:])]; ok && token != "" && !e.disabled {
		return e.identity(), nil
	}
	return Identity{}, ErrBadCredentials
}

// User returns the identity of a user, for sessions: false when there is
// no such user any more, or it is disabled.
func (a *Authority) User(name string) (Identity, bool) {
	e, ok := a.snap.Load().users[name]
	if !ok || e.disabled {
		return Identity{}, false
	}
	return e.identity(), true
}

// Anonymous returns the identity of a client without credentials from
// remoteAddr (host:port or host), or ErrNeedCredentials where anonymous
// access does not apply. An anonymous browser acts as operator.
func (a *Authority) Anonymous(remoteAddr string) (Identity, error) {
	switch a.anon {
	case AnonOn:
	case AnonLocal:
		if !IsLoopback(remoteAddr) {
			return Identity{}, ErrNeedCredentials
		}
	default:
		return Identity{}, ErrNeedCredentials
	}
	return Identity{Role: RoleOperator, Anonymous: true}, nil
}

// IsLoopback reports whether addr (host:port or host) is a loopback address.
func IsLoopback(addr string) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
