package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// memSecrets is the database's secrets table in memory: the first value
// stored under a name stays. (store's tests run the real one.)
type memSecrets struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memSecrets) Secret(_ context.Context, name string, value []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[name]; !ok {
		s.m[name] = bytes.Clone(value)
	}
	return bytes.Clone(s.m[name]), nil
}

func TestSharedSessionKey(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	db := &memSecrets{m: map[string][]byte{}}

	// An instance with a session.key brings it to an empty database.
	storage := filepath.Join(t.TempDir(), "retained.log")
	file := sessionKeyFile(storage)
	own := bytes.Repeat([]byte{7}, 32)
	if err := os.WriteFile(file, own, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := sharedSessionKey(ctx, db, storage, log)
	if err != nil || !bytes.Equal(got, own) {
		t.Fatalf("first instance with a file: %x, %v; want its file's key", got, err)
	}
	// One without storage, and one without a file, get it too, with no
	// warning.
	for _, s := range []string{"", filepath.Join(t.TempDir(), "retained.log")} {
		if got, err := sharedSessionKey(ctx, db, s, log); err != nil || !bytes.Equal(got, own) {
			t.Errorf("storage %q: %x, %v; want the database's key", s, got, err)
		}
	}
	if logs.Len() != 0 {
		t.Errorf("warnings without a differing file: %s", logs.String())
	}
	// One whose file differs starts with the database's key and says so.
	other := filepath.Join(t.TempDir(), "retained.log")
	if err := os.WriteFile(sessionKeyFile(other), bytes.Repeat([]byte{9}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := sharedSessionKey(ctx, db, other, log); err != nil || !bytes.Equal(got, own) {
		t.Errorf("differing file: %x, %v; want the database's key", got, err)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), sessionKeyFile(other)) {
		t.Errorf("differing file: log %q, want a warning naming %s", logs.String(), sessionKeyFile(other))
	}
}

func TestSharedUpdateKey(t *testing.T) {
	ctx := context.Background()
	withKey := func() string {
		storage := filepath.Join(t.TempDir(), "retained.log")
		if err := createUpdateKey(updateKeyFile(storage)); err != nil {
			t.Fatal(err)
		}
		return storage
	}
	// No file anywhere: the first instance makes the key, the next gets it.
	db := &memSecrets{m: map[string][]byte{}}
	first, err := sharedUpdateKey(ctx, db, "", "db")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := sharedUpdateKey(ctx, db, filepath.Join(t.TempDir(), "retained.log"), "db"); err != nil || !again.Equal(first) {
		t.Errorf("second instance: %v; same key %v", err, again.Equal(first))
	}
	// A file differing from the database's key stops the program, naming
	// the file and both public keys.
	storage := withKey()
	_, err = sharedUpdateKey(ctx, db, storage, "db")
	if err == nil || !strings.Contains(err.Error(), updateKeyFile(storage)) || !strings.Contains(err.Error(), publicKeyBase64(first)) {
		t.Errorf("differing update.key: %v, want an error naming %s and the database's key", err, updateKeyFile(storage))
	}
	// A file brought to an empty database is the key from then on.
	db = &memSecrets{m: map[string][]byte{}}
	local, err := readUpdateKey(updateKeyFile(storage))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{storage, ""} {
		if got, err := sharedUpdateKey(ctx, db, s, "db"); err != nil || !got.Equal(local) {
			t.Errorf("storage %q after the import: %v; want the file's key", s, err)
		}
	}
	// A corrupt file stops the program, as on SQLite.
	if err := os.WriteFile(updateKeyFile(storage), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := sharedUpdateKey(ctx, db, storage, "db"); err == nil || !strings.Contains(err.Error(), updateKeyFile(storage)) {
		t.Errorf("corrupt update.key: %v, want an error naming it", err)
	}
}

// memRevokedStore is the revoked_sessions table in memory, counting the
// rows written.
type memRevokedStore struct {
	m      map[string]time.Time
	writes int
}

func (s *memRevokedStore) AddRevokedSessions(_ context.Context, add map[string]time.Time, now time.Time) error {
	for id, exp := range add {
		if _, ok := s.m[id]; !ok && now.Before(exp) {
			s.m[id] = exp
			s.writes++
		}
	}
	return nil
}

func (s *memRevokedStore) RevokedSessions(_ context.Context, now time.Time) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	for id, exp := range s.m {
		if now.Before(exp) {
			out[id] = exp
		}
	}
	return out, nil
}

// TestRevokedDB: saving the gateway's whole list adds only what the
// database lacks, and leaves the other control planes' logouts in place.
func TestRevokedDB(t *testing.T) {
	exp := time.Now().Add(time.Hour)
	db := &memRevokedStore{m: map[string]time.Time{"other": exp}}
	r := &revokedDB{db: db, known: map[string]bool{}}
	m, err := r.LoadRevoked()
	if err != nil || len(m) != 1 {
		t.Fatalf("load: %v, %v", m, err)
	}
	m["mine"] = exp
	if err := r.SaveRevoked(m); err != nil {
		t.Fatal(err)
	}
	if err := r.SaveRevoked(map[string]time.Time{"mine": exp, "other": exp, "more": exp}); err != nil {
		t.Fatal(err)
	}
	if db.writes != 2 || len(db.m) != 3 {
		t.Errorf("rows written %d, held %v; want mine and more written once, other kept", db.writes, db.m)
	}
}
