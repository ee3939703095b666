//go:build !linux

package update

import (
	"context"

	"switchyard/board"
)

// Binary is unavailable outside Linux: see ErrUnsupported.
type Binary struct{}

// OpenBinary always fails with ErrUnsupported outside Linux.
func OpenBinary(BinaryOptions) (*Binary, error) { return nil, ErrUnsupported }

// Close does nothing.
func (*Binary) Close() {}

// Run is never reached: OpenBinary fails.
func (*Binary) Run(ctx context.Context, cfg board.Config) (int, error) { return 1, ErrUnsupported }
