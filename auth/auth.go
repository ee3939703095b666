// Package auth holds Switchyard's users, roles and anonymous access, and
// decides what each identity may do: over MQTT (connect, publish,
// subscribe, use a client id) and over HTTP (watch, command).
//
// It is shared by the broker (a Mochi hook) and the gateway (login,
// sessions, tokens), so one list of users serves both. Passwords are bcrypt
// hashes; API tokens are stored as SHA-256 digests.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

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
)

// Authority authenticates clients and checks their rights. It is safe for
// concurrent use.
type Authority struct {
	anon   Anonymous
	topics devices.Topics
	extra  []string
	users  map[string]*User
	tokens map[string]*User // token digest → user

	dummy []byte // a hash at the users' bcrypt cost of a string nobody can type, compared on a miss

	mu       sync.Mutex          // guards verified
	verified map[string][32]byte // name → SHA-256 of the password last verified by bcrypt
}

// New checks cfg and returns an Authority. Every error names the user.
func New(cfg Config) (*Authority, error) {
	if cfg.Topics.Prefix() == "" {
		cfg.Topics = devices.MustTopics(devices.DefaultPrefix)
	}
	a := &Authority{
		anon:     cfg.Anonymous,
		topics:   cfg.Topics,
		users:    map[string]*User{},
		tokens:   map[string]*User{},
		verified: map[string][32]byte{},
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
		if _, dup := a.users[u.Name]; dup {
			return nil, fmt.Errorf("%s: duplicate name", where)
		}
		if u.Role == RoleNone {
			return nil, fmt.Errorf("%s: role is required (device, viewer, operator or admin)", where)
		}
		if u.PasswordHash != "" {
			if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
				return nil, fmt.Errorf("%s: password_hash is not a bcrypt hash (make one with `controlplane hash-password`): %w", where, err)
			}
		}
		if u.Role == RoleDevice {
			if len(u.IDs) == 0 {
				u.IDs = []string{u.Name}
			}
			for _, id := range u.IDs {
				if err := devices.ValidateID(id); err != nil {
					return nil, fmt.Errorf("%s: ids: %w", where, err)
				}
			}
		} else if len(u.IDs) > 0 {
			return nil, fmt.Errorf("%s: ids are for the device role only", where)
		}
		for _, t := range u.Tokens {
			t = strings.ToLower(t)
			if b, err := hex.DecodeString(t); err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("%s: tokens: %q is not a SHA-256 hex digest (make one with `controlplane new-token`)", where, t)
			}
			if _, dup := a.tokens[t]; dup {
				return nil, fmt.Errorf("%s: tokens: digest used twice", where)
			}
			a.tokens[t] = &u
		}
		a.users[u.Name] = &u
	}
	// Unknown names must take as long as known ones: compare against a hash
	// of the same cost as the configured ones (none: nothing to protect).
	for _, u := range a.users {
		if cost, err := bcrypt.Cost([]byte(u.PasswordHash)); err == nil {
			if a.dummy, err = bcrypt.GenerateFromPassword([]byte("\x00no such user\x00"), cost); err != nil {
				return nil, fmt.Errorf("auth: %w", err)
			}
			break
		}
	}
	return a, nil
}

func identity(u *User) Identity {
	return Identity{Name: u.Name, Role: u.Role, IDs: u.IDs}
}

// Login checks a user name and password. A password verified once is
// remembered (as a SHA-256 digest) so that a fleet reconnecting does not
// cost one bcrypt run per board.
func (a *Authority) Login(name, password string) (Identity, error) {
	u, ok := a.users[name]
	if !ok || u.PasswordHash == "" {
		// Spend the same time as a real check, so names cannot be probed.
		if a.dummy != nil {
			_ = bcrypt.CompareHashAndPassword(a.dummy, []byte(password))
		}
		return Identity{}, ErrBadCredentials
	}
	sum := sha256.Sum256([]byte(password))
	a.mu.Lock()
	known, cached := a.verified[name]
	a.mu.Unlock()
	if cached && subtle.ConstantTimeCompare(known[:], sum[:]) == 1 {
		return identity(u), nil
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		return Identity{}, ErrBadCredentials
	}
	a.mu.Lock()
	a.verified[name] = sum
	a.mu.Unlock()
	return identity(u), nil
}

// Token checks an API token (the secret, not its digest).
func (a *Authority) Token(token string) (Identity, error) {
	sum := sha256.Sum256([]byte(token))
	if u, ok := a.tokens[hex.EncodeToString(sum[:])]; ok && token != "" {
		return identity(u), nil
	}
	return Identity{}, ErrBadCredentials
}

// User returns the identity of a configured user, for sessions.
func (a *Authority) User(name string) (Identity, bool) {
	u, ok := a.users[name]
	if !ok {
		return Identity{}, false
	}
	return identity(u), true
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
