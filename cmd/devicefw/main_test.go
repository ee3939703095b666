package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"switchyard/board/boardtest"
	"switchyard/devices"
	"switchyard/internal/testutil"
)

var topics = devices.MustTopics("")

// envOf returns a lookupEnv reading only m.
func envOf(m map[string]string) lookupEnv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestInvalidFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // the one line on stderr contains this
	}{
		{"bad id", []string{"--id", "a/b"}, nil, `--id: invalid device id "a/b"`},
		{"bad id from env", nil, map[string]string{"DEVICEFW_ID": "#"}, `DEVICEFW_ID: invalid device id "#"`},
		{"zero interval from env", nil, map[string]string{"DEVICEFW_INTERVAL": "0s"}, "DEVICEFW_INTERVAL: 0s is not positive"},
		{"env overridden by a bad flag", []string{"--interval", "0s"}, map[string]string{"DEVICEFW_INTERVAL": "1s"}, "--interval: 0s is not positive"},
		{"bool flag still takes no value", []string{"--active-low", "--interval", "0s"}, nil, "--interval: 0s is not positive"},
		{"check timeout from env", []string{"check", "--id", "a"}, map[string]string{"DEVICEFW_TIMEOUT": "0s"}, "DEVICEFW_TIMEOUT: 0s is not positive"},
		{"sim ids too long", []string{"--id", strings.Repeat("x", 62), "--sim", "10"}, nil, "with --sim 10: invalid device id"},
		{"negative sim", []string{"--sim", "-1"}, nil, "--sim: -1 is negative"},
		{"bad scheme", []string{"--broker", "http://localhost:1883"}, nil, "scheme must be tcp://, ssl://, ws:// or wss://"},
		{"no scheme", []string{"--broker", "localhost:1883"}, nil, "scheme must be"},
		{"zero interval", []string{"--interval", "0s"}, nil, "--interval: 0s is not positive"},
		{"negative interval", []string{"--interval", "-1s"}, nil, "--interval: -1s is not positive"},
		{"interval from env", nil, map[string]string{"DEVICEFW_INTERVAL": "soon"}, `DEVICEFW_INTERVAL: invalid value "soon"`},
		{"short keepalive", []string{"--keepalive", "500ms"}, nil, "--keepalive"},
		{"bad prefix", []string{"--prefix", "a/+"}, nil, "--prefix: invalid topic prefix"},
		{"bad led", []string{"--led", "gpio:17"}, nil, "invalid --led"},
		{"bad led from env", nil, map[string]string{"DEVICEFW_LED": "blinkenlights"}, `DEVICEFW_LED "blinkenlights"`},
		{"unknown led", []string{"--led", "blinkenlights"}, nil, "--led"},
		{"gpio with sim", []string{"--led", "gpio:GPIO17", "--sim", "2"}, nil, "simulated boards have memory LEDs"},
		{"unknown flag", []string{"--colour", "red"}, nil, "flag provided but not defined: -colour"},
		{"stray argument", []string{"extra"}, nil, `unexpected argument "extra"`},
		{"bad update key", []string{"--update-key", "abcd"}, nil, `--update-key: update key "abcd" is 3 bytes`},
		{"update key file from env", nil, map[string]string{"DEVICEFW_UPDATE_KEY": "@/nonexistent/key"}, "DEVICEFW_UPDATE_KEY: read update key: open /nonexistent/key"},
		{"zero trial", []string{"--update-trial", "0s"}, nil, "--update-trial: 0s is not positive"},
		{"deadline within the trial", []string{"--update-trial", "10s", "--update-deadline", "10s"}, nil, "--update-deadline: 10s must exceed --update-trial 10s"},
		{"deadline from env", nil, map[string]string{"DEVICEFW_UPDATE_DEADLINE": "30s"}, "DEVICEFW_UPDATE_DEADLINE: 30s must exceed --update-trial 1m0s"},
		{"unknown fail mode", []string{"--sim", "1", "--sim-update-fail", "explode"}, nil, `--sim-update-fail: "explode" is not a fail mode`},
		{"fail mode without sim", []string{"--sim-update-fail", "start"}, nil, "--sim-update-fail: only simulated boards fail on purpose"},
		{"check bad id", []string{"check", "--id", "a b"}, nil, `devicefw check: invalid device id "a b"`},
		{"check bad timeout", []string{"check", "--id", "a", "--timeout", "0s"}, nil, "--timeout"},
		{"check bad broker", []string{"check", "--id", "a", "--broker", "ftp://x"}, nil, "scheme must be"},
		{"bad URL in a list", []string{"--broker", "tcp://a:1883, http://b:1883 ,tcp://c:1883"}, nil, `--broker: invalid broker URL "http://b:1883": scheme must be`},
		{"bad URL in a list from env", nil, map[string]string{"DEVICEFW_BROKER": "tcp://a:1883,tcp://"}, `DEVICEFW_BROKER: invalid broker URL "tcp:": no host`},
		{"empty URL in a list", []string{"--broker", "tcp://u:hunter2@a:1883,,tcp://b:1883"}, nil, `--broker: empty URL in the list "tcp://u:xxxxx@a:1883,,tcp://b:1883"`},
		{"password in a bad URL of a list", []string{"--broker", "tcp://a:1883,ftp://u:hunter2@b"}, nil, `"ftp://u:xxxxx@b"`},
		{"check bad URL in a list", []string{"check", "--id", "a", "--broker", "tcp://a:1883,ftp://x"}, nil, `--broker: invalid broker URL "ftp://x"`},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tt.args, envOf(tt.env), &stdout, &stderr)
		lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
		if code != 1 || len(lines) != 1 || !strings.Contains(lines[0], tt.want) || strings.Contains(lines[0], "hunter2") || stdout.Len() != 0 {
			t.Errorf("%s: got exit %d, stderr %q, stdout %q; want exit 1 and one line containing %q",
				tt.name, code, stderr.String(), stdout.String(), tt.want)
		}
	}
}

