package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// stack is the three commands running against one Redis database.
type stack struct {
	db                 *redistest.DB
	api, worker, dash  *proctest.Proc
	apiURL, dashURL    string
	dashUser, dashPass string
}

// startStack starts the three commands; extra holds variable, value pairs
// added to their environment.
func startStack(t *testing.T, extra ...string) *stack {
	t.Helper()
	s := &stack{db: redistest.New(t), dashUser: "ops", dashPass: "e2e-dashboard-password"}
	env := map[string]string{
		"REDIS_URL":             s.db.URL,
		"STRIPE_WEBHOOK_SECRET": stripetest.Secret,
		"API_ADDR":              "127.0.0.1:0", // each logs the port it bound
		"DASHBOARD_ADDR":        "127.0.0.1:0",
		"DASHBOARD_USER":        s.dashUser,
		"DASHBOARD_PASSWORD":    s.dashPass,
		"RETRY_BASE_DELAY":      "1s", // keep waits for out-of-order events short
	}
	for i := 0; i+1 < len(extra); i += 2 {
		env[extra[i]] = extra[i+1]
	}
	s.api = proctest.Start(t, "api", proctest.Binary(t, "api"), env)
	s.worker = proctest.Start(t, "worker", proctest.Binary(t, "worker"), env)
	s.dash = proctest.Start(t, "dashboard", proctest.Binary(t, "dashboard"), env)
	s.apiURL, s.dashURL = "http://"+proctest.APIAddr(t, s.api), "http://"+proctest.DashboardAddr(t, s.dash)
	return s
}

// deliver posts a signed event to the api and returns status and message.
func (s *stack) deliver(t *testing.T, body []byte) (int, string) {
	t.Helper()
	return s.deliverTo(t, s.apiURL+"/webhooks/stripe", body)
}

// deliverTo posts a signed event to a webhook URL.
func (s *stack) deliverTo(t *testing.T, url string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Stripe-Signature", stripetest.Sign(body, time.Now(), stripetest.Secret))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer struct{ Message string }
	json.NewDecoder(resp.Body).Decode(&answer)
	return resp.StatusCode, answer.Message
}

func TestPipelineEndToEnd(t *testing.T) {
	s := startStack(t)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	created := stripetest.Event("customer.created", "evt_e2e_created", t0)
	updated := stripetest.Edit(stripetest.Event("customer.updated", "evt_e2e_updated", t0.Add(time.Minute)), func(e map[string]any) {
		stripetest.Object(e)["email"] = "jenny@e2e.example.com"
	})

	// Stripe delivers out of order and more than once.
	for _, d := range []struct {
		body []byte
		want string
	}{
		{updated, "Received"},
		{created, "Received"},
		{updated, "duplicate"},
	} {
		if status, msg := s.deliver(t, d.body); status != 200 || msg != d.want {
			t.Fatalf("delivery answered %d %q, want 200 %q", status, msg, d.want)
		}
	}

	// The worker applies both; the newer one wins.
	ctx := context.Background()
	key := records.CustomerKey("cus_stripeq_demo")
	poll.Until(t, 20*time.Second, "both tasks completed", func() bool {
		return s.db.Client.ZCard(ctx, "asynq:{stripe}:completed").Val() == 2
	})
	record, _ := s.db.Client.HGetAll(ctx, key).Result()
	if record["email"] != "jenny@e2e.example.com" || record["last_event_id"] != "evt_e2e_updated" || record["deleted"] != "false" {
		t.Fatalf("customer record = %v, want the updated email from evt_e2e_updated", record)
	}

	// asynqmon, behind the dashboard's authentication, lists both tasks.
	api := s.dashURL + "/monitoring/api/queues/stripe/completed_tasks"
	if status, _ := get(t, api, "", ""); status != http.StatusUnauthorized {
		t.Errorf("asynqmon API without credentials: %d, want 401", status)
	}
	if status, _ := get(t, api, s.dashUser, "wrong"); status != http.StatusUnauthorized {
		t.Errorf("asynqmon API with a wrong password: %d, want 401", status)
	}
	status, body := get(t, api, s.dashUser, s.dashPass)
	if status != 200 {
		t.Fatalf("asynqmon API: %d %s", status, body)
	}
	var list struct {
		Tasks []struct{ ID, Type string } `json:"tasks"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("asynqmon answer: %v: %s", err, body)
	}
	var ids []string
	for _, task := range list.Tasks {
		ids = append(ids, task.ID)
	}
	slices.Sort(ids)
	if want := []string{"evt_e2e_created", "evt_e2e_updated"}; !slices.Equal(ids, want) {
		t.Errorf("asynqmon lists completed tasks %v, want %v", ids, want)
	}

	// Every process stops cleanly on SIGTERM.
	for _, p := range []*proctest.Proc{s.api, s.worker, s.dash} {
		if took, clean := p.Stop(40 * time.Second); !clean {
			t.Errorf("%s did not exit within 40s of SIGTERM", p.Name)
		} else if err := p.ExitErr(); err != nil {
			t.Errorf("%s exited after %v with %v", p.Name, took, err)
		}
	}
}

func get(t *testing.T, url, user, pass string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
