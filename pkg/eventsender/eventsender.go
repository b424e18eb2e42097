// Package eventsender delivers realistic, signed Stripe events to a stripeq
// receiver, as Stripe would: the offline `stripe trigger` behind `go tool
// task trigger` and the demo. The events are pkg/stripetest's fixtures, at
// the API version the Sender's endpoint has.
//
// Internal to this module, with no compatibility promise: a program
// outside it should not import it (pkg/README.md lists the packages).
package eventsender

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// DevSecret is the webhook signing secret the local stack (`go tool task
// dev` and `demo`) uses when STRIPE_WEBHOOK_SECRET is unset, and the one
// the sender signs with then. It is public: never use it in production.
const DevSecret = "whsec_stripeq_public_development_secret"

// Sender posts events to one receiver.
type Sender struct {
	URL    string    // the webhook URL, e.g. http://127.0.0.1:8080/webhooks/stripe
	Secret string    // the signing secret
	Out    io.Writer // one line per delivery: type, event ID, answer
	// APIVersion is the API version of the webhook endpoint, at which Stripe
	// renders the events: one of stripetest.APIVersions. If empty,
	// stripetest.APIVersion20231016.
	APIVersion string
}

// apiVersion returns s's API version, or an error naming the known ones.
func (s Sender) apiVersion() (string, error) {
	if s.APIVersion == "" {
		return stripetest.APIVersion20231016, nil
	}
	if !slices.Contains(stripetest.APIVersions(), s.APIVersion) {
		return "", fmt.Errorf("no fixtures at API version %q; the versions are %s", s.APIVersion, strings.Join(stripetest.APIVersions(), ", "))
	}
	return s.APIVersion, nil
}

// Delivery is what a delivery varies, as Stripe really does.
type Delivery struct {
	ID       string // the event ID; "" for a fresh one
	Twice    bool   // deliver the event twice, as Stripe's duplicates
	Old      bool   // sign 10 minutes ago: a replay the receiver must refuse
	Rotate   bool   // add a signature by another secret, as during a rotation
	Account  string // a Connect account
	Livemode bool
	Objects  string // suffix of the object IDs (stripetest.Relabel); "" keeps the fixtures'
	// Edit changes the event before it is signed; nil leaves it.
	Edit func(e map[string]any)
}

// Send builds an event of eventType at s's API version, created at created,
// and delivers it. It returns the event ID.
func (s Sender) Send(ctx context.Context, eventType string, created time.Time, d Delivery) (string, error) {
	id, _, err := s.send(ctx, eventType, created, d)
	return id, err
}

// send is Send, also reporting whether the receiver ignored the event (its
// type is not permitted: STRIPE_EVENTS).
func (s Sender) send(ctx context.Context, eventType string, created time.Time, d Delivery) (id string, ignored bool, err error) {
	version, err := s.apiVersion()
	if err != nil {
		return "", false, err
	}
	if !slices.Contains(stripetest.FixtureTypes(), eventType) {
		return "", false, fmt.Errorf("no fixture for event type %q", eventType)
	}
	id = d.ID
	if id == "" {
		id = "evt_" + randomHex(12)
	}
	body := stripetest.FixtureAt(version, eventType)
	if d.Objects != "" {
		body = stripetest.Relabel(body, d.Objects)
	}
	body = stripetest.Edit(body, func(e map[string]any) {
		e["id"], e["created"], e["livemode"] = id, created.Unix(), d.Livemode
		if d.Account != "" {
			e["account"] = d.Account
		}
		if d.Edit != nil {
			d.Edit(e)
		}
	})
	if _, err := stripetask.Decode(body); err != nil {
		return "", false, fmt.Errorf("event %s: %w", eventType, err)
	}
	deliveries := 1
	if d.Twice {
		deliveries = 2
	}
	for range deliveries {
		ts := time.Now()
		if d.Old {
			ts = ts.Add(-10 * time.Minute)
		}
		secrets := []string{s.Secret}
		if d.Rotate {
			secrets = []string{"whsec_" + randomHex(16), s.Secret}
		}
		status, answer, err := s.post(ctx, body, stripetest.Sign(body, ts, secrets...))
		if err != nil {
			return id, false, err
		}
		if s.Out != nil {
			fmt.Fprintf(s.Out, "%-40s %s → %d %s\n", eventType, id, status, answer)
		}
		ignored = status == http.StatusOK && answer == answerIgnored
	}
	return id, ignored, nil
}

