package wsgateway

import (
	"embed"
	"fmt"
	"io/fs"
	"net/http"
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
