package board_test

import (
	"os/exec"
	"strings"
	"testing"
)

// directAllowed are the packages the firmware core (board and devices) may
// import itself: small, reflection-free standard packages that TinyGo
// compiles for microcontrollers, plus the domain package. The encoding
// packages came with the update payloads (devices/update.go): TinyGo
// imports them (tinygo.org/docs/reference/lang-support/stdlib);
// encoding/json works through TinyGo's smaller reflect and costs flash,
// which is why only the update payloads use it.
var directAllowed = set(
	"context", "errors", "fmt", "math/rand/v2", "sort", "strconv", "strings",
	"sync", "sync/atomic", "time", "unicode/utf16", "unicode/utf8",
	"encoding/base64", "encoding/hex", "encoding/json",
	"switchyard/devices",
)

// transitiveAllowed are the further standard packages that directAllowed
// pull in. fmt needs reflect, os and syscall: TinyGo ships its own small
// implementations of those, which is why fmt works there, but the core
// must not import them itself. Packages under internal/ and vendor/ are the
// standard library's own plumbing and always allowed.
var transitiveAllowed = set(
	"bytes", "cmp", "encoding", "io", "io/fs", "iter", "math", "math/bits", "os", "path",
	"reflect", "runtime", "slices", "syscall", "unicode", "unsafe",
	"switchyard/board",
)

func set(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
	}
	return strings.Fields(string(out))
}

func TestCoreImportsAreTinyGoSafe(t *testing.T) {
	for _, pkg := range []string{"switchyard/board", "switchyard/devices"} {
		for _, imp := range goList(t, "-f", `{{join .Imports " "}}`, pkg) {
			if !directAllowed[imp] {
				t.Errorf("%s imports %s: not in the TinyGo-safe allowlist", pkg, imp)
			}
		}
	}
	// The connection slot both session adapters share is built into the
	// TinyGo firmware too (natiusession imports it).
	for _, pkg := range []string{"switchyard/board", "switchyard/board/internal/connslot"} {
		for _, dep := range goList(t, "-deps", pkg) {
			if directAllowed[dep] || transitiveAllowed[dep] || dep == pkg ||
				strings.HasPrefix(dep, "internal/") || strings.HasPrefix(dep, "vendor/") ||
				strings.HasPrefix(dep, "runtime/internal/") {
				continue
			}
			t.Errorf("%s depends on %s: not in the TinyGo-safe allowlist", pkg, dep)
		}
	}
}
