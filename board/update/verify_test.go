package update

import (
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"switchyard/devices"
)

func TestCheckExecutable(t *testing.T) {
	self, err := os.Executable() // this test binary: an ELF for this machine
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "linux" {
		if err := checkExecutable(self); err != nil {
			t.Errorf("this test binary: %v", err)
		}
	}
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	text := filepath.Join(t.TempDir(), "text")
	if err := os.WriteFile(text, []byte(strings.Repeat("not an ELF file\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, path, goarch, want string
	}{
		{"for another machine", self, other, "unsupported platform: an executable for"},
		{"not an ELF file", text, runtime.GOARCH, "unsupported platform: not an ELF executable"},
		{"missing", filepath.Join(t.TempDir(), "none"), runtime.GOARCH, "unsupported platform: read ELF header"},
	} {
		err := checkExecutableFor(tt.path, tt.goarch)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an error starting %q", tt.name, err, tt.want)
		}
	}
}

func TestVerifySignature(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	_, other, _ := ed25519.GenerateKey(nil)
	job := devices.UpdateCommand{SHA256: strings.Repeat("ab", 32)}
	job.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, job.Digest()))
	if err := verifySignature(pub, job); err != nil {
		t.Errorf("signed by the key: %v", err)
	}
	forged := job
	forged.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(other, job.Digest()))
	if err := verifySignature(pub, forged); err == nil || !devices.UpdateErrorIs(err.Error(), devices.UpdateErrSignature) {
		t.Errorf("signed by another key: got %v, want a signature error", err)
	}
	otherDigest := job
	otherDigest.SHA256 = strings.Repeat("cd", 32)
	if err := verifySignature(pub, otherDigest); err == nil {
		t.Error("a signature of another digest was accepted")
	}
}

func TestParseKey(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	b64 := base64.StdEncoding.EncodeToString(pub)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return "@" + p
	}
	for _, tt := range []struct {
		name, in string
		want     string // "" for the key
	}{
		{"base64", b64, ""},
		{"a file", write("key", b64+"\n"), ""},
		{"the API's answer in a file", write("key.json", `{"public_key":"`+b64+`"}`), ""},
		{"not base64", "not-a-key!", "is not base64"},
		{"too short", base64.StdEncoding.EncodeToString(pub[:16]), "is 16 bytes, want an ed25519 public key (32 bytes)"},
		{"no file", "@" + filepath.Join(dir, "none"), "read update key"},
		{"bad JSON", write("bad.json", `{"public_key":`), "update key in"},
	} {
		got, err := ParseKey(tt.in)
		switch {
		case tt.want == "" && (err != nil || !got.Equal(pub)):
			t.Errorf("%s: got %v, %v; want the key", tt.name, got, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: got error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
	if k, err := ParseKey(""); k != nil || err != nil {
		t.Errorf("empty: got %v, %v; want no key", k, err)
	}
}

func TestParseFailMode(t *testing.T) {
	for _, in := range []string{"", "download", "verify", "start", "confirm"} {
		if m, err := ParseFailMode(in); err != nil || string(m) != in {
			t.Errorf("ParseFailMode(%q): got %q, %v", in, m, err)
		}
	}
	if _, err := ParseFailMode("explode"); err == nil || !strings.Contains(err.Error(), "want download, verify, start or confirm") {
		t.Errorf("ParseFailMode(explode): got %v", err)
	}
}
