package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/dashboard/internal/audit"
	"github.com/stripeq/stripeq/dashboard/internal/jobs"
	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/delivery"
	"github.com/stripeq/stripeq/pkg/stripetask/rerun"
)

// deliveries is the Console's view of the events forwarded to
// destinations: each destination's queue ("dest-<name>") read through
// asynq's inspector, and each delivery's attempts from its
// keyspace.DeliveryAttempts list, or for one made inline, in its event's
// task, from its task hash's delivery.AttemptField.
type deliveries struct {
	rdb   redis.UniversalClient
	tasks *asynq.Inspector
	queue enqueuer
}

// deliveryStates are the states a delivery can be listed by, in the
// order the Console shows them.
var deliveryStates = []string{"pending", "active", "scheduled", "retry", "archived", "completed"}

// deliveryRow is one delivery in a list.
type deliveryRow struct {
	ID          string `json:"id"`
	Destination string `json:"destination"`
	EventID     string `json:"event_id"`
	EventType   string `json:"event_type"`
	// Execution is the execution whose delivery this is: the event, or a
	// re-run copy of it; URL its page.
	Execution    string `json:"execution"`
	ExecutionURL string `json:"execution_url"`
	Customer     string `json:"customer,omitempty"`
	// WebhookID is the webhook-id header every attempt sent: the event's
	// ID, the same for a re-run's copy (delivery.WebhookID).
	WebhookID string `json:"webhook_id"`
	State     string `json:"state"`
	Retried   int    `json:"retried"`
	// LastError is the last attempt's error; "" once the delivery
	// completed (its attempts keep the earlier ones).
	LastError  string     `json:"last_error,omitempty"`
	LastFailed *time.Time `json:"last_failed_at,omitempty"`
	Completed  *time.Time `json:"completed_at,omitempty"`
	NextAt     *time.Time `json:"next_process_at,omitempty"`
	// Received is when Stripe created the event; At is the last
	// attempt's time (completed or failed), or Received before any: the
	// time the list sorts and filters by.
	Received time.Time `json:"received_at"`
	At       time.Time `json:"at"`
	RerunOf  string    `json:"rerun_of,omitempty"`
	URL      string    `json:"url"`
}

// sentHeader is one HTTP header of an attempt.
type sentHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// deliveryDetail is one delivery with its attempts, newest first, and
// what each attempt sends.
type deliveryDetail struct {
	deliveryRow
	Result   string             `json:"result,omitempty"`
	Attempts []delivery.Attempt `json:"attempts"`
	// Headers are the HTTP headers an attempt sends (the last attempt's
	// timestamp; the signature is not shown); Body is the event JSON it
	// posts.
	Headers []sentHeader    `json:"headers"`
	Body    json.RawMessage `json:"body"`
}

// executionOf is the execution whose delivery id is: what comes before
// its ":dest:<name>".
func executionOf(id string) string {
	if i := strings.LastIndex(id, ":dest:"); i > 0 {
		return id[:i]
	}
	return ""
}

func rowOf(info *asynq.TaskInfo) deliveryRow {
	name, _ := delivery.DestinationOf(info.ID)
	h := info.Headers
	r := deliveryRow{
		ID: info.ID, Destination: name, EventID: h[delivery.HeaderEventID], EventType: h[stripetask.HeaderType],
		Execution: executionOf(info.ID), Customer: h[stripetask.HeaderCustomer],
		WebhookID: delivery.WebhookID(info.ID, h), State: info.State.String(), Retried: info.Retried,
		LastError: info.LastErr, RerunOf: h[stripetask.HeaderRerunOf], URL: "/deliveries/" + url.PathEscape(info.ID),
	}
	if r.Execution != "" {
		r.ExecutionURL = "/executions/" + url.PathEscape(r.Execution)
	}
	if n, err := strconv.ParseInt(h[stripetask.HeaderCreated], 10, 64); err == nil {
		r.Received = time.Unix(n, 0).UTC()
	}
	r.At = r.Received
	if !info.LastFailedAt.IsZero() {
		r.LastFailed = &info.LastFailedAt
		r.At = info.LastFailedAt
	}
	if !info.CompletedAt.IsZero() {
		r.Completed = &info.CompletedAt
		r.At = info.CompletedAt
	}
	if info.State == asynq.TaskStateCompleted {
		// An earlier attempt's error is history, not the delivery's state.
		r.LastError, r.LastFailed = "", nil
	}
	if !info.NextProcessAt.IsZero() && info.State != asynq.TaskStateCompleted && info.State != asynq.TaskStateArchived {
		r.NextAt = &info.NextProcessAt
	}
	return r
}

