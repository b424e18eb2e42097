package monitoring

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/dashboard/internal/audit"
)

// An operator's change through asynqmon is audited with what it changed,
// read from asynqmon's own answer: the count of a "… all" (run_all,
// archive_all, delete_all), the IDs of a batch (batch_run, …), the ID in
// the path of a one-task action. asynqmon answers "cancel all" with no
// count, so the dashboard does that one itself (cancelAllActive).

// maxAuditAnswer is the most of an asynqmon answer kept to read what a
// change did: a batch of asynqmon's largest body (1 MB of IDs) answers
// about as much.
const maxAuditAnswer = 2 << 20

// asynqmonCounts are the members of asynqmon's answers that count the
// tasks a change acted on; asynqmonIDs are those that list them.
var (
	asynqmonCounts = []string{"scheduled", "archived", "deleted"}
	asynqmonIDs    = []string{"pending_ids", "archived_ids", "deleted_ids", "canceled_ids"}
)

// asynqmonChange is what a change through asynqmon acted on, from its API
// path (after /monitoring/api/) and its answer: how many tasks, and which,
// when the answer or the path names them (ids is nil when neither does).
func asynqmonChange(method, path string, answer []byte) (count int, ids []string) {
	var members map[string]json.RawMessage
	if json.Unmarshal(answer, &members) == nil {
		for _, name := range asynqmonCounts {
			if json.Unmarshal(members[name], &count) == nil {
				return count, nil
			}
		}
		for _, name := range asynqmonIDs {
			if json.Unmarshal(members[name], &ids) == nil && ids != nil {
				return len(ids), ids
			}
		}
	}
	// One task: …/<state>_tasks/<id>, or …/<id>:run, :archive, :cancel.
	parts := strings.Split(path, "/")
	if n := len(parts); n >= 2 && strings.HasSuffix(parts[n-2], "_tasks") {
		id := parts[n-1]
		if method == http.MethodPost {
			i := strings.LastIndex(id, ":")
			if i < 0 {
				return 0, nil
			}
			id = id[:i]
		}
		return 1, []string{id}
	}
	return 0, nil
}

// auditChange records the change the request made through asynqmon,
// given its status and answer.
func (h *Handler) auditChange(c *gin.Context, status int, answer []byte) {
	e := changeEntry(c)
	if status >= 400 {
		line, _, _ := strings.Cut(strings.TrimSpace(string(answer)), "\n")
		h.audit(c, e, fmt.Errorf("HTTP %d: %s", status, truncate(line, 200)))
		return
	}
	var ids []string
	e.Count, ids = asynqmonChange(c.Request.Method, strings.TrimPrefix(e.Target, c.Request.Method+" "), answer)
	if ids != nil {
		e.Detail = audit.NamedIDs(ids)
	}
	h.audit(c, e, nil)
}

// changeEntry is the audit entry of the request to asynqmon's API,
// its target the method and the path after /monitoring/api/.
func changeEntry(c *gin.Context) audit.Entry {
	return audit.Entry{Action: audit.Asynqmon, Target: c.Request.Method + " " + strings.TrimPrefix(c.Request.URL.Path, Path+"/api/")}
}

// truncate cuts s to at most n bytes, at a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// cancelAllQueue is the queue of a request for asynqmon's "cancel all" of
// active tasks, POST queues/<queue>/active_tasks:cancel_all.
func cancelAllQueue(method, path string) (string, bool) {
	q, ok := strings.CutSuffix(strings.TrimPrefix(path, Path+"/api/queues/"), "/active_tasks:cancel_all")
	return q, ok && method == http.MethodPost && q != "" && !strings.Contains(q, "/")
}

// cancelAll answers asynqmon's "cancel all" of queue's active tasks as
// asynqmon would (204, or 500 with the error), and audits the tasks it
// cancelled as asynqmon's batch cancel names them.
func (h *Handler) cancelAll(c *gin.Context, queue string) {
	ids, err := h.cancelAllActive(queue)
	if err != nil {
		c.String(http.StatusInternalServerError, err.Error())
		e := changeEntry(c)
		e.Count, e.Detail = len(ids), audit.NamedIDs(ids) // cancelled before the error
		h.audit(c, e, fmt.Errorf("HTTP %d: %w", http.StatusInternalServerError, err))
		return
	}
	c.Status(http.StatusNoContent)
	answer, _ := json.Marshal(map[string][]string{"canceled_ids": append([]string{}, ids...)})
	h.auditChange(c, http.StatusNoContent, answer)
}

// cancelAllActive is asynqmon's "cancel all" of queue's active tasks,
// done as asynqmon does it (a page of 100 at a time, a cancellation each),
// returning the IDs it cancelled.
func (h *Handler) cancelAllActive(queue string) ([]string, error) {
	const pageSize = 100
	var ids []string
	for page := 1; ; page++ {
		tasks, err := h.tasks.ListActiveTasks(queue, asynq.Page(page), asynq.PageSize(pageSize))
		if err != nil {
			return ids, err
		}
		for _, t := range tasks {
			if err := h.tasks.CancelProcessing(t.ID); err != nil {
				return ids, err
			}
			ids = append(ids, t.ID)
		}
		if len(tasks) < pageSize {
			return ids, nil
		}
	}
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) keep(p []byte) {
	if room := b.max - b.Len(); room > 0 {
		b.Write(p[:min(len(p), room)])
	}
}
