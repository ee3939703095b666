package main

import (
	"os"
	"runtime"
)

// cpus is the CPUs the control plane may use: GOMAXPROCS as the runtime
// chose it (the CPUs, or the cgroup's CPU limit, or the GOMAXPROCS
// variable), read before spareProcs raises it. The gateway runs one frame
// writer per CPU.
var cpus = runtime.GOMAXPROCS(0)

// spareProcs lets two more goroutines run at once than there are CPUs,
// unless the GOMAXPROCS variable says otherwise.
//
// A goroutine in a system call that blocks keeps its P (its right to run
// Go code) until the runtime's monitor takes it back, and the monitor,
// once things are quiet, looks only every 10 ms. The control plane makes
// such calls beside the live path: the retained-message log's fsync, the
// database's writes, fsyncs and locks (modernc.org/sqlite makes some of
// them without letting go of the P at all), the firmware's sendfile. With
// as many Ps as CPUs, two of them at once leave a two-core machine with no
// P for the boards' messages and the browsers' frames: a runtime trace of
// bench/rollout.sh's third wave showed goroutines of the live path
// waiting 8-9 ms for a P while the retained log and SQLite held both.
// With two spare Ps they run on a thread of their own, which the kernel
// schedules at once. Measured with 1,000 boards updating on two cores,
// runs alternated in one sitting: the live path's p99 during the rollout
// 3.57, 4.22, 4.42 ms against 4.25, 5.12, 5.18 ms (3.01-3.15 ms without a
// rollout either way), for about 6 % more CPU (bench/README.md, "Mochi's
// sweep replaced, two spare Ps, and what the stall is not").
func spareProcs() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(cpus + 2)
	}
}
