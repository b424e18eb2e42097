package stripeq_test

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripeq"
)

// at is the Meta of event id created at unix second sec.
func at(id string, sec int64) stripeq.Meta {
	return stripeq.Meta{ID: id, Type: "customer.updated", Created: time.Unix(sec, 0)}
}

func TestRecordApply(t *testing.T) {
	type apply struct {
		m    stripeq.Meta
		plan string
		want bool // applied
	}
	tests := []struct {
		name    string
		applies []apply
		want    map[string]string
	}{
		{"newer after older", []apply{{at("evt_1", 100), "basic", true}, {at("evt_2", 200), "pro", true}},
			map[string]string{"plan": "pro", "last_event_id": "evt_2", "last_event_created": "200"}},
		{"older after newer", []apply{{at("evt_2", 200), "pro", true}, {at("evt_1", 100), "basic", false}},
			map[string]string{"plan": "pro", "last_event_id": "evt_2", "last_event_created": "200"}},
		{"same second: arrival order", []apply{{at("evt_1", 100), "basic", true}, {at("evt_2", 100), "pro", true}},
			map[string]string{"plan": "pro", "last_event_id": "evt_2", "last_event_created": "100"}},
		{"a re-run or second delivery of the newest", []apply{{at("evt_2", 200), "pro", true}, {at("evt_1", 100), "basic", false}, {at("evt_2", 200), "pro", true}},
			map[string]string{"plan": "pro", "last_event_id": "evt_2", "last_event_created": "200"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := redistest.New(t)
			r := stripeq.Record{Key: "myapp:customer:{cus_1}"}
			for i, a := range tt.applies {
				applied, err := r.Apply(t.Context(), db.Client, a.m, "plan", a.plan)
				if err != nil || applied != a.want {
					t.Fatalf("apply %d (%s): %v, %v; want applied %v", i, a.m.ID, applied, err, a.want)
				}
			}
			if got := db.Client.HGetAll(t.Context(), r.Key).Val(); !maps.Equal(got, tt.want) {
				t.Errorf("record = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestRecordClocksAreIndependent: two aspects of one hash, each with its
// own clock; a late event of one still applies after a newer one of the
// other.
func TestRecordClocksAreIndependent(t *testing.T) {
	db := redistest.New(t)
	own := stripeq.Record{Key: "myapp:customer:{cus_1}"}
	billing := stripeq.Record{Key: own.Key, Clock: "billing_event"}
	if ok, err := own.Apply(t.Context(), db.Client, at("evt_new", 200), "email", "a@example.com"); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if ok, err := billing.Apply(t.Context(), db.Client, at("evt_old", 100), "delinquent", "true"); !ok || err != nil {
		t.Fatalf("an older event of another aspect: applied %v, %v; want applied", ok, err)
	}
	h := db.Client.HGetAll(t.Context(), own.Key).Val()
	if h["delinquent"] != "true" || h["billing_event_id"] != "evt_old" || h["last_event_id"] != "evt_new" {
		t.Errorf("record = %v", h)
	}
}

// TestRecordConcurrentDeliveries applies 50 events of one object from 10
// goroutines at once, each event delivered twice, in random order: the
// record ends with the newest event's fields, whatever the interleaving.
func TestRecordConcurrentDeliveries(t *testing.T) {
	db := redistest.New(t)
	r := stripeq.Record{Key: "myapp:subscription:{sub_1}"}
	var deliveries []int
	for i := range 50 {
		deliveries = append(deliveries, i, i)
	}
	rand.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
	work := make(chan int)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			for i := range work {
				m := at(fmt.Sprintf("evt_%02d", i), 1000+int64(i))
				if _, err := r.Apply(t.Context(), db.Client, m, "status", "status_"+strconv.Itoa(i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for _, i := range deliveries {
		work <- i
	}
	close(work)
	wg.Wait()
	h := db.Client.HGetAll(t.Context(), r.Key).Val()
	if h["status"] != "status_49" || h["last_event_id"] != "evt_49" {
		t.Errorf("record = %v, want the newest event's", h)
	}
}

func TestRecordErrors(t *testing.T) {
	db := redistest.New(t)
	if _, err := (stripeq.Record{}).Apply(t.Context(), db.Client, at("evt_1", 1), "a", "b"); !errors.Is(err, stripeq.ErrNoKey) {
		t.Errorf("no key: %v, want ErrNoKey", err)
	}
	if _, err := (stripeq.Record{Key: "k"}).Apply(t.Context(), db.Client, at("evt_1", 1), "a"); err == nil {
		t.Error("an odd number of field arguments: no error")
	}
}