// TestUnusableStateDir: with an update key, a state directory that cannot
// be made is one clear line and exit 1 (without a key the board runs on,
// refusing updates).
func TestUnusableStateDir(t *testing.T) {
	br := boardtest.Start(t)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), boardtest.Wait)
	defer cancel()
	var stdout, stderr bytes.Buffer
	args := []string{"--broker", br.URL, "--id", "sd", "--state-dir", filepath.Join(file, "state"),
		"--update-key", base64.StdEncoding.EncodeToString(make([]byte, 32))}
	code := run(ctx, args, envOf(nil), &stdout, &stderr)
	lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
	if code != 1 || len(lines) != 1 || !strings.HasPrefix(lines[0], "devicefw: --state-dir "+filepath.Join(file, "state")+": state directory:") {
		t.Errorf("got exit %d, stderr %q; want exit 1 and one line naming --state-dir", code, stderr.String())
	}
}

func TestVersionAndHelp(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-h"}, {"check", "-h"}} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, envOf(nil), &stdout, &stderr); code != 0 || stdout.Len() == 0 {
			t.Errorf("%v: got exit %d, stdout %q; want exit 0 and output", args, code, stdout.String())
		}
	}
}

// startRun runs devicefw in this process until the test ends or stop is
// called; stop returns the exit status.
func startRun(t *testing.T, args []string, env map[string]string, stderr io.Writer) (stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, envOf(env), io.Discard, stderr) }() // ends when ctx is cancelled
	var once sync.Once
	code := -1
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(30 * time.Second):
				t.Error("devicefw did not stop")
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return stop
}

// awaitStatus waits until every id in ids has published status want.
func awaitStatus(t *testing.T, c <-chan boardtest.Msg, ids map[string]bool, want string, within time.Duration) {
	t.Helper()
	left := map[string]bool{}
	for id := range ids {
		left[id] = true
	}
	deadline := time.After(within)
	for len(left) > 0 {
		select {
		case m := <-c:
			id, kind, ok := topics.Parse(m.Topic)
			if ok && kind == devices.KindStatus && m.Payload == want {
				delete(left, id)
			}
		case <-deadline:
			t.Fatalf("%d of %d boards not %s within %s", len(left), len(ids), want, within)
		}
	}
}

func simIDs(prefix string, n int) map[string]bool {
	ids := map[string]bool{}
	for i := 1; i <= n; i++ {
		ids[simID(prefix, i)] = true
	}
	return ids
}

