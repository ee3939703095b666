package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"switchyard/auth"
	"switchyard/devices"
	"switchyard/extbroker"
	"switchyard/wsgateway"
)

// Config is the whole configuration file. Its keys, their defaults and
// which of them the environment may set are listed in configKeys (keys.go);
// a test holds these mapstructure tags to that list.
type Config struct {
	MQTT struct {
		Mode          string `mapstructure:"mode"`
		URL           string `mapstructure:"url"`
		ClientID      string `mapstructure:"client_id"`
		Username      string `mapstructure:"username"`
		Password      string `mapstructure:"password"`
		Listen        string `mapstructure:"listen"`
		WSListen      string `mapstructure:"ws_listen"`
		TLSListen     string `mapstructure:"tls_listen"`
		MaxPacketSize int    `mapstructure:"max_packet_size"`
	} `mapstructure:"mqtt"`
	HTTP struct {
		Listen         string        `mapstructure:"listen"`
		AllowedOrigins []string      `mapstructure:"allowed_origins"`
		TLS            bool          `mapstructure:"tls"`
		SessionTTL     time.Duration `mapstructure:"session_ttl"`
		Metrics        string        `mapstructure:"metrics"`
		PublicURL      string        `mapstructure:"public_url"`
	} `mapstructure:"http"`
	TLS struct {
		CertFile string `mapstructure:"cert_file"`
		KeyFile  string `mapstructure:"key_file"`
	} `mapstructure:"tls"`
	Auth struct {
		Anonymous string       `mapstructure:"anonymous"`
		Users     []UserConfig `mapstructure:"users"`
	} `mapstructure:"auth"`
	Limits struct {
		MaxBrowsers         int     `mapstructure:"max_browsers"`
		MaxMQTTClients      int     `mapstructure:"max_mqtt_clients"`
		MaxDevices          int     `mapstructure:"max_devices"`
		BrowserCommandRate  float64 `mapstructure:"browser_command_rate"`
		BrowserCommandBurst int     `mapstructure:"browser_command_burst"`
	} `mapstructure:"limits"`
	Topics struct {
		Prefix string `mapstructure:"prefix"`
	} `mapstructure:"topics"`
	Storage struct {
		Path string `mapstructure:"path"`
	} `mapstructure:"storage"`
	Database struct {
		URL string `mapstructure:"url"`
	} `mapstructure:"database"`
	History struct {
		Enabled   bool          `mapstructure:"enabled"`
		Retention time.Duration `mapstructure:"retention"`
	} `mapstructure:"history"`
	Firmware struct {
		MaxSize string `mapstructure:"max_size"` // parsed into maxFirmware by validate
	} `mapstructure:"firmware"`
	HomeAssistant struct {
		Enabled bool   `mapstructure:"enabled"`
		Prefix  string `mapstructure:"prefix"`
	} `mapstructure:"homeassistant"`
	az          *auth.Authority // the user list, built by validate
	maxFirmware int64           // firmware.max_size in bytes, set by validate

	warnings []string // environment variables that set nothing, logged at start

	Devices  []DeviceConfig      `mapstructure:"devices"`
	Groups   map[string][]string `mapstructure:"groups"`
	Commands struct {
		Timeout time.Duration `mapstructure:"timeout"`
	} `mapstructure:"commands"`
	Log struct {
		Level string `mapstructure:"level"`
	} `mapstructure:"log"`
}

// UserConfig is one entry of auth.users.
type UserConfig struct {
	Name         string   `mapstructure:"name"`
	PasswordHash string   `mapstructure:"password_hash"`
	Role         string   `mapstructure:"role"`
	IDs          []string `mapstructure:"ids"`
	Tokens       []string `mapstructure:"tokens"`
}

// DeviceConfig declares a device shown before it first connects, with its
// name and tags.
type DeviceConfig struct {
	ID   string   `mapstructure:"id"`
	Name string   `mapstructure:"name"`
	Tags []string `mapstructure:"tags"`
}

