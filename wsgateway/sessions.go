// Sessions: signed session cookies and the list of sessions logged out.

package wsgateway

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RevokedSessions keeps the sessions ended by POST /logout across restarts,
// and shares them with other processes that use the same SessionKey (see
// Config.SharedPoll). It matters only when Config.SessionKey outlives the
// process (with a random key a restart ends every session anyway). Both
// methods see the revocations as session id → the time the session would
// have expired.
type RevokedSessions interface {
	// LoadRevoked returns what is stored (empty at first).
	LoadRevoked() (map[string]time.Time, error)
	// SaveRevoked stores the list, which holds every revocation the
	// gateway knows of: what LoadRevoked returned plus its own logouts,
	// less the expired ones. A store of one process replaces what it
	// holds; a store shared by several adds to it, so that none loses
	// another's logouts.
	SaveRevoked(map[string]time.Time) error
}

// sessions issues and checks session cookies and remembers the ones logged
// out. A cookie is stateless, so it outlives a restart when the key does
// (cmd keeps one beside storage):
//
//	base64(expiry-unix ":" nonce ":" name) "." base64(HMAC-SHA256)
//
// The nonce makes every login's cookie different; the signature part is
// the session's id. A logged-out id is kept until the session would have
// expired, so the list stays as short as the logins of one TTL.
type sessions struct {
	key   []byte
	ttl   time.Duration
	store RevokedSessions // nil: revocations live in memory only

	saveMu  sync.Mutex           // serialises revoke's update and save, so saves land in order
	mu      sync.Mutex           // guards revoked (never held while saving)
	revoked map[string]time.Time // session id → its expiry
}

func newSessions(key []byte, ttl time.Duration, store RevokedSessions) (*sessions, error) {
	s := &sessions{key: key, ttl: ttl, store: store, revoked: map[string]time.Time{}}
	if store != nil {
		m, err := store.LoadRevoked()
		if err != nil {
			return nil, fmt.Errorf("load revoked sessions: %w", err)
		}
		maps.Copy(s.revoked, m)
	}
	return s, nil
}

// issue returns a new session cookie value for name.
func (s *sessions) issue(name string, now time.Time) string {
	nonce := make([]byte, 12)
	_, _ = rand.Read(nonce) // never fails (crypto/rand panics instead)
	payload := strconv.FormatInt(now.Add(s.ttl).Unix(), 10) + ":" +
		base64.RawURLEncoding.EncodeToString(nonce) + ":" + name
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + s.sign(payload)
}

func (s *sessions) sign(payload string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// verify returns the user and the session id of a valid, unexpired,
// not logged-out cookie value.
func (s *sessions) verify(v string, now time.Time) (name, id string, ok bool) {
	name, id, exp, ok := s.parse(v)
	if !ok || !now.Before(exp) {
		return "", "", false
	}
	if s.isRevoked(id) {
		return "", "", false
	}
	return name, id, true
}

// isRevoked reports whether the session with this id was logged out.
func (s *sessions) isRevoked(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, out := s.revoked[id]
	return out
}

// reload merges what the store holds now into the list (the logouts of
// other processes sharing it) and returns the ids it did not know.
func (s *sessions) reload(now time.Time) ([]string, error) {
	m, err := s.store.LoadRevoked()
	if err != nil {
		return nil, fmt.Errorf("load revoked sessions: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var added []string
	for id, exp := range m {
		if _, ok := s.revoked[id]; !ok && now.Before(exp) {
			s.revoked[id] = exp
			added = append(added, id)
		}
	}
	return added, nil
}

// parse checks v's signature and splits it.
func (s *sessions) parse(v string) (name, id string, exp time.Time, ok bool) {
	p64, sig, found := strings.Cut(v, ".")
	if !found {
		return "", "", time.Time{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(p64)
	if err != nil || !hmac.Equal([]byte(sig), []byte(s.sign(string(raw)))) {
		return "", "", time.Time{}, false
	}
	expS, rest, found1 := strings.Cut(string(raw), ":")
	_, name, found2 := strings.Cut(rest, ":")
	unix, err := strconv.ParseInt(expS, 10, 64)
	if !found1 || !found2 || err != nil {
		return "", "", time.Time{}, false
	}
	return name, sig, time.Unix(unix, 0), true
}

// revoke ends the session of cookie value v, if it is one, and returns
// its id ("" if v is not a valid session).
func (s *sessions) revoke(v string, now time.Time) (string, error) {
	_, id, exp, ok := s.parse(v)
	if !ok || !now.Before(exp) {
		return "", nil
	}
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	s.mu.Lock()
	maps.DeleteFunc(s.revoked, func(_ string, e time.Time) bool { return !now.Before(e) }) // expired anyway
	s.revoked[id] = exp
	var cp map[string]time.Time
	if s.store != nil {
		cp = maps.Clone(s.revoked)
	}
	s.mu.Unlock()
	if cp == nil {
		return id, nil
	}
	if err := s.store.SaveRevoked(cp); err != nil {
		return id, fmt.Errorf("save revoked sessions: %w", err)
	}
	return id, nil
}
