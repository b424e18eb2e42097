// Package alert sends Slack-compatible messages ({"text": …}) to a chat
// webhook, ALERT_WEBHOOK_URL: the worker's failure alerts and the
// dashboard's recovery check share it, so the wire format and the care a
// credential-bearing URL needs live in one place.
//
// Internal to this module, with no compatibility promise: a program
// outside it should not import it (pkg/README.md lists the packages).
package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stripeq/stripeq/pkg/logging"
)

// Timeout bounds one POST, whatever its caller's context.
const Timeout = 5 * time.Second

// StatusError is the error of a webhook that answered outside 2xx.
type StatusError struct{ Status int }

func (e *StatusError) Error() string { return fmt.Sprintf("alert webhook answered %d", e.Status) }

// Client returns the HTTP client of alert webhooks. It follows no
// redirect: the alert goes to the webhook's host or nowhere, and a
// redirect is a StatusError.
func Client() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Message is one alert. Text is what the channel shows: Post escapes it
// (see Escape), so it is plain text, never markup. Stripeq, when set, is
// sent beside it as the member "stripeq", for programs that read alerts.
type Message struct {
	Text    string `json:"text"`
	Stripeq any    `json:"stripeq,omitempty"`
}

// mrkdwn escapes the three characters Slack's mrkdwn gives a meaning:
// "<" and ">" delimit mentions (<!channel>, <@U…>) and links
// (<https://…|label>), and "&" starts an escape.
var mrkdwn = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Escape returns s with "&", "<" and ">" escaped as Slack's mrkdwn wants,
// so that a value quoted in an alert (an error, an event's field) shows
// as written and cannot mention anyone or hide a link. Slack-compatible
// services (Mattermost, Rocket.Chat) read the same escapes.
func Escape(s string) string { return mrkdwn.Replace(s) }

// Post POSTs m as JSON to webhook with c, its Text escaped, within
// Timeout, even when ctx is already cancelled (an alert about a stopping
// process still goes out). It returns a *StatusError for an answer
// outside 2xx; any other error quotes the URL only as far as its scheme
// and host, since a chat webhook's URL is a credential.
func Post(ctx context.Context, c *http.Client, webhook string, m Message) error {
	m.Text = Escape(m.Text)
	body, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("alert: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, webhook, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("alert webhook: %s", logging.RedactError(err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("alert webhook: %s", logging.RedactError(err))
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return &StatusError{Status: resp.StatusCode}
	}
	return nil
}
