package console

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/stripeq/stripeq/dashboard/internal/auth"

	"github.com/gin-gonic/gin"

	"github.com/stripeq/stripeq/pkg/execindex"
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
		if auth.IsSafe(c.Request.Method) && slices.Contains(monitoringPublicAssets, name) {
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
	// answer, when set, keeps the start of any other answer (for the
	// audit log).
	answer *limitedBuffer
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
	if w.answer != nil {
		w.answer.keep(b)
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

// Bounds of asynqmon's lists. asynqmon passes any size and page to asynq,
// which reads the whole page in one Lua script: a size of 100,000 held
// Redis for 2.26 s and grew the dashboard by gigabytes.
const (
	// maxMonitoringPageSize is the most tasks one page may hold: the
	// largest asynqmon's own page menu offers.
	maxMonitoringPageSize = 100
	// monitoringDefaultPageSize is asynqmon's page size when none is
	// given.
	monitoringDefaultPageSize = 20
)

// errMonitoringPage is wrapped by checkMonitoringPage's refusals.
var errMonitoringPage = errors.New("asynqmon lists are bounded")

// checkMonitoringPage checks the size and page of a request to asynqmon's
// API: each given at most once, size from 1 to maxMonitoringPageSize, page
// from 1 and starting within the first execindex.MaxOffset tasks, as the
// Console's list. asynqmon reads them with strconv.Atoi, as here.
func checkMonitoringPage(v url.Values) error {
	for _, name := range []string{"size", "page"} {
		if len(v[name]) > 1 {
			return fmt.Errorf("%w: %s may be given once", errMonitoringPage, name)
		}
	}
	size := monitoringDefaultPageSize
	if raw := v.Get("size"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxMonitoringPageSize {
			return fmt.Errorf("%w: size must be 1–%d", errMonitoringPage, maxMonitoringPageSize)
		}
		size = n
	}
	if raw := v.Get("page"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			return fmt.Errorf("%w: page must be a number from 1", errMonitoringPage)
		}
		if n-1 > execindex.MaxOffset/size {
			return fmt.Errorf("%w: page %d is deeper than the first %d tasks; find older executions with the Console's filters", errMonitoringPage, n, execindex.MaxOffset)
		}
	}
	return nil
}
