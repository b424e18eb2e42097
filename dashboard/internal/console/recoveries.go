package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/stripeq/stripeq/dashboard/internal/auth"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/dashboard/internal/audit"
	"github.com/stripeq/stripeq/pkg/logging"
	"github.com/stripeq/stripeq/pkg/recovery"
	"github.com/stripeq/stripeq/pkg/stripetask"
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

// handleStartRecovery is POST /api/recoveries?since=…[&until=…][&dry_run=true][&account=acct_…],
// or POST /api/recoveries?from=rec_… (see boundRequest): it starts a
// recovery and answers 202 with its record.
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
		status := http.StatusBadRequest
		if from := q.Get("from"); from != "" {
			req, status, err = r.boundRequest(c.Request.Context(), q)
		} else {
			req, err = parseRecoveryRequest(q, now)
		}
		if err == nil {
			status = http.StatusBadRequest
			req, err = r.rec.Check(req)
		}
		if err != nil {
			if status == http.StatusInternalServerError {
				apiError(c, err)
				return
			}
			c.AbortWithStatusJSON(status, gin.H{"message": err.Error()})
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
			From: q.Get("from"),
		}
		req.ID = rec.ID
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
		entry := audit.Entry{Action: audit.Recovery, Target: window, Detail: "recovery " + rec.ID}
		if rec.From != "" {
			entry.Count = len(req.Only)
			entry.Detail += " of the " + strconv.Itoa(len(req.Only)) + " events previewed by " + rec.From
		}
		s.audit(c, entry, nil)
		s.log.Info("recovery started", "recovery_id", rec.ID, slog.String(auth.KeyUser, rec.StartedBy),
			"since", rec.Since.Format(time.RFC3339), "until", rec.Until.Format(time.RFC3339), "account", rec.Account, "dry_run", rec.DryRun,
			"from", rec.From, "events", len(req.Only))
		r.wg.Add(1)
		go r.run(rec, req)
		c.JSON(http.StatusAccepted, viewRecovery(rec))
	}
}

// parseRecoveryRequest reads the window of POST /api/recoveries.
func parseRecoveryRequest(q url.Values, now time.Time) (recovery.Request, error) {
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
	return req, err
}

// boundRequest reads POST /api/recoveries?from=rec_…: a run bound to that
// dry run, over its window and account, that stores only the events it
// listed (recovery.Request.Only). It refuses, with the status to answer,
// any other parameter (400), an unknown ID (404), a recovery that is not
// a finished dry run (409), one that found nothing missing (409), and one
// whose list was capped (409): it found more than the
// recovery.MaxPreviewEvents it keeps, so "store these events" could not
// mean all of them; the operator previews a narrower window instead.
func (r *recoveries) boundRequest(ctx context.Context, q url.Values) (recovery.Request, int, error) {
	from := q.Get("from")
	for name := range q {
		if name != "from" {
			return recovery.Request{}, http.StatusBadRequest, fmt.Errorf("from takes the window and account of its dry run: give no %s", name)
		}
	}
	prev, err := r.records.Get(ctx, from)
	switch {
	case errors.Is(err, recovery.ErrNotFound):
		return recovery.Request{}, http.StatusNotFound, err
	case err != nil:
		return recovery.Request{}, http.StatusInternalServerError, err
	case !prev.DryRun:
		return recovery.Request{}, http.StatusConflict, fmt.Errorf("%s is a run, not a dry run: only a preview's events can be stored", from)
	case prev.State != recovery.StateDone:
		return recovery.Request{}, http.StatusConflict, fmt.Errorf("the dry run %s is %s: store its events once it is done", from, prev.State)
	case prev.EventsCapped || len(prev.Events) < prev.Missing:
		return recovery.Request{}, http.StatusConflict, fmt.Errorf("the dry run %s found %d missing events but lists only the first %d, so its events cannot be stored as previewed; preview a narrower window (or one account) until it lists them all, or run the window without a preview",
			from, prev.Missing, len(prev.Events))
	case len(prev.Events) == 0:
		return recovery.Request{}, http.StatusConflict, fmt.Errorf("the dry run %s found no missing event: nothing to store", from)
	}
	return recovery.Request{Since: prev.Since, Until: prev.Until, Account: prev.Account, Only: prev.Events}, 0, nil
}

// recoveryView is a recovery's record as the API and the page show it:
// with the link to the executions it stored.
type recoveryView struct {
	recovery.Record
	// ExecutionsURL lists the executions recoveries stored while this
	// one ran (/?source=recovery&from=…&to=…); "" for a dry run or a run
	// that stored none. Recoveries that ran at the same time share it.
	ExecutionsURL string `json:"executions_url,omitempty"`
}

func viewRecovery(rec recovery.Record) recoveryView {
	v := recoveryView{Record: rec}
	if rec.DryRun || rec.Enqueued == 0 {
		return v
	}
	q := url.Values{"source": {stripetask.SourceRecovery}, "from": {strconv.FormatInt(rec.StartedAt.Unix(), 10)}}
	if !rec.FinishedAt.IsZero() {
		q.Set("to", strconv.FormatInt(rec.FinishedAt.Unix()+1, 10))
	}
	v.ExecutionsURL = "/?" + q.Encode()
	return v
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
		save(func(rec *recovery.Record) { rec.SetProgress(p) })
	})
	close(done)
	save(func(rec *recovery.Record) {
		rec.SetProgress(p)
		rec.KeepEvents(p)
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
		c.JSON(http.StatusOK, viewRecovery(rec))
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
		views := make([]recoveryView, len(recs))
		for i, rec := range recs {
			views[i] = viewRecovery(rec)
		}
		c.JSON(http.StatusOK, gin.H{"recoveries": views})
	}
}
