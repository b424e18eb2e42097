package stripeq

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/logging"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// alerter tells people that a task was archived: an error log line always,
// and a Slack-compatible message ({"text": …}) to ALERT_WEBHOOK_URL when set.
type alerter struct {
	webhookURL   string // "" when unset
	dashboardURL string // for the link in the message
	client       *http.Client
}

// alertClient is the HTTP client of the alert webhook. It follows no
// redirect: the alert goes to ALERT_WEBHOOK_URL's host or nowhere, and a
// redirect is logged as a refusal, by status.
func alertClient() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// archived reports the archived task t and its last error.
func (a alerter) archived(ctx context.Context, log *slog.Logger, t *asynq.Task, id string, err error) {
	m := stripetask.MetadataFromHeaders(id, t.Headers())
	link := a.dashboardURL + "/monitoring/queues/" + url.PathEscape(queueOf(ctx)) + "/tasks?status=archived"
	log.ErrorContext(ctx, "task archived: it will not be retried; re-run it from the dashboard once the cause is fixed",
		logging.Err(err), slog.String("customer", m.Customer), slog.String("dashboard", link))
	if a.webhookURL == "" {
		return
	}
	text := fmt.Sprintf(":rotating_light: stripeq archived event %s (%s) for customer %s after its retries.\nLast error: %s\nDashboard: %s",
		id, m.Type, orNone(m.Customer), err, link)
	body, _ := json.Marshal(map[string]string{"text": text})
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, a.webhookURL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, postErr := a.client.Do(req)
	if postErr != nil {
		// logging.Err cuts the URL the error quotes to its scheme and host:
		// a chat webhook's URL is a credential.
		log.ErrorContext(ctx, "alert webhook failed", logging.Err(postErr))
		return
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		log.ErrorContext(ctx, "alert webhook refused the alert", slog.Int("status", resp.StatusCode))
	}
}

func queueOf(ctx context.Context) string {
	q, _ := asynq.GetQueueName(ctx)
	return q
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
