// The writer role: who writes a browser's frames, a pool worker's turn
// or a goroutine of the browser's own.

package wsgateway

import (
	"sync"
	"time"
)

// Writing to browsers.
//
// A fan-out to a thousand browsers is a thousand frame writes. Started as a
// thousand goroutines, they fill the run queues, and everything else the
// process does (the browser whose toggle starts a round trip, the broker
// passing the command to its board) waits behind them: on two cores that
// was up to 8 ms for a toggle to reach its board. So browsers on plain TCP
// are written by a small pool of workers (see startWorkers) that take browsers
// with something to send from a queue, in order, and write each without
// waiting: a browser's frame that the kernel takes at once (the usual case:
// a few hundred bytes into a socket buffer of hundreds of KiB) costs one
// system call and no goroutine. A worker yields after each browser, so
// other goroutines run between two writes.
//
// When the kernel does not take a whole frame (a slow link, a browser that
// does not read, a large snapshot), the rest is handed to a goroutine of
// that browser's own, which waits for it (up to Config.WriteWait) and goes
// on writing that browser until its queue is empty; the pool never waits
// for one browser. TLS connections have no non-blocking write: they are
// always written by a goroutine of their own.
//
// Frames are encoded here (RFC 6455, server to client: unmasked), straight
// from the shared event chunks into the worker's buffer. gorilla/websocket
// only does the handshake; after it, the holder of a browser's writer role
// is the only goroutine that writes to it (the reader's pongs and close
// frames go through the writer too), so frames never interleave.

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
	c.abort() // the read side ends too
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

// turnResult says what follows a writer's turn.
type turnResult int

const (
	turnDone    turnResult = iota // nothing left: c.writing is cleared
	turnAgain                     // more is queued: c.writing stays set
	turnHandOff                   // (pooled) the socket was full (c.carry holds the rest) or the round is big: c's own goroutine goes on
)

// maxPooledRound is the largest round (queued bytes) a pool worker copies
// into its buffer; a bigger one is streamed by the browser's own goroutine
// (client.stream), so a partial write never leaves a large copy behind.
const maxPooledRound = 16 << 10

// streamBufs are the 16 KiB buffers client.stream writes through.
var streamBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// stream writes a round (a pong, a ping, then the events: one frame, or
// one per event on /ws/<id>), all of it within Config.WriteWait, straight
// from the shared chunks through a pooled 16 KiB buffer: a large snapshot
// is never copied whole.
func (c *client) stream(pong []byte, ping bool, chunks [][]byte, asArray bool) error {
	bp := streamBufs.Get().(*[]byte)
	defer streamBufs.Put(bp)
	s := streamer{ws: c.ws, buf: (*bp)[:0], deadline: time.Now().Add(c.g.cfg.WriteWait)}
	var hdr [10]byte
	if pong != nil {
		s.write(appendFrameHeader(hdr[:0], opPong, len(pong)))
		s.write(pong)
	}
	if ping {
		s.write(appendFrameHeader(hdr[:0], opPing, 0))
	}
	if c.device != "" {
		for _, f := range chunks {
			s.write(appendFrameHeader(hdr[:0], opText, len(f)))
			s.write(f)
		}
	} else if len(chunks) > 0 {
		s.write(appendFrameHeader(hdr[:0], opText, chunksLen(chunks, asArray)))
		if asArray {
			s.write(openBracket)
		}
		for i, ch := range chunks {
			if i > 0 {
				s.write(comma)
			}
			s.write(ch)
		}
		if asArray {
			s.write(closeBracket)
		}
	}
	s.flush()
	*bp = s.buf[:0]
	if s.waited { // (TLS connections cannot tell: not counted)
		c.g.m.waited.Inc()
	}
	return s.err
}

var openBracket, comma, closeBracket = []byte("["), []byte(","), []byte("]")

// streamer copies into buf and writes it out whenever it is full; the
// first error sticks.
type streamer struct {
	ws       *wsConn
	buf      []byte
	deadline time.Time // for the whole round
	waited   bool      // a write had to wait for the socket
	err      error
}

func (s *streamer) write(p []byte) {
	for len(p) > 0 && s.err == nil {
		n := copy(s.buf[len(s.buf):cap(s.buf)], p)
		s.buf, p = s.buf[:len(s.buf)+n], p[n:]
		if len(s.buf) == cap(s.buf) {
			s.flush()
		}
	}
}

func (s *streamer) flush() {
	p := s.buf
	s.buf = s.buf[:0]
	if len(p) == 0 || s.err != nil {
		return
	}
	if s.ws.raw != nil { // try without waiting first, to know whether it had to
		n, err := s.ws.writeNow(p)
		if s.err = err; err != nil || n == len(p) {
			return
		}
		p, s.waited = p[n:], true
	}
	s.err = s.ws.writeWait(p, s.deadline)
}
