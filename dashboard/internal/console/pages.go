package console

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/stripeq/stripeq/dashboard/internal/auth"

	"github.com/stripeq/stripeq/dashboard/internal/chart"

	"github.com/gin-gonic/gin"

	"github.com/stripeq/stripeq/pkg/apiversion"
)

//go:embed web
var webFS embed.FS

// pages holds one template set per page, each with the shared layout.
var pages = func() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, p := range []string{"login", "list", "detail", "error", "deliveries", "delivery", "recoveries", "audit"} {
		out[p] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(webFS, "web/layout.html", "web/"+p+".html"))
	}
	return out
}()

var funcs = template.FuncMap{
	"rel":   relTime,
	"exact": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	// dtl is t for an <input type="datetime-local">, in UTC.
	"dtl": func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05") },
	// unix shows a header of unix seconds, such as created, as a UTC time.
	"unix": func(s string) string {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return ""
		}
		return time.Unix(n, 0).UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"num": chart.Thousands,
	"ms": func(ms int64) string {
		if ms < 1000 {
			return fmt.Sprintf("%d ms", ms)
		}
		return (time.Duration(ms) * time.Millisecond).Round(10 * time.Millisecond).String()
	},
	"deref": func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return *t
	},
	"truncate": func(n int, s string) string {
		if len([]rune(s)) <= n {
			return s
		}
		return string([]rune(s)[:n-1]) + "…"
	},
	"pretty": func(b []byte) string { return prettyJSON(b) },
	// pathesc escapes one path segment: an ID in a URL path. The
	// template's own escaping keeps "#", "?" and "/", which would cut or
	// redirect the URL.
	"pathesc": url.PathEscape,
}

// relTime says how long ago (or how soon) t is: "12s ago", "in 3m".
func relTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := time.Since(t)
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < 5*time.Second:
		return "just now"
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%dh", int(d.Hours()))
	default:
		s = fmt.Sprintf("%dd", int(d.Hours()/24))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// render writes a page.
func (s *server) render(c *gin.Context, status int, page string, data map[string]any) {
	data["User"] = c.GetString(auth.KeyUser)
	data["Role"] = c.GetString(auth.KeyRole)
	data["Operator"] = c.GetString(auth.KeyRole) == string(auth.Operator)
	data["CSRF"] = c.GetString(auth.KeyCSRF)
	data["Queue"] = s.index.Name()
	data["Monitoring"] = monitoringPath + "/"
	if data["Operator"] == true {
		// The confirmations name the destinations a re-run forwards to.
		data["Destinations"], _ = s.deliveries.destinations()
	}
	if data["User"] != "" {
		data["UntestedVersions"] = s.untestedVersions(c.Request.Context())
		data["TestedVersions"] = apiversion.Tested()
	}
	// Render into a buffer first: a template error halfway must be a 500,
	// not a 200 with half a page.
	var buf bytes.Buffer
	if err := pages[page].Execute(&buf, data); err != nil {
		c.Error(err)
		c.String(http.StatusInternalServerError, "the page could not be rendered; the dashboard's log says why")
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// handleFavicon serves the Console's icon at /favicon.ico, where browsers
// look for it, without a login.
func handleFavicon() gin.HandlerFunc {
	icon, _ := fs.ReadFile(webFS, "web/static/favicon.svg")
	return func(c *gin.Context) {
		c.Header("Cache-Control", "public, max-age=86400")
		c.Data(http.StatusOK, "image/svg+xml", icon)
	}
}

// handleStatic serves the Console's own CSS and JavaScript. They hold
// nothing secret, and the login page needs them, so they need no login.
// It serves files only: a directory answers 404, never a listing.
func handleStatic() gin.HandlerFunc {
	sub, _ := fs.Sub(webFS, "web/static")
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return func(c *gin.Context) {
		name := strings.TrimPrefix(path.Clean(c.Param("file")), "/")
		if st, err := fs.Stat(sub, name); err != nil || !st.Mode().IsRegular() || strings.HasSuffix(c.Param("file"), "/") {
			c.AbortWithStatusJSON(http.StatusNotFound, gin.H{"message": "not found"})
			return
		}
		c.Header("Cache-Control", "public, max-age=300")
		files.ServeHTTP(c.Writer, c.Request)
	}
}
