package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/stripeq/stripeq/dashboard/internal/auth"

	"github.com/gin-gonic/gin"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/failures"
	"github.com/stripeq/stripeq/pkg/httpserver"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// exported is one line of the export: the list's row, plus the queue,
// headers, payload and the failed attempts' errors.
type exported struct {
	execution
	Queue    string             `json:"queue"`
	Headers  map[string]string  `json:"headers"`
	Payload  json.RawMessage    `json:"payload"`
	Attempts []failures.Attempt `json:"attempts,omitempty"`
}

// Limits of exports. An export holds a batch of executions with their
// payloads in memory, and reads Redis until it ends: 40 at once grew the
// dashboard to 669 MB.
const (
	// maxUserExports of one user's exports run at once.
	maxUserExports = 2
	// maxExports exports run at once in one dashboard, whoever asks.
	maxExports = 3
	// exportRetryAfter is the Retry-After of a refused export: about
	// what an export of 100,000 executions takes.
	exportRetryAfter = 15 * time.Second
	// exportStall is how long an export may go without starting a batch:
	// before each one its write deadline moves this far ahead, so an
	// export that makes progress outlives the server's WriteTimeout.
	exportStall = httpserver.WriteTimeout
)

// exportSlots counts the exports running, per user and in all.
type exportSlots struct {
	mu    sync.Mutex
	users map[string]int
	total int
}

// Refusals of exportSlots.take.
var (
	errUserExports = fmt.Errorf("%d exports of yours are running; wait for one to finish", maxUserExports)
	errAllExports  = fmt.Errorf("%d exports are running on this dashboard; wait for one to finish", maxExports)
)

// take reserves an export for user, or says which limit refuses it; the
// caller calls release when the export ends.
func (e *exportSlots) take(user string) (release func(), err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.users[user] >= maxUserExports:
		return nil, errUserExports
	case e.total >= maxExports:
		return nil, errAllExports
	}
	if e.users == nil {
		e.users = map[string]int{}
	}
	e.users[user]++
	e.total++
	return func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.total--
		if e.users[user]--; e.users[user] == 0 {
			delete(e.users, user)
		}
	}, nil
}

// exportEnd is the last line of every export: whether it is complete and
// how many executions the lines before it hold. An export whose last
// line is not this, or says complete false (with the error), is short.
type exportEnd struct {
	Complete bool   `json:"complete"`
	Count    int    `json:"count"`
	Error    string `json:"error,omitempty"`
}

// handleExport is GET /api/executions.ndjson?<the list's filter>: every
// matching execution, payload included, one JSON object per line, newest
// first within each shard, then an exportEnd line. It has no cap (see
// execindex.Shards.Scan); the page and limit parameters are ignored. Each
// user runs at most maxUserExports at once and the dashboard maxExports
// (429 past either); the write deadline moves exportStall ahead before
// each batch, so a long export that makes progress is not cut.
func (s *server) handleExport() gin.HandlerFunc {
	return func(c *gin.Context) {
		v := c.Request.URL.Query()
		v.Del("page")
		v.Del("limit")
		q, err := parseQuery(v, time.Now())
		if err != nil {
			apiError(c, err)
			return
		}
		release, err := s.exports.take(c.GetString(auth.KeyUser))
		if err != nil {
			s.tooManyRequests(c, exportRetryAfter, err.Error())
			return
		}
		defer release()
		ctx := c.Request.Context()
		rc := http.NewResponseController(c.Writer)
		extend := func() {
			// ErrNotSupported: a writer without deadlines (httptest).
			if err := rc.SetWriteDeadline(time.Now().Add(exportStall)); err != nil && !errors.Is(err, http.ErrNotSupported) {
				s.log.Warn("export: cannot extend the write deadline", "err", err.Error())
			}
		}
		extend()
		c.Header("Content-Type", "application/x-ndjson")
		c.Header("Content-Disposition", `attachment; filename="executions.ndjson"`)
		c.Status(http.StatusOK)
		enc := json.NewEncoder(c.Writer)
		count := 0
		err = s.index.Scan(ctx, q.Filter, func(batch []execindex.Item) error {
			extend()
			for _, r := range s.exportRows(ctx, batch) {
				if err := enc.Encode(r); err != nil {
					return err
				}
				count++
			}
			return rc.Flush()
		})
		end := exportEnd{Complete: err == nil, Count: count}
		if err != nil {
			end.Error = "export stopped: " + err.Error()
		}
		if werr := enc.Encode(end); werr != nil || err != nil {
			s.log.Warn("export stopped short", "user", c.GetString(auth.KeyUser), "count", count, "err", errors.Join(err, werr).Error())
		}
	}
}

// exportRows describes the executions of batch for the export, 8 at a
// time, leaving out those gone since the index listed them.
func (s *server) exportRows(ctx context.Context, batch []execindex.Item) []*exported {
	rows := make([]*exported, len(batch))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, it := range batch {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			rows[i] = s.exportOne(ctx, it)
		})
	}
	wg.Wait()
	return slices.DeleteFunc(rows, func(r *exported) bool { return r == nil })
}

// exportOne describes one execution for the export, or nil when it is
// gone.
func (s *server) exportOne(ctx context.Context, it execindex.Item) *exported {
	info, err := s.tasks.GetTaskInfo(it.Queue, it.ID)
	var attempts []failures.Attempt
	if r, ferr := s.failures.Get(ctx, it.Queue, it.ID); ferr == nil {
		attempts = r.Attempts
		if err != nil {
			info = r.TaskInfo()
		}
	} else if err != nil {
		return nil
	}
	e := &exported{execution: s.newExecution(info, it.ReceivedAt), Queue: info.Queue, Headers: info.Headers, Attempts: attempts}
	body, err := stripetask.Body(info.Payload)
	if err == nil && json.Valid(body) {
		e.Payload = body
	} else {
		e.Payload, _ = json.Marshal(string(info.Payload))
	}
	return e
}
