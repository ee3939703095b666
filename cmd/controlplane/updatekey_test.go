package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUpdateKeyKeptBesideStorage(t *testing.T) {
	dir := t.TempDir()
	storage := filepath.Join(dir, "data", "retained.log")
	key, persisted, err := loadUpdateKey(storage)
	if err != nil || !persisted {
		t.Fatalf("first start: %v, persisted %v", err, persisted)
	}
	p := filepath.Join(dir, "data", "update.key")
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, %v; want mode 0600", p, fi, err)
	}
	again, _, err := loadUpdateKey(storage)
	if err != nil || !again.Equal(key) {
		t.Fatalf("second start: %v; same key %v", err, again.Equal(key))
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, "data", ".update.key-*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	sig := ed25519.Sign(key, []byte("digest"))
	pub, _ := base64.StdEncoding.DecodeString(publicKeyBase64(key))
	if !ed25519.Verify(pub, []byte("digest"), sig) {
		t.Error("publicKeyBase64 does not verify the key's signature")
	}

	if err := os.WriteFile(p, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadUpdateKey(storage); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("corrupt key file: %v, want an error naming %s", err, p)
	}

	mem, persisted, err := loadUpdateKey("")
	if err != nil || persisted || len(mem) != ed25519.PrivateKeySize {
		t.Errorf("storage off: %d bytes, persisted %v, %v; want a key in memory", len(mem), persisted, err)
	}
}

func TestUpdateKeyCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, "storage: {path: "+filepath.Join(dir, "retained.log")+"}\n")
	var out1, out2, errs bytes.Buffer
	if code := run([]string{"update-key", "--config", cfg}, &out1, &errs, nil); code != 0 {
		t.Fatalf("update-key: exit %d: %s", code, errs.String())
	}
	if code := run([]string{"update-key", "--config", cfg}, &out2, &errs, nil); code != 0 || out1.String() != out2.String() {
		t.Fatalf("update-key again: exit %d, %q then %q", code, out1.String(), out2.String())
	}
	key, _, err := loadUpdateKey(filepath.Join(dir, "retained.log"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := out1.String(), publicKeyBase64(key)+"\n"; got != want {
		t.Errorf("printed %q, want the public key %q on one line", got, want)
	}
	errs.Reset()
	if code := run([]string{"update-key", "--config", writeConfig(t, "log: {level: info}\n")}, &out1, &errs, nil); code != 1 ||
		!strings.Contains(errs.String(), "storage.path") {
		t.Errorf("storage off: exit %d, %q; want 1 and a line naming storage.path", code, errs.String())
	}
}
