// The login page: its template and GET /login.

package wsgateway

import (
	"html/template"
	"net/http"
)

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · Switchyard</title>
<style>
:root{color-scheme:light dark;font-family:system-ui,sans-serif}
body{display:grid;place-items:center;min-height:100vh;margin:0;background:Canvas;color:CanvasText}
form{display:grid;gap:.75rem;width:min(20rem,90vw);padding:1.5rem;border:1px solid GrayText;border-radius:.75rem}
input,button{font:inherit;padding:.5rem}button{cursor:pointer}
.err{color:#c62828;margin:0}
</style></head><body>
<form method="post" action="/login">
<h1>Switchyard</h1>
{{if .Error}}<p class="err" role="alert">{{.Error}}</p>{{end}}
<label>Name <input name="name" autocomplete="username" required autofocus value="{{.Name}}"></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Log in</button>
</form></body></html>`))

func (g *Gateway) loginForm(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = loginPage.Execute(w, struct{ Error, Name string }{})
}
