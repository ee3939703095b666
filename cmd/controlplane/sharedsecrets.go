package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"switchyard/store"
	"switchyard/wsgateway"
)

// The secrets of control planes that share one PostgreSQL database. They
// must agree on the key that signs session cookies (a browser behind a
// load balancer reaches any of them), on the update key (boards pin one
// public key, whichever instance signed the build) and on the sessions
// logged out. So with PostgreSQL the three live in the database: the
// tables secrets and revoked_sessions. The first instance to start writes
// each key (store.DB.Secret: insert unless present, then read back), so
// two starting at once agree. An instance that has the file of one
// (session.key, update.key, sessions-revoked.json beside storage.path,
// from its days on SQLite) offers it as that first value, so a control
// plane moving to PostgreSQL keeps its key and its boards keep trusting
// it. With SQLite (one process) the files stay the only copy.

// Names of the keys in the secrets table.
const (
	secretSessionKey = "session-key"
	secretUpdateKey  = "update-key"
)

// secretTimeout bounds one database call for the secrets.
const secretTimeout = 10 * time.Second

// secretStore is what the keys need of the database.
type secretStore interface {
	Secret(ctx context.Context, name string, value []byte) ([]byte, error)
}

// sessionKeyFile is session.key beside the storage file; "" when storage
// is off.
func sessionKeyFile(storagePath string) string {
	if storagePath == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(storagePath), "session.key")
}

// sharedSessionKey returns the database's session key, made (or imported
// from session.key) when it has none. A session.key that differs is
// ignored with a warning: the database's key signs sessions, so cookies
// signed by the file's key (logins made before the move) are refused.
func sharedSessionKey(ctx context.Context, db secretStore, storagePath string, log *slog.Logger) ([]byte, error) {
	file := sessionKeyFile(storagePath)
	var local []byte
	if file != "" {
		b, err := os.ReadFile(file)
		switch {
		case err == nil && len(b) >= 32:
			local = b
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("session key %s: %w", file, err)
		}
	}
	offer := local
	if offer == nil {
		offer = make([]byte, 32)
		if _, err := rand.Read(offer); err != nil {
			return nil, fmt.Errorf("session key: %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, secretTimeout)
	defer cancel()
	key, err := db.Secret(ctx, secretSessionKey, offer)
	if err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	if local != nil && !bytes.Equal(local, key) {
		log.Warn("session key: "+file+" differs from the database's, which signs sessions from now on: logins signed by the file's key are refused (remove the file to silence this)",
			"file", file)
	}
	return key, nil
}

// sharedUpdateKey returns the database's update key, made (or imported
// from update.key) when it has none. An update.key that differs stops the
// program: boards pinned one of the two keys, and only a person knows
// which, so guessing would have every update refused by half the fleet.
func sharedUpdateKey(ctx context.Context, db secretStore, storagePath, dbName string) (ed25519.PrivateKey, error) {
	file := updateKeyFile(storagePath)
	var local ed25519.PrivateKey
	if file != "" {
		k, err := readUpdateKey(file)
		switch {
		case err == nil:
			local = k
		case !errors.Is(err, fs.ErrNotExist):
			return nil, err
		}
	}
	var offer []byte
	var err error
	if local != nil {
		offer, err = updateKeyPEM(local)
	} else {
		offer, err = newUpdateKeyPEM()
	}
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, secretTimeout)
	defer cancel()
	stored, err := db.Secret(ctx, secretUpdateKey, offer)
	if err != nil {
		return nil, fmt.Errorf("update key: %w", err)
	}
	key, err := parseUpdateKey(stored, "in database "+dbName)
	if err != nil {
		return nil, err
	}
	if local != nil && !local.Equal(key) {
		return nil, fmt.Errorf("update key: %s (public key %s) differs from the one in database %s (public key %s), "+
			"which other control planes sign firmware with; boards trust only the one pinned in their --update-key: "+
			"to keep the database's, move %s away; to keep the file's, stop every control plane and run "+
			"DELETE FROM secrets WHERE name = '%s' on the database, then start this one first",
			file, publicKeyBase64(local), dbName, publicKeyBase64(key), file, secretUpdateKey)
	}
	return key, nil
}

// updateKeyFromDatabase is sharedUpdateKey for `controlplane update-key`:
// it opens the database of cfg for the call.
func updateKeyFromDatabase(cfg *Config) (ed25519.PrivateKey, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, cfg.databaseURL(), store.Options{})
	if err != nil {
		return nil, fmt.Errorf("database.url: %w", err)
	}
	defer db.Close()
	return sharedUpdateKey(ctx, db, cfg.Storage.Path, db.String())
}

// revokedStore is what the logouts need of the database.
type revokedStore interface {
	AddRevokedSessions(ctx context.Context, revoked map[string]time.Time, now time.Time) error
	RevokedSessions(ctx context.Context, now time.Time) (map[string]time.Time, error)
}

// revokedDB keeps the sessions logged out in the database, for the
// gateway (wsgateway.RevokedSessions), which reads it again every
// Config.sharedPoll to learn the logouts of the other control planes.
type revokedDB struct {
	db revokedStore

	mu    sync.Mutex      // guards known
	known map[string]bool // ids the database holds already (loaded or saved): not written again
}

// LoadRevoked returns every unexpired logout in the database.
func (r *revokedDB) LoadRevoked() (map[string]time.Time, error) {
	ctx, cancel := context.WithTimeout(context.Background(), secretTimeout)
	defer cancel()
	m, err := r.db.RevokedSessions(ctx, time.Now())
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range m {
		r.known[id] = true
	}
	return m, nil
}

// SaveRevoked adds to the database the logouts of m it does not hold yet
// (the gateway's list: what it loaded plus its own), leaving the other
// control planes' in place.
func (r *revokedDB) SaveRevoked(m map[string]time.Time) error {
	r.mu.Lock()
	add := map[string]time.Time{}
	for id, exp := range m {
		if !r.known[id] {
			add[id] = exp
		}
	}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), secretTimeout)
	defer cancel()
	if err := r.db.AddRevokedSessions(ctx, add, time.Now()); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.known) // m is the whole list less the expired: what is worth remembering
	for id := range m {
		r.known[id] = true
	}
	return nil
}

// sessionSecrets returns the session key and the store of logouts for the
// gateway: from the database when it is shared (importing
// sessions-revoked.json once, when present; the gateway reads it again
// every Config.sharedPoll), else from the files beside storage.path (nil,
// nil when storage is off: sessions then end with the process).
func sessionSecrets(cfg *Config, db *store.DB, log *slog.Logger) (key []byte, revoked wsgateway.RevokedSessions, err error) {
	if !cfg.shared() {
		key, err := loadSessionKey(cfg.Storage.Path)
		if err != nil {
			return nil, nil, err
		}
		if f := newRevokedFile(cfg.Storage.Path); f != nil {
			return key, f, nil // a nil *revokedFile would be a non-nil interface
		}
		return key, nil, nil
	}
	ctx := context.Background()
	if key, err = sharedSessionKey(ctx, db, cfg.Storage.Path, log); err != nil {
		return nil, nil, err
	}
	r := &revokedDB{db: db, known: map[string]bool{}}
	if f := newRevokedFile(cfg.Storage.Path); f != nil {
		// The logouts of this instance's days on SQLite: added to the
		// others' (a union, so importing them again does no harm).
		m, err := f.LoadRevoked()
		if err != nil {
			return nil, nil, err
		}
		if len(m) > 0 {
			if err := r.SaveRevoked(m); err != nil {
				return nil, nil, fmt.Errorf("import %s: %w", f.path, err)
			}
		}
	}
	return key, r, nil
}
