package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/redisconn"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/compress"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// bundle is what a receiver test works with.
type bundle struct {
	handler   http.Handler // the webhook listener's
	metrics   http.Handler // GET /metrics on METRICS_ADDR
	inspector *asynq.Inspector
	cfg       config
	index     *execindex.Writer // the Console index entries, written in the background
}

// setup returns a receiver over a fresh Redis database, configured by env
// on top of a test secret.
func setup(t *testing.T, env map[string]string) *bundle {
	t.Helper()
	db := redistest.New(t)
	vars := map[string]string{"REDIS_URL": db.URL, "STRIPE_WEBHOOK_SECRET": stripetest.Secret}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := loadConfig(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	rdb := redisconn.NewClient(cfg.Redis)
	t.Cleanup(func() { rdb.Close() })
	srv := newServer(slog.New(slog.DiscardHandler), cfg, rdb)
	index := execindex.NewWriter(rdb, execindex.NewShards(rdb, cfg.Task), srv.log)
	t.Cleanup(func() { index.Close(context.Background()) })
	srv.index = index
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	return &bundle{handler: srv.handler(), metrics: srv.metrics.handler(), inspector: insp, cfg: cfg, index: index}
}

// post sends body with a Stripe-Signature header and returns the status
// and the message of the JSON answer.
func post(t *testing.T, h http.Handler, body []byte, sig string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", bytes.NewReader(body))
	if sig != "" {
		req.Header.Set("Stripe-Signature", sig)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var answer struct{ Message string }
	if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
		t.Fatalf("answer is not JSON: %q", rec.Body.String())
	}
	return rec.Code, answer.Message
}

// tasks returns every task in the queue, in any state.
func tasks(t *testing.T, insp *asynq.Inspector, queue string) []*asynq.TaskInfo {
	t.Helper()
	var all []*asynq.TaskInfo
	for _, list := range []func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error){
		insp.ListPendingTasks, insp.ListScheduledTasks, insp.ListRetryTasks,
		insp.ListArchivedTasks, insp.ListCompletedTasks, insp.ListActiveTasks,
	} {
		got, err := list(queue, asynq.PageSize(1000))
		if err != nil && !errors.Is(err, asynq.ErrQueueNotFound) {
			t.Fatal(err)
		}
		all = append(all, got...)
	}
	return all
}