// destinations returns the names of the destinations that have a queue.
func (d *deliveries) destinations() ([]string, error) {
	qs, err := d.tasks.Queues()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, q := range qs {
		if name, ok := strings.CutPrefix(q, delivery.QueuePrefix); ok && delivery.ValidName(name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// of returns the deliveries of execution id, one per destination that
// has one; none when the destinations cannot be read.
func (d *deliveries) of(id string) []deliveryRow {
	out := []deliveryRow{}
	names, err := d.destinations()
	if err != nil {
		return out
	}
	for _, name := range names {
		if info, err := d.tasks.GetTaskInfo(delivery.Queue(name), delivery.ID(id, name)); err == nil {
			out = append(out, rowOf(info))
		}
	}
	return out
}

// maxDeliveryScan is the most deliveries one list, count or bulk re-run
// reads from asynq, over every destination and state: asynq has no
// search, so the filters apply to what it lists, newest of each state
// first.
const maxDeliveryScan = 5000

// maxDeliveryBulk is the most deliveries one "re-send all matching" or
// "re-send selected" takes.
const maxDeliveryBulk = 500

// deliveryFilter is a parsed deliveries query.
type deliveryFilter struct {
	Destination, State, Customer string
	// Type is an event type, or a prefix ending in ".*".
	Type string
	// Event is a Stripe event ID: the deliveries of its executions.
	Event    string
	Since    string
	From, To time.Time
	Page     int
	Size     int
}

// deliveryParams are the parameters parseDeliveryFilter reads.
var deliveryParams = []string{"destination", "state", "customer", "type", "event", "since", "from", "to", "page", "size"}

// parseDeliveryFilter reads destination, state, customer, type (exact, or
// a prefix "invoice.*"), event (evt_…), since (15m, 1h, 7d), from and to
// (as the executions' list), page (from 1) and size (1–100, default 50).
// Any other parameter but the extra ones is an error wrapping
// errBadDeliveryFilter.
func parseDeliveryFilter(v url.Values, now time.Time, extra ...string) (deliveryFilter, error) {
	f := deliveryFilter{Destination: v.Get("destination"), State: v.Get("state"), Customer: strings.TrimSpace(v.Get("customer")),
		Type: strings.TrimSpace(v.Get("type")), Event: strings.TrimSpace(v.Get("event")), Since: v.Get("since"), Page: 1, Size: 50}
	for name := range v {
		if !slices.Contains(deliveryParams, name) && !slices.Contains(extra, name) {
			return f, fmt.Errorf("%w: unknown parameter %q (filters are %s)", errBadDeliveryFilter, name, strings.Join(deliveryParams, ", "))
		}
	}
	if f.Destination != "" && !delivery.ValidName(f.Destination) {
		return f, fmt.Errorf("%w: no destination %q", errBadDeliveryFilter, f.Destination)
	}
	if f.State != "" && !slices.Contains(deliveryStates, f.State) {
		return f, fmt.Errorf("%w: state must be one of %s", errBadDeliveryFilter, strings.Join(deliveryStates, ", "))
	}
	if f.Since != "" {
		d, err := parseSince(f.Since)
		if err != nil {
			return f, fmt.Errorf("%w: %w", errBadDeliveryFilter, err)
		}
		f.From = now.Add(-d)
	}
	if err := parseTimes(v, &f.From, &f.To); err != nil {
		return f, fmt.Errorf("%w: %w", errBadDeliveryFilter, err)
	}
	if raw := v.Get("page"); raw != "" {
		if n, err := strconv.Atoi(raw); err == nil && n >= 1 {
			f.Page = n
		}
	}
	if raw := v.Get("size"); raw != "" {
		if n, err := strconv.Atoi(raw); err == nil && n >= 1 && n <= 100 {
			f.Size = n
		}
	}
	return f, nil
}

// matches reports whether r passes every filter but the state.
func (f deliveryFilter) matches(r deliveryRow) bool {
	switch {
	case f.Customer != "" && r.Customer != f.Customer,
		f.Event != "" && r.EventID != f.Event,
		!f.From.IsZero() && r.At.Before(f.From),
		!f.To.IsZero() && r.At.After(f.To):
		return false
	}
	if p, ok := strings.CutSuffix(f.Type, "*"); ok {
		return strings.HasPrefix(r.EventType, p)
	}
	return f.Type == "" || r.EventType == f.Type
}

// values is f as URL parameters, without the page; for links and the
// audit log.
func (f deliveryFilter) values() url.Values {
	v := url.Values{}
	for k, x := range map[string]string{"destination": f.Destination, "state": f.State, "customer": f.Customer, "type": f.Type, "event": f.Event} {
		if x != "" {
			v.Set(k, x)
		}
	}
	if !f.From.IsZero() {
		v.Set("from", f.From.UTC().Format(time.RFC3339))
	}
	if !f.To.IsZero() {
		v.Set("to", f.To.UTC().Format(time.RFC3339))
	}
	return v
}

// deliveryListing is one page of deliveries, with the counts per state of
// every delivery the other filters match.
type deliveryListing struct {
	Deliveries []deliveryRow  `json:"deliveries"`
	Counts     map[string]int `json:"counts"`
	Total      int            `json:"total"` // in the state filtered, or in all
	Page       int            `json:"page"`
	Size       int            `json:"size"`
	// Capped is true when there were more than maxDeliveryScan deliveries
	// to read: the counts and the list cover the newest of each state.
	Capped bool           `json:"capped"`
	Filter deliveryFilter `json:"-"`
	all    []deliveryRow  // every match in the state, newest first
}

// list reads the deliveries f matches, newest first, and returns its
// page with the counts per state.
func (d *deliveries) list(f deliveryFilter) (deliveryListing, error) {
	names := []string{f.Destination}
	if f.Destination == "" {
		var err error
		if names, err = d.destinations(); err != nil {
			return deliveryListing{}, err
		}
	}
	out := deliveryListing{Counts: map[string]int{}, Page: f.Page, Size: f.Size, Filter: f, Deliveries: []deliveryRow{}}
	read := 0
	for _, name := range names {
		for _, st := range deliveryStates {
			for page := 1; ; page++ {
				if read >= maxDeliveryScan {
					out.Capped = true
					break
				}
				infos, err := d.listState(delivery.Queue(name), st, page, 100)
				if err != nil {
					return deliveryListing{}, err
				}
				read += len(infos)
				for _, info := range infos {
					r := rowOf(info)
					if !f.matches(r) {
						continue
					}
					out.Counts[st]++
					if f.State == "" || f.State == st {
						out.all = append(out.all, r)
					}
				}
				if len(infos) < 100 {
					break
				}
			}
		}
	}
	slices.SortStableFunc(out.all, func(a, b deliveryRow) int { return b.At.Compare(a.At) })
	out.Total = len(out.all)
	lo := min((f.Page-1)*f.Size, len(out.all))
	out.Deliveries = append(out.Deliveries, out.all[lo:min(lo+f.Size, len(out.all))]...)
	return out, nil
}

// listState is one page of a destination queue's deliveries in state.
func (d *deliveries) listState(q, state string, page, size int) ([]*asynq.TaskInfo, error) {
	opts := []asynq.ListOption{asynq.Page(page), asynq.PageSize(size)}
	var infos []*asynq.TaskInfo
	var err error
	switch state {
	case "pending":
		infos, err = d.tasks.ListPendingTasks(q, opts...)
	case "active":
		infos, err = d.tasks.ListActiveTasks(q, opts...)
	case "scheduled":
		infos, err = d.tasks.ListScheduledTasks(q, opts...)
	case "retry":
		infos, err = d.tasks.ListRetryTasks(q, opts...)
	case "archived":
		infos, err = d.tasks.ListArchivedTasks(q, opts...)
	case "completed":
		infos, err = d.tasks.ListCompletedTasks(q, opts...)
	}
	if errors.Is(err, asynq.ErrQueueNotFound) {
		return nil, nil
	}
	return infos, err
}

var errBadDeliveryFilter = errors.New("bad filter")

// info returns the stored delivery id.
func (d *deliveries) info(id string) (*asynq.TaskInfo, error) {
	name, ok := delivery.DestinationOf(id)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not a delivery", errNotFound, id)
	}
	info, err := d.tasks.GetTaskInfo(delivery.Queue(name), id)
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return nil, fmt.Errorf("%w: no delivery %s", errNotFound, id)
	}
	return info, err
}

// detail returns delivery id with its attempts, newest first, and what
// an attempt sends.
func (d *deliveries) detail(ctx context.Context, id string) (deliveryDetail, error) {
	info, err := d.info(id)
	if err != nil {
		return deliveryDetail{}, err
	}
	raw, err := d.rdb.LRange(ctx, keyspace.DeliveryAttempts(id), 0, -1).Result()
	if err != nil {
		return deliveryDetail{}, err
	}
	if len(raw) == 0 { // made inline: its one attempt is in its task hash
		a, err := d.rdb.HGet(ctx, keyspace.Task(info.Queue, id), delivery.AttemptField).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return deliveryDetail{}, err
		}
		if a != "" {
			raw = []string{a}
		}
	}
	out := deliveryDetail{deliveryRow: rowOf(info), Result: string(info.Result), Attempts: []delivery.Attempt{}}
	for _, s := range slices.Backward(raw) {
		var a delivery.Attempt
		if json.Unmarshal([]byte(s), &a) == nil {
			out.Attempts = append(out.Attempts, a)
		}
	}
	ts := "the attempt's start, in unix seconds"
	if len(out.Attempts) > 0 {
		ts = strconv.FormatInt(out.Attempts[0].At.Unix(), 10)
	}
	out.Headers = []sentHeader{
		{"Content-Type", delivery.SentContentType},
		{"User-Agent", delivery.SentUserAgent},
		{delivery.SentWebhookID, out.WebhookID},
		{delivery.SentWebhookTimestamp, ts},
		{delivery.SentWebhookSignature, "v1,… (HMAC-SHA256 with the destination's secret; not shown)"},
		{delivery.SentEventType, out.EventType},
	}
	body, err := stripetask.Body(info.Payload)
	if err != nil {
		body = []byte(err.Error())
	}
	if json.Valid(body) {
		out.Body = body
	} else {
		out.Body, _ = json.Marshal(string(body))
	}
	return out, nil
}

