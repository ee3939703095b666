package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
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

	mu      sync.Mutex
	lines   []string // the last log lines, for failures
	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
}

// cpOptions configures a control plane.
type cpOptions struct {
	origins []string // http.allowed_origins
	extra   string   // more config lines (YAML)
}

var servingLine = regexp.MustCompile(`msg="switchyard control plane serving" mqtt=(\S+) http=(\S+)`)

// startControlPlane starts a control plane on two free loopback ports with
// a temporary storage file; it is killed at the end of the test.
func startControlPlane(t *testing.T, opt cpOptions) *controlPlane {
	t.Helper()
	dir := t.TempDir()
	cp := &controlPlane{t: t, cfgPath: filepath.Join(dir, "config.yaml")}
	t.Cleanup(func() {
		cp.kill()
		if t.Failed() {
			t.Logf("controlplane log (last lines):\n%s", cp.logs())
		}
	})
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
			t.Fatalf("start controlplane: %v\n%s", err, cp.logs())
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
	fmt.Fprintf(&b, "storage:\n  path: %q\nlog:\n  level: info\n", storage)
	b.WriteString(opt.extra)
	if err := os.WriteFile(cp.cfgPath, []byte(b.String()), 0o644); err != nil {
		cp.t.Fatal(err)
	}
}

// start runs the binary and waits for its "serving" line.
func (cp *controlPlane) start() error {
	cmd := exec.Command(testutil.BuildBinary(cp.t, "switchyard/cmd/controlplane"), "--config", cp.cfgPath)
	cmd.Env = os.Environ()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	cp.mu.Lock()
	cp.cmd, cp.exited, cp.exitErr = cmd, exited, nil
	cp.mu.Unlock()
	ready := make(chan []string, 1)
	go func() { // ends when the process closes stderr, that is exits
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			cp.addLine(line)
			if m := servingLine.FindStringSubmatch(line); m != nil {
				select {
				case ready <- m:
				default:
				}
			}
		}
		err := cmd.Wait()
		cp.mu.Lock()
		cp.exitErr = err
		cp.mu.Unlock()
		close(exited)
	}()
	select {
	case m := <-ready:
		if m[1] != cp.mqttAddr || m[2] != cp.httpAddr {
			cp.kill()
			return fmt.Errorf("serving mqtt=%s http=%s, want mqtt=%s http=%s", m[1], m[2], cp.mqttAddr, cp.httpAddr)
		}
		return nil
	case <-exited:
		return fmt.Errorf("exited at start (%v): %s", cp.exitError(), cp.lastLine())
	case <-time.After(wait):
		cp.kill()
		return fmt.Errorf("not serving after %v", wait)
	}
}

func (cp *controlPlane) addLine(line string) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	cp.lines = append(cp.lines, line)
	if len(cp.lines) > 400 {
		cp.lines = append(cp.lines[:0], cp.lines[len(cp.lines)-200:]...)
	}
}

func (cp *controlPlane) logs() string {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return strings.Join(cp.lines, "\n")
}

func (cp *controlPlane) lastLine() string {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if len(cp.lines) == 0 {
		return ""
	}
	return cp.lines[len(cp.lines)-1]
}

func (cp *controlPlane) exitError() error {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.exitErr
}

// pid is the running process's id.
func (cp *controlPlane) pid() int {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.cmd.Process.Pid
}

// url is the dashboard's address with path appended.
func (cp *controlPlane) url(path string) string {
	return "http://" + cp.httpAddr + path
}

// stop sends SIGTERM and expects a clean exit (status 0) within 10 s.
func (cp *controlPlane) stop() {
	cp.t.Helper()
	cp.mu.Lock()
	cmd, exited := cp.cmd, cp.exited
	cp.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		cp.t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(wait):
		cp.t.Fatalf("controlplane: no exit within %v of SIGTERM", wait)
	}
	if err := cp.exitError(); err != nil {
		cp.t.Fatalf("controlplane after SIGTERM: %v, want exit status 0", err)
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

// kill ends the process, if it runs, and waits for it.
func (cp *controlPlane) kill() {
	cp.mu.Lock()
	cmd, exited := cp.cmd, cp.exited
	cp.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Kill()
	<-exited
}
