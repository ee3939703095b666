// Package mqttnet holds a Mochi listener for MQTT over TCP, used by the
// broker and by tests that run Mochi directly.
package mqttnet

import (
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// TCP serves MQTT over TCP. It replaces Mochi's listeners.Net, which has
// two data races: its connection goroutines share one error variable, and
// a connection accepted while the server closes calls ClientsWg.Add during
// ClientsWg.Wait. TCP's Close closes every connection and waits for their
// goroutines, so none outlives it. It also gives every connection a
// deadline for its CONNECT packet; Mochi replaces that deadline with the
// keepalive one once the client is admitted.
type TCP struct {
	id             string
	ln             net.Listener
	connectTimeout time.Duration
	log            *slog.Logger

	mu     sync.Mutex // guards conns, closed
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup // connection goroutines
	once   sync.Once
}

// NewTCP returns a listener with this id serving ln (which may be a TLS
// listener). A connection that sends no CONNECT within connectTimeout is
// closed; log may be nil.
func NewTCP(id string, ln net.Listener, connectTimeout time.Duration, log *slog.Logger) *TCP {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &TCP{id: id, ln: ln, connectTimeout: connectTimeout, log: log, conns: map[net.Conn]struct{}{}}
}

// ID implements listeners.Listener.
func (l *TCP) ID() string { return l.id }

// Address implements listeners.Listener: the bound address.
func (l *TCP) Address() string { return l.ln.Addr().String() }

// Protocol implements listeners.Listener.
func (l *TCP) Protocol() string { return "tcp" }

// Init implements listeners.Listener.
func (l *TCP) Init(*slog.Logger) error { return nil }

// Serve accepts connections until Close.
func (l *TCP) Serve(establish listeners.EstablishFn) {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return // closed
		}
		_ = c.SetReadDeadline(time.Now().Add(l.connectTimeout))
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			c.Close()
			return
		}
		l.conns[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go func() { // ends when the client disconnects or Close closes its connection
			defer l.wg.Done()
			if err := establish(l.ID(), c); err != nil {
				l.log.Debug("mqtt client ended", "remote", c.RemoteAddr().String(), "err", err)
			}
			l.mu.Lock()
			delete(l.conns, c)
			l.mu.Unlock()
		}()
	}
}

// Close stops accepting, closes every connection (admitted or not), which
// ends their clients, and waits for their goroutines.
//
// It does not call closeClients: Mochi's (v2.7.9 Server.closeListenerClients)
// takes the client list's read lock twice (GetByListener calls Len), so a
// client connecting or leaving at the same moment, waiting for the write
// lock between the two, deadlocks it (seen in the wsgateway tests).
// Closing a client's connection ends its read loop exactly as
// closeClients' Stop would: Mochi then sends its Will and removes it.
func (l *TCP) Close(_ listeners.CloseFn) {
	l.once.Do(func() {
		_ = l.ln.Close()
		l.mu.Lock()
		l.closed = true
		for c := range l.conns {
			_ = c.Close()
		}
		l.mu.Unlock()
		l.wg.Wait()
	})
}