// answerIgnored is the api's answer to an event whose type it does not
// permit (STRIPE_EVENTS): it stores no task for it.
const answerIgnored = `{"message":"ignored"}`

// post delivers body with the headers Stripe sends and returns the status
// and the answer's body.
func (s Sender) post(ctx context.Context, body []byte, sig string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
	req.Header.Set("Stripe-Signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("post to %s: %w (is the stack running? go tool task dev)", s.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

// Lifecycle is one customer's story as Scenario plays it, in the order
// Stripe creates it (stripetest.Lifecycle's): subscription created →
// upcoming invoice → payment failed → dispute opened → invoice paid →
// dispute won. It is the part of stripetest's story whose events the
// customer record depends on.
var Lifecycle = storyTypes(
	"customer.created",
	"customer.subscription.created",
	"invoice.upcoming",
	"invoice.payment_failed",
	"charge.failed",
	"payment_intent.payment_failed",
	"charge.dispute.created",
	"invoice.paid",
	"charge.dispute.closed",
)

// storyTypes returns the types of stripetest.Lifecycle that are in types,
// in its order; it panics on a type it lacks.
func storyTypes(types ...string) []string {
	var out []string
	for _, t := range stripetest.Lifecycle() {
		if slices.Contains(types, t) {
			out = append(out, t)
		}
	}
	if len(out) != len(types) {
		panic(fmt.Sprintf("eventsender: %q are not all in stripetest.Lifecycle", types))
	}
	return out
}

// Scenario delivers the Lifecycle at s's API version for the customer of
// d.Objects, created a second apart a few minutes ago, in Stripe's order or
// shuffled. It returns the IDs of the events the receiver took, to wait for
// (WaitHandled): an event it ignored, its type not being permitted
// (STRIPE_EVENTS), is delivered but left out.
func (s Sender) Scenario(ctx context.Context, d Delivery, shuffle bool) ([]string, error) {
	if _, err := s.apiVersion(); err != nil {
		return nil, err
	}
	d.ID = ""
	start := time.Now().Add(-5 * time.Minute)
	created := map[string]time.Time{}
	for i, t := range Lifecycle {
		created[t] = start.Add(time.Duration(i) * time.Second)
	}
	order := slices.Clone(Lifecycle)
	if shuffle {
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	var ids []string
	for _, t := range order {
		id, ignored, err := s.send(ctx, t, created[t], d)
		if err != nil {
			return ids, err
		}
		if !ignored {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// WaitHandled waits until every task is completed or archived.
func WaitHandled(ctx context.Context, rdb redis.UniversalClient, queue string, ids []string, timeout time.Duration) error {
	insp := asynq.NewInspectorFromRedisClient(rdb)
	deadline := time.Now().Add(timeout)
	for {
		left := 0
		for _, id := range ids {
			info, err := insp.GetTaskInfo(queue, id)
			if err != nil || (info.State != asynq.TaskStateCompleted && info.State != asynq.TaskStateArchived) {
				left++
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d events not handled after %v; is the worker running?", left, len(ids), timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// PrintCustomer writes the customer record as redis-cli HGETALL would
// show it, one field a line.
func PrintCustomer(ctx context.Context, rdb redis.UniversalClient, customer string, out io.Writer) error {
	key := records.CustomerKey(customer)
	record, err := rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return fmt.Errorf("read %s: %w", key, err)
	}
	if len(record) == 0 {
		return errors.New(key + " does not exist")
	}
	fmt.Fprintf(out, "\nredis-cli HGETALL '%s'\n", key)
	fields := make([]string, 0, len(record))
	for f := range record {
		fields = append(fields, f)
	}
	slices.Sort(fields)
	for _, f := range fields {
		fmt.Fprintf(out, "  %-28s %s\n", f, record[f])
	}
	return nil
}

// RandomSuffix returns a fresh suffix for Delivery.Objects.
func RandomSuffix() string { return randomHex(8) }

func randomHex(n int) string {
	b := make([]byte, n/2)
	crand.Read(b)
	return hex.EncodeToString(b)
}
