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
