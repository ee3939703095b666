package main

import (
	"strings"

	"switchyard/devices"
)

// configKey is one key of the configuration file.
type configKey struct {
	Name string // dotted, as in the file and in docs/protocol.md: "mqtt.listen"
	// Default is the value when neither the file nor the environment sets
	// the key, written as YAML would give it (durations as strings, "168h").
	// File-only keys have none: they start empty.
	Default any
	// FileOnly keys (the lists and maps) are set in the file only: no
	// default, no environment variable; a CONTROLPLANE_ variable naming one
	// is ignored with a warning that says so.
	FileOnly bool
	// Open keys hold names chosen in the file, groups.<name>: any key under
	// them is theirs.
	Open bool
}

// configKeys is the one list of configuration keys. The viper defaults, the
// environment overrides, the unknown-key check and the warnings about stray
// CONTROLPLANE_ variables are all built from it; tests hold the Config struct
// tags, the shipped config.yaml and the table in docs/protocol.md to it.
// Adding a key is a row here, a field in Config, a line in config.yaml and a
// row in docs/protocol.md section 9; the tests name whichever is missing.
var configKeys = []configKey{
	{Name: "mqtt.mode", Default: "embedded"},
	{Name: "mqtt.url", Default: ""},
	{Name: "mqtt.client_id", Default: ""},
	{Name: "mqtt.username", Default: ""},
	{Name: "mqtt.password", Default: ""},
	{Name: "mqtt.listen", Default: ":1883"},
	{Name: "mqtt.ws_listen", Default: ""},
	{Name: "mqtt.tls_listen", Default: ""},
	{Name: "mqtt.max_packet_size", Default: 64 << 10},
	{Name: "http.listen", Default: ":8080"},
	{Name: "http.allowed_origins", Default: []string{}},
	{Name: "http.tls", Default: false},
	{Name: "http.session_ttl", Default: "168h"},
	{Name: "http.metrics", Default: "public"},
	{Name: "http.public_url", Default: ""},
	{Name: "tls.cert_file", Default: ""},
	{Name: "tls.key_file", Default: ""},
	{Name: "auth.anonymous", Default: "local"},
	{Name: "auth.users", FileOnly: true},
	{Name: "limits.max_browsers", Default: 10000},
	{Name: "limits.max_mqtt_clients", Default: 20000},
	{Name: "limits.max_devices", Default: 10000},
	{Name: "limits.browser_command_rate", Default: 10},
	{Name: "limits.browser_command_burst", Default: 20},
	{Name: "topics.prefix", Default: devices.DefaultPrefix},
	{Name: "storage.path", Default: ""},
	{Name: "database.url", Default: ""},
	{Name: "history.enabled", Default: true},
	{Name: "history.retention", Default: "720h"},
	{Name: "firmware.max_size", Default: "64MiB"},
	{Name: "homeassistant.enabled", Default: false},
	{Name: "homeassistant.prefix", Default: "homeassistant"},
	{Name: "commands.timeout", Default: "5s"},
	{Name: "groups", FileOnly: true, Open: true},
	{Name: "devices", FileOnly: true},
	{Name: "log.level", Default: "info"},
}

// lookupKey finds the key that a dotted name from the file belongs to.
func lookupKey(name string) (configKey, bool) {
	for _, k := range configKeys {
		if name == k.Name || k.Open && strings.HasPrefix(name, k.Name+".") {
			return k, true
		}
	}
	return configKey{}, false
}

// lookupEnv finds the key that a CONTROLPLANE_ variable names, file-only
// keys included (so the warning can say why it sets nothing).
func lookupEnv(variable string) (configKey, bool) {
	for _, k := range configKeys {
		if name := envName(k.Name); variable == name || k.Open && strings.HasPrefix(variable, name+"_") {
			return k, true
		}
	}
	return configKey{}, false
}

// envName is the environment variable that overrides key.
func envName(key string) string {
	return "CONTROLPLANE_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}
