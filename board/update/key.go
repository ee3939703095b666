package update

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// ParseKey parses the value of --update-key: the control plane's update
// public key in base64 (`controlplane update-key` prints it), or @FILE
// naming a file that holds it, alone or as the answer of GET
// /api/update-key ({"public_key":"…"}). An empty value is no key (nil):
// the board then refuses every update.
func ParseKey(value string) (ed25519.PublicKey, error) {
	if value == "" {
		return nil, nil
	}
	text := value
	if name, ok := strings.CutPrefix(value, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read update key: %w", err)
		}
		text = strings.TrimSpace(string(b))
		if strings.HasPrefix(text, "{") {
			var v struct {
				PublicKey string `json:"public_key"`
			}
			if err := json.Unmarshal([]byte(text), &v); err != nil {
				return nil, fmt.Errorf("update key in %s: %w", name, err)
			}
			text = v.PublicKey
		}
	}
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("update key %q is not base64: %w", short(text), err)
	}
	if len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("update key %q is %d bytes, want an ed25519 public key (%d bytes)", short(text), len(raw), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}

func short(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
