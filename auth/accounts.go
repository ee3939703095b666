// The user list's two layers: config users (fixed) and database accounts
// (replaced whole by SetAccounts), merged into an immutable snapshot.

package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"switchyard/devices"
)

// Account is a user of the database layer (what the accounts service
// stores). A person has a PasswordHash; a board created from the dashboard
// has a SecretDigest instead.
type Account struct {
	Name         string
	Role         Role
	IDs          []string      // device role: board ids; default [Name]
	PasswordHash string        // bcrypt, for people; "" for a board
	SecretDigest string        // SHA-256 hex of a generated board secret; "" for people
	Disabled     bool          // listed, but logs in nowhere and its tokens and sessions are refused
	Tokens       []TokenRecord // API tokens
}

// TokenRecord is an API token of a database account.
type TokenRecord struct {
	ID      string // short public id (for DELETE …/tokens/<id>)
	Digest  string // SHA-256 hex of the token
	Created time.Time
}

// Check reports what is wrong with acct, if anything: SetAccounts leaves
// out an account Check refuses (it then logs in nowhere).
func (acct Account) Check() error {
	if acct.Name == "" {
		return fmt.Errorf("name is empty")
	}
	if _, err := newEntry(acct.Name, acct.Role, acct.IDs, acct.PasswordHash, acct.SecretDigest, acct.Disabled); err != nil {
		return err
	}
	for _, t := range acct.Tokens {
		if !isDigest(t.Digest) {
			return fmt.Errorf("tokens: %q is not a SHA-256 hex digest", t.Digest)
		}
	}
	return nil
}

// UserView is a user as the Users page shows it: never a secret or a hash.
type UserView struct {
	Name     string
	Role     Role
	Source   string // SourceConfig or SourceDatabase
	Disabled bool
	Tokens   []TokenView
}

// Where a user comes from (UserView.Source).
const (
	SourceConfig   = "config"   // auth.users in config.yaml: read-only
	SourceDatabase = "database" // SetAccounts
)

// TokenView is an API token as listed: its public id and when it was made.
// A config token's id is the first 8 hex digits of its digest, and its
// Created is zero.
type TokenView struct {
	ID      string
	Created time.Time
}

// entry is a user of either layer, immutable once in a snapshot.
type entry struct {
	name     string
	role     Role
	ids      []string
	hash     string   // bcrypt; "" for none
	secret   [32]byte // SHA-256 of a board secret, when hasSecret
	hasSec   bool
	disabled bool
	config   bool
	tokens   []TokenView
}

func newEntry(name string, role Role, ids []string, hash, secretDigest string, disabled bool) (*entry, error) {
	if role == RoleNone || role > RoleAdmin {
		return nil, fmt.Errorf("role is required (device, viewer, operator or admin)")
	}
	e := &entry{name: name, role: role, hash: hash, disabled: disabled}
	if hash != "" {
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("password_hash is not a bcrypt hash (make one with `controlplane hash-password`): %w", err)
		}
	}
	if secretDigest != "" {
		b, err := hex.DecodeString(strings.ToLower(secretDigest))
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("secret digest is not a SHA-256 hex digest")
		}
		copy(e.secret[:], b)
		e.hasSec = true
	}
	if role == RoleDevice {
		if len(ids) == 0 {
			ids = []string{name}
		}
		for _, id := range ids {
			if err := devices.ValidateID(id); err != nil {
				return nil, fmt.Errorf("ids: %w", err)
			}
		}
		e.ids = slices.Clone(ids)
	} else if len(ids) > 0 {
		return nil, fmt.Errorf("ids are for the device role only")
	}
	return e, nil
}

func (e *entry) identity() Identity {
	return Identity{Name: e.name, Role: e.role, IDs: e.ids}
}

// sameCredentials reports whether e and o log in with the same secrets.
func (e *entry) sameCredentials(o *entry) bool {
	return e.hash == o.hash && e.hasSec == o.hasSec && subtle.ConstantTimeCompare(e.secret[:], o.secret[:]) == 1
}

