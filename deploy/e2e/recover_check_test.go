package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/recovery"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// alertReceiver is a Slack-compatible incoming webhook that keeps the
// text of each message.
type alertReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	texts []string
}

func newAlertReceiver(t *testing.T) *alertReceiver {
	a := &alertReceiver{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m struct{ Text string }
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &m) != nil || m.Text == "" {
			t.Errorf("alert: %s %s %q", r.Method, r.Header.Get("Content-Type"), b)
		}
		a.mu.Lock()
		a.texts = append(a.texts, m.Text)
		a.mu.Unlock()
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *alertReceiver) got() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.texts...)
}

// TestRecoverCheckAlerts runs two dashboard replicas with RECOVER_INTERVAL
// against a fake Stripe holding an event the stack never got (created 10
// minutes ago, past RECOVER_GRACE), one it got, and one younger than the
// grace period: one replica checks (the other finds the lock) and POSTs
// one Slack-compatible alert naming the missing event's type; nothing is
// stored. With RECOVER_AUTO=true the check stores it, with
// source=recovery.
func TestRecoverCheckAlerts(t *testing.T) {
	for _, auto := range []bool{false, true} {
		name := map[bool]string{false: "alert", true: "auto"}[auto]
		t.Run(name, func(t *testing.T) {
			db := redistest.New(t)
			stripe := stripetest.NewAPI(t)
			now := time.Now()
			lost := stripetest.Event("invoice.payment_failed", "evt_check_lost", now.Add(-10*time.Minute))
			got := stripetest.Event("customer.created", "evt_check_got", now.Add(-20*time.Minute))
			young := stripetest.Event("invoice.paid", "evt_check_young", now.Add(-10*time.Second))
			stripe.Add("", lost, got, young)
			_, apiAddr := startAPI(t, "api", db.URL, nil)
			if a := send(loadClient(), "http://"+apiAddr, got); a.status != http.StatusOK {
				t.Fatalf("delivery: %d %v", a.status, a.err)
			}

			alerts := newAlertReceiver(t)
			env := map[string]string{
				"REDIS_URL": db.URL, "DASHBOARD_USER": "operator", "DASHBOARD_PASSWORD": "operator-password",
				"STRIPE_SECRET_KEY": "rk_test_check", "STRIPE_API_BASE": stripe.URL,
				"RECOVER_INTERVAL": "1m", "RECOVER_GRACE": "1m", "ALERT_WEBHOOK_URL": alerts.URL + "/hooks/T000/B000",
				"LOG_LEVEL": "debug", // for the check that finds another replica's lock
			}
			if auto {
				env["RECOVER_AUTO"] = "true"
			}
			var procs []*proctest.Proc
			for range 2 {
				p, _ := startDashboard(t, env)
				procs = append(procs, p)
			}
			poll.Until(t, 30*time.Second, "an alert", func() bool { return len(alerts.got()) > 0 })
			// The signal that the other replica's check ran and did nothing:
			// it found the lock of the one that alerted.
			poll.Until(t, 10*time.Second, "the other replica to find the lock", func() bool {
				return strings.Contains(procs[0].Output()+procs[1].Output(), "recovery check: another replica checked within the interval")
			})
			texts := alerts.got()
			if len(texts) != 1 {
				t.Fatalf("%d alerts, want 1 (one replica checks per interval): %q", len(texts), texts)
			}
			text := texts[0]
			for _, want := range []string{"1 Stripe event(s) created more than 1m0s ago", "invoice.payment_failed 1", "platform 1"} {
				if !strings.Contains(text, want) {
					t.Errorf("alert %q lacks %q", text, want)
				}
			}
			if strings.Contains(text, "invoice.paid") || strings.Contains(text, "customer.created") {
				t.Errorf("alert counts an event it should not: %q", text)
			}

			info, err := asynq.NewInspectorFromRedisClient(db.Client).GetTaskInfo(stripetask.DefaultQueue, "evt_check_lost")
			switch {
			case !auto && err == nil:
				t.Errorf("the dry-run check stored the event: %v", info.Headers)
			case auto && err != nil:
				t.Errorf("RECOVER_AUTO did not store the event: %v", err)
			case auto && info.Headers["source"] != stripetask.SourceRecovery:
				t.Errorf("stored with headers %v, want source=recovery", info.Headers)
			}
			if want := map[bool]string{false: "Nothing was stored", true: "Recovered: 1 stored"}[auto]; !strings.Contains(text, want) {
				t.Errorf("alert %q lacks %q", text, want)
			}
			recs, err := (&recovery.Records{RDB: db.Client}).List(context.Background(), 10)
			if err != nil || len(recs) != 1 || recs[0].StartedBy != recovery.CheckedBy || recs[0].Missing != 1 || recs[0].DryRun == auto {
				t.Errorf("the Console's history: %+v %v, want the one check", recs, err)
			}
		})
	}
}
