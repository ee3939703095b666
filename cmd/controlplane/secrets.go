package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// hashPassword reads a password (the first line of in) and prints its
// bcrypt hash for auth.users[].password_hash.
func hashPassword(in io.Reader, stdout, stderr io.Writer) int {
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(stderr, "controlplane hash-password: read standard input:", err)
		return 1
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		fmt.Fprintln(stderr, "controlplane hash-password: empty password (type it on standard input)")
		return 1
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		fmt.Fprintln(stderr, "controlplane hash-password:", err)
		return 1
	}
	fmt.Fprintln(stdout, string(h))
	return 0
}

// newToken prints a fresh random API token and, on a second line, its
// SHA-256 digest for auth.users[].tokens.
func newToken(stdout, stderr io.Writer) int {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		fmt.Fprintln(stderr, "controlplane new-token:", err)
		return 1
	}
	tok := hex.EncodeToString(b)
	sum := sha256.Sum256([]byte(tok))
	fmt.Fprintln(stdout, tok)
	fmt.Fprintln(stdout, hex.EncodeToString(sum[:]))
	return 0
}

// loadSessionKey returns the key that signs session cookies: kept in
// session.key beside the storage file so logins survive a restart, or
// random (nil: the gateway makes one) when storage is off. With
// PostgreSQL, sharedSessionKey takes its place.
func loadSessionKey(storagePath string) ([]byte, error) {
	if storagePath == "" {
		return nil, nil
	}
	p := filepath.Join(filepath.Dir(storagePath), "session.key")
	key, err := os.ReadFile(p)
	if err == nil && len(key) >= 32 {
		return key, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("session key %s: %w", p, err)
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, fmt.Errorf("session key %s: %w", p, err)
	}
	if err := os.WriteFile(p, key, 0o600); err != nil {
		return nil, fmt.Errorf("session key %s: %w", p, err)
	}
	return key, nil
}

// revokedFile keeps the sessions ended by POST /logout in
// sessions-revoked.json beside session.key, so that a logged-out cookie
// stays refused after a restart (the key, and so the cookie, survive one).
type revokedFile struct{ path string }

// newRevokedFile returns the file for this storage path, or nil when
// storage is off (the session key is then random, so a restart ends every
// session anyway).
func newRevokedFile(storagePath string) *revokedFile {
	if storagePath == "" {
		return nil
	}
	return &revokedFile{path: filepath.Join(filepath.Dir(storagePath), "sessions-revoked.json")}
}

// LoadRevoked reads the file; a missing file is an empty list.
func (f *revokedFile) LoadRevoked() (map[string]time.Time, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.path, err)
	}
	var m map[string]time.Time
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read %s: %w", f.path, err)
	}
	return m, nil
}

// SaveRevoked replaces the file (written beside it, then renamed, so a
// crash leaves the old list or the new one).
func (f *revokedFile) SaveRevoked(m map[string]time.Time) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	tmp := f.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	return nil
}
