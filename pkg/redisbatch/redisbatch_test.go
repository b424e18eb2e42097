package redisbatch

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/redistest"
)

// TestConcurrentCallers has 400 callers, 16 at a time, each incrementing its
// own counter twice in one call: each gets its own results, in order, and
// the calls share fewer pipelines than there are calls.
func TestConcurrentCallers(t *testing.T) {
	db := redistest.New(t)
	var pipes redistest.PipelineCounter
	opt, err := redis.ParseURL(db.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	rdb.AddHook(&pipes)
	b := New(rdb)
	ctx := context.Background()

	const calls, inFlight = 400, 16
	sem := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	for i := range calls {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			key := "counter:" + strconv.Itoa(i)
			var first, second *redis.IntCmd
			err := b.Do(ctx, func(p redis.Pipeliner) {
				first = p.IncrBy(ctx, key, int64(i))
				second = p.IncrBy(ctx, key, 1)
			})
			if err != nil {
				t.Errorf("call %d: %v", i, err)
				return
			}
			if first.Val() != int64(i) || second.Val() != int64(i)+1 {
				t.Errorf("call %d got %d, %d; want %d, %d", i, first.Val(), second.Val(), i, i+1)
			}
		})
	}
	wg.Wait()
	n := pipes.N()
	t.Logf("%d calls, %d at a time, in %d pipelines", calls, inFlight, n)
	if n >= calls {
		t.Errorf("%d pipelines for %d concurrent calls: nothing was grouped", n, calls)
	}
}

// TestErrors: a command's own error reaches only its caller; a caller
// whose context has ended returns at once; a Redis that is down fails
// every caller with the connection's error.
func TestErrors(t *testing.T) {
	db := redistest.New(t)
	b := New(db.Client)
	ctx := context.Background()
	if err := db.Client.Set(ctx, "a-string", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}

	t.Run("command error", func(t *testing.T) {
		var bad *redis.IntCmd
		var good *redis.StatusCmd
		err := b.Do(ctx, func(p redis.Pipeliner) {
			bad = p.LPush(ctx, "a-string", "y") // WRONGTYPE
			good = p.Set(ctx, "other", "z", 0)
		})
		if err != nil {
			t.Errorf("Do = %v, want nil: the error is the command's", err)
		}
		if bad.Err() == nil {
			t.Error("LPUSH on a string: no error")
		}
		if good.Err() != nil || good.Val() != "OK" {
			t.Errorf("SET after it = %v, %v", good.Val(), good.Err())
		}
	})

	t.Run("context ended", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := b.Do(cctx, func(p redis.Pipeliner) { p.Ping(cctx) }); !errors.Is(err, context.Canceled) {
			t.Errorf("Do = %v, want context.Canceled", err)
		}
	})

	t.Run("Redis down", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close() // nothing listens there now
		down := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
		defer down.Close()
		bd := New(down)
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				var cmd *redis.BoolCmd
				err := bd.Do(ctx, func(p redis.Pipeliner) { cmd = p.HExists(ctx, "k", "f") })
				if err == nil || cmd.Err() == nil {
					t.Errorf("Do = %v, command error %v; want both to fail", err, cmd.Err())
				}
			})
		}
		wg.Wait()
	})
}
