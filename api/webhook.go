package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/stripeq/stripeq/pkg/apiversion"
	"github.com/stripeq/stripeq/pkg/logging"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/taskstore"
)

// Messages of the webhook's JSON answers, {"message": …}. Stripe only looks
// at the status; operators and tests read the message.
const (
	msgReceived  = "Received"
	msgDuplicate = "duplicate"
	msgIgnored   = "ignored"
)

// Context keys the access log reads.
const (
	ctxEventID   = "stripe_event_id"
	ctxEventType = "stripe_event_type"
	ctxOutcome   = "outcome"
)

// handleWebhook receives one Stripe delivery. It answers 200 only once the
// event's task and its duplicate marker are stored in Redis (or were
// stored before: "duplicate"), or when the event type is not permitted
// ("ignored"). Anything it cannot verify gets 400; a body over 1 MiB gets
// 413; a Redis failure gets 503 so that Stripe delivers the event again
// later.
func (s *server) handleWebhook() gin.HandlerFunc {
	return func(c *gin.Context) {
		if enc := c.GetHeader("Content-Encoding"); enc != "" && enc != "identity" {
			reply(c, http.StatusUnsupportedMediaType, "bad_request", "Content-Encoding "+enc+" is not accepted; Stripe sends plain JSON")
			return
		}
		if c.Request.ContentLength > maxBodyBytes {
			reply(c, http.StatusRequestEntityTooLarge, "too_large", "body exceeds 1 MiB")
			return
		}
		body, err := readBody(c)
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				reply(c, http.StatusRequestEntityTooLarge, "too_large", "body exceeds 1 MiB")
				return
			}
			reply(c, http.StatusBadRequest, "bad_request", "cannot read body")
			return
		}

		verifyStart := time.Now()
		err = s.verifier.verify(body, c.GetHeader("Stripe-Signature"))
		since(s.metrics.verify, verifyStart)
		if err != nil {
			reply(c, http.StatusBadRequest, "bad_signature", "invalid Stripe-Signature: "+err.Error())
			return
		}

		spec, meta, err := stripetask.NewSpec(body, s.taskOpts)
		if err != nil {
			reply(c, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
		c.Set(ctxEventID, meta.ID)
		c.Set(ctxEventType, meta.Type)
		s.noteAPIVersion(c, meta)

		if !s.permits(meta.Type) {
			reply(c, http.StatusOK, "ignored", msgIgnored)
			return
		}

		ctx, cancel := context.WithTimeout(c.Request.Context(), enqueueTimeout)
		defer cancel()
		redisStart := time.Now()
		defer since(s.metrics.enqueue, redisStart)
		// The retained task catches a redelivery for TASK_RETENTION; the
		// marker catches it for DEDUPE_WINDOW, after the task is gone. A
		// task lives from its enqueue, after the event's creation, until
		// TASK_RETENTION past its completion: an event created less than
		// TASK_RETENTION ago still has its task, if it ever had one, and
		// needs no marker lookup. Live traffic is such events. The lookup,
		// the task and the marker are one script, in one round trip
		// shared with the deliveries in flight (taskstore): the marker is
		// written when the task is stored or already was, and with
		// REDIS_WAIT_REPLICAS confirmed on the replicas with it.
		task := taskstore.FromSpec(spec)
		marker := s.marks.Marker(task.Queue, meta.ID, meta.Created, s.needsMarkerLookup(meta.Created))
		res, err := s.store.Store(ctx, task, marker)
		switch {
		case err != nil:
			c.Error(fmt.Errorf("event %s: %w", meta.ID, err))
			reply(c, http.StatusServiceUnavailable, "unavailable", "cannot store the event; retry later")
		case res == taskstore.Stored:
			// A new event's entry in the Console's index is written in
			// the background (execindex.Writer): the dashboard's
			// reconcile indexes any the api could not.
			if s.index != nil {
				s.index.Add(meta.ID, meta, time.Now())
			}
			reply(c, http.StatusOK, "received", msgReceived)
		default:
			// Its task exists (stored before, maybe without its marker,
			// if the process stopped in between; that delivery was not
			// answered 200), or its marker does.
			reply(c, http.StatusOK, "duplicate", msgDuplicate)
		}
	}
}

// needsMarkerLookup reports whether an event created at created (unix
// seconds) may have outlived its task: created TASK_RETENTION ago or more.
func (s *server) needsMarkerLookup(created int64) bool {
	retention := s.taskOpts.Retention
	if retention <= 0 {
		retention = stripetask.DefaultRetention
	}
	return time.Since(time.Unix(created, 0)) >= retention
}

// readBody reads the request's body, at most maxBodyBytes, into one buffer
// sized by its Content-Length when it has one (io.ReadAll would grow and
// copy its buffer several times for a 3 KB event). The size taken on trust
// is capped at 64 KiB, so a false Content-Length cannot make every request
// allocate a megabyte.
func readBody(c *gin.Context) ([]byte, error) {
	size := int64(bytes.MinRead)
	if n := c.Request.ContentLength; n > 0 {
		size += min(n, 64<<10)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	_, err := buf.ReadFrom(http.MaxBytesReader(c.Writer, c.Request.Body, maxBodyBytes))
	return buf.Bytes(), err
}

// noteAPIVersion counts the event by its API version, and logs, once per
// version, one that the built-in handlers are not tested with. Every
// version is accepted: the worker reads the fields it needs wherever the
// event's version puts them, and the endpoint's version is the sender's
// choice (api/README.md says which to give it).
func (s *server) noteAPIVersion(c *gin.Context, m stripetask.Metadata) {
	s.metrics.countVersion(m.APIVersion)
	if apiversion.BuiltinsCover(m.APIVersion) {
		return
	}
	if _, seen := s.seenVersions.LoadOrStore(m.APIVersion, true); seen {
		return
	}
	s.log.Warn("event rendered at an API version the built-in handlers are not tested with; accepting it (logged once per version)",
		"api_version", m.APIVersion, "tested_api_versions", strings.Join(apiversion.Tested(), ","),
		slog.String(logging.KeyEventID, m.ID), slog.String(logging.KeyEventType, m.Type),
		slog.String(logging.KeyRequestID, c.GetString(logging.KeyRequestID)))
}

// reply writes the JSON answer and records the outcome for the access log.
func reply(c *gin.Context, status int, outcome, message string) {
	c.Set(ctxOutcome, outcome)
	c.JSON(status, gin.H{"message": message})
}

func handleHealthz() gin.HandlerFunc {
	return func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }
}

// handleReadyz answers 200 while Redis answers a PING within a second.
func (s *server) handleReadyz() gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), readyTimeout)
		defer cancel()
		if err := s.rdb.Ping(ctx).Err(); err != nil {
			c.Error(err)
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "message": "Redis does not answer"})
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "ok"})
	}
}
