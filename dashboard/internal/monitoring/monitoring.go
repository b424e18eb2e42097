// Package monitoring mounts asynqmon in the dashboard at Path, behind its
// sign-in: read-only for viewers, its lists bounded, its metrics queries
// checked, its pages served with local fonts and a link back to the
// Console, and every operator's change through it audited with what it
// changed.
//
// Internal to the dashboard command, with no compatibility promise.
package monitoring

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"

	"github.com/stripeq/stripeq/dashboard/internal/audit"

	"github.com/stripeq/stripeq/dashboard/internal/auth"

	"github.com/gin-gonic/gin"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// Path is where asynqmon is mounted.
const Path = "/monitoring"

// Tasks is what the handler asks asynq; *asynq.Inspector is one.
type Tasks interface {
	Queues() ([]string, error)
	ListActiveTasks(queue string, opts ...asynq.ListOption) ([]*asynq.TaskInfo, error)
	CancelProcessing(id string) error
}

// Asynqmon returns asynqmon over opt at Path for operators, and the same
// read-only for viewers, with the event JSON of each task shown
// (PayloadFormatter); prometheusURL is PROMETHEUS_URL, or "". The caller
// closes both.
func Asynqmon(opt asynq.RedisConnOpt, prometheusURL string) (ops, viewers *asynqmon.HTTPHandler) {
	ops = asynqmon.New(asynqmon.Options{RootPath: Path, RedisConnOpt: opt, PrometheusAddress: prometheusURL, PayloadFormatter: PayloadFormatter})
	viewers = asynqmon.New(asynqmon.Options{RootPath: Path, RedisConnOpt: opt, PrometheusAddress: prometheusURL, PayloadFormatter: PayloadFormatter, ReadOnly: true})
	return ops, viewers
}

// PayloadFormatter shows asynqmon the event JSON of a task, decompressed
// when it was stored with PAYLOAD_COMPRESSION=zstd; otherwise it formats
// as asynqmon's default does.
var PayloadFormatter = asynqmon.PayloadFormatterFunc(func(taskType string, payload []byte) string {
	body, err := stripetask.Body(payload)
	if err != nil {
		return err.Error()
	}
	return asynqmon.DefaultPayloadFormatter.FormatPayload(taskType, body)
})

// Handler serves asynqmon to signed-in users.
type Handler struct {
	// ops is asynqmon for operators; viewers is asynqmon with ReadOnly
	// set. Both are rooted at Path.
	ops, viewers http.Handler
	tasks        Tasks
	queues       func() []string
	audit        func(c *gin.Context, e audit.Entry, err error)
	// assets keeps asynqmon's static files, compressed and cacheable.
	assets assets
}

// NewHandler serves ops (asynqmon) to operators and viewers (the same,
// read-only) to viewers. tasks reaches asynq; queues are the deployment's
// own queues; audit records an operator's change with the request's user.
func NewHandler(ops, viewers http.Handler, tasks Tasks, queues func() []string, audit func(c *gin.Context, e audit.Entry, err error)) *Handler {
	return &Handler{ops: ops, viewers: viewers, tasks: tasks, queues: queues, audit: audit}
}

// publicAssets are asynqmon's files a browser fetches without
// the user's credentials (a web app manifest is fetched without cookies)
// or before any page: they hold nothing of this deployment, so they are
// served without a login, and nothing else under Path is.
var publicAssets = []string{
	"/manifest.json", "/favicon.ico", "/favicon-16x16.png", "/favicon-32x32.png",
	"/apple-touch-icon.png", "/android-chrome-192x192.png", "/android-chrome-512x512.png", "/robots.txt",
}

