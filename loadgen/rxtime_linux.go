package loadgen

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync/atomic"
	"syscall"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// rxConn is a TCP connection that remembers when the kernel received the
// data of its latest read (SO_TIMESTAMPNS). A browser's latency is taken at
// that instant, its socket receipt, rather than when the load generator's
// reader goroutine gets to run: with a thousand simulated browsers in one
// process on the target's cores, that goroutine may wait behind hundreds
// of others, which a real browser on its own machine would not. Both are
// reported (Result.Latency and Result.ReadLatency).
//
// Read is for one goroutine at a time; last may be loaded from any.
type rxConn struct {
	*net.TCPConn
	raw  syscall.RawConn
	oob  []byte
	last atomic.Int64 // unix ns: kernel receive time of the latest read's data; 0 none
	// exact: read one byte at a time, so that a WebSocket handshake's
	// reader takes nothing past the server's response (see pollTake).
	exact bool
}

// newRxConn turns on receive timestamps for c.
func newRxConn(c *net.TCPConn) (*rxConn, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("rx timestamps: %w", err)
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return nil, fmt.Errorf("rx timestamps: setsockopt SO_TIMESTAMPNS: %w", err)
	}
	return &rxConn{TCPConn: c, raw: raw, oob: make([]byte, syscall.CmsgSpace(16))}, nil
}

// Read reads like net.Conn.Read (deadlines included) and records the
// receive timestamp of what it read.
func (c *rxConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.exact {
		p = p[:1]
	}
	var n, oobn int
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = syscall.Recvmsg(int(fd), p, c.oob, 0)
		return rerr != syscall.EAGAIN // false: wait until readable, then again
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
	}
	if n == 0 {
		return 0, io.EOF
	}
	if ts, ok := parseRxTimestamp(c.oob[:oobn]); ok {
		c.last.Store(ts)
	}
	return n, nil
}

// parseRxTimestamp finds the SCM_TIMESTAMPNS control message in oob and
// returns its time in unix nanoseconds.
func parseRxTimestamp(oob []byte) (int64, bool) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level != syscall.SOL_SOCKET || m.Header.Type != syscall.SCM_TIMESTAMPNS {
			continue
		}
		switch d := m.Data; len(d) { // struct timespec: 64-bit or 32-bit fields
		case 16:
			return int64(binary.NativeEndian.Uint64(d[0:8]))*1e9 + int64(binary.NativeEndian.Uint64(d[8:16])), true
		case 8:
			return int64(int32(binary.NativeEndian.Uint32(d[0:4])))*1e9 + int64(int32(binary.NativeEndian.Uint32(d[4:8]))), true
		}
	}
	return 0, false
}

// rxOpen is rxDial for paho's ClientOptions.SetCustomOpenConnectionFn
// (tcp:// brokers only).
func rxOpen(rx **rxConn) func(*url.URL, mqtt.ClientOptions) (net.Conn, error) {
	dial := rxDial(rx)
	return func(u *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
		if u.Scheme != "tcp" && u.Scheme != "mqtt" {
			return nil, fmt.Errorf("rx timestamps: broker scheme %q, want tcp", u.Scheme)
		}
		ctx, cancel := context.WithTimeout(context.Background(), o.ConnectTimeout)
		defer cancel()
		return dial(ctx, "tcp", u.Host)
	}
}

// rxDial is a dialer for gorilla's Dialer.NetDialContext whose TCP
// connection records receive timestamps; it stores the connection in *rx.
func rxDial(rx **rxConn) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return rxDialExact(rx, false)
}

// rxDialExact is rxDial; with exact, the connection reads a byte at a
// time (rxConn.exact).
func rxDialExact(rx **rxConn, exact bool) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc, ok := c.(*net.TCPConn)
		if !ok {
			return c, nil
		}
		r, err := newRxConn(tc)
		if err != nil {
			c.Close()
			return nil, err
		}
		r.exact = exact
		*rx = r
		return r, nil
	}
}