// rerun runs delivery id again: at once when it waits (retry, scheduled)
// or was archived, and as a copy "<id>:rerun:<n>" when it completed. The
// copy carries the same event, so its webhook-id is the same.
func (d *deliveries) rerun(ctx context.Context, id string) (rerunResult, error) {
	info, err := d.info(id)
	if err != nil {
		return rerunResult{}, err
	}
	switch info.State {
	case asynq.TaskStateArchived, asynq.TaskStateRetry, asynq.TaskStateScheduled:
		if err := d.tasks.RunTask(info.Queue, id); err != nil {
			return rerunResult{}, fmt.Errorf("run %s: %w", id, err)
		}
		return rerunResult{ID: id, Action: "run", URL: "/deliveries/" + url.PathEscape(id)}, nil
	case asynq.TaskStateCompleted:
	default:
		return rerunResult{}, fmt.Errorf("%w: %s is %s", errConflict, id, info.State)
	}
	original := rerun.Original(info)
	for range 20 {
		n, err := d.rdb.Incr(ctx, keyspace.DeliveryReruns(original)).Result()
		if err != nil {
			return rerunResult{}, err
		}
		d.rdb.Expire(ctx, keyspace.DeliveryReruns(original), stripetask.DefaultRetention)
		newID := stripetask.RerunID(original, n)
		_, err = d.queue.EnqueueContext(ctx, rerun.New(info, newID))
		if errors.Is(err, asynq.ErrTaskIDConflict) {
			continue
		}
		if err != nil {
			return rerunResult{}, fmt.Errorf("enqueue copy of %s: %w", id, err)
		}
		return rerunResult{ID: id, Action: "copy", NewID: newID, URL: "/deliveries/" + url.PathEscape(newID)}, nil
	}
	return rerunResult{}, fmt.Errorf("%w: no free re-run ID for %s", errConflict, id)
}

