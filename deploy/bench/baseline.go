package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/hibiken/asynq"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"
)

// The baselines, run as child processes of this binary (see childEnv). They
// are what stripeq is measured against, never part of the product.
//
//	receiver  the plain receiver most Stripe-on-asynq services start from:
//	          Gin, webhook.ConstructEvent, asynq enqueue with the event ID as
//	          task ID, and nothing else (no access log, metrics or index).
//	ceiling   the least a receiver can do: Gin, the HMAC and tolerance
//	          check alone (webhook.ValidatePayload), the event ID found by a
//	          byte search instead of any JSON decode, and the enqueue. It
//	          checks no event shape, so it is no product; it is the ceiling
//	          of "HTTP plus HMAC plus enqueue" on this machine that issue 8
//	          names.
//	worker    a bare asynq server whose handler does only what the
//	          harness observes: GET /v1/events/{id} on BENCH_RECORDER.
//	forwarder the bare Go forwarder (forward.go): an asynq server whose
//	          handler POSTs the payload to BENCH_RECORDER/forward.
//
// Both read BENCH_REDIS_ADDR; the receiver also BENCH_ADDR and
// BENCH_SECRET, the worker BENCH_RECORDER and BENCH_CONCURRENCY.
func runChild(kind string, getenv func(string) string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	redisOpt := asynq.RedisClientOpt{Addr: getenv("BENCH_REDIS_ADDR")}
	switch kind {
	case "receiver":
		return serveBaselineReceiver(ctx, getenv("BENCH_ADDR"), redisOpt, getenv("BENCH_SECRET"), false)
	case "ceiling":
		return serveBaselineReceiver(ctx, getenv("BENCH_ADDR"), redisOpt, getenv("BENCH_SECRET"), true)
	case "worker":
		n, err := strconv.Atoi(getenv("BENCH_CONCURRENCY"))
		if err != nil {
			return fmt.Errorf("BENCH_CONCURRENCY: %w", err)
		}
		return serveBaselineWorker(ctx, redisOpt, getenv("BENCH_RECORDER"), n)
	case "forwarder":
		n, err := strconv.Atoi(getenv("BENCH_CONCURRENCY"))
		if err != nil {
			return fmt.Errorf("BENCH_CONCURRENCY: %w", err)
		}
		return serveBaselineForwarder(ctx, redisOpt, getenv("BENCH_RECORDER"), n)
	default:
		return fmt.Errorf("unknown child %q", kind)
	}
}

// baselineTask is the task the plain receiver enqueues, and the raw
// baseline of the end-to-end targets: the event ID as task ID, the options
// stripeq uses, and no headers.
func baselineTask(eventType, id string, body []byte) *asynq.Task {
	return asynq.NewTask("stripe:"+eventType, body,
		asynq.TaskID(id), asynq.Queue(queue), asynq.MaxRetry(7), asynq.Retention(7*24*time.Hour))
}

func serveBaselineReceiver(ctx context.Context, addr string, redisOpt asynq.RedisClientOpt, secret string, ceiling bool) error {
	client := asynq.NewClient(redisOpt)
	defer client.Close()
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	r.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.POST("/webhooks/stripe", func(c *gin.Context) {
		body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, 1<<20))
		if err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"message": "cannot read body"})
			return
		}
		var eventType, id string
		if ceiling {
			err = webhook.ValidatePayload(body, c.GetHeader("Stripe-Signature"), secret)
			eventType, id = "event", firstEventID(body)
			if err == nil && id == "" {
				err = errors.New("no event ID")
			}
		} else {
			var event stripe.Event
			event, err = webhook.ConstructEvent(body, c.GetHeader("Stripe-Signature"), secret)
			eventType, id = string(event.Type), event.ID
		}
		if err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"message": err.Error()})
			return
		}
		_, err = client.EnqueueContext(c.Request.Context(), baselineTask(eventType, id, body))
		switch {
		case err == nil:
			c.JSON(http.StatusOK, gin.H{"message": "Received"})
		case errors.Is(err, asynq.ErrTaskIDConflict):
			c.JSON(http.StatusOK, gin.H{"message": "duplicate"})
		default:
			c.JSON(http.StatusServiceUnavailable, gin.H{"message": err.Error()})
		}
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// firstEventID returns the first "evt_…" string of body: the event's ID in
// every event the harness sends. It is the ceiling receiver's stand-in for
// decoding the event.
func firstEventID(body []byte) string {
	at := bytes.Index(body, []byte(`"evt_`))
	if at < 0 {
		return ""
	}
	end := bytes.IndexByte(body[at+1:], '"')
	if end < 0 {
		return ""
	}
	return string(body[at+1 : at+1+end])
}

func serveBaselineWorker(ctx context.Context, redisOpt asynq.RedisClientOpt, recorder string, concurrency int) error {
	hc := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	srv := asynq.NewServer(redisOpt, asynq.Config{
		Concurrency:       concurrency,
		Queues:            map[string]int{queue: 1},
		TaskCheckInterval: 100 * time.Millisecond, // as stripeq's worker
		LogLevel:          asynq.WarnLevel,
	})
	h := asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		id, _ := asynq.GetTaskID(ctx)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, recorder+"/v1/events/"+id, nil)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil
	})
	if err := srv.Start(h); err != nil {
		return err
	}
	<-ctx.Done()
	srv.Shutdown()
	return nil
}
