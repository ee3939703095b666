package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestMalformedInputIsRefusedAndLosesNothing sends the running binary every
// malformed thing the contract lists, checks each clear answer, and then
// checks that the process still serves and that a good board's state is
// intact.
func TestMalformedInputIsRefusedAndLosesNothing(t *testing.T) {
	p := start(t, testConfig(t, ""))
	p.pub(t, "-t", "devices/good/status", "-m", "online", "-r")
	p.pub(t, "-t", "devices/good/led", "-m", "ON", "-r")
	p.pub(t, "-t", "devices/sleepy/status", "-m", "offline", "-r")
	p.waitDevice(t, "sleepy", func(device) bool { return true })
	p.waitDevice(t, "good", func(d device) bool { return d.Online && d.LED != nil })

	// MQTT: bad payloads and invalid ids change nothing (they still pass
	// through the broker, as any MQTT traffic does).
	all := p.sub(t, "devices/#")
	for _, m := range [][2]string{
		{"devices/good/led", "MAYBE"},
		{"devices/good/status", "sideways"},
		{"devices/good/count", "-3"},
		{"devices/good/count", "12abc"},
		{"devices/good/info", "{not json"},
		{"devices/good/info", `["an","array"]`},
		{"devices/bad.id/led", "ON"},
		{"devices/" + strings.Repeat("x", 65) + "/led", "ON"},
		{"devices/ghost/led/set", "ON"}, // a command alone makes no device known
	} {
		p.pub(t, "-t", m[0], "-m", m[1])
	}
	p.pub(t, "-t", "devices/good/count", "-m", "5") // a marker after them
	expectLine(t, all, "devices/bad.id/led ON")
	d := p.waitDevice(t, "good", func(d device) bool { return d.Count != nil && *d.Count == 5 })
	if !d.Online || d.LED == nil || *d.LED != "ON" {
		t.Errorf("good board after garbage = %+v, want online, LED ON", d)
	}
	var list []device
	getJSON(t, p.http+"/api/devices", &list)
	if len(list) != 2 {
		t.Errorf("devices after garbage: %+v, want only good and sleepy", list)
	}
	// Each was refused with an error: counted (and logged, at most once a
	// second), the two invalid ids as well as the six bad payloads.
	if got, want := metric(t, p.http, "switchyard_board_messages_ignored_total"), 8.0; got != want {
		t.Errorf("switchyard_board_messages_ignored_total = %v, want %v", got, want)
	}
	if logs := p.logs(); !strings.Contains(logs, "ignored a board message") {
		t.Errorf("no log line for the ignored messages:\n%s", logs)
	}

	// WebSocket /ws: each refusal is an error event; the connection stays.
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(p.http, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for _, tc := range []struct{ msg, want string }{
		{`{"device":"good","action":"toggle"`, "invalid JSON"},
		{`[1,2,3]`, "not a JSON object"},
		{`{"device":"good","action":"dance"}`, `unknown action`},
		{`{"device":"no/pe","action":"on"}`, "invalid device id"},
		{`{"device":"ghost","action":"on"}`, "unknown device"},
		{`{"device":"sleepy","action":"on"}`, "offline"},
	} {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(tc.msg)); err != nil {
			t.Fatal(err)
		}
		if got := nextError(t, ws); !strings.Contains(got, tc.want) {
			t.Errorf("%s: error %q, want %q", tc.msg, got, tc.want)
		}
	}
	// Larger than 4 KiB: that connection is closed with 1009, others stay.
	other, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(p.http, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ws.WriteMessage(websocket.TextMessage, []byte(strings.Repeat(" ", 5000)))
	for err == nil {
		_ = ws.SetReadDeadline(time.Now().Add(wait))
		_, _, err = ws.ReadMessage()
	}
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Errorf("oversize message: %v, want close 1009", err)
	}

	// /ws/<id>: unknown and invalid ids are 404 before the upgrade.
	for _, path := range []string{"/ws/ghost", "/ws/no%2Fpe"} {
		_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(p.http, "http")+path, nil)
		if err == nil || resp == nil || resp.StatusCode != 404 {
			t.Errorf("%s: %v, want 404", path, err)
		}
	}

	// HTTP: every refusal has its code and a JSON error message.
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/api/devices/ghost", "", 404},
		{"GET", "/api/devices/no%20pe", "", 404},
		{"POST", "/api/devices/ghost/led", `{"action":"on"}`, 404},
		{"POST", "/api/devices/good/led", `{"action":`, 400},
		{"POST", "/api/devices/good/led", `{"action":"dance"}`, 400},
		{"POST", "/api/devices/good/led", strings.Repeat("x", 10000), 400},
		{"POST", "/api/devices/sleepy/led", `{"action":"on"}`, 409},
		{"DELETE", "/api/devices/ghost", "", 404},
		{"PUT", "/api/devices/good", "", 405},
		{"GET", "/api/devices/good/led", "", 405},
		{"POST", "/healthz", "", 405},
		{"GET", "/api/nosuch", "", 404},
		{"GET", "/api/devices/", "", 404},
	} {
		req, _ := http.NewRequest(tc.method, p.http+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]string
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tc.want || body["error"] == "" {
			t.Errorf("%s %s = %d %v, want %d with an error message", tc.method, tc.path, resp.StatusCode, body, tc.want)
		}
	}

	// Still up, still right.
	if resp, err := http.Get(p.http + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz after the garbage: %v %v", resp, err)
	}
	waitEvent(t, other, `{"device":"good","label":"ledStatus","value":"LED ON"}`)
	p.stop()
}

// metric returns the value of an unlabelled metric on /metrics.
func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("no %s on /metrics", name)
	return 0
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// nextError reads until an error event arrives and returns its message.
func nextError(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	for {
		_ = c.SetReadDeadline(time.Now().Add(wait))
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("waiting for an error event: %v", err)
		}
		var evs []map[string]any
		if data[0] == '[' {
			json.Unmarshal(data, &evs)
		} else {
			var e map[string]any
			json.Unmarshal(data, &e)
			evs = []map[string]any{e}
		}
		for _, e := range evs {
			if e["label"] == "error" {
				s, _ := e["value"].(string)
				return s
			}
		}
	}
}
