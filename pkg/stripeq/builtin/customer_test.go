package builtin

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

func TestCustomerRecords(t *testing.T) {
	t0 := time.Unix(1767225600, 0)
	created := stripetest.Event("customer.created", "evt_c1", t0)
	updated := stripetest.Edit(stripetest.Event("customer.updated", "evt_c2", t0.Add(time.Minute)), func(e map[string]any) {
		stripetest.Object(e)["email"] = "jenny@new.example.com"
	})
	deleted := stripetest.Event("customer.deleted", "evt_c3", t0.Add(2*time.Minute))
	record := func(email, deleted, event string, at time.Time) map[string]string {
		return map[string]string{
			"email": email, "name": "Jenny Rosen", "deleted": deleted,
			"last_event_id": event, "last_event_created": strconv.FormatInt(at.Unix(), 10),
		}
	}
	tests := []struct {
		name   string
		events [][]byte
		want   map[string]string
	}{
		{"created", [][]byte{created}, record("jenny.rosen@example.com", "false", "evt_c1", t0)},
		{"created then updated", [][]byte{created, updated}, record("jenny@new.example.com", "false", "evt_c2", t0.Add(time.Minute))},
		{"updated arrives before created", [][]byte{updated, created}, record("jenny@new.example.com", "false", "evt_c2", t0.Add(time.Minute))},
		{"deleted", [][]byte{created, updated, deleted}, record("jenny.rosen@example.com", "true", "evt_c3", t0.Add(2*time.Minute))},
		{"deleted arrives first", [][]byte{deleted, updated, created}, record("jenny.rosen@example.com", "true", "evt_c3", t0.Add(2*time.Minute))},
		{"same event twice", [][]byte{created, created}, record("jenny.rosen@example.com", "false", "evt_c1", t0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, db := setup(t)
			for _, e := range tt.events {
				if err := process(t, w, e); err != nil {
					t.Fatalf("handler: %v", err)
				}
			}
			got, err := db.Client.HGetAll(context.Background(), records.CustomerKey("cus_stripeq_demo")).Result()
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("record = %v\nwant     %v", got, tt.want)
			}
		})
	}
}

func TestUndecodableObjectIsPermanent(t *testing.T) {
	w, _ := setup(t)
	body := stripetest.Edit(stripetest.Fixture("customer.created"), func(e map[string]any) {
		stripetest.Object(e)["email"] = map[string]any{"not": "a string"}
	})
	err := process(t, w, body)
	if !errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("err = %v, want one wrapping asynq.SkipRetry", err)
	}
}

// TestUnhandledTypesFallBack: a Stripe type with no handler is completed.
// (That every type in events.Handled has its handler is checked by
// Register itself, which panics otherwise.)
func TestUnhandledTypesFallBack(t *testing.T) {
	w, _ := setup(t)
	if err := process(t, w, stripetest.Edit(stripetest.Fixture("customer.created"), func(e map[string]any) { e["type"] = "product.created" })); err != nil {
		t.Errorf("an unhandled type: %v, want it completed", err)
	}
}
