package wsgateway_test

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"switchyard/devices"
	"switchyard/wsgateway"
)

type commandValue struct {
	ID      string `json:"id"`
	Command string `json:"command"`
	State   string `json:"state"`
}

func (b *browser) commandEvent(device, state string) commandValue {
	b.t.Helper()
	for {
		e := b.waitFor(device, "command", "")
		var v commandValue
		if err := json.Unmarshal(e.Value, &v); err != nil {
			b.t.Fatalf("command event %s: %v", e.Value, err)
		}
		if v.State == state {
			return v
		}
	}
}

func TestCommandTracking(t *testing.T) {
	h := newHarness(t, wsgateway.Config{CommandTimeout: 300 * time.Millisecond})
	b := h.onlineBoard("b1", "OFF")
	cmds := h.subscribe("devices/+/led/set")
	watcher, clicker := h.browser("/ws", nil), h.browser("/ws", nil)
	watcher.waitFor("b1", "ledStatus", "")
	clicker.waitFor("b1", "ledStatus", "")

	// Confirmed: pending, then applied when the board's led arrives.
	clicker.send(`{"device":"b1","action":"toggle"}`)
	pending := watcher.commandEvent("b1", "pending")
	if pending.Command != "TOGGLE" || pending.ID == "" {
		t.Errorf("pending = %+v", pending)
	}
	recvMQTT(t, cmds, "led/set")
	b.pub(devices.KindLED, "ON", true)
	if applied := watcher.commandEvent("b1", "applied"); applied.ID != pending.ID {
		t.Errorf("applied %s, want %s", applied.ID, pending.ID)
	}
	var got struct{ State, Device, Command string }
	if code := h.do("GET", "/api/commands/"+pending.ID, "", &got); code != 200 || got.State != "applied" || got.Device != "b1" {
		t.Errorf("GET /api/commands/%s = %d %+v", pending.ID, code, got)
	}

	// Unconfirmed: timeout.
	var accepted struct{ ID, State string }
	if code := h.do("POST", "/api/devices/b1/led", `{"action":"on"}`, &accepted); code != 202 || accepted.State != "pending" {
		t.Fatalf("POST = %d %+v", code, accepted)
	}
	if to := watcher.commandEvent("b1", "timeout"); to.ID != accepted.ID {
		t.Errorf("timeout for %s, want %s", to.ID, accepted.ID)
	}
	if h.do("GET", "/api/commands/"+accepted.ID, "", &got); got.State != "timeout" {
		t.Errorf("state after the timeout = %s", got.State)
	}
	if code := h.do("GET", "/api/commands/nope", "", nil); code != 404 {
		t.Errorf("unknown command = %d, want 404", code)
	}
}

func TestGroupCommands(t *testing.T) {
	h := newHarness(t, wsgateway.Config{Groups: map[string][]string{"kitchen": {"k2", "k1"}}})
	for _, id := range []string{"k1", "k2", "hall"} {
		h.board(id).online("OFF")
	}
	h.board("sleepy").pub(devices.KindStatus, "offline", true)
	for _, id := range []string{"k1", "k2", "hall"} {
		h.waitDevice(id, func(d apiDevice) bool { return d.Online })
	}
	h.waitDevice("sleepy", func(apiDevice) bool { return true })
	cmds := h.subscribe("devices/+/led/set")
	collect := func(n int) string {
		var got []string
		for range n {
			m := recvMQTT(t, cmds, "a group's led/set")
			got = append(got, m.Topic()+"="+string(m.Payload()))
		}
		sort.Strings(got)
		return strings.Join(got, " ")
	}

	br := h.browser("/ws", nil)
	br.waitFor("k1", "ledStatus", "")
	br.send(`{"group":"kitchen","action":"on"}`)
	if got, want := collect(2), "devices/k1/led/set=ON devices/k2/led/set=ON"; got != want {
		t.Errorf("kitchen on: %s, want %s", got, want)
	}

	var res struct {
		Commands []struct{ Device string }
		Skipped  map[string]string
	}
	if code := h.do("POST", "/api/groups/all/led", `{"action":"toggle"}`, &res); code != 202 {
		t.Fatalf("POST all = %d", code)
	}
	if got, want := collect(3), "devices/hall/led/set=TOGGLE devices/k1/led/set=TOGGLE devices/k2/led/set=TOGGLE"; got != want {
		t.Errorf("all toggle: %s, want %s", got, want)
	}
	if len(res.Commands) != 3 || !strings.Contains(res.Skipped["sleepy"], "offline") {
		t.Errorf("all toggle answer = %+v", res)
	}
	br.send(`{"group":"all","action":"off"}`)
	collect(3)
	if e := br.waitFor("", "error", ""); !strings.Contains(string(e.Value), "sleepy") {
		t.Errorf("the offline board was not reported: %s", e.Value)
	}

	if code := h.do("POST", "/api/groups/nope/led", `{"action":"on"}`, nil); code != http.StatusNotFound {
		t.Errorf("unknown group = %d, want 404", code)
	}
	var groups map[string][]string
	h.do("GET", "/api/groups", "", &groups)
	if strings.Join(groups["kitchen"], ",") != "k1,k2" || len(groups["all"]) != 4 {
		t.Errorf("groups = %v", groups)
	}
}
