// wsConn: a browser's socket after the handshake, written without waiting
// (a pool turn) or with a deadline.

package wsgateway

import (
	"net"
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
