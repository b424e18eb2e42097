package console

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/alert"
	"github.com/stripeq/stripeq/pkg/envconfig"
	"github.com/stripeq/stripeq/pkg/httpserver"
	"github.com/stripeq/stripeq/pkg/recovery"
)

// checkConfig is the periodic check's settings.
type checkConfig struct {
	// Interval is RECOVER_INTERVAL: how often one replica runs a dry run
	// over the recent past. Default 0, off; at least 1m.
	Interval time.Duration
	// Grace is RECOVER_GRACE: only events older than this count as
	// missing. Default 1h; at least 1m, and well inside DEDUPE_WINDOW.
	Grace time.Duration
	// Auto is RECOVER_AUTO=true: store the missing events too.
	Auto bool
	// AlertWebhookURL is ALERT_WEBHOOK_URL, a Slack-compatible incoming
	// webhook the check POSTs {"text": …} to. Default: unset, log only.
	AlertWebhookURL string
}

// readCheckConfig reads the periodic check's settings, failing closed on
// a bad value or a check that cannot run (no STRIPE_SECRET_KEY).
func readCheckConfig(env *envconfig.Reader, rc recovery.Config) checkConfig {
	c := checkConfig{
		Interval:        env.Duration("RECOVER_INTERVAL", 0),
		Grace:           env.Duration("RECOVER_GRACE", recovery.DefaultGrace),
		AlertWebhookURL: env.Lookup("ALERT_WEBHOOK_URL"),
	}
	switch v := env.Lookup("RECOVER_AUTO"); v {
	case "", "false", "0":
	case "true", "1":
		c.Auto = true
	default:
		env.Fail("RECOVER_AUTO", fmt.Sprintf("must be true or false, got %q", v))
	}
	switch {
	case c.Interval < 0 || (c.Interval > 0 && c.Interval < recovery.MinCheckInterval):
		env.Fail("RECOVER_INTERVAL", fmt.Sprintf("must be 0 (off) or at least %v, got %v", recovery.MinCheckInterval, c.Interval))
	case c.Interval > 0 && rc.StripeSecretKey == "":
		env.Fail("RECOVER_INTERVAL", "needs STRIPE_SECRET_KEY on the dashboard, to list Stripe's events")
	}
	if c.Auto && c.Interval == 0 {
		env.Fail("RECOVER_AUTO", "needs RECOVER_INTERVAL: it stores what the periodic check finds")
	}
	if limit := rc.DedupeWindow - time.Hour; c.Interval > 0 && (c.Grace < recovery.MinGrace || c.Grace > limit) {
		env.Fail("RECOVER_GRACE", fmt.Sprintf("must be from %v to DEDUPE_WINDOW less an hour (%v), got %v", recovery.MinGrace, limit, c.Grace))
	}
	if c.AlertWebhookURL != "" {
		u, err := url.Parse(c.AlertWebhookURL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			env.Fail("ALERT_WEBHOOK_URL", "must be an http:// or https:// URL")
		case u.Scheme == "http" && !httpserver.IsLoopbackHost(u.Hostname()):
			env.Warn("ALERT_WEBHOOK_URL", "is plain http:// to a host that is not loopback: the URL (a credential for most chat services) and each alert travel in the clear")
		}
	}
	return c
}

// startCheck runs the periodic check in the background until r stops,
// when RECOVER_INTERVAL is set.
func startCheck(log *slog.Logger, cfg Config, rdb redis.UniversalClient, r *recoveries) {
	if cfg.Check.Interval == 0 || r.rec == nil {
		return
	}
	c := &recovery.Check{
		Recoverer: r.rec, Records: r.records, RDB: rdb,
		Interval: cfg.Check.Interval, Grace: cfg.Check.Grace, Auto: cfg.Check.Auto, Log: log,
	}
	if u := cfg.Check.AlertWebhookURL; u != "" {
		client := alert.Client()
		c.Alert = func(ctx context.Context, text string) error {
			return alert.Post(ctx, client, u, alert.Message{Text: text})
		}
	}
	log.Info("recovery check on", "interval", c.Interval.String(), "grace", c.Grace.String(), "auto", c.Auto, "alert", c.Alert != nil)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		c.Loop(r.ctx)
	}()
}
