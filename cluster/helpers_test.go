package cluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"switchyard/internal/testutil"
)

// wait bounds every wait for the system to settle; failover bounds the
// wait for every board and control plane to be back after a broker node
// died (the contract's 30 s for a board, and time for a loaded machine).
const (
	wait     = 30 * time.Second
	failover = 60 * time.Second
)

func TestMain(m *testing.M) { os.Exit(testutil.Run(m)) }

// controlPlane is a controlplane process in external broker mode.
type controlPlane struct {
	*testutil.ControlPlane
	url string // http://127.0.0.1:port
}

// externalConfig is a control plane's config.yaml in external mode, with
// more YAML (an auth block, say) appended.
func externalConfig(brokers, clientID, httpListen, more string) string {
	return fmt.Sprintf("mqtt: {mode: external, url: %q, client_id: %q}\nhttp: {listen: %q}\nlog: {level: debug}\n%s",
		brokers, clientID, httpListen, more)
}

// startControlPlane writes config (see externalConfig) into dir (a
// temporary directory when empty) and starts the controlplane on it.
func startControlPlane(t *testing.T, dir, config string) *controlPlane {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := testutil.BuildBinary(t, "switchyard/cmd/controlplane", "-race")
	cp, err := testutil.StartControlPlane(t, exec.Command(bin, "--config", path), wait)
	if err != nil {
		t.Fatal(err)
	}
	return &controlPlane{ControlPlane: cp, url: "http://" + cp.HTTPAddr}
}

// healthz is the status of GET /healthz, 0 when it does not answer.
func (cp *controlPlane) healthz() int {
	resp, err := http.Get(cp.url + "/healthz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitHealth waits until /healthz answers want.
func (cp *controlPlane) waitHealth(t *testing.T, want int) {
	t.Helper()
	testutil.WaitFor(t, wait, func() error {
		if got := cp.healthz(); got != want {
			return fmt.Errorf("%s/healthz answers %d, want %d", cp.url, got, want)
		}
		return nil
	})
}

// device is a board as GET /api/devices shows it.
type device struct {
	ID     string  `json:"id"`
	Online bool    `json:"online"`
	LED    *string `json:"led"`
	Count  *int64  `json:"count"`
}

func (d device) led() string {
	if d.LED == nil {
		return "?"
	}
	return *d.LED
}

func (d device) count() int64 {
	if d.Count == nil {
		return -1
	}
	return *d.Count
}

// devices is GET /api/devices, by id.
func (cp *controlPlane) devices() (map[string]device, error) {
	resp, err := http.Get(cp.url + "/api/devices")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s/api/devices: %s", cp.url, resp.Status)
	}
	var list []device
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("GET %s/api/devices: %w", cp.url, err)
	}
	m := make(map[string]device, len(list))
	for _, d := range list {
		m[d.ID] = d
	}
	return m, nil
}

// command is POST /api/devices/<id>/led with action; it returns the status.
func (cp *controlPlane) command(id, action string) (int, error) {
	resp, err := http.Post(cp.url+"/api/devices/"+id+"/led", "application/json", strings.NewReader(`{"action":"`+action+`"}`))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// agree waits until every control plane lists exactly the boards ids,
// each satisfying cond, and all of them show every board online or
// offline and its LED alike: the dashboards agree. It returns the last
// view of the first control plane.
func agree(t *testing.T, cps []*controlPlane, ids []string, cond func(device) error) map[string]device {
	t.Helper()
	return agreeWithin(t, wait, cps, ids, cond)
}

// agreeWithin is agree, waiting at most timeout.
func agreeWithin(t *testing.T, timeout time.Duration, cps []*controlPlane, ids []string, cond func(device) error) map[string]device {
	t.Helper()
	var first map[string]device
	testutil.WaitFor(t, timeout, func() error {
		for i, cp := range cps {
			got, err := cp.devices()
			if err != nil {
				return err
			}
			if len(got) != len(ids) {
				return fmt.Errorf("control plane %d lists %d boards, want %d", i, len(got), len(ids))
			}
			for _, id := range ids {
				d, ok := got[id]
				if !ok {
					return fmt.Errorf("control plane %d does not list %s", i, id)
				}
				if err := cond(d); err != nil {
					return fmt.Errorf("control plane %d: %s: %w", i, id, err)
				}
				if i > 0 && (first[id].Online != d.Online || first[id].led() != d.led()) {
					return fmt.Errorf("control planes 0 and %d disagree on %s: online %v/%v, led %s/%s",
						i, id, first[id].Online, d.Online, first[id].led(), d.led())
				}
			}
			if i == 0 {
				first = got
			}
		}
		return nil
	})
	return first
}

// onlineWithLED is a condition for agree: the board is online and its LED
// is known.
func onlineWithLED(d device) error {
	if !d.Online || d.LED == nil {
		return fmt.Errorf("online %v, led %s; want online with a known led", d.Online, d.led())
	}
	return nil
}

// fleetReady is the line devicefw logs when a board is online.
var fleetReady = regexp.MustCompile(`msg=online`)

// startFleet runs devicefw --sim n with ids <prefix>-1 … <prefix>-n
// against brokers (one URL or a comma-separated list) and returns the ids.
// It is ready once its first board is online.
func startFleet(t testing.TB, prefix string, n int, brokers string) (*testutil.Process, []string) {
	t.Helper()
	bin := testutil.BuildBinary(t, "switchyard/cmd/devicefw", "-race")
	cmd := exec.Command(bin, "--sim", fmt.Sprint(n), "--id", prefix, "--broker", brokers,
		"--keepalive", "5s", "--interval", "1s")
	p, _, err := testutil.Start(t, cmd, fleetReady, wait)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%s-%d", prefix, i+1)
	}
	return p, ids
}

