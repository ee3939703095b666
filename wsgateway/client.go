// A browser's connection: its state, what others ask of it (events, pings,
// close) and its reader goroutine.

package wsgateway

import (
	"errors"
	"net"
	"sync"

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

// client is one browser connection. Its reader (readPump) runs for the
// whole connection; writing is a role held by one goroutine at a time
// while there is something to send, and by nobody otherwise (see doc.go
// for who holds it when, and writer.go).
type client struct {
	g       *Gateway
	ws      wsConn // the connection (gorilla's Conn is dropped after the handshake)
	device  string // /ws/<id>: the board; empty for /ws
	remote  string
	id      auth.Identity
	session string        // the login session it came with ("" for none): logout closes it
	limiter *rate.Limiter // commands; nil until the first (see allowCommand)
	deflate bool          // the browser agreed to permessage-deflate

	mu       sync.Mutex  // guards the fields below
	queue    [][]byte    // chunks (/ws: comma-joined events) or frames (/ws/<id>)
	marks    []frameMark // /ws: the queue's whole frames (broadcasts), in order
	queued   int         // bytes in queue
	nEvents  int         // events in queue
	limit    int         // bytes queue may hold before the browser is dropped
	needPing bool        // the writer should send a ping
	pongMsg  []byte      // the payload of the browser's last ping, to answer; nil: none
	writing  bool        // a writer holds the role (waiting in the ready queue, in a pool turn, or writeAlone)
	closed   bool        // close or abort was called: nothing more is queued
	closeMsg []byte      // the close frame's payload, until the writer takes it; nil: none
}

// enqueue adds a chunk of n events for the writer. It never blocks; a
// browser whose queue is over its limit is dropped. It may be called with
// Gateway.mu held.
func (c *client) enqueue(chunk []byte, n int) { c.add(chunk, n, false) }

// enqueueFrame adds a broadcast's frame, the compressed one when c agreed
// to compression, as enqueue adds a chunk.
func (c *client) enqueueFrame(p *prepared) {
	if c.deflate && p.packed != nil {
		c.add(p.packed, 0, true)
		return
	}
	c.add(p.plain, 0, true)
}

// add queues b, a chunk of n events or a whole frame.
func (c *client) add(b []byte, n int, frame bool) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.queued+len(b) > c.limit {
		queued := c.queued
		c.closeLocked(nil)
		c.mu.Unlock()
		c.g.m.dropped.Inc()
		c.g.log.Warn("browser dropped: too slow to keep up", "remote", c.remote, "queued_bytes", queued, "limit", c.limit)
		// Discard what the kernel still holds for it (RST, not FIN): a
		// browser that does not read would otherwise pin megabytes.
		if tc, ok := c.ws.Conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		// No close frame: it would wait behind what the browser does not
		// read.
		_ = c.ws.Close()
		return
	}
	if frame {
		c.marks = append(c.marks, frameMark{at: len(c.queue), events: c.nEvents})
	}
	c.queue = append(c.queue, b)
	c.queued += len(b)
	c.nEvents += n
	c.startWriter()
	c.mu.Unlock()
}

// pong asks the writer to answer the browser's ping (only the latest, as
// RFC 6455 allows). It is called by the reader, with a payload it reuses.
func (c *client) pong(data []byte) {
	c.mu.Lock()
	if !c.closed {
		c.pongMsg = append(make([]byte, 0, len(data)), data...) // not nil, even empty
		c.startWriter()
	}
	c.mu.Unlock()
}

// ping asks the writer to ping the browser.
func (c *client) ping() {
	c.mu.Lock()
	if !c.closed {
		c.needPing = true
		c.startWriter()
	}
	c.mu.Unlock()
}

// close ends the connection without blocking: the writer sends a close
// frame (code, reason), then closes it. What was queued and not yet taken
// by the writer is dropped. Safe to call more than once and from any
// goroutine: only the first close counts, and an abort cuts it short.
func (c *client) close(code int, reason string) {
	c.mu.Lock()
	if !c.closed {
		c.closeLocked(websocket.FormatCloseMessage(code, reason))
		c.startWriter()
	}
	c.mu.Unlock()
}

// abort ends the connection at once, without a close frame: the browser
// sees the connection reset (or end), not a close code. It is for a
// connection that has failed (or timed out); enqueue drops a slow browser
// the same way. Safe to call more than once and from any goroutine.
func (c *client) abort() {
	c.mu.Lock()
	c.closeLocked(nil) // a close frame not yet sent would not get through
	c.mu.Unlock()
	_ = c.ws.Close()
}

// closeLocked marks c closed, with msg the close frame to send (nil:
// none), and drops what is queued. Caller holds c.mu.
func (c *client) closeLocked(msg []byte) {
	c.closed, c.closeMsg = true, msg
	c.queue, c.marks, c.queued, c.nEvents, c.needPing, c.pongMsg = nil, nil, 0, 0, false, nil
}

// readPump reads browser messages until the connection fails, then
// unregisters the browser. It is the only reader; see reader.go.
func (c *client) readPump() {
	defer c.g.connsWG.Done()
	defer c.g.unregister(c)
	m := msgReader{conn: c.ws.Conn, wait: c.g.cfg.PongWait, limit: devices.MaxBrowserMessage, ping: c.pong, inflate: c.deflate}
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
