// Package proctest builds stripeq's real binaries and runs them as
// processes, for tests whose behaviour crosses processes: end to end,
// crashes, restarts.
//
// The functions that take a testing.TB fail the test on error and clean up
// after it. Each has a form without a test ([Build], [Launch],
// [ModuleRoot], [PickFreeAddr], [Proc.WaitHTTP]) for a harness such as
// deploy/bench, which returns errors and stops what it started itself.
//
// Test support internal to this module, with no compatibility promise;
// the supported test kit for your own handlers is pkg/stripeq/stripeqtest.
package proctest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/poll"
)

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// Binary builds the command in the module directory dir (for example
// "api") once per test process and returns the path of the binary. The
// binaries go to bin/test/ at the module root, which git ignores.
func Binary(t testing.TB, dir string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[dir]; ok {
		return p
	}
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	paths, err := Build(context.Background(), filepath.Join(root, "bin", "test"), dir)
	if err != nil {
		t.Fatal(err)
	}
	built[dir] = paths[dir]
	return paths[dir]
}

// Build builds the commands in the module directories dirs (for example
// "api", "worker") into outDir and returns each binary's path by dir.
func Build(ctx context.Context, outDir string, dirs ...string) (map[string]string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	paths := map[string]string{}
	args := []string{"build", "-o", outDir + string(filepath.Separator)}
	for _, dir := range dirs {
		paths[dir] = filepath.Join(outDir, filepath.Base(dir))
		args = append(args, "./"+dir)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("proctest: go build %s: %v\n%s", strings.Join(args[3:], " "), err, b)
	}
	return paths, nil
}

// ModuleRoot returns the directory of stripeq's go.mod.
func ModuleRoot() (string, error) {
	b, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(b))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("proctest: cannot find the module root (go env GOMOD): %v", err)
	}
	return filepath.Dir(gomod), nil
}

// Proc is a running binary.
type Proc struct {
	Name string

	out  Buffer
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start runs the binary at path with env added to a minimal environment
// (PATH and HOME). Its output is kept and shown when the test fails. At the
// end of the test it gets SIGTERM, then SIGKILL after 10 s.
func Start(t testing.TB, name, path string, env map[string]string) *Proc {
	t.Helper()
	return StartArgs(t, name, path, env)
}

// StartArgs is Start with command-line arguments.
func StartArgs(t testing.TB, name, path string, env map[string]string, args ...string) *Proc {
	t.Helper()
	p, err := Launch(name, path, env, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("output of %s:\n%s", name, p.Output())
		}
	})
	return p
}

