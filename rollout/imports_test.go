package rollout

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestImportsArePure holds the package's promise of purity: the standard
// library and switchyard/devices only, also transitively, and none of the
// standard packages for I/O, goroutines or randomness (internal/archtest
// keeps the project-wide rules; this one is the rollout package's own).
func TestImportsArePure(t *testing.T) {
	list := func(format string) []string {
		t.Helper()
		out, err := exec.Command("go", "list", "-deps", "-f", format, "switchyard/rollout").Output()
		if err != nil {
			t.Fatalf("go list -deps switchyard/rollout: %v", err)
		}
		return strings.Fields(string(out))
	}
	own := list("{{if not .Standard}}{{.ImportPath}}{{end}}")
	if !slices.Contains(own, "switchyard/rollout") {
		t.Fatalf("go list -deps switchyard/rollout did not list the package itself: %q", own)
	}
	for _, p := range own {
		if p != "switchyard/rollout" && p != "switchyard/devices" {
			t.Errorf("rollout depends on %s: only the standard library and switchyard/devices are allowed", p)
		}
	}
	out, err := exec.Command("go", "list", "-f", `{{join .Imports " "}}`, "switchyard/rollout").Output()
	if err != nil {
		t.Fatalf("go list switchyard/rollout: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		switch p {
		case "os", "net", "net/http", "sync", "database/sql", "log", "log/slog", "math/rand", "math/rand/v2":
			t.Errorf("rollout imports %s: it decides, it does no I/O, runs no goroutines, draws no random numbers", p)
		}
	}
}
