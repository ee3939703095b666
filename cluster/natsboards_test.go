package cluster

import (
	"flag"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"switchyard/devices"
	"switchyard/internal/testutil"
)

// failoverBoards is the number of simulated boards of TestNatsBoardFailover
// and BenchmarkNatsBoardFailover, a third of them on each node.
var failoverBoards = flag.Int("failover-boards", 30, "simulated boards of the NATS board failover test and benchmark")

// TestNatsBoardFailover runs simulated boards spread over a three-node
// NATS cluster (three fleets, each with the list of URLs starting at
// another node), kills the node of the first fleet, and waits until every
// board is back as an MQTT client on a surviving node sees it: a board of
// the killed node has said `online` again and counted after that, every
// other board has counted since the kill. Then a late joiner on the other
// surviving node still finds every board's retained status `online`. It
// logs how long it took and where a failed-over board's time went.
func TestNatsBoardFailover(t *testing.T) {
	c := testutil.StartNatsCluster(t)
	r := boardFailover(t, c, (*failoverBoards+2)/3)
	t.Logf("%d boards, node %s killed: every board back after %v; %s", r.boards, c.Name(0), r.allBack.Round(10*time.Millisecond), r.phases)
}

// BenchmarkNatsBoardFailover is TestNatsBoardFailover for several NATS
// MQTT settings, reporting the seconds until every board is back (one
// failover per iteration, each on a new cluster: run it with
// -benchtime 1x -count 3 and take the median). The first setting is
// testutil.NatsMQTT, what the tests and deploy/cluster use.
func BenchmarkNatsBoardFailover(b *testing.B) {
	for _, s := range []struct{ name, mqtt string }{
		{"kept", testutil.NatsMQTT},
		{"replicas_only", "stream_replicas: 3"},
		{"consumer_memory", "stream_replicas: 3, consumer_memory_storage: true"},
		{"js_api_2s", "stream_replicas: 3, js_api_timeout: 2s"},
	} {
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				c := testutil.StartNatsClusterMQTT(b, s.mqtt)
				r := boardFailover(b, c, (*failoverBoards+2)/3)
				b.ReportMetric(r.allBack.Seconds(), "s_all_back")
				b.Logf("%s (%s): %d boards back after %v; %s", s.name, s.mqtt, r.boards, r.allBack.Round(10*time.Millisecond), r.phases)
			}
		})
	}
}

// failoverResult is what boardFailover measured.
type failoverResult struct {
	boards  int
	allBack time.Duration // from the kill until the last board was back
	phases  string        // where the failed-over boards' time went
}