func deliveryError(c *gin.Context, err error) {
	if errors.Is(err, errBadDeliveryFilter) {
		c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"message": err.Error()})
		return
	}
	apiError(c, err)
}

// handleDeliveries is GET /api/deliveries?<parseDeliveryFilter's
// parameters>: a page of deliveries, newest first, with the counts per
// state.
func (s *server) handleDeliveries() gin.HandlerFunc {
	return func(c *gin.Context) {
		f, err := parseDeliveryFilter(c.Request.URL.Query(), time.Now())
		if err != nil {
			deliveryError(c, err)
			return
		}
		l, err := s.deliveries.list(f)
		if err != nil {
			deliveryError(c, err)
			return
		}
		c.JSON(http.StatusOK, l)
	}
}

// handleDelivery is GET /api/deliveries/:id.
func (s *server) handleDelivery() gin.HandlerFunc {
	return func(c *gin.Context) {
		d, err := s.deliveries.detail(c.Request.Context(), c.Param("id"))
		if err != nil {
			deliveryError(c, err)
			return
		}
		c.JSON(http.StatusOK, d)
	}
}

// rerunDelivery re-runs the request's delivery (:id) and audits it, with
// reason.
func (s *server) rerunDelivery(c *gin.Context, reason string) (rerunResult, error) {
	r, err := s.deliveries.rerun(c.Request.Context(), c.Param("id"))
	s.audit(c, audit.Entry{Action: audit.DeliveryRerun, Target: c.Param("id"), Count: audit.CountIf(err), Detail: rerunDetail(r), Reason: reason}, err)
	return r, err
}

