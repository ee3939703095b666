// Mounted routes: handlers of other packages (Config.Routes) served on the
// gateway's mux behind its access rules.

package wsgateway

import (
	"errors"
	"fmt"
	"net/http"

	"switchyard/auth"
)

// Route is a handler of another package (the update service's firmware
// and rollout API, say) served by the gateway behind its access rules:
//
//   - without credentials where credentials are needed: 401 with
//     WWW-Authenticate (HTTP Basic, a Bearer token or a session cookie
//     identify the caller, as on /api);
//   - a caller whose role is below Role: 403 with a JSON error;
//   - a request other than GET or HEAD from a page of another origin: 403,
//     as on /api;
//   - Role auth.RoleDevice opens the route to boards' credentials, which
//     get 403 on every other path but /healthz.
//
// The handler finds the caller with auth.FromContext(r.Context()). It gets
// the server's own ResponseWriter, so http.NewResponseController(w) can
// move the read and write deadlines (a 64 MiB upload or a slow board's
// download outlives the server's timeouts), and the request body as it
// comes, without a size limit: the handler sets its own.
type Route struct {
	// Pattern is a net/http ServeMux pattern ("POST /api/firmware",
	// "GET /firmware/{sha}"); it must not collide with the gateway's own.
	Pattern string
	// Role is the least role that may use the route: auth.RoleDevice to
	// auth.RoleAdmin.
	Role auth.Role
	// Handler serves the route.
	Handler http.Handler
}

// checkRoute reports what is wrong with rt (the mux itself reports bad and
// colliding patterns: see handle).
func checkRoute(rt Route) error {
	switch {
	case rt.Pattern == "":
		return errors.New("empty pattern")
	case rt.Handler == nil:
		return errors.New("no handler")
	case rt.Role < auth.RoleDevice || rt.Role > auth.RoleAdmin:
		return fmt.Errorf("role %s: want device, viewer, operator or admin", rt.Role)
	}
	return nil
}

// handle registers h on mux for pattern, returning ServeMux's panic (an
// invalid pattern, or one that collides with another) as an error.
func handle(mux *http.ServeMux, pattern string, h http.Handler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%v", p)
		}
	}()
	mux.Handle(pattern, h)
	return nil
}

// guardRoute serves rt behind the access rules (see Route).
func (g *Gateway) guardRoute(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := g.identify(r, false)
		switch {
		case err != nil:
			refuseIdentity(w, r, err)
			return
		case id.Role < rt.Role:
			httpError(w, http.StatusForbidden, "role %s may not %s %s (it needs %s)", id.Role, r.Method, r.URL.Path, rt.Role)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !g.sameOrigin(w, r) {
			return
		}
		rt.Handler.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), id)))
	})
}
