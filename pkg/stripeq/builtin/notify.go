package builtin

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/records"
)

// notificationsMaxLen caps the stream, approximately, at its newest entries.
const notificationsMaxLen = 100_000

// notifiedTTL is how long the record that a notification went out is kept.
// It outlives asynq's archive (90 days), so a re-run from the dashboard of
// any task it still holds sends nothing again.
const notifiedTTL = 100 * 24 * time.Hour

// notification is one message to a customer.
type notification struct {
	Kind     string
	Customer string
	Email    string // "" when the customer's address is unknown: recorded, not emailed
	EventID  string
	Subject  string
	Body     string // the email's text; not stored in the stream
	// DedupeID identifies the notification among those of its kind: it goes
	// out at most once per (kind, DedupeID). Default: EventID.
	DedupeID string
}

// record appends a notification to the stream unless it was appended
// before, atomically with the record of that. It returns the entry's ID and
// whether the notification was already emailed.
//
// KEYS[1] the notified key; KEYS[2] the stream; ARGV[1] TTL seconds;
// ARGV[2] MAXLEN; ARGV[3…] the entry's field, value pairs.
var recordNotification = redis.NewScript(`
local id = redis.call('HGET', KEYS[1], 'stream_id')
if id then return {id, redis.call('HGET', KEYS[1], 'emailed') or '0'} end
id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
redis.call('HSET', KEYS[1], 'stream_id', id, 'emailed', '0')
redis.call('EXPIRE', KEYS[1], ARGV[1])
return {id, '0'}
`)

// notifier sends notifications: always to the stream, and by email when a
// mailer is configured.
type notifier struct {
	rdb  redis.UniversalClient
	mail *mailer // nil without SMTP_URL
}

// send delivers n at most once per (kind, dedupe ID), however often the
// task is retried, re-run or delivered. An email that fails returns an
// error, so the task retries and sends only the email again. The one
// window for a second email is a crash after the SMTP server accepted it
// and before it is marked sent.
func (nt notifier) send(ctx context.Context, n notification) error {
	if n.DedupeID == "" {
		n.DedupeID = n.EventID
	}
	key := records.NotifiedKey(n.Kind, n.DedupeID)
	res, err := recordNotification.Run(ctx, nt.rdb, []string{key, records.NotificationsStream},
		int64(notifiedTTL/time.Second), notificationsMaxLen,
		"kind", n.Kind, "customer", n.Customer, "email", n.Email, "event_id", n.EventID, "subject", n.Subject,
	).StringSlice()
	if err != nil {
		return fmt.Errorf("record %s notification: %w", n.Kind, err)
	}
	if nt.mail == nil || n.Email == "" || res[1] == "1" {
		return nil
	}
	if err := nt.mail.send(ctx, n); err != nil {
		return fmt.Errorf("email %s notification: %w", n.Kind, err)
	}
	if err := nt.rdb.HSet(ctx, key, "emailed", "1").Err(); err != nil {
		return fmt.Errorf("mark %s notification emailed: %w", n.Kind, err)
	}
	return nil
}
