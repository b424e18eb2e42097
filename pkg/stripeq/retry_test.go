package stripeq

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/stripeq/internal/slots"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

func TestRetryDelay(t *testing.T) {
	f := retryDelay(30 * time.Second)
	for n := range stripetask.MaxRetry {
		base := 30 * time.Second << n
		for range 50 {
			d := f(n, errors.New("x"), nil)
			if d < base*8/10 || d > base*12/10 {
				t.Fatalf("retry %d: delay %v outside %v ±20%%", n, d, base)
			}
		}
	}
	if d := f(3, &RateLimitError{After: 7 * time.Second}, nil); d != 8*time.Second {
		t.Errorf("after a 429 with Retry-After 7: %v, want 8s", d)
	}
	if d := f(3, fmt.Errorf("wrapped: %w", slots.ErrNoSlot), nil); d < time.Second || d > 2*time.Second {
		t.Errorf("without a slot: %v, want 1–2s", d)
	}
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{errors.New("redis down"), true},
		{&RateLimitError{After: time.Second}, false},
		{slots.ErrNoSlot, false},
		{fmt.Errorf("email: %w", ErrInProgress), false},
		{Permanent(errors.New("bad object")), true},
	} {
		if got := isFailure(tt.err); got != tt.want {
			t.Errorf("isFailure(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestServerConfigQueues(t *testing.T) {
	w, err := NewWorker(Config{Queue: "stripe", Shards: 3, GlobalConcurrency: NoLimit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.rdb.Close() })
	sc := w.serverConfig()
	if want := map[string]int{"stripe-0": 1, "stripe-1": 1, "stripe-2": 1}; fmt.Sprint(sc.Queues) != fmt.Sprint(want) {
		t.Fatalf("queues = %v, want %v", sc.Queues, want)
	}
}
