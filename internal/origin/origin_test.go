package origin

import (
	"net/http/httptest"
	"testing"
)

func TestAllowed(t *testing.T) {
	for _, tc := range []struct {
		origin, host string
		allowed      []string
		want         bool
	}{
		{"", "localhost:8080", nil, true},
		{"http://localhost:8080", "localhost:8080", nil, true},
		{"http://LOCALHOST:8080", "localhost:8080", nil, true},
		{"http://evil.example", "localhost:8080", nil, false},
		{"http://localhost:9999", "localhost:8080", nil, false},
		{"null", "localhost:8080", nil, false},
		{"null", "localhost:8080", []string{"null"}, true},
		{"http://evil.example", "localhost:8080", []string{"*"}, true},
		{"http://app.example", "localhost:8080", []string{"http://app.example/"}, true},
		{"http://app.example.evil", "localhost:8080", []string{"http://app.example"}, false},
	} {
		r := httptest.NewRequest("GET", "http://"+tc.host+"/ws", nil)
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if got := Allowed(r, tc.allowed); got != tc.want {
			t.Errorf("Allowed(origin %q, host %q, %v) = %v, want %v", tc.origin, tc.host, tc.allowed, got, tc.want)
		}
	}
}

func TestAllowedOverTLS(t *testing.T) {
	for _, tc := range []struct {
		origin string
		want   bool
	}{
		{"https://localhost:8443", true},
		{"http://localhost:8443", false}, // a plain-HTTP page of the same host and port
		{"", true},
	} {
		r := httptest.NewRequest("GET", "https://localhost:8443/ws", nil)
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if got := Allowed(r, nil); got != tc.want {
			t.Errorf("over TLS, Allowed(origin %q) = %v, want %v", tc.origin, got, tc.want)
		}
	}
}

func TestLocalHost(t *testing.T) {
	own := hostname
	for _, tc := range []struct {
		host string
		want bool
	}{
		{"localhost", true},
		{"localhost:8080", true},
		{"LOCALHOST.:8080", true},
		{"app.localhost:8080", true},
		{"127.0.0.1:8080", true},
		{"127.0.1.1", true},
		{"[::1]:8080", true},
		{"10.0.0.5:8080", false},
		{"attacker.example:8080", false},
		{"localhost.attacker.example", false},
		{"", false},
	} {
		if got := LocalHost(tc.host); got != tc.want {
			t.Errorf("LocalHost(%q) = %v, want %v", tc.host, got, tc.want)
		}
	}
	if own != "" {
		for _, h := range []string{own, own + ":8080", own + ".local:8080"} {
			if !LocalHost(h) {
				t.Errorf("LocalHost(%q) = false for the machine's own name", h)
			}
		}
	}
}
