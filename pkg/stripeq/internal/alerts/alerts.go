// Package alerts tells people that tasks failed for good: an error log
// line for each, and Slack-compatible messages to ALERT_WEBHOOK_URL. Part
// of pkg/stripeq's engine: internal, no compatibility promise.
package alerts

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/alert"
	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/logging"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/delivery"
)

// Alerter tells people that tasks failed for good: an error log line for
// each, and Slack-compatible messages ({"text": …}) to ALERT_WEBHOOK_URL
// when set. The first failure of an event type (none in the last
// ALERT_INTERVAL) alerts at once; later ones are counted in Redis, by type
// and by error, and one worker process sends their summary at most once
// per ALERT_INTERVAL. So a storm of failures makes a handful of messages.
//
// Its keys share the hash tag of QUEUE_NAME, "stripeq:alert:{stripe}:…":
// seen:<type> (a marker that expires ALERT_INTERVAL after the type's last
// failure), bytype and byerr (HASHes of counts since the last summary),
// lock (the right to send the next summary, held for ALERT_INTERVAL).
type Alerter struct {
	webhookURL   string // "" when unset
	dashboardURL string // for the link in the message
	client       *http.Client
	rdb          redis.UniversalClient // nil: every failure alerts at once
	queue        string                // QUEUE_NAME, the keys' hash tag
	interval     time.Duration
}

// Config is what an Alerter needs: the settings of the same names.
type Config struct {
	WebhookURL   string // ALERT_WEBHOOK_URL; "" for log lines only
	DashboardURL string // DASHBOARD_URL, for the links
	Queue        string // QUEUE_NAME, the hash tag of the keys
	Interval     time.Duration
}

// New returns the Alerter of c; rdb coordinates the worker processes (nil:
// every failure alerts at once).
func New(c Config, rdb redis.UniversalClient) Alerter {
	return Alerter{webhookURL: c.WebhookURL, dashboardURL: c.DashboardURL, client: alert.Client(),
		rdb: rdb, queue: c.Queue, interval: c.Interval}
}

// countScript counts one failure for the next summary, unless its type
// had no failure within the interval: then it returns 1, and the failure
// alerts at once. KEYS seen, bytype, byerr; ARGV interval ms, type, error.
var countScript = redis.NewScript(`
local had = redis.call("EXISTS", KEYS[1])
redis.call("SET", KEYS[1], "1", "PX", ARGV[1])
if had == 0 then return 1 end
redis.call("HINCRBY", KEYS[2], ARGV[2], 1)
redis.call("HINCRBY", KEYS[3], ARGV[3], 1)
return 0
`)

// takeScript takes the counts for a summary when there are some and no
// summary was sent within the interval. KEYS bytype, byerr, lock; ARGV
// interval ms. It returns {} or {bytype pairs, byerr pairs}.
var takeScript = redis.NewScript(`
if redis.call("EXISTS", KEYS[1]) == 0 then return {} end
if not redis.call("SET", KEYS[3], "1", "NX", "PX", ARGV[1]) then return {} end
local t = redis.call("HGETALL", KEYS[1])
local e = redis.call("HGETALL", KEYS[2])
redis.call("DEL", KEYS[1], KEYS[2])
return {t, e}
`)

// stripeIDs matches Stripe IDs and long numbers in an error, which
// differ between failures of one cause.
var stripeIDs = regexp.MustCompile(`\b[a-z]{2,10}_[A-Za-z0-9]{6,}\b|\b\d{4,}\b`)

