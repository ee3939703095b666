package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testutil"
)

// wait bounds every wait for a condition that should hold within moments.
const wait = 10 * time.Second

// controlPlane is the real controlplane binary, run on fixed loopback ports
// so that a restart comes back where the browsers and boards look for it.
type controlPlane struct {
	t        *testing.T
	cfgPath  string
	mqttAddr string // 127.0.0.1:port
	httpAddr string // 127.0.0.1:port

	proc *testutil.ControlPlane // the last one started; only the test's goroutine uses it
}

// cpOptions configures a control plane.
type cpOptions struct {
	origins   []string // http.allowed_origins
	publicURL string   // http.public_url; "" for none
	extra     string   // more config lines (YAML)
}

// startControlPlane starts a control plane on two free loopback ports with
// a temporary storage file; it is killed at the end of the test.
func startControlPlane(t *testing.T, opt cpOptions) *controlPlane {
	t.Helper()
	dir := t.TempDir()
	cp := &controlPlane{t: t, cfgPath: filepath.Join(dir, "config.yaml")}
	// A free port is one we could listen on a moment ago: another process
	// may take it before the control plane binds it, so a start that fails
	// on a port in use is retried on new ports.
	for attempt := 1; ; attempt++ {
		cp.mqttAddr = net.JoinHostPort("127.0.0.1", testutil.FreePort(t))
		cp.httpAddr = net.JoinHostPort("127.0.0.1", testutil.FreePort(t))
		if cp.mqttAddr == cp.httpAddr {
			continue
		}
		cp.writeConfig(opt, filepath.Join(dir, "retained.log"))
		err := cp.start()
		if err == nil {
			return cp
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("start controlplane: %v", err)
		}
		t.Logf("start controlplane: %v; retrying on other ports", err)
	}
}

func (cp *controlPlane) writeConfig(opt cpOptions, storage string) {
	var b strings.Builder
	fmt.Fprintf(&b, "mqtt:\n  listen: %q\n", cp.mqttAddr)
	fmt.Fprintf(&b, "http:\n  listen: %q\n  allowed_origins: [", cp.httpAddr)
	for i, o := range opt.origins {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", o)
	}
	b.WriteString("]\n")
	if opt.publicURL != "" {
		fmt.Fprintf(&b, "  public_url: %q\n", opt.publicURL)
	}
	fmt.Fprintf(&b, "storage:\n  path: %q\nlog:\n  level: info\n", storage)
	b.WriteString(opt.extra)
	if err := os.WriteFile(cp.cfgPath, []byte(b.String()), 0o644); err != nil {
		cp.t.Fatal(err)
	}
}

// start runs the binary and waits for its "serving" line. The process is
// killed at the end of the test, and its log shown if the test failed.
func (cp *controlPlane) start() error {
	cmd := exec.Command(testutil.BuildBinary(cp.t, "switchyard/cmd/controlplane"), "--config", cp.cfgPath)
	p, err := testutil.StartControlPlane(cp.t, cmd, wait)
	if err != nil {
		return err
	}
	cp.proc = p
	if p.MQTTAddr != cp.mqttAddr || p.HTTPAddr != cp.httpAddr {
		p.Kill()
		return fmt.Errorf("serving mqtt=%s http=%s, want mqtt=%s http=%s", p.MQTTAddr, p.HTTPAddr, cp.mqttAddr, cp.httpAddr)
	}
	return nil
}

// pid is the running process's id.
func (cp *controlPlane) pid() int { return cp.proc.Pid() }

// url is the dashboard's address with path appended.
func (cp *controlPlane) url(path string) string {
	return "http://" + cp.httpAddr + path
}

// stop sends SIGTERM and expects a clean exit (status 0) within 10 s.
func (cp *controlPlane) stop() {
	cp.t.Helper()
	if err := cp.proc.Stop(wait); err != nil {
		cp.t.Fatalf("stop controlplane: %v, want exit status 0", err)
	}
}

// startAgain starts the stopped control plane on the same ports with the
// same storage. A port taken meanwhile by another process is retried a few
// times, then fails the test.
func (cp *controlPlane) startAgain() {
	cp.t.Helper()
	var err error
	for attempt := 1; attempt <= 5; attempt++ {
		if err = cp.start(); err == nil {
			return
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
		time.Sleep(200 * time.Millisecond) // a back-off for another process's port, not a synchronisation
	}
	cp.t.Fatalf("start controlplane again on %s and %s: %v", cp.mqttAddr, cp.httpAddr, err)
}
