package faults

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"switchyard/internal/testutil"
)

func TestMain(m *testing.M) { os.Exit(testutil.Run(m)) }

// The commands under test are built once for all the tests.
const controlplanePkg, devicefwPkg = "switchyard/cmd/controlplane", "switchyard/cmd/devicefw"

// cp is a controlplane process on fixed ports, so it can be restarted where
// the boards look for it.
type cp struct {
	t                  *testing.T
	cfg                string
	mqttPort, httpPort string
	proc               *testutil.ControlPlane // the last one started
}

func newCP(t *testing.T) *cp {
	dir := t.TempDir()
	c := &cp{t: t, cfg: filepath.Join(dir, "config.yaml"), mqttPort: testutil.FreePort(t), httpPort: testutil.FreePort(t)}
	os.WriteFile(c.cfg, []byte(fmt.Sprintf("mqtt: {listen: '127.0.0.1:%s'}\nhttp: {listen: '127.0.0.1:%s'}\nstorage: {path: %q}\n",
		c.mqttPort, c.httpPort, filepath.Join(dir, "data", "retained.log"))), 0o644)
	return c
}

// start runs the controlplane and waits until it serves. The process is
// killed at the end of the test, and its log shown if the test failed.
func (c *cp) start() {
	c.t.Helper()
	var err error
	c.proc, err = testutil.StartControlPlane(c.t, exec.Command(testutil.BuildBinary(c.t, controlplanePkg), "--config", c.cfg), 20*time.Second)
	if err != nil {
		c.t.Fatal(err)
	}
}

func (c *cp) url(path string) string { return "http://127.0.0.1:" + c.httpPort + path }

type device struct {
	ID     string  `json:"id"`
	Online bool    `json:"online"`
	LED    *string `json:"led"`
}

func (c *cp) devices() []device {
	resp, err := http.Get(c.url("/api/devices"))
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var ds []device
	json.NewDecoder(resp.Body).Decode(&ds)
	return ds
}

// waitFor polls the API until cond holds, and returns how long that took:
// there is no event for "every board is back".
func (c *cp) waitFor(what string, within time.Duration, cond func([]device) bool) time.Duration {
	c.t.Helper()
	start := time.Now()
	testutil.WaitFor(c.t, within, func() error {
		ds := c.devices()
		if ds != nil && cond(ds) {
			return nil
		}
		on := 0
		for _, d := range ds {
			if d.Online {
				on++
			}
		}
		return fmt.Errorf("%s: %d devices, %d online", what, len(ds), on)
	})
	return time.Since(start)
}

func online(n int) func([]device) bool {
	return func(ds []device) bool {
		k := 0
		for _, d := range ds {
			if d.Online {
				k++
			}
		}
		return len(ds) == n && k == n
	}
}