// handleDeliveryRerun is POST /api/deliveries/:id/rerun.
func (s *server) handleDeliveryRerun() gin.HandlerFunc {
	return func(c *gin.Context) {
		r, err := s.rerunDelivery(c, "")
		if err != nil {
			deliveryError(c, err)
			return
		}
		c.JSON(http.StatusOK, r)
	}
}

// deliveryOutcome re-runs delivery id for a bulk re-send.
func (s *server) deliveryOutcome(ctx context.Context, id string) (jobs.Outcome, error) {
	return outcomeOf(s.deliveries.rerun(ctx, id))
}

// handleDeliveriesRerun is POST /api/deliveries/rerun?<filter>&expect=N:
// re-send every delivery the filter matches (at most maxDeliveryBulk), if
// it matches exactly N, the count the operator confirmed (409 with the
// current count otherwise). Pending and active ones are skipped. The
// audit log keeps the filter, the count and the IDs re-sent.
func (s *server) handleDeliveriesRerun() gin.HandlerFunc {
	return func(c *gin.Context) {
		v := c.Request.URL.Query()
		expect, err := strconv.Atoi(v.Get("expect"))
		if err != nil || expect < 0 {
			c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"message": "expect must be the number of deliveries you confirmed (total in GET /api/deliveries)"})
			return
		}
		f, err := parseDeliveryFilter(v, time.Now(), "expect", "reason")
		if err != nil {
			deliveryError(c, err)
			return
		}
		f.Page, f.Size = 1, maxDeliveryBulk
		l, err := s.deliveries.list(f)
		switch {
		case err != nil:
		case l.Capped:
			err = fmt.Errorf("%w: more than %d deliveries to read; narrow the filter or the time range", errBadDeliveryFilter, maxDeliveryScan)
		case l.Total > maxDeliveryBulk:
			err = fmt.Errorf("%w: %d deliveries match; re-send at most %d at once (narrow the filter or the time range)", errBadDeliveryFilter, l.Total, maxDeliveryBulk)
		case l.Total != expect:
			err = fmt.Errorf("%w: the filter now matches %d deliveries, not the %d confirmed; look again", errConflict, l.Total, expect)
		}
		res := bulkResult{Matched: l.Total}
		if err == nil {
			for _, r := range l.all {
				if r.State == "pending" || r.State == "active" {
					res.Skipped++
					continue
				}
				rerunInto(c.Request.Context(), &res, r.ID, s.deliveryOutcome)
			}
		}
		s.audit(c, audit.Entry{Action: audit.DeliveryBulkRerun, Target: f.values().Encode(), Count: len(res.acted),
			Detail: res.counts() + fmt.Sprintf(", of %d matched: %s", res.Matched, audit.NamedIDs(res.acted))}, err)
		if errors.Is(err, errConflict) {
			c.AbortWithStatusJSON(http.StatusConflict, gin.H{"message": err.Error(), "matched": l.Total})
			return
		}
		if err != nil {
			deliveryError(c, err)
			return
		}
		c.JSON(http.StatusOK, res)
	}
}

