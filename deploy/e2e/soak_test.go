package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// soakEvents is the default number of deliveries of TestSoak;
// STRIPEQ_SOAK_EVENTS overrides it (the full run is 20000).
const soakEvents = 2000

// aspect is one part of a record that the newest of some event types sets:
// after the soak it must name the newest such event of its customer group.
type aspect struct {
	key   func(suffix string) string
	field string
	types []string
}

var soakAspects = []aspect{
	{func(s string) string { return records.CustomerKey(stripetest.CustomerID(s)) }, "last_event_id",
		[]string{"customer.created", "customer.updated", "customer.deleted"}},
	{func(s string) string { return records.CustomerKey(stripetest.CustomerID(s)) }, "subscription_event_id", subscriptionTypes},
	{func(s string) string { return records.SubscriptionKey("sub_stripeq_demo_" + s) }, "last_event_id", subscriptionTypes},
	{func(s string) string { return records.CustomerKey(stripetest.CustomerID(s)) }, "payment_event_id",
		[]string{"invoice.paid", "invoice.payment_failed", "charge.failed", "payment_intent.payment_failed"}},
	{func(s string) string { return records.CustomerKey(stripetest.CustomerID(s)) }, "checkout_event_id",
		[]string{"checkout.session.completed"}},
	{func(s string) string { return records.DisputeKey("dp_stripeq_demo_" + s) }, "last_event_id",
		[]string{"charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed", "charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated"}},
}

var subscriptionTypes = []string{
	"customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
	"customer.subscription.paused", "customer.subscription.resumed", "customer.subscription.trial_will_end",
}

// soakNotices are the event types that always notify, once, with their kind.
var soakNotices = map[string]string{
	"invoice.paid": "invoice", "invoice.finalized": "invoice", "invoice.upcoming": "upcoming_charge",
	"customer.subscription.trial_will_end": "trial_will_end", "charge.dispute.closed": "dispute_closed",
}

type soakEvent struct {
	id, typ, suffix string
	body            []byte
}

