// Package audit is the dashboard's audit log: every operator action, in
// the Console or through asynqmon, with who, when, what, on how many
// executions, why (an optional reason, such as an incident name) and how
// it ended. It is one Redis stream, whose entry IDs are the times of the
// actions; each write trims entries older than the retention
// (AUDIT_RETENTION), and reads never show them.
//
//	stripeq:audit  STREAM  user, action, target, count, reason, result, detail
//
// Field names are permanent once deployed.
//
// Internal to the dashboard command, with no compatibility promise.
package audit

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/keyspace"
)

// Key is the audit log's stream.
const Key = keyspace.Audit

// DefaultRetention is AUDIT_RETENTION's default: 90 days.
const DefaultRetention = 90 * 24 * time.Hour

// MaxReason is the longest reason kept, in characters.
const MaxReason = 500

// The actions the audit log records.
const (
	Rerun     = "rerun"
	BulkRerun = "bulk_rerun"
	// RerunSelected: the executions an operator ticked in the list.
	RerunSelected = "rerun_selected"
	Cancel        = "cancel"
	Delete        = "delete"
	Discard       = "discard"
	Recovery      = "recovery"
	Asynqmon      = "asynqmon" // a change made in asynqmon, by its API path
	// DeliveryRerun: a delivery to a destination re-run.
	DeliveryRerun = "delivery_rerun"
	// DeliveryBulkRerun: every delivery a filter matched, re-sent.
	DeliveryBulkRerun = "delivery_bulk_rerun"
	// DeliveryRerunSelected: the deliveries an operator ticked, re-sent.
	DeliveryRerunSelected = "delivery_rerun_selected"
)

// MaxIDs is the most IDs one audit entry names. An action on more is
// recorded by what chose them (a filter, a queue and state) and how many.
const MaxIDs = 500

// NamedIDs is how an audit entry names the IDs an action acted on: all of
// them, sorted and comma-separated, or, past MaxIDs, only how many. The
// list is never cut, since a cut list could hide the one that mattered.
func NamedIDs(ids []string) string {
	if len(ids) > MaxIDs {
		return fmt.Sprintf("%d IDs, too many to name", len(ids))
	}
	return strings.Join(slices.Sorted(slices.Values(ids)), ",")
}

// CountIf is 1 when err is nil: what a one-execution action acted on.
func CountIf(err error) int {
	if err != nil {
		return 0
	}
	return 1
}

// Entry is one recorded action.
type Entry struct {
	ID     string    `json:"id"` // the stream entry's ID, for paging
	At     time.Time `json:"at"`
	User   string    `json:"user"`
	Action string    `json:"action"`
	// Target is what the action was on: a task ID, the IDs it acted on
	// (NamedIDs), a filter ("state=failed&type=invoice.*"), an asynqmon
	// API path, or a recovery's window.
	Target string `json:"target"`
	// Count is how many executions or tasks it acted on: run, copied,
	// cancelled, deleted, archived. A refusal acts on none.
	Count  int    `json:"count"`
	Reason string `json:"reason,omitempty"`
	// Result is "ok", or the error that refused or failed it.
	Result string `json:"result"`
	// Detail is what the action made or saw: a copy's ID, a job, a
	// recovery, the counts of a re-run, the tasks an asynqmon action
	// named (NamedIDs).
	Detail string `json:"detail,omitempty"`
	URL    string `json:"url,omitempty"` // the target's page, when it has one
	// Chips are the target read: a filter's parameters, the IDs acted on,
	// each with its page when it has one.
	Chips []Chip `json:"chips,omitempty"`
}

// CleanReason is a reason as kept: control characters dropped, at most
// MaxReason characters.
func CleanReason(r string) string {
	r = strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, r))
	if n := []rune(r); len(n) > MaxReason {
		r = string(n[:MaxReason]) + "…"
	}
	return r
}

// Log is the audit log in Redis.
type Log struct {
	rdb       redis.UniversalClient
	retention time.Duration
	log       *slog.Logger
}

// New returns the audit log in rdb, keeping entries for retention;
// failures to write are logged to log.
func New(rdb redis.UniversalClient, retention time.Duration, log *slog.Logger) *Log {
	return &Log{rdb: rdb, retention: retention, log: log}
}

// Record writes e, done now by e.User, with err as its result, and logs
// a failure to write it, which it also returns.
func (l *Log) Record(ctx context.Context, e Entry, err error) error {
	e.Result = "ok"
	if err != nil {
		e.Result = err.Error()
	}
	werr := l.Write(ctx, time.Now(), e)
	if werr != nil {
		l.log.Error("audit log not written", "action", e.Action, "target", e.Target, "user", e.User, "err", werr.Error())
	}
	return werr
}

// Write appends e, done at now, and trims entries past the retention.
func (l *Log) Write(ctx context.Context, now time.Time, e Entry) error {
	minID := strconv.FormatInt(now.Add(-l.retention).UnixMilli(), 10)
	err := l.rdb.XAdd(ctx, &redis.XAddArgs{
		Stream: Key, MinID: minID, ID: "*", // exact: a few entries at a time
		Values: []any{"user", e.User, "action", e.Action, "target", e.Target, "count", e.Count,
			"reason", e.Reason, "result", e.Result, "detail", e.Detail},
	}).Err()
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// Page is one page of the audit log, newest first, with the counts of
// its range.
type Page struct {
	Entries []Entry `json:"entries"`
	// Next is the before= of the next page; "" on the last.
	Next      string `json:"next,omitempty"`
	Retention string `json:"retention"`
	// Counts are how many entries of the range each action has (every
	// one of Actions, zero included), of the query's user when it names
	// one; Users how many each user has.
	Counts map[string]int `json:"counts"`
	Users  map[string]int `json:"users"`
	// Capped is true when the range holds more than MaxScan entries: the
	// counts are then lower bounds.
	Capped bool `json:"capped,omitempty"`
}

// entryOf reads one stream entry, with a link to its target's page.
func entryOf(m redis.XMessage) Entry {
	e := Entry{ID: m.ID}
	ms, _, _ := strings.Cut(m.ID, "-")
	n, _ := strconv.ParseInt(ms, 10, 64)
	e.At = time.UnixMilli(n).UTC()
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	e.User, e.Action, e.Target, e.Reason, e.Result, e.Detail = str("user"), str("action"), str("target"), str("reason"), str("result"), str("detail")
	e.Count, _ = strconv.Atoi(str("count"))
	switch e.Action {
	case Rerun, Cancel:
		e.URL = "/executions/" + url.PathEscape(e.Target)
	case BulkRerun:
		e.URL = "/?" + e.Target
	case DeliveryRerun:
		e.URL = "/deliveries/" + url.PathEscape(e.Target)
	case DeliveryBulkRerun:
		e.URL = "/deliveries?" + e.Target
	}
	e.Chips = chipsOf(e)
	return e
}

// Days is d as "90 days" when it is whole days, else as Go writes it.
func Days(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == day:
		return "1 day"
	case d%day == 0:
		return strconv.FormatInt(int64(d/day), 10) + " days"
	}
	return d.String()
}
