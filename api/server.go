package main

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/dedupe"
	"github.com/stripeq/stripeq/pkg/httpserver/ginserver"
	"github.com/stripeq/stripeq/pkg/redisbatch"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/taskstore"
)

// maxBodyBytes caps a delivery's body. Stripe's events are a few KB; the
// largest are well under this.
const maxBodyBytes = 1 << 20

// enqueueTimeout bounds the Redis work of one delivery, so that a Redis
// outage gives Stripe a 503 rather than a hanging request.
const enqueueTimeout = 3 * time.Second

// readyTimeout bounds the Redis PING of /readyz.
const readyTimeout = time.Second

// storer stores an event's task with its duplicate marker;
// *taskstore.Store is one.
type storer interface {
	Store(ctx context.Context, t taskstore.Task, m *taskstore.Marker) (taskstore.Result, error)
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
	// store writes each event's task and duplicate marker in one script,
	// sharing a pipeline with the deliveries in flight (redisbatch); with
	// REDIS_WAIT_REPLICAS, the write is confirmed on that many replicas
	// before the 200.
	store storer
	// rdb is the Redis of store: the api pings it.
	rdb   redis.UniversalClient
	marks *dedupe.Marks
	// index records each stored event for the dashboard's Console, in
	// the background; nil skips it.
	index indexer

	metrics *apiMetrics

	seenVersions sync.Map // api_version values already logged as mismatched
}

// newServer returns the receiver storing tasks in rdb, keeping duplicate
// markers for cfg.DedupeWindow. Its index is nil until set.
func newServer(log *slog.Logger, cfg config, rdb redis.UniversalClient) *server {
	store := taskstore.New(redisbatch.New(rdb))
	store.WaitReplicas = cfg.WaitReplicas
	store.WaitTimeout = cfg.WaitTimeout
	return &server{
		log:      log,
		verifier: verifier{secrets: cfg.Secrets, tolerance: cfg.Tolerance, now: time.Now},
		permits:  cfg.permits(),
		taskOpts: cfg.Task,
		store:    store,
		rdb:      rdb,
		marks:    dedupe.New(rdb, cfg.DedupeWindow),
		metrics:  newMetrics(),
	}
}

// handler returns the Gin engine serving every route in routes.
func (s *server) handler() http.Handler {
	r := ginserver.NewEngine(s.log, ctxOutcome, ctxEventID, ctxEventType)
	r.Use(refuseConflictingLengths())
	s.routes(r)
	r.NoRoute(func(c *gin.Context) { c.JSON(http.StatusNotFound, gin.H{"message": "not found"}) })
	r.NoMethod(func(c *gin.Context) { c.JSON(http.StatusMethodNotAllowed, gin.H{"message": "method not allowed"}) })
	return r
}
