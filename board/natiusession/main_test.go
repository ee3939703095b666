package natiusession_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: every
// connection's read and ping loops must be stopped and waited for.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
