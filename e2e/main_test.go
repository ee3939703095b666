package e2e

import (
	"os"
	"testing"

	"switchyard/internal/testutil"
)

// TestMain lets the tests share one controlplane binary (testutil.Run).
// It is built without -race: the browser tests measure the page, and 500
// boards against a race-instrumented broker would measure the detector.
// cmd/controlplane's own end-to-end test runs a -race binary.
func TestMain(m *testing.M) { os.Exit(testutil.Run(m)) }
