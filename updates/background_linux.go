package updates

import (
	"runtime"
	"syscall"
)

// backgroundNice is the nice value firmware is sent at: the lowest
// priority, so that sending a build yields the CPU to everything else the
// control plane does (a board's count on its way to the browsers, a
// toggle) and only takes what they leave.
const backgroundNice = 19

// inBackground runs fn on an operating-system thread of its own at
// backgroundNice and returns when fn has. On Linux the nice value is a
// thread's, and an unprivileged process cannot raise it back: the thread
// is thrown away afterwards (its goroutine ends locked to it). A thread
// costs about 55 µs (BenchmarkInBackground), nothing beside a build's
// transfer (5 MiB take 5 ms at 1 GB/s on loopback). If the
// priority cannot be set, fn runs as it is.
//
// A panic in fn is raised again in the caller, where net/http recovers a
// handler's (http.ErrAbortHandler, say), instead of ending the process.
func inBackground(fn func()) {
	done := make(chan any, 1)
	go func() { // ends when fn returns or panics
		defer func() { done <- recover() }()
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), backgroundNice)
		fn()
	}()
	if p := <-done; p != nil {
		panic(p)
	}
}