// handleDeliveriesRerunSelected is POST /api/deliveries/rerun-selected
// with a JSON body {"ids": ["evt_…:dest:app", …], "reason": "…"}: re-send
// each delivery named (at most maxDeliveryBulk), as its own re-run would;
// pending, active and unknown ones are skipped.
func (s *server) handleDeliveriesRerunSelected() gin.HandlerFunc {
	return func(c *gin.Context) {
		body, ids, ok := readSelected(c, maxDeliveryBulk, "evt_…:dest:…", "deliveries", "re-send")
		if !ok {
			return
		}
		res := bulkResult{Matched: len(ids)}
		for _, id := range ids {
			rerunInto(c.Request.Context(), &res, id, s.deliveryOutcome)
		}
		// The entry names what was re-sent, not what was asked for.
		s.audit(c, audit.Entry{Action: audit.DeliveryRerunSelected, Target: audit.NamedIDs(res.acted), Count: len(res.acted),
			Reason: audit.CleanReason(body.Reason), Detail: res.counts() + fmt.Sprintf(", of %d asked", len(ids))}, nil)
		c.JSON(http.StatusOK, res)
	}
}

// deliveryTab is one state of the deliveries page, with its count.
type deliveryTab struct {
	Label, URL string
	Count      int
	Active     bool
}

