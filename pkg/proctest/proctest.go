// Package proctest builds stripeq's real binaries and runs them as
// processes, for tests whose behaviour crosses processes: end to end,
// crashes, restarts.
package proctest

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
	root := moduleRoot(t)
	out := filepath.Join(root, "bin", "test", filepath.Base(dir))
	cmd := exec.Command("go", "build", "-o", out, "./"+dir)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("proctest: go build ./%s: %v\n%s", dir, err, b)
	}
	built[dir] = out
	return out
}

func moduleRoot(t testing.TB) string {
	t.Helper()
	b, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(b)) == "" {
		t.Fatalf("proctest: cannot find the module root: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(b)))
}

// Proc is a running binary.
type Proc struct {
	t    testing.TB
	Name string

	mu   sync.Mutex
	out  bytes.Buffer
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
	p := &Proc{t: t, Name: name, done: make(chan struct{})}
	cmd := exec.Command(path, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "LOG_FORMAT=json"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout = (*lockedWriter)(p)
	cmd.Stderr = (*lockedWriter)(p)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("proctest: start %s: %v", name, err)
	}
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("output of %s:\n%s", name, p.Output())
		}
	})
	return p
}

type lockedWriter Proc

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.Write(b)
}

// Output returns everything the process has written so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

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

// FreeAddr returns a free loopback address (127.0.0.1:port).
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// WaitHTTP waits until url answers any HTTP status, or fails the test after
// timeout. It also fails if p exits first.
func WaitHTTP(t testing.TB, p *Proc, url string, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			return
		}
		select {
		case <-p.done:
			t.Fatalf("proctest: %s exited before %s answered: %v\n%s", p.Name, url, p.err, p.Output())
		case <-ctx.Done():
			t.Fatalf("proctest: %s did not answer within %v\n%s", url, timeout, p.Output())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
