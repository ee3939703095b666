package testutil

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
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
)

// natsModule is the module of nats-server, pinned by the tool line in
// go.mod; the binary is built from the version go.mod names.
const natsModule = "github.com/nats-io/nats-server/v2"

// natsReady is the line nats-server logs once it serves.
var natsReady = regexp.MustCompile(`Server is ready`)

// natsUp is how long a node may take to answer MQTT: JetStream must elect
// a meta leader and the MQTT streams' leaders first (about 6 s on a quiet
// machine, more on a busy one).
const natsUp = 60 * time.Second

// NatsCluster is three nats-server processes on loopback, routed to each
// other as one cluster, with JetStream and MQTT on (stream_replicas 3), as
// StartNatsCluster runs them until the test ends.
type NatsCluster struct {
	t     testing.TB
	bin   string
	nodes []*natsNode
}

// natsNode is one server of a NatsCluster.
type natsNode struct {
	name     string
	conf     string // its configuration file, kept for Restart
	mqttPort string
	proc     *Process // the last one started; nil before the first start
}

// NatsMQTT is the body of the mqtt block StartNatsCluster gives every
// node after its listen line: retained messages and sessions on all three
// nodes (the issue requires stream_replicas 3). deploy/cluster/
// nats-server.conf and deploy/cluster/lib.sh say the same.
const NatsMQTT = "stream_replicas: 3, js_api_timeout: 1s"

// StartNatsCluster builds nats-server once per machine (see
// NatsServerBinary), starts three nodes on free loopback ports, each with
// server_name n1, n2, n3, routes to the other two, JetStream (its store in
// a temporary directory) and MQTT configured with NatsMQTT, and waits until
// every node answers an MQTT CONNECT.
func StartNatsCluster(t testing.TB) *NatsCluster {
	t.Helper()
	return StartNatsClusterMQTT(t, NatsMQTT)
}

// StartNatsClusterMQTT is StartNatsCluster with mqtt as the body of every
// node's mqtt block instead of NatsMQTT (after its listen line; lines or
// fields separated by commas), to measure other settings.
func StartNatsClusterMQTT(t testing.TB, mqtt string) *NatsCluster {
	t.Helper()
	c := &NatsCluster{t: t, bin: NatsServerBinary(t)}
	dir := t.TempDir()
	const n = 3
	routes := make([]string, n)
	for i := range n {
		routes[i] = FreePort(t)
	}
	for i := range n {
		node := &natsNode{name: fmt.Sprintf("n%d", i+1), mqttPort: FreePort(t)}
		var others []string
		for j, p := range routes {
			if j != i {
				others = append(others, fmt.Sprintf("%q", "nats-route://127.0.0.1:"+p))
			}
		}
		conf := fmt.Sprintf(`server_name: %s
listen: "127.0.0.1:%s"
jetstream {
  store_dir: %q
  max_memory_store: 64MB
  max_file_store: 1GB
}
cluster {
  name: switchyard
  listen: "127.0.0.1:%s"
  routes: [%s]
}
mqtt {
  listen: "127.0.0.1:%s"
  %s
}
`, node.name, FreePort(t), filepath.Join(dir, node.name, "jetstream"), routes[i], strings.Join(others, ", "), node.mqttPort, mqtt)
		node.conf = filepath.Join(dir, node.name+".conf")
		if err := os.WriteFile(node.conf, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, node)
	}
	for i := range c.nodes {
		c.start(i)
	}
	for i := range c.nodes {
		c.waitMQTT(i)
	}
	return c
}

// start starts node i and waits until it logs that it serves.
func (c *NatsCluster) start(i int) {
	c.t.Helper()
	node := c.nodes[i]
	p, _, err := Start(c.t, exec.Command(c.bin, "-c", node.conf), natsReady, natsUp)
	if err != nil {
		c.t.Fatalf("nats node %s: %v", node.name, err)
	}
	node.proc = p
}

// waitMQTT waits until node i answers an MQTT CONNECT with a CONNACK that
// accepts it.
func (c *NatsCluster) waitMQTT(i int) {
	c.t.Helper()
	addr := "127.0.0.1:" + c.nodes[i].mqttPort
	// No event tells when JetStream has its leaders: ask until it answers.
	if err := Eventually(natsUp, func() error { return MQTTPing(addr, 2*time.Second) }); err != nil {
		c.t.Fatalf("nats node %s does not answer MQTT: %v\n%s", c.nodes[i].name, err, c.nodes[i].proc.Log())
	}
}

// Len is the number of nodes (3).
func (c *NatsCluster) Len() int { return len(c.nodes) }

