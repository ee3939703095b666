// Package origin decides which browser origins may open a WebSocket to the
// control plane (or change anything through its API), and which host names
// count as this machine's. Both the dashboard's /ws and MQTT over WebSocket
// use it.
package origin

import (
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// Allowed reports whether a WebSocket handshake may proceed: no Origin
// header (not a browser), the request's own host (over TLS, with https), or
// an origin listed in allowed ("*" allows any; a trailing slash is ignored;
// case-insensitive).
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
	if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
		return false
	}
	// Over TLS the page must be an https one too. (Without TLS here either
	// scheme is accepted: a proxy in front may have ended TLS.)
	return r.TLS == nil || strings.EqualFold(u.Scheme, "https")
}

// LocalHost reports whether host (a request's Host header, with or without
// a port) names this machine the way a local user would: localhost or a
// name under .localhost, a loopback address, or the machine's own host
// name (bare or under .local). Anonymous local access is given only to
// requests that name it so: a page of another name re-resolved to
// 127.0.0.1 (DNS rebinding) reaches the loopback address but not these
// names.
func LocalHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	own := strings.ToLower(hostname)
	return own != "" && (host == own || host == own+".local")
}

// hostname is the machine's host name, read once.
var hostname, _ = os.Hostname()
