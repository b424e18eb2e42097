package main

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/stripeq/stripeq/pkg/execindex"
)

//go:embed web
var webFS embed.FS

// pages holds one template set per page, each with the shared layout.
var pages = func() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, p := range []string{"login", "list", "detail", "error"} {
		out[p] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(webFS, "web/layout.html", "web/"+p+".html"))
	}
	return out
}()

var funcs = template.FuncMap{
	"rel":   relTime,
	"exact": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"num":   thousands,
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

func thousands(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// render writes a page.
func (s *server) render(c *gin.Context, status int, page string, data map[string]any) {
	data["User"] = c.GetString(ctxUser)
	data["Role"] = c.GetString(ctxRole)
	data["Operator"] = c.GetString(ctxRole) == string(roleOperator)
	data["CSRF"] = c.GetString(ctxCSRF)
	data["Queue"] = s.index.Name()
	data["Monitoring"] = monitoringPath + "/"
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Header("Cache-Control", "no-store")
	c.Status(status)
	if err := pages[page].Execute(c.Writer, data); err != nil {
		c.Error(err)
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

// stateTab is one state filter above the table.
type stateTab struct {
	Label, Param, URL string
	Count             int
	Active            bool
}

// handleListPage is the Console: the filter bar, the counts per state and
// one page of executions.
func (s *server) handleListPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		v := c.Request.URL.Query()
		now := time.Now()
		q, err := parseQuery(v, now)
		data := map[string]any{"Title": "Executions", "Params": v, "Q": q}
		if err != nil {
			data["Error"] = err.Error()
			q = query{Limit: defaultLimit}
		}
		ctx := c.Request.Context()
		l, err := s.list(ctx, q)
		if err != nil {
			if !errors.Is(err, execindex.ErrInvalidFilter) {
				c.Error(err)
			}
			data["Error"] = err.Error()
		}
		data["L"] = l
		data["Facets"] = s.facets(ctx)
		data["Tabs"] = stateTabs(v, l.Counts)
		data["From"] = q.Offset + 1
		data["To"] = q.Offset + len(l.Executions)
		if q.Offset > 0 {
			data["PrevURL"] = withParam(v, "page", strconv.Itoa(q.Offset/q.Limit))
		}
		if q.Offset+len(l.Items) < l.Total && q.Offset+q.Limit <= execindex.MaxOffset {
			data["NextURL"] = withParam(v, "page", strconv.Itoa(q.Offset/q.Limit+2))
		}
		data["Filtered"] = q.Filter.ID != "" || q.Type != "" || q.Filter.Livemode != "" || q.Filter.APIVersion != "" ||
			q.Filter.Customer != "" || q.Filter.Account != "" || q.State != "" || !q.Filter.From.IsZero() || !q.Filter.To.IsZero()
		if n := rerunnable(l.Counts, q.Filter.States); n > 0 && data["Error"] == nil && !l.Capped {
			data["Bulk"] = map[string]any{"Count": l.Total, "Text": describe(q, l.Total), "Query": bulkQuery(v, now)}
		}
		s.render(c, http.StatusOK, "list", data)
	}
}

// rerunnable counts the executions a bulk re-run would act on.
func rerunnable(counts map[string]int, states []string) int {
	n := 0
	for _, st := range []string{execindex.StateScheduled, execindex.StateRetry, execindex.StateArchived, execindex.StateCompleted} {
		if len(states) == 0 || slices.Contains(states, st) {
			n += counts[st]
		}
	}
	return n
}

// describe puts a filter in words for the bulk confirmation:
// "re-run all 42 archived invoice.payment_failed in live mode for cus_X".
func describe(q query, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Re-run all %s", thousands(n))
	if q.State != "" {
		b.WriteString(" " + strings.ReplaceAll(q.State, ",", " or "))
	}
	switch {
	case q.Filter.Type != "":
		b.WriteString(" " + q.Filter.Type)
	case q.Filter.TypePrefix != "":
		b.WriteString(" " + q.Filter.TypePrefix + ".*")
	}
	if n == 1 {
		b.WriteString(" execution")
	} else {
		b.WriteString(" executions")
	}
	switch q.Filter.Livemode {
	case "true":
		b.WriteString(" in live mode")
	case "false":
		b.WriteString(" in test mode")
	}
	if q.Filter.Customer != "" {
		b.WriteString(" for customer " + q.Filter.Customer)
	}
	if q.Filter.Account != "" {
		b.WriteString(" of account " + q.Filter.Account)
	}
	if q.Filter.APIVersion != "" {
		b.WriteString(" with API version " + q.Filter.APIVersion)
	}
	if q.Filter.ID != "" {
		b.WriteString(" of event " + q.Filter.ID)
	}
	if q.Since != "" {
		b.WriteString(" received in the last " + q.Since)
	}
	b.WriteString("? Pending and active ones are skipped; completed ones are enqueued again as copies.")
	return b.String()
}

// bulkQuery is the list's query with "since" fixed to absolute times, so
// that the bulk re-run acts on the rows the operator counted.
func bulkQuery(v url.Values, now time.Time) string {
	out := url.Values{}
	for k, vs := range v {
		if k != "page" && k != "limit" && k != "since" {
			out[k] = vs
		}
	}
	if since := v.Get("since"); since != "" {
		if d, err := parseSince(since); err == nil {
			out.Set("from", strconv.FormatInt(now.Add(-d).Unix(), 10))
			if out.Get("to") == "" {
				out.Set("to", strconv.FormatInt(now.Unix(), 10))
			}
		}
	}
	return out.Encode()
}

func withParam(v url.Values, key, value string) string {
	out := url.Values{}
	for k, vs := range v {
		out[k] = vs
	}
	if value == "" {
		out.Del(key)
	} else {
		out.Set(key, value)
	}
	if key != "page" {
		out.Del("page")
	}
	if len(out) == 0 {
		return "/"
	}
	return "/?" + out.Encode()
}

func stateTabs(v url.Values, counts map[string]int) []stateTab {
	total := 0
	for _, n := range counts {
		total += n
	}
	cur := v.Get("state")
	tabs := []stateTab{{Label: "All", Param: "", Count: total, Active: cur == ""}}
	tabs = append(tabs, stateTab{Label: "Failed", Param: "failed", Count: counts[execindex.StateRetry] + counts[execindex.StateArchived], Active: cur == "failed"})
	for _, st := range execindex.States {
		tabs = append(tabs, stateTab{Label: strings.ToUpper(st[:1]) + st[1:], Param: st, Count: counts[st], Active: cur == st})
	}
	for i := range tabs {
		tabs[i].URL = withParam(v, "state", tabs[i].Param)
	}
	return tabs
}

// facetData is what the filter menus offer.
type facetData struct {
	Prefixes    []execindex.ValueCount
	Types       []execindex.ValueCount
	APIVersions []execindex.ValueCount
	Accounts    []execindex.ValueCount
}

func (s *server) facets(ctx context.Context) facetData {
	var f facetData
	f.Types, _ = s.index.Values(ctx, execindex.FieldType)
	f.APIVersions, _ = s.index.Values(ctx, execindex.FieldAPIVersion)
	f.Accounts, _ = s.index.Values(ctx, execindex.FieldAccount)
	byPrefix := map[string]int64{}
	for _, t := range f.Types {
		if p, _, ok := strings.Cut(t.Value, "."); ok {
			byPrefix[p] += t.Count
		}
	}
	for p, n := range byPrefix {
		f.Prefixes = append(f.Prefixes, execindex.ValueCount{Value: p, Count: n})
	}
	slices.SortFunc(f.Prefixes, func(a, b execindex.ValueCount) int { return strings.Compare(a.Value, b.Value) })
	return f
}

// handleDetailPage shows one execution.
func (s *server) handleDetailPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		d, err := s.detail(c.Request.Context(), c.Param("id"))
		if errors.Is(err, errNotFound) {
			s.render(c, http.StatusNotFound, "error", map[string]any{"Title": "Not found",
				"Message": "No execution " + c.Param("id") + " in queue " + s.index.Name() + ". It may have passed its retention and been deleted."})
			return
		}
		if err != nil {
			c.Error(err)
			s.render(c, http.StatusInternalServerError, "error", map[string]any{"Title": "Error", "Message": "Cannot read the execution; see the dashboard's log."})
			return
		}
		s.render(c, http.StatusOK, "detail", map[string]any{"Title": d.Type + " " + d.ID, "D": d, "Pretty": prettyJSON(d.Payload)})
	}
}