// TestSoak sends a shuffled mix of every handled event type for many
// customers, with about 10% duplicate deliveries, to the api from 16
// clients, while two workers process them. A third of the way through, one
// worker is killed with SIGKILL and then restarted. Afterwards, from Redis:
// every unique event was stored once and processed once, every record
// holds its newest event, and no notification went out twice.
//
// It sends 2,000 deliveries; STRIPEQ_SOAK_EVENTS=20000 for the full run.
func TestSoak(t *testing.T) {
	total := soakEvents
	if v := os.Getenv("STRIPEQ_SOAK_EVENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 {
			t.Fatalf("STRIPEQ_SOAK_EVENTS=%q: want a number ≥ 100", v)
		}
		total = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("STRIPEQ_SOAK_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	rng := rand.New(rand.NewPCG(seed, 0))

	// Unique events: every fixture type the api permits by default for each
	// customer group, each type a minute newer than the one before it, so
	// each aspect has one newest.
	types := slices.DeleteFunc(stripetest.FixtureTypes(), func(t string) bool { return !slices.Contains(events.Handled(), t) })
	unique := total - total/10
	base := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	var events []soakEvent
	for g := 0; len(events) < unique; g++ {
		suffix := fmt.Sprintf("soak%05d", g)
		for i, typ := range types {
			if len(events) == unique {
				break
			}
			id := fmt.Sprintf("evt_soak_%05d_%02d", g, i)
			body := stripetest.Relabel(stripetest.Event(typ, id, base.Add(time.Duration(i)*time.Minute)), suffix)
			events = append(events, soakEvent{id, typ, suffix, body})
		}
	}
	// Shuffled, with duplicates of random events at random places.
	order := rng.Perm(len(events))
	for range total - unique {
		at := rng.IntN(len(order) + 1)
		order = slices.Insert(order, at, rng.IntN(len(events)))
	}

	db := redistest.New(t)
	_, addr := startAPI(t, "api", db.URL, nil)
	// Short handler timeout: the killed worker's global concurrency slots
	// free themselves within it. Short retry delay: disputes that arrive
	// before their charge's events wait by retrying.
	workerEnv := map[string]string{"HANDLER_TIMEOUT": "5s", "RETRY_BASE_DELAY": "200ms"}
	w1 := startWorker(t, "worker-1", db.URL, workerEnv)
	startWorker(t, "worker-2", db.URL, workerEnv)

	var (
		answers   sync.Map // message → *atomic.Int64
		redeliver atomic.Int64
		sent      atomic.Int64
		sendTime  atomic.Int64 // until the last delivery was answered
		failures  = make(chan string, 16)
		queue     = make(chan int)
		wg        sync.WaitGroup
	)
	count := func(msg string) {
		v, _ := answers.LoadOrStore(msg, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	client := loadClient()
	start := time.Now()
	for range 16 {
		wg.Go(func() {
			for i := range queue {
				e := events[i]
				// Like Stripe, deliver again until acknowledged.
				for attempt := 0; ; attempt++ {
					a := send(client, "http://"+addr, e.body)
					if a.acked() {
						count(a.message)
						break
					}
					if attempt == 5 {
						select {
						case failures <- fmt.Sprintf("%s: %d %q %v", e.id, a.status, a.message, a.err):
						default:
						}
						break
					}
					redeliver.Add(1)
					time.Sleep(200 * time.Millisecond)
				}
				if sent.Add(1) == int64(total) {
					sendTime.Store(int64(time.Since(start)))
				}
			}
		})
	}
	go func() {
		for _, i := range order {
			queue <- i
		}
		close(queue)
	}()

	// A third of the way through, kill a worker; restart it once its
	// tasks' leases are known to be orphaned.
	poll.Until(t, time.Minute+time.Duration(total)*5*time.Millisecond, "a third of the deliveries", func() bool { return sent.Load() >= int64(total/3) })
	w1.Kill()
	killedAt := sent.Load()
	dead := deadLeases(t, db.Client)
	ageLeases(t, db.Client, dead)
	startWorker(t, "worker-1-restarted", db.URL, workerEnv)

	wg.Wait()
	close(failures)
	for f := range failures {
		t.Errorf("not acknowledged after 6 deliveries: %s", f)
	}
	ctx := context.Background()
	poll.Until(t, time.Minute+time.Duration(total)*10*time.Millisecond, "every unique event to complete", func() bool {
		return db.Client.ZCard(ctx, "asynq:{stripe}:completed").Val() >= int64(len(events))
	})
	wall := time.Since(start)

	// Stored once, processed once.
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.id
	}
	states := countStates(taskStates(t, db.Client, ids))
	received, duplicate := loadCount(&answers, "Received"), loadCount(&answers, "duplicate")
	if received != int64(len(events)) || received+duplicate != int64(total) {
		t.Errorf("answers: %d Received, %d duplicate; want %d and %d", received, duplicate, len(events), total-len(events))
	}
	if states["completed"] != len(events) {
		t.Errorf("task states of the %d unique events: %v", len(events), states)
	}
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	qi, err := insp.GetQueueInfo("stripe")
	if err != nil {
		t.Fatal(err)
	}
	if qi.Pending+qi.Active+qi.Scheduled+qi.Retry+qi.Archived != 0 || qi.Completed != len(events) {
		t.Errorf("queue: %d completed, %d pending, %d active, %d retry, %d archived; want only %d completed",
			qi.Completed, qi.Pending, qi.Active, qi.Retry, qi.Archived, len(events))
	}

	// Every record holds the newest event of each of its aspects.
	newest := map[string]string{} // suffix + aspect index → event ID
	for _, e := range events {
		for k, a := range soakAspects {
			if slices.Contains(a.types, e.typ) {
				newest[e.suffix+"/"+strconv.Itoa(k)] = e.id // events are in created order per group
			}
		}
	}
	wrong := 0
	for key, want := range newest {
		suffix, k, _ := strings.Cut(key, "/")
		n, _ := strconv.Atoi(k)
		a := soakAspects[n]
		if got := db.Client.HGet(ctx, a.key(suffix), a.field).Val(); got != want {
			if wrong++; wrong <= 5 {
				t.Errorf("%s %s = %q, want %q", a.key(suffix), a.field, got, want)
			}
		}
	}

	// No notification twice: one stream entry per (kind, event), each
	// recorded by exactly one notified key, and one for each event that
	// always notifies.
	msgs := notifications(t, db.Client)
	seen := map[string]bool{}
	dupNotices := 0
	for _, m := range msgs {
		k := fmt.Sprint(m.Values["kind"], "/", m.Values["event_id"])
		if seen[k] {
			dupNotices++
			t.Errorf("notification %s sent twice", k)
		}
		seen[k] = true
	}
	var notified []string
	iter := db.Client.Scan(ctx, 0, records.NotifiedKey("*", "*"), 1000).Iterator()
	for iter.Next(ctx) {
		notified = append(notified, iter.Val())
	}
	if len(notified) != len(msgs) {
		t.Errorf("%d notified records for %d stream entries", len(notified), len(msgs))
	}
	for _, e := range events {
		if kind, ok := soakNotices[e.typ]; ok && !seen[kind+"/"+e.id] {
			t.Errorf("no %s notification for %s", kind, e.id)
		}
	}

	t.Logf("soak (seed %d): %d deliveries (%d unique events of %d types, %d duplicates) from 16 clients in %v (%.0f/s); %d redelivered after a non-200",
		seed, total, len(events), len(types), total-len(events), time.Duration(sendTime.Load()).Round(10*time.Millisecond), float64(total)/time.Duration(sendTime.Load()).Seconds(), redeliver.Load())
	t.Logf("soak: 1 worker SIGKILLed after %d deliveries with %d tasks in hand, restarted; answers %d Received, %d duplicate",
		killedAt, len(dead), received, duplicate)
	t.Logf("soak: all processed after %v: %d completed, %d lost, %d records wrong of %d checked, %d notifications (%d sent twice), queue failures counted by asynq: %d",
		wall.Round(10*time.Millisecond), states["completed"], len(events)-states["completed"], wrong, len(newest), len(msgs), dupNotices, qi.Failed)
}

func loadCount(m *sync.Map, k string) int64 {
	v, ok := m.Load(k)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}
