// Package connslot holds the open connection of a board.Session, for the
// session adapters (natiusession, pahosession): Connect puts a new one in
// and closes the one it replaces, Disconnect takes it out and closes it,
// Subscribe and Publish use it or fail with board.ErrNotConnected. It
// imports only TinyGo-safe packages (board/imports_test.go checks), since
// natiusession runs under TinyGo.
package connslot

import (
	"sync"

	"switchyard/board"
)

// Slot holds one connection of type C, or none (C's zero value). The zero
// Slot holds none. It is safe for concurrent use.
type Slot[C comparable] struct {
	mu sync.Mutex
	c  C // mu guards c
}

// Swap makes c the open connection and returns the one it replaces (the
// zero value if none), which the caller closes.
func (s *Slot[C]) Swap(c C) (old C) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, s.c = s.c, c
	return old
}

// Take removes the open connection and returns it (the zero value if
// none), which the caller closes.
func (s *Slot[C]) Take() C {
	var none C
	return s.Swap(none)
}

// Get returns the open connection, or board.ErrNotConnected.
func (s *Slot[C]) Get() (C, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var none C
	if s.c == none {
		return none, board.ErrNotConnected
	}
	return s.c, nil
}
