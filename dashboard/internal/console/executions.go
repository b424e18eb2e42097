package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stripeq/stripeq/dashboard/internal/jobs"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/dashboard/internal/audit"
	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/outcome"
	"github.com/stripeq/stripeq/pkg/stripetask/rerun"
)

// Page sizes of the executions list.
const (
	defaultLimit = 50
	maxLimit     = 200
)

// maxBulk caps how many executions one bulk re-run touches.
const maxBulk = 10_000

// Errors of the execution actions; the API maps them to statuses.
var (
	errNotFound = errors.New("no such execution")
	errConflict = errors.New("not possible in this state")
)

// query is a parsed list request: the filter, the page, and the URL
// parameters it came from (for links that keep the filter).
type query struct {
	Filter execindex.Filter
	Offset int
	Limit  int
	// Type is the type parameter as given: "invoice.paid" or "invoice.*".
	Type  string
	Since string // "15m", "1h", "24h", "7d" or ""
	State string // the state parameter as given
}

// queryParams are the parameters parseQuery reads.
var queryParams = []string{"q", "id", "type", "livemode", "api_version", "customer", "account", "source", "state", "since", "from", "to", "page", "limit"}

// parseQuery reads the filter parameters of the list page and API:
//
//	q (search: see searchFilter), id, type (exact, or a prefix ending in ".*"), livemode, api_version,
//	customer, account, source ("recovery": only the executions recoveries
//	stored), state (one state, a comma list, or "failed" for
//	retry and archived), since (15m, 1h, 24h, 7d or any Go duration), from
//	and to (RFC 3339 or unix seconds), page (from 1), limit.
//
// Any other parameter, except the extra ones the caller names, is an
// error wrapping execindex.ErrInvalidFilter: a misspelt or mangled filter
// ("state%3dfailed") must not silently match everything.
func parseQuery(v url.Values, now time.Time, extra ...string) (query, error) {
	for name := range v {
		if !slices.Contains(queryParams, name) && !slices.Contains(extra, name) {
			return query{Limit: defaultLimit}, fmt.Errorf("%w: unknown parameter %q (filters are %s)", execindex.ErrInvalidFilter, name, strings.Join(queryParams, ", "))
		}
	}
	q := query{Limit: defaultLimit, Type: strings.TrimSpace(v.Get("type")), Since: v.Get("since"), State: v.Get("state")}
	f := &q.Filter
	f.ID = strings.TrimSpace(v.Get("id"))
	if p, ok := strings.CutSuffix(q.Type, "*"); ok {
		f.TypePrefix = strings.TrimSuffix(p, ".")
	} else {
		f.Type = q.Type
	}
	f.Livemode = v.Get("livemode")
	f.APIVersion = strings.TrimSpace(v.Get("api_version"))
	f.Customer = strings.TrimSpace(v.Get("customer"))
	f.Account = strings.TrimSpace(v.Get("account"))
	switch f.Source = v.Get("source"); f.Source {
	case "", stripetask.SourceRecovery:
	default:
		return q, fmt.Errorf("%w: source must be %q (the executions recoveries stored), or absent for every execution", execindex.ErrInvalidFilter, stripetask.SourceRecovery)
	}
	for s := range strings.SplitSeq(q.State, ",") {
		switch s = strings.TrimSpace(s); s {
		case "":
		case "failed":
			f.States = append(f.States, execindex.StateRetry, execindex.StateArchived)
		default:
			f.States = append(f.States, s)
		}
	}
	if err := searchFilter(f, strings.TrimSpace(v.Get("q"))); err != nil {
		return q, err
	}
	if q.Since != "" {
		d, err := parseSince(q.Since)
		if err != nil {
			return q, err
		}
		f.From = now.Add(-d)
	}
	if err := parseTimes(v, &f.From, &f.To); err != nil {
		return q, err
	}
	if raw := v.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxLimit {
			return q, fmt.Errorf("%w: limit must be 1–%d", execindex.ErrInvalidFilter, maxLimit)
		}
		q.Limit = n
	}
	if raw := v.Get("page"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 {
			return q, fmt.Errorf("%w: page must be a number from 1", execindex.ErrInvalidFilter)
		}
		if n-1 > execindex.MaxOffset/q.Limit {
			return q, fmt.Errorf("%w: page %d is deeper than the first %d executions; narrow the filter or the time range (from, to)", execindex.ErrInvalidFilter, n, execindex.MaxOffset)
		}
		q.Offset = (n - 1) * q.Limit
	}
	return q, q.Filter.Validate()
}