func TestWebhook(t *testing.T) {
	now := time.Now()
	customer := stripetest.Event("customer.created", "evt_test_valid", now)
	// A type no handler takes: a customer event renamed.
	product := stripetest.Edit(stripetest.Event("customer.created", "evt_test_product", now), func(e map[string]any) { e["type"] = "product.created" })
	const newSecret = "whsec_new_0123456789abcdef0123456789abcdef" // rotated in
	tests := []struct {
		name        string
		env         map[string]string
		body        []byte
		sig         string
		wantStatus  int
		wantMessage string // exact, or a prefix when it ends in "…"
		wantTasks   int
	}{
		{"valid event", nil, customer, stripetest.Sign(customer, now, stripetest.Secret), 200, "Received", 1},
		{"unpermitted type", nil, product, stripetest.Sign(product, now, stripetest.Secret), 200, "ignored", 0},
		{"type not in STRIPE_EVENTS", map[string]string{"STRIPE_EVENTS": "invoice.paid"}, customer,
			stripetest.Sign(customer, now, stripetest.Secret), 200, "ignored", 0},
		{"type in STRIPE_EVENTS", map[string]string{"STRIPE_EVENTS": "product.created,invoice.paid"}, product,
			stripetest.Sign(product, now, stripetest.Secret), 200, "Received", 1},
		{"every type with STRIPE_EVENTS=*", map[string]string{"STRIPE_EVENTS": "*"}, product,
			stripetest.Sign(product, now, stripetest.Secret), 200, "Received", 1},
		{"missing signature", nil, customer, "", 400, "invalid Stripe-Signature: webhook has no Stripe-Signature header", 0},
		{"signature by another secret", nil, customer, stripetest.Sign(customer, now, "whsec_other"), 400, "invalid Stripe-Signature: webhook had no valid signature", 0},
		{"body changed after signing", nil, bytes.Replace(customer, []byte("Jenny"), []byte("Jenna"), 1), stripetest.Sign(customer, now, stripetest.Secret), 400, "invalid Stripe-Signature: webhook had no valid signature", 0},
		{"timestamp 301 s old", nil, customer, stripetest.Sign(customer, now.Add(-301*time.Second), stripetest.Secret), 400, "invalid Stripe-Signature: timestamp wasn't within tolerance", 0},
		{"timestamp 10 min ahead", nil, customer, stripetest.Sign(customer, now.Add(10*time.Minute), stripetest.Secret), 400, "invalid Stripe-Signature: timestamp is too far in the future", 0},
		{"rotated secrets: signed by the old one", map[string]string{"STRIPE_WEBHOOK_SECRET": newSecret + ", " + stripetest.Secret}, customer,
			stripetest.Sign(customer, now, stripetest.Secret), 200, "Received", 1},
		{"rotated secrets: two signatures, one valid", map[string]string{"STRIPE_WEBHOOK_SECRET": newSecret}, customer,
			stripetest.Sign(customer, now, stripetest.Secret, newSecret), 200, "Received", 1},
		{"signed body that is not JSON", nil, []byte("hello"), stripetest.Sign([]byte("hello"), now, stripetest.Secret), 400, "malformed event JSON…", 0},
		{"signed JSON that is not an event", nil, []byte(`{"id":"cus_1"}`), stripetest.Sign([]byte(`{"id":"cus_1"}`), now, stripetest.Secret), 400, "not a Stripe event…", 0},
		{"2 MiB body", nil, bytes.Repeat([]byte("a"), 2<<20), "t=1,v1=00", 413, "body exceeds 1 MiB", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t, tt.env)
			status, msg := post(t, b.handler, tt.body, tt.sig)
			if status != tt.wantStatus {
				t.Errorf("status = %d, want %d (message %q)", status, tt.wantStatus, msg)
			}
			if p, ok := strings.CutSuffix(tt.wantMessage, "…"); ok {
				if !strings.HasPrefix(msg, p) {
					t.Errorf("message = %q, want prefix %q", msg, p)
				}
			} else if msg != tt.wantMessage {
				t.Errorf("message = %q, want %q", msg, tt.wantMessage)
			}
			if got := len(tasks(t, b.inspector, "stripe")); got != tt.wantTasks {
				t.Errorf("%d tasks in Redis, want %d", got, tt.wantTasks)
			}
		})
	}
}

func TestWebhookStoresTheContractTask(t *testing.T) {
	b := setup(t, map[string]string{"TASK_RETENTION": "72h"})
	now := time.Now()
	body := stripetest.Event("customer.created", "evt_test_contract", now)
	if status, msg := post(t, b.handler, body, stripetest.Sign(body, now, stripetest.Secret)); status != 200 {
		t.Fatalf("status %d: %s", status, msg)
	}
	info, err := b.inspector.GetTaskInfo("stripe", "evt_test_contract")
	if err != nil {
		t.Fatal(err)
	}
	if info.Type != "stripe:customer.created" {
		t.Errorf("type = %q", info.Type)
	}
	if !bytes.Equal(info.Payload, body) {
		t.Errorf("payload differs from the body as received")
	}
	if info.MaxRetry != 7 {
		t.Errorf("MaxRetry = %d, want 7", info.MaxRetry)
	}
	if info.Retention != 72*time.Hour {
		t.Errorf("Retention = %v, want 72h", info.Retention)
	}
	want := map[string]string{
		"type": "customer.created", "livemode": "false", "apiVersion": "2023-10-16",
		"customer": "cus_stripeq_demo", "objectId": "cus_stripeq_demo", "created": strconv.FormatInt(now.Unix(), 10),
		"refs": "jenny.rosen@example.com",
	}
	if !maps.Equal(info.Headers, want) {
		t.Errorf("headers = %v\nwant %v", info.Headers, want)
	}
}

