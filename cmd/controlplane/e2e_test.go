package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"switchyard/internal/testutil"
)

// These tests run the real controlplane binary on free loopback ports and
// talk to it the way users and third-party tools do: mosquitto_pub and
// mosquitto_sub, a WebSocket browser, curl-like HTTP.

const wait = 10 * time.Second

func TestMain(m *testing.M) { os.Exit(testutil.Run(m)) }

// binary is the controlplane built from this package, with -race, once for
// all the tests.
func binary(t *testing.T) string {
	t.Helper()
	return testutil.BuildBinary(t, "switchyard/cmd/controlplane", "-race")
}

// mqttTool returns the path of mosquitto_pub or mosquitto_sub (see
// testutil.NeedCommand).
func mqttTool(t *testing.T, name string) string {
	t.Helper()
	return testutil.NeedCommand(t, name, "mosquitto-clients")
}

// proc is a running controlplane.
type proc struct {
	t        *testing.T
	p        *testutil.ControlPlane
	mqttPort string
	http     string // http://127.0.0.1:port
}

func start(t *testing.T, configPath string, env ...string) *proc {
	t.Helper()
	return startCmd(t, exec.Command(binary(t), "--config", configPath), env...)
}

// startCmd is start with the command given (to run the binary under a
// shell that limits it, say).
func startCmd(t *testing.T, cmd *exec.Cmd, env ...string) *proc {
	t.Helper()
	cmd.Env = append(os.Environ(), env...)
	cp, err := testutil.StartControlPlane(t, cmd, wait)
	if err != nil {
		t.Fatal(err)
	}
	_, mqttPort, _ := net.SplitHostPort(cp.MQTTAddr) // none in external mode
	return &proc{t: t, p: cp, mqttPort: mqttPort, http: "http://" + cp.HTTPAddr}
}

// logs returns the last lines the controlplane logged.
func (p *proc) logs() string { return p.p.Log() }

// stop sends SIGTERM and checks a clean exit within 5 s.
func (p *proc) stop() {
	p.t.Helper()
	if err := p.p.Stop(5 * time.Second); err != nil {
		p.t.Fatalf("stop: %v, want exit status 0", err)
	}
}

func (p *proc) mosquitto(t *testing.T, name string, args ...string) *exec.Cmd {
	return exec.Command(mqttTool(t, name), append([]string{"-h", "127.0.0.1", "-p", p.mqttPort}, args...)...)
}

func (p *proc) pub(t *testing.T, args ...string) {
	t.Helper()
	if out, err := p.mosquitto(t, "mosquitto_pub", append(args, "-q", "1")...).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub %v: %v %s", args, err, out)
	}
}

// sub starts mosquitto_sub -v on topic, waits until it is subscribed, and
// returns its output lines.
func (p *proc) sub(t *testing.T, topic string, extra ...string) <-chan string {
	t.Helper()
	if len(extra) > 0 { // e.g. -C 1: it must see only what the test expects
		return p.startSub(t, append([]string{"-v", "-t", topic}, extra...))
	}
	// The marker is a command to a board that does not exist: it passes
	// anonymous rights and never makes a device known.
	ready := fmt.Sprintf("devices/test-ready-%d/led/set", time.Now().UnixNano())
	lines := p.startSub(t, []string{"-v", "-t", topic, "-t", ready})
	// Nothing tells when mosquitto_sub has subscribed: publish a marker
	// until it comes back.
	testutil.WaitFor(t, wait, func() error {
		p.pub(t, "-t", ready, "-m", "x")
		select {
		case l := <-lines:
			if l == ready+" x" {
				return nil
			}
		case <-time.After(100 * time.Millisecond):
		}
		return fmt.Errorf("mosquitto_sub on %s: no marker back", topic)
	})
	return lines
}

func (p *proc) startSub(t *testing.T, args []string) <-chan string {
	t.Helper()
	cmd := p.mosquitto(t, "mosquitto_sub", args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1000)
	go func() { // ends when mosquitto_sub exits (killed at cleanup)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return lines
}

func expectLine(t *testing.T, lines <-chan string, want string) {
	t.Helper()
	deadline := time.After(wait)
	var seen []string
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("mosquitto_sub ended before %q (saw %q)", want, seen)
			}
			if l == want {
				return
			}
			seen = append(seen, l)
		case <-deadline:
			t.Fatalf("mosquitto_sub: no %q (saw %q)", want, seen)
		}
	}
}

type device struct {
	ID       string  `json:"id"`
	Online   bool    `json:"online"`
	LED      *string `json:"led"`
	Count    *int64  `json:"count"`
	LastSeen *string `json:"last_seen"`
}

// waitDevice polls the API until cond holds (there is no event for "the
// gateway has applied it").
func (p *proc) waitDevice(t *testing.T, id string, cond func(device) bool) device {
	t.Helper()
	var d device
	testutil.WaitFor(t, wait, func() error {
		resp, err := http.Get(p.http + "/api/devices/" + id)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET /api/devices/%s: %s", id, resp.Status)
		}
		if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
			return err
		}
		if !cond(d) {
			return fmt.Errorf("device %s not in the wanted state: %+v", id, d)
		}
		return nil
	})
	return d
}

