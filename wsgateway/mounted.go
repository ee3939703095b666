// Mounted routes: handlers of other packages (Config.Routes) served on the
// gateway's mux behind its access rules.

package wsgateway

import (
	"errors"
	"fmt"
	"net/http"

	"switchyard/auth"
	"switchyard/internal/httpapi"
)

// Route is a handler of another package the gateway serves behind its
// access rules (see httpapi.Route).
type Route = httpapi.Route

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
			httpapi.Error(w, http.StatusForbidden, "role %s may not %s %s (it needs %s)", id.Role, r.Method, r.URL.Path, rt.Role)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !g.sameOrigin(w, r) {
			return
		}
		rt.Handler.ServeHTTP(w, r.WithContext(auth.NewContext(r.Context(), id)))
	})
}
