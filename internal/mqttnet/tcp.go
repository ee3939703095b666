// Package mqttnet holds a Mochi listener for MQTT over TCP and a Close
// that avoids Mochi's shutdown deadlock, used by the broker and by tests
// that run Mochi directly.
package mqttnet

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
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

	conns  Conns
	once   sync.Once
	closed chan struct{} // closed by Close: ends a retry wait in Serve

	acceptErr atomic.Pointer[acceptFailure] // the last Accept error; nil once an Accept succeeds
}

// acceptFailure is an Accept error and when it happened.
type acceptFailure struct {
	err error
	at  time.Time
}

// failingFor is how long after its last failed Accept a listener still
// counts as failing. Serve retries at least once a second while Accept
// fails, so a listener that fails keeps failing within it; one that has
// recovered but has no client to accept yet stops counting after it.
const failingFor = 2 * time.Second

// NewTCP returns a listener with this id serving ln (which may be a TLS
// listener). A connection that sends no CONNECT within connectTimeout is
// closed; log may be nil.
func NewTCP(id string, ln net.Listener, connectTimeout time.Duration, log *slog.Logger) *TCP {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &TCP{id: id, ln: ln, connectTimeout: connectTimeout, log: log, closed: make(chan struct{})}
}

// Err returns why accepting fails (for example "too many open files")
// while it does, else nil.
func (l *TCP) Err() error {
	if f := l.acceptErr.Load(); f != nil && time.Since(f.at) < failingFor {
		return fmt.Errorf("mqtt listener %s: %w", l.Address(), f.err)
	}
	return nil
}

// ID implements listeners.Listener.
func (l *TCP) ID() string { return l.id }

// Address implements listeners.Listener: the bound address.
func (l *TCP) Address() string { return l.ln.Addr().String() }

// Protocol implements listeners.Listener.
func (l *TCP) Protocol() string { return "tcp" }

// Init implements listeners.Listener.
func (l *TCP) Init(*slog.Logger) error { return nil }

// Serve accepts connections until Close. An Accept error other than the
// listener's closing (out of file descriptors, say) does not end it: it
// waits, 5 ms at first and at most 1 s, and tries again, as net/http does,
// and Err reports the error meanwhile.
func (l *TCP) Serve(establish listeners.EstablishFn) {
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if delay == 0 {
				l.log.Error("mqtt listener cannot accept; retrying", "addr", l.Address(), "err", err)
				delay = 5 * time.Millisecond
			} else {
				delay = min(2*delay, time.Second)
			}
			l.acceptErr.Store(&acceptFailure{err, time.Now()})
			select {
			case <-time.After(delay):
				continue
			case <-l.closed:
				return
			}
		}
		if delay != 0 {
			l.log.Info("mqtt listener accepting again", "addr", l.Address())
			delay = 0
			l.acceptErr.Store(nil)
		}
		_ = c.SetReadDeadline(time.Now().Add(l.connectTimeout))
		if !l.conns.Add(c) {
			c.Close() // closing
			return
		}
		go func() { // ends when the client disconnects or Close closes its connection
			defer l.conns.Done(c)
			if err := establish(l.ID(), c); err != nil {
				l.log.Debug("mqtt client ended", "remote", c.RemoteAddr().String(), "err", err)
			}
		}()
	}
}

// Close stops accepting, closes every connection (admitted or not), which
// ends their clients, and waits for their goroutines. It does not call
// closeClients (see Conns).
func (l *TCP) Close(_ listeners.CloseFn) {
	l.once.Do(func() {
		close(l.closed)
		_ = l.ln.Close()
		l.conns.CloseAll()
	})
}
