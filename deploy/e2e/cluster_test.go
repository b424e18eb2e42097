package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/eventsender"
	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestRedisCluster runs 2 apis, 2 workers and the dashboard on a 3-master
// Redis Cluster. Every event of a customer's lifecycle, plus load, is
// delivered to both apis at once in a shuffled order: each is stored once
// (one Received, one duplicate), the records end as Stripe's final state,
// the global concurrency limit holds across both workers, and the Console
// filters and re-runs on the Cluster.
func TestRedisCluster(t *testing.T) {
	cluster := redistest.StartCluster(t, 3)
	// A dispute can be handled before any event named its charge's
	// customer; the worker then asks Stripe for the charge.
	api := &slowStripe{events: map[string][]byte{}, charges: map[string]string{"ch_stripeq_demo_cl": "cus_stripeq_demo_cl"}}
	stripeAPI := httptest.NewServer(api)
	t.Cleanup(stripeAPI.Close)

	// The lifecycle of one customer, and 40 updates of other customers.
	var bodies [][]byte
	start := time.Now().Add(-time.Hour)
	for i, typ := range eventsender.Lifecycle {
		bodies = append(bodies, stripetest.Relabel(stripetest.Event(typ, fmt.Sprintf("evt_cl_%02d", i), start.Add(time.Duration(i)*time.Second)), "cl"))
	}
	for i := range 40 {
		bodies = append(bodies, stripetest.Edit(stripetest.Event("customer.updated", fmt.Sprintf("evt_cl_load_%02d", i), start), func(e map[string]any) {
			stripetest.Object(e)["id"] = fmt.Sprintf("cus_cl_load_%02d", i)
		}))
	}
	for _, b := range bodies {
		m, _ := stripetask.Decode(b)
		api.events[m.ID] = b
	}

	env := map[string]string{
		"REDIS_URL": cluster.URL, "STRIPE_WEBHOOK_SECRET": stripetest.Secret,
		"WORKER_CONCURRENCY": "10", "GLOBAL_CONCURRENCY": "5", "RETRY_BASE_DELAY": "1s",
		"STRIPE_SECRET_KEY": "sk_test_stripeq", "STRIPE_API_BASE": stripeAPI.URL,
		"DASHBOARD_USER": "ops", "DASHBOARD_PASSWORD": "cluster-test-password",
	}
	apis, dashAddr := startAPIsAndDashboard(t, env, 2)

	// Both apis receive every event at once, in a shuffled order.
	rand.Shuffle(len(bodies), func(i, j int) { bodies[i], bodies[j] = bodies[j], bodies[i] })
	answers := map[string]int{}
	var mu sync.Mutex
	for _, b := range bodies {
		var wg sync.WaitGroup
		for _, url := range apis {
			wg.Go(func() {
				status, msg := post(t, url, b)
				mu.Lock()
				answers[fmt.Sprintf("%d %s", status, msg)]++
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	if want := map[string]int{"200 Received": len(bodies), "200 duplicate": len(bodies)}; fmt.Sprint(answers) != fmt.Sprint(want) {
		t.Fatalf("answers %v, want %v", answers, want)
	}

	for i := range 2 {
		proctest.Start(t, fmt.Sprintf("worker-%d", i+1), proctest.Binary(t, "worker"), env)
	}
	insp := asynq.NewInspectorFromRedisClient(cluster.Client)
	waitQueue(t, insp, len(bodies))

	record := cluster.Client.HGetAll(t.Context(), records.CustomerKey("cus_stripeq_demo_cl")).Val()
	for f, v := range map[string]string{
		"email": "jenny.rosen@example.com", "delinquent": "false", "last_payment_error": "insufficient_funds",
		"subscription_status": "active", "on_hold": "false", "last_dispute_outcome": "won",
	} {
		if record[f] != v {
			t.Errorf("customer %s = %q, want %q", f, record[f], v)
		}
	}
	api.mu.Lock()
	t.Logf("%d events through 2 apis and 2 workers (10 each, GLOBAL_CONCURRENCY=5) on 3 masters: at most %d handlers at once", len(bodies), api.max)
	if api.max > 5 {
		t.Errorf("%d handlers ran at once across the two workers, want at most 5", api.max)
	}
	api.mu.Unlock()

	// The Console filters and re-runs on the Cluster.
	var list struct {
		Total      int `json:"total"`
		Executions []struct {
			ID, State string
		} `json:"executions"`
	}
	dashGet(t, "http://"+dashAddr+"/api/executions?type=invoice.*&customer=cus_stripeq_demo_cl", &list)
	if list.Total != 3 {
		t.Errorf("Console: %d invoice.* executions of the customer, want 3 (%+v)", list.Total, list.Executions)
	}
	var rerun struct {
		NewID string `json:"new_id"`
	}
	dashPost(t, "http://"+dashAddr+"/api/executions/evt_cl_07/rerun", &rerun) // invoice.paid, completed
	if rerun.NewID == "" {
		t.Fatal("the re-run made no copy")
	}
	info := poll.Value(t, 20*time.Second, "the re-run "+rerun.NewID+" to complete", func() (*asynq.TaskInfo, error) {
		return redistest.TaskIn(insp, "stripe", rerun.NewID, asynq.TaskStateCompleted)
	})
	if info.Headers[stripetask.HeaderRerunOf] != "evt_cl_07" {
		t.Errorf("copy headers %v, want rerunOf evt_cl_07", info.Headers)
	}
}

// startAPIsAndDashboard starts n apis and a dashboard with env, each on a
// port of its own choosing, and returns the apis' webhook URLs, once each
// is ready (/readyz), and the dashboard's address.
func startAPIsAndDashboard(t *testing.T, env map[string]string, n int) ([]string, string) {
	t.Helper()
	var apis []string
	for i := range n {
		p := proctest.Start(t, fmt.Sprintf("api-%d", i+1), proctest.Binary(t, "api"), with(env, "API_ADDR", "127.0.0.1:0"))
		addr := proctest.APIAddr(t, p)
		proctest.WaitHTTP(t, p, "http://"+addr+"/readyz", 30*time.Second)
		apis = append(apis, "http://"+addr+"/webhooks/stripe")
	}
	dash := proctest.Start(t, "dashboard", proctest.Binary(t, "dashboard"), with(env, "DASHBOARD_ADDR", "127.0.0.1:0"))
	return apis, proctest.DashboardAddr(t, dash)
}

func with(env map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for key, val := range env {
		if key != k {
			out[key] = val
		}
	}
	return out
}

// post delivers a signed body to url and returns the status and message.
func post(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	return (&stack{}).deliverTo(t, url, body)
}

func waitQueue(t *testing.T, insp *asynq.Inspector, completed int) {
	t.Helper()
	poll.Value(t, 60*time.Second, fmt.Sprintf("%d completed tasks", completed), func() (*asynq.QueueInfo, error) {
		return redistest.QueueCompleted(insp, "stripe", completed)
	})
}

func dashGet(t *testing.T, url string, v any) {
	t.Helper()
	dashDo(t, http.MethodGet, url, v)
}

func dashPost(t *testing.T, url string, v any) {
	t.Helper()
	dashDo(t, http.MethodPost, url, v)
}

func dashDo(t *testing.T, method, url string, v any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	req.SetBasicAuth("ops", "cluster-test-password")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d", method, url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
}
