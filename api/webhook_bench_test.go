package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/stripeq/stripeq/pkg/execindex"
	"github.com/stripeq/stripeq/pkg/httpserver/ginserver"
	"github.com/stripeq/stripeq/pkg/redisconn"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// benchType is a 3.4 KB real-shaped event, pretty-printed as Stripe sends it.
const benchType = events.ChargeFailed

// BenchmarkVerifyAndDecode is the api's CPU work per delivery before Redis:
// the signature check and the envelope decode, against stripe-go's
// webhook.ConstructEvent, which the plain receiver runs.
func BenchmarkVerifyAndDecode(b *testing.B) {
	body := stripetest.Fixture(benchType)
	sig := stripetest.Sign(body, time.Now(), stripetest.Secret)
	v := verifier{secrets: []string{stripetest.Secret}, tolerance: 300 * time.Second, now: time.Now}
	b.Run("stripeq", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if err := v.verify(body, sig); err != nil {
				b.Fatal(err)
			}
			if _, err := stripetask.Decode(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stripeq/verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := v.verify(body, sig); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline/ConstructEvent", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := webhook.ConstructEvent(body, sig, stripetest.Secret); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchEvents hands out unique, signed deliveries of benchType: a pool
// built before the timer starts, then built on the fly if a run needs more.
type benchEvents struct {
	head, tail []byte // the fixture around its event ID
	signedAt   time.Time
	pool       [][2][]byte // body, signature
	next       atomic.Int64
}

func newBenchEvents(n int) *benchEvents {
	raw := stripetest.Fixture(benchType)
	m, _ := stripetask.Decode(raw)
	at := bytes.Index(raw, []byte(`"`+m.ID+`"`)) + 1
	e := &benchEvents{head: raw[:at], tail: raw[at+len(m.ID):], signedAt: time.Now()}
	e.pool = make([][2][]byte, n)
	for i := range n {
		e.pool[i] = e.make(i)
	}
	return e
}

func (e *benchEvents) make(i int) [2][]byte {
	body := fmt.Appendf(bytes.Clone(e.head), "evt_1BenchApi%014d", i)
	body = append(body, e.tail...)
	return [2][]byte{body, []byte(stripetest.Sign(body, e.signedAt, stripetest.Secret))}
}

func (e *benchEvents) take() (body []byte, sig string) {
	i := int(e.next.Add(1) - 1)
	d := [2][]byte{}
	if i < len(e.pool) {
		d = e.pool[i]
	} else {
		d = e.make(i)
	}
	return d[0], string(d[1])
}

// BenchmarkWebhook is the whole receiver in process (Gin, middleware,
// verify, decode, enqueue, index, JSON answer) over a real Redis, with 16
// deliveries in flight, as the ingest target of deploy/bench. The variants
// leave one part out, to price it:
//
//	shipped        as the api runs
//	no-index       without the Console's index (execindex.Writer)
//	no-access-log  without the access log's line per request
//	bare           without both, nor request IDs and metrics
//
// Profile with: go test -run '^$' -bench 'Webhook/shipped' -cpuprofile cpu.out ./api
func BenchmarkWebhook(b *testing.B) {
	db := redistest.New(b)
	rdb := redisconn.NewClient(db.Opt)
	b.Cleanup(func() { rdb.Close() })
	cfg, err := loadConfig(func(k string) string {
		return map[string]string{"REDIS_URL": db.URL, "STRIPE_WEBHOOK_SECRET": stripetest.Secret}[k]
	})
	if err != nil {
		b.Fatal(err)
	}
	newSrv := func() *server {
		s := newServer(slog.New(slog.NewJSONHandler(discard{}, nil)), cfg, rdb)
		w := execindex.NewWriter(rdb, execindex.New(rdb, cfg.Task.Queue), s.log)
		b.Cleanup(func() { w.Close(context.Background()) })
		s.index = w
		return s
	}
	variants := []struct {
		name    string
		handler func() http.Handler
	}{
		{"shipped", func() http.Handler { return newSrv().handler() }},
		{"no-index", func() http.Handler {
			s := newSrv()
			s.index = nil
			return s.handler()
		}},
		{"no-access-log", func() http.Handler {
			s := newSrv()
			r := gin.New()
			r.Use(ginserver.RequestID(), ginserver.Recovery(s.log))
			s.routes(r)
			return r
		}},
		{"bare", func() http.Handler {
			s := newSrv()
			s.index = nil
			r := gin.New()
			r.POST("/webhooks/stripe", s.handleWebhook())
			return r
		}},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			if err := rdb.FlushDB(context.Background()).Err(); err != nil {
				b.Fatal(err)
			}
			h := v.handler()
			events := newBenchEvents(60_000)
			b.ReportAllocs()
			b.SetParallelism(8) // 16 in flight on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					body, sig := events.take()
					req := httptest.NewRequest(http.MethodPost, "/webhooks/stripe", bytes.NewReader(body))
					req.Header.Set("Stripe-Signature", sig)
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte("Received")) {
						b.Errorf("answer %d %s", rec.Code, rec.Body)
						return
					}
				}
			})
		})
	}
}

// discard is an io.Writer that keeps nothing, as a log file that costs no
// I/O: the benchmark prices the log lines' encoding, not the disk.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
