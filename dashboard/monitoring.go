package main

import (
	"bytes"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// monitoringPublicAssets are asynqmon's files a browser fetches without
// the user's credentials (a web app manifest is fetched without cookies)
// or before any page: they hold nothing of this deployment, so they are
// served without a login, and nothing else under monitoringPath is.
var monitoringPublicAssets = []string{
	"/manifest.json", "/favicon.ico", "/favicon-16x16.png", "/favicon-32x32.png",
	"/apple-touch-icon.png", "/android-chrome-192x192.png", "/android-chrome-512x512.png", "/robots.txt",
}

// serveMonitoringPublicAssets answers GET and HEAD of the
// monitoringPublicAssets from the read-only asynqmon, and passes every
// other request on to the login.
func (s *server) serveMonitoringPublicAssets() gin.HandlerFunc {
	return func(c *gin.Context) {
		name := strings.TrimPrefix(c.Request.URL.Path, monitoringPath)
		if isSafe(c.Request.Method) && slices.Contains(monitoringPublicAssets, name) {
			s.monitoringRO.ServeHTTP(c.Writer, c.Request)
			c.Abort()
		}
	}
}

// googleFonts are the stylesheets asynqmon's page loads from the internet.
// The page gets the dashboard's own copy of those fonts instead, so that
// no request leaves the host.
var googleFonts = []string{
	`<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto:300,400,500,700&display=swap"/>`,
	`<link rel="stylesheet" href="https://fonts.googleapis.com/icon?family=Material+Icons"/>`,
}

// consoleLink is added to every asynqmon page: the way back to the Console.
const consoleLink = `<a id="stripeq-console" href="/">← stripeq Console</a>`

// htmlRewriter holds back an HTML answer of asynqmon, to rewrite it in
// flush; any other answer passes through untouched.
type htmlRewriter struct {
	gin.ResponseWriter
	status int
	html   bool
	buf    bytes.Buffer
}

func (w *htmlRewriter) WriteHeader(status int) {
	w.status = status
	w.html = strings.HasPrefix(w.Header().Get("Content-Type"), "text/html")
	if !w.html {
		w.ResponseWriter.WriteHeader(status)
	}
}

func (w *htmlRewriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		// asynqmon writes its page with no Content-Type: net/http would
		// sniff it from these first bytes, so do the same here.
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", http.DetectContentType(b))
		}
		w.WriteHeader(http.StatusOK)
	}
	if w.html {
		return w.buf.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

func (w *htmlRewriter) WriteString(s string) (int, error) { return w.Write([]byte(s)) }

// flush writes the held-back page with the local fonts and the link to
// the Console.
func (w *htmlRewriter) flush() {
	if !w.html {
		return
	}
	page := w.buf.String()
	for i, link := range googleFonts {
		local := ""
		if i == 0 {
			local = `<link rel="stylesheet" href="/static/monitoring.css"/>`
		}
		page = strings.Replace(page, link, local, 1)
	}
	page = strings.Replace(page, "</body>", consoleLink+"</body>", 1)
	w.Header().Set("Content-Length", strconv.Itoa(len(page)))
	w.ResponseWriter.WriteHeader(w.status)
	w.ResponseWriter.WriteString(page)
}
