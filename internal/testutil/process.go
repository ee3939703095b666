package testutil

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// keepLines is how many of the last lines of a command's stderr a Process
// keeps: enough to search for what a test just caused, and to log.
const keepLines = 1000

// Process is a command started by Start, with the last lines of its
// stderr kept for the test to search and to log when it fails.
type Process struct {
	cmd    *exec.Cmd
	name   string        // the command's base name, for messages
	exited chan struct{} // closed once the command has exited; err is set before

	mu    sync.Mutex // guards lines
	lines []string   // the last lines of stderr, keepLines at least
	err   error      // cmd.Wait's answer
}

// Start starts cmd and waits at most timeout for a line of its stderr
// that matches ready, and returns the line's submatches. It returns an
// error when the command cannot start, exits first (the error quotes its
// last line) or is not ready in time (it is killed then); the Process is
// returned whenever the command started. Whatever happens, the process is
// killed and waited for at the end of the test, and its stderr logged if
// the test failed.
func Start(t testing.TB, cmd *exec.Cmd, ready *regexp.Regexp, timeout time.Duration) (*Process, []string, error) {
	t.Helper()
	name := filepath.Base(cmd.Path)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, nil, fmt.Errorf("start %s: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{cmd: cmd, name: name, exited: make(chan struct{})}
	found := make(chan []string, 1)
	go func() { // ends when the command has exited and closed its stderr
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			p.add(sc.Text())
			if m := ready.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m:
				default: // said again: the first one counts
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr) // after a line too long, so the command never blocks writing
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s stderr (last lines):\n%s", name, p.Log())
		}
	})
	select {
	case m := <-found:
		return p, m, nil
	case <-p.exited:
		return p, nil, fmt.Errorf("%s exited before it was ready (%v): %s", name, p.err, p.lastLine())
	case <-time.After(timeout):
		p.Kill()
		return p, nil, fmt.Errorf("%s not ready after %v", name, timeout)
	}
}

func (p *Process) add(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = append(p.lines, line)
	if len(p.lines) > 2*keepLines {
		p.lines = append(p.lines[:0], p.lines[len(p.lines)-keepLines:]...)
	}
}

// Log returns the last lines of the command's stderr.
func (p *Process) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

func (p *Process) lastLine() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lines) == 0 {
		return ""
	}
	return p.lines[len(p.lines)-1]
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Exited is closed once the command has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Stop sends SIGTERM and waits at most timeout for the command to exit. It
// returns nil for exit status 0, else the exit error, or an error when the
// command is still running.
func (p *Process) Stop(timeout time.Duration) error {
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("SIGTERM to %s: %w", p.name, err)
	}
	return p.Wait(timeout)
}

// Wait waits at most timeout for the command to exit. It returns nil for
// exit status 0, else the exit error, or an error when the command is
// still running.
func (p *Process) Wait(timeout time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("%s still running after %v", p.name, timeout)
	}
}

// Kill kills the process, if it still runs, and waits until it has exited.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill() // fails once it has exited: nothing to do then
	<-p.exited
}

// servingLine is the line the controlplane logs once it serves; its
// submatches are the MQTT address ("external" in external broker mode) and
// the HTTP address.
var servingLine = regexp.MustCompile(`msg="switchyard control plane serving" mqtt=(\S+) .*?http=(\S+)`)

// ControlPlane is a controlplane process started by StartControlPlane.
type ControlPlane struct {
	*Process
	MQTTAddr string // host:port, or "external"
	HTTPAddr string // host:port
}

// StartControlPlane is Start for cmd, a controlplane command (built with
// BuildBinary, say), ready once it logs that it serves.
func StartControlPlane(t testing.TB, cmd *exec.Cmd, timeout time.Duration) (*ControlPlane, error) {
	t.Helper()
	p, m, err := Start(t, cmd, servingLine, timeout)
	if err != nil {
		return nil, err
	}
	return &ControlPlane{Process: p, MQTTAddr: m[1], HTTPAddr: m[2]}, nil
}

// Gone reports whether process pid has ended: it no longer exists, or it
// is a zombie (it has exited and waits for its parent to reap it). It is
// for processes a test did not start itself, such as a child of one it
// did, whose end no event tells.
func Gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}
