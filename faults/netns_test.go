package faults

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"switchyard/internal/testutil"
)

// TestBoardCutOffByNetwork puts a board in a network namespace of its own,
// joined to the host by a veth pair, then takes the link down: the board
// must show offline within 1.5 x keepalive, and come back by itself when
// the link is up again. It needs root and ip netns: CI runs as root and
// fails without them; elsewhere it is skipped, and
// TestFrozenBoardGoesOfflineAndReturns covers the same with SIGSTOP.
func TestBoardCutOffByNetwork(t *testing.T) {
	ipBin := testutil.NeedCommand(t, "ip", "iproute2")
	if os.Geteuid() != 0 {
		testutil.Missing(t, "network namespaces need root")
	}
	suffix := fmt.Sprint(os.Getpid() % 10000)
	ns, host, peer := "sy-ns"+suffix, "sy-h"+suffix, "sy-b"+suffix
	ip := func(args ...string) error {
		out, err := exec.Command(ipBin, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := ip("netns", "add", ns); err != nil {
		testutil.Missing(t, fmt.Sprintf("network namespaces unavailable here: %v", err))
	}
	t.Cleanup(func() { ip("link", "del", host); ip("netns", "del", ns) })
	const hostIP, boardIP = "10.213.77.1", "10.213.77.2"
	for _, args := range [][]string{
		{"link", "add", host, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", ns},
		{"addr", "add", hostIP + "/30", "dev", host},
		{"link", "set", host, "up"},
		{"netns", "exec", ns, "ip", "addr", "add", boardIP + "/30", "dev", peer},
		{"netns", "exec", ns, "ip", "link", "set", peer, "up"},
		{"netns", "exec", ns, "ip", "link", "set", "lo", "up"},
	} {
		if err := ip(args...); err != nil {
			t.Fatal(err)
		}
	}

	dir := t.TempDir()
	c := &cp{t: t, cfg: filepath.Join(dir, "config.yaml"), mqttPort: testutil.FreePort(t), httpPort: testutil.FreePort(t)}
	// The board is not on loopback: anonymous access must be on for it.
	os.WriteFile(c.cfg, []byte(fmt.Sprintf("mqtt: {listen: '%s:%s'}\nhttp: {listen: '127.0.0.1:%s'}\nauth: {anonymous: 'on'}\n",
		hostIP, c.mqttPort, c.httpPort)), 0o644)
	c.start()

	board := exec.Command(ipBin, "netns", "exec", ns, testutil.BuildBinary(t, devicefwPkg), "--broker", "tcp://"+hostIP+":"+c.mqttPort,
		"--id", "netb", "--keepalive", "2s")
	if err := board.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { board.Process.Signal(syscall.SIGKILL); board.Wait() })
	c.waitFor("board online through the veth", 20*time.Second, online(1))

	if err := ip("link", "set", host, "down"); err != nil {
		t.Fatal(err)
	}
	took := c.waitFor("cut-off board offline", 10*time.Second, func(ds []device) bool { return len(ds) == 1 && !ds[0].Online })
	t.Logf("board cut off: offline after %v (keepalive 2 s)", took.Round(10*time.Millisecond))
	if took > 4*time.Second {
		t.Errorf("offline after %v, want within 1.5 x keepalive (3 s), plus 1 s for polling on a busy machine", took)
	}
	if err := ip("link", "set", host, "up"); err != nil {
		t.Fatal(err)
	}
	took = c.waitFor("healed board online", 45*time.Second, online(1))
	t.Logf("link healed: board online again after %v", took.Round(10*time.Millisecond))
}
