package mqttnet

import (
	"net"
	"sync"
)

// Conns is the set of a listener's open connections, so that closing the
// listener can end every client and wait for its goroutine, and no
// connection is admitted after. The zero value is ready to use.
//
// Closing the connections is how a listener ends its clients; it does not
// call Mochi's closeClients (Server.closeListenerClients), which can
// deadlock (see CloseServer). A closed connection ends the client's read
// loop exactly as closeClients' Stop would: Mochi then sends its Will and
// removes it.
type Conns struct {
	mu     sync.Mutex // guards set, closed
	set    map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup // one count per admitted connection, until Done
}

// Add admits c and counts the goroutine that serves it; it reports false,
// admitting nothing, once CloseAll has begun.
func (s *Conns) Add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.set == nil {
		s.set = map[net.Conn]struct{}{}
	}
	s.set[c] = struct{}{}
	s.wg.Add(1)
	return true
}

// Done forgets c once its goroutine is finished with it.
func (s *Conns) Done(c net.Conn) {
	s.mu.Lock()
	delete(s.set, c)
	s.mu.Unlock()
	s.wg.Done()
}

// CloseAll refuses new connections, closes every admitted one and waits
// until each has been Done.
func (s *Conns) CloseAll() {
	s.mu.Lock()
	s.closed = true
	for c := range s.set {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