// retained connects to the MQTT broker at url as a new client and returns
// the retained messages it receives for filters (QoS 0: from a NATS node's
// own copy, without a JetStream consumer), by topic, once it has want of
// them; it fails the test when they do not all come within wait.
func retained(t testing.TB, url string, want int, filters ...string) map[string]string {
	t.Helper()
	got := map[string]string{}
	testutil.WaitFor(t, wait, func() error {
		msgs := make(chan paho.Message, 4*want)
		c, err := connectPaho(url, "late-joiner")
		if err != nil {
			return err
		}
		defer c.Disconnect(0)
		subs := map[string]byte{}
		for _, f := range filters {
			subs[f] = 0
		}
		tok := c.SubscribeMultiple(subs, func(_ paho.Client, m paho.Message) {
			if m.Retained() {
				msgs <- m
			}
		})
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return fmt.Errorf("subscribe at %s: %v", url, tok.Error())
		}
		clear(got)
		deadline := time.After(5 * time.Second)
		for len(got) < want {
			select {
			case m := <-msgs:
				got[m.Topic()] = string(m.Payload())
			case <-deadline:
				return fmt.Errorf("retained at %s: %d of %d messages", url, len(got), want)
			}
		}
		return nil
	})
	return got
}

// natsLateJoiner reads the retained messages of c's node at node (see
// retained), after node killed was killed, until check accepts them, for
// at most wait (a board answers a Will the cluster stored late only at its
// status recheck, board.recheckTicks). When they do not settle and the
// node no longer hears the retained-message stream (retainedFeed, from the
// other surviving node), that is nats-server's limitation, not the
// boards': the test logs it, restarts the killed node and wants check to
// hold within wait after that. It returns whether it restarted the killed
// node; diag, when set, adds to the failure message.
func natsLateJoiner(t testing.TB, c *testutil.NatsCluster, node, killed, want int, check func(map[string]string) error, diag func() string, filters ...string) (restarted bool) {
	t.Helper()
	settle := func() error {
		return testutil.Eventually(wait, func() error { return check(retained(t, c.URL(node), want, filters...)) })
	}
	fail := func(msg string) {
		t.Helper()
		if diag != nil {
			msg += "\n" + diag()
		}
		t.Fatal(msg)
	}
	err := settle()
	if err == nil {
		return false
	}
	other := 3 - node - killed // the other surviving node of three
	feed := retainedFeed(t, c.URL(other), c.URL(node))
	if feed == nil {
		fail(fmt.Sprintf("%v (and %s hears the retained-message stream)", err, c.Name(node)))
	}
	t.Logf("%v; %s no longer hears the retained-message stream (%v). nats-server keeps each node's copy of the retained messages current through an ephemeral JetStream consumer of one replica on a node it picks, here the killed %s: restarting it",
		err, c.Name(node), feed, c.Name(killed))
	c.Restart(killed)
	if err := settle(); err != nil {
		fail(fmt.Sprintf("after %s was restarted: %v", c.Name(killed), err))
	}
	return true
}

// connectPaho connects a plain MQTT 3.1.1 client (a fresh id starting
// with name, no reconnects) to the broker at url; the caller disconnects it.
func connectPaho(url, name string) (paho.Client, error) {
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetProtocolVersion(4).
		SetClientID(fmt.Sprintf("%s-%d", name, time.Now().UnixNano())).
		SetConnectTimeout(5 * time.Second).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("connect to %s: %v", url, tok.Error())
	}
	return c, nil
}

// retainedFeed publishes a retained message on a fresh topic at the node
// at from and reports whether a client of the node at to receives it
// retained within 10 s: whether to still hears the retained-message stream.
// (nats-server keeps each node's copy of the retained messages current
// through one ephemeral JetStream consumer of one replica, on a node it
// picks: when that node dies, the copy stops changing until it is back,
// and a subscriber there gets what the copy cached, up to two minutes old.)
func retainedFeed(t testing.TB, from, to string) error {
	t.Helper()
	topic := fmt.Sprintf("switchyard-test/feed/%d", time.Now().UnixNano())
	pub, err := connectPaho(from, "feed-pub")
	if err != nil {
		return err
	}
	defer pub.Disconnect(0)
	if tok := pub.Publish(topic, 1, true, "x"); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("publish at %s: %v", from, tok.Error())
	}
	defer func() { // the stream forgets it, before the Disconnect deferred above
		pub.Publish(topic, 1, true, "").WaitTimeout(10 * time.Second)
	}()
	return testutil.Eventually(10*time.Second, func() error {
		c, err := connectPaho(to, "feed-sub")
		if err != nil {
			return err
		}
		defer c.Disconnect(0)
		msgs := make(chan struct{}, 1)
		tok := c.Subscribe(topic, 0, func(_ paho.Client, m paho.Message) {
			if m.Retained() {
				select {
				case msgs <- struct{}{}:
				default:
				}
			}
		})
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return fmt.Errorf("subscribe at %s: %v", to, tok.Error())
		}
		select {
		case <-msgs:
			return nil
		case <-time.After(time.Second):
			return fmt.Errorf("a retained message published at %s did not reach a subscriber at %s", from, to)
		}
	})
}
