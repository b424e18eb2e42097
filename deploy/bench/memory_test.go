package main

import "testing"

// TestKeyFamily checks that every key a retained execution adds is counted
// in its family, and that per-object and fixed keys are not counted as the
// execution's.
func TestKeyFamily(t *testing.T) {
	tests := []struct {
		key, part, index string
	}{
		{"asynq:{stripe}:t:evt_1", partTask, ""},
		{"asynq:{stripe}:t:evt_1:rerun:2", partTask, ""},
		{"asynq:{stripe}:completed", partCompleted, ""},
		{"stripeq:idx:{stripe}:all", partIndex, "all"},
		{"stripeq:idx:{stripe}:type:invoice.paid", partIndex, "type"},
		{"stripeq:idx:{stripe}:prefix:invoice", partIndex, "prefix"},
		{"stripeq:idx:{stripe}:ref:in_1", partIndex, "ref"},
		{"stripeq:idx:{stripe}:ref:a:b@example.com", partIndex, "ref"},
		{"stripeq:idx:{stripe}:keys", partIndex, "keys"},
		{"stripeq:fail:{stripe}:att:evt_1", partAttempts, ""},
		{"stripeq:fail:{stripe}:t:evt_1", partFailures, ""},
		{"stripeq:fail:{stripe}:all", partFailures, ""},
		{"stripeq:seen:{stripe}:20261130", partMarker, ""},
		{"stripeq:customer:{cus_1}", partRecords, ""},
		{"stripeq:slots:{stripe}", partRecords, ""},
		{"asynq:{stripe}:processed", partAsynq, ""},
		{"asynq:servers", partAsynq, ""},
		{"asynq:{other}:t:evt_1", partAsynq, ""},
		{"something:else", partOther, ""},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if part, index := keyFamily(tt.key); part != tt.part || index != tt.index {
				t.Errorf("keyFamily(%q) = %q, %q; want %q, %q", tt.key, part, index, tt.part, tt.index)
			}
		})
	}
}

// TestPerExecution checks what a retained execution is charged: its own
// families and the keyspace's dictionaries, never per-object or fixed keys.
func TestPerExecution(t *testing.T) {
	f := memFigures{parts: memParts{partTask: 4000, partCompleted: 100, partIndex: 1000, partAttempts: 400, partFailures: 1,
		partMarker: 80, partKeyspace: 100, partRecords: 50, partAsynq: 2, partOther: 3}}
	if got, want := f.perExecution(), 5681.0; got != want {
		t.Errorf("perExecution = %v, want %v", got, want)
	}
	if got, want := f.all(), 5736.0; got != want {
		t.Errorf("all = %v, want %v", got, want)
	}
	if got := thousands(5530); got != "5,530" {
		t.Errorf("thousands(5530) = %q", got)
	}
}
