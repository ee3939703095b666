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
	session string // the login session it came with ("" for none): logout closes it
	rate    bucket // commands

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

// startWriter gives the writer role to the pool (or, without
// non-blocking writes, to a goroutine of c's own) unless a writer holds
// it. The role counts in Gateway.connsWG until release: Close waits for
// close frames to be written. (It is only taken while c's readPump, also
// counted, runs, or by Close before it waits: never an Add from zero
// during Wait.) Caller holds c.mu.
func (c *client) startWriter() {
	if c.writing {
		return
	}
	c.writing = true
	c.g.connsWG.Add(1)
	if c.ws.raw != nil {
		c.g.ready.push(c)
		return
	}
	go c.writeAlone() // ends when nothing is left to send, or the connection fails
}

// release gives the writer role up. Caller holds c.mu.
func (c *client) release() {
	c.writing = false
	c.g.connsWG.Done()
}

// writeFailed ends the role after a failed write: the connection is closed
// here, whatever close was asked before (its close frame cannot be sent).
func (c *client) writeFailed() {
	c.mu.Lock()
	c.release()
	c.mu.Unlock()
	_ = c.ws.Close()
	c.close(websocket.CloseNormalClosure, "", false) // the read side ends too
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
		c.close(websocketPolicy, "too slow", false)
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
			_ = c.ws.Close()
		}
	})
}

// turn is one writer turn: it writes what is queued as one round (a
// ping, then the events as one frame, or one frame each on /ws/<id>), or,
// once c is closed, its close frame before closing the connection.
// Pooled, it never waits: what the kernel does not take goes to c.carry
// and the turn hands off. buf is scratch space, returned for reuse.
func (c *client) turn(buf []byte, pooled bool) ([]byte, turnResult) {
	c.mu.Lock()
	select {
	case <-c.done:
		msg := c.closeMsg
		c.closeMsg = nil
		if msg == nil {
			c.release()
		}
		c.mu.Unlock()
		if msg == nil {
			_ = c.ws.Close()
			return buf, turnDone
		}
		buf = appendFrame(buf[:0], opClose, msg)
		if !pooled {
			_ = c.ws.writeWait(buf, time.Now().Add(time.Second))
		} else if r, err := c.put(buf); err == nil && r == turnHandOff {
			c.carryWait = time.Second
			return buf, r // writeAlone finishes the frame, then closes
		}
		_ = c.ws.Close()
		c.mu.Lock()
		c.release()
		c.mu.Unlock()
		return buf, turnDone
	default:
	}
	ping, pong := c.needPing, c.pongMsg
	if len(c.queue) == 0 && !ping && pong == nil {
		c.release()
		c.mu.Unlock()
		return buf, turnDone
	}
	if !pooled {
		chunks, asArray := c.queue, c.nEvents > 1
		c.queue = nil
		c.queued, c.nEvents, c.needPing, c.pongMsg = 0, 0, false, nil
		c.mu.Unlock()
		err := c.stream(pong, ping, chunks, asArray)
		clear(chunks)
		return buf, c.endTurn(err)
	}
	if c.queued > maxPooledRound {
		// A big round (a snapshot, a burst): copied into the worker's
		// buffer it might be left to carry, a copy per browser. Its own
		// goroutine streams it from the shared chunks instead.
		c.mu.Unlock()
		c.carry = c.carry[:0]
		return buf, turnHandOff
	}
	buf = buf[:0]
	if pong != nil {
		buf = appendFrame(buf, opPong, pong)
		c.pongMsg = nil
	}
	if ping {
		buf = appendFrame(buf, opPing, nil)
	}
	if c.device != "" {
		for _, f := range c.queue { // /ws/<id>: one object per frame, as the seed tutorial expects
			buf = appendFrame(buf, opText, f)
		}
	} else if len(c.queue) > 0 {
		buf = appendChunksFrame(buf, c.queue, c.nEvents > 1)
	}
	clear(c.queue) // drop the chunks: they are shared, and may be large
	c.queue = c.queue[:0]
	c.queued, c.nEvents, c.needPing = 0, 0, false
	c.mu.Unlock()

	r, err := c.put(buf)
	if err == nil && r == turnHandOff {
		return buf, r
	}
	return buf, c.endTurn(err)
}

// endTurn ends a turn that wrote a round (err: how that went): it tells
// whether more is waiting, or clears c.writing.
func (c *client) endTurn(err error) turnResult {
	if err != nil {
		c.writeFailed()
		return turnDone
	}
	c.mu.Lock()
	more := len(c.queue) > 0 || c.needPing || c.pongMsg != nil || isClosed(c.done)
	if !more {
		c.release()
	}
	c.mu.Unlock()
	if more {
		return turnAgain
	}
	return turnDone
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// put writes p, whole frames, for a pool turn, without waiting: if the
// kernel takes only part of p, the rest goes to c.carry and it returns
// turnHandOff.
func (c *client) put(p []byte) (turnResult, error) {
	n, err := c.ws.writeNow(p)
	if err != nil {
		return turnDone, err
	}
	if n < len(p) {
		c.carry = append(c.carry[:0], p[n:]...)
		return turnHandOff, nil
	}
	return turnDone, nil
}

// writeAlone holds the writer role in a goroutine of c's own: it finishes
// what a pool turn left in c.carry, then writes turn after turn, waiting
// for each, until nothing is left (or the connection fails).
func (c *client) writeAlone() {
	if len(c.carry) > 0 {
		wait := c.g.cfg.WriteWait
		if c.carryWait > 0 {
			wait = c.carryWait // a close frame's
		}
		err := c.ws.writeWait(c.carry, time.Now().Add(wait))
		c.carry, c.carryWait = nil, 0
		if err != nil {
			c.writeFailed()
			return
		}
	}
	var buf []byte
	for {
		var r turnResult
		if buf, r = c.turn(buf, false); r == turnDone {
			return
		}
	}
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
		c.close(code, "", true)
	case errors.Is(err, errTooBig):
		c.g.log.Info("browser closed: message too big", "remote", c.remote, "limit", devices.MaxBrowserMessage)
		c.close(closeTooBig, "message too big", true)
	case errors.As(err, &pe):
		c.g.log.Info("browser closed: "+pe.Error(), "remote", c.remote)
		c.close(closeProtocol, truncate(string(pe), maxControlLength-2), true)
	case errors.As(err, &ne) && ne.Timeout():
		c.g.log.Info("browser closed: no pong", "remote", c.remote)
		c.close(websocket.CloseNormalClosure, "", false)
	default:
		c.close(websocket.CloseNormalClosure, "", false)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
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
