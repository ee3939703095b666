package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// The update key signs every firmware build the control plane hands out;
// boards pin its public half at flash time (devicefw --update-key). It is
// an ed25519 key kept in update.key beside the storage file, as PEM
// ("PRIVATE KEY", PKCS #8: `openssl pkey -in update.key -pubout` reads it),
// mode 0600, made at the first start. Losing it means re-flashing every
// board's --update-key, so it is never replaced: a file that does not hold
// an ed25519 key stops the program. With PostgreSQL the key lives in the
// database instead, shared by every control plane on it (sharedsecrets.go).

// updateKeyFile is the key's file for a storage path; "" when storage is
// off.
func updateKeyFile(storagePath string) string {
	if storagePath == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(storagePath), "update.key")
}

// loadUpdateKey returns the update key: read from update.key beside the
// storage file, made and written there when missing. With storage off it
// is a fresh key in memory (persisted false): boards cannot pin it, since
// it changes at every start.
func loadUpdateKey(storagePath string) (key ed25519.PrivateKey, persisted bool, err error) {
	p := updateKeyFile(storagePath)
	if p == "" {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, false, fmt.Errorf("update key: %w", err)
		}
		return key, false, nil
	}
	key, err = readUpdateKey(p)
	if err == nil {
		return key, true, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if err := createUpdateKey(p); err != nil {
		return nil, false, err
	}
	key, err = readUpdateKey(p) // another process may have made it first: its key wins
	return key, err == nil, err
}

func readUpdateKey(p string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("update key %s: %w", p, err)
	}
	return parseUpdateKey(b, p)
}

// parseUpdateKey reads the PEM of an update key; where names its source
// in errors (the file, or the database).
func parseUpdateKey(b []byte, where string) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("update key %s: not a PEM \"PRIVATE KEY\" (move it away only if no board pins it: a new key means re-flashing --update-key)", where)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("update key %s: %w", where, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("update key %s: a %T, want an ed25519 key", where, k)
	}
	return key, nil
}

// newUpdateKeyPEM makes a new update key, as PEM.
func newUpdateKeyPEM() ([]byte, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("update key: %w", err)
	}
	return updateKeyPEM(key)
}

// updateKeyPEM is key as update.key holds it.
func updateKeyPEM(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("update key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// createUpdateKey writes a new key to p unless p exists: written to a
// temporary file first and linked into place, so a reader never sees half
// a key and two processes starting at once end up with the same one.
func createUpdateKey(p string) error {
	b, err := newUpdateKeyPEM()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("update key %s: %w", p, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".update.key-*")
	if err != nil {
		return fmt.Errorf("update key %s: %w", p, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b) // CreateTemp made it 0600
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), p)
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("update key %s: %w", p, err)
	}
	return nil
}

// publicKeyBase64 is the public half as boards and GET /api/update-key
// take it: the 32 raw bytes in standard base64.
func publicKeyBase64(key ed25519.PrivateKey) string {
	return base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
}

// updateKeyCmd is `controlplane update-key [--config FILE]`: it prints the
// public half of the update key, making the key when it does not exist yet
// (in the database when database.url is PostgreSQL, as a start does).
func updateKeyCmd(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("controlplane update-key", flag.ContinueOnError)
	fl.SetOutput(stderr)
	load := configFlag(fl)
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	cfg, err := load()
	if err != nil {
		fmt.Fprintln(stderr, "controlplane update-key:", err)
		return 1
	}
	var key ed25519.PrivateKey
	if cfg.shared() {
		key, err = updateKeyFromDatabase(cfg)
	} else if cfg.Storage.Path == "" {
		fmt.Fprintln(stderr, "controlplane update-key: storage.path is empty: the update key then lives in memory and changes at every start, so no board can pin it; set storage.path")
		return 1
	} else {
		key, _, err = loadUpdateKey(cfg.Storage.Path)
	}
	if err != nil {
		fmt.Fprintln(stderr, "controlplane update-key:", err)
		return 1
	}
	fmt.Fprintln(stdout, publicKeyBase64(key))
	return 0
}
