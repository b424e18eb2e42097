package main

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/failures"
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

// handleExport is GET /api/executions.ndjson?<the list's filter>: every
// matching execution, payload included, one JSON object per line, newest
// first within each shard. It has no cap (see execindex.Shards.Scan); the
// page and limit parameters are ignored.
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
		ctx := c.Request.Context()
		c.Header("Content-Type", "application/x-ndjson")
		c.Header("Content-Disposition", `attachment; filename="executions.ndjson"`)
		c.Status(http.StatusOK)
		enc := json.NewEncoder(c.Writer)
		err = s.index.Scan(ctx, q.Filter, func(batch []execindex.Item) error {
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
			for _, r := range rows {
				if r == nil {
					continue
				}
				if err := enc.Encode(r); err != nil {
					return err
				}
			}
			c.Writer.Flush()
			return nil
		})
		if err != nil && ctx.Err() == nil {
			// The status is sent: a last line says the export is short.
			enc.Encode(map[string]string{"error": "export stopped: " + err.Error()})
			s.log.Warn("export stopped", "err", err)
		}
	}
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
