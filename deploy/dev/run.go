package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/stripeq/stripeq/pkg/eventsender"
	"github.com/stripeq/stripeq/pkg/redisconn"
)

// commands are the three binaries the stack runs, in start order.
var commands = []string{"api", "worker", "dashboard"}

func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	demo := fs.Bool("demo", false, "also play a customer's lifecycle through the stack, with retried notifications and an archived failure")
	outage := fs.Duration("smtp-outage", 20*time.Second, "with -demo: how long the demo's SMTP server stays down")
	if err := fs.Parse(args); err != nil {
		return err
	}
	env := map[string]string{}
	for _, k := range []string{"REDIS_URL", "STRIPE_WEBHOOK_SECRET", "API_ADDR", "DASHBOARD_ADDR", "DASHBOARD_USER", "DASHBOARD_PASSWORD", "SMTP_URL", "RETRY_BASE_DELAY", "DASHBOARD_URL", "DESTINATION_URL", "DESTINATION_SECRET"} {
		env[k] = getenv(k)
	}
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprintf(out, "%-9s | %s\n", "demo", fmt.Sprintf(format, args...))
	}
	var sink *mailSink
	if *demo {
		var err error
		if sink, err = startMailSink(say); err != nil {
			return fmt.Errorf("start the demo's SMTP server: %w", err)
		}
		defer sink.stop()
		if env["SMTP_URL"] == "" {
			env["SMTP_URL"] = "smtp://" + sink.addr
		}
		if env["RETRY_BASE_DELAY"] == "" {
			env["RETRY_BASE_DELAY"] = "5s" // retries the demo can show in a minute
		}
		if env["DESTINATION_URL"] == "" {
			app, err := startSampleApp(say)
			if err != nil {
				return fmt.Errorf("start the demo's receiving app: %w", err)
			}
			defer app.stop()
			env["DESTINATION_URL"], env["DESTINATION_SECRET"] = app.url, app.secret
			say("a sample receiving app listens at %s: the worker forwards every event to it, signed (Standard Webhooks)", app.url)
		}
	}
	if env["API_ADDR"] == "" {
		env["API_ADDR"] = "127.0.0.1:8080"
	}
	if env["DASHBOARD_ADDR"] == "" {
		env["DASHBOARD_ADDR"] = "127.0.0.1:8081"
	}
	if env["DASHBOARD_URL"] == "" {
		env["DASHBOARD_URL"] = "http://" + env["DASHBOARD_ADDR"] // for the links in alerts
	}
	secretNote := "from STRIPE_WEBHOOK_SECRET"
	if env["STRIPE_WEBHOOK_SECRET"] == "" {
		env["STRIPE_WEBHOOK_SECRET"] = eventsender.DevSecret
		secretNote = eventsender.DevSecret + " (the public development secret; set STRIPE_WEBHOOK_SECRET to use your own)"
	}
	passwordNote := "from DASHBOARD_PASSWORD"
	if env["DASHBOARD_USER"] == "" && env["DASHBOARD_PASSWORD"] == "" {
		env["DASHBOARD_USER"], env["DASHBOARD_PASSWORD"] = "admin", rand.Text()
		passwordNote = env["DASHBOARD_PASSWORD"] + " (made for this run)"
	}

	// Redis: the configured one, or an embedded one.
	opt, err := redisconn.Parse(env["REDIS_URL"])
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	redisNote := redisconn.Redacted(env["REDIS_URL"])
	redis.SetLogger(quiet{}) // a failed probe is expected and reported below
	if err := ping(ctx, opt); err != nil {
		mr, err := startMiniredis(ctx, env["REDIS_URL"])
		if err != nil {
			return err
		}
		defer mr.Close()
		env["REDIS_URL"] = "redis://" + mr.Addr() + "/0"
		redisNote = env["REDIS_URL"] + " — EMBEDDED in-memory Redis (miniredis): all data is lost when dev stops"
		fmt.Fprintf(out, "dev: nothing answers at %s; started an embedded in-memory Redis at %s.\n     Its data is LOST when dev exits. Start redis-server and set REDIS_URL to keep it.\n",
			redisconn.Redacted(getenv("REDIS_URL")), mr.Addr())
	}

	bins, err := build(ctx, out)
	if err != nil {
		return err
	}
	defer os.RemoveAll(filepath.Dir(bins["api"]))

	var procs []*proc
	exited := make(chan string, len(commands))
	for _, name := range commands {
		cmd := exec.Command(bins[name])
		cmd.Env = os.Environ()
		for k, v := range env {
			if v != "" {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
		}
		cmd.Env = append(cmd.Env, "LOG_FORMAT=text")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			stopAll(procs)
			return fmt.Errorf("start %s: %w", name, err)
		}
		p := &proc{cmd: cmd, done: make(chan struct{})}
		procs = append(procs, p)
		go prefix(out, &outMu, name, stdout)
		go func() { cmd.Wait(); close(p.done); exited <- name }()
	}
	defer stopAll(procs)

	ready := map[string]string{
		"api":       "http://" + env["API_ADDR"] + "/healthz",
		"dashboard": "http://" + env["DASHBOARD_ADDR"] + "/healthz",
	}
	for name, u := range ready {
		if err := waitHTTP(ctx, u, 30*time.Second, exited); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	outMu.Lock()
	fmt.Fprintf(out, `
  stripeq is running.

  Webhook endpoint  POST http://%s/webhooks/stripe
  Signing secret    %s
  Dashboard         http://%s/   (task monitor at /monitoring/)
  Dashboard login   %s / %s
  Redis             %s

  Forward real test events with the Stripe CLI:
    stripe listen --forward-to %s/webhooks/stripe
  and restart with STRIPE_WEBHOOK_SECRET set to the whsec_… it prints.
  Press Ctrl-C to stop.

`, env["API_ADDR"], secretNote, env["DASHBOARD_ADDR"], env["DASHBOARD_USER"], passwordNote, redisNote, env["API_ADDR"])
	outMu.Unlock()

	if *demo {
		go func() {
			if err := playDemo(ctx, env, sink, *outage, say); err != nil && ctx.Err() == nil {
				say("the demo stopped: %v", err)
			}
		}()
	}
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "dev: stopping…")
		return nil
	case name := <-exited:
		return fmt.Errorf("%s exited; stopping the stack", name)
	}
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// ping reports whether a Redis answers at opt within a second.
func ping(ctx context.Context, opt asynq.RedisConnOpt) error {
	c := redisconn.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// startMiniredis starts an in-memory Redis on the host and port of rawURL
// when that is a free loopback address, else on a free port. Its clock
// follows real time, so that keys with a TTL expire.
func startMiniredis(ctx context.Context, rawURL string) (*miniredis.Miniredis, error) {
	mr := miniredis.NewMiniRedis()
	addr := "127.0.0.1:6379"
	if u, err := url.Parse(rawURL); err == nil && u.Host != "" {
		addr = u.Host
	}
	if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" && host != "localhost" {
		addr = "127.0.0.1:0"
	}
	if err := mr.StartAddr(addr); err != nil {
		if err := mr.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("start the embedded Redis: %w", err)
		}
	}
	mr.SetTime(time.Now())
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				mr.SetTime(now)
				mr.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
	return mr, nil
}

