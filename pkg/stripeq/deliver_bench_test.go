package stripeq

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// BenchmarkForward runs the whole forwarding path of b.N events in one
// worker, as the bench's forward target does: each event's task (a
// handler that does nothing, a global concurrency slot, the completion)
// with its delivery (sign, POST to an httptest receiver, record the
// attempt): inline, in the event's task, once the receiver has answered
// one delivery task, on a redis-server of its own. It reports the Redis commands per event (from INFO
// commandstats, counting those a script runs), and the CPU time per event
// of this process (the worker and the receiver) and of Redis.
//
// In a -cpuprofile, samples labelled stripeq_destination are the
// deliveries', stripeq_events=worker the event tasks', and the rest the
// receiver's, the enqueue of the events and the runtime's. With
// BENCH_MONITOR=<file>, redis-cli's MONITOR of the run is written there,
// to read the round trips of one event. "ordered" runs the destination
// with DESTINATION_ORDER=customer, each event of its own customer, so that
// none waits: the cost of the order itself.
func BenchmarkForward(b *testing.B) {
	b.Run("unordered", func(b *testing.B) { benchmarkForward(b, "") })
	b.Run("ordered", func(b *testing.B) { benchmarkForward(b, OrderCustomer) })
}

// benchmarkForward is BenchmarkForward with DESTINATION_ORDER order.
func benchmarkForward(b *testing.B, order string) {
	srv := redistest.Start(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	ctx := context.Background()
	var got atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got.Add(1)
	}))
	defer recv.Close()

	client := asynq.NewClientFromRedisClient(rdb)
	body := stripetest.Event("customer.created", "evt_bench", time.Now())
	for i := range b.N {
		ev := strings.Replace(string(body), `"evt_bench"`, `"evt_bench`+strconv.Itoa(i)+`"`, 1)
		ev = strings.Replace(ev, `"cus_stripeq_demo"`, `"cus_bench`+strconv.Itoa(i)+`"`, 1)
		task, _, err := stripetask.New([]byte(ev), stripetask.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := client.Enqueue(task); err != nil {
			b.Fatal(err)
		}
	}
	w, err := NewWorker(Config{
		RedisURL: srv.URL(0), Concurrency: 16, GlobalConcurrency: 5, Logger: slog.New(slog.DiscardHandler),
		Destinations: []Destination{{Name: "default", URL: recv.URL, Secret: testDestSecret, Concurrency: 16, Order: order}},
	})
	if err != nil {
		b.Fatal(err)
	}
	Handle(w, "customer.created", func(context.Context, *Event[map[string]any]) error { return nil })
	if f := os.Getenv("BENCH_MONITOR"); f != "" {
		mon := exec.Command("sh", "-c", "redis-cli -h ${0%:*} -p ${0##*:} monitor", srv.Addr)
		out, _ := os.Create(f)
		mon.Stdout = out
		mon.Start()
		time.Sleep(200 * time.Millisecond)
		defer func() { time.Sleep(200 * time.Millisecond); mon.Process.Kill(); out.Close() }()
	}
	before := commandStats(b, rdb)
	redisCPU, procCPU := redisCPUSeconds(b, rdb), processCPUSeconds()
	b.ResetTimer()
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go pprof.Do(runCtx, pprof.Labels("stripeq_events", "worker"), func(ctx context.Context) { done <- w.Run(ctx) })
	deadline := time.Now().Add(time.Duration(b.N)*time.Millisecond + time.Minute)
	for got.Load() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	redisCPU, procCPU = redisCPUSeconds(b, rdb)-redisCPU, processCPUSeconds()-procCPU
	after := commandStats(b, rdb)
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if n := got.Load(); n < int64(b.N) {
		b.Fatalf("%d of %d events forwarded", n, b.N)
	}
	var names []string
	total := 0
	for name, n := range after {
		if d := n - before[name]; d > 0 {
			names = append(names, fmt.Sprintf("%s=%.2f", name, float64(d)/float64(b.N)))
			total += d
		}
	}
	slices.Sort(names)
	b.Logf("N=%d, Redis commands per event (including the idle polls of both servers): %s", b.N, strings.Join(names, " "))
	b.ReportMetric(float64(total)/float64(b.N), "cmds/event")
	b.ReportMetric(procCPU*1e6/float64(b.N), "process-µs/event")
	b.ReportMetric(redisCPU*1e6/float64(b.N), "redis-µs/event")
}

// processCPUSeconds returns the CPU time of this process so far: the
// worker's, and the receiver's.
func processCPUSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// redisCPUSeconds returns the CPU time of the redis-server so far.
func redisCPUSeconds(tb testing.TB, rdb *redis.Client) float64 {
	tb.Helper()
	s, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		tb.Fatal(err)
	}
	total := 0.0
	for line := range strings.Lines(s) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return total
}

// commandStats returns the calls of each Redis command so far, from INFO
// commandstats ("exec" and "multi" count as commands of their own).
func commandStats(tb testing.TB, rdb *redis.Client) map[string]int {
	tb.Helper()
	s, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		name, rest, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "cmdstat_"), ":calls=")
		if !ok {
			continue
		}
		calls, _, _ := strings.Cut(rest, ",")
		out[name], _ = strconv.Atoi(calls)
	}
	return out
}
