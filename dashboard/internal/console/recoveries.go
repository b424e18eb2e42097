package console

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/stripeq/stripeq/dashboard/internal/auth"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/dashboard/internal/audit"
	"github.com/stripeq/stripeq/pkg/logging"
	"github.com/stripeq/stripeq/pkg/recovery"
)

// recoveryRoutes adds the recoveries' JSON API: reading for every
// signed-in user, starting for operators (op), CSRF-protected as every
// mutation.
func (s *server) recoveryRoutes(api, op *gin.RouterGroup) {
	api.GET("/recoveries", s.handleRecoveries())
	api.GET("/recoveries/:id", s.handleRecovery())
	op.POST("/recoveries", s.handleStartRecovery())
}

// maxRunningRecoveries bounds the recoveries one dashboard runs at once;
// each lists pages from Stripe one at a time.
const maxRunningRecoveries = 4

// recoveryHeartbeat is how often a running recovery's record is written
// even without progress (while it waits out a 429), so that readers can
// tell it from one whose dashboard stopped.
const recoveryHeartbeat = 30 * time.Second

// recoveries runs recoveries in the background of the dashboard.
type recoveries struct {
	log     *slog.Logger
	rec     *recovery.Recoverer // nil without STRIPE_SECRET_KEY
	records *recovery.Records

	ctx    context.Context // ends when the dashboard stops
	cancel context.CancelFunc
	wg     sync.WaitGroup
	slots  chan struct{}
}

func newRecoveries(log *slog.Logger, cfg Config, rdb redis.UniversalClient, tasks recovery.TaskGetter, queue recovery.Enqueuer) *recoveries {
	ctx, cancel := context.WithCancel(context.Background())
	r := &recoveries{log: log, records: &recovery.Records{RDB: rdb}, ctx: ctx, cancel: cancel, slots: make(chan struct{}, maxRunningRecoveries)}
	r.rec = recovery.New(cfg.Recovery, cfg.Task, rdb, tasks, queue, func(err error, wait time.Duration) {
		log.Warn("recovery: Stripe refused a page; retrying", "wait", wait.String(), logging.Err(err))
	})
	return r
}

// stop ends the running recoveries, marking them failed, and waits for
// them.
func (r *recoveries) stop() {
	r.cancel()
	r.wg.Wait()
}

// handleStartRecovery is POST /api/recoveries?since=…[&until=…][&dry_run=true][&account=acct_…]:
// it starts a recovery and answers 202 with its record.
func (s *server) handleStartRecovery() gin.HandlerFunc {
	return func(c *gin.Context) {
		r := s.recoveries
		if r.rec == nil {
			c.AbortWithStatusJSON(http.StatusServiceUnavailable, gin.H{"message": "recovery needs STRIPE_SECRET_KEY on the dashboard: a restricted key with read access to Events and connected accounts"})
			return
		}
		q := c.Request.URL.Query()
		now := time.Now()
		var req recovery.Request
		var err error
		if req.Since, err = recovery.ParseTime("since", q.Get("since"), now); q.Get("since") == "" {
			err = errors.New("since is required: a duration (2h, 7d) or an RFC 3339 time")
		}
		if err == nil && q.Get("until") != "" {
			req.Until, err = recovery.ParseTime("until", q.Get("until"), now)
		}
		if err == nil {
			switch v := q.Get("dry_run"); v {
			case "", "false", "0":
			case "true", "1":
				req.DryRun = true
			default:
				err = errors.New("dry_run must be true or false")
			}
		}
		req.Account = q.Get("account")
		if err == nil {
			req, err = r.rec.Check(req)
		}
		if err != nil {
			c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"message": err.Error()})
			return
		}
		select {
		case r.slots <- struct{}{}:
		default:
			c.AbortWithStatusJSON(http.StatusTooManyRequests, gin.H{"message": "too many recoveries are running; wait for one to finish"})
			return
		}
		rec := recovery.Record{
			ID: recovery.NewID(), State: recovery.StateRunning,
			StartedBy: c.GetString(auth.KeyUser), StartedAt: now, UpdatedAt: now,
			Since: req.Since.UTC(), Until: req.Until.UTC(), Account: req.Account, DryRun: req.DryRun,
		}
		if err := r.records.Save(c.Request.Context(), rec); err != nil {
			<-r.slots
			apiError(c, err)
			return
		}
		window := rec.Since.Format(time.RFC3339) + " to " + rec.Until.Format(time.RFC3339)
		if rec.Account != "" {
			window += " of " + rec.Account
		}
		if rec.DryRun {
			window += " (dry run)"
		}
		s.audit(c, audit.Entry{Action: audit.Recovery, Target: window, Detail: "recovery " + rec.ID}, nil)
		s.log.Info("recovery started", "recovery_id", rec.ID, slog.String(auth.KeyUser, rec.StartedBy),
			"since", rec.Since.Format(time.RFC3339), "until", rec.Until.Format(time.RFC3339), "account", rec.Account, "dry_run", rec.DryRun)
		r.wg.Add(1)
		go r.run(rec, req)
		c.JSON(http.StatusAccepted, rec)
	}
}