// searchPrefixes are the object IDs search looks up in the index's ref
// sets: what data.object is, or names.
var searchPrefixes = []string{"in_", "ch_", "py_", "pi_", "sub_", "dp_", "du_", "cs_"}

// errSearch says what search takes.
var errSearch = fmt.Errorf("%w: search takes an event ID (evt_…), a customer (cus_…), an account (acct_…), an invoice, charge, payment intent, subscription, dispute or checkout session ID (in_, ch_, pi_, sub_, dp_, cs_) or an email address", execindex.ErrInvalidFilter)

// searchFilter sets on f what the search s looks for: an event ID is the
// id filter, a customer or an account its filter, an object ID or an
// email address the index's ref sets. A search and a filter of the same
// field that differ are an error.
func searchFilter(f *execindex.Filter, s string) error {
	if s == "" {
		return nil
	}
	set := func(field *string, name, v string) error {
		if *field != "" && *field != v {
			return fmt.Errorf("%w: the search %q and the %s filter %q differ", execindex.ErrInvalidFilter, s, name, *field)
		}
		*field = v
		return nil
	}
	switch {
	case strings.Contains(s, "@"):
		email := stripetask.NormalizeEmail(s)
		if email == "" {
			return fmt.Errorf("%w: %q is not an email address", execindex.ErrInvalidFilter, s)
		}
		return set(&f.Ref, "ref", email)
	case !stripetask.ValidID(s):
		return errSearch
	case strings.HasPrefix(s, "evt_"):
		return set(&f.ID, "id", s)
	case strings.HasPrefix(s, "cus_"):
		return set(&f.Customer, "customer", s)
	case strings.HasPrefix(s, "acct_"):
		return set(&f.Account, "account", s)
	}
	for _, p := range searchPrefixes {
		if strings.HasPrefix(s, p) {
			return set(&f.Ref, "ref", s)
		}
	}
	return errSearch
}

// parseTimes reads the from and to parameters, when given, into from and
// to: RFC 3339, a UTC time without a zone (the time picker's form), or
// unix seconds.
func parseTimes(v url.Values, from, to *time.Time) error {
	for name, t := range map[string]*time.Time{"from": from, "to": to} {
		raw := v.Get(name)
		if raw == "" {
			continue
		}
		if n, err := strconv.ParseInt(raw, 10, 64); err == nil {
			*t = time.Unix(n, 0)
			continue
		}
		parsed, err := time.Parse(time.RFC3339, raw)
		if err != nil {
			for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02T15:04"} {
				if parsed, err = time.ParseInLocation(layout, raw, time.UTC); err == nil {
					break
				}
			}
		}
		if err != nil {
			return fmt.Errorf("%w: %s must be RFC 3339 (2026-11-28T10:00:00Z), a UTC time (2026-11-28T10:00) or unix seconds", execindex.ErrInvalidFilter, name)
		}
		*t = parsed
	}
	return nil
}

// parseSince reads "7d" as well as Go durations.
func parseSince(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(d); err == nil && n > 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%w: since must be a duration such as 15m, 1h or 7d", execindex.ErrInvalidFilter)
	}
	return d, nil
}

