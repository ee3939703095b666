package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigDefaultsAndOverrides(t *testing.T) {
	cfg, err := loadConfig(filepath.Join(t.TempDir(), "missing.yaml"), false, nil)
	if err != nil {
		t.Fatalf("no config file, not explicit: %v", err)
	}
	if cfg.MQTT.Listen != ":1883" || cfg.HTTP.Listen != ":8080" || cfg.Topics.Prefix != "devices" ||
		cfg.Storage.Path != "" || cfg.MQTT.WSListen != "" || cfg.Log.Level != "info" || len(cfg.HTTP.AllowedOrigins) != 0 {
		t.Errorf("defaults: %+v", cfg)
	}

	p := writeConfig(t, `
mqtt: {listen: "127.0.0.1:1884"}
http: {listen: ":9000", allowed_origins: ["http://a.example", "http://b.example"]}
topics: {prefix: home/boards}
storage: {path: data/x.log}
devices:
  - {id: kitchen, name: Kitchen light}
  - {id: hall}
log: {level: debug}
groups: {kitchen: [kitchen, hall]}
`)
	cfg, err = loadConfig(p, true, []string{
		"CONTROLPLANE_HTTP_LISTEN=:9090",
		"CONTROLPLANE_STORAGE_PATH=", // empty turns storage off
		"CONTROLPLANE_HTTP_ALLOWED_ORIGINS=http://c.example,http://d.example",
		"CONTROLPLANE_MQTT_WS_LISTEN=:9001",
		"CONTROLPLANE_HTTP_LISTN=:1",   // a typo
		"CONTROLPLANE_DEVICES=kitchen", // file only
		"UNRELATED=1",
	})
	if err != nil {
		t.Fatal(err)
	}
	wantWarn := []string{
		"environment variable CONTROLPLANE_DEVICES is ignored: that key can only be set in the config file",
		"environment variable CONTROLPLANE_HTTP_LISTN is ignored: no such config key",
	}
	if !reflect.DeepEqual(cfg.warnings, wantWarn) {
		t.Errorf("warnings = %q, want %q", cfg.warnings, wantWarn)
	}
	if got, want := cfg.HTTP.Listen, ":9090"; got != want {
		t.Errorf("http.listen = %q, want %q (env)", got, want)
	}
	if cfg.Storage.Path != "" {
		t.Errorf("storage.path = %q, want empty from the empty env value", cfg.Storage.Path)
	}
	if got, want := cfg.HTTP.AllowedOrigins, []string{"http://c.example", "http://d.example"}; !reflect.DeepEqual(got, want) {
		t.Errorf("allowed_origins = %q, want %q", got, want)
	}
	if cfg.MQTT.Listen != "127.0.0.1:1884" || cfg.MQTT.WSListen != ":9001" || cfg.Topics.Prefix != "home/boards" || cfg.Log.Level != "debug" {
		t.Errorf("cfg = %+v", cfg)
	}
	if cfg.Auth.Anonymous != "local" || cfg.HTTP.SessionTTL.Hours() != 168 || cfg.MQTT.MaxPacketSize != 65536 || cfg.Limits.MaxBrowsers != 10000 {
		t.Errorf("security defaults: %+v %+v %+v", cfg.Auth, cfg.HTTP, cfg.Limits)
	}
	if got := cfg.Groups["kitchen"]; len(got) != 2 || cfg.Commands.Timeout.Seconds() != 5 {
		t.Errorf("groups %v, commands.timeout %v", cfg.Groups, cfg.Commands.Timeout)
	}
	if got := cfg.declared(); len(got) != 2 || got[0].ID != "kitchen" || got[0].Name != "Kitchen light" || got[1].ID != "hall" {
		t.Errorf("devices = %+v", got)
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		env        []string
		want       string
	}{
		{"unknown key", "mqtt: {listn: ':1'}", nil, `unknown key "mqtt.listn"`},
		{"unknown section", "colour: red", nil, `unknown key "colour"`},
		{"bad prefix", "topics: {prefix: /devices}", nil, "topics.prefix"},
		{"wildcard prefix", "", []string{"CONTROLPLANE_TOPICS_PREFIX=dev/#"}, "topics.prefix"},
		{"bad level", "log: {level: loud}", nil, "log.level"},
		{"bad listen", "http: {listen: 'nonsense'}", nil, "http.listen"},
		{"empty listen", "", []string{"CONTROLPLANE_MQTT_LISTEN="}, "mqtt.listen"},
		{"bad ws listen", "mqtt: {ws_listen: '9001'}", nil, "mqtt.ws_listen"},
		{"bad device id", "devices: [{id: 'a b'}]", nil, "devices[0].id"},
		{"duplicate device", "devices: [{id: a}, {id: a}]", nil, "devices[1].id"},
		{"wrong type", "http: {listen: [1, 2]}", nil, "listen"},
		{"not yaml", "mqtt: [", nil, "config"},
		{"bad anonymous", "auth: {anonymous: sometimes}", nil, "auth.anonymous"},
		{"bad role", "auth: {users: [{name: a, role: king}]}", nil, "auth.users[0] (a)"},
		{"plaintext password", "auth: {users: [{name: a, role: admin, password_hash: hunter2}]}", nil, "auth.users[0] (a)"},
		{"bad metrics", "http: {metrics: maybe}", nil, "http.metrics"},
		{"bad session ttl", "http: {session_ttl: soon}", nil, "session_ttl"},
		{"tls without cert", "http: {tls: true}", nil, "tls.cert_file"},
		{"negative limit", "limits: {max_browsers: -1}", nil, "limits.max_browsers"},
		{"group named all", "groups: {all: [a]}", nil, "groups.all"},
		{"bad group member", "groups: {kitchen: ['a b']}", nil, "groups.kitchen"},
		{"bad command timeout", "commands: {timeout: 0s}", nil, "commands.timeout"},
		{"tiny packets", "", []string{"CONTROLPLANE_MQTT_MAX_PACKET_SIZE=10"}, "mqtt.max_packet_size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(writeConfig(t, tc.file), true, tc.env)
			if err == nil {
				t.Fatalf("accepted")
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line containing %q", msg, tc.want)
			}
		})
	}
	if _, err := loadConfig(filepath.Join(t.TempDir(), "missing.yaml"), true, nil); err == nil {
		t.Error("an explicit --config that does not exist was accepted")
	}
}

// FuzzLoadConfig feeds arbitrary files to the config loader: it must never
// panic, and whatever it accepts must be valid.
func FuzzLoadConfig(f *testing.F) {
	for _, s := range []string{
		"", "mqtt: {listen: ':1'}", "devices: [{id: a}]", "auth: {users: [{name: a, role: admin}]}",
		"http: {allowed_origins: 'a,b'}", "log: {level: [1]}", "topics: {prefix: 'a/+'}", "\x00\xff",
		"limits: {browser_command_rate: 1e309}", "http: {session_ttl: -5s}",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(p, true, nil)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			return
		}
		if err := cfg.validate(); err != nil {
			t.Fatalf("accepted config does not validate: %v", err)
		}
	})
}
