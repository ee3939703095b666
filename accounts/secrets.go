// Generated secrets: board secrets, API tokens and their ids.

package accounts

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
)

// secret is a generated credential: shown once, stored only as its
// digest.
type secret struct {
	id     string // public id (tokens)
	secret string // what the client sends
	digest string // SHA-256 hex of secret: what is stored
}

// newSecret makes a board's secret: 32 random bytes, base64url without
// padding (43 characters that need no quoting in a shell or a URL).
func newSecret() (secret, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return secret{}, fmt.Errorf("generate a secret: %w", err)
	}
	return withDigest(secret{secret: base64.RawURLEncoding.EncodeToString(b)}), nil
}

// newToken makes an API token as `controlplane new-token` does (32
// random bytes, hex), with a public id of 8 random bytes, hex.
func newToken() (secret, error) {
	b := make([]byte, 40)
	if _, err := rand.Read(b); err != nil {
		return secret{}, fmt.Errorf("generate a token: %w", err)
	}
	return withDigest(secret{id: hex.EncodeToString(b[:8]), secret: hex.EncodeToString(b[8:])}), nil
}

func withDigest(s secret) secret {
	sum := sha256.Sum256([]byte(s.secret))
	s.digest = hex.EncodeToString(sum[:])
	return s
}
