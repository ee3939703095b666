package main

import (
	"runtime"
	"testing"
)

func TestSpareProcs(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))

	t.Setenv("GOMAXPROCS", "") // not set: two spare Ps
	runtime.GOMAXPROCS(cpus)
	spareProcs()
	if got, want := runtime.GOMAXPROCS(0), cpus+2; got != want {
		t.Errorf("GOMAXPROCS not set: got %d Ps, want %d", got, want)
	}

	t.Setenv("GOMAXPROCS", "3") // set: what the runtime read from it stays
	runtime.GOMAXPROCS(3)
	spareProcs()
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Errorf("GOMAXPROCS=3: got %d Ps, want 3", got)
	}
}
