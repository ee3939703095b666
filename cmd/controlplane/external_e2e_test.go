package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"switchyard/internal/testutil"
)

func healthz(url string) int {
	resp, err := http.Get(url + "/healthz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitHealth(t *testing.T, url string, want int) {
	t.Helper()
	testutil.WaitFor(t, wait, func() error {
		if got := healthz(url); got != want {
			return fmt.Errorf("%s/healthz answers %d, want %d", url, got, want)
		}
		return nil
	})
}

// TestExternalBrokerTwoInstances runs two control planes against one
// Mosquitto: a command from a browser on A reaches the board, the board's
// answer reaches browsers on A and B, a forget on A empties B, and both
// ride out the broker going away and coming back.
func TestExternalBrokerTwoInstances(t *testing.T) {
	mq := testutil.StartMosquitto(t, true) // retained messages survive its restart
	cfg := func() string {
		p := filepath.Join(t.TempDir(), "config.yaml")
		os.WriteFile(p, []byte(fmt.Sprintf("mqtt: {mode: external, url: 'tcp://127.0.0.1:%s'}\nhttp: {listen: '127.0.0.1:0'}\n", mq.Port)), 0o644)
		return p
	}
	a, b := start(t, cfg()), start(t, cfg())
	for _, p := range []*proc{a, b} {
		p.mqttPort = mq.Port // third-party tools talk to the shared broker
		waitHealth(t, p.http, 200)
	}
	if strings.Contains(a.logs(), "mqtt=127.0.0.1") {
		t.Error("external mode opened an MQTT listener")
	}

	a.pub(t, "-t", "devices/b1/status", "-m", "online", "-r")
	a.pub(t, "-t", "devices/b1/led", "-m", "OFF", "-r")
	for _, p := range []*proc{a, b} {
		p.waitDevice(t, "b1", func(d device) bool { return d.Online && d.LED != nil })
	}
	dial := func(p *proc) *websocket.Conn {
		c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(p.http, "http")+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		waitEvent(t, c, `{"device":"b1","label":"ledStatus","value":"LED OFF"}`)
		return c
	}
	onA, onB := dial(a), dial(b)
	cmds := a.sub(t, "devices/+/led/set")
	onA.WriteMessage(websocket.TextMessage, []byte(`{"device":"b1","action":"toggle"}`))
	expectLine(t, cmds, "devices/b1/led/set TOGGLE")
	a.pub(t, "-t", "devices/b1/led", "-m", "ON", "-r")
	waitEvent(t, onA, `{"device":"b1","label":"ledStatus","value":"LED ON"}`)
	waitEvent(t, onB, `{"device":"b1","label":"ledStatus","value":"LED ON"}`)

	// The broker goes away: both say so; it comes back: both recover and
	// rebuild from its retained messages.
	mq.Stop()
	waitHealth(t, a.http, 503)
	waitHealth(t, b.http, 503)
	if r, _ := http.Post(a.http+"/api/devices/b1/led", "application/json", strings.NewReader(`{"action":"on"}`)); r == nil || r.StatusCode == 202 {
		t.Error("a command was accepted while the broker was away")
	}
	mq.Start()
	waitHealth(t, a.http, 200)
	waitHealth(t, b.http, 200)
	expectLine(t, a.sub(t, "devices/b1/led", "-C", "1"), "devices/b1/led ON") // the broker kept it
	a.pub(t, "-t", "devices/b2/count", "-m", "3")
	for _, p := range []*proc{a, b} {
		p.waitDevice(t, "b2", func(d device) bool { return d.Count != nil })
		if d := p.waitDevice(t, "b1", func(device) bool { return true }); d.LED == nil || *d.LED != "ON" {
			t.Errorf("b1 after the broker restart = %+v", d)
		}
	}
	waitEvent(t, onB, `{"device":"b2","label":"count","value":3}`)

	// Forget on A: retained topics cleared, and B drops the board too.
	req, _ := http.NewRequest("DELETE", a.http+"/api/devices/b1", nil)
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != 204 {
		t.Fatalf("DELETE on A: %v %v", r, err)
	}
	waitEvent(t, onB, `{"device":"b1","label":"removed","value":true}`)
	if r, _ := http.Get(b.http + "/api/devices/b1"); r == nil || r.StatusCode != 404 {
		t.Errorf("B still knows b1 after A forgot it")
	}
	a.stop()
	b.stop()
}
