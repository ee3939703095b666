package testutil

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Mosquitto is Debian's mosquitto broker on a free loopback port, anyone
// allowed, run by StartMosquitto until the test ends.
type Mosquitto struct {
	Port   string // on 127.0.0.1
	URL    string // tcp://127.0.0.1:Port
	WSPort string // StartMosquittoWS's websockets listener, on 127.0.0.1

	t    testing.TB
	bin  string
	conf string
	cmd  *exec.Cmd // the last one started
}

// StartMosquitto runs mosquitto (see NeedCommand) and waits until it
// listens. With persist, it saves its retained messages when stopped and
// loads them when started again, as a deployed broker does; without, a
// restart forgets them.
func StartMosquitto(t testing.TB, persist bool) *Mosquitto {
	t.Helper()
	return startMosquitto(t, persist, "")
}

// StartMosquittoWS is StartMosquitto (not persisting) with a websockets
// listener too, on WSPort, as browsers speaking MQTT reach a broker.
func StartMosquittoWS(t testing.TB) *Mosquitto {
	t.Helper()
	ws := FreePort(t)
	m := startMosquitto(t, false, fmt.Sprintf("listener %s 127.0.0.1\nprotocol websockets\n", ws))
	m.WSPort = ws
	waitListening(t, ws)
	return m
}

// startMosquitto is StartMosquitto with extra appended to the
// configuration (a bridge, say).
func startMosquitto(t testing.TB, persist bool, extra string) *Mosquitto {
	t.Helper()
	m := &Mosquitto{t: t, bin: NeedCommand(t, "mosquitto", "mosquitto"), Port: FreePort(t)}
	m.URL = "tcp://127.0.0.1:" + m.Port
	dir := t.TempDir()
	m.conf = filepath.Join(dir, "mosquitto.conf")
	conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\n", m.Port)
	if os.Geteuid() == 0 {
		// As root, mosquitto switches to user mosquitto, which cannot
		// write its persistence file into the test's directory.
		conf += "user root\n"
	}
	if persist {
		conf += fmt.Sprintf("persistence true\npersistence_location %s/\n", dir)
	}
	conf += extra
	if err := os.WriteFile(m.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	m.Start()
	return m
}

// Start starts mosquitto again after Stop, on the same port, and waits
// until it listens.
func (m *Mosquitto) Start() {
	m.t.Helper()
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	if err := m.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	cmd := m.cmd
	m.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	waitListening(m.t, m.Port)
}

// waitListening waits until mosquitto listens on 127.0.0.1:port (no event
// tells when it does).
func waitListening(t testing.TB, port string) {
	t.Helper()
	WaitFor(t, 10*time.Second, func() error {
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// Stop ends mosquitto with SIGTERM, as a service manager does (it saves
// its retained messages then, when it persists them), and waits for it.
func (m *Mosquitto) Stop() {
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	_ = m.cmd.Wait()
}

// Pause stops mosquitto with SIGSTOP, a broker that hangs: its
// connections stay open and nothing is answered. Resume continues it.
func (m *Mosquitto) Pause() { _ = m.cmd.Process.Signal(syscall.SIGSTOP) }

// Pid is the process id of the mosquitto started last.
func (m *Mosquitto) Pid() int { return m.cmd.Process.Pid }

// Resume continues mosquitto after Pause.
func (m *Mosquitto) Resume() { _ = m.cmd.Process.Signal(syscall.SIGCONT) }