// Name is node i's server_name.
func (c *NatsCluster) Name(i int) string { return c.nodes[i].name }

// Addr is node i's MQTT address, 127.0.0.1:port.
func (c *NatsCluster) Addr(i int) string { return "127.0.0.1:" + c.nodes[i].mqttPort }

// URL is node i's MQTT URL, tcp://127.0.0.1:port.
func (c *NatsCluster) URL(i int) string { return "tcp://" + c.Addr(i) }

// URLs is every node's MQTT URL, comma-separated, starting at node first
// and wrapping around: the list a client that should connect to node
// first, and fail over to the others, is given.
func (c *NatsCluster) URLs(first int) string {
	urls := make([]string, len(c.nodes))
	for k := range c.nodes {
		urls[k] = c.URL((first + k) % len(c.nodes))
	}
	return strings.Join(urls, ",")
}

// Kill kills node i with SIGKILL and waits until it has exited.
func (c *NatsCluster) Kill(i int) {
	c.nodes[i].proc.Kill()
}

// Restart starts node i again after Kill, on the same ports and with the
// same JetStream store, and waits until it answers MQTT.
func (c *NatsCluster) Restart(i int) {
	c.t.Helper()
	c.start(i)
	c.waitMQTT(i)
}

// Log is node i's last lines of log.
func (c *NatsCluster) Log(i int) string { return c.nodes[i].proc.Log() }

// MQTTPing opens a TCP connection to the MQTT broker at addr, sends a
// CONNECT (MQTT 3.1.1, clean session, a random client id) and returns nil
// when a CONNACK accepting it comes back within timeout, then disconnects.
// It tells that a broker answers, not only that it listens: a NATS node
// accepts TCP before JetStream can serve MQTT.
func MQTTPing(addr string, timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	id := fmt.Sprintf("testutil-ping-%016x", rand.Uint64())
	var body bytes.Buffer
	body.Write([]byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 30}) // level 4, clean session, keepalive 30 s
	body.Write([]byte{0, byte(len(id))})
	body.WriteString(id)
	pkt := append([]byte{0x10, byte(body.Len())}, body.Bytes()...) // under 128 bytes: one length byte
	if _, err := conn.Write(pkt); err != nil {
		return fmt.Errorf("mqtt connect to %s: %w", addr, err)
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(conn, ack); err != nil {
		return fmt.Errorf("mqtt connack from %s: %w", addr, err)
	}
	if ack[0] != 0x20 || ack[1] != 2 {
		return fmt.Errorf("mqtt connack from %s: unexpected packet % x", addr, ack)
	}
	if ack[3] != 0 {
		return fmt.Errorf("mqtt connack from %s: refused, return code %d", addr, ack[3])
	}
	_, _ = conn.Write([]byte{0xe0, 0}) // DISCONNECT, so no Will and no session is left
	return nil
}

// NatsServerBinary returns the path of nats-server at the version go.mod
// pins, built with go build once per machine into
// ${XDG_CACHE_HOME:-$HOME/.cache}/switchyard/nats-server-<version> and
// reused (a build takes about a minute). Parallel test processes wait for
// each other's build through a lock file; the binary appears under its
// final name only once complete.
func NatsServerBinary(t testing.TB) string {
	t.Helper()
	natsBuild.once.Do(func() { natsBuild.path, natsBuild.err = buildNatsServer() })
	if natsBuild.err != nil {
		t.Fatal(natsBuild.err)
	}
	return natsBuild.path
}

// natsBuild is NatsServerBinary's answer, found once per test process.
var natsBuild struct {
	once sync.Once
	path string
	err  error
}

func buildNatsServer() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", natsModule).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("version of %s (go.mod's tool line): %v: %s", natsModule, err, out)
	}
	version := strings.TrimSpace(string(out))
	cache, err := os.UserCacheDir() // $XDG_CACHE_HOME, else $HOME/.cache
	if err != nil {
		return "", fmt.Errorf("nats-server cache: %w", err)
	}
	dir := filepath.Join(cache, "switchyard")
	path := filepath.Join(dir, "nats-server-"+version)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("nats-server cache: %w", err)
	}
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("nats-server cache lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("nats-server cache lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(path); err == nil {
		return path, nil // another process built it while this one waited
	}
	tmp := fmt.Sprintf("%s.tmp%d", path, os.Getpid())
	defer os.Remove(tmp)
	if out, err := exec.Command("go", "build", "-o", tmp, natsModule).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", natsModule, err, out)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("nats-server cache: %w", err)
	}
	return path, nil
}
