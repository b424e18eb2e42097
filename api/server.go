package main

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/dedupe"
	"github.com/stripeq/stripeq/pkg/httpserver"
	"github.com/stripeq/stripeq/pkg/redisbatch"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// maxBodyBytes caps a delivery's body. Stripe's events are a few KB; the
// largest are well under this.
const maxBodyBytes = 1 << 20

// enqueueTimeout bounds the Redis work of one delivery, so that a Redis
// outage gives Stripe a 503 rather than a hanging request.
const enqueueTimeout = 3 * time.Second

// readyTimeout bounds the Redis PING of /readyz.
const readyTimeout = time.Second

// enqueuer stores a task; *asynq.Client is one.
type enqueuer interface {
	EnqueueContext(ctx context.Context, t *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// indexer records a stored event for the Console without making the
// delivery wait; *execindex.Writer is one.
type indexer interface {
	Add(id string, m stripetask.Metadata, t time.Time)
}

// server is the receiver with every dependency it uses.
type server struct {
	log      *slog.Logger
	verifier verifier
	permits  func(eventType string) bool
	taskOpts stripetask.Options
	queue    enqueuer
	// rdb is the Redis of queue: the api pings it and writes each event's
	// duplicate marker and index entry there.
	rdb redis.UniversalClient
	// batch sends the small round trips of concurrent deliveries (their
	// duplicate checks, then their markers and index entries) together.
	batch *redisbatch.Batcher
	marks *dedupe.Marks
	// waitReplicas and waitTimeout are REDIS_WAIT_REPLICAS and
	// REDIS_WAIT_TIMEOUT: the marker, as the task, is confirmed on that
	// many replicas before the 200.
	waitReplicas int
	waitTimeout  time.Duration
	// index records each stored event for the dashboard's Console, in
	// the background; nil skips it.
	index indexer

	metrics *apiMetrics

	seenVersions sync.Map // api_version values already logged as mismatched
}

// newServer returns the receiver storing tasks with queue in rdb, keeping
// duplicate markers for cfg.DedupeWindow. Its index is nil until set.
func newServer(log *slog.Logger, cfg config, queue enqueuer, rdb redis.UniversalClient) *server {
	return &server{
		log:          log,
		verifier:     verifier{secrets: cfg.Secrets, tolerance: cfg.Tolerance, now: time.Now},
		permits:      cfg.permits(),
		taskOpts:     cfg.Task,
		queue:        queue,
		rdb:          rdb,
		batch:        redisbatch.New(rdb),
		marks:        dedupe.New(rdb, cfg.DedupeWindow),
		waitReplicas: cfg.WaitReplicas,
		waitTimeout:  cfg.WaitTimeout,
		metrics:      newMetrics(),
	}
}

// handler returns the Gin engine serving every route in routes.
func (s *server) handler() http.Handler {
	r := httpserver.NewEngine(s.log, ctxOutcome, ctxEventID, ctxEventType)
	r.Use(refuseConflictingLengths())
	s.routes(r)
	r.NoRoute(func(c *gin.Context) { c.JSON(http.StatusNotFound, gin.H{"message": "not found"}) })
	r.NoMethod(func(c *gin.Context) { c.JSON(http.StatusMethodNotAllowed, gin.H{"message": "method not allowed"}) })
	return r
}
