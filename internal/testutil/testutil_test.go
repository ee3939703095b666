package testutil

import (
	"debug/elf"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

func TestFreePortIsListenable(t *testing.T) {
	p := FreePort(t)
	ln, err := net.Listen("tcp", "127.0.0.1:"+p)
	if err != nil {
		t.Fatalf("listen on the free port %s: %v", p, err)
	}
	ln.Close()
}

func TestBuildBinaryBuildsOnce(t *testing.T) {
	const pkg = "switchyard/internal/testutil/testdata/hello"
	bin := BuildBinary(t, pkg)
	out, err := exec.Command(bin).Output()
	if err != nil || string(out) != "hello\n" {
		t.Fatalf("running %s: got %q, %v; want \"hello\\n\"", bin, out, err)
	}
	if again := BuildBinary(t, pkg); again != bin {
		t.Errorf("second build: got %s, want the first one, %s", again, bin)
	}
	if other := BuildBinary(t, pkg, "-ldflags=-s"); other == bin {
		t.Errorf("build with other flags: got the same path %s", other)
	}
}

func TestBuildBinaryEnvForAnotherMachine(t *testing.T) {
	const pkg = "switchyard/internal/testutil/testdata/hello"
	goarch, want := "arm64", elf.EM_AARCH64
	if runtime.GOARCH == "arm64" {
		goarch, want = "amd64", elf.EM_X86_64
	}
	bin := BuildBinaryEnv(t, []string{"GOOS=linux", "GOARCH=" + goarch, "CGO_ENABLED=0"}, pkg)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != want {
		t.Errorf("built for GOARCH=%s: ELF machine %v, want %v", goarch, f.Machine, want)
	}
	if native := BuildBinary(t, pkg); native == bin {
		t.Errorf("the native build has the same path %s", bin)
	}
}

func TestEventually(t *testing.T) {
	calls := 0
	if err := Eventually(time.Second, func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil || calls != 3 {
		t.Errorf("got %v after %d calls, want nil after 3", err, calls)
	}

	calls = 0
	err := Eventually(50*time.Millisecond, func() error {
		calls++
		return fmt.Errorf("attempt %d", calls)
	})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("attempt %d", calls)) {
		t.Errorf("got %v, want the last error, attempt %d", err, calls)
	}
}

func TestUntil(t *testing.T) {
	ok := false
	f := Until("the flag", func() bool { return ok })
	if err := f(); err == nil || !strings.Contains(err.Error(), "the flag") {
		t.Errorf("false: got %v, want an error naming the flag", err)
	}
	ok = true
	if err := f(); err != nil {
		t.Errorf("true: got %v, want nil", err)
	}
}

// recorder is a testing.TB that records how a helper ended the test.
type recorder struct {
	testing.TB
	failed, skipped bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatal(args ...any) {
	r.failed, r.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}
func (r *recorder) Skip(args ...any) {
	r.skipped, r.msg = true, fmt.Sprint(args...)
	runtime.Goexit()
}

// call runs f with a recorder, in a goroutine of its own as the testing
// package does, so that Fatal and Skip can end it.
func call(f func(testing.TB)) *recorder {
	r := new(recorder)
	done := make(chan struct{})
	go func() { // ends when f returns or r ends it
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

func TestNeedCommand(t *testing.T) {
	const missing = "switchyard-no-such-command"
	for ci, wantFail := range map[string]bool{"true": true, "": false, "false": false} { // else skipped
		t.Setenv("CI", ci)
		r := call(func(tb testing.TB) { NeedCommand(tb, missing, "some-package") })
		if r.failed != wantFail || r.skipped == wantFail {
			t.Errorf("CI=%q: failed %t skipped %t, want failed %t skipped %t", ci, r.failed, r.skipped, wantFail, !wantFail)
		}
		if !slices.Contains(strings.Split(r.msg, "\n"), "apt-get install -y some-package") {
			t.Errorf("CI=%q: message %q, want the line apt-get install -y some-package", ci, r.msg)
		}
	}

	t.Setenv("CI", "true")
	r := call(func(tb testing.TB) {
		if p := NeedCommand(tb, "go", "golang"); p == "" {
			tb.Fatal("empty path")
		}
	})
	if r.failed || r.skipped {
		t.Errorf("go, which is here: %q", r.msg)
	}
}
