package testutil

import (
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

const wait = 10 * time.Second

var readyLine = regexp.MustCompile(`ready port=(\d+)`)

func TestStartReady(t *testing.T) {
	cmd := exec.Command("sh", "-c", `trap 'kill $!; exit 0' TERM
echo starting >&2
echo "ready port=42" >&2
sleep 60 2>/dev/null & wait`)
	p, m, err := Start(t, cmd, readyLine, wait)
	if err != nil {
		t.Fatal(err)
	}
	if m[1] != "42" {
		t.Errorf("submatch: got %q, want 42", m[1])
	}
	if got := p.Log(); !strings.Contains(got, "starting\nready port=42") {
		t.Errorf("log: got %q, want both lines", got)
	}
	if err := p.Stop(wait); err != nil {
		t.Errorf("Stop: got %v, want nil (exit status 0)", err)
	}
	if !hasExited(p) {
		t.Error("Exited not closed after Stop")
	}
}

func TestStartExitsFirst(t *testing.T) {
	p, _, err := Start(t, exec.Command("sh", "-c", `echo "bad config: no such key" >&2; exit 1`), readyLine, wait)
	if err == nil || !strings.Contains(err.Error(), "bad config: no such key") || !strings.Contains(err.Error(), "exit status 1") {
		t.Errorf("got %v, want an error quoting the last line and the status", err)
	}
	if p == nil {
		t.Fatal("no Process for a command that started")
	}
	<-p.Exited()
}

func TestStartNotReady(t *testing.T) {
	p, _, err := Start(t, exec.Command("sh", "-c", `exec sleep 60`), readyLine, 100*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Errorf("got %v, want not ready", err)
	}
	if !hasExited(p) {
		t.Error("a process not ready in time is still running")
	}
}

// hasExited reports, without waiting, whether p's command has exited.
func hasExited(p *Process) bool {
	select {
	case <-p.Exited():
		return true
	default:
		return false
	}
}

func TestStartControlPlane(t *testing.T) {
	for _, tc := range []struct{ line, mqtt, http string }{
		{`msg="switchyard control plane serving" mqtt=127.0.0.1:1883 http=127.0.0.1:8080 prefix=devices`, "127.0.0.1:1883", "127.0.0.1:8080"},
		{`msg="switchyard control plane serving" mqtt=127.0.0.1:1883 mqtt_tls=127.0.0.1:8883 http=127.0.0.1:8080`, "127.0.0.1:1883", "127.0.0.1:8080"},
		{`msg="switchyard control plane serving" mqtt=external http=127.0.0.1:8080`, "external", "127.0.0.1:8080"},
	} {
		line := "time=2026-01-01T00:00:00Z level=INFO " + tc.line
		cp, err := StartControlPlane(t, exec.Command("sh", "-c", `echo "$0" >&2; exec sleep 60`, line), wait)
		if err != nil {
			t.Fatalf("%s: %v", tc.line, err)
		}
		if cp.MQTTAddr != tc.mqtt || cp.HTTPAddr != tc.http {
			t.Errorf("%s: got mqtt %s http %s, want %s and %s", tc.line, cp.MQTTAddr, cp.HTTPAddr, tc.mqtt, tc.http)
		}
		cp.Kill()
	}
}

func TestGone(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if Gone(pid) {
		t.Errorf("pid %d running: Gone says it has ended", pid)
	}
	cmd.Process.Kill()
	// Not yet reaped: a zombie, which has ended. Its state changes when
	// the kill lands, which no event tells here.
	WaitFor(t, wait, Until("the killed process to be a zombie", func() bool { return Gone(pid) }))
	cmd.Wait()
	if !Gone(pid) {
		t.Errorf("pid %d reaped: Gone says it runs", pid)
	}
}
