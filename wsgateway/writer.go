// The writer role: who writes a browser's frames when, a pool worker's
// turn or a goroutine of the browser's own (doc.go has the picture).

package wsgateway

import (
	"sync"
	"time"
)

// closeWait bounds the writing of a close frame: a browser that does not
// take it by then is cut off without it.
const closeWait = time.Second

// maxPooledRound is the largest round (queued bytes) a pool worker copies
// into its buffer; a bigger one (a snapshot, a burst) is streamed by the
// browser's own goroutine from the shared chunks, so that a partial write
// never leaves a large copy per browser behind.
const maxPooledRound = 16 << 10

// startWriter gives c's writer role to the pool (or, without non-blocking
// writes, to a goroutine of c's own) unless a writer holds it. The role
// counts in Gateway.connsWG until release, so Close waits for close frames
// to be written. (It is only taken while c's readPump, also counted, runs,
// or by Close before it waits: never an Add from zero during Wait.) Caller
// holds c.mu.
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
	go c.writeAlone(nil, time.Time{}) // ends when nothing is left to send, or the connection is closed
}

// release gives the writer role up. Caller holds c.mu.
func (c *client) release() {
	c.writing = false
	c.g.connsWG.Done()
}

// finish ends the role for good: it closes the connection (the reader then
// ends too) and gives the role up. The connection is closed first, so that
// Close, waiting for the role, finds it closed.
func (c *client) finish() {
	_ = c.ws.Close()
	c.mu.Lock()
	c.closeLocked(nil)
	c.release()
	c.mu.Unlock()
}

// hasRound reports whether something is queued. Caller holds c.mu.
func (c *client) hasRound() bool {
	return len(c.queue) > 0 || c.needPing || c.pongMsg != nil
}

// takeRound takes what c's writer sends next: everything queued as one
// round or, once c is closed, the last round: its close frame alone, or
// nothing when there is none to send. After the last round the writer
// closes the connection. Caller holds c.mu.
func (c *client) takeRound() (r round, last bool) {
	if c.closed {
		r.close, c.closeMsg = c.closeMsg, nil
		return r, true
	}
	r = round{pong: c.pongMsg, ping: c.needPing, chunks: c.queue, single: c.device != "", events: c.nEvents, marks: c.marks}
	c.queue, c.queued, c.nEvents, c.needPing, c.pongMsg, c.marks = nil, 0, 0, false, nil, nil
	return r, false
}

// roundWait is how long a round may take to write.
func (c *client) roundWait(last bool) time.Duration {
	if last {
		return closeWait
	}
	return c.g.cfg.WriteWait
}

// poolTurn is a pool worker's turn at c: one round, encoded into buf and
// written without waiting. It returns buf for reuse and whether c has more
// to send (the worker queues it again, at the back). When the socket does
// not take the whole round, or the round is too big for a turn, the role
// passes to a goroutine of c's own.
func (c *client) poolTurn(buf []byte) ([]byte, bool) {
	c.mu.Lock()
	switch {
	case !c.closed && !c.hasRound():
		c.release()
		c.mu.Unlock()
		return buf, false
	case !c.closed && c.queued > maxPooledRound:
		c.mu.Unlock()
		go c.writeAlone(nil, time.Time{}) // ends when nothing is left to send, or the connection is closed
		return buf, false
	}
	r, last := c.takeRound()
	buf = appendRound(buf[:0], &r)
	clear(r.chunks)        // they are shared, and may be large
	c.queue = r.chunks[:0] // the array is reused: no allocation per fan-out
	c.marks = r.marks[:0]
	c.mu.Unlock()

	if !c.sendNow(buf, c.roundWait(last)) {
		return buf, false
	}
	if last {
		c.finish()
		return buf, false
	}
	c.mu.Lock()
	more := c.closed || c.hasRound()
	if !more {
		c.release()
	}
	c.mu.Unlock()
	return buf, more
}

// sendNow writes p, whole frames, for a pool turn, without waiting, and
// reports whether all of it went out. If not, the role has passed on: to a
// goroutine of c's own that writes the rest within wait, or, when the
// write failed, to nobody (the connection is closed).
func (c *client) sendNow(p []byte, wait time.Duration) bool {
	if len(p) == 0 {
		return true
	}
	n, err := c.ws.writeNow(p)
	switch {
	case err != nil:
		c.finish()
		return false
	case n < len(p):
		c.g.m.waited.Inc()
		rest := append([]byte(nil), p[n:]...)       // p is the worker's buffer
		go c.writeAlone(rest, time.Now().Add(wait)) // ends when nothing is left to send, or the connection is closed
		return false
	}
	return true
}

// writeAlone holds c's writer role in a goroutine of c's own: it writes
// rest (what a pool turn's write left of its frames) by deadline, then
// round after round, waiting for each, until nothing is left, or until
// the last round (c closed), after which it closes the connection.
func (c *client) writeAlone(rest []byte, deadline time.Time) {
	if len(rest) > 0 {
		if err := c.ws.writeWait(rest, deadline); err != nil {
			c.finish()
			return
		}
	}
	for {
		c.mu.Lock()
		if !c.closed && !c.hasRound() {
			c.release()
			c.mu.Unlock()
			return
		}
		r, last := c.takeRound()
		c.mu.Unlock()
		if err := c.stream(&r, c.roundWait(last)); err != nil || last {
			c.finish()
			return
		}
	}
}

// streamBufs are the 16 KiB buffers client.stream writes through.
var streamBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// stream writes r, all of it within wait, straight from the shared chunks
// through a pooled 16 KiB buffer: a large snapshot is never copied whole.
func (c *client) stream(r *round, wait time.Duration) error {
	bp := streamBufs.Get().(*[]byte)
	defer streamBufs.Put(bp)
	w := frameWriter{buf: (*bp)[:0], ws: &c.ws, deadline: time.Now().Add(wait)}
	r.encode(&w)
	w.flush()
	*bp = w.buf[:0]
	if w.waited { // (TLS connections cannot tell: not counted)
		c.g.m.waited.Inc()
	}
	return w.err
}
