package main

import (
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// The keys of issue 12: the database, history retention, the public URL
// and the largest firmware upload.

// memoryDatabase is database.url when storage is off and the key is unset:
// an SQLite database in memory, gone when the process ends.
const memoryDatabase = "sqlite::memory:"

// validateUpdates checks database.url, history.retention, http.public_url
// and firmware.max_size, and sets c.maxFirmware.
func (c *Config) validateUpdates() error {
	if u := c.Database.URL; u != "" {
		if err := checkDatabaseURL(u); err != nil {
			return fmt.Errorf("database.url: %w", err)
		}
	}
	if c.History.Retention <= 0 {
		return fmt.Errorf("history.retention: %v must be positive (e.g. 720h)", c.History.Retention)
	}
	if c.HTTP.PublicURL != "" {
		u, err := checkPublicURL(c.HTTP.PublicURL)
		if err != nil {
			return fmt.Errorf("http.public_url: %w", err)
		}
		c.HTTP.PublicURL = u
	}
	n, err := parseSize(c.Firmware.MaxSize)
	if err != nil {
		return fmt.Errorf("firmware.max_size: %w", err)
	}
	c.maxFirmware = n
	return nil
}

// databaseURL is database.url, or its default: sqlite:switchyard.db beside
// the storage file, or a database in memory when storage is off.
func (c *Config) databaseURL() string {
	switch {
	case c.Database.URL != "":
		return c.Database.URL
	case c.Storage.Path == "":
		return memoryDatabase
	}
	return "sqlite:" + filepath.Join(filepath.Dir(c.Storage.Path), "switchyard.db")
}

// firmwareDir is where uploaded builds are kept, beside the storage file;
// "" when storage is off (the caller makes a temporary directory).
func (c *Config) firmwareDir() string {
	if c.Storage.Path == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(c.Storage.Path), "firmware")
}

func checkDatabaseURL(u string) error {
	const want = "want sqlite:PATH or postgres://user:pass@host/db"
	if path, ok := strings.CutPrefix(u, "sqlite:"); ok {
		if path == "" {
			return fmt.Errorf("%q: no path (%s)", u, want)
		}
		return nil
	}
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("%q: %s", u, want)
	}
	if p.Scheme != "postgres" && p.Scheme != "postgresql" || p.Host == "" {
		return fmt.Errorf("%q: %s", p.Redacted(), want)
	}
	return nil
}

// checkPublicURL checks http.public_url and returns it without a trailing
// slash: an absolute http(s) URL with a host, no query, fragment or user.
func checkPublicURL(s string) (string, error) {
	const want = "want an absolute http:// or https:// URL such as https://switchyard.lan:8443"
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "", fmt.Errorf("%q: %s", s, want)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || u.Opaque != "":
		return "", fmt.Errorf("%q: %s", s, want)
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return "", fmt.Errorf("%q: no user, query or fragment (%s)", u.Redacted(), want)
	}
	return strings.TrimRight(s, "/"), nil
}

// parseSize reads a size in bytes: a whole number, optionally followed by
// a unit, B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024),
// any case, a space allowed before the unit: "64MiB", "10MB", "1048576".
func parseSize(s string) (int64, error) {
	const want = "want a positive size such as 64MiB, 10MB or 1048576 (bytes)"
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q: %s", s, want)
	}
	units := map[string]int64{"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}
	mul, ok := units[strings.ToLower(strings.TrimSpace(t[i:]))]
	if !ok {
		return 0, fmt.Errorf("%q: unknown unit (%s)", s, want)
	}
	if n > math.MaxInt64/mul {
		return 0, fmt.Errorf("%q: too large (%s)", s, want)
	}
	return n * mul, nil
}