// boardFailover starts three fleets of perFleet boards on c, fleet i on a
// list starting at node i, kills node 0 and waits until every board is
// back (see TestNatsBoardFailover); it fails the test when one is not
// back within failover or a late joiner misses a retained status.
func boardFailover(t testing.TB, c *testutil.NatsCluster, perFleet int) failoverResult {
	t.Helper()
	topics := devices.MustTopics(devices.DefaultPrefix)
	obs := observe(t, c.URL(1), topics.BoardFilter())
	var ids []string
	fleets := make([]*testutil.Process, c.Len())
	killedIDs := map[string]bool{}
	for i := range c.Len() {
		p, fleet := startFleet(t, fmt.Sprintf("f%d", i+1), perFleet, c.URLs(i))
		fleets[i] = p
		ids = append(ids, fleet...)
		if i == 0 {
			for _, id := range fleet {
				killedIDs[id] = true
			}
		}
	}
	slices.Sort(ids)
	// Every board counts, as the observer sees it, before the kill.
	obs.until(t, wait, func(s *boardSeen) bool { return len(s.counted) == len(ids) })
	// No board connects to a node other than the first of its list before.
	for id := range killedIDs {
		if !strings.Contains(fleets[0].Log(), `msg=online id=`+id+` broker=`+c.URL(0)) {
			t.Fatalf("%s is not online on node %s before the kill:\n%s", id, c.Name(0), fleets[0].Log())
		}
	}

	obs.reset()
	killed := time.Now()
	c.Kill(0)
	var last time.Time
	obs.until(t, failover, func(s *boardSeen) bool {
		for _, id := range ids {
			at, ok := s.counted[id]
			if killedIDs[id] {
				at, ok = s.countedAfterOnline[id]
			}
			if !ok {
				return false
			}
			if at.After(last) {
				last = at
			}
		}
		return true
	})
	res := failoverResult{boards: len(ids), allBack: last.Sub(killed)}
	res.phases = phases(fleets[0].Log(), killed)
	// The retained state stayed: a late joiner on the other surviving node
	// finds every board online (once the killed node is back, when the
	// survivor's retained copy followed a consumer on it: natsLateJoiner).
	var bad string
	natsLateJoiner(t, c, 2, 0, len(ids), func(late map[string]string) error {
		for _, id := range ids {
			if got := late[topics.Status(id)]; got != devices.Online {
				bad = id
				return fmt.Errorf("late joiner on %s: %s status %q, want online", c.Name(2), id, got)
			}
		}
		return nil
	}, func() string {
		// What the other surviving node holds and what the board did.
		other := retained(t, c.URL(1), len(ids), topics.Status("+"))
		var lines []string
		for i, p := range fleets {
			for _, l := range strings.Split(p.Log(), "\n") {
				if strings.Contains(l, "id="+bad+" ") || strings.HasSuffix(l, "id="+bad) {
					lines = append(lines, fmt.Sprintf("fleet %d: %s", i+1, l))
				}
			}
		}
		return fmt.Sprintf("on %s: %q; the observer on %s saw %s; %s's log:\n%s", c.Name(1), other[topics.Status(bad)],
			c.Name(1), obs.statusOf(bad), bad, strings.Join(lines, "\n"))
	}, topics.Status("+"))
	return res
}

// boardSeen is what an observer saw of the boards since its last reset,
// with the time it received each.
type boardSeen struct {
	counted            map[string]time.Time // the first count
	online             map[string]time.Time // the first live (not retained) online status
	countedAfterOnline map[string]time.Time // the first count after online
}

// observer is an MQTT client that watches every board's status and count.
type observer struct {
	topics devices.Topics
	msgs   chan paho.Message
	at     chan time.Time // the receive time of each of msgs
	seen   boardSeen
	status map[string][]string // every status each board had, in order (not reset)
}

// observe connects an observer to the broker at url and subscribes to
// filter at QoS 0 (a plain NATS subscription on a NATS node, independent
// of JetStream); it disconnects when the test ends.
func observe(t testing.TB, url, filter string) *observer {
	t.Helper()
	o := &observer{topics: devices.MustTopics(devices.DefaultPrefix), msgs: make(chan paho.Message, 1<<16), at: make(chan time.Time, 1<<16), status: map[string][]string{}}
	o.reset()
	cl := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetProtocolVersion(4).
		SetClientID(fmt.Sprintf("observer-%d", time.Now().UnixNano())).
		SetConnectTimeout(5 * time.Second).SetAutoReconnect(false).SetOrderMatters(true))
	if tok := cl.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("observer: connect to %s: %v", url, tok.Error())
	}
	t.Cleanup(func() { cl.Disconnect(0) })
	tok := cl.Subscribe(filter, 0, func(_ paho.Client, m paho.Message) {
		o.at <- time.Now()
		o.msgs <- m
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("observer: subscribe %s at %s: %v", filter, url, tok.Error())
	}
	return o
}

// reset forgets what the observer saw.
func (o *observer) reset() {
	o.seen = boardSeen{counted: map[string]time.Time{}, online: map[string]time.Time{}, countedAfterOnline: map[string]time.Time{}}
}

