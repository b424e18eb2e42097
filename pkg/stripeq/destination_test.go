package stripeq

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/delivery"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

var testDestSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("unit-destination-secret-32-bytes"))

// TestSignInteroperates checks Sign against the Go Standard Webhooks
// library: it verifies ours, and ours equals its own.
func TestSignInteroperates(t *testing.T) {
	wh, err := standardwebhooks.NewWebhook(testDestSecret)
	if err != nil {
		t.Fatal(err)
	}
	key, err := destinationKey(testDestSecret)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("{\n \"id\": \"evt_1\", \"note\": \"caf\\u00e9\"}")
	now := time.Now()
	sig := Sign(key, "evt_1", now.Unix(), body)
	h := http.Header{}
	h.Set("webhook-id", "evt_1")
	h.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	h.Set("webhook-signature", sig)
	if err := wh.Verify(body, h); err != nil {
		t.Errorf("the Go library refuses our signature: %v", err)
	}
	theirs, _ := wh.Sign("evt_1", time.Unix(now.Unix(), 0), body)
	if theirs != sig {
		t.Errorf("Sign = %s, the library's %s", sig, theirs)
	}
	// A destination reuses its HMACs: each signature is still its own.
	d := newDestination(Destination{Name: "t", URL: "http://127.0.0.1:9/", Secret: testDestSecret}, false, nil, slog.New(slog.DiscardHandler))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				id := "evt_" + strings.Repeat("x", i*j) // past the stack buffer too
				b := fmt.Appendf(slices.Clip(body), "%d", j)
				if got, want := d.sign(id, now.Unix()+int64(j), b), Sign(key, id, now.Unix()+int64(j), b); got != want {
					t.Errorf("the destination signs %s, Sign %s", got, want)
				}
			}
		})
	}
	wg.Wait()
}

