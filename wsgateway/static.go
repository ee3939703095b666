// The dashboard: its files, embedded, and GET / (or the way to log in).

package wsgateway

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/http"

	"switchyard/auth"
	"switchyard/internal/httpapi"
)

// web holds the dashboard: every asset is in the binary, no CDN.
//
//go:embed web
var web embed.FS

func staticHandler() (http.Handler, error) {
	sub, err := fs.Sub(web, "web")
	if err != nil {
		return nil, fmt.Errorf("dashboard assets: %w", err)
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	}), nil
}

// serveIndex serves the dashboard page, or sends the browser to log in.
func (g *Gateway) serveIndex(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/" {
		id, err := g.identify(r, true)
		if errors.Is(err, auth.ErrThrottled) {
			refuseIdentity(w, r, err)
			return
		}
		if err != nil {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		if !id.CanWatch() {
			httpapi.Error(w, http.StatusForbidden, "role %s has no dashboard", id.Role)
			return
		}
	}
	g.static.ServeHTTP(w, r)
}
