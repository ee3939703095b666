// A browser's connection: its state, what others ask of it (events, pings,
// close) and its reader goroutine.

package wsgateway

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"switchyard/auth"
	"switchyard/devices"
)

// Close codes used by the gateway.
const (
	websocketGoingAway = websocket.CloseGoingAway       // 1001: shutdown, device removed
	websocketPolicy    = websocket.ClosePolicyViolation // 1008: logged out
)

// client is one browser connection. readPump runs for the whole
// connection. Writing is a role, held by one goroutine at a time while
// there is something to send (events, a ping, the close frame), and free
// otherwise, so an idle browser costs one goroutine: the role is taken by
// startWriter and given either to a pool worker's turn (writer.go) or to
// a goroutine of the client's own (writeAlone). Only the role's holder
// writes to the connection.
type client struct {
	g       *Gateway
	ws      *wsConn // the connection (gorilla's Conn is dropped after the handshake)
	device  string  // /ws/<id>: the board; empty for /ws
	remote  string
	id      auth.Identity
	session string        // the login session it came with ("" for none): logout closes it
	limiter *rate.Limiter // commands; nil until the first (see allowCommand)

	mu       sync.Mutex // guards the fields below
	dropped  bool       // the queue overflowed; the browser is being dropped
	queue    [][]byte   // chunks (/ws: comma-joined events) or frames (/ws/<id>)
	queued   int        // bytes in queue
	nEvents  int        // events in queue
	limit    int        // bytes queue may hold before the browser is dropped
	writing  bool       // a writer holds the role (queued for a worker, in a turn, or writeAlone)
	needPing bool       // the writer should send a ping
	pongMsg  []byte     // the payload of the browser's last ping, to answer; nil: none

	// carry is what a pool turn wrote only in part: the rest of its
	// frames, for writeAlone. Only the role's holder touches them.
	carry     []byte
	carryWait time.Duration // how long writeAlone may take over it; 0: Config.WriteWait

	done      chan struct{} // closed by close
	closeMsg  []byte        // the close frame to send; set before done closes, nil: none (or sent)
	closeOnce sync.Once
}

// enqueue adds a chunk of n events for the writer. It never blocks; a
// browser whose queue is over its limit is dropped. It may be called with
// Gateway.mu held.
func (c *client) enqueue(chunk []byte, n int) {
	select {
	case <-c.done:
		return // closing: nothing more will be written
	default:
	}
	c.mu.Lock()
	if c.dropped {
		c.mu.Unlock()
		return
	}
	if c.queued+len(chunk) > c.limit {
		queued := c.queued
		c.dropped = true
		c.queue, c.queued, c.nEvents = nil, 0, 0
		c.mu.Unlock()
		c.g.m.dropped.Inc()
		c.g.log.Warn("browser dropped: too slow to keep up", "remote", c.remote, "queued_bytes", queued, "limit", c.limit)
		// Discard what the kernel still holds for it (RST, not FIN): a
		// browser that does not read would otherwise pin megabytes.
		if tc, ok := c.ws.Conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.abort() // no close frame: it would wait behind what the browser does not read
		return
	}
	c.queue = append(c.queue, chunk)
	c.queued += len(chunk)
	c.nEvents += n
	c.startWriter()
	c.mu.Unlock()
}

// pong asks the writer to answer the browser's ping (only the latest, as
// RFC 6455 allows). It is called by the reader, with a payload it reuses.
func (c *client) pong(data []byte) {
	c.mu.Lock()
	c.pongMsg = append(make([]byte, 0, len(data)), data...) // not nil, even empty
	c.startWriter()
	c.mu.Unlock()
}

// ping asks the writer to ping the browser.
func (c *client) ping() {
	select {
	case <-c.done:
		return // closing: the writer has sent, or is sending, the close frame
	default:
	}
	c.mu.Lock()
	c.needPing = true
	c.startWriter()
	c.mu.Unlock()
}

// close ends the connection without blocking: the writer sends a close
// frame (code, reason), then closes it. Safe to call more than once and
// from any goroutine; the first close or abort wins.
func (c *client) close(code int, reason string) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closeMsg = websocket.FormatCloseMessage(code, reason)
		close(c.done)
		c.startWriter()
		c.mu.Unlock()
	})
}

// abort ends the connection at once, without a close frame: the browser
// sees the connection reset (or end), not a close code. It is for a
// browser too slow to read a close frame and for a connection that has
// already failed. Safe to call more than once and from any goroutine.
func (c *client) abort() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		close(c.done)
		c.mu.Unlock()
	})
	_ = c.ws.Close()
}

// readPump reads browser messages until the connection fails, then
// unregisters the browser. It is the only reader; see reader.go.
func (c *client) readPump() {
	defer c.g.connsWG.Done()
	defer c.g.unregister(c)
	m := msgReader{conn: c.ws.Conn, wait: c.g.cfg.PongWait, limit: devices.MaxBrowserMessage, ping: c.pong}
	for {
		data, err := m.next()
		if err != nil {
			c.readFailed(err)
			return
		}
		c.handle(data)
	}
}

// readFailed closes c as the error that ended its reader calls for. (Kept
// out of readPump: a small readPump frame keeps an idle reader within the
// smallest stack.)
func (c *client) readFailed(err error) {
	var cf closeFrame
	var pe protocolError
	var ne net.Error
	switch {
	case errors.As(err, &cf):
		code := cf.code // echoed, as RFC 6455 asks
		if code == closeNoStatus {
			code = closeNormal
		}
		c.close(code, "")
	case errors.Is(err, errTooBig):
		c.g.log.Info("browser closed: message too big", "remote", c.remote, "limit", devices.MaxBrowserMessage)
		c.close(closeTooBig, "message too big")
	case errors.As(err, &pe):
		c.g.log.Info("browser closed: "+pe.Error(), "remote", c.remote)
		c.close(closeProtocol, truncate(string(pe), maxControlLength-2))
	case errors.As(err, &ne) && ne.Timeout():
		c.g.log.Info("browser closed: no pong", "remote", c.remote)
		c.abort()
	default:
		c.abort()
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