// build compiles the three commands into a temporary directory.
func build(ctx context.Context, out io.Writer) (map[string]string, error) {
	dir, err := os.MkdirTemp("", "stripeq-dev-")
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(out, "dev: building api, worker and dashboard…")
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil || len(strings.TrimSpace(string(gomod))) == 0 || strings.TrimSpace(string(gomod)) == os.DevNull {
		return nil, errors.New("run dev inside the stripeq module (go env GOMOD finds none)")
	}
	// One go build links the three at once.
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	bins := map[string]string{}
	for _, name := range commands {
		bins[name] = filepath.Join(dir, name)
		args = append(args, "./"+name)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("go build: %w", err)
	}
	return bins, nil
}

// prefix copies r to out line by line, each line prefixed with name.
func prefix(out io.Writer, mu *sync.Mutex, name string, r io.Reader) {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		mu.Lock()
		fmt.Fprintf(out, "%-9s | %s\n", name, s.Text())
		mu.Unlock()
	}
}

// waitHTTP waits until u answers, a process exits, or timeout passes.
func waitHTTP(ctx context.Context, u string, timeout time.Duration, exited <-chan string) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case name := <-exited:
			return fmt.Errorf("%s exited during start-up", name)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("did not answer " + u + " within " + timeout.String())
}

// proc is a started command; done is closed when it has exited.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// stopAll sends SIGTERM to every process and waits for them to exit, for
// longer than the worker's default shutdown timeout of 30 s.
func stopAll(procs []*proc) {
	for _, p := range procs {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(35 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
}
