//go:build !linux

package loadgen

import (
	"context"
	"net"
	"net/url"
	"sync/atomic"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// rxConn is unavailable here: latency is taken when the reader runs.
type rxConn struct {
	*net.TCPConn
	last atomic.Int64
}

// rxOpen opens plain TCP connections for paho (*rx stays nil).
func rxOpen(rx **rxConn) func(*url.URL, mqtt.ClientOptions) (net.Conn, error) {
	return func(u *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
		return net.DialTimeout("tcp", u.Host, o.ConnectTimeout)
	}
}

// rxDial dials without receive timestamps (*rx stays nil).
func rxDial(rx **rxConn) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return (&net.Dialer{}).DialContext
}

// rxDialExact is rxDial.
func rxDialExact(rx **rxConn, exact bool) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return rxDial(rx)
}