// until takes in messages until done holds for what was seen, and fails
// the test when it does not within timeout.
func (o *observer) until(t testing.TB, timeout time.Duration, done func(*boardSeen) bool) {
	t.Helper()
	deadline := time.After(timeout)
	for !done(&o.seen) {
		select {
		case at := <-o.at:
			o.add(<-o.msgs, at)
		case <-deadline:
			t.Fatalf("not every board back after %v: %d counted, %d said online", timeout, len(o.seen.counted), len(o.seen.online))
		}
	}
}

// statusOf takes in what has arrived and returns every status of board id
// seen so far, for a failure message.
func (o *observer) statusOf(id string) string {
	for {
		select {
		case at := <-o.at:
			o.add(<-o.msgs, at)
		default:
			return strings.Join(o.status[id], ", ")
		}
	}
}

func (o *observer) add(m paho.Message, at time.Time) {
	id, kind, ok := o.topics.Parse(m.Topic())
	if !ok {
		return
	}
	if kind == devices.KindStatus {
		s := fmt.Sprintf("%s at %s", m.Payload(), at.Format("15:04:05.000"))
		if m.Retained() {
			s += " (retained)"
		}
		o.status[id] = append(o.status[id], s)
	}
	switch {
	case kind == devices.KindStatus && !m.Retained() && string(m.Payload()) == devices.Online:
		if _, ok := o.seen.online[id]; !ok {
			o.seen.online[id] = at
		}
	case kind == devices.KindCount:
		if _, ok := o.seen.counted[id]; !ok {
			o.seen.counted[id] = at
		}
		if _, ok := o.seen.online[id]; ok {
			if _, ok := o.seen.countedAfterOnline[id]; !ok {
				o.seen.countedAfterOnline[id] = at
			}
		}
	}
}

// logLine is the time, message and id of a devicefw log line.
var logLine = regexp.MustCompile(`^time=(\S+) level=\S+ msg=("[^"]*"|\S+) id=(\S+)(?: err="((?:[^"\\]|\\.)*)")?`)

// phases tells where the time of the boards whose lines are in log went
// after the kill: when they saw the connection lost, when they were online
// again, and the failed attempts in between.
func phases(log string, killed time.Time) string {
	lines := strings.Split(log, "\n")
	lost, online := map[string]time.Time{}, map[string]time.Time{}
	attempts := map[string]int{}
	errs := map[string]int{}
	for _, l := range lines {
		m := logLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil || at.Before(killed.Truncate(time.Millisecond)) {
			continue
		}
		id, msg := m[3], strings.Trim(m[2], `"`)
		switch {
		case strings.HasPrefix(msg, "mqtt connection down"):
			if _, ok := lost[id]; !ok {
				lost[id] = at
			} else {
				attempts[id]++
				errs[errClass(m[4])]++
			}
		case msg == "online":
			if _, ok := online[id]; !ok {
				online[id] = at
			}
		case msg == "no update jobs":
			errs[msg+": "+errClass(m[4])]++
		}
	}
	var toLost, toOnline []time.Duration
	failed := 0
	for id, at := range online {
		if l, ok := lost[id]; ok {
			toLost = append(toLost, l.Sub(killed))
			toOnline = append(toOnline, at.Sub(l))
			failed += attempts[id]
		}
	}
	var classes []string
	for e, n := range errs {
		classes = append(classes, fmt.Sprintf("%d× %s", n, e))
	}
	sort.Strings(classes)
	return fmt.Sprintf("failed-over boards: loss seen %s after the kill, online again %s after that; %d failed attempts [%s]",
		spread(toLost), spread(toOnline), failed, strings.Join(classes, "; "))
}

// errClass is an error with the numbers (ports, ids) taken out, to count
// alike errors together.
func errClass(err string) string {
	return regexp.MustCompile(`[0-9]+`).ReplaceAllString(err, "N")
}

// spread is "median m, max x" of ds.
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "(none)"
	}
	slices.Sort(ds)
	return fmt.Sprintf("median %v max %v", ds[len(ds)/2].Round(10*time.Millisecond), ds[len(ds)-1].Round(10*time.Millisecond))
}
