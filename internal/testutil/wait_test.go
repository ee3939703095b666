package testutil

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// fatalRecorder records Fatalf instead of ending the test, so the failure
// paths of the helpers can be checked.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
}

func TestRecv(t *testing.T) {
	ch := make(chan int, 1)
	ch <- 7
	if got := Recv(t, ch, time.Second, "a number"); got != 7 {
		t.Errorf("Recv = %d, want 7", got)
	}

	f := &fatalRecorder{TB: t}
	Recv(f, ch, time.Millisecond, "a second number") // nothing sent: times out
	if want := "waited 1ms for a second number: nothing came"; f.msg != want {
		t.Errorf("on timeout: Fatalf(%q), want %q", f.msg, want)
	}
	f.msg = ""
	close(ch)
	Recv(f, ch, time.Second, "a number")
	if !strings.Contains(f.msg, "channel closed") {
		t.Errorf("on a closed channel: Fatalf(%q), want it to say the channel closed", f.msg)
	}
}

func TestGoStop(t *testing.T) {
	errStopped := errors.New("stopped")
	b := Go(func(ctx context.Context) error {
		<-ctx.Done()
		return errStopped
	})
	if err := b.Stop(10 * time.Second); err != errStopped {
		t.Errorf("Stop = %v, want f's error %v", err, errStopped)
	}
	select {
	case <-b.Done():
	default:
		t.Error("Done not closed after Stop returned f's error")
	}
	if err := b.Stop(time.Millisecond); err != errStopped {
		t.Errorf("second Stop = %v, want f's error again", err)
	}
}

func TestGoStopTimesOut(t *testing.T) {
	release := make(chan struct{})
	b := Go(func(context.Context) error {
		<-release // ignores its context
		return nil
	})
	if err := b.Stop(time.Millisecond); err == nil || !strings.Contains(err.Error(), "did not return") {
		t.Errorf("Stop of a function that ignores its context = %v, want a did-not-return error", err)
	}
	close(release)
	if err := b.Stop(10 * time.Second); err != nil {
		t.Errorf("Stop once released = %v, want nil", err)
	}
}

func TestBuffer(t *testing.T) {
	var b Buffer
	done := make(chan struct{})
	go func() { // ends after its writes
		defer close(done)
		for range 100 {
			fmt.Fprint(&b, "x")
		}
	}()
	_ = b.String() // concurrently with the writes: -race checks the lock
	<-done
	if got := b.String(); got != strings.Repeat("x", 100) {
		t.Errorf("String = %q, want 100 x", got)
	}
}
