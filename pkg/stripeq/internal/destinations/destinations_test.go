package destinations

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/delivery"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

var testDestSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("unit-destination-secret-32-bytes"))

// TestSignInteroperates checks sign against the Go Standard Webhooks
// library: it verifies ours, and ours equals its own.
func TestSignInteroperates(t *testing.T) {
	wh, err := standardwebhooks.NewWebhook(testDestSecret)
	if err != nil {
		t.Fatal(err)
	}
	key, err := secretKey(testDestSecret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("{\n \"id\": \"evt_1\", \"note\": \"caf\\u00e9\"}")
	now := time.Now()
	sig := sign(hmac.New(sha256.New, key), "evt_1", now.Unix(), body)
	h := http.Header{}
	h.Set("webhook-id", "evt_1")
	h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	h.Set("webhook-signature", sig)
	if err := wh.Verify(body, h); err != nil {
		t.Errorf("the Go library refuses our signature: %v", err)
	}
	theirs, _ := wh.Sign("evt_1", time.Unix(now.Unix(), 0), body)
	if theirs != sig {
		t.Errorf("sign = %s, the library's %s", sig, theirs)
	}
	// A destination reuses its HMACs: each signature is still its own.
	d := newDestination(Config{Name: "t", URL: "http://127.0.0.1:9/", Secret: testDestSecret}, false, nil, slog.New(slog.DiscardHandler))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				id := "evt_" + strings.Repeat("x", i*j) // past the stack buffer too
				b := fmt.Appendf(slices.Clip(body), "%d", j)
				if got, want := d.sign(id, now.Unix()+int64(j), b), sign(hmac.New(sha256.New, key), id, now.Unix()+int64(j), b); got != want {
					t.Errorf("the destination signs %s, sign %s", got, want)
				}
			}
		})
	}
	wg.Wait()
}

// TestDeliveryOutcomes runs one delivery per answer of a destination and
// checks what the worker makes of it, and that the dialler refuses a
// metadata address even when the URL did not name it.
func TestDeliveryOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		answer  func(w http.ResponseWriter)
		check   func(error) bool
		wantFor time.Duration // the retry delay, when set
	}{
		{"200", func(w http.ResponseWriter) { w.WriteHeader(200) }, func(err error) bool { return err == nil }, 0},
		{"204", func(w http.ResponseWriter) { w.WriteHeader(204) }, func(err error) bool { return err == nil }, 0},
		{"410", func(w http.ResponseWriter) { w.WriteHeader(410) }, func(err error) bool {
			return errors.Is(err, asynq.SkipRetry) && errors.Is(err, ErrGone)
		}, 0},
		{"503 with Retry-After: a wait", func(w http.ResponseWriter) { w.Header().Set("Retry-After", "7"); w.WriteHeader(503) },
			func(err error) bool { return err != nil && !isFailure(err) }, 8 * time.Second},
		{"429 with Retry-After: a wait", func(w http.ResponseWriter) { w.Header().Set("Retry-After", "120"); w.WriteHeader(429) },
			func(err error) bool { return err != nil && !isFailure(err) }, 121 * time.Second},
		{"503 with Retry-After of an event 4 days old: a failure", func(w http.ResponseWriter) { w.Header().Set("Retry-After", "7"); w.WriteHeader(503) },
			func(err error) bool { return err != nil && isFailure(err) }, 8 * time.Second},
		{"503 without Retry-After: a failure", func(w http.ResponseWriter) { w.WriteHeader(503) },
			func(err error) bool { return err != nil && isFailure(err) }, 0},
		{"500", func(w http.ResponseWriter) { w.WriteHeader(500) }, func(err error) bool { return err != nil && !errors.Is(err, asynq.SkipRetry) }, 0},
		{"a redirect", func(w http.ResponseWriter) { w.Header().Set("Location", "http://169.254.169.254/"); w.WriteHeader(307) },
			func(err error) bool { return err != nil && strings.Contains(err.Error(), "not followed") }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				tt.answer(w)
			}))
			defer srv.Close()
			d := newDestination(Config{Name: "t", URL: srv.URL, Secret: testDestSecret}, false, nil, slog.New(slog.DiscardHandler))
			created := time.Now()
			if strings.Contains(tt.name, "4 days old") {
				created = created.Add(-96 * time.Hour)
			}
			body := stripetest.Event("customer.created", "evt_outcome", created)
			task, _, _ := stripetask.New(body, stripetask.Options{})
			err := d.ProcessTask(context.Background(), delivery.New(task, "evt_outcome", "t", 0))
			if !tt.check(err) {
				t.Fatalf("error %v", err)
			}
			if tt.wantFor > 0 {
				if got := retryDelay(time.Second)(0, err, nil); got != tt.wantFor {
					t.Errorf("retry after %v, want %v", got, tt.wantFor)
				}
			}
		})
	}
	t.Run("a name that resolves to a metadata address", func(t *testing.T) {
		// The dial itself is checked: this one must be refused before any
		// packet leaves.
		d := newDestination(Config{Name: "t", URL: "http://169.254.169.254:1/", Secret: testDestSecret, Timeout: time.Second},
			false, nil, slog.New(slog.DiscardHandler))
		task, _, _ := stripetask.New(stripetest.Event("customer.created", "evt_ssrf", time.Now()), stripetask.Options{})
		err := d.ProcessTask(context.Background(), delivery.New(task, "evt_ssrf", "t", 0))
		if err == nil || !strings.Contains(err.Error(), ErrForbiddenAddress.Error()) {
			t.Fatalf("error %v, want %v", err, ErrForbiddenAddress)
		}
	})
}