// execution is one row of the list, and the head of the detail view.
type execution struct {
	ID      string `json:"id"`
	EventID string `json:"event_id"`
	RerunOf string `json:"rerun_of,omitempty"`
	// Source is "recovery" for an execution a recovery stored, "" for a
	// webhook delivery's; RecoveryID names that recovery, when known.
	Source     string `json:"source,omitempty"`
	RecoveryID string `json:"recovery_id,omitempty"`
	Type       string `json:"type"`
	State      string `json:"state"`
	Livemode   bool   `json:"livemode"`
	APIVersion string `json:"api_version"`
	Customer   string `json:"customer,omitempty"`
	Account    string `json:"account,omitempty"`
	ObjectID   string `json:"object_id,omitempty"`
	Retried    int    `json:"retried"`
	MaxRetry   int    `json:"max_retry"`
	// Permanent is true when the execution was archived by a permanent
	// failure (a handler's stripeq.Permanent), not after its last retry
	// (failures.Permanent).
	Permanent bool `json:"permanent"`
	// LastError is asynq's last error, without its "skip retry for the
	// task: "; "" once the execution completed (its history keeps it).
	LastError    string     `json:"last_error,omitempty"`
	LastFailedAt *time.Time `json:"last_failed_at,omitempty"`
	// Outcome is what a completed execution did, in one line
	// (outcome.Outcome's Line); "" when it recorded none.
	Outcome       string     `json:"outcome,omitempty"`
	ReceivedAt    time.Time  `json:"received_at"`
	CompletedAt   *time.Time `json:"completed_at,omitempty"`
	NextProcessAt *time.Time `json:"next_process_at,omitempty"`
	URL           string     `json:"url"`
	// MonitoringURL is the task's page in asynqmon; "" when asynq no
	// longer holds the task (Kept).
	MonitoringURL string `json:"monitoring_url"`
	// Kept is true when asynq no longer holds the task (trimmed from its
	// archive) and the failure store alone keeps it.
	Kept bool `json:"kept,omitempty"`
}

// detail is the detail view: the row plus everything else asynq keeps.
type detail struct {
	execution
	Queue   string            `json:"queue"`
	Headers map[string]string `json:"headers"`
	Payload json.RawMessage   `json:"payload"`
	// Result is the task's result as stored; Outcome is it read.
	Result    string           `json:"result,omitempty"`
	OutcomeOf *outcome.Outcome `json:"outcome_detail,omitempty"`
	Retention string           `json:"retention"`
	Reruns    []rerunLink      `json:"reruns"`
	// Attempts is the attempt history, oldest first (the latest
	// failures.MaxAttempts), numbered on from the event's earlier
	// executions (numberAttempts): each attempt's start, duration, worker, and
	// error or outcome.
	Attempts []numberedAttempt `json:"attempts"`
	// Deliveries are this execution's deliveries to destinations, one per
	// destination that has one; DeliveriesURL lists every delivery of the
	// event (its re-runs' too).
	Deliveries    []deliveryRow `json:"deliveries"`
	DeliveriesURL string        `json:"deliveries_url"`
	// Runs are the operators' runs of the event's executions (this one,
	// its original and copies), newest first: who, when, why, what.
	Runs []operatorRun `json:"runs"`
	// Failure is a failing execution's last failure as data: what
	// failed, for whom, why, what comes next; absent otherwise.
	Failure *failureView `json:"failure,omitempty"`
}

// numberedAttempt is an attempt with its number among every attempt of
// the event's executions: N goes on across "Run now" and copies.
type numberedAttempt struct {
	failures.Attempt
	N int `json:"n"`
}

// numberAttempts numbers attempts from before+1 on.
func numberAttempts(attempts []failures.Attempt, before int) []numberedAttempt {
	out := make([]numberedAttempt, 0, len(attempts))
	for i, a := range attempts {
		out = append(out, numberedAttempt{Attempt: a, N: before + i + 1})
	}
	return out
}

// attempts is the attempt history of execution id: its kept failure's,
// or the attempts list's.
func (s *server) attempts(ctx context.Context, queue, id string) ([]failures.Attempt, error) {
	if r, err := s.failures.Get(ctx, queue, id); err == nil {
		return r.Attempts, nil
	}
	return s.failures.Attempts(ctx, queue, id)
}

