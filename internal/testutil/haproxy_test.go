package testutil

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestHaproxyFollowsHealthz puts haproxy in front of two HTTP servers and
// checks that it sends requests only to the ones whose /healthz answers 200.
func TestHaproxyFollowsHealthz(t *testing.T) {
	type backend struct {
		srv     *http.Server
		addr    string
		healthy chan bool // its /healthz answer, set by the test
	}
	var bs []*backend
	for i := range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		b := &backend{addr: ln.Addr().String(), healthy: make(chan bool, 1)}
		b.healthy <- true
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			ok := <-b.healthy
			b.healthy <- ok
			if !ok {
				w.WriteHeader(503)
			}
		})
		mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintf(w, "b%d", i) })
		b.srv = &http.Server{Handler: mux}
		go b.srv.Serve(ln) // ends at Close, below
		t.Cleanup(func() { b.srv.Close() })
		bs = append(bs, b)
	}
	h := StartHaproxy(t, bs[0].addr, bs[1].addr)
	h.WaitServer(t, 0, true, 10*time.Second)
	h.WaitServer(t, 1, true, 10*time.Second)
	<-bs[0].healthy
	bs[0].healthy <- false
	h.WaitServer(t, 0, false, 10*time.Second)
	for range 4 {
		resp, err := http.Get(h.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "b1" {
			t.Errorf("GET / through haproxy with b0 unhealthy: got %q, want b1", body)
		}
	}
}
