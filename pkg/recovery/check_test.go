package recovery_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/recovery"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestCheck runs the periodic check over a fake Stripe holding an event
// delivered, one missing past the grace period and one younger: the check
// alerts about the missing one only, keeps its record, and a second check
// within the interval (another replica) does not run. With Auto, it stores
// the missing event.
func TestCheck(t *testing.T) {
	for _, auto := range []bool{false, true} {
		t.Run(map[bool]string{false: "dry", true: "auto"}[auto], func(t *testing.T) {
			b := setup(t)
			now := time.Now()
			got := stripetest.Event(events.CustomerCreated, "evt_chk_got", now.Add(-3*time.Hour))
			lost := stripetest.Event(events.InvoicePaid, "evt_chk_lost", now.Add(-2*time.Hour))
			young := stripetest.Event(events.InvoicePaid, "evt_chk_young", now.Add(-10*time.Minute))
			b.api.Add("", got, lost, young)
			b.deliver(t, got)
			var alerts []string
			records := &recovery.Records{RDB: b.db.Client}
			c := &recovery.Check{
				Recoverer: b.rec, Records: records, RDB: b.db.Client,
				Interval: time.Hour, Grace: time.Hour, Auto: auto, Log: slog.New(slog.DiscardHandler),
				Alert: func(_ context.Context, text string) error { alerts = append(alerts, text); return nil },
			}
			rec, ran, err := c.Once(context.Background())
			if err != nil || !ran {
				t.Fatalf("check: ran %v, %v", ran, err)
			}
			if rec.Listed != 2 || rec.Missing != 1 || rec.DryRun == auto || rec.StartedBy != recovery.CheckedBy {
				t.Errorf("check: %+v", rec)
			}
			if len(alerts) != 1 || !strings.Contains(alerts[0], "invoice.paid 1") || !strings.Contains(alerts[0], "platform 1") {
				t.Errorf("alerts: %q", alerts)
			}
			if _, ran, err := c.Once(context.Background()); ran || err != nil {
				t.Errorf("a second check within the interval: ran %v, %v", ran, err)
			}
			if recs, err := records.List(context.Background(), 10); err != nil || len(recs) != 1 || recs[0].ID != rec.ID {
				t.Errorf("records: %+v %v", recs, err)
			}
			_, err = b.insp.GetTaskInfo(stripetask.QueueFor("evt_chk_lost", b.opts), "evt_chk_lost")
			if stored := err == nil; stored != auto {
				t.Errorf("the missing event stored: %v, want %v", stored, auto)
			}
		})
	}
}

func TestCheckFindsNothing(t *testing.T) {
	b := setup(t)
	got := stripetest.Event(events.CustomerCreated, "evt_chk_ok", time.Now().Add(-2*time.Hour))
	b.api.Add("", got)
	b.deliver(t, got)
	alerted := false
	c := &recovery.Check{
		Recoverer: b.rec, Records: &recovery.Records{RDB: b.db.Client}, RDB: b.db.Client,
		Interval: time.Minute, Grace: time.Hour, Log: slog.New(slog.DiscardHandler),
		Alert: func(context.Context, string) error { alerted = true; return nil },
	}
	rec, ran, err := c.Once(context.Background())
	if err != nil || !ran || rec.Listed != 1 || rec.Missing != 0 || alerted {
		t.Errorf("check: %+v ran %v alerted %v: %v", rec, ran, alerted, err)
	}
	if recs, _ := c.Records.List(context.Background(), 10); len(recs) != 0 {
		t.Errorf("a check that found nothing was kept: %+v", recs)
	}
}
