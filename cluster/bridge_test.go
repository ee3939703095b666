package cluster

import (
	"fmt"
	"slices"
	"testing"

	"switchyard/internal/testutil"
)

// TestMosquittoBridge runs a fleet and a control plane on each of two
// Mosquittos, the second bridging the board topics both ways to the
// first: both control planes see every board, a toggle from either
// reaches a board on the other side, and a late client of either broker
// gets every board's retained state.
func TestMosquittoBridge(t *testing.T) {
	br := testutil.StartMosquittoBridge(t, "devices/#")
	sides := []*testutil.Mosquitto{br.A, br.B}
	var cps []*controlPlane
	for i, m := range sides {
		cps = append(cps, startControlPlane(t, "", externalConfig(m.URL, fmt.Sprintf("cp-%c", 'a'+i), "127.0.0.1:0", "")))
	}
	for _, cp := range cps {
		cp.waitHealth(t, 200)
	}
	var ids []string
	for i, m := range sides {
		_, fleet := startFleet(t, fmt.Sprintf("side%c", 'a'+i), 4, m.URL)
		ids = append(ids, fleet...)
	}
	slices.Sort(ids)
	before := agree(t, cps, ids, onlineWithLED)

	// Control plane a commands a board of side b, and b one of side a.
	want := map[string]string{}
	for i, cp := range cps {
		id := fmt.Sprintf("side%c-1", 'a'+(i+1)%2)
		if code, err := cp.command(id, "toggle"); err != nil || code != 202 {
			t.Fatalf("toggle %s on control plane %d: %d %v, want 202", id, i, code, err)
		}
		want[id] = map[string]string{"ON": "OFF", "OFF": "ON"}[before[id].led()]
	}
	now := agree(t, cps, ids, func(d device) error {
		if err := onlineWithLED(d); err != nil {
			return err
		}
		if w, ok := want[d.ID]; ok && d.led() != w {
			return fmt.Errorf("led %s after the toggle, want %s", d.led(), w)
		}
		return nil
	})
	for _, m := range sides {
		late := retained(t, m.URL, 2*len(ids), "devices/+/status", "devices/+/led")
		for _, id := range ids {
			if late["devices/"+id+"/status"] != "online" || late["devices/"+id+"/led"] != now[id].led() {
				t.Errorf("late joiner on %s: %s status %q led %q, want online and %s", m.URL, id,
					late["devices/"+id+"/status"], late["devices/"+id+"/led"], now[id].led())
			}
		}
	}
}