// loadConfig reads path (a missing file is an error only when explicit),
// applies CONTROLPLANE_* environment overrides and validates the result.
// Every error is one line naming the key.
func loadConfig(path string, explicit bool, environ []string) (*Config, error) {
	v := viper.New()
	for _, k := range configKeys {
		if !k.FileOnly {
			v.SetDefault(k.Name, k.Default)
		}
	}
	v.SetConfigFile(path)
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		var pe *fs.PathError
		if !explicit && errors.As(err, &pe) && errors.Is(pe.Err, fs.ErrNotExist) {
			// No ./config.yaml: run on defaults and environment.
		} else {
			return nil, fmt.Errorf("config %s: %s", path, oneLine(err.Error()))
		}
	}
	// Environment overrides, read from environ so tests need not touch the
	// process environment. An empty value sets the key to empty. A variable
	// that sets nothing is named in a warning, as a typo in the file would
	// be (the file's unknown keys are errors; a variable may belong to the
	// deployment, so it is only a warning).
	var warnings []string
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, "CONTROLPLANE_") {
			continue
		}
		switch k, ok := lookupEnv(name); {
		case !ok:
			warnings = append(warnings, fmt.Sprintf("environment variable %s is ignored: no such config key", name))
		case k.FileOnly:
			warnings = append(warnings, fmt.Sprintf("environment variable %s is ignored: that key can only be set in the config file", name))
		default:
			v.Set(k.Name, val)
		}
	}
	sort.Strings(warnings)
	names := v.AllKeys()
	sort.Strings(names)
	for _, name := range names {
		if _, ok := lookupKey(name); !ok {
			return nil, fmt.Errorf("config: unknown key %q", name)
		}
	}
	var cfg Config
	if err := v.UnmarshalExact(&cfg, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		mapstructure.StringToSliceHookFunc(","),
	))); err != nil {
		return nil, fmt.Errorf("config: %s", oneLine(err.Error()))
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg.warnings = warnings
	return &cfg, nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func (c *Config) validate() error {
	switch c.MQTT.Mode {
	case "embedded":
	case "external":
		if c.MQTT.URL == "" {
			return fmt.Errorf("mqtt.url: required when mqtt.mode is external (e.g. tcp://broker:1883)")
		}
		urls, err := extbroker.ParseURLs(c.MQTT.URL)
		if err != nil {
			return fmt.Errorf("mqtt.url: %w", err)
		}
		c.MQTT.URL = strings.Join(urls, ",") // spaces trimmed: boards get it too
		if err := checkClientID(c.MQTT.ClientID); err != nil {
			return fmt.Errorf("mqtt.client_id: %w", err)
		}
	default:
		return fmt.Errorf("mqtt.mode: %q: want embedded or external", c.MQTT.Mode)
	}
	if err := checkAddr("mqtt.listen", c.MQTT.Listen, false); err != nil {
		return err
	}
	if err := checkAddr("mqtt.ws_listen", c.MQTT.WSListen, true); err != nil {
		return err
	}
	if err := checkAddr("http.listen", c.HTTP.Listen, false); err != nil {
		return err
	}
	var origins []string
	for _, o := range c.HTTP.AllowedOrigins {
		if o = strings.TrimSpace(o); o != "" {
			origins = append(origins, o)
		}
	}
	c.HTTP.AllowedOrigins = origins
	if err := devices.ValidatePrefix(c.Topics.Prefix); err != nil {
		return fmt.Errorf("topics.prefix: %w", err)
	}
	if err := devices.ValidatePrefix(c.HomeAssistant.Prefix); err != nil {
		return fmt.Errorf("homeassistant.prefix: %w", err)
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.Log.Level)
	}
	if err := checkAddr("mqtt.tls_listen", c.MQTT.TLSListen, true); err != nil {
		return err
	}
	if c.MQTT.MaxPacketSize < 1024 {
		return fmt.Errorf("mqtt.max_packet_size: %d is too small (at least 1024 bytes)", c.MQTT.MaxPacketSize)
	}
	if c.HTTP.SessionTTL <= 0 {
		return fmt.Errorf("http.session_ttl: %v must be positive (e.g. 168h)", c.HTTP.SessionTTL)
	}
	if _, err := wsgateway.ParseMetricsAccess(c.HTTP.Metrics); err != nil {
		return fmt.Errorf("http.metrics: %w", err)
	}
	if _, err := auth.ParseAnonymous(c.Auth.Anonymous); err != nil {
		return fmt.Errorf("auth.anonymous: %w", err)
	}
	if (c.HTTP.TLS || c.MQTT.TLSListen != "") && (c.TLS.CertFile == "" || c.TLS.KeyFile == "") {
		return fmt.Errorf("tls.cert_file and tls.key_file: required by http.tls and mqtt.tls_listen")
	}
	for key, n := range map[string]float64{
		"limits.max_browsers": float64(c.Limits.MaxBrowsers), "limits.max_mqtt_clients": float64(c.Limits.MaxMQTTClients),
		"limits.max_devices": float64(c.Limits.MaxDevices), "limits.browser_command_rate": c.Limits.BrowserCommandRate,
		"limits.browser_command_burst": float64(c.Limits.BrowserCommandBurst),
	} {
		if n < 0 {
			return fmt.Errorf("%s: %v must not be negative (0 means unlimited or the default)", key, n)
		}
	}
	az, err := c.authority(devices.MustTopics(c.Topics.Prefix))
	if err != nil {
		return err
	}
	c.az = az // built once: it runs bcrypt for its miss-path hash
	if err := c.validateUpdates(); err != nil {
		return err
	}
	if c.Commands.Timeout <= 0 {
		return fmt.Errorf("commands.timeout: %v must be positive (e.g. 5s)", c.Commands.Timeout)
	}
	for name, ids := range c.Groups {
		if name == "all" || !devices.ValidID(name) {
			return fmt.Errorf("groups.%s: a group name is 1-64 of A-Z a-z 0-9 _ - and not \"all\" (which is every board)", name)
		}
		for _, id := range ids {
			if err := devices.ValidateID(id); err != nil {
				return fmt.Errorf("groups.%s: %w", name, err)
			}
		}
	}
	seen := map[string]bool{}
	for i, d := range c.Devices {
		if err := devices.ValidateID(d.ID); err != nil {
			return fmt.Errorf("devices[%d].id: %w", i, err)
		}
		if seen[d.ID] {
			return fmt.Errorf("devices[%d].id: duplicate id %q", i, d.ID)
		}
		seen[d.ID] = true
		tags, err := devices.NormalizeTags(d.Tags)
		if err != nil {
			return fmt.Errorf("devices[%d].tags: %w", i, err)
		}
		c.Devices[i].Tags = tags
	}
	return nil
}