// TestDestinationConfig checks the destination settings: the unsafe and
// malformed ones stop the worker, naming the variable and quoting no
// secret; plain http to the network is warned about.
func TestDestinationConfig(t *testing.T) {
	file := filepath.Join(t.TempDir(), "d.json")
	os.WriteFile(file, []byte(`[{"name":"billing","url":"https://127.0.0.1:9/b","secret":"`+testDestSecret+`","events":["invoice.*"],"timeout":"3s","concurrency":2,"rate":5}]`), 0o600)
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`[{"name":"Billing!","url":"https://127.0.0.1:9/b","secret":"`+testDestSecret+`"}]`), 0o600)
	ok := map[string]string{"DESTINATION_URL": "http://127.0.0.1:9/hook", "DESTINATION_SECRET": testDestSecret}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range ok {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name              string
		env               map[string]string
		wantErr, wantWarn string
	}{
		{"one destination on loopback", ok, "", ""},
		{"a file of destinations", map[string]string{"DESTINATIONS_FILE": file}, "", ""},
		{"both", with("DESTINATIONS_FILE", file), "", ""},
		{"a bad name in the file", map[string]string{"DESTINATIONS_FILE": bad}, "DESTINATIONS_FILE", ""},
		{"an unreadable file", map[string]string{"DESTINATIONS_FILE": bad + ".missing"}, "DESTINATIONS_FILE", ""},
		{"no secret", with("DESTINATION_SECRET", ""), "DESTINATION_SECRET", ""},
		{"a secret that is not base64", with("DESTINATION_SECRET", "whsec_%%%"), "DESTINATION_SECRET", ""},
		{"a Stripe secret", with("DESTINATION_SECRET", "sk_test_abc"), "DESTINATION_SECRET", ""},
		{"a short secret", with("DESTINATION_SECRET", "whsec_c2hvcnQ="), "DESTINATION_SECRET", ""},
		{"not a URL", with("DESTINATION_URL", "ftp://127.0.0.1/x"), "DESTINATION_URL", ""},
		{"the metadata address", with("DESTINATION_URL", "http://169.254.169.254/latest/meta-data/"), "DESTINATION_URL", ""},
		{"a mapped metadata address", with("DESTINATION_URL", "http://[::ffff:169.254.169.254]/"), "DESTINATION_URL", ""},
		{"AWS's IPv6 metadata address", with("DESTINATION_URL", "http://[fd00:ec2::254]/"), "DESTINATION_URL", ""},
		{"IPv6 link-local", with("DESTINATION_URL", "http://[fe80::1]/"), "DESTINATION_URL", ""},
		{"the metadata address, allowed", with("DESTINATION_URL", "https://169.254.169.254/", "DESTINATION_ALLOW_LINK_LOCAL", "true"), "", ""},
		{"plain http on the network", with("DESTINATION_URL", "http://10.1.2.3/hook"), "", "DESTINATION_URL"},
		{"https on the network", with("DESTINATION_URL", "https://10.1.2.3/hook"), "", ""},
		{"a bad event type", with("DESTINATION_EVENTS", "invoice.paid,in voice"), "DESTINATION_EVENTS", ""},
		{"a bad rate", with("DESTINATION_RATE", "-1"), "DESTINATION_RATE", ""},
		{"a bad timeout", with("DESTINATION_TIMEOUT", "soon"), "DESTINATION_TIMEOUT", ""},
		{"ordered by customer", with("DESTINATION_ORDER", "customer"), "", ""},
		{"ordered by something else", with("DESTINATION_ORDER", "invoice"), "DESTINATION_ORDER", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, warnings, err := loadConfig(func(k string) string { return tt.env[k] })
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want one naming %s", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), testDestSecret[6:]) {
				t.Errorf("the error quotes the secret: %v", err)
			}
			w := strings.Join(warnings, "\n")
			if err == nil && ((tt.wantWarn == "") != (w == "") || !strings.Contains(w, tt.wantWarn)) {
				t.Errorf("warnings %q, want one naming %q", w, tt.wantWarn)
			}
		})
	}
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
			return errors.Is(err, ErrPermanent) && errors.Is(err, ErrDestinationGone)
		}, 0},
		{"503 with Retry-After", func(w http.ResponseWriter) { w.Header().Set("Retry-After", "7"); w.WriteHeader(503) },
			func(err error) bool { return err != nil && isFailure(err) }, 8 * time.Second},
		{"429 with Retry-After", func(w http.ResponseWriter) { w.Header().Set("Retry-After", "120"); w.WriteHeader(429) },
			func(err error) bool { return err != nil }, 121 * time.Second},
		{"500", func(w http.ResponseWriter) { w.WriteHeader(500) }, func(err error) bool { return err != nil && !errors.Is(err, ErrPermanent) }, 0},
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
			d := newDestination(Destination{Name: "t", URL: srv.URL, Secret: testDestSecret}, false, nil, slog.New(slog.DiscardHandler))
			body := stripetest.Event("customer.created", "evt_outcome", time.Now())
			task, _, _ := stripetask.New(body, stripetask.Options{})
			err := d.ProcessTask(context.Background(), delivery.New(task, "evt_outcome", "t", 0))
			if !tt.check(err) {
				t.Fatalf("error %v", err)
			}
			if tt.wantFor > 0 {
				if got := deliveryRetryDelay(time.Second)(0, err, nil); got != tt.wantFor {
					t.Errorf("retry after %v, want %v", got, tt.wantFor)
				}
			}
		})
	}
	t.Run("a name that resolves to a metadata address", func(t *testing.T) {
		// The dial itself is checked: this one must be refused before any
		// packet leaves.
		d := newDestination(Destination{Name: "t", URL: "http://169.254.169.254:1/", Secret: testDestSecret, Timeout: Duration(time.Second)},
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
	d := Destination{Events: []string{"invoice.*", "customer.created"}}
	for typ, want := range map[string]bool{"invoice.paid": true, "invoice.payment_failed": true, "customer.created": true, "customer.updated": false, "invoiceX": false} {
		if d.matches(typ) != want {
			t.Errorf("matches(%s) = %v", typ, !want)
		}
	}
	if !(Destination{}).matches("anything.at_all") {
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