// errorClass is err's message with IDs and numbers masked, cut to 120
// bytes: failures of one cause share it.
func errorClass(err error) string {
	s := stripeIDs.ReplaceAllString(err.Error(), "…")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

// Archived reports the archived task t and its last error.
func (a Alerter) Archived(ctx context.Context, log *slog.Logger, t *asynq.Task, id string, err error) {
	m := stripetask.MetadataFromHeaders(id, t.Headers())
	link := a.dashboardURL + "/executions/" + url.PathEscape(id)
	log.ErrorContext(ctx, "task failed for good: kept in the failure store; re-run it from the Console once the cause is fixed",
		logging.Err(err), slog.String("customer", m.Customer), slog.String("dashboard", link))
	if a.first(ctx, m.Type, err) {
		text := fmt.Sprintf(":rotating_light: stripeq: event %s (%s) for customer %s failed for good.\nError: %s\nConsole: %s\nFurther failures of this type come in one summary per %s.",
			id, m.Type, orNone(m.Customer), err, link, a.interval)
		a.post(ctx, log, alert.Message{Text: text})
	}
}

// DeliveryArchived reports a delivery to destination that failed for good
// (its retries used up, or a 410): asynq archives it, and the Console's
// deliveries page re-runs it. Like Archived, it alerts at once for the
// first of its kind in an interval and counts the others for the summary.
func (a Alerter) DeliveryArchived(ctx context.Context, log *slog.Logger, t *asynq.Task, id, destination string, err error) {
	m := stripetask.MetadataFromHeaders(id, t.Headers())
	link := a.dashboardURL + "/deliveries/" + url.PathEscape(id)
	log.ErrorContext(ctx, "task archived: the delivery failed for good; re-run it from the Console's deliveries once the cause is fixed",
		logging.Err(err), slog.String("destination", destination), slog.String("dashboard", link))
	if a.first(ctx, "delivery to "+destination, err) {
		text := fmt.Sprintf(":rotating_light: stripeq: the delivery of event %s (%s) to destination %s failed for good.\nError: %s\nConsole: %s\nFurther failures of this kind come in one summary per %s.",
			delivery.WebhookID(id, t.Headers()), m.Type, destination, err, link, a.interval)
		a.post(ctx, log, alert.Message{Text: text})
	}
}

// first counts a failure of kind for the summary and reports whether it
// is the first of its kind within the interval, to alert at once. It is
// false when no alert webhook is set.
func (a Alerter) first(ctx context.Context, kind string, err error) bool {
	if a.webhookURL == "" {
		return false
	}
	if a.rdb != nil {
		keys := []string{keyspace.AlertSeen(a.queue, kind), keyspace.AlertByType(a.queue), keyspace.AlertByError(a.queue)}
		first, cerr := countScript.Run(ctx, a.rdb, keys, a.interval.Milliseconds(), kind, errorClass(err)).Int()
		if cerr == nil && first == 0 {
			return false // in the next summary
		}
	}
	return true
}

// summary is the structured part of a summary message, beside its text.
type summary struct {
	Failures int            `json:"failures"`
	ByType   map[string]int `json:"by_type"`
	ByError  map[string]int `json:"by_error"`
	Console  string         `json:"console"`
}

// Run sends summaries until ctx ends: each worker process tries every
// fifth of the interval, and the first to find counts and no summary sent
// within the interval sends one.
func (a Alerter) Run(ctx context.Context, log *slog.Logger) {
	if a.webhookURL == "" || a.rdb == nil {
		return
	}
	t := time.NewTicker(min(max(a.interval/5, 100*time.Millisecond), 30*time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.summarize(ctx, log)
	}
}

// summarize sends the summary of the failures counted since the last one,
// when it is due.
func (a Alerter) summarize(ctx context.Context, log *slog.Logger) {
	res, err := takeScript.Run(ctx, a.rdb, []string{keyspace.AlertByType(a.queue), keyspace.AlertByError(a.queue), keyspace.AlertLock(a.queue)}, a.interval.Milliseconds()).Slice()
	if err != nil || len(res) != 2 {
		if err != nil && ctx.Err() == nil {
			log.Warn("alert summary: Redis did not answer", logging.Err(err))
		}
		return
	}
	s := summary{ByType: pairs(res[0]), ByError: pairs(res[1])}
	for _, n := range s.ByType {
		s.Failures += n
	}
	since := strconv.Itoa(int(max(a.interval, time.Minute).Minutes())+1) + "m"
	s.Console = a.dashboardURL + "/?state=failed&since=" + since
	var b strings.Builder
	fmt.Fprintf(&b, ":rotating_light: stripeq: %d more events failed for good in the last %s.\nBy type:", s.Failures, a.interval)
	for _, kv := range sortedCounts(s.ByType) {
		fmt.Fprintf(&b, "\n• %s: %d", kv.k, kv.n)
	}
	b.WriteString("\nBy error:")
	for i, kv := range sortedCounts(s.ByError) {
		if i == 10 {
			fmt.Fprintf(&b, "\n• … %d more causes", len(s.ByError)-10)
			break
		}
		fmt.Fprintf(&b, "\n• %s: %d", kv.k, kv.n)
	}
	fmt.Fprintf(&b, "\nConsole: %s", s.Console)
	a.post(ctx, log, alert.Message{Text: b.String(), Stripeq: s})
}

type count struct {
	k string
	n int
}

func sortedCounts(m map[string]int) []count {
	out := make([]count, 0, len(m))
	for k, n := range m {
		out = append(out, count{k, n})
	}
	slices.SortFunc(out, func(a, b count) int { return cmp.Or(b.n-a.n, strings.Compare(a.k, b.k)) })
	return out
}

// pairs reads an HGETALL answer inside a script's answer.
func pairs(v any) map[string]int {
	out := map[string]int{}
	l, _ := v.([]any)
	for i := 0; i+1 < len(l); i += 2 {
		k, _ := l[i].(string)
		n, _ := strconv.Atoi(fmt.Sprint(l[i+1]))
		out[k] += n
	}
	return out
}

// post sends one message to ALERT_WEBHOOK_URL.
func (a Alerter) post(ctx context.Context, log *slog.Logger, msg alert.Message) {
	err := alert.Post(ctx, a.client, a.webhookURL, msg)
	var refused *alert.StatusError
	switch {
	case errors.As(err, &refused):
		log.ErrorContext(ctx, "alert webhook refused the alert", slog.Int("status", refused.Status))
	case err != nil:
		log.ErrorContext(ctx, "alert webhook failed", logging.Err(err))
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
