//go:build !linux

package updates

// inBackground runs fn: only Linux sets a thread's priority.
func inBackground(fn func()) { fn() }
