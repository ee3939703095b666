package testutil

import (
	"context"
	"errors"
	"testing"
	"time"
)

// Recv returns the next value from ch. It fails the test when none comes
// within timeout, or when ch is closed; what names the awaited value in the
// message ("the led/set at board b1").
func Recv[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			t.Fatalf("waiting for %s: channel closed", what)
		}
		return v
	case <-time.After(timeout):
		t.Fatalf("waited %v for %s: nothing came", timeout, what)
	}
	var zero T
	return zero
}

// Background is a function running on a goroutine of its own until its
// context is cancelled; see Go.
type Background struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // f's result, written before done is closed
}

// Go runs f on a goroutine of its own, with a context that Cancel and Stop
// cancel. The caller stops it (Stop) before the test ends.
func Go(f func(context.Context) error) *Background {
	ctx, cancel := context.WithCancel(context.Background())
	b := &Background{cancel: cancel, done: make(chan struct{})}
	go func() { // ends when f returns, which Cancel and Stop ask it to
		defer close(b.done)
		b.err = f(ctx)
	}()
	return b
}

// Cancel cancels f's context and returns at once.
func (b *Background) Cancel() { b.cancel() }

// Done is closed once f has returned.
func (b *Background) Done() <-chan struct{} { return b.done }

// Stop cancels f's context and waits up to timeout for f to return. It
// returns f's error, or an error saying f did not return in time.
func (b *Background) Stop(timeout time.Duration) error {
	b.cancel()
	select {
	case <-b.done:
		return b.err
	case <-time.After(timeout):
		return errors.New("did not return within " + timeout.String())
	}
}