// sameRights reports whether e and o may do the same once logged in.
func (e *entry) sameRights(o *entry) bool {
	return e.role == o.role && slices.Equal(e.ids, o.ids) && e.disabled == o.disabled
}

func isDigest(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

// layer is a set of users and their token digests.
type layer struct {
	users  map[string]*entry
	tokens map[string]*entry // lower-case token digest → user
}

// snapshot is the merged user list a login reads; never modified once
// stored, only replaced.
type snapshot struct {
	layer
}

func (l *layer) snapshot() *snapshot {
	s := &snapshot{layer: layer{users: make(map[string]*entry, len(l.users)), tokens: make(map[string]*entry, len(l.tokens))}}
	for n, e := range l.users {
		s.users[n] = e
	}
	for d, e := range l.tokens {
		s.tokens[d] = e
	}
	return s
}

// SetAccounts replaces the database layer at once (copy-on-write: logins
// in flight see the old or the new list, never a mix). Names also in
// config.yaml are ignored (config wins, read-only), as are accounts Check
// refuses, and a token digest another user holds already.
//
// It forgets the remembered verifications of every account that was
// removed or disabled, or whose credentials (password hash, secret) or
// rights (role, ids) changed, and returns those names, sorted: the caller
// disconnects their clients, which logged in under the old terms.
func (a *Authority) SetAccounts(accts []Account) (revoked []string) {
	a.setMu.Lock()
	defer a.setMu.Unlock()
	old := a.snap.Load()
	s := a.config.snapshot()
	for _, acct := range accts {
		if s.users[acct.Name] != nil || acct.Check() != nil {
			continue // config wins; so does the first of two accounts of one name
		}
		e, _ := newEntry(acct.Name, acct.Role, acct.IDs, acct.PasswordHash, acct.SecretDigest, acct.Disabled)
		s.users[acct.Name] = e
		for _, t := range acct.Tokens {
			d := strings.ToLower(t.Digest)
			if _, taken := s.tokens[d]; taken {
				continue
			}
			s.tokens[d] = e
			e.tokens = append(e.tokens, TokenView{ID: t.ID, Created: t.Created})
		}
		if err := a.creds.setDummy(e.hash); err != nil {
			// Only a failing random source ends here: unknown names are
			// then answered faster than known ones, nothing worse.
			continue
		}
	}
	for name, was := range old.users {
		if was.config {
			continue
		}
		now, ok := s.users[name]
		if !ok || now.disabled || !was.sameCredentials(now) || !was.sameRights(now) {
			revoked = append(revoked, name)
		}
	}
	a.snap.Store(s)
	a.creds.forget(revoked)
	slices.Sort(revoked)
	return revoked
}

// FromConfig reports whether name is a user of config.yaml (read-only).
func (a *Authority) FromConfig(name string) bool {
	return a.config.users[name] != nil
}

// Taken reports whether name is a user, from config or the database,
// disabled or not.
func (a *Authority) Taken(name string) bool {
	return a.snap.Load().users[name] != nil
}

// Users lists the users of both layers, sorted by name.
func (a *Authority) Users() []UserView {
	s := a.snap.Load()
	out := make([]UserView, 0, len(s.users))
	for _, e := range s.users {
		src := SourceDatabase
		if e.config {
			src = SourceConfig
		}
		out = append(out, UserView{Name: e.name, Role: e.role, Source: src, Disabled: e.disabled, Tokens: slices.Clone(e.tokens)})
	}
	slices.SortFunc(out, func(x, y UserView) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// EnabledAdmins counts the admins of both layers that are not disabled.
func (a *Authority) EnabledAdmins() int {
	n := 0
	for _, e := range a.snap.Load().users {
		if e.role == RoleAdmin && !e.disabled {
			n++
		}
	}
	return n
}
