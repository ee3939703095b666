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
	websocketPolicy    = websocket.ClosePolicyViolation // 1008: too slow
)

// client is one browser connection. readPump and writePump are its only
// goroutines; writePump is the only writer of data frames (close and ping
// frames go through WriteControl, which gorilla allows concurrently).
type client struct {
	g      *Gateway
	conn   *websocket.Conn
	device string // /ws/<id>: the board; empty for /ws
	remote string
	id     auth.Identity
	rate   bucket // commands

	mu      sync.Mutex // guards queue, queued, nEvents, limit, dropped
	dropped bool       // the queue overflowed; the browser is being dropped
	queue   [][]byte   // chunks (/ws: comma-joined events) or frames (/ws/<id>)
	queued  int        // bytes in queue
	nEvents int        // events in queue
	limit   int        // bytes queue may hold before the browser is dropped
	kick    chan struct{}

	done      chan struct{} // closed by close
	closeMsg  []byte        // the close frame writePump sends; set before done closes
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
		c.dropped = true
		c.queue, c.queued, c.nEvents = nil, 0, 0
		c.mu.Unlock()
		c.g.m.dropped.Inc()
		c.g.log.Warn("browser dropped: too slow to keep up", "remote", c.remote, "queued_bytes", c.queued, "limit", c.limit)
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
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// close ends the connection without blocking: with graceful set, writePump
// sends a close frame (code, reason) before closing; otherwise the
// connection is closed at once (a slow browser would not read the frame).
// Safe to call more than once and from any goroutine.
func (c *client) close(code int, reason string, graceful bool) {
	c.closeOnce.Do(func() {
		c.closeMsg = websocket.FormatCloseMessage(code, reason)
		close(c.done)
		if !graceful {
			_ = c.conn.Close()
		}
	})
}

// writePump writes queued events, coalescing everything queued into one
// frame, and pings the browser. It ends when the connection is closed or a
// write fails.
func (c *client) writePump() {
	defer c.g.connsWG.Done()
	defer c.conn.Close()
	ping := time.NewTicker(c.g.cfg.PingInterval)
	defer ping.Stop()
	var chunks [][]byte
	for {
		select {
		case <-c.kick:
		case <-ping.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.g.cfg.WriteWait)); err != nil {
				return
			}
			continue
		case <-c.done:
			_ = c.conn.WriteControl(websocket.CloseMessage, c.closeMsg, time.Now().Add(time.Second))
			return
		}
		c.mu.Lock()
		chunks, c.queue = c.queue, chunks[:0]
		n := c.nEvents
		c.queued, c.nEvents = 0, 0
		c.mu.Unlock()
		if len(chunks) == 0 {
			continue
		}
		if err := c.conn.SetWriteDeadline(time.Now().Add(c.g.cfg.WriteWait)); err != nil {
			return
		}
		if c.device != "" {
			// /ws/<id>: one object per frame, as the seed tutorial expects.
			for _, f := range chunks {
				if err := c.conn.WriteMessage(websocket.TextMessage, f); err != nil {
					return
				}
			}
		} else {
			if err := writeFrame(c.conn, chunks, n > 1); err != nil {
				return
			}
		}
		clear(chunks)
	}
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