func TestSimBoards(t *testing.T) {
	br := boardtest.Start(t)
	obs := boardtest.Observe(t, br.URL, topics.AllFilter())
	// Settings from the environment; the command line wins.
	env := map[string]string{"DEVICEFW_BROKER": br.URL, "DEVICEFW_ID": "sim", "DEVICEFW_SIM": "5"}
	var stderr testutil.Buffer
	stop := startRun(t, []string{"--sim", "3", "--interval", "50ms"}, env, &stderr)
	ids := simIDs("sim", 3)
	awaitStatus(t, obs.C, ids, devices.Online, boardtest.Wait)

	// Each board is its own MQTT client, its client id its device id.
	clients := map[string]bool{}
	for id, cl := range br.Server.Clients.GetAll() {
		if !cl.Closed() && strings.HasPrefix(id, "sim-") {
			clients[id] = true
		}
	}
	if fmt.Sprint(clients) != fmt.Sprint(ids) {
		t.Errorf("connected clients: got %v, want %v", clients, ids)
	}

	obs.Publish(t, topics.LEDSet("sim-2"), "toggle", false)
	obs.Expect(t, topics.LED("sim-2"), "ON")

	if code := stop(); code != 0 {
		t.Fatalf("exit status: got %d, want 0; stderr:\n%s", code, stderr.String())
	}
	awaitStatus(t, obs.C, ids, devices.Offline, boardtest.Wait)
}

// TestSimBoardsFailOver runs simulated boards on a list of two brokers
// (with spaces) and closes the first: every board comes back on the
// second, and says which broker it is on.
func TestSimBoardsFailOver(t *testing.T) {
	br1, br2 := boardtest.Start(t), boardtest.Start(t)
	// Watch before the boards publish: see boardtest's gate.
	counts1 := br1.Watch(t, topics.Topic("+", devices.KindCount))
	counts2 := br2.Watch(t, topics.Topic("+", devices.KindCount))
	var stderr testutil.Buffer
	stop := startRun(t, []string{"--broker", br1.URL + " , " + br2.URL, "--id", "fo", "--sim", "3", "--interval", "50ms"}, nil, &stderr)
	ids := simIDs("fo", 3)
	// A board counts once its resync is done (and logged).
	awaitCounts := func(c <-chan boardtest.Msg, broker string) {
		left := maps.Clone(ids)
		for len(left) > 0 {
			m := testutil.Recv(t, c, boardtest.Wait, "a count on "+broker)
			id, _, _ := topics.Parse(m.Topic)
			delete(left, id)
		}
	}
	awaitCounts(counts1, "the first broker")
	br1.Close()
	awaitCounts(counts2, "the second broker")
	if code := stop(); code != 0 {
		t.Fatalf("exit status: got %d, want 0; stderr:\n%s", code, stderr.String())
	}
	for id := range ids {
		for _, url := range []string{br1.URL, br2.URL} {
			if want := fmt.Sprintf("msg=online id=%s broker=%s", id, url); !strings.Contains(stderr.String(), want) {
				t.Errorf("log: no line with %q in\n%s", want, stderr.String())
			}
		}
	}
}

func TestThousandSimBoards(t *testing.T) {
	const n = 1000
	br := boardtest.Start(t)
	statuses := br.Watch(t, topics.Topic("+", devices.KindStatus))
	start := time.Now()
	stop := startRun(t, []string{"--broker", br.URL, "--id", "k", "--sim", fmt.Sprint(n)}, nil, io.Discard)
	ids := simIDs("k", n)
	awaitStatus(t, statuses, ids, devices.Online, 60*time.Second)
	t.Logf("%d boards online in %s", n, time.Since(start).Round(time.Millisecond))
	if code := stop(); code != 0 {
		t.Fatalf("exit status: got %d, want 0", code)
	}
	awaitStatus(t, statuses, ids, devices.Offline, 30*time.Second)
}

func TestCheckCommand(t *testing.T) {
	br := boardtest.Start(t)
	// Subscribe before the board publishes: see boardtest's gate.
	obs := boardtest.Observe(t, br.URL, topics.LED("live"))
	boardtest.RunBoard(t, boardtest.PahoSession(t, br.URL), "live")
	obs.Expect(t, topics.LED("live"), "OFF")
	tests := []struct {
		id       string
		wantCode int
		wantOut  string
	}{
		{"live", 0, waitingLine("200ms", "live", br.URL) +
			"PASS status-online\nPASS led-retained\nPASS info-fields\nPASS count-rising\n" +
			"PASS toggle-answered\nPASS on-confirmed\nPASS off-confirmed\n"},
		{"ghost", 1, waitingLine("200ms", "ghost", br.URL) + "FAIL status-online: no retained status within 200ms"},
	}
	// Given a list, check uses the first broker that answers.
	list := "tcp://127.0.0.1:" + testutil.FreePort(t) + "," + br.URL
	tests = append(tests, struct {
		id       string
		wantCode int
		wantOut  string
	}{"live", 0, waitingLine("200ms", "live", list) + "PASS status-online\n"})
	for i, tt := range tests {
		broker := br.URL
		if i == len(tests)-1 {
			broker = list
		}
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"check", "--broker", broker, "--id", tt.id, "--timeout", "200ms"},
			envOf(nil), &stdout, &stderr)
		if code != tt.wantCode || !strings.HasPrefix(stdout.String(), tt.wantOut) {
			t.Errorf("check %s: got exit %d, output\n%s\nwant exit %d, output starting\n%s", tt.id, code, stdout.String(), tt.wantCode, tt.wantOut)
		}
	}
}

