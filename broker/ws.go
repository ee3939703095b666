package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"

	"switchyard/internal/mqttnet"
	"switchyard/internal/origin"
)

// wsListener serves MQTT over WebSocket at path /mqtt with an Origin check,
// replacing Mochi's listener, which accepts any path and any origin.
type wsListener struct {
	ln       net.Listener
	srv      *http.Server
	upgrader websocket.Upgrader
	log      *slog.Logger

	connectTimeout time.Duration // for the CONNECT packet

	establish listeners.EstablishFn // set by Serve before the server starts handlers
	conns     mqttnet.Conns         // handlers inside establish; Close ends and waits for them
	closeOnce sync.Once
	serving   atomic.Bool   // Serve has started
	served    chan struct{} // closed when Serve returns; Close waits for it
}

func newWSListener(addr string, allowed []string, connectTimeout time.Duration, log *slog.Logger) (*wsListener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen mqtt websocket %s: %w", addr, err)
	}
	l := &wsListener{ln: ln, log: log, connectTimeout: connectTimeout, served: make(chan struct{})}
	l.upgrader = websocket.Upgrader{
		Subprotocols: []string{"mqtt"},
		CheckOrigin:  func(r *http.Request) bool { return origin.Allowed(r, allowed) },
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/mqtt", l.handle)
	l.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return l, nil
}

func (l *wsListener) ID() string       { return "ws" }
func (l *wsListener) Address() string  { return l.ln.Addr().String() }
func (l *wsListener) Protocol() string { return "ws" }

func (l *wsListener) Init(*slog.Logger) error { return nil }

// Serve runs the HTTP server until Close (Mochi calls it on a goroutine of
// its own; Close waits for it to return).
func (l *wsListener) Serve(establish listeners.EstablishFn) {
	l.serving.Store(true)
	defer close(l.served)
	l.establish = establish // before Serve starts any handler goroutine
	// The broker's drain closes ln to stop accepting: that is a clean stop.
	if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		l.log.Error("mqtt websocket listener stopped", "addr", l.Address(), "err", err)
	}
}

func (l *wsListener) handle(w http.ResponseWriter, r *http.Request) {
	c, err := l.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	defer c.Close()
	nc := c.UnderlyingConn()
	_ = nc.SetReadDeadline(time.Now().Add(l.connectTimeout))
	if !l.conns.Add(nc) {
		return // closing
	}
	defer l.conns.Done(nc)
	wc := &wsConn{Conn: nc, c: c}
	if !origin.LocalHost(r.Host) {
		// Not a local name (a page re-resolved to 127.0.0.1, say): the
		// client must not count as local for anonymous access.
		wc.remote = notLocal{nc.RemoteAddr(), r.Host}
	}
	if err := l.establish(l.ID(), wc); err != nil {
		l.log.Debug("mqtt websocket client ended", "remote", r.RemoteAddr, "err", err)
	}
}

// Close stops accepting, closes every connection, which ends its client,
// and waits for the handlers (so none calls into Mochi later). It does not
// call closeClients (see mqttnet.Conns).
func (l *wsListener) Close(_ listeners.CloseFn) {
	l.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = l.srv.Shutdown(ctx) // stops accepting; hijacked connections are ours
		l.conns.CloseAll()
		if l.serving.Load() {
			<-l.served // Shutdown has made Serve return, or is about to
		}
	})
}

// wsConn is a WebSocket connection as the net.Conn Mochi reads MQTT packets
// from: binary messages are concatenated into one byte stream.
type wsConn struct {
	net.Conn
	c      *websocket.Conn
	r      io.Reader // the current message, nil between messages
	remote net.Addr  // when set, replaces Conn's RemoteAddr
}

// RemoteAddr is the client's address, as the broker's access rules see it.
func (ws *wsConn) RemoteAddr() net.Addr {
	if ws.remote != nil {
		return ws.remote
	}
	return ws.Conn.RemoteAddr()
}

// notLocal is the address of a client that asked for a host name that is
// not this machine's: it reads "attacker.example via 127.0.0.1:5555",
// whose host part is no loopback address.
type notLocal struct {
	net.Addr
	host string
}

func (a notLocal) String() string { return a.host + " via " + a.Addr.String() }

var errTextFrame = errors.New("mqtt over websocket: text frame (want binary)")

func (ws *wsConn) Read(p []byte) (int, error) {
	for {
		if ws.r == nil {
			op, r, err := ws.c.NextReader()
			if err != nil {
				return 0, err
			}
			if op != websocket.BinaryMessage {
				return 0, errTextFrame
			}
			ws.r = r
		}
		n, err := ws.r.Read(p)
		if errors.Is(err, io.EOF) {
			ws.r = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (ws *wsConn) Write(p []byte) (int, error) {
	if err := ws.c.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}
