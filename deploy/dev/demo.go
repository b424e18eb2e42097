package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/stripeq/stripeq/pkg/eventsender"
	"github.com/stripeq/stripeq/pkg/redisconn"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// playDemo plays one customer's lifecycle through the running stack, with
// two real failures: the SMTP server is down for smtpOutage, so the
// notification tasks fail and are retried, and one signed invoice.paid
// carries an object that does not decode, so it is archived at once. Then
// it prints the customer record and where to look in the dashboard.
func playDemo(ctx context.Context, env map[string]string, sink *mailSink, smtpOutage time.Duration, say func(string, ...any)) error {
	opt, err := redisconn.Parse(env["REDIS_URL"])
	if err != nil {
		return err
	}
	rdb := redisconn.NewClient(opt)
	defer rdb.Close()

	objects := eventsender.RandomSuffix()
	customer := stripetest.CustomerID(objects)
	s := eventsender.Sender{URL: "http://" + env["API_ADDR"] + "/webhooks/stripe", Secret: env["STRIPE_WEBHOOK_SECRET"], Out: sayWriter(say)}

	say("the SMTP server goes down for %v: notifications fail and are retried", smtpOutage)
	sink.stop()
	say("playing the lifecycle of customer %s", customer)
	ids, err := s.Scenario(ctx, eventsender.Delivery{Objects: objects}, false)
	if err != nil {
		return err
	}
	say("a duplicate delivery of the first event:")
	if _, err := s.Send(ctx, "customer.created", time.Now().Add(-5*time.Minute), eventsender.Delivery{ID: ids[0], Objects: objects}); err != nil {
		return err
	}
	say("a signed invoice.paid whose amount_paid is not a number: the worker cannot decode it and archives it")
	bad, err := s.Send(ctx, "invoice.paid", time.Now(), eventsender.Delivery{Objects: objects, Edit: func(e map[string]any) {
		stripetest.Object(e)["amount_paid"] = "twenty dollars"
	}})
	if err != nil {
		return err
	}

	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(smtpOutage):
	}
	if err := sink.start(); err != nil {
		return fmt.Errorf("restart the SMTP server: %w", err)
	}
	say("the SMTP server is back: the retried notifications go out at their next attempt")

	if err := eventsender.WaitHandled(ctx, rdb, stripetask.DefaultQueue, append(ids, bad), 3*time.Minute); err != nil {
		return err
	}
	if err := eventsender.PrintCustomer(ctx, rdb, customer, sayWriter(say)); err != nil {
		return err
	}
	console := "http://" + env["DASHBOARD_ADDR"] + "/"
	say("done. In the Console (%s, user %s):", console, env["DASHBOARD_USER"])
	say("  - every event of %s: %s?customer=%s", customer, console, customer)
	say("  - the notifications that were retried while SMTP was down: open an invoice.* or charge.dispute.* execution; its attempts show the failures")
	if env["DESTINATION_URL"] != "" {
		say("  - every event forwarded to the receiving app, with each attempt's status, latency and response: %sdeliveries", console)
	}
	say("  - the archived failure: %sexecutions/%s — re-run it from there (it fails again: its payload cannot be fixed by a retry)", console, bad)
	return nil
}

// sayWriter adapts say to an io.Writer, one call per line.
type sayWriter func(string, ...any)

func (w sayWriter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		w("%s", line)
	}
	return len(b), nil
}
