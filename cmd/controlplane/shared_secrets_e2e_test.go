package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"switchyard/internal/testutil"
)

// TestSharedSecretsPostgres runs two control planes in external mode on
// one Mosquitto and one PostgreSQL database. A, started first, brings its
// update.key from its SQLite days: the database takes it, and B, which has
// none, signs with it too. A login on A works on B; a logout on A is
// refused on B within the gateway's poll (sharedRefresh); both show the
// same update key, and `controlplane update-key` prints it; firmware
// uploaded through B carries a signature A's public key verifies. A third
// configuration whose update.key differs is refused with an error naming
// the file.
func TestSharedSecretsPostgres(t *testing.T) {
	mq := testutil.StartMosquitto(t, false)
	pg := testutil.StartPostgres(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("pw-ada"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	config := func(storage string) string {
		p := filepath.Join(t.TempDir(), "config.yaml")
		body := fmt.Sprintf(`
mqtt: {mode: external, url: 'tcp://127.0.0.1:%s'}
http: {listen: '127.0.0.1:0'}
database: {url: %q}
storage: {path: %q}
auth:
  anonymous: "off"
  users:
    - {name: ada, password_hash: %q, role: admin}
`, mq.Port, pg, storage, hash)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// storageWithKey is a storage path whose directory holds a fresh
	// update.key; it returns the key's public half too.
	storageWithKey := func() (string, string) {
		storage := filepath.Join(t.TempDir(), "retained.log")
		if err := createUpdateKey(updateKeyFile(storage)); err != nil {
			t.Fatal(err)
		}
		key, err := readUpdateKey(updateKeyFile(storage))
		if err != nil {
			t.Fatal(err)
		}
		return storage, publicKeyBase64(key)
	}
	storageA, filePub := storageWithKey()
	cfgA, cfgB := config(storageA), config(filepath.Join(t.TempDir(), "retained.log"))
	a := start(t, cfgA)
	b := start(t, cfgB)

	// One update key: A's file, imported.
	keys := map[string]string{}
	for name, p := range map[string]*proc{"A": a, "B": b} {
		code, _, body := p.as("ada", "GET", "/api/update-key", nil)
		var k struct {
			PublicKey string `json:"public_key"`
		}
		if code != 200 || json.Unmarshal(body, &k) != nil {
			t.Fatalf("GET /api/update-key on %s: %d %s", name, code, body)
		}
		keys[name] = k.PublicKey
	}
	if keys["A"] != filePub || keys["B"] != filePub {
		t.Errorf("update keys: A %s, B %s; want both the one of A's update.key, %s", keys["A"], keys["B"], filePub)
	}
	out, err := exec.Command(binary(t), "update-key", "--config", cfgB).Output()
	if got := strings.TrimSpace(string(out)); err != nil || got != filePub {
		t.Errorf("controlplane update-key with B's config: %q, %v; want %s", got, err, filePub)
	}
	storageC, _ := storageWithKey()
	cmd := exec.Command(binary(t), "update-key", "--config", config(storageC))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), updateKeyFile(storageC)) {
		t.Errorf("update-key with a different update.key: %v, %q; want a refusal naming %s", err, stderr.String(), updateKeyFile(storageC))
	}

	// A session made on A works on B, and its logout on A reaches B.
	cookie := a.login("ada", "pw-ada")
	if code := b.form("GET", "/api/devices", "", cookie).StatusCode; code != http.StatusOK {
		t.Fatalf("A's session on B = %d, want 200", code)
	}
	if code := a.form("POST", "/logout", "", cookie).StatusCode; code != http.StatusSeeOther {
		t.Fatalf("logout on A = %d, want 303", code)
	}
	testutil.WaitFor(t, sharedRefresh+wait, testutil.Until("B refusing the session logged out on A", func() bool {
		return b.form("GET", "/api/devices", "", cookie).StatusCode == http.StatusUnauthorized
	}))

	// Firmware uploaded through B is signed with the key A shows.
	fw := []byte("firmware uploaded through B")
	code, _, body := b.as("ada", "POST", "/api/firmware?version=2.0&platform=sim", fw)
	if code != http.StatusCreated {
		t.Fatalf("upload through B: %d %s", code, body)
	}
	digest := sha256.Sum256(fw)
	db, err := sql.Open("pgx", pg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var sig []byte
	if err := db.QueryRow("SELECT signature FROM firmware WHERE sha256 = $1", hex.EncodeToString(digest[:])).Scan(&sig); err != nil {
		t.Fatalf("the upload's signature in the database: %v", err)
	}
	pub, err := base64.StdEncoding.DecodeString(keys["A"])
	if err != nil || !ed25519.Verify(pub, digest[:], sig) {
		t.Errorf("firmware uploaded through B does not verify with A's public key (%v)", err)
	}
	a.stop()
	b.stop()
}
