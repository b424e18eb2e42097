package alerts

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/alert"
	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestAlertLogsNoWebhookURL sends an archive alert to webhooks that fail
// in each way a POST can, and checks that the log line never holds the
// webhook URL's path or query (a chat webhook's URL is a credential), and
// that a redirect is not followed.
func TestAlertLogsNoWebhookURL(t *testing.T) {
	const secret = "/services/T0REDACT/B0REDACT/hunter2?token=hunter3"
	var followed atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed.Add(1) }))
	t.Cleanup(elsewhere.Close)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+secret, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirect.Close)
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }))
	t.Cleanup(refuse.Close)

	tests := []struct {
		name, url, want string // want: in the log line
	}{
		{"nothing listens", "http://" + proctest.FreeAddr(t) + secret, "alert webhook failed"},
		{"user-info", "http://alert-user:hunter2@" + proctest.FreeAddr(t) + secret, "alert webhook failed"},
		{"refused", refuse.URL + secret, `"status":500`},
		{"redirected", redirect.URL + secret, `"status":307`},
	}
	task := asynq.NewTaskWithHeaders(stripetask.TaskType(events.ChargeFailed), stripetest.Fixture(events.ChargeFailed), nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			a := Alerter{webhookURL: tt.url, dashboardURL: "http://dash.example", client: alert.Client()}
			a.Archived(context.Background(), slog.New(slog.NewJSONHandler(&buf, nil)), task, "evt_alert", errors.New("boom"))
			out := buf.String()
			if !strings.Contains(out, tt.want) {
				t.Errorf("log has no %q:\n%s", tt.want, out)
			}
			for _, s := range []string{"hunter", "REDACT", "token"} {
				if strings.Contains(out, s) {
					t.Errorf("log holds %q of the webhook URL:\n%s", s, out)
				}
			}
		})
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("the alert followed a redirect %d times", n)
	}
}
