package board_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: every
// board Run must have returned.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
