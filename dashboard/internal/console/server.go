package console

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/stripeq/stripeq/dashboard/internal/monitoring"

	"github.com/gin-gonic/gin"

	"github.com/stripeq/stripeq/dashboard/internal/auth"

	"github.com/stripeq/stripeq/dashboard/internal/jobs"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/dashboard/internal/audit"
	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/httpserver/ginserver"
)

// monitoringPath is where asynqmon is mounted.
const monitoringPath = monitoring.Path

// inspector is what the Console asks asynq; *asynq.Inspector is one.
type inspector interface {
	GetTaskInfo(queue, id string) (*asynq.TaskInfo, error)
	RunTask(queue, id string) error
	CancelProcessing(id string) error
	DeleteTask(queue, id string) error
	Queues() ([]string, error)
	ListActiveTasks(queue string, opts ...asynq.ListOption) ([]*asynq.TaskInfo, error)
}

// enqueuer stores a task; *asynq.Client is one.
type enqueuer interface {
	EnqueueContext(ctx context.Context, t *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// server is the dashboard with every dependency it uses.
type server struct {
	log *slog.Logger
	cfg Config
	// monitoring is asynqmon for operators; monitoringRO is asynqmon with
	// ReadOnly set, for viewers. Both are rooted at monitoringPath.
	monitoring, monitoringRO http.Handler
	auth                     *auth.Authenticator
	// authenticate is auth's Authenticate, answering with tooManyRequests.
	authenticate gin.HandlerFunc
	index        *execindex.Shards
	failures     *failures.Store
	rdb          redis.UniversalClient
	tasks        inspector
	queue        enqueuer
	// proxies are TRUSTED_PROXIES; hosts are the Host values auth.AllowHosts
	// accepts (empty: any).
	proxies auth.Proxies
	hosts   []string
	// reads limits each user's Console reads; querySem holds the turns
	// of index queries (see throttle.go).
	reads    *auth.UserLimits
	querySem chan struct{}
	// exports counts the exports running (export.go).
	exports exportSlots
	// recoveries runs the recoveries of recoveries.go.
	recoveries *recoveries
	// deliveries are the events forwarded to destinations.
	deliveries *deliveries
	// versions is what the banner of untested API versions last read.
	versions versionBanner
	// auditLog records every operator action.
	auditLog *audit.Log
	// jobs runs the bulk re-runs larger than maxBulk.
	jobs *jobs.Runner
}

// handler returns the Gin engine serving every route in routes.
func (s *server) handler() http.Handler {
	r := ginserver.NewEngine(s.log, auth.KeyUser, auth.KeyClient)
	// Route on the escaped path, so that an ID holding "/" (as %2F) is
	// one path parameter; parameters are unescaped.
	r.UseRawPath = true
	r.Use(auth.RecordClient(s.proxies), auth.SecurityHeaders(monitoringPath), auth.AllowHosts(s.hosts))
	s.authenticate = s.auth.Authenticate(s.tooManyRequests)
	s.routes(r)
	return r
}

// tooManyRequests answers 429 with Retry-After, after wait: a page saying
// msg to a browser asking for a page, else JSON {"message": msg}.
func (s *server) tooManyRequests(c *gin.Context, wait time.Duration, msg string) {
	c.Header("Retry-After", auth.RetryAfter(wait))
	if s.auth.WantsPage(c.Request) {
		s.render(c, http.StatusTooManyRequests, "error", map[string]any{"Title": "Too many requests", "Message": msg})
		c.Abort()
		return
	}
	c.AbortWithStatusJSON(http.StatusTooManyRequests, gin.H{"message": msg})
}

// newServer builds the dashboard over rdb: mon and monRO are asynqmon
// for operators and for viewers, tasks and queue reach asynq.
func newServer(log *slog.Logger, cfg Config, rdb redis.UniversalClient, mon, monRO http.Handler, tasks inspector, queue enqueuer) *server {
	s := &server{
		log:          log,
		cfg:          cfg,
		monitoring:   mon,
		monitoringRO: monRO,
		auth: auth.New(rdb, auth.Settings{User: cfg.User, Password: cfg.Password, ViewerUser: cfg.ViewerUser, ViewerPassword: cfg.ViewerPassword,
			SessionTTL: cfg.SessionTTL, Mount: monitoringPath}),
		index:      execindex.NewShards(rdb, cfg.Task),
		failures:   failures.New(rdb, 0),
		rdb:        rdb,
		tasks:      tasks,
		queue:      queue,
		proxies:    cfg.TrustedProxies,
		hosts:      cfg.Hosts,
		reads:      auth.NewUserLimits(apiRate, apiBurst),
		querySem:   make(chan struct{}, queryConcurrency),
		recoveries: newRecoveries(log, cfg, rdb, tasks, queue),
		auditLog:   audit.New(rdb, cfg.AuditRetention, log),
		deliveries: &deliveries{rdb: rdb, tasks: asynq.NewInspectorFromRedisClient(rdb), queue: queue},
	}
	s.jobs = jobs.New(rdb, log, cfg.Task.Queue, s.index, s.auditLog, s.rerunOutcome)
	return s
}