// PublicAssets answers GET and HEAD of the publicAssets from the read-only asynqmon, and passes every
// other request on to the login.
func (h *Handler) PublicAssets() gin.HandlerFunc {
	return func(c *gin.Context) {
		name := strings.TrimPrefix(c.Request.URL.Path, Path)
		if auth.IsSafe(c.Request.Method) && slices.Contains(publicAssets, name) {
			h.viewers.ServeHTTP(c.Writer, c.Request)
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
	// MaxPageSize is the most tasks one page may hold: the
	// largest asynqmon's own page menu offers.
	MaxPageSize = 100
	// defaultPageSize is asynqmon's page size when none is
	// given.
	defaultPageSize = 20
)

// errPage is wrapped by checkPage's refusals.
var errPage = errors.New("asynqmon lists are bounded")

// checkPage checks the size and page of a request to asynqmon's
// API: each given at most once, size from 1 to MaxPageSize, page
// from 1 and starting within the first execindex.MaxOffset tasks, as the
// Console's list. asynqmon reads them with strconv.Atoi, as here.
func checkPage(v url.Values) error {
	for _, name := range []string{"size", "page"} {
		if len(v[name]) > 1 {
			return fmt.Errorf("%w: %s may be given once", errPage, name)
		}
	}
	size := defaultPageSize
	if raw := v.Get("size"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > MaxPageSize {
			return fmt.Errorf("%w: size must be 1–%d", errPage, MaxPageSize)
		}
		size = n
	}
	if raw := v.Get("page"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			return fmt.Errorf("%w: page must be a number from 1", errPage)
		}
		if n-1 > execindex.MaxOffset/size {
			return fmt.Errorf("%w: page %d is deeper than the first %d tasks; find older executions with the Console's filters", errPage, n, execindex.MaxOffset)
		}
	}
	return nil
}

// Serve serves asynqmon: read-only for viewers, whose
// state-changing requests get 403 before they reach it. Its lists take
// only bounded pages (checkPage), and the queues parameter of
// its metrics API, which asynqmon pastes into PromQL unescaped, may only
// name known queues; 400 otherwise.
func (h *Handler) Serve() gin.HandlerFunc {
	return func(c *gin.Context) {
		if strings.HasPrefix(c.Request.URL.Path, Path+"/api/") {
			v := c.Request.URL.Query()
			err := checkPage(v)
			if err == nil && c.Request.URL.Path == Path+"/api/metrics" {
				err = h.checkMetricsQueues(v)
			}
			if err != nil {
				c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"message": err.Error()})
				return
			}
		}
		mon := h.ops
		if c.GetString(auth.KeyRole) != string(auth.Operator) {
			if !auth.IsSafe(c.Request.Method) {
				c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"message": "viewers may not change anything; sign in as an operator"})
				return
			}
			mon = h.viewers
		}
		if auth.IsSafe(c.Request.Method) {
			if h.assets.serve(c.Writer, c.Request, h.viewers) {
				return
			}
			w := &htmlRewriter{ResponseWriter: c.Writer}
			mon.ServeHTTP(w, c.Request)
			w.flush()
			return
		}
		// An operator's change goes to the audit log too, by its API path
		// ("POST queues/stripe/archived_tasks/evt_1:run") with what it
		// changed (audit.go).
		if q, ok := cancelAllQueue(c.Request.Method, c.Request.URL.Path); ok {
			h.cancelAll(c, q)
			return
		}
		w := &htmlRewriter{ResponseWriter: c.Writer, answer: &limitedBuffer{max: maxAuditAnswer}}
		mon.ServeHTTP(w, c.Request)
		w.flush()
		h.auditChange(c, c.Writer.Status(), w.answer.Bytes())
	}
}

// checkMetricsQueues accepts the queues parameter of asynqmon's metrics
// API only when every comma-separated name is a queue of this deployment
// or one asynq knows, and is made of letters, digits, "_", "-", "." and
// ":" alone.
func (h *Handler) checkMetricsQueues(v url.Values) error {
	if len(v["queues"]) > 1 {
		return errors.New("queues may be given once")
	}
	raw := v.Get("queues")
	if raw == "" {
		return nil
	}
	known := h.queues()
	if more, err := h.tasks.Queues(); err == nil {
		known = append(slices.Clone(known), more...)
	}
	for q := range strings.SplitSeq(raw, ",") {
		if !queueName.MatchString(q) || !slices.Contains(known, q) {
			return fmt.Errorf("queues: %q is not a known queue", q)
		}
	}
	return nil
}

// queueName is the shape of a queue name the metrics API accepts.
var queueName = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,200}$`)

// PublicAssetNames are the paths, under Path, that PublicAssets serves
// without a login.
func PublicAssetNames() []string { return slices.Clone(publicAssets) }
