package main

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

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
// random (nil: the gateway makes one) when storage is off.
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
