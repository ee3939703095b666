package wsgateway

import (
	"net"
	"runtime"
	"sync"
	"syscall"
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

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// appendFrameHeader appends the header of a final, unmasked frame of
// opcode op carrying n payload bytes.
func appendFrameHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xffff:
		return append(b, 126, byte(n>>8), byte(n))
	default:
		return append(b, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// appendFrame appends a whole frame.
func appendFrame(b []byte, op byte, payload []byte) []byte {
	return append(appendFrameHeader(b, op, len(payload)), payload...)
}

// appendChunksFrame appends one text frame holding chunks joined by commas,
// wrapped in [ ] (a JSON array) when asArray.
func appendChunksFrame(b []byte, chunks [][]byte, asArray bool) []byte {
	b = appendFrameHeader(b, opText, chunksLen(chunks, asArray))
	if asArray {
		b = append(b, '[')
	}
	for i, ch := range chunks {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, ch...)
	}
	if asArray {
		b = append(b, ']')
	}
	return b
}

// chunksLen is the payload length of appendChunksFrame's frame.
func chunksLen(chunks [][]byte, asArray bool) int {
	n := max(len(chunks)-1, 0) // commas
	for _, ch := range chunks {
		n += len(ch)
	}
	if asArray {
		n += 2
	}
	return n
}

// wsConn is a browser's connection after the handshake.
type wsConn struct {
	net.Conn
	raw syscall.RawConn // nil: no non-blocking writes (TLS)
}

func newWSConn(c net.Conn) *wsConn {
	w := &wsConn{Conn: c}
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			w.raw = raw
		}
	}
	return w
}

// writeNow writes what of p the kernel takes at once, without waiting, and
// returns how much that was. w.raw is set.
func (w *wsConn) writeNow(p []byte) (int, error) {
	var n int
	var werr error
	err := w.raw.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), p)
			if werr != syscall.EINTR {
				return true // done, whatever happened: never wait here
			}
		}
	})
	if err != nil {
		return 0, err // closed
	}
	if werr == syscall.EAGAIN {
		return 0, nil
	}
	if werr != nil {
		return 0, &net.OpError{Op: "write", Net: "tcp", Source: w.LocalAddr(), Addr: w.RemoteAddr(), Err: werr}
	}
	return n, nil
}

// writeWait writes all of p, waiting until deadline at most.
func (w *wsConn) writeWait(p []byte, deadline time.Time) error {
	if err := w.Conn.SetWriteDeadline(deadline); err != nil {
		return err
	}
	// Cleared after: a deadline left to expire would fail writeNow later
	// (the poller refuses any write past an expired deadline).
	defer w.Conn.SetWriteDeadline(time.Time{})
	_, err := w.Conn.Write(p)
	return err
}

// turnResult says what follows a writer's turn.
type turnResult int

const (
	turnDone    turnResult = iota // nothing left: c.writing is cleared
	turnAgain                     // more is queued: c.writing stays set
	turnHandOff                   // (pooled) the socket was full (c.carry holds the rest) or the round is big: c's own goroutine goes on
)

// readyQueue is the browsers waiting for a pool worker, in order. A browser
// is in it at most once: only startWriter puts it there, when no writer
// holds it (client.writing).
type readyQueue struct {
	mu      sync.Mutex // guards q and stopped
	cond    sync.Cond  // signalled when q grows or stopped is set
	q       []*client
	stopped bool
}

func (r *readyQueue) push(c *client) {
	r.mu.Lock()
	r.q = append(r.q, c)
	r.mu.Unlock()
	r.cond.Signal()
}

// pop waits for a browser; false once stopped and empty.
func (r *readyQueue) pop() (*client, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.q) == 0 {
		if r.stopped {
			return nil, false
		}
		r.cond.Wait()
	}
	c := r.q[0]
	r.q[0] = nil
	r.q = r.q[1:]
	return c, true
}

func (r *readyQueue) stop() {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
	r.cond.Broadcast()
}

// startWorkers starts the pool, one worker per CPU (tried: one fewer, to
// leave a CPU for the network; toggle p99 under workload (c) went from
// 17-19 ms to 20-23 ms). stopWorkers ends them once the queue is empty.
func (g *Gateway) startWorkers() {
	g.ready.cond.L = &g.ready.mu
	n := runtime.GOMAXPROCS(0)
	g.workersWG.Add(n)
	for range n {
		go g.worker() // ends when stopWorkers has run and the queue is empty
	}
}

func (g *Gateway) stopWorkers() {
	g.ready.stop()
	g.workersWG.Wait()
}

func (g *Gateway) worker() {
	defer g.workersWG.Done()
	buf := make([]byte, 0, 16<<10)
	for {
		c, ok := g.ready.pop()
		if !ok {
			return
		}
		var r turnResult
		buf, r = c.turn(buf, true)
		switch r {
		case turnAgain:
			g.ready.push(c) // to the back: one frame per browser per turn
		case turnHandOff:
			if len(c.carry) > 0 { // the socket was full (not a big round)
				g.m.waited.Inc()
			}
			go c.writeAlone() // ends when c's queue is empty or its connection fails (the role stays counted)
		}
		if cap(buf) > 1<<20 {
			buf = make([]byte, 0, 16<<10) // a large snapshot: don't keep it
		}
		runtime.Gosched() // let what waits for a CPU run between two writes
	}
}

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