// attemptsBefore counts the attempts of the event's executions that ran
// before id: none for the original; for a copy, the original's and those
// of the copies made before it.
func (s *server) attemptsBefore(ctx context.Context, queue, id, original string, copies []execindex.Rerun) int {
	if id == original {
		return 0
	}
	before := []string{original}
	for _, c := range copies {
		if c.ID == id {
			break
		}
		before = append(before, c.ID)
	}
	n := 0
	for _, b := range before {
		a, _ := s.attempts(ctx, queue, b)
		n += len(a)
	}
	return n
}

type rerunLink struct {
	ID    string    `json:"id"`
	At    time.Time `json:"at"`
	State string    `json:"state"`
	URL   string    `json:"url"`
}

// listing is one page of the list with its counts.
type listing struct {
	Executions []execution    `json:"executions"`
	Total      int            `json:"total"`
	Counts     map[string]int `json:"counts"`
	Page       int            `json:"page"`
	Limit      int            `json:"limit"`
	Took       string         `json:"took"`
	// Capped is true when the filter selects more executions than one
	// query examines (execindex.MaxExamined): Total and Counts are then
	// lower bounds, and only the newest are listed.
	Capped bool `json:"capped"`
	// KeptOnly is how many of the archived count only the failure store
	// keeps (asynq trimmed them): a re-run copies each.
	KeptOnly int              `json:"kept_only"`
	Query    query            `json:"-"`
	Items    []execindex.Item `json:"-"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// keptOnly marks e as kept by the failure store alone when kept: asynq
// no longer holds it, so it has no page in asynqmon.
func (e *execution) keptOnly(kept bool) {
	if kept {
		e.Kept, e.MonitoringURL = true, ""
	}
}

// newExecution builds a row from asynq's task info.
func (s *server) newExecution(info *asynq.TaskInfo, received time.Time) execution {
	m, _ := stripetask.MetadataOf(info)
	e := execution{
		ID: info.ID, EventID: stripetask.EventID(info.ID), RerunOf: info.Headers[stripetask.HeaderRerunOf],
		Type: m.Type, State: info.State.String(), Livemode: m.Livemode, APIVersion: m.APIVersion,
		Customer: m.Customer, Account: m.Account, ObjectID: m.ObjectID, Source: m.Source, RecoveryID: m.RecoveryID,
		Retried: info.Retried, MaxRetry: info.MaxRetry, Permanent: failures.Permanent(info), LastError: failures.Message(info.LastErr),
		LastFailedAt: optTime(info.LastFailedAt), ReceivedAt: received,
		CompletedAt:   optTime(info.CompletedAt),
		URL:           "/executions/" + url.PathEscape(info.ID),
		MonitoringURL: monitoringPath + "/queues/" + url.PathEscape(info.Queue) + "/tasks/" + url.PathEscape(info.ID),
	}
	if info.State != asynq.TaskStateCompleted && info.State != asynq.TaskStateArchived {
		e.NextProcessAt = optTime(info.NextProcessAt)
	}
	if info.State == asynq.TaskStateCompleted {
		// An earlier attempt's error is history, not the execution's state.
		e.LastError, e.LastFailedAt = "", nil
		if o, ok := outcome.Parse(info.Result); ok {
			e.Outcome = o.Line()
		}
	}
	return e
}

// list answers one list query: the index finds the page, then asynq
// describes each of its rows (GetTaskInfo, 8 at a time).
func (s *server) list(ctx context.Context, q query) (listing, error) {
	start := time.Now()
	release, err := s.queryTurn(ctx)
	if err != nil {
		return listing{}, err
	}
	p, err := s.index.Query(ctx, q.Filter, q.Offset, q.Limit)
	release()
	if err != nil {
		return listing{}, err
	}
	rows := make([]*execution, len(p.Items))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, it := range p.Items {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			info, err := s.tasks.GetTaskInfo(it.Queue, it.ID)
			kept := false
			if err != nil {
				// Trimmed from asynq's archive: the failure store keeps it.
				r, ferr := s.failures.Get(ctx, it.Queue, it.ID)
				if ferr != nil {
					return // gone since the index read it; the next prune drops it
				}
				info, kept = r.TaskInfo(), true
			}
			e := s.newExecution(info, it.ReceivedAt)
			e.keptOnly(kept)
			rows[i] = &e
		})
	}
	wg.Wait()
	out := listing{Executions: []execution{}, Total: p.Total, Counts: p.Counts, Capped: p.Capped, KeptOnly: p.KeptOnly, Page: q.Offset/q.Limit + 1, Limit: q.Limit, Query: q, Items: p.Items}
	for _, r := range rows {
		if r != nil {
			out.Executions = append(out.Executions, *r)
		}
	}
	out.Took = time.Since(start).Round(time.Millisecond).String()
	return out, nil
}

// taskInfo finds task id in its queue: with shards, its own shard first,
// then the others; and when asynq no longer holds it (trimmed from its
// archive), in the failure store, as archived. It returns errNotFound
// when neither holds it.
func (s *server) taskInfo(id string) (*asynq.TaskInfo, error) {
	info, _, err := s.lookup(context.Background(), id)
	return info, err
}

// lookup is taskInfo that also tells whether the info is the failure
// store's record (asynq no longer holds the task).
func (s *server) lookup(ctx context.Context, id string) (info *asynq.TaskInfo, keptOnly bool, err error) {
	queues := s.index.Locate(id)
	for _, q := range queues {
		info, err := s.tasks.GetTaskInfo(q, id)
		if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
			continue
		}
		return info, false, err
	}
	for _, q := range queues {
		r, err := s.failures.Get(ctx, q, id)
		if errors.Is(err, failures.ErrNotKept) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		return r.TaskInfo(), true, nil
	}
	return nil, false, errNotFound
}

// detail describes one execution.
func (s *server) detail(ctx context.Context, id string) (detail, error) {
	info, keptOnly, err := s.lookup(ctx, id)
	if err != nil {
		return detail{}, err
	}
	ix := s.index.Index(info.Queue)
	received, ok, err := ix.ReceivedAt(ctx, id)
	if err != nil {
		return detail{}, err
	}
	if !ok {
		received = time.Unix(stripetask.MetadataFromHeaders(id, info.Headers).Created, 0)
	}
	d := detail{
		execution: s.newExecution(info, received),
		Queue:     info.Queue,
		Headers:   info.Headers,
		Result:    string(info.Result),
		Retention: info.Retention.String(),
		Reruns:    []rerunLink{},
	}
	d.keptOnly(keptOnly)
	attempts, err := s.attempts(ctx, info.Queue, id)
	if err != nil {
		return detail{}, err
	}
	if o, ok := outcome.Parse(info.Result); ok {
		d.OutcomeOf = &o
	}
	if keptOnly {
		d.Retention = "until re-run or discarded (failure store)"
	}
	if d.Headers == nil {
		d.Headers = map[string]string{}
	}
	body, err := stripetask.Body(info.Payload) // decompressed when stored with PAYLOAD_COMPRESSION
	if err != nil {
		body = []byte(err.Error())
	}
	if json.Valid(body) {
		d.Payload = body
	} else {
		d.Payload, _ = json.Marshal(string(body))
	}
	d.Deliveries = s.deliveries.of(id)
	d.DeliveriesURL = "/deliveries?event=" + url.QueryEscape(d.EventID)
	original := id
	if d.RerunOf != "" {
		original = d.RerunOf
	}
	runs, err := ix.Reruns(ctx, original)
	if err != nil {
		return detail{}, err
	}
	if d.Runs, err = s.runs(ctx, info.Queue, original); err != nil {
		return detail{}, err
	}
	d.Attempts = numberAttempts(attempts, s.attemptsBefore(ctx, info.Queue, id, original, runs))
	d.Failure = failureOf(d)
	for _, r := range runs {
		link := rerunLink{ID: r.ID, At: r.At, URL: "/executions/" + url.PathEscape(r.ID)}
		if ri, err := s.tasks.GetTaskInfo(info.Queue, r.ID); err == nil {
			link.State = ri.State.String()
		} else {
			link.State = "gone"
		}
		d.Reruns = append(d.Reruns, link)
	}
	return d, nil
}

// Limits of prettyJSON. Indenting costs two bytes per level on every
// line, so a small, deeply nested event would grow quadratically.
const (
	// maxPrettyDepth is the deepest nesting prettyJSON indents. Stripe's
	// events nest about 6 levels.
	maxPrettyDepth = 32
	// maxPrettyBytes is the largest indented text prettyJSON returns.
	maxPrettyBytes = 1 << 20
)

// prettyJSON indents a payload for the detail view. The template escapes
// it; this only lays it out. A payload nested deeper than maxPrettyDepth,
// or whose indented form would exceed maxPrettyBytes, or that is not JSON,
// is returned as it is.
func prettyJSON(raw []byte) string {
	if jsonDepth(raw) > maxPrettyDepth || len(raw) > maxPrettyBytes {
		return string(raw)
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil || b.Len() > maxPrettyBytes {
		return string(raw)
	}
	return b.String()
}

// jsonDepth is the deepest nesting of arrays and objects in raw, read in
// one pass that skips strings.
func jsonDepth(raw []byte) int {
	depth, deepest, inString, escaped := 0, 0, false, false
	for _, c := range raw {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// rerunResult says what a re-run did.
type rerunResult struct {
	ID     string `json:"id"`               // the execution re-run
	Action string `json:"action"`           // "run" (RunTask) or "copy" (enqueued anew)
	NewID  string `json:"new_id,omitempty"` // the copy's task ID
	URL    string `json:"url"`              // the execution that now runs
	// queue is the execution's queue (its shard).
	queue string
}

// rerun re-runs one execution: an archived, retry or scheduled task runs
// now (RunTask); a completed one is enqueued as a copy with a new task ID,
// the same payload, headers, queue, MaxRetry and Retention, plus the
// rerunOf header naming the original. A pending or active task answers
// errConflict.
//
// A failure asynq trimmed from its archive, which only the failure store
// keeps, is enqueued as a copy too. Either way its kept failure is
// resolved once asynq holds the event again: a copy that fails again is
// kept anew.
func (s *server) rerun(ctx context.Context, id string, by audit.Entry) (rerunResult, error) {
	r, err := s.rerunTask(ctx, id)
	if err == nil {
		s.recordRun(ctx, r, by)
	}
	return r, err
}

// rerunTask is rerun, unrecorded.
func (s *server) rerunTask(ctx context.Context, id string) (rerunResult, error) {
	info, keptOnly, err := s.lookup(ctx, id)
	if err != nil {
		return rerunResult{}, err
	}
	if keptOnly {
		res, err := s.copyTask(ctx, info)
		if err != nil {
			return res, err
		}
		return res, s.failures.Resolve(ctx, info.Queue, id)
	}
	switch info.State {
	case asynq.TaskStateArchived, asynq.TaskStateRetry, asynq.TaskStateScheduled:
		// The failure kept now is the one the run reopens. It is read
		// before the run: a worker may take the task, fail it again and
		// keep that failure before Reopen below, which then leaves it.
		var keptAt time.Time
		kept := false
		if info.State == asynq.TaskStateArchived {
			if keptAt, kept, err = s.failures.KeptAt(ctx, info.Queue, id); err != nil {
				return rerunResult{}, err
			}
		}
		if err := s.tasks.RunTask(info.Queue, id); err != nil {
			return rerunResult{}, fmt.Errorf("run %s: %w", id, err)
		}
		if kept {
			// Its attempts go on in its history.
			if err := s.failures.Reopen(ctx, info.Queue, id, keptAt); err != nil {
				return rerunResult{}, err
			}
		}
		return rerunResult{ID: id, Action: "run", URL: "/executions/" + url.PathEscape(id), queue: info.Queue}, nil
	case asynq.TaskStateCompleted:
		return s.copyTask(ctx, info)
	case asynq.TaskStatePending:
		return rerunResult{}, fmt.Errorf("%w: %s is already pending", errConflict, id)
	default:
		return rerunResult{}, fmt.Errorf("%w: %s is %s; cancel it first", errConflict, id, info.State)
	}
}

func (s *server) copyTask(ctx context.Context, info *asynq.TaskInfo) (rerunResult, error) {
	original := rerun.Original(info)
	m, _ := stripetask.MetadataOf(info)
	m.ID = original
	// The copy stays in the original's queue (its shard), and so does its
	// index entry. The re-run counter can lag behind copies whose original
	// was pruned; a conflict just takes the next number.
	ix := s.index.Index(info.Queue)
	for range 20 {
		newID, err := ix.NextRerunID(ctx, original)
		if err != nil {
			return rerunResult{}, err
		}
		_, err = s.queue.EnqueueContext(ctx, rerun.New(info, newID))
		if errors.Is(err, asynq.ErrTaskIDConflict) {
			continue
		}
		if err != nil {
			return rerunResult{}, fmt.Errorf("enqueue copy of %s: %w", info.ID, err)
		}
		if err := ix.AddRerun(ctx, original, newID, m, time.Now()); err != nil {
			// The copy is stored and will run; the next reconcile indexes it.
			s.log.Warn("re-run copy enqueued but not indexed", "task_id", newID, "err", err)
		}
		return rerunResult{ID: info.ID, Action: "copy", NewID: newID, URL: "/executions/" + url.PathEscape(newID), queue: info.Queue}, nil
	}
	return rerunResult{}, fmt.Errorf("%w: no free re-run ID for %s", errConflict, original)
}

// cancel cancels an active execution; asynq moves it to retry.
func (s *server) cancel(id string) error {
	info, err := s.taskInfo(id)
	if err != nil {
		return err
	}
	if info.State != asynq.TaskStateActive {
		return fmt.Errorf("%w: only an active execution can be cancelled; %s is %s", errConflict, id, info.State)
	}
	return s.tasks.CancelProcessing(id)
}

// remove deletes an execution that is not active, its kept failure and
// its index entry. Discarding a failure is this: the event never runs.
func (s *server) remove(ctx context.Context, id string) error {
	found := false
	for _, q := range s.index.Locate(id) {
		err := s.tasks.DeleteTask(q, id)
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound):
			if _, ferr := s.failures.Get(ctx, q, id); ferr != nil {
				continue
			}
		case err != nil:
			return fmt.Errorf("%w: %v", errConflict, err)
		}
		found = true
		if err := s.failures.Resolve(ctx, q, id); err != nil {
			return err
		}
		if err := s.index.Index(q).Remove(ctx, id); err != nil {
			return err
		}
	}
	if !found {
		return errNotFound
	}
	return nil
}

// bulkResult says what a bulk re-run did.
type bulkResult struct {
	Matched int      `json:"matched"`
	Run     int      `json:"run"`     // archived, retry or scheduled: RunTask
	Copied  int      `json:"copied"`  // completed: enqueued anew
	Skipped int      `json:"skipped"` // pending or active
	Failed  int      `json:"failed"`
	Errors  []string `json:"errors,omitempty"` // the first few
	// acted are the IDs run or copied, for the audit log.
	acted []string
	// Job is set when more than maxBulk executions match: they are re-run
	// in the background, and the job's URL shows the progress.
	Job *jobs.Job `json:"job,omitempty"`
}

// bulkRerun re-runs everything q's filter matches, when it still matches
// expect executions (the count the operator confirmed). Up to maxBulk it
// re-runs them before answering; more are re-run by a background job,
// whose progress the answer links to and whose end is audited as jobEnd.
func (s *server) bulkRerun(ctx context.Context, q query, expect int, jobEnd audit.Entry) (bulkResult, error) {
	by := func(ctx context.Context, id string) (jobs.Outcome, error) { return s.rerunOutcome(ctx, id, jobEnd) }
	release, err := s.queryTurn(ctx)
	if err != nil {
		return bulkResult{}, err
	}
	p, err := s.index.Query(ctx, q.Filter, 0, 1)
	if err == nil && p.Capped {
		err = fmt.Errorf("%w: the filter selects more than %d executions to count; narrow it or the time range", execindex.ErrInvalidFilter, execindex.MaxExamined)
	}
	var items []execindex.Item
	total := p.Total
	if err == nil && total == expect && total <= maxBulk {
		items, total, err = s.index.IDs(ctx, q.Filter, maxBulk)
	}
	release()
	if err != nil {
		return bulkResult{}, err
	}
	if total != expect {
		return bulkResult{Matched: total}, fmt.Errorf("%w: the filter now matches %d executions, not the %d confirmed; look again", errConflict, total, expect)
	}
	if total > maxBulk {
		j, err := s.jobs.Start(q.Filter, total, jobEnd)
		if err != nil {
			return bulkResult{}, err
		}
		return bulkResult{Matched: total, Job: &j}, nil
	}
	res := bulkResult{Matched: total}
	for _, it := range items {
		if it.State == execindex.StatePending || it.State == execindex.StateActive {
			res.Skipped++
			continue
		}
		rerunInto(ctx, &res, it.ID, by)
	}
	return res, nil
}

// maxSelected is the most executions one "re-run selected" takes.
const maxSelected = 500

// rerunSelected re-runs the executions ids, each as its own re-run does,
// recorded as done by (user, reason);
// one that is pending, active or gone is skipped.
func (s *server) rerunSelected(ctx context.Context, ids []string, by audit.Entry) bulkResult {
	res := bulkResult{Matched: len(ids)}
	for _, id := range ids {
		rerunInto(ctx, &res, id, func(ctx context.Context, id string) (jobs.Outcome, error) { return s.rerunOutcome(ctx, id, by) })
	}
	return res
}

// rerunInto re-runs id with rerun and counts what happened on res.
func rerunInto(ctx context.Context, res *bulkResult, id string, rerun func(context.Context, string) (jobs.Outcome, error)) {
	o, err := rerun(ctx, id)
	switch {
	case err != nil:
		res.Failed++
		if len(res.Errors) < 5 {
			res.Errors = append(res.Errors, id+": "+err.Error())
		}
	case o == jobs.Skipped:
		res.Skipped++
	case o == jobs.Copied:
		res.Copied++
		res.acted = append(res.acted, id)
	default:
		res.Run++
		res.acted = append(res.acted, id)
	}
}

// rerunOutcome re-runs id for a bulk re-run: one that cannot be re-run
// now (pending, active, gone) is skipped, not failed.
func (s *server) rerunOutcome(ctx context.Context, id string, by audit.Entry) (jobs.Outcome, error) {
	return outcomeOf(s.rerun(ctx, id, by))
}

// outcomeOf is what a re-run did, for a bulk re-run: one that cannot be
// re-run now (pending, active, gone) is skipped, not failed.
func outcomeOf(r rerunResult, err error) (jobs.Outcome, error) {
	switch {
	case errors.Is(err, errConflict) || errors.Is(err, errNotFound):
		return jobs.Skipped, nil
	case err != nil:
		return jobs.Skipped, err
	case r.Action == "copy":
		return jobs.Copied, nil
	}
	return jobs.Run, nil
}

// counts says what a re-run of several executions did.
func (r bulkResult) counts() string {
	return fmt.Sprintf("%d run, %d copied, %d skipped, %d failed", r.Run, r.Copied, r.Skipped, r.Failed)
}

// rerunDetail is the audit log's detail of one re-run: the copy's ID, or
// "run now".
func rerunDetail(r rerunResult) string {
	if r.Action == "run" {
		return "run now"
	}
	return r.NewID
}
