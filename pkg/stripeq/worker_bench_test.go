package stripeq_test

import (
	"context"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/logging"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripeq"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// BenchmarkWorkerDrain drains b.N tasks whose handler only notes an
// outcome, through a running worker with the global concurrency limit on:
// the worker's own cost per task (asynq, the slot, the attempt history),
// for -cpuprofile. Compare CPU time, not ns/op, on a shared machine:
// cpu-µs/op is the process's user and system time while it drains (the
// worker, and this benchmark polling the queue every 5 ms).
func BenchmarkWorkerDrain(b *testing.B) {
	b.ReportAllocs()
	db := redistest.New(b)
	log, err := logging.New(io.Discard, func(string) string { return "" }) // as the worker logs
	if err != nil {
		b.Fatal(err)
	}
	w, err := stripeq.NewWorker(stripeq.Config{RedisURL: db.URL, Concurrency: 5, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	type invoice struct {
		Customer stripeq.ExpandableID `json:"customer"`
	}
	stripeq.Handle(w, "invoice.paid", func(ctx context.Context, e *stripeq.Event[invoice]) error {
		e.SetOutcome("granted to " + string(e.Object.Customer))
		return nil
	})
	client := asynq.NewClientFromRedisClient(db.Client)
	fixture := stripetest.Fixture("invoice.paid")
	for i := range b.N {
		body := stripetest.Edit(fixture, func(e map[string]any) { e["id"] = fmt.Sprintf("evt_bench_%08d", i) })
		task, _, err := stripetask.New(body, stripetask.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := client.Enqueue(task); err != nil {
			b.Fatal(err)
		}
	}
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	b.ResetTimer()
	cpu0 := processCPU()
	ctx, cancel := context.WithCancel(b.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	for {
		q, err := insp.GetQueueInfo(stripetask.DefaultQueue)
		if err == nil && q.Completed+q.Archived >= b.N {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	cancel()
	<-done
}

// processCPU returns the user and system time this process has used.
func processCPU() time.Duration {
	var u syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}
