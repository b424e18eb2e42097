package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/redistest"
)

// childEnv names the environment variable that makes this binary serve a
// baseline ("receiver" or "worker") instead of running the benchmarks: the
// baselines run as processes of their own, like the api and the worker.
const childEnv = "STRIPEQ_BENCH_CHILD"

// build builds the api and the worker into dir (the run's own, so that
// concurrent runs never replace each other's binaries) and returns their
// paths by name.
func build(ctx context.Context, dir string) (map[string]string, error) {
	return proctest.Build(ctx, filepath.Join(dir, "bin"), "api", "worker")
}

// proc is a process this harness started: it dies with the harness
// (Pdeathsig) and writes its output to a file of the run's directory.
type proc struct {
	*proctest.Proc
	log string
}

// startProc starts the binary at path with env (NAME=value) and args.
func startProc(name, path, dir string, env []string, args ...string) (*proc, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	p, err := proctest.Launch(name, path, vars, f, args...)
	if err != nil {
		f.Close()
		return nil, err
	}
	go func() {
		<-p.Done()
		f.Close()
	}()
	return &proc{Proc: p, log: logPath}, nil
}

// stop sends SIGTERM and kills the process after 10 s.
func (p *proc) stop() { p.Stop(10 * time.Second) }

// tail returns the last lines of the process's output, for errors.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}

// waitHTTP waits until url answers any status, for up to timeout.
func waitHTTP(ctx context.Context, p *proc, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := p.WaitHTTP(ctx, url); err != nil {
		return fmt.Errorf("%w:\n%s", err, p.tail())
	}
	return nil
}

// redisServer is the harness's own redis-server, without persistence.
type redisServer struct {
	*redistest.Server
	rdb *redis.Client
}

func startRedis(ctx context.Context, dir string) (*redisServer, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, errors.New("redis-server is not on PATH (apt-get install redis-server)")
	}
	srv, err := redistest.StartServer(dir)
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	if err := rdb.Ping(ctx).Err(); err != nil {
		srv.Kill()
		return nil, err
	}
	return &redisServer{Server: srv, rdb: rdb}, nil
}

// flush empties Redis between runs, so that every run starts alike.
func (r *redisServer) flush(ctx context.Context) error {
	return r.rdb.FlushAll(ctx).Err()
}

// cpuTime returns the CPU time (user + system) a process has used so far,
// from /proc; 0 when it cannot be read.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 14th and 15th fields of the whole line.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// machineBusy returns the CPU time all cores have spent busy so far, from
// the first line of /proc/stat; 0 when it cannot be read.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		if i == 3 || i == 4 {
			continue
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTicks
}

// clockTicks is the kernel's USER_HZ, 100 on Linux.
const clockTicks = 100

// cpuMeter measures the CPU time of processes over a run.
type cpuMeter struct {
	pids  []int
	start []time.Duration
}

func meterCPU(pids ...int) *cpuMeter {
	m := &cpuMeter{pids: pids}
	for _, p := range pids {
		m.start = append(m.start, cpuTime(p))
	}
	return m
}

// total returns the CPU time of all the processes since meterCPU.
func (m *cpuMeter) total() time.Duration {
	var t time.Duration
	for i, p := range m.pids {
		t += cpuTime(p) - m.start[i]
	}
	return t
}

// perEvent returns each process's CPU time since meterCPU divided by n, in µs.
func (m *cpuMeter) perEvent(n int) []float64 {
	out := make([]float64, len(m.pids))
	for i, p := range m.pids {
		out[i] = float64(cpuTime(p)-m.start[i]) / float64(time.Microsecond) / float64(max(1, n))
	}
	return out
}

// memoryStats returns MEMORY STATS's figures, db.0's prefixed "db.0.":
// total.allocated, clients.normal, db.0.overhead.hashtable.main, ….
func (r *redisServer) memoryStats(ctx context.Context) (map[string]int64, error) {
	v, err := r.rdb.Do(ctx, "MEMORY", "STATS").Result()
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case []any:
			for i := 0; i+1 < len(v); i += 2 {
				if k, ok := v[i].(string); ok {
					walk(prefix+k+".", v[i+1])
				}
			}
		case map[any]any:
			for k, x := range v {
				if k, ok := k.(string); ok {
					walk(prefix+k+".", x)
				}
			}
		case int64:
			out[strings.TrimSuffix(prefix, ".")] = v
		}
	}
	walk("", v)
	return out, nil
}
