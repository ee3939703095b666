package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nextLine returns the next mosquitto_sub line starting with prefix.
func nextLine(t *testing.T, lines <-chan string, prefix string) string {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("mosquitto_sub ended before %q", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return strings.TrimPrefix(l, prefix)
			}
		case <-deadline:
			t.Fatalf("no line starting %q", prefix)
		}
	}
}

func TestHomeAssistantDiscovery(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(cfg, []byte("mqtt: {listen: '127.0.0.1:0'}\nhttp: {listen: '127.0.0.1:0'}\nhomeassistant: {enabled: true}\n"), 0o644)
	p := start(t, cfg)
	ha := p.sub(t, "homeassistant/#")
	p.pub(t, "-t", "devices/b1/status", "-m", "online", "-r")
	p.pub(t, "-t", "devices/b1/info", "-m", `{"id":"b1","firmware":"fw 9","board":"esp32"}`, "-r")

	const light = "homeassistant/light/b1/led/config "
	var cfgJSON struct {
		UniqueID     string `json:"unique_id"`
		CommandTopic string `json:"command_topic"`
		Device       struct {
			SWVersion string `json:"sw_version"`
		} `json:"device"`
	}
	// First when the board becomes known, then again when its info arrives.
	for cfgJSON.Device.SWVersion != "fw 9" {
		if err := json.Unmarshal([]byte(nextLine(t, ha, light)), &cfgJSON); err != nil {
			t.Fatal(err)
		}
	}
	if cfgJSON.UniqueID != "switchyard_b1_led" || cfgJSON.CommandTopic != "devices/b1/led/set" {
		t.Errorf("light config = %+v", cfgJSON)
	}
	nextLine(t, ha, "homeassistant/sensor/b1/count/config {")

	// Home Assistant restarts: everything again.
	p.pub(t, "-t", "homeassistant/status", "-m", "online")
	nextLine(t, ha, light+"{")

	// A late subscriber (Home Assistant itself) gets the retained config.
	late := p.sub(t, "homeassistant/sensor/#", "-C", "1")
	nextLine(t, late, "homeassistant/sensor/b1/count/config {")

	// Forgotten: the configs are cleared.
	req, _ := http.NewRequest("DELETE", p.http+"/api/devices/b1", nil)
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != 204 {
		t.Fatalf("DELETE: %v %v", r, err)
	}
	for {
		if rest := nextLine(t, ha, strings.TrimSpace(light)); rest == "" || rest == " (null)" {
			break
		}
	}
	p.stop()
}