// run runs one recovery, keeping its record up to date.
func (r *recoveries) run(rec recovery.Record, req recovery.Request) {
	defer r.wg.Done()
	defer func() { <-r.slots }()
	var mu sync.Mutex
	save := func(update func(*recovery.Record)) {
		mu.Lock()
		update(&rec)
		rec.UpdatedAt = time.Now()
		cur := rec
		mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.records.Save(ctx, cur); err != nil {
			r.log.Warn("recovery: cannot save its progress", "recovery_id", cur.ID, logging.Err(err))
		}
	}
	beat := time.NewTicker(recoveryHeartbeat)
	defer beat.Stop()
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-beat.C:
				save(func(*recovery.Record) {})
			}
		}
	}()
	p, err := r.rec.Run(r.ctx, req, func(p recovery.Progress) {
		save(func(rec *recovery.Record) { setCounts(rec, p) })
	})
	close(done)
	save(func(rec *recovery.Record) {
		setCounts(rec, p)
		rec.FinishedAt = time.Now().UTC()
		rec.State = recovery.StateDone
		if err != nil {
			rec.State = recovery.StateFailed
			rec.Error = logging.RedactError(err)
			if r.ctx.Err() != nil {
				rec.Error = "the dashboard stopped during the recovery; start it again (nothing is stored twice)"
			}
		}
	})
	log := r.log.Info
	if err != nil {
		log = r.log.Warn
	}
	log("recovery finished", "recovery_id", rec.ID, "state", rec.State, "listed", p.Listed, "missing", p.Missing, "enqueued", p.Enqueued, "skipped", p.Skipped, logging.Err(err))
}

func setCounts(rec *recovery.Record, p recovery.Progress) {
	rec.Progress = p
	rec.Listed, rec.Missing, rec.Enqueued = p.Listed, p.Missing, p.Enqueued
}

// handleRecovery is GET /api/recoveries/:id.
func (s *server) handleRecovery() gin.HandlerFunc {
	return func(c *gin.Context) {
		rec, err := s.recoveries.records.Get(c.Request.Context(), c.Param("id"))
		if errors.Is(err, recovery.ErrNotFound) {
			c.AbortWithStatusJSON(http.StatusNotFound, gin.H{"message": err.Error()})
			return
		}
		if err != nil {
			apiError(c, err)
			return
		}
		c.JSON(http.StatusOK, rec)
	}
}

// handleRecoveries is GET /api/recoveries[?limit=N]: the newest recoveries
// (20 by default, at most recovery.KeepRecords), who started them, when,
// their windows and counts.
func (s *server) handleRecoveries() gin.HandlerFunc {
	return func(c *gin.Context) {
		n := 20
		if v := c.Query("limit"); v != "" {
			var err error
			if n, err = strconv.Atoi(v); err != nil || n < 1 || n > recovery.KeepRecords {
				c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"message": "limit must be 1 to " + strconv.Itoa(recovery.KeepRecords)})
				return
			}
		}
		recs, err := s.recoveries.records.List(c.Request.Context(), n)
		if err != nil {
			apiError(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"recoveries": recs})
	}
}
