// Package httpapi holds what every JSON API of the control plane shares:
// a route as the gateway serves it behind its access rules, and the JSON
// answers (errors as {"error": message}). The gateway and the services
// mounted behind it (updates, recorder, accounts) all answer through it,
// so the API reads the same everywhere.
package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"

	"switchyard/auth"
)

// Route is one HTTP route of a service, for the gateway to serve behind
// its access rules.
type Route struct {
	// Pattern is a net/http ServeMux pattern with its method
	// ("POST /api/firmware", "GET /firmware/{sha}"); the handler reads the
	// wildcards with r.PathValue, so it is registered as it is. It must
	// not collide with another route.
	Pattern string
	// Role is the least role that may use the route: auth.RoleDevice to
	// auth.RoleAdmin.
	Role auth.Role
	// Handler serves the route.
	Handler http.Handler
}

// WriteJSON answers v as JSON, not to be cached.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client may have gone; nothing to do
}

// WriteRaw answers JSON already encoded.
func WriteRaw(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

// Error answers {"error": message}.
func Error(w http.ResponseWriter, code int, format string, args ...any) {
	WriteJSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}
