package updates

import (
	"syscall"
	"testing"
)

// inBackground runs its function at the lowest priority on a thread of its
// own and leaves the caller's thread as it was. (getpriority(2) returns
// 20 - nice.)
func TestInBackgroundLowersOnlyItsThread(t *testing.T) {
	before, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
	if err != nil {
		t.Fatalf("getpriority: %v", err)
	}
	var got int
	inBackground(func() {
		got, err = syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := 20 - backgroundNice; got != want {
		t.Errorf("priority in the background = %d (nice %d), want %d (nice %d)", got, 20-got, want, backgroundNice)
	}
	after, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("the caller's priority went from %d to %d", before, after)
	}
}

// A panic in the background reaches the caller, as it would have in the
// handler itself.
func TestInBackgroundPanicsInTheCaller(t *testing.T) {
	defer func() {
		if p := recover(); p != "boom" {
			t.Errorf("recovered %v, want boom", p)
		}
	}()
	inBackground(func() { panic("boom") })
	t.Error("inBackground returned after its function panicked")
}

// BenchmarkInBackground is what a download pays for its thread:
// go test -run '^$' -bench InBackground ./updates
func BenchmarkInBackground(b *testing.B) {
	for b.Loop() {
		inBackground(func() {})
	}
}
