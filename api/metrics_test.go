package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
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
		if got := scrape(t, b.metrics, sample); got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}
}

// TestMetricsCountAPIVersions: every verified delivery counts under the
// API version its event is rendered at, duplicates and ignored types
// included; the label's values are bounded.
func TestMetricsCountAPIVersions(t *testing.T) {
	b := setup(t, nil)
	now := time.Now()
	send := func(id, version string) {
		body := stripetest.Edit(stripetest.Event("customer.created", id, now), func(e map[string]any) {
			if version == "" {
				delete(e, "api_version")
			} else {
				e["api_version"] = version
			}
		})
		post(t, b.handler, body, stripetest.Sign(body, now, stripetest.Secret))
	}
	send("evt_v1", "2023-10-16")
	send("evt_v1", "2023-10-16") // a duplicate delivery
	send("evt_v2", "2026-08-26.dahlia")
	send("evt_v3", "")
	for sample, want := range map[string]float64{
		`stripeq_api_events_by_api_version_total{api_version="2023-10-16"}`:        2,
		`stripeq_api_events_by_api_version_total{api_version="2026-08-26.dahlia"}`: 1,
		`stripeq_api_events_by_api_version_total{api_version="none"}`:              1,
	} {
		if got := scrape(t, b.metrics, sample); got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}
	for i := range maxVersionLabels {
		send(fmt.Sprintf("evt_many%d", i), fmt.Sprintf("2030-01-%02d.test", i%28+1)+strings.Repeat("x", i/28))
	}
	if got := scrape(t, b.metrics, `stripeq_api_events_by_api_version_total{api_version="other"}`); got < 1 {
		t.Errorf(`api_version="other" = %v after %d more versions, want the excess counted there`, got, maxVersionLabels)
	}
}

// TestMetricsOffTheWebhookListener checks that the public webhook listener
// does not serve the metrics, and that METRICS_ADDR defaults to loopback.
func TestMetricsOffTheWebhookListener(t *testing.T) {
	b := setup(t, nil)
	rec := httptest.NewRecorder()
	b.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET /metrics on API_ADDR: %d, want 404", rec.Code)
	}
	tests := []struct {
		env     map[string]string
		want    string
		wantErr bool
	}{
		{map[string]string{}, "127.0.0.1:8083", false},
		{map[string]string{"METRICS_ADDR": ":9464"}, ":9464", false},
		{map[string]string{"METRICS_ADDR": "no-port"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			vars := map[string]string{"STRIPE_WEBHOOK_SECRET": stripetest.Secret}
			for k, v := range tt.env {
				vars[k] = v
			}
			cfg, err := loadConfig(func(k string) string { return vars[k] })
			if (err != nil) != tt.wantErr || (!tt.wantErr && cfg.MetricsAddr != tt.want) {
				t.Errorf("METRICS_ADDR %v: %q, %v; want %q", tt.env, cfg.MetricsAddr, err, tt.want)
			}
			if tt.wantErr && !strings.Contains(err.Error(), "METRICS_ADDR") {
				t.Errorf("the error does not name METRICS_ADDR: %v", err)
			}
		})
	}
}