func testConfig(t *testing.T, storage string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	body := fmt.Sprintf("mqtt: {listen: '127.0.0.1:0'}\nhttp: {listen: '127.0.0.1:0'}\nstorage: {path: %q}\nlog: {level: debug}\n", storage)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEndToEnd is the "done when": a board simulated with plain
// mosquitto_pub appears on the dashboard's WebSocket and the API, a toggle
// from a browser reaches led/set, the board's reply reaches every browser,
// and a restart keeps the LED state and shows the board offline.
func TestEndToEnd(t *testing.T) {
	storage := filepath.Join(t.TempDir(), "data", "retained.log")
	cfgPath := testConfig(t, storage)
	p := start(t, cfgPath)
	all := p.sub(t, "devices/#")

	p.pub(t, "-t", "devices/b1/status", "-m", "online", "-r")
	p.pub(t, "-t", "devices/b1/led", "-m", "OFF", "-r")
	p.pub(t, "-t", "devices/b1/count", "-m", "7")
	d := p.waitDevice(t, "b1", func(d device) bool { return d.Count != nil && *d.Count == 7 })
	if !d.Online || d.LED == nil || *d.LED != "OFF" || d.LastSeen == nil {
		t.Errorf("API device = %+v", d)
	}
	expectLine(t, all, "devices/b1/count 7")

	wsURL := "ws" + strings.TrimPrefix(p.http, "http") + "/ws"
	var browsers []*websocket.Conn
	for range 2 {
		c, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		browsers = append(browsers, c)
		waitEvent(t, c, `{"device":"b1","label":"ledStatus","value":"LED OFF"}`)
	}
	if err := browsers[0].WriteMessage(websocket.TextMessage, []byte(`{"device":"b1","action":"toggle"}`)); err != nil {
		t.Fatal(err)
	}
	expectLine(t, all, "devices/b1/led/set TOGGLE")
	p.pub(t, "-t", "devices/b1/led", "-m", "ON", "-r") // the board confirms
	for _, c := range browsers {
		waitEvent(t, c, `{"device":"b1","label":"ledStatus","value":"LED ON"}`)
	}

	p.stop()
	for _, c := range browsers {
		_ = c.SetReadDeadline(time.Now().Add(wait))
		var err error
		for err == nil {
			_, _, err = c.ReadMessage()
		}
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Errorf("browser at shutdown: %v, want close 1001", err)
		}
	}

	p2 := start(t, cfgPath)
	d = p2.waitDevice(t, "b1", func(device) bool { return true })
	if d.Online || d.LED == nil || *d.LED != "ON" {
		t.Errorf("after restart = %+v, want offline with LED ON", d)
	}
	status := p2.sub(t, "devices/b1/status", "-C", "1")
	expectLine(t, status, "devices/b1/status offline")
	p2.stop()
}

// waitEvent reads frames (objects or arrays) until one carries want.
func waitEvent(t *testing.T, c *websocket.Conn, want string) {
	t.Helper()
	var w map[string]any
	json.Unmarshal([]byte(want), &w)
	deadline := time.Now().Add(wait)
	for {
		_ = c.SetReadDeadline(deadline)
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for %s: %v", want, err)
		}
		var evs []map[string]any
		if len(data) > 0 && data[0] == '[' {
			json.Unmarshal(data, &evs)
		} else {
			var e map[string]any
			json.Unmarshal(data, &e)
			evs = append(evs, e)
		}
		for _, e := range evs {
			if fmt.Sprint(e) == fmt.Sprint(w) {
				return
			}
		}
	}
}

// TestStopRightAfterServing: a SIGTERM sent the moment the "serving" line
// is out shuts down cleanly with status 0 (it once killed the process: the
// signal handler came after that line).
func TestStopRightAfterServing(t *testing.T) {
	cfgPath := testConfig(t, filepath.Join(t.TempDir(), "retained.log"))
	for range 3 {
		start(t, cfgPath).stop()
	}
}

func TestBadStartExitsWithOneLine(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	for _, tc := range []struct {
		name, config string
		env          []string
		want         string
	}{
		{"unknown key", "mqtt: {listen: '127.0.0.1:0', bogus: 1}", nil, `unknown key "mqtt.bogus"`},
		{"mqtt port in use", fmt.Sprintf("mqtt: {listen: %q}\nhttp: {listen: '127.0.0.1:0'}", busy.Addr()), nil, busy.Addr().String()},
		{"http port in use", fmt.Sprintf("mqtt: {listen: '127.0.0.1:0'}\nhttp: {listen: %q}", busy.Addr()), nil, busy.Addr().String()},
		{"bad env value", "mqtt: {listen: '127.0.0.1:0'}", []string{"CONTROLPLANE_LOG_LEVEL=chatty"}, "log.level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			os.WriteFile(cfg, []byte(tc.config), 0o644)
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			cmd := exec.CommandContext(ctx, binary(t), "--config", cfg)
			cmd.Env = append(os.Environ(), tc.env...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Fatalf("exit: %v, want status 1\n%s", err, stderr.String())
			}
			// The last line is the one that says why; earlier lines, if
			// any, are ordinary start-up logs.
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "controlplane: ") || !strings.Contains(last, tc.want) {
				t.Errorf("last line %q, want it to name %q", last, tc.want)
			}
		})
	}
	out, err := exec.Command(binary(t), "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "controlplane ") {
		t.Errorf("--version: %q, %v", out, err)
	}
}