// TestFanoutMatchesTypes checks which destinations take which types.
func TestFanoutMatchesTypes(t *testing.T) {
	d := Config{Events: []string{"invoice.*", "customer.created"}}
	for typ, want := range map[string]bool{"invoice.paid": true, "invoice.payment_failed": true, "customer.created": true, "customer.updated": false, "invoiceX": false} {
		if d.matches(typ) != want {
			t.Errorf("matches(%s) = %v", typ, !want)
		}
	}
	if !(Config{}).matches("anything.at_all") {
		t.Error("a destination without events takes every type")
	}
}

// TestWriteAttempt writes more than 50 attempts of one delivery and
// checks its list holds the last 50, expiring with the retention, also
// after Redis forgot the script, and that a finished delivery leaves its
// customer's order.
func TestWriteAttempt(t *testing.T) {
	db := redistest.New(t)
	ctx := context.Background()
	key := keyspace.DeliveryAttempts("evt_many:dest:t")
	order := keyspace.DeliveryOrder("t", "cus_1")
	for _, flush := range []bool{false, true} {
		db.Client.Del(ctx, key)
		db.Client.ZAdd(ctx, order, redis.Z{Score: 1, Member: "evt_a:dest:t"}, redis.Z{Score: 2, Member: "evt_b:dest:t"})
		for i := range 60 {
			if flush && i%20 == 0 {
				db.Client.ScriptFlush(ctx)
			}
			if err := writeAttempt(ctx, db.Client, key, []byte(strconv.Itoa(i)), "", ""); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
		}
		if got := db.Client.LRange(ctx, key, 0, -1).Val(); len(got) != 50 || got[0] != "10" || got[49] != "59" {
			t.Errorf("%s holds %v, want attempts 10 to 59", key, got)
		}
		if ttl := db.Client.TTL(ctx, key).Val(); ttl <= stripetask.DefaultRetention-time.Minute || ttl > stripetask.DefaultRetention {
			t.Errorf("%s expires in %v, want %v", key, ttl, stripetask.DefaultRetention)
		}
		if flush {
			db.Client.ScriptFlush(ctx)
		}
		a := keyspace.DeliveryAttempts("evt_a:dest:t")
		if err := writeAttempt(ctx, db.Client, a, []byte("{}"), order, "evt_a:dest:t"); err != nil {
			t.Fatal(err)
		}
		if got := db.Client.LRange(ctx, a, 0, -1).Val(); len(got) == 0 {
			t.Errorf("the leaving delivery's attempt was not written")
		}
		if got := db.Client.ZRange(ctx, order, 0, -1).Val(); len(got) != 1 || got[0] != "evt_b:dest:t" {
			t.Errorf("the order holds %v, want only evt_b's delivery once evt_a's left", got)
		}
	}
}

// TestInlineOK: a healthy destination is delivered to inline, unless its
// DESTINATION_INLINE is false, it orders a customer's deliveries, or it
// is not healthy (never answered, or its last POST failed or was slow).
func TestInlineOK(t *testing.T) {
	task := asynq.NewTaskWithHeaders("stripe:invoice.paid", nil, map[string]string{stripetask.HeaderCustomer: "cus_1"})
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer rdb.Close()
	for _, tt := range []struct {
		name   string
		c      Config
		health []delivery.Attempt // POSTs before; Status 200 succeeded
		want   bool
	}{
		{"healthy", Config{Name: "a"}, []delivery.Attempt{{Status: 200, LatencyMS: 3}}, true},
		{"DESTINATION_INLINE=false", Config{Name: "a", NoInline: true}, []delivery.Attempt{{Status: 200, LatencyMS: 3}}, false},
		{"ordered by customer", Config{Name: "a", Order: OrderCustomer}, []delivery.Attempt{{Status: 200, LatencyMS: 3}}, false},
		{"never answered", Config{Name: "a"}, nil, false},
		{"last POST failed", Config{Name: "a"}, []delivery.Attempt{{Status: 200, LatencyMS: 3}, {Status: 503, LatencyMS: 3}}, false},
		{"last POST slow", Config{Name: "a"}, []delivery.Attempt{{Status: 200, LatencyMS: InlineTimeout.Milliseconds()}}, false},
	} {
		d := newDestination(tt.c, false, rdb, slog.New(slog.DiscardHandler))
		for _, a := range tt.health {
			d.health(a, a.Status == 200)
		}
		r := &Runner{Destinations: []Config{tt.c}, dests: map[string]*destination{tt.c.Name: d}}
		if got := r.inlineOK(context.Background(), task, tt.c); got != tt.want {
			t.Errorf("%s: inlineOK = %v, want %v", tt.name, got, tt.want)
		}
	}
}
