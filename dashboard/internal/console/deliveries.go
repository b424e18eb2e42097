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
	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/delivery"
	"github.com/stripeq/stripeq/pkg/stripetask/rerun"
)

// deliveries is the Console's view of the events forwarded to
// destinations: each destination's queue ("dest-<name>") read through
// asynq's inspector, and each delivery's attempts from its
// keyspace.DeliveryAttempts list.
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
	// WebhookID is the webhook-id header every attempt sent: the event's
	// ID, the same for a re-run's copy (delivery.WebhookID).
	WebhookID  string     `json:"webhook_id"`
	State      string     `json:"state"`
	Retried    int        `json:"retried"`
	LastError  string     `json:"last_error,omitempty"`
	LastFailed *time.Time `json:"last_failed_at,omitempty"`
	Completed  *time.Time `json:"completed_at,omitempty"`
	NextAt     *time.Time `json:"next_process_at,omitempty"`
	RerunOf    string     `json:"rerun_of,omitempty"`
}

// deliveryDetail is one delivery with its attempts.
type deliveryDetail struct {
	deliveryRow
	Result   string             `json:"result,omitempty"`
	Attempts []delivery.Attempt `json:"attempts"`
}

func rowOf(info *asynq.TaskInfo) deliveryRow {
	name, _ := delivery.DestinationOf(info.ID)
	r := deliveryRow{
		ID: info.ID, Destination: name, EventID: info.Headers[delivery.HeaderEventID],
		EventType: info.Headers[stripetask.HeaderType], WebhookID: delivery.WebhookID(info.ID, info.Headers), State: info.State.String(), Retried: info.Retried,
		LastError: info.LastErr, RerunOf: info.Headers[stripetask.HeaderRerunOf],
	}
	if !info.LastFailedAt.IsZero() {
		r.LastFailed = &info.LastFailedAt
	}
	if !info.CompletedAt.IsZero() {
		r.Completed = &info.CompletedAt
	}
	if !info.NextProcessAt.IsZero() {
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

// list returns up to size deliveries per (destination, state) of page
// (from 1), for the destination and state given, or every one when "".
func (d *deliveries) list(destination, state string, page, size int) ([]deliveryRow, error) {
	names := []string{destination}
	if destination == "" {
		var err error
		if names, err = d.destinations(); err != nil {
			return nil, err
		}
	} else if !delivery.ValidName(destination) {
		return nil, fmt.Errorf("%w: no destination %q", errNotFound, destination)
	}
	states := deliveryStates
	if state != "" {
		if !slices.Contains(deliveryStates, state) {
			return nil, fmt.Errorf("%w: state must be one of %s", errBadDeliveryFilter, strings.Join(deliveryStates, ", "))
		}
		states = []string{state}
	}
	rows := []deliveryRow{}
	opts := []asynq.ListOption{asynq.Page(page), asynq.PageSize(size)}
	for _, name := range names {
		q := delivery.Queue(name)
		for _, st := range states {
			var infos []*asynq.TaskInfo
			var err error
			switch st {
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
				break
			}
			if err != nil {
				return nil, err
			}
			for _, info := range infos {
				rows = append(rows, rowOf(info))
			}
		}
	}
	return rows, nil
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

// detail returns delivery id with its attempts, oldest first.
func (d *deliveries) detail(ctx context.Context, id string) (deliveryDetail, error) {
	info, err := d.info(id)
	if err != nil {
		return deliveryDetail{}, err
	}
	raw, err := d.rdb.LRange(ctx, keyspace.DeliveryAttempts(id), 0, -1).Result()
	if err != nil {
		return deliveryDetail{}, err
	}
	out := deliveryDetail{deliveryRow: rowOf(info), Result: string(info.Result), Attempts: []delivery.Attempt{}}
	for _, s := range raw {
		var a delivery.Attempt
		if json.Unmarshal([]byte(s), &a) == nil {
			out.Attempts = append(out.Attempts, a)
		}
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

// deliveryQuery reads destination, state, page (from 1) and size (1 to
// 100, default 50).
func deliveryQuery(c *gin.Context) (destination, state string, page, size int) {
	page, _ = strconv.Atoi(c.Query("page"))
	size, _ = strconv.Atoi(c.Query("size"))
	if size <= 0 || size > 100 {
		size = 50
	}
	return c.Query("destination"), c.Query("state"), max(page, 1), size
}

func deliveryError(c *gin.Context, err error) {
	if errors.Is(err, errBadDeliveryFilter) {
		c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"message": err.Error()})
		return
	}
	apiError(c, err)
}

// handleDeliveries is GET /api/deliveries?destination=&state=&page=&size=.
func (s *server) handleDeliveries() gin.HandlerFunc {
	return func(c *gin.Context) {
		dest, state, page, size := deliveryQuery(c)
		rows, err := s.deliveries.list(dest, state, page, size)
		if err != nil {
			deliveryError(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"deliveries": rows})
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

// rerunDelivery re-runs the request's delivery (:id) and audits it.
func (s *server) rerunDelivery(c *gin.Context) (rerunResult, error) {
	r, err := s.deliveries.rerun(c.Request.Context(), c.Param("id"))
	s.audit(c, audit.Entry{Action: audit.DeliveryRerun, Target: c.Param("id"), Count: audit.CountIf(err), Detail: rerunDetail(r)}, err)
	return r, err
}

// handleDeliveryRerun is POST /api/deliveries/:id/rerun.
func (s *server) handleDeliveryRerun() gin.HandlerFunc {
	return func(c *gin.Context) {
		r, err := s.rerunDelivery(c)
		if err != nil {
			deliveryError(c, err)
			return
		}
		c.JSON(http.StatusOK, r)
	}
}

// handleDeliveriesPage is GET /deliveries: the list, filtered by
// destination and state.
func (s *server) handleDeliveriesPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		dest, state, page, size := deliveryQuery(c)
		rows, err := s.deliveries.list(dest, state, page, size)
		if err != nil && !errors.Is(err, errBadDeliveryFilter) && !errors.Is(err, errNotFound) {
			c.Error(err)
			s.render(c, http.StatusInternalServerError, "error", map[string]any{"Title": "Error", "Message": "Cannot list deliveries; see the dashboard's log."})
			return
		}
		names, _ := s.deliveries.destinations()
		s.render(c, http.StatusOK, "deliveries", map[string]any{"Title": "Deliveries", "Rows": rows,
			"Destinations": names, "States": deliveryStates, "Destination": dest, "State": state, "Page": page})
	}
}

// handleDeliveryPage is GET /deliveries/:id: a delivery and its attempts.
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
		s.render(c, http.StatusOK, "delivery", map[string]any{"Title": "Delivery " + d.ID, "D": d})
	}
}

// handleDeliveryRerunForm is POST /deliveries/:id/rerun, the detail
// page's button: it re-runs and shows the delivery (or its copy).
func (s *server) handleDeliveryRerunForm() gin.HandlerFunc {
	return func(c *gin.Context) {
		r, err := s.rerunDelivery(c)
		if err != nil {
			s.render(c, http.StatusConflict, "error", map[string]any{"Title": "Not re-run", "Message": err.Error()})
			return
		}
		c.Redirect(http.StatusSeeOther, r.URL)
	}
}
