// Package origin decides which browser origins may open a WebSocket to the
// control plane. Both the dashboard's /ws and MQTT over WebSocket use it.
package origin

import (
	"net/http"
	"net/url"
	"strings"
)

// Allowed reports whether a WebSocket handshake may proceed: no Origin
// header (not a browser), the request's own host, or an origin listed in
// allowed ("*" allows any; a trailing slash is ignored; case-insensitive).
func Allowed(r *http.Request, allowed []string) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	for _, a := range allowed {
		if a == "*" || strings.EqualFold(strings.TrimRight(a, "/"), o) {
			return true
		}
	}
	u, err := url.Parse(o)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}