// handleDeliveriesPage is GET /deliveries: the list, filtered by
// destination, state, customer, event type, event and time, with the
// counts per state, a pager and the re-send actions.
func (s *server) handleDeliveriesPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		v := c.Request.URL.Query()
		f, ferr := parseDeliveryFilter(v, time.Now())
		data := map[string]any{"Title": "Deliveries", "F": f, "SinceChoices": []string{"15m", "1h", "6h", "24h", "7d"}}
		if names, err := s.deliveries.destinations(); err == nil {
			data["Destinations"] = names
		}
		if ferr != nil {
			data["Error"] = ferr.Error()
			s.render(c, http.StatusBadRequest, "deliveries", data)
			return
		}
		l, err := s.deliveries.list(f)
		if err != nil {
			c.Error(err)
			s.render(c, http.StatusInternalServerError, "error", map[string]any{"Title": "Error", "Message": "Cannot list deliveries; see the dashboard's log."})
			return
		}
		base := f.values()
		if f.Since != "" {
			base.Del("from")
			base.Del("to")
			base.Set("since", f.Since)
		}
		if f.Size != 50 {
			base.Set("size", strconv.Itoa(f.Size))
		}
		link := func(key, value string) string { return paramURL("/deliveries", base, key, value) }
		all := 0
		for _, n := range l.Counts {
			all += n
		}
		tabs := []deliveryTab{{Label: "All", URL: link("state", ""), Count: all, Active: f.State == ""}}
		for _, st := range deliveryStates {
			tabs = append(tabs, deliveryTab{Label: strings.ToUpper(st[:1]) + st[1:], URL: link("state", st), Count: l.Counts[st], Active: f.State == st})
		}
		data["L"], data["Tabs"] = l, tabs
		if f.Page > 1 {
			data["Prev"] = link("page", strconv.Itoa(f.Page-1))
		}
		if f.Page*f.Size < l.Total {
			data["Next"] = link("page", strconv.Itoa(f.Page+1))
		}
		data["LastHour"] = link("since", "1h")
		if l.Total > 0 && l.Total <= maxDeliveryBulk && !l.Capped {
			// The filter with absolute times: the re-send acts on the
			// deliveries the operator counted.
			data["Bulk"] = map[string]any{"Count": l.Total, "URL": "/api/deliveries/rerun?" + f.values().Encode() + "&expect=" + strconv.Itoa(l.Total)}
		}
		data["MaxBulk"] = maxDeliveryBulk
		s.render(c, http.StatusOK, "deliveries", data)
	}
}

// handleDeliveryPage is GET /deliveries/:id: a delivery, what it sends,
// and its attempts; ?rerun=run or ?rerun=copy&of=<id> says what the
// re-run just did.
func (s *server) handleDeliveryPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		d, err := s.deliveries.detail(c.Request.Context(), c.Param("id"))
		if errors.Is(err, errNotFound) {
			s.render(c, http.StatusNotFound, "error", map[string]any{"Title": "Not found", "Message": err.Error()})
			return
		}
		if err != nil {
			c.Error(err)
			s.render(c, http.StatusInternalServerError, "error", map[string]any{"Title": "Error", "Message": "Cannot read the delivery; see the dashboard's log."})
			return
		}
		data := map[string]any{"Title": "Delivery " + d.ID, "D": d, "Body": prettyJSON(d.Body)}
		switch c.Query("rerun") {
		case "run":
			data["Done"] = "Re-run: it is sent again now, with the same webhook-id."
		case "copy":
			data["Done"] = "Re-run: " + c.Query("of") + " had completed, so this copy was made; it is sent now, with the same webhook-id."
		}
		s.render(c, http.StatusOK, "delivery", data)
	}
}

// handleDeliveryRerunForm is POST /deliveries/:id/rerun, the detail
// page's button (after its confirmation): it re-runs and shows the
// delivery, or its copy, saying what was done.
func (s *server) handleDeliveryRerunForm() gin.HandlerFunc {
	return func(c *gin.Context) {
		r, err := s.rerunDelivery(c, audit.CleanReason(c.PostForm("reason")))
		if err != nil {
			s.render(c, http.StatusConflict, "error", map[string]any{"Title": "Not re-run", "Message": err.Error()})
			return
		}
		to := r.URL + "?rerun=" + r.Action
		if r.Action == "copy" {
			to += "&of=" + url.QueryEscape(r.ID)
		}
		c.Redirect(http.StatusSeeOther, to)
	}
}