// boards runs devicefw --sim n against the control plane.
func boards(t *testing.T, c *cp, n int, extra ...string) *exec.Cmd {
	t.Helper()
	args := append([]string{"--broker", "tcp://127.0.0.1:" + c.mqttPort, "--id", "sim", "--sim", fmt.Sprint(n)}, extra...)
	cmd := exec.Command(testutil.BuildBinary(t, devicefwPkg), args...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGCONT)
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

func post(t *testing.T, url, body string) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestKill9UnderTrafficKeepsState: boards counting and toggled, the control
// plane killed with SIGKILL, restarted: the retained LED states are intact,
// every board shows offline at first, then is back online by itself.
func TestKill9UnderTrafficKeepsState(t *testing.T) {
	const n = 20
	c := newCP(t)
	c.start()
	boards(t, c, n, "--interval", "100ms", "--keepalive", "2s")
	c.waitFor("all boards online", 30*time.Second, online(n))
	// Switch half of them on and wait for every confirmation.
	for i := 1; i <= n; i += 2 {
		if code := post(t, c.url(fmt.Sprintf("/api/devices/sim-%d/led", i)), `{"action":"on"}`); code != 202 {
			t.Fatalf("command to sim-%d: %d", i, code)
		}
	}
	ledOf := func(ds []device) map[string]string {
		m := map[string]string{}
		for _, d := range ds {
			if d.LED != nil {
				m[d.ID] = *d.LED
			}
		}
		return m
	}
	c.waitFor("LEDs confirmed", 10*time.Second, func(ds []device) bool {
		on := 0
		for _, v := range ledOf(ds) {
			if v == "ON" {
				on++
			}
		}
		return on == n/2
	})
	before := ledOf(c.devices())

	c.proc.Kill()
	c.start()
	var ds []device
	c.waitFor("stored boards loaded", 10*time.Second, func(got []device) bool { ds = got; return len(got) == n })
	if got := ledOf(ds); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("LED states after kill -9 and restart:\n got %v\nwant %v", got, before)
	}
	took := c.waitFor("every board back online", 40*time.Second, online(n))
	t.Logf("kill -9: %d boards, states intact, all back online %v after the restart", n, took.Round(10*time.Millisecond))
	if strings.Contains(c.proc.Log(), "level=ERROR") {
		t.Errorf("errors in the log after the restart")
	}
}

// TestFrozenBoardGoesOfflineAndReturns: a board process frozen with
// SIGSTOP (its TCP connection stays up but silent) is offline within 1.5 x
// keepalive, and online again when thawed.
func TestFrozenBoardGoesOfflineAndReturns(t *testing.T) {
	c := newCP(t)
	c.start()
	b := boards(t, c, 1, "--keepalive", "2s")
	c.waitFor("board online", 20*time.Second, online(1))
	b.Process.Signal(syscall.SIGSTOP)
	took := c.waitFor("frozen board offline", 10*time.Second, func(ds []device) bool { return len(ds) == 1 && !ds[0].Online })
	t.Logf("frozen board offline after %v (keepalive 2s, 1.5x = 3s)", took.Round(10*time.Millisecond))
	if took > 4*time.Second {
		t.Errorf("offline after %v, want within 1.5 x keepalive (3 s), plus 1 s for polling on a busy machine", took)
	}
	b.Process.Signal(syscall.SIGCONT)
	took = c.waitFor("thawed board online", 40*time.Second, online(1))
	t.Logf("thawed board online again after %v", took.Round(10*time.Millisecond))
}

// TestBrokerRestartWithManyBoards: the control plane restarted under a
// fleet; every board comes back and no two connections fight over an id.
func TestBrokerRestartWithManyBoards(t *testing.T) {
	n := 300
	if os.Getenv("FAULTS_BOARDS") != "" {
		fmt.Sscan(os.Getenv("FAULTS_BOARDS"), &n)
	}
	c := newCP(t)
	c.start()
	boards(t, c, n, "--keepalive", "5s")
	c.waitFor("fleet online", 60*time.Second, online(n))
	c.proc.Signal(syscall.SIGTERM)
	<-c.proc.Exited()
	c.start()
	took := c.waitFor("fleet back online", 60*time.Second, online(n))
	t.Logf("broker restart: %d boards back online after %v", n, took.Round(10*time.Millisecond))
	// No duplicate client ids fighting: the connected client count settles
	// at n and stays there while every board stays online.
	settle := time.Now().Add(3 * time.Second)
	for time.Now().Before(settle) {
		resp, err := http.Get(c.url("/metrics"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`(?m)^switchyard_mqtt_clients_connected (\d+)`).FindSubmatch(body)
		if m == nil || string(m[1]) != fmt.Sprint(n) {
			t.Fatalf("MQTT clients connected = %s, want %d", m, n)
		}
		if ds := c.devices(); !online(n)(ds) {
			t.Fatal("a board dropped offline after the fleet came back")
		}
		time.Sleep(250 * time.Millisecond) // a sampling period over the settle time, not a synchronisation
	}
}
