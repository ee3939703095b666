package mqttnet

import (
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// failingListener is a real listener whose Accept fails with EMFILE, as
// when the process is out of file descriptors, while fail is set.
type failingListener struct {
	net.Listener
	fail   atomic.Bool
	failed chan struct{} // a send for every failure (dropped when full)
}

func (f *failingListener) Accept() (net.Conn, error) {
	if f.fail.Load() {
		select {
		case f.failed <- struct{}{}:
		default:
		}
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return f.Listener.Accept()
}

func TestServeOutlivesAcceptErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &failingListener{Listener: ln, failed: make(chan struct{}, 1)}
	fl.fail.Store(true)
	l := NewTCP("t", fl, time.Second, slog.New(slog.DiscardHandler))
	accepted := make(chan net.Conn, 1)
	served := make(chan struct{})
	go func() { // ends when Close closes the listener
		defer close(served)
		l.Serve(func(_ string, c net.Conn) error {
			accepted <- c
			buf := make([]byte, 1)
			_, err := c.Read(buf) // until Close closes c
			return err
		})
	}()
	const wait = 10 * time.Second
	for range 3 { // several failures, so Serve has waited and retried
		select {
		case <-fl.failed:
		case <-time.After(wait):
			t.Fatal("Accept not retried")
		}
	}
	if err := l.Err(); !errors.Is(err, syscall.EMFILE) {
		t.Errorf("Err while accepting fails = %v, want EMFILE", err)
	}
	fl.fail.Store(false)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-accepted:
	case <-time.After(wait):
		t.Fatal("a client after the failures was not accepted")
	}
	if err := l.Err(); err != nil {
		t.Errorf("Err once accepting works = %v, want nil", err)
	}
	l.Close(nil)
	select {
	case <-served:
	case <-time.After(wait):
		t.Fatal("Serve did not return after Close")
	}
}
