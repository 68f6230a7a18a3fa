package control

import (
	"embed"
	"html"
	"io/fs"
	"net/http"
)

// The browser UI: plain HTML, CSS and JavaScript in ui/, embedded in the
// program, served at / and /ui/. It stands on the API: the session cookie
// of login.go and the events of events.go.

//go:embed ui
var uiFiles embed.FS

// routeUI adds the UI's routes.
func (c *Server) routeUI(handle func(string, http.HandlerFunc)) {
	sub, _ := fs.Sub(uiFiles, "ui")
	files := http.StripPrefix("/ui/", http.FileServerFS(sub))
	handle("GET /login", c.login)
	handle("GET /{$}", c.front)
	handle("GET /ui/", func(w http.ResponseWriter, r *http.Request) {
		uiHeaders(w)
		if r.URL.Path == "/ui/" || r.URL.Path == "/ui/index.html" {
			c.front(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})
}

// uiHeaders keeps the UI's pages to themselves: no other page may frame
// them, and they load nothing from elsewhere.
func uiHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("X-Content-Type-Options", "nosniff")
}

// front is the UI's page for a logged-in browser, and for any other a page
// saying how to log in.
func (c *Server) front(w http.ResponseWriter, r *http.Request) {
	uiHeaders(w)
	w.Header().Set("Cache-Control", "no-store")
	if c.credentialsOf(r) == noCredentials {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(htmlPage("Log in to this servent",
			`<p>This browser is not logged in to the servent at <code>`+html.EscapeString(c.Addr())+`</code>.</p>`+
				`<p>In a terminal, run</p><pre>gnutella ui</pre>`+
				`<p>with the same <code>--data-dir</code> as <code>gnutella serve</code>, and open the link it prints (it works once, for 10 minutes). `+
				`<code>gnutella serve</code> prints one when it starts, too.</p>`)))
		return
	}
	b, err := uiFiles.ReadFile("ui/index.html")
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, apiError{err.Error()})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b)
}

// htmlPage is a small page in the UI's style, for the login pages.
func htmlPage(title, body string) string {
	return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
		`<title>` + html.EscapeString(title) + ` · gnutella</title><link rel="stylesheet" href="/ui/style.css"></head>` +
		`<body class="plain"><main class="card"><h1>` + html.EscapeString(title) + `</h1>` + body + `</main></body></html>`
}

//go:embed openapi.json
var openAPIJSON []byte

// openAPI is GET /api/v1/openapi.json: the API's OpenAPI 3 description.
func openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIJSON)
}