// handleLoginPage shows the sign-in form.
func (s *server) handleLoginPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		s.render(c, http.StatusOK, "login", map[string]any{"Title": "Sign in", "Next": safeNext(c.Query("next"))})
	}
}

// safeNext keeps a post-login redirect on this site: next must be a path
// that starts with "/" not followed by "/" or "\\", with no control
// characters, also once percent-decoded (browsers drop tabs and line
// breaks, so "/\t/evil.com" would read as "//evil.com"). Anything else
// becomes "/".
func safeNext(next string) string {
	decoded, err := url.PathUnescape(next)
	if err != nil || !isLocalPath(next) || !isLocalPath(decoded) {
		return "/"
	}
	if u, err := url.Parse(next); err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return next
}

func isLocalPath(p string) bool {
	if len(p) == 0 || p[0] != '/' || (len(p) > 1 && (p[1] == '/' || p[1] == '\\')) {
		return false
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// handleLogin checks the form, within the sign-in limits, and starts a
// session. The form is CSRF-protected by origin (login CSRF would sign a
// victim in as the attacker).
func (s *server) handleLogin() gin.HandlerFunc {
	cop := http.NewCrossOriginProtection()
	return func(c *gin.Context) {
		next := safeNext(c.PostForm("next"))
		if err := cop.Check(c.Request); err != nil {
			c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"message": "cross-origin request refused"})
			return
		}
		acc, ok, err := s.auth.signIn(c.Request.Context(), client(c), c.PostForm("user"), c.PostForm("password"))
		if err != nil {
			c.Header("Retry-After", retryAfter(err))
			s.render(c, http.StatusTooManyRequests, "login", map[string]any{"Title": "Sign in", "Next": next, "Error": "Too many failed attempts. Wait a minute and try again."})
			return
		}
		if !ok {
			s.render(c, http.StatusUnauthorized, "login", map[string]any{"Title": "Sign in", "Next": next, "Error": "Wrong user or password."})
			return
		}
		token, err := s.auth.login(c.Request.Context(), acc)
		if err != nil {
			c.Error(err)
			s.render(c, http.StatusServiceUnavailable, "login", map[string]any{"Title": "Sign in", "Next": next, "Error": "Cannot store the session: Redis does not answer."})
			return
		}
		http.SetCookie(c.Writer, &http.Cookie{
			Name: sessionCookie, Value: token, Path: "/", MaxAge: int(s.cfg.SessionTTL.Seconds()),
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: isTLS(c.Request),
		})
		c.Redirect(http.StatusSeeOther, next)
	}
}

// isTLS reports whether the client reached us over TLS, directly or
// through a proxy that says so.
func isTLS(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

// handleLogout ends the session.
func (s *server) handleLogout() gin.HandlerFunc {
	return func(c *gin.Context) {
		if token := c.GetString(ctxSession); token != "" {
			if err := s.auth.logout(c.Request.Context(), token); err != nil {
				c.Error(err)
			}
		}
		http.SetCookie(c.Writer, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: isTLS(c.Request)})
		c.Redirect(http.StatusSeeOther, "/login")
	}
}
