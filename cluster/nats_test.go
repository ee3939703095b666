package cluster

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"switchyard/internal/testutil"
)

// TestNatsCluster runs three control planes and three fleets of simulated
// boards against a three-node NATS cluster, each control plane and fleet
// starting at a different node of its list, and then kills one node,
// restarts it, and kills two.
//
// The contract gives a board 30 s to be back on another node; the test
// waits up to failover for every board to count again on every control
// plane (a busy test machine slows NATS's elections down) and logs how
// long it took.
func TestNatsCluster(t *testing.T) {
	c := testutil.StartNatsCluster(t)
	const perFleet = 8
	var cps []*controlPlane
	var ids []string
	for i := range c.Len() {
		cps = append(cps, startControlPlane(t, "", externalConfig(c.URLs(i), fmt.Sprintf("cp%d", i+1), "127.0.0.1:0", "")))
	}
	for _, cp := range cps {
		cp.waitHealth(t, 200)
	}
	for i := range c.Len() {
		_, fleet := startFleet(t, fmt.Sprintf("f%d", i+1), perFleet, c.URLs(i))
		ids = append(ids, fleet...)
	}
	slices.Sort(ids)
	agree(t, cps, ids, onlineWithLED)
	// Each starts at the first node of its list.
	for i, cp := range cps {
		if !regexp.MustCompile(`"connected to the external broker".* url=` + regexp.QuoteMeta(c.URL(i)) + `\b`).MatchString(cp.Log()) {
			t.Errorf("control plane %d is not on node %s first", i, c.Name(i))
		}
	}

	// Each step builds on the one before: stop at the first that fails.
	restarted := false // node 1, by the late joiner of "kill one node"
	if !t.Run("kill one node", func(t *testing.T) {
		before := agree(t, cps, ids, onlineWithLED)
		killed := time.Now()
		c.Kill(0)
		// Every board keeps (or resumes) counting on every dashboard: the
		// boards of node 1 have failed over, and so has control plane 1.
		agreeWithin(t, failover, cps, ids, func(d device) error {
			if err := onlineWithLED(d); err != nil {
				return err
			}
			if d.count() < before[d.ID].count()+2 {
				return fmt.Errorf("count %d, want at least %d", d.count(), before[d.ID].count()+2)
			}
			if d.led() != before[d.ID].led() {
				return fmt.Errorf("led %s, was %s before the kill", d.led(), before[d.ID].led())
			}
			return nil
		})
		t.Logf("node %s killed: every board online and counting on all %d control planes after %v",
			c.Name(0), len(cps), time.Since(killed).Round(100*time.Millisecond))
		// Healthy again once its probe came back: a control plane may show
		// every board counting a moment before (its probe takes a round
		// trip through the node, which may still be electing leaders).
		for _, cp := range cps {
			cp.waitHealth(t, 200)
		}
		if !strings.Contains(cps[0].Log(), "external broker connection lost") {
			t.Errorf("control plane 1 did not log losing its node")
		}
		// A late joiner on another node sees every board's retained state
		// (see natsLateJoiner for when node 1 has to be back first).
		restarted = natsLateJoiner(t, c, 2, 0, 2*len(ids), func(late map[string]string) error {
			for _, id := range ids {
				if late["devices/"+id+"/status"] != "online" || late["devices/"+id+"/led"] != before[id].led() {
					return fmt.Errorf("late joiner on %s: %s status %q led %q, want online and %s", c.Name(2), id,
						late["devices/"+id+"/status"], late["devices/"+id+"/led"], before[id].led())
				}
			}
			return nil
		}, nil, "devices/+/status", "devices/+/led")
		// A command from any control plane reaches a board of any fleet,
		// the failed-over one included, and every dashboard shows it.
		want := map[string]string{}
		for i, cp := range cps {
			id := fmt.Sprintf("f%d-%d", (i+2)%len(cps)+1, i+1)
			if code, err := cp.command(id, "toggle"); err != nil || code != 202 {
				t.Fatalf("toggle %s on control plane %d: %d %v, want 202", id, i, code, err)
			}
			want[id] = map[string]string{"ON": "OFF", "OFF": "ON"}[before[id].led()]
		}
		agree(t, cps, ids, func(d device) error {
			if w, ok := want[d.ID]; ok && d.led() != w {
				return fmt.Errorf("led %s after the toggle, want %s", d.led(), w)
			}
			return nil
		})
	}) {
		return
	}

	if !t.Run("restart it", func(t *testing.T) {
		now := agree(t, cps, ids, onlineWithLED)
		if !restarted {
			c.Restart(0)
		}
		late := retained(t, c.URL(0), 2*len(ids), "devices/+/status", "devices/+/led")
		for _, id := range ids {
			if late["devices/"+id+"/status"] != "online" || late["devices/"+id+"/led"] != now[id].led() {
				t.Errorf("late joiner on the restarted %s: %s status %q led %q, want online and %s", c.Name(0), id,
					late["devices/"+id+"/status"], late["devices/"+id+"/led"], now[id].led())
			}
		}
	}) {
		return
	}

	t.Run("kill two nodes", func(t *testing.T) {
		c.Kill(0)
		c.Kill(1)
		// One node of three holds no JetStream quorum: no MQTT session
		// can be set up or looked up, so no control plane can work.
		for i, cp := range cps {
			cp.waitHealth(t, 503)
			testutil.WaitFor(t, wait, func() error { // the 503 may come first: the log line waits for a connect timeout
				if !strings.Contains(cp.Log(), "cannot connect to the external broker") {
					return fmt.Errorf("control plane %d answers 503 without saying why in its log", i)
				}
				return nil
			})
		}
	})
}
