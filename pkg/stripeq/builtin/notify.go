package builtin

import (
	"context"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/stripeq"
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
// before, atomically with the record of that. It returns the entry's ID,
// whether the notification was already emailed, and "1" when it was
// appended before.
//
// KEYS[1] the notified key; KEYS[2] the stream; ARGV[1] TTL seconds;
// ARGV[2] MAXLEN; ARGV[3…] the entry's field, value pairs.
var recordNotification = redis.NewScript(`
local id = redis.call('HGET', KEYS[1], 'stream_id')
if id then return {id, redis.call('HGET', KEYS[1], 'emailed') or '0', '1'} end
id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
redis.call('HSET', KEYS[1], 'stream_id', id, 'emailed', '0')
redis.call('EXPIRE', KEYS[1], ARGV[1])
return {id, '0', '0'}
`)

// notifier sends notifications: always to the stream, and by email when a
// mailer is configured.
type notifier struct {
	rdb  redis.UniversalClient
	mail *mailer // nil without SMTP_URL
}

// send delivers n at most once per (kind, dedupe ID), however often the
// task is retried, re-run or delivered, and notes in m's outcome whether
// it was queued or emailed, and why not emailed. An email that fails
// returns an error, so the task retries and sends only the email again.
// The one window for a second email is a crash after the SMTP server
// accepted it and before it is marked sent.
func (nt notifier) send(ctx context.Context, m stripeq.Meta, n notification) error {
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
	note := stripeq.Notice{Kind: n.Kind, Customer: n.Customer, Email: n.Email, Status: stripeq.NoticeQueued}
	before := len(res) > 2 && res[2] == "1"
	switch {
	case res[1] == "1":
		note.Status, note.Reason = stripeq.NoticeEmailed, "by an earlier execution"
	case nt.mail == nil:
		note.Reason = "no SMTP_URL: in the notifications stream only"
	case n.Email == "":
		note.Reason = "the customer's email address is unknown"
	}
	if note.Reason != "" {
		if before && note.Status == stripeq.NoticeQueued {
			note.Reason = "queued by an earlier execution; " + note.Reason
		}
		m.Notified(note)
		return nil
	}
	if err := nt.mail.send(ctx, n); err != nil {
		note.Reason = "email failed; a retry sends it"
		if lastTry(ctx) {
			note.Reason = "email failed; no retries left: Run now in the Console sends it"
		}
		m.Notified(note)
		return fmt.Errorf("email %s notification: %w", n.Kind, err)
	}
	note.Status = stripeq.NoticeEmailed
	m.Notified(note)
	if err := nt.rdb.HSet(ctx, key, "emailed", "1").Err(); err != nil {
		return fmt.Errorf("mark %s notification emailed: %w", n.Kind, err)
	}
	return nil
}

// lastTry reports whether this attempt is its execution's last: failing,
// it is archived, and no retry comes. Outside asynq (a test kit's run),
// false.
func lastTry(ctx context.Context) bool {
	n, ok := asynq.GetRetryCount(ctx)
	limit, ok2 := asynq.GetMaxRetry(ctx)
	return ok && ok2 && n >= limit
}
