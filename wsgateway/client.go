package wsgateway

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"switchyard/auth"
	"switchyard/devices"
)

// Close codes used by the gateway.
const (
	websocketGoingAway = websocket.CloseGoingAway       // 1001: shutdown, device removed
	websocketPolicy    = websocket.ClosePolicyViolation // 1008: too slow, logged out
)

// client is one browser connection. readPump runs for the whole
// connection; a writer goroutine (write) runs only while there is
// something to send (events, a ping, the close frame), so an idle browser
// costs one goroutine. At most one writer runs at a time (writing, under
// mu): it is the only writer of data frames; close frames it sends itself,
// and gorilla allows WriteControl alongside.
type client struct {
	g       *Gateway
	conn    *websocket.Conn
	device  string // /ws/<id>: the board; empty for /ws
	remote  string
	id      auth.Identity
	session string // the login session it came with ("" for none): logout closes it
	rate    bucket // commands

	mu       sync.Mutex // guards the fields below
	dropped  bool       // the queue overflowed; the browser is being dropped
	queue    [][]byte   // chunks (/ws: comma-joined events) or frames (/ws/<id>)
	queued   int        // bytes in queue
	nEvents  int        // events in queue
	limit    int        // bytes queue may hold before the browser is dropped
	writing  bool       // a writer goroutine is running
	needPing bool       // the writer should send a ping

	done      chan struct{} // closed by close
	closeMsg  []byte        // the close frame to send; set before done closes, nil: none
	closeOnce sync.Once
}

// startWriter starts the writer unless one runs. Caller holds c.mu.
func (c *client) startWriter() {
	if c.writing {
		return
	}
	c.writing = true
	c.g.connsWG.Add(1)
	go c.write() // ends when nothing is left to send, or the connection fails
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
		if tc, ok := c.conn.NetConn().(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.close(websocketPolicy, "too slow", false)
		return
	}
	c.queue = append(c.queue, chunk)
	c.queued += len(chunk)
	c.nEvents += n
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

// close ends the connection without blocking: with graceful set, the
// writer sends a close frame (code, reason) first; otherwise the
// connection is closed at once (a slow browser would not read the frame).
// Safe to call more than once and from any goroutine.
func (c *client) close(code int, reason string, graceful bool) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		if graceful {
			c.closeMsg = websocket.FormatCloseMessage(code, reason)
		}
		close(c.done)
		if graceful {
			c.startWriter()
		}
		c.mu.Unlock()
		if !graceful {
			_ = c.conn.Close()
		}
	})
}

// write sends what is queued, coalescing it into one frame per round, and
// returns when the queue is empty; after close it sends the close frame
// and closes the connection.
func (c *client) write() {
	defer c.g.connsWG.Done()
	var chunks [][]byte
	for {
		c.mu.Lock()
		select {
		case <-c.done:
			c.writing = false
			msg := c.closeMsg
			c.mu.Unlock()
			if msg != nil {
				_ = c.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			}
			_ = c.conn.Close()
			return
		default:
		}
		ping := c.needPing
		chunks, c.queue = c.queue, chunks[:0]
		n := c.nEvents
		c.queued, c.nEvents, c.needPing = 0, 0, false
		if len(chunks) == 0 && !ping {
			c.writing = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		if err := c.send(chunks, n, ping); err != nil {
			c.mu.Lock()
			c.writing = false
			c.mu.Unlock()
			c.close(websocket.CloseNormalClosure, "", false) // the read side ends too
			return
		}
		clear(chunks)
	}
}

// send writes one round: a ping, then the events.
func (c *client) send(chunks [][]byte, n int, ping bool) error {
	deadline := time.Now().Add(c.g.cfg.WriteWait)
	if ping {
		if err := c.conn.WriteControl(websocket.PingMessage, nil, deadline); err != nil {
			return err
		}
	}
	if len(chunks) == 0 {
		return nil
	}
	if err := c.conn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	if c.device != "" {
		// /ws/<id>: one object per frame, as the seed tutorial expects.
		for _, f := range chunks {
			if err := c.conn.WriteMessage(websocket.TextMessage, f); err != nil {
				return err
			}
		}
		return nil
	}
	return writeFrame(c.conn, chunks, n > 1)
}

// writeFrame writes chunks as one text frame, wrapped in [ ] as a JSON
// array when asArray, straight into gorilla's (pooled) write buffer: no
// per-browser copy of the frame.
func writeFrame(conn *websocket.Conn, chunks [][]byte, asArray bool) error {
	w, err := conn.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	if asArray {
		w.Write(openBracket) // errors surface at Close
	}
	for i, ch := range chunks {
		if i > 0 {
			w.Write(comma)
		}
		w.Write(ch)
	}
	if asArray {
		w.Write(closeBracket)
	}
	return w.Close()
}

var openBracket, comma, closeBracket = []byte("["), []byte(","), []byte("]")

// readPump reads browser messages until the connection fails, then
// unregisters the browser. It is the only reader.
func (c *client) readPump() {
	defer c.g.connsWG.Done()
	defer c.g.unregister(c)
	c.conn.SetReadLimit(devices.MaxBrowserMessage)
	_ = c.conn.SetReadDeadline(time.Now().Add(c.g.cfg.PongWait))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(c.g.cfg.PongWait))
	})
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			// On ErrReadLimit gorilla has sent the 1009 close frame.
			if errors.Is(err, websocket.ErrReadLimit) {
				c.g.log.Info("browser closed: message too big", "remote", c.remote, "limit", devices.MaxBrowserMessage)
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.g.log.Info("browser closed: no pong", "remote", c.remote)
			}
			c.close(websocket.CloseNormalClosure, "", false)
			return
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(c.g.cfg.PongWait))
		c.handle(data)
	}
}

// handle answers one browser message: a command, or an error event.
func (c *client) handle(data []byte) {
	var id, group string
	var cmd devices.Command
	var err error
	if c.device == "" {
		id, group, cmd, err = devices.ParseBrowserMessage(data)
	} else {
		id = c.device
		cmd, err = devices.ParseAction(string(data))
	}
	switch {
	case err != nil:
	case !c.id.CanCommand():
		err = fmt.Errorf("%w: role %s may watch but not command", errForbidden, c.id.Role)
	case !c.rate.allow(time.Now(), c.g.cfg.CommandRate, c.g.cfg.CommandBurst):
		err = fmt.Errorf("%w: at most %g a second", errRateLimited, c.g.cfg.CommandRate)
	case group != "":
		err = c.groupCommand(group, cmd)
	default:
		_, err = c.g.command(id, cmd)
	}
	if err != nil {
		c.g.m.refused.Inc()
		ev := devices.ErrorEvent(id, err)
		if c.device != "" {
			c.enqueue(ev.AppendSingle(nil), 1)
		} else {
			c.enqueue(ev.AppendJSON(nil), 1)
		}
	}
}

// groupCommand switches a group of boards; boards that cannot be switched
// are reported in one error event.
func (c *client) groupCommand(group string, cmd devices.Command) error {
	if _, ok := c.g.cfg.Groups[group]; !ok && group != allGroup {
		return fmt.Errorf("%w: unknown group %q", devices.ErrBadMessage, group)
	}
	res := c.g.commandGroup(group, cmd)
	if len(res.Skipped) == 0 {
		return nil
	}
	ids := make([]string, 0, len(res.Skipped))
	for id := range res.Skipped {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return fmt.Errorf("group %s: %d of %d boards not switched (offline or unknown): %s",
		group, len(ids), len(ids)+len(res.Commands), strings.Join(ids, ", "))
}