// Launch is [StartArgs] without a test: the caller must Stop the process.
// Its output goes to out, or when out is nil is kept for [Proc.Output].
// The process is killed if the caller dies.
func Launch(name, path string, env map[string]string, out io.Writer, args ...string) (*Proc, error) {
	p := &Proc{Name: name, done: make(chan struct{})}
	cmd := exec.Command(path, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "LOG_FORMAT=json"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out == nil {
		out = &p.out
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("proctest: start %s: %w", name, err)
	}
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Buffer is a bytes.Buffer that a process, or a command's run function in
// the test's process, may write to while the test reads it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends b.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Output returns everything the process has written so far.
func (p *Proc) Output() string { return p.out.String() }

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) { p.cmd.Process.Signal(sig) }

// Pid returns the process ID, as asynq reports it in its server list.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Kill sends SIGKILL, as a crash would, and waits for the process to end.
func (p *Proc) Kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// Stop sends SIGTERM and waits up to grace for the process to exit, then
// kills it. It returns how long the process took to exit and whether it
// exited by itself.
func (p *Proc) Stop(grace time.Duration) (time.Duration, bool) {
	start := time.Now()
	select {
	case <-p.done:
		return 0, true
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return time.Since(start), true
	case <-time.After(grace):
		p.Kill()
		return time.Since(start), false
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// ExitErr returns the error of the process's exit, once Done is closed.
func (p *Proc) ExitErr() error { <-p.done; return p.err }

// FreeAddr returns a loopback address (127.0.0.1:port) that was free a
// moment ago: for an address where nothing listens, such as an alert
// webhook that must fail. Another process may take it at any time, so a
// command that must listen is started on port 0 instead, and the test
// learns its address from its log ([Logged], [APIAddr], [DashboardAddr],
// [MetricsAddr]).
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := PickFreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// PickFreeAddr is [FreeAddr] without a test.
func PickFreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("proctest: find a free port: %w", err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

// ErrExited is returned by [Proc.WaitHTTP] when the process exits first.
var ErrExited = errors.New("proctest: the process exited")

// WaitHTTP waits until url answers any HTTP status, or fails the test after
// timeout. It also fails if p exits first.
func WaitHTTP(t testing.TB, p *Proc, url string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := p.WaitHTTP(ctx, url); err != nil {
		t.Fatalf("%v\n%s", err, p.Output())
	}
}

// WaitHTTP waits until url answers any HTTP status. It returns an error
// wrapping ErrExited when p exits first, or ctx's error when ctx ends.
func (p *Proc) WaitHTTP(ctx context.Context, url string) error {
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%w before %s answered: %s: %v", ErrExited, url, p.Name, p.err)
		case <-ctx.Done():
			return fmt.Errorf("proctest: %s did not answer: %w", url, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Logged waits until p has written a JSON log record whose msg is msg,
// and returns the value of key in it, as a string; it fails the test when
// p exits first or after timeout. A command started on port 0 (API_ADDR,
// DASHBOARD_ADDR, METRICS_ADDR=127.0.0.1:0) binds a free port and logs it,
// so the test learns its address from the process itself instead of
// picking a port, closing it and hoping it stays free:
//
//	api := proctest.Start(t, "api", bin, map[string]string{"API_ADDR": "127.0.0.1:0", …})
//	addr := proctest.Logged(t, api, "api listening", "addr", 30*time.Second)
func Logged(t testing.TB, p *Proc, msg, key string, timeout time.Duration) string {
	t.Helper()
	return waitLog(t, p, fmt.Sprintf("%q with %s", msg, key), timeout, func(out string) (string, bool) {
		return LoggedIn(out, msg, key)
	})
}

// LoggedIn is [Logged] for output already in hand, such as a command's run
// function writing to a buffer in the test's process: the value of key in
// the first JSON record of out whose msg is msg, and whether there is one.
func LoggedIn(out, msg, key string) (string, bool) {
	for rec := range records(out) {
		if rec["msg"] != msg {
			continue
		}
		if v, ok := rec[key]; ok {
			return fmt.Sprint(v), true
		}
	}
	return "", false
}

// APIAddr waits until the api p has logged that it listens, and returns
// its address (host:port); see [Logged].
func APIAddr(t testing.TB, p *Proc) string {
	t.Helper()
	return Logged(t, p, "api listening", "addr", 30*time.Second)
}

// DashboardAddr waits until the dashboard p has logged that it listens,
// and returns its address (host:port); see [Logged].
func DashboardAddr(t testing.TB, p *Proc) string {
	t.Helper()
	u := Logged(t, p, "dashboard listening", "url", 30*time.Second)
	return strings.TrimSuffix(strings.TrimPrefix(u, "http://"), "/")
}

// metricsLine is how the api and the worker log where they serve
// /metrics.
var metricsLine = regexp.MustCompile(`^metrics (?:and health )?at http://([^/]+)/metrics`)

// MetricsAddr waits until p, the api or the worker, has logged where it
// serves /metrics, and returns that address (host:port), for a command
// started with METRICS_ADDR=127.0.0.1:0; see [Logged].
func MetricsAddr(t testing.TB, p *Proc) string {
	t.Helper()
	return waitLog(t, p, "its metrics address", 30*time.Second, func(out string) (string, bool) {
		for rec := range records(out) {
			if m := metricsLine.FindStringSubmatch(fmt.Sprint(rec["msg"])); m != nil {
				return m[1], true
			}
		}
		return "", false
	})
}

// waitLog polls p's output with find until it finds what it looks for,
// and fails the test when p exits first or after timeout.
func waitLog(t testing.TB, p *Proc, what string, timeout time.Duration, find func(out string) (string, bool)) string {
	t.Helper()
	return poll.Value(t, timeout, p.Name+" to log "+what, func() (string, error) {
		if v, ok := find(p.Output()); ok {
			return v, nil
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before logging %s: %v", p.Name, what, p.err)
		default:
		}
		return "", errors.New("not logged yet")
	})
}

// records yields the JSON log records of out, skipping other lines.
func records(out string) func(yield func(map[string]any) bool) {
	return func(yield func(map[string]any) bool) {
		for line := range strings.Lines(out) {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && !yield(rec) {
				return
			}
		}
	}
}
