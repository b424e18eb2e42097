package recovery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/logging"
)

// Defaults and bounds of the periodic check ([Check]).
const (
	// DefaultGrace is RECOVER_GRACE's default: an event younger than this
	// may still be on its way (Stripe delivers within seconds, and its
	// first retries come within the hour).
	DefaultGrace = time.Hour
	// CheckLookback is how far before the grace period a check looks.
	CheckLookback = 24 * time.Hour
	// MinCheckInterval and MinGrace are the least RECOVER_INTERVAL and
	// RECOVER_GRACE accepted.
	MinCheckInterval = time.Minute
	MinGrace         = time.Minute
)

// CheckedBy is the StartedBy of a periodic check's record.
const CheckedBy = "periodic check"

// Check is the periodic check (RECOVER_INTERVAL): every Interval, on one
// replica at a time, a dry run over the CheckLookback before the last
// Grace (never earlier than DEDUPE_WINDOW allows). When events older than
// Grace are missing, deliveries are failing silently: it calls Alert, and
// with Auto stores them as a recovery would. A check that finds something
// missing, or fails, is kept in Records, started by [CheckedBy].
type Check struct {
	Recoverer *Recoverer
	Records   *Records
	// RDB holds the lock that makes one replica check per interval.
	RDB      redis.UniversalClient
	Interval time.Duration
	Grace    time.Duration
	// Auto stores the missing events (RECOVER_AUTO=true).
	Auto bool
	// Alert sends text to people (ALERT_WEBHOOK_URL); nil: log only.
	Alert func(ctx context.Context, text string) error
	Log   *slog.Logger
}

// Loop checks at once and then every Interval until ctx ends.
func (c *Check) Loop(ctx context.Context) {
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	for {
		rec, ran, err := c.Once(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			c.Log.Warn("recovery check failed", "recovery_id", rec.ID, logging.Err(err))
		case ran && rec.Missing == 0:
			c.Log.Info("recovery check: nothing missing", "listed", rec.Listed)
		case !ran && err == nil:
			c.Log.Debug("recovery check: another replica checked within the interval")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Once runs one check, unless another ran within Interval (ran is then
// false). It returns the check's record, saved when something is missing
// or it failed.
func (c *Check) Once(ctx context.Context) (rec Record, ran bool, err error) {
	// Held for most of the interval, never released: the replica whose
	// ticker fires first in each interval checks.
	ttl := c.Interval * 9 / 10
	ok, err := c.RDB.SetNX(ctx, checkLockKey, time.Now().UnixMilli(), ttl).Result()
	if err != nil || !ok {
		return Record{}, false, err
	}
	now := c.Recoverer.now()
	req := Request{Until: now.Add(-c.Grace), DryRun: !c.Auto}
	req.Since = req.Until.Add(-CheckLookback)
	if earliest := c.Recoverer.Earliest().Add(time.Minute); req.Since.Before(earliest) {
		req.Since = earliest
	}
	rec = Record{ID: NewID(), State: StateRunning, StartedBy: CheckedBy, StartedAt: now, UpdatedAt: now,
		Since: req.Since.UTC(), Until: req.Until.UTC(), DryRun: req.DryRun}
	req.ID = rec.ID
	p, err := c.Recoverer.Run(ctx, req, nil)
	rec.SetProgress(p)
	rec.KeepEvents(p)
	rec.State, rec.FinishedAt, rec.UpdatedAt = StateDone, time.Now().UTC(), time.Now()
	if err != nil {
		rec.State, rec.Error = StateFailed, err.Error()
	}
	if rec.Missing > 0 || err != nil {
		if serr := c.Records.Save(context.WithoutCancel(ctx), rec); serr != nil {
			err = errors.Join(err, serr)
		}
	}
	if rec.Missing > 0 {
		text := AlertText(rec, c.Grace)
		c.Log.Warn("recovery check: events missing", "recovery_id", rec.ID, "missing", rec.Missing, "enqueued", rec.Enqueued)
		if c.Alert != nil {
			if aerr := c.Alert(ctx, text); aerr != nil {
				err = errors.Join(err, fmt.Errorf("alert: %w", aerr))
			}
		}
	}
	return rec, true, err
}

// AlertText is the alert of a check that found events missing: how many,
// by type and by account, the window, and whether they were stored.
func AlertText(rec Record, grace time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "stripeq: %d Stripe event(s) created more than %v ago never reached stripeq: webhook deliveries may be failing silently (a disabled endpoint, a wrong secret, a firewall).\n", rec.Missing, grace)
	fmt.Fprintf(&b, "By type: %s\n", rec.Progress.ByType())
	fmt.Fprintf(&b, "By account: %s\n", rec.Progress.ByAccount())
	fmt.Fprintf(&b, "Window: %s to %s (check %s).\n", rec.Since.Format(time.RFC3339), rec.Until.Format(time.RFC3339), rec.ID)
	if rec.DryRun {
		b.WriteString("Nothing was stored: recover them in the Console (Recover missed events), or set RECOVER_AUTO=true.")
	} else {
		fmt.Fprintf(&b, "Recovered: %d stored (RECOVER_AUTO).", rec.Enqueued)
	}
	return b.String()
}

// ByType renders MissingByType as "invoice.paid 3, customer.created 1",
// largest first.
func (p Progress) ByType() string { return counts(p.MissingByType, "") }

// ByAccount renders MissingByAccount as ByType does, the platform's
// events as "platform".
func (p Progress) ByAccount() string { return counts(p.MissingByAccount, "platform") }

// counts renders m as "a 3, b 1", largest first; blank keys as blank.
func counts(m map[string]int, blank string) string {
	keys := slices.SortedFunc(maps.Keys(m), func(x, y string) int {
		return cmp.Or(cmp.Compare(m[y], m[x]), strings.Compare(x, y))
	})
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		name := k
		if name == "" {
			name = blank
		}
		parts = append(parts, fmt.Sprintf("%s %d", name, m[k]))
	}
	return strings.Join(parts, ", ")
}
