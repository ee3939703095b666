package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestRevokedFile(t *testing.T) {
	if newRevokedFile("") != nil {
		t.Error("storage off: want no file")
	}
	dir := t.TempDir()
	f := newRevokedFile(filepath.Join(dir, "data", "retained.db"))
	if got, want := f.path, filepath.Join(dir, "data", "sessions-revoked.json"); got != want {
		t.Errorf("path = %s, want %s", got, want)
	}
	if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := f.LoadRevoked()
	if err != nil || len(m) != 0 {
		t.Fatalf("missing file: %v, %v; want empty, nil", m, err)
	}
	exp := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := f.SaveRevoked(map[string]time.Time{"sig-a": exp}); err != nil {
		t.Fatal(err)
	}
	m, err = f.LoadRevoked()
	if err != nil || len(m) != 1 || !m["sig-a"].Equal(exp) {
		t.Fatalf("after save: %v, %v; want sig-a → %v", m, err, exp)
	}
	if fi, err := os.Stat(f.path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode: %v, %v; want 0600", fi, err)
	}
	if err := os.WriteFile(f.path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.LoadRevoked(); err == nil {
		t.Error("a corrupt file loaded without error")
	}
}