// TestWebhookStoresACompressedTask: with PAYLOAD_COMPRESSION=zstd the
// stored payload is a zstd frame that gives back the body byte for byte,
// with the same headers; a duplicate is still caught.
func TestWebhookStoresACompressedTask(t *testing.T) {
	b := setup(t, map[string]string{"PAYLOAD_COMPRESSION": "zstd"})
	now := time.Now()
	body := stripetest.Event("invoice.payment_failed", "evt_test_zstd", now)
	for _, want := range []string{"Received", "duplicate"} {
		if status, msg := post(t, b.handler, body, stripetest.Sign(body, now, stripetest.Secret)); status != 200 || msg != want {
			t.Fatalf("status %d %q, want 200 %q", status, msg, want)
		}
	}
	info, err := b.inspector.GetTaskInfo("stripe", "evt_test_zstd")
	if err != nil {
		t.Fatal(err)
	}
	if !compress.IsCompressed(info.Payload) || len(info.Payload) >= len(body)/2 {
		t.Errorf("stored payload: %d bytes for a %d-byte body, compressed %v", len(info.Payload), len(body), compress.IsCompressed(info.Payload))
	}
	got, err := stripetask.Body(info.Payload)
	if err != nil || !bytes.Equal(got, body) {
		t.Errorf("Body of the stored payload: %v; equal to the body as received: %v", err, bytes.Equal(got, body))
	}
	if info.Headers["type"] != "invoice.payment_failed" || info.Headers["created"] != strconv.FormatInt(now.Unix(), 10) {
		t.Errorf("headers = %v", info.Headers)
	}
}

func TestWebhookDuplicateDelivery(t *testing.T) {
	b := setup(t, nil)
	now := time.Now()
	body := stripetest.Event("customer.updated", "evt_test_dup", now)
	var messages []string
	for i := range 3 {
		// Stripe signs each delivery anew.
		status, msg := post(t, b.handler, body, stripetest.Sign(body, now.Add(time.Duration(i)*time.Second), stripetest.Secret))
		if status != 200 {
			t.Fatalf("delivery %d: status %d", i, status)
		}
		messages = append(messages, msg)
	}
	if want := []string{"Received", "duplicate", "duplicate"}; !slices.Equal(messages, want) {
		t.Errorf("answers = %v, want %v", messages, want)
	}
	if got := len(tasks(t, b.inspector, "stripe")); got != 1 {
		t.Errorf("%d tasks, want 1", got)
	}
}

// TestWebhookRedeliveryAfterRetention delivers an event, lets its task go
// as asynq's janitor does past TASK_RETENTION, and delivers it again:
// within DEDUPE_WINDOW of the event's creation the marker still answers
// "duplicate" and stores nothing. The task is deleted with the Inspector,
// as the janitor would; deploy/e2e runs the real janitor.
func TestWebhookRedeliveryAfterRetention(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name         string
		env          map[string]string
		age          time.Duration // of the event, when delivered
		storedBefore bool          // the task is stored without a marker first, as by an api killed before writing it
		want         []string      // answers to the first delivery and to the redelivery after the task is gone
	}{
		// Within TASK_RETENTION of its creation an event's task is still
		// kept, so the api does not look up the marker: a task deleted by
		// hand before then no longer catches the redelivery.
		{"created an hour ago, its task deleted by hand", nil, time.Hour, false, []string{"Received", "Received"}},
		{"TASK_RETENTION=1h, created 2 hours ago", map[string]string{"TASK_RETENTION": "1h"}, 2 * time.Hour, false, []string{"Received", "duplicate"}},
		{"redelivery on day 6", nil, 6 * day, false, []string{"Received", "duplicate"}},
		{"created 8 days ago: past the 7-day window, only the task caught it", nil, 8 * day, false, []string{"Received", "Received"}},
		{"DEDUPE_WINDOW=24h, created 2 days ago", map[string]string{"DEDUPE_WINDOW": "24h"}, 2 * day, false, []string{"Received", "Received"}},
		{"DEDUPE_WINDOW=720h, created 20 days ago", map[string]string{"DEDUPE_WINDOW": "720h"}, 20 * day, false, []string{"Received", "duplicate"}},
		{"stored, but the api stopped before the marker", nil, 6 * day, true, []string{"duplicate", "duplicate"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t, tt.env)
			id := "evt_test_redelivery_" + strconv.Itoa(i)
			body := stripetest.Event("invoice.paid", id, time.Now().Add(-tt.age))
			if tt.storedBefore {
				task, _, err := stripetask.New(body, b.cfg.Task)
				if err != nil {
					t.Fatal(err)
				}
				client := asynq.NewClient(b.cfg.Redis)
				defer client.Close()
				if _, err := client.Enqueue(task); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			for round := range 2 {
				status, msg := post(t, b.handler, body, stripetest.Sign(body, time.Now(), stripetest.Secret))
				if status != 200 {
					t.Fatalf("delivery %d: status %d (%s)", round+1, status, msg)
				}
				got = append(got, msg)
				if round == 0 {
					// TASK_RETENTION has passed: asynq's janitor deletes the task.
					if err := b.inspector.DeleteTask("stripe", id); err != nil {
						t.Fatalf("delete the task: %v", err)
					}
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("answers = %v, want %v", got, tt.want)
			}
			wantTasks := 0
			if tt.want[1] == "Received" {
				wantTasks = 1
			}
			if n := len(tasks(t, b.inspector, "stripe")); n != wantTasks {
				t.Errorf("%d tasks after the redelivery, want %d", n, wantTasks)
			}
		})
	}
}

