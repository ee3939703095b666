package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

var (
	// controlplaneBin is the controlplane binary TestMain built.
	controlplaneBin string
	// chromiumPath is the browser, empty when none was found.
	chromiumPath string
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "switchyard-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Built without -race: the browser tests measure the page, and 500
	// boards against a race-instrumented broker would measure the detector.
	// cmd/controlplane's own end-to-end test runs a -race binary.
	controlplaneBin = filepath.Join(dir, "controlplane")
	if out, err := exec.Command("go", "build", "-o", controlplaneBin, "switchyard/cmd/controlplane").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build controlplane: %v\n%s", err, out)
		return 1
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			chromiumPath = p
			break
		}
	}
	return m.Run()
}
