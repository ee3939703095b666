package updates

import (
	"crypto/ed25519"
	"encoding/base64"
	"net/http"

	"switchyard/auth"
	"switchyard/history"
	"switchyard/internal/httpapi"
)

// Handler is one HTTP route of the service, for the gateway to serve
// behind its access rules.
type Handler = httpapi.Route

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
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"public_key": s.PublicKey()})
}
