package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/redisconn"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetest"
	"github.com/stripeq/stripeq/pkg/taskstore"
)

// countingStore counts the tasks stored through it.
type countingStore struct {
	storer
	stored atomic.Int64
}

func (q *countingStore) Store(ctx context.Context, t taskstore.Task, m *taskstore.Marker) (taskstore.Result, error) {
	res, err := q.storer.Store(ctx, t, m)
	if err == nil && res == taskstore.Stored {
		q.stored.Add(1)
	}
	return res, err
}

// signature is what a Stripe-Signature header proves, judged by Stripe's
// specification rather than by the code under test: a "t=" timestamp (the
// last one, as stripe-go reads it) and a "v1=" HMAC-SHA256 of "t.body" by
// the secret, with t within the tolerance either way.
type signature int

const (
	sigInvalid    signature = iota
	sigValid                // a task may be stored
	sigBorderline           // within 2 s of the tolerance: either answer is right
)

func judge(body []byte, header, secret string, tolerance time.Duration, now time.Time) signature {
	if header == "" {
		return sigInvalid
	}
	var (
		ts      int64
		hasTS   bool
		matched bool
		sigs    [][]byte
	)
	for pair := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || strings.Contains(v, "=") {
			return sigInvalid // stripe-go refuses the whole header
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return sigInvalid
			}
			ts, hasTS = n, true
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	if !hasTS {
		return sigInvalid
	}
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%d.", ts)
	mac.Write(body)
	want := mac.Sum(nil)
	for _, s := range sigs {
		matched = matched || hmac.Equal(s, want)
	}
	if !matched {
		return sigInvalid
	}
	// Seconds between t and now, either way; float64 cannot overflow.
	off, tol := math.Abs(float64(now.Unix())-float64(ts)), tolerance.Seconds()
	switch {
	case off > tol+2:
		return sigInvalid
	case off >= tol-2:
		return sigBorderline
	}
	return sigValid
}

// FuzzWebhook posts arbitrary bodies and Stripe-Signature headers to the
// receiver, over a real Redis, with the signature either as given or made
// valid for the body (so that the fuzzer also reaches what follows the
// signature check). Whatever the input:
//   - it never panics and never answers 5xx (Redis is up);
//   - no task is ever stored unless the header validly signs the body;
//   - an answer "Received" means that task is in Redis, holding the body.
//
// Run it with: go test ./api -run '^$' -fuzz FuzzWebhook -fuzztime 60s
func FuzzWebhook(f *testing.F) {
	now := time.Now()
	event := stripetest.Event("customer.created", "evt_fuzz_seed", now)
	sign := func(b []byte, ts time.Time, secrets ...string) string { return stripetest.Sign(b, ts, secrets...) }
	for _, seed := range []struct {
		body   []byte
		header string
		resign bool
	}{
		{event, sign(event, now, stripetest.Secret), false},
		{event, "", true},
		{event, "", false},
		{event, "v0=" + hex.EncodeToString([]byte("x")), false},
		{event, sign(event, now, "whsec_other"), false},
		{event, sign(event, now, "whsec_other", stripetest.Secret), false},
		{event, sign(event, now.Add(-301*time.Second), stripetest.Secret), false},
		{event, sign(event, now.Add(time.Hour), stripetest.Secret), false},
		{event, fmt.Sprintf("t=%d,", now.Unix()) + sign(event, now.Add(time.Hour), stripetest.Secret), false},
		{bytes.Replace(event, []byte("Jenny"), []byte("Jenna"), 1), sign(event, now, stripetest.Secret), false},
		{[]byte("not json"), "", true},
		{[]byte(`{"id":"cus_1"}`), "", true},
		{[]byte(`{"id":"evt_1","type":"customer.created","created":1,"data":{"object":{}}}`), "", true},
		{[]byte(`{"id":"evt_1","type":"x","created":-1,"data":{"object":null}}`), "", true},
		{[]byte(`{"id":"evt_2","object":"event","type":"customer.created","created":1700000000,"data":{"object":{"object":"customer","id":"cus_2"}},"api_version":"2019-01-01"}`), "", true},
		{[]byte(`{"id":"evt_3","type":"invoice.paid","created":1700000000,"data":{"object":{"customer":{"id":"cus_3"}}}}`), "", true},
		{[]byte(`{"id":1}`), "", true},
		{[]byte{}, "t=1,v1=00", false},
		{event, "t=abc,v1=00", false},
		{event, "t=1=2,v1=00", false},
		{event, strings.Repeat("v1=00,", 100) + fmt.Sprintf("t=%d", now.Unix()), false},
	} {
		f.Add(seed.body, seed.header, seed.resign)
	}

	db := redistest.New(f)
	vars := map[string]string{"REDIS_URL": db.URL, "STRIPE_WEBHOOK_SECRET": stripetest.Secret, "STRIPE_EVENTS": "*"}
	cfg, err := loadConfig(func(k string) string { return vars[k] })
	if err != nil {
		f.Fatal(err)
	}
	rdb := redisconn.NewClient(cfg.Redis)
	f.Cleanup(func() { rdb.Close() })
	srv := newServer(slog.New(slog.DiscardHandler), cfg, rdb)
	queue := &countingStore{storer: srv.store}
	srv.store = queue
	h := srv.handler()
	insp := asynq.NewInspectorFromRedisClient(rdb)

	f.Fuzz(func(t *testing.T, body []byte, header string, resign bool) {
		if resign {
			header = stripetest.Sign(body, time.Now(), stripetest.Secret)
		}
		verdict := judge(body, header, stripetest.Secret, cfg.Tolerance, time.Now())
		before := queue.stored.Load()
		req := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", bytes.NewReader(body))
		req.Header.Set("Stripe-Signature", header)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		if rec.Code >= 500 {
			t.Fatalf("answered %d with Redis up: %s", rec.Code, rec.Body)
		}
		var answer struct{ Message string }
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("answer is not JSON: %q", rec.Body)
		}
		stored := queue.stored.Load() - before
		if stored > 0 && verdict == sigInvalid {
			t.Fatalf("a task was stored for a delivery without a valid signature (answer %d %q)", rec.Code, answer.Message)
		}
		if rec.Code == http.StatusOK && verdict == sigInvalid {
			t.Fatalf("answered 200 %q without a valid signature", answer.Message)
		}
		if answer.Message == msgReceived {
			var e struct{ ID string }
			json.Unmarshal(body, &e)
			info, err := insp.GetTaskInfo(cfg.Task.Queue, e.ID)
			if err != nil {
				t.Fatalf("answered Received but the task of %q is not in Redis: %v", e.ID, err)
			}
			if !bytes.Equal(info.Payload, body) {
				t.Fatalf("the task of %q does not hold the body as received", e.ID)
			}
		}
	})
}
