package testutil

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// haproxyReady is the line haproxy -V prints on stderr once it has read
// its configuration and chosen how to poll.
var haproxyReady = regexp.MustCompile(`will use \S+\.`)

// Haproxy is Debian's haproxy on a free loopback port in front of HTTP
// backends, as StartHaproxy runs it until the test ends.
type Haproxy struct {
	URL  string // http://127.0.0.1:port, the frontend
	Proc *Process

	sock     string // the admin socket, for ServerUp
	backends int
}

// HaproxyConfig is the haproxy.cfg StartHaproxy writes: a frontend on
// 127.0.0.1:port balancing round robin over backends (host:port each,
// named cp1, cp2, ...), each checked with GET /healthz every 500 ms
// (down after 2 failures, up after 1 success), a connection refused by
// one retried on another (redispatch), and timeouts long enough for an
// idle WebSocket (the upgrade passes through in HTTP mode; a tunnel then
// lasts up to an hour without traffic). sock is the admin socket's path.
func HaproxyConfig(port, sock string, backends []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
  maxconn 4096
  stats socket %s mode 600 level admin
defaults
  mode http
  timeout connect 2s
  timeout client 1h
  timeout server 1h
  timeout tunnel 1h
  timeout http-request 10s
  option redispatch
  retries 3
frontend switchyard
  bind 127.0.0.1:%s
  default_backend controlplanes
backend controlplanes
  balance roundrobin
  option httpchk GET /healthz
  http-check expect status 200
  default-server inter 500ms fall 2 rise 1
`, sock, port)
	for i, addr := range backends {
		fmt.Fprintf(&b, "  server cp%d %s check\n", i+1, addr)
	}
	return b.String()
}

// StartHaproxy runs haproxy (see NeedCommand) with HaproxyConfig in front
// of backends (host:port each) and waits until it listens. It does not
// wait for the backends' checks: see ServerUp.
func StartHaproxy(t testing.TB, backends ...string) *Haproxy {
	t.Helper()
	bin := NeedCommand(t, "haproxy", "haproxy")
	dir := t.TempDir()
	port := FreePort(t)
	h := &Haproxy{URL: "http://127.0.0.1:" + port, sock: filepath.Join(dir, "admin.sock"), backends: len(backends)}
	conf := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(conf, []byte(HaproxyConfig(port, h.sock, backends)), 0o644); err != nil {
		t.Fatal(err)
	}
	// -db: in the foreground, no master process; -V: say when ready.
	p, _, err := Start(t, exec.Command(bin, "-db", "-V", "-f", conf), haproxyReady, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h.Proc = p
	WaitFor(t, 10*time.Second, func() error { // the polling line comes just before it binds
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err == nil {
			c.Close()
		}
		return err
	})
	return h
}

// ServerUp reports whether haproxy's checks find backend i (0-based, in
// the order StartHaproxy was given) up, asking its admin socket.
func (h *Haproxy) ServerUp(i int) (bool, error) {
	if i < 0 || i >= h.backends {
		return false, fmt.Errorf("haproxy has %d backends, not %d", h.backends, i+1)
	}
	c, err := net.DialTimeout("unix", h.sock, 2*time.Second)
	if err != nil {
		return false, fmt.Errorf("haproxy admin socket: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("show stat\n")); err != nil {
		return false, fmt.Errorf("haproxy show stat: %w", err)
	}
	// CSV: pxname,svname,...,status (the 18th field),...
	name := fmt.Sprintf("cp%d", i+1)
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		f := strings.Split(sc.Text(), ",")
		if len(f) > 17 && f[0] == "controlplanes" && f[1] == name {
			return strings.HasPrefix(f[17], "UP"), nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("haproxy show stat: %w", err)
	}
	return false, fmt.Errorf("haproxy show stat: no server %s", name)
}

// WaitServer waits at most timeout until haproxy finds backend i up (up
// true) or down (up false).
func (h *Haproxy) WaitServer(t testing.TB, i int, up bool, timeout time.Duration) {
	t.Helper()
	WaitFor(t, timeout, func() error {
		got, err := h.ServerUp(i)
		if err != nil {
			return err
		}
		if got != up {
			return fmt.Errorf("haproxy: backend %d up = %v, want %v", i, got, up)
		}
		return nil
	})
}
