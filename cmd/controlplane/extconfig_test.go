package main

import (
	"os"
	"strings"
	"testing"

	"switchyard/devices"
)

// mqtt.url may be a list; every URL in it is checked, and an error names
// the key and the bad URL.
func TestConfigExternalURLList(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		want      string // the cleaned list, or a piece of the error
		ok        bool
	}{
		{"one", "tcp://n1:1883", "tcp://n1:1883", true},
		{"list with spaces", " tcp://n1:1883 , ssl://n2:8883,ws://n3:8083/mqtt", "tcp://n1:1883,ssl://n2:8883,ws://n3:8083/mqtt", true},
		{"bad scheme in the list", "tcp://n1:1883,http://n2:80", "http://n2:80", false},
		{"no scheme in the list", "tcp://n1:1883, n2:1883", "n2:1883", false},
		{"empty entry", "tcp://n1:1883,,tcp://n2:1883", "empty", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadConfig(writeConfig(t, "mqtt: {mode: external}\n"), true, []string{"CONTROLPLANE_MQTT_URL=" + tc.url})
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.MQTT.URL != tc.want {
					t.Errorf("mqtt.url = %q, want %q", cfg.MQTT.URL, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if msg := err.Error(); !strings.Contains(msg, "mqtt.url") || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming mqtt.url and %q", msg, tc.want)
			}
		})
	}
}

func TestConfigExternalClientID(t *testing.T) {
	cfg, err := loadConfig(writeConfig(t, "mqtt: {mode: external, url: 'tcp://n1:1883'}\n"), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Skip("no host name:", err)
	}
	id := clientID(cfg, 8080)
	if want := "switchyard-" + devices.SanitizeID(host) + "-8080"; id != want {
		t.Errorf("default client id = %q, want %q", id, want)
	}
	if clientID(cfg, 8080) != id || clientID(cfg, 8081) == id {
		t.Errorf("the default client id is not stable, or not per HTTP port")
	}
	for _, r := range strings.TrimPrefix(id, "switchyard-") {
		if !devices.ValidID(string(r)) {
			t.Errorf("default client id %q has %q, outside A-Z a-z 0-9 _ -", id, r)
		}
	}

	cfg, err = loadConfig(writeConfig(t, "mqtt: {mode: external, url: 'tcp://n1:1883', client_id: cp-eu.1}\n"), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := clientID(cfg, 8080); got != "cp-eu.1" {
		t.Errorf("client id = %q, want mqtt.client_id cp-eu.1", got)
	}
	for _, bad := range []string{"cp 1", "cp\t1", strings.Repeat("x", 129)} {
		_, err := loadConfig(writeConfig(t, "mqtt: {mode: external, url: 'tcp://n1:1883'}\n"), true, []string{"CONTROLPLANE_MQTT_CLIENT_ID=" + bad})
		if err == nil || !strings.Contains(err.Error(), "mqtt.client_id") {
			t.Errorf("client_id %q: %v, want an error naming mqtt.client_id", bad, err)
		}
	}
}
