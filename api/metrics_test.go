package main

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/stripetest"
)

// scrape returns the value of one sample of GET /metrics.
func scrape(t *testing.T, h http.Handler, sample string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatalf("/metrics has no %s:\n%s", sample, rec.Body.String())
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

func TestMetricsCountOutcomes(t *testing.T) {
	b := setup(t, nil)
	now := time.Now()
	body := stripetest.Event("customer.created", "evt_metrics", now)
	sig := stripetest.Sign(body, now, stripetest.Secret)
	post(t, b.handler, body, sig)
	post(t, b.handler, body, sig)
	post(t, b.handler, body, "t=1,v1=00")
	for sample, want := range map[string]float64{
		`stripeq_api_webhook_requests_total{outcome="received"}`:      1,
		`stripeq_api_webhook_requests_total{outcome="duplicate"}`:     1,
		`stripeq_api_webhook_requests_total{outcome="bad_signature"}`: 1,
		`stripeq_api_webhook_requests_total{outcome="unavailable"}`:   0,
		`stripeq_api_verify_seconds_count`:                            3,
		`stripeq_api_enqueue_seconds_count`:                           2,
	} {
		if got := scrape(t, b.handler, sample); got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}
}
