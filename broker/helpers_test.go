package broker

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// bcryptHash hashes pw at the lowest cost: tests need a hash, not its cost.
func bcryptHash(t *testing.T, pw string) string {
	t.Helper()
	b, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