// waitingLine is the line `devicefw check` prints before it waits.
func waitingLine(timeout, id, broker string) string {
	return fmt.Sprintf("waiting up to %s for board %s on %s (status online on %s)\n", timeout, id, broker, topics.Status(id))
}

// TestMain lets the tests share one devicefw binary (testutil.Run).
func TestMain(m *testing.M) { os.Exit(testutil.Run(m)) }

// buildDevicefw returns the devicefw binary, built once for all the tests.
func buildDevicefw(t *testing.T) string {
	t.Helper()
	return testutil.BuildBinary(t, "switchyard/cmd/devicefw")
}

// TestCheckSaysWhatItWaitsFor runs `devicefw check` for a board that does
// not exist, with a timeout far longer than the test: the line saying what
// it waits for must come at once, not when the timeout ends.
func TestCheckSaysWhatItWaitsFor(t *testing.T) {
	bin := buildDevicefw(t)
	br := boardtest.Start(t)
	cmd := exec.Command(bin, "check", "--broker", br.URL, "--id", "nobody", "--timeout", "1h")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr testutil.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() { // ends at the end of stdout, when the process exits
		defer close(lines)
		for sc := bufio.NewScanner(stdout); sc.Scan(); {
			lines <- sc.Text()
		}
	}()
	defer func() {
		_ = cmd.Process.Kill() // no-op once it has exited
		for range lines {
		}
		_ = cmd.Wait()
	}()

	want := strings.TrimSuffix(waitingLine("1h0m0s", "nobody", br.URL), "\n")
	select {
	case got, ok := <-lines:
		if !ok || got != want {
			t.Fatalf("first line: got %q (open %v), want %q; stderr:\n%s", got, ok, want, stderr.String())
		}
	case <-time.After(boardtest.Wait):
		t.Fatalf("no line within %s; want %q", boardtest.Wait, want)
	}

	// It is still waiting: an interrupt ends the check, which fails.
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-lines:
		// The interrupt may land while it connects or while it waits.
		if !strings.HasPrefix(got, "FAIL status-online: ") || !strings.HasSuffix(got, "context canceled") {
			t.Errorf(`line after the interrupt: got %q, want "FAIL status-online: ...context canceled"`, got)
		}
	case <-time.After(boardtest.Wait):
		t.Fatalf("no line within %s of the interrupt", boardtest.Wait)
	}
	for range lines {
	}
	_ = cmd.Wait()
	if got := cmd.ProcessState.ExitCode(); got != 1 {
		t.Errorf("exit status: got %d, want 1; stderr:\n%s", got, stderr.String())
	}
}

// TestProcess builds devicefw and checks what only a process shows:
// SIGTERM says offline and exits 0; SIGKILL leaves it to the Will.
func TestProcess(t *testing.T) {
	bin := buildDevicefw(t)
	br := boardtest.Start(t)
	obs := boardtest.Observe(t, br.URL, topics.AllFilter())
	for _, tt := range []struct {
		sig      syscall.Signal
		wantCode int
	}{{syscall.SIGTERM, 0}, {syscall.SIGINT, 0}, {syscall.SIGKILL, -1}} {
		prefix := strings.ToLower(strings.ReplaceAll(tt.sig.String(), " ", "-"))
		cmd := exec.Command(bin, "--sim", "2")
		cmd.Env = append(os.Environ(), "DEVICEFW_BROKER="+br.URL, "DEVICEFW_ID="+prefix)
		var stderr testutil.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ids := simIDs(prefix, 2)
		awaitStatus(t, obs.C, ids, devices.Online, boardtest.Wait)
		if err := cmd.Process.Signal(tt.sig); err != nil {
			t.Fatal(err)
		}
		awaitStatus(t, obs.C, ids, devices.Offline, boardtest.Wait)
		_ = cmd.Wait()
		if got := cmd.ProcessState.ExitCode(); got != tt.wantCode {
			t.Errorf("%s: exit status: got %d, want %d; stderr:\n%s", tt.sig, got, tt.wantCode, stderr.String())
		}
	}
}
