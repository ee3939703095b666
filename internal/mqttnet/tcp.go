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

	conns Conns
	once  sync.Once
}

// NewTCP returns a listener with this id serving ln (which may be a TLS
// listener). A connection that sends no CONNECT within connectTimeout is
// closed; log may be nil.
func NewTCP(id string, ln net.Listener, connectTimeout time.Duration, log *slog.Logger) *TCP {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &TCP{id: id, ln: ln, connectTimeout: connectTimeout, log: log}
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
		_ = l.ln.Close()
		l.conns.CloseAll()
	})
}