func TestWebhookRedisUnreachable(t *testing.T) {
	// A port nothing listens on.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	cfg, err := loadConfig(func(k string) string {
		return map[string]string{"REDIS_URL": "redis://" + addr, "STRIPE_WEBHOOK_SECRET": stripetest.Secret}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	rdb := redisconn.NewClient(cfg.Redis)
	defer rdb.Close()
	srv := newServer(slog.New(slog.DiscardHandler), cfg, rdb)
	h := srv.handler()

	now := time.Now()
	body := stripetest.Event("customer.created", "evt_test_down", now)
	start := time.Now()
	status, msg := post(t, h, body, stripetest.Sign(body, now, stripetest.Secret))
	if status != 503 {
		t.Errorf("status = %d (%s), want 503", status, msg)
	}
	if d := time.Since(start); d > enqueueTimeout+time.Second {
		t.Errorf("answered after %v, want within %v", d, enqueueTimeout)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != 503 {
		t.Errorf("/readyz = %d, want 503", rec.Code)
	}
}

func TestRoutes(t *testing.T) {
	b := setup(t, nil)
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/healthz", 200},
		{"GET", "/readyz", 200},
		{"GET", "/webhooks/stripe", 405},
		{"POST", "/webhooks/other", 404},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			b.handler.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, io.NopCloser(strings.NewReader(""))))
			if rec.Code != tt.want {
				t.Errorf("status = %d, want %d", rec.Code, tt.want)
			}
		})
	}
}

func TestConfigErrorsNameEveryVariable(t *testing.T) {
	_, err := loadConfig(func(k string) string {
		return map[string]string{"REDIS_URL": "http://x", "TASK_RETENTION": "soon", "STRIPE_WEBHOOK_TOLERANCE": "-1s",
			"DEDUPE_WINDOW": "forever", "PAYLOAD_COMPRESSION": "gzip"}[k]
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, name := range []string{"REDIS_URL", "TASK_RETENTION", "STRIPE_WEBHOOK_TOLERANCE", "STRIPE_WEBHOOK_SECRET", "DEDUPE_WINDOW", "PAYLOAD_COMPRESSION"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
}

// TestWebhookWaitReplicas: with REDIS_WAIT_REPLICAS, a write no replica
// confirms (a standalone Redis has none) is answered 503, the task and
// marker stored with it or not; an answer that writes nothing, a
// redelivery its marker catches, is 200 duplicate.
func TestWebhookWaitReplicas(t *testing.T) {
	day := 24 * time.Hour
	tests := []struct {
		name string
		age  time.Duration // of the event
		want []int         // statuses of the first delivery, then of two redeliveries
	}{
		{"a live event: its task", time.Hour, []int{503, 503, 503}},
		// The 503 left the task and marker in Redis: the redelivery's
		// marker lookup finds it, writes nothing and waits for nothing.
		{"an event 6 days old: its marker is looked up", 6 * day, []int{503, 200, 200}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t, map[string]string{"REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT": "20ms"})
			body := stripetest.Event("invoice.paid", "evt_test_wait_"+strconv.Itoa(i), time.Now().Add(-tt.age))
			var got []int
			for range tt.want {
				status, _ := post(t, b.handler, body, stripetest.Sign(body, time.Now(), stripetest.Secret))
				got = append(got, status)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("statuses = %v, want %v", got, tt.want)
			}
		})
	}
}
