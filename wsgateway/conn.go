// wsConn: a browser's socket after the handshake, written without waiting
// (a pool turn) or with a deadline.

package wsgateway

import (
	"net"
	"sync"
	"syscall"
	"time"
)

// wsConn is a browser's connection after the handshake.
type wsConn struct {
	net.Conn
	raw syscall.RawConn // nil: no non-blocking writes (TLS)
}

func newWSConn(c net.Conn) wsConn {
	w := wsConn{Conn: c}
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
	rw := rawWrites.Get().(*rawWrite)
	rw.p = p
	err := w.raw.Write(rw.fn)
	n, werr := rw.n, rw.err
	rw.p, rw.err = nil, nil
	rawWrites.Put(rw)
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

// rawWrite is writeNow's call into the poller with its arguments and
// results, reused: a closure made at every write was most of the gateway's
// garbage under load (a collection a second under workload (c)).
type rawWrite struct {
	p   []byte
	n   int
	err error
	fn  func(fd uintptr) bool // rawWrite.write, bound once
}

var rawWrites = sync.Pool{New: func() any {
	rw := &rawWrite{}
	rw.fn = rw.write
	return rw
}}

func (rw *rawWrite) write(fd uintptr) bool {
	for {
		rw.n, rw.err = syscall.Write(int(fd), rw.p)
		if rw.err != syscall.EINTR {
			return true // done, whatever happened: never wait here
		}
	}
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
