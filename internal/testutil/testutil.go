// Package testutil holds the helpers the module's tests share, so that
// none is written twice: a free loopback port, a command built once per
// test binary, a poll with a deadline, a receive with a deadline, a
// function run in the background until the test stops it, a buffer safe
// for a logger and the test at once, a PostgreSQL server of the test's
// own, brokers and balancers of its own (Mosquitto, two Mosquittos
// bridged, a three-node NATS cluster with MQTT, haproxy), and the check
// for a third-party tool that skips on a developer's machine but fails
// under CI.
package testutil

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// FreePort returns a loopback port nothing listens on, chosen below the
// kernel's ephemeral range when there is room. A port from that range (as
// port 0 gives) can become the local port of any outgoing connection on the
// machine while a server is down for a restart, and then the restart on the
// same port fails; on a busy machine (a load generator holding thousands of
// connections) that happens. Another process may still take the port
// before the caller binds it.
func FreePort(t testing.TB) string {
	t.Helper()
	lo := ephemeralLow()
	for range 50 {
		port := 0
		if lo > 20000 {
			port = 10000 + rand.IntN(lo-10000)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue // taken: try another
		}
		_, p, _ := net.SplitHostPort(ln.Addr().String())
		ln.Close()
		return p
	}
	t.Fatal("no free loopback port found")
	return ""
}

// ephemeralLow is the first port of Linux's ephemeral range, 0 when unknown.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	lo, _ := strconv.Atoi(f[0])
	return lo
}

// builds holds the binaries BuildBinary made for this test process.
var builds struct {
	mu   sync.Mutex // guards dir, done
	dir  string     // made by Run; empty without it
	done map[string]*build
}

// build is one `go build`, made once.
type build struct {
	once sync.Once
	path string
	err  error
}

// Run runs the tests, as TestMain does, then removes the binaries
// BuildBinary built for them. A package whose tests build a binary calls
// it from TestMain: os.Exit(testutil.Run(m)).
func Run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "switchyard-testbin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "testutil:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	builds.mu.Lock()
	builds.dir = dir
	builds.mu.Unlock()
	return m.Run()
}

// BuildBinary builds the command pkg (an import path such as
// "switchyard/cmd/controlplane") with the go build flags given (such as
// "-race") and returns the executable's path. Under Run each pkg and flags
// is built once for the whole test binary and kept until Run returns;
// without Run it is built into the test's TempDir on every call. A failed
// build fails the test with the compiler's output.
func BuildBinary(t testing.TB, pkg string, flags ...string) string {
	t.Helper()
	return BuildBinaryEnv(t, nil, pkg, flags...)
}

// BuildBinaryEnv is BuildBinary with env added to go build's environment:
// []string{"GOARCH=arm64", "CGO_ENABLED=0"} builds an executable for
// another machine. Each env, pkg and flags is built once.
func BuildBinaryEnv(t testing.TB, env []string, pkg string, flags ...string) string {
	t.Helper()
	builds.mu.Lock()
	dir := builds.dir
	key := strings.Join(append(append(slices.Clone(env), pkg), flags...), " ")
	b := builds.done[key]
	if b == nil || dir == "" {
		b = new(build)
		if dir != "" {
			if builds.done == nil {
				builds.done = map[string]*build{}
			}
			builds.done[key] = b
		}
	}
	builds.mu.Unlock()
	if dir == "" {
		dir = t.TempDir()
	}
	b.once.Do(func() {
		// One file per build, so that two builds of a command differ.
		out, err := os.MkdirTemp(dir, filepath.Base(pkg))
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(out, filepath.Base(pkg))
		args := append(append([]string{"build"}, flags...), "-o", b.path, pkg)
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), env...)
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("%s go %s: %v\n%s", strings.Join(env, " "), strings.Join(args, " "), err, msg)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// Eventually calls f until it returns nil, every 20 ms, for at most
// timeout, and returns nil or f's last error. It is for conditions no event
// announces (a process listening, a state an API reports); where an event
// exists, wait for it instead.
func Eventually(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("not within %v: %w", timeout, err)
		}
		time.Sleep(20 * time.Millisecond) // a poll interval: no event exists for f's condition
	}
}

// WaitFor is Eventually that fails the test, with f's last error, when f
// never returns nil within timeout.
func WaitFor(t testing.TB, timeout time.Duration, f func() error) {
	t.Helper()
	if err := Eventually(timeout, f); err != nil {
		t.Fatal(err)
	}
}

// NeedCommand returns the path of the third-party command name (looked up
// in PATH, then in /usr/sbin and /sbin, where Debian puts daemons and ip).
// When it is missing, the test fails under CI and is skipped elsewhere (see
// Missing), with the line that installs aptPackage.
func NeedCommand(t testing.TB, name, aptPackage string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p, err := exec.LookPath(filepath.Join(dir, name)); err == nil {
			return p
		}
	}
	Missing(t, fmt.Sprintf("%s not found; install it with\napt-get install -y %s", name, aptPackage))
	return ""
}

// Missing reports that something the test needs is not on this machine:
// under CI (CI=true), where .ci/run must have provided it, it fails the
// test; elsewhere it skips it. why says what is missing and how to get it.
func Missing(t testing.TB, why string) {
	t.Helper()
	if inCI() {
		t.Fatal(why + "\n(CI=true: .ci/run must provide it)")
	}
	t.Skip(why)
}

// inCI reports whether the tests run under CI (the environment has
// CI=true, as .ci/run's runner sets it).
func inCI() bool { return os.Getenv("CI") == "true" }

// Until adapts a condition to WaitFor and Eventually: while cond is false,
// the error says what is awaited.
func Until(what string, cond func() bool) func() error {
	return func() error {
		if cond() {
			return nil
		}
		return errors.New("still waiting for " + what)
	}
}
