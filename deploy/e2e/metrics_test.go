package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestWorkerMetrics scrapes the worker's /metrics after it handled one good
// and one undecodable event, and checks its /healthz.
func TestWorkerMetrics(t *testing.T) {
	db := redistest.New(t)
	w := proctest.Start(t, "worker", proctest.Binary(t, "worker"), map[string]string{"REDIS_URL": db.URL, "METRICS_ADDR": "127.0.0.1:0"})
	addr := proctest.MetricsAddr(t, w)

	client := asynq.NewClientFromRedisClient(db.Client)
	good := stripetest.Fixture("customer.created")
	bad := stripetest.Edit(stripetest.Fixture("invoice.paid"), func(e map[string]any) { stripetest.Object(e)["amount_paid"] = "lots" })
	for _, b := range [][]byte{good, bad} {
		task, _, err := stripetask.New(b, stripetask.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Enqueue(task); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]float64{
		`stripeq_worker_handled_total{outcome="success",type="customer.created"}`: 1,
		`stripeq_worker_handled_total{outcome="archived",type="invoice.paid"}`:    1,
		`stripeq_worker_handler_seconds_count{type="customer.created"}`:           1,
		`asynq_tasks_processed_total{queue="stripe"}`:                             2,
		`asynq_tasks_failed_total{queue="stripe"}`:                                1,
		`asynq_tasks_enqueued_total{queue="stripe",state="archived"}`:             1,
	}
	var body string
	err := poll.Wait(20*time.Second, "the metrics", func() error {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		for sample, v := range want {
			if got := sampleValue(body, sample); got != v {
				return fmt.Errorf("%s = %v, want %v", sample, got, v)
			}
		}
		return nil
	})
	if err == nil {
		return
	}
	for sample, v := range want {
		if got := sampleValue(body, sample); got != v {
			t.Errorf("%s = %v, want %v", sample, got, v)
		}
	}
}

// sampleValue returns a sample's value in a Prometheus text exposition, or
// -1 when it is absent.
func sampleValue(body, sample string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// TestDashboardPassesPrometheusURL: with PROMETHEUS_URL set, asynqmon's
// metrics API queries that Prometheus (here a fake that records queries)
// instead of failing.
func TestDashboardPassesPrometheusURL(t *testing.T) {
	var mu sync.Mutex
	var queries []string
	prom := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.Path+"?"+r.URL.RawQuery)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"success","data":{"resultType":"matrix","result":[]}}`)
	}))
	t.Cleanup(prom.Close)

	db := redistest.New(t)
	_, addr := startDashboard(t, map[string]string{
		"REDIS_URL": db.URL, "DASHBOARD_USER": "ops", "DASHBOARD_PASSWORD": "prom-test-password", "PROMETHEUS_URL": prom.URL,
	})
	status, body := get(t, "http://"+addr+"/monitoring/api/metrics?duration_sec=3600", "ops", "prom-test-password")
	if status != http.StatusOK {
		t.Fatalf("asynqmon metrics API: %d %s", status, body)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(queries) == 0 || !strings.Contains(queries[0], "/api/v1/query_range") || !strings.Contains(queries[0], "asynq_") {
		t.Errorf("Prometheus received %v, want query_range calls about asynq_ metrics", queries)
	}
}
