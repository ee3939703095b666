package update

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: every
// download must have stopped.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
