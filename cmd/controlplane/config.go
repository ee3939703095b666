package main

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sort"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"

	"switchyard/devices"
)

// Config is the whole configuration file. Every key has a default (set in
// loadConfig) so that an environment variable alone can set it.
type Config struct {
	MQTT struct {
		Listen   string `mapstructure:"listen"`
		WSListen string `mapstructure:"ws_listen"`
	} `mapstructure:"mqtt"`
	HTTP struct {
		Listen         string   `mapstructure:"listen"`
		AllowedOrigins []string `mapstructure:"allowed_origins"`
	} `mapstructure:"http"`
	Topics struct {
		Prefix string `mapstructure:"prefix"`
	} `mapstructure:"topics"`
	Storage struct {
		Path string `mapstructure:"path"`
	} `mapstructure:"storage"`
	Devices []DeviceConfig `mapstructure:"devices"`
	Log     struct {
		Level string `mapstructure:"level"`
	} `mapstructure:"log"`
}

// DeviceConfig declares a device shown before it first connects.
type DeviceConfig struct {
	ID   string `mapstructure:"id"`
	Name string `mapstructure:"name"`
}

// defaults lists every scalar key with its default. "devices" is file-only.
var defaults = map[string]any{
	"mqtt.listen":          ":1883",
	"mqtt.ws_listen":       "",
	"http.listen":          ":8080",
	"http.allowed_origins": []string{},
	"topics.prefix":        devices.DefaultPrefix,
	"storage.path":         "",
	"log.level":            "info",
}

// fileOnly are keys that may be set in the file but have no default.
var fileOnly = map[string]bool{"devices": true}

// loadConfig reads path (a missing file is an error only when explicit),
// applies CONTROLPLANE_* environment overrides and validates the result.
// Every error is one line naming the key.
func loadConfig(path string, explicit bool, environ []string) (*Config, error) {
	v := viper.New()
	for k, d := range defaults {
		v.SetDefault(k, d)
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
	// process environment. An empty value sets the key to empty.
	env := map[string]string{}
	for _, kv := range environ {
		if k, val, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "CONTROLPLANE_") {
			env[k] = val
		}
	}
	for k := range defaults {
		name := "CONTROLPLANE_" + strings.ToUpper(strings.ReplaceAll(k, ".", "_"))
		if val, ok := env[name]; ok {
			v.Set(k, val)
		}
	}
	keys := v.AllKeys()
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := defaults[k]; !ok && !fileOnly[k] && !fileOnly[strings.SplitN(k, ".", 2)[0]] {
			return nil, fmt.Errorf("config: unknown key %q", k)
		}
	}
	var cfg Config
	if err := v.UnmarshalExact(&cfg, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToSliceHookFunc(","),
	))); err != nil {
		return nil, fmt.Errorf("config: %s", oneLine(err.Error()))
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return &cfg, nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func (c *Config) validate() error {
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
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level: %q is not one of debug, info, warn, error", c.Log.Level)
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
		out[i] = devices.Declared{ID: d.ID, Name: d.Name}
	}
	return out
}

// environ is os.Environ, a variable for tests.
var environ = os.Environ