func checkAddr(key, addr string, optional bool) error {
	if addr == "" {
		if optional {
			return nil
		}
		return fmt.Errorf("%s: empty (want host:port, e.g. :8080)", key)
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return fmt.Errorf("%s: %q is not host:port (e.g. :8080 or 127.0.0.1:8080)", key, addr)
	}
	return nil
}

// declared converts the devices list for the gateway.
func (c *Config) declared() []devices.Declared {
	out := make([]devices.Declared, len(c.Devices))
	for i, d := range c.Devices {
		out[i] = devices.Declared{ID: d.ID, Name: d.Name, Tags: d.Tags}
	}
	return out
}

// authority builds the user list; errors name the auth.users entry.
func (c *Config) authority(topics devices.Topics) (*auth.Authority, error) {
	anon, err := auth.ParseAnonymous(c.Auth.Anonymous)
	if err != nil {
		return nil, fmt.Errorf("auth.anonymous: %w", err)
	}
	users := make([]auth.User, len(c.Auth.Users))
	for i, u := range c.Auth.Users {
		role, err := auth.ParseRole(u.Role)
		if err != nil {
			return nil, fmt.Errorf("auth.users[%d] (%s): %w", i, u.Name, err)
		}
		users[i] = auth.User{Name: u.Name, PasswordHash: u.PasswordHash, Role: role, IDs: u.IDs, Tokens: u.Tokens}
	}
	var extra []string
	if c.HomeAssistant.Enabled {
		extra = append(extra, c.HomeAssistant.Prefix)
	}
	// Password guessers may keep half the cores busy with bcrypt, not all:
	// with one check per core, 50 guessers took the fleet's p99 from 12 to
	// 309–369 ms for their first minute on 2 cores, with one at a time
	// 24–33 ms (bench/README.md, "Credentials at scale").
	maxBcrypt := max(1, runtime.NumCPU()/2)
	return auth.New(auth.Config{Anonymous: anon, Users: users, Topics: topics, ExtraPrefixes: extra, MaxBcrypt: maxBcrypt})
}

// environ is os.Environ, a variable for tests.
var environ = os.Environ
