package updates

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"

	"switchyard/auth"
	"switchyard/history"
)

// Handler is one HTTP route of the service, for the gateway to serve
// behind its access rules.
type Handler struct {
	// Pattern is a net/http ServeMux pattern with its method
	// ("GET /firmware/{sha}"); the handler reads the wildcards with
	// r.PathValue, so the pattern must be registered as it is.
	Pattern string
	// Role is the least role that may call it.
	Role    auth.Role
	Handler http.Handler
}

// Handlers returns the service's routes: the firmware API, the download
// path, the update key and the rollouts API.
func (s *Service) Handlers() []Handler {
	h := func(pattern string, role auth.Role, fn http.HandlerFunc) Handler {
		return Handler{Pattern: pattern, Role: role, Handler: fn}
	}
	return []Handler{
		h("POST /api/firmware", auth.RoleAdmin, s.audited(always(history.ActionFirmwareUpload), s.uploadFirmware)),
		h("GET /api/firmware", auth.RoleViewer, s.listFirmware),
		h("DELETE /api/firmware/{sha}", auth.RoleAdmin, s.audited(always(history.ActionFirmwareDelete), s.deleteFirmware)),
		h("GET /firmware/{sha}", auth.RoleDevice, s.serveFirmware),
		h("GET /api/update-key", auth.RoleViewer, s.updateKey),
		h("POST /api/rollouts", auth.RoleAdmin, s.audited(always(history.ActionRolloutStart), s.createRollout)),
		h("GET /api/rollouts", auth.RoleViewer, s.listRollouts),
		h("GET /api/rollouts/{id}", auth.RoleViewer, s.getRollout),
		h("POST /api/rollouts/{id}/{action}", auth.RoleAdmin, s.audited(rolloutAction, s.actRollout)),
	}
}

// PublicKey is the update key's public half in standard base64, as boards
// take it (devicefw --update-key).
func (s *Service) PublicKey() string {
	return base64.StdEncoding.EncodeToString(s.cfg.Key.Public().(ed25519.PublicKey))
}

func (s *Service) updateKey(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"public_key": s.PublicKey()})
}

// writeJSON answers v as JSON, like the rest of the API.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client may have gone; nothing to do
}

// writeRaw answers JSON already encoded.
func writeRaw(w http.ResponseWriter, code int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

// httpError answers {"error": message}.
func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, map[string]string{"error": fmt.Sprintf(format, args...)})
}
