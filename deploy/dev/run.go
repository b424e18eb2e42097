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

// run starts the local stack: api, worker and dashboard built from this
// module, against REDIS_URL or an embedded Redis, and with -demo the
// demo's SMTP server, receiving app and customer's story. It runs until
// ctx ends or a command exits, then stops them all.
func run(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	demo := fs.Bool("demo", false, "also play a customer's lifecycle through the stack, with retried notifications and an archived failure")
	outage := fs.Duration("smtp-outage", 20*time.Second, "with -demo: how long the demo's SMTP server stays down")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s := &devStack{out: out, env: readEnv(getenv)}
	defer s.close()
	if *demo {
		if err := s.startDemoServices(); err != nil {
			return err
		}
	}
	s.setDefaults()
	if err := s.openRedis(ctx, getenv); err != nil {
		return err
	}
	bins, err := build(ctx, out)
	if err != nil {
		return err
	}
	s.onClose(func() { os.RemoveAll(filepath.Dir(bins["api"])) })
	if err := s.startCommands(bins); err != nil {
		return err
	}
	if err := s.waitReady(ctx); err != nil {
		return err
	}
	s.printBanner()
	if *demo {
		go func() {
			if err := playDemo(ctx, s.env, s.sink, *outage, s.say); err != nil && ctx.Err() == nil {
				s.say("the demo stopped: %v", err)
			}
		}()
	}
	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "dev: stopping…")
		return nil
	case name := <-s.exited:
		return fmt.Errorf("%s exited; stopping the stack", name)
	}
}

// devStack is what run starts, step by step, and stops in reverse order
// (close).
type devStack struct {
	out   io.Writer
	outMu sync.Mutex // one line at a time from the commands and the demo
	env   map[string]string
	// notes say where the banner's secret, password and Redis come from.
	secretNote, passwordNote, redisNote string
	sink                                *mailSink // the demo's SMTP server
	procs                               []*proc
	exited                              chan string // a command's name when it exits
	closers                             []func()
}

// readEnv returns the settings dev passes on to the commands, as set.
func readEnv(getenv func(string) string) map[string]string {
	env := map[string]string{}
	for _, k := range []string{"REDIS_URL", "STRIPE_WEBHOOK_SECRET", "API_ADDR", "DASHBOARD_ADDR", "DASHBOARD_USER", "DASHBOARD_PASSWORD", "SMTP_URL", "RETRY_BASE_DELAY", "DASHBOARD_URL", "DESTINATION_URL", "DESTINATION_SECRET"} {
		env[k] = getenv(k)
	}
	return env
}

// onClose adds f to what close runs, before what was added earlier.
func (s *devStack) onClose(f func()) { s.closers = append(s.closers, f) }

// close stops what run started, the latest first.
func (s *devStack) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}

// say prints a line of the demo's.
func (s *devStack) say(format string, args ...any) {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	fmt.Fprintf(s.out, "%-9s | %s\n", "demo", fmt.Sprintf(format, args...))
}

// startDemoServices starts the demo's SMTP server and, unless
// DESTINATION_URL is set, its receiving app, and points the settings the
// user left unset at them.
func (s *devStack) startDemoServices() error {
	sink, err := startMailSink(s.say)
	if err != nil {
		return fmt.Errorf("start the demo's SMTP server: %w", err)
	}
	s.sink = sink
	s.onClose(sink.stop)
	if s.env["SMTP_URL"] == "" {
		s.env["SMTP_URL"] = "smtp://" + sink.addr
	}
	if s.env["RETRY_BASE_DELAY"] == "" {
		s.env["RETRY_BASE_DELAY"] = "5s" // retries the demo can show in a minute
	}
	if s.env["DESTINATION_URL"] == "" {
		app, err := startSampleApp(s.say)
		if err != nil {
			return fmt.Errorf("start the demo's receiving app: %w", err)
		}
		s.onClose(app.stop)
		s.env["DESTINATION_URL"], s.env["DESTINATION_SECRET"] = app.url, app.secret
		s.say("a sample receiving app listens at %s: the worker forwards every event to it, signed (Standard Webhooks)", app.url)
	}
	return nil
}

// setDefaults fills in the addresses, the development signing secret and
// a dashboard login where the user set none.
func (s *devStack) setDefaults() {
	env := s.env
	if env["API_ADDR"] == "" {
		env["API_ADDR"] = "127.0.0.1:8080"
	}
	if env["DASHBOARD_ADDR"] == "" {
		env["DASHBOARD_ADDR"] = "127.0.0.1:8081"
	}
	if env["DASHBOARD_URL"] == "" {
		env["DASHBOARD_URL"] = "http://" + env["DASHBOARD_ADDR"] // for the links in alerts
	}
	s.secretNote = "from STRIPE_WEBHOOK_SECRET"
	if env["STRIPE_WEBHOOK_SECRET"] == "" {
		env["STRIPE_WEBHOOK_SECRET"] = eventsender.DevSecret
		s.secretNote = eventsender.DevSecret + " (the public development secret; set STRIPE_WEBHOOK_SECRET to use your own)"
	}
	s.passwordNote = "from DASHBOARD_PASSWORD"
	if env["DASHBOARD_USER"] == "" && env["DASHBOARD_PASSWORD"] == "" {
		env["DASHBOARD_USER"], env["DASHBOARD_PASSWORD"] = "admin", rand.Text()
		s.passwordNote = env["DASHBOARD_PASSWORD"] + " (made for this run)"
	}
}

// openRedis uses the Redis at REDIS_URL when it answers, and otherwise
// starts an embedded one and points REDIS_URL at it.
func (s *devStack) openRedis(ctx context.Context, getenv func(string) string) error {
	opt, err := redisconn.Parse(s.env["REDIS_URL"])
	if err != nil {
		return fmt.Errorf("REDIS_URL: %w", err)
	}
	s.redisNote = redisconn.Redacted(s.env["REDIS_URL"])
	redis.SetLogger(quiet{}) // a failed probe is expected and reported below
	if ping(ctx, opt) == nil {
		return nil
	}
	mr, err := startMiniredis(ctx, s.env["REDIS_URL"])
	if err != nil {
		return err
	}
	s.onClose(mr.Close)
	s.env["REDIS_URL"] = "redis://" + mr.Addr() + "/0"
	s.redisNote = s.env["REDIS_URL"] + " — EMBEDDED in-memory Redis (miniredis): all data is lost when dev stops"
	fmt.Fprintf(s.out, "dev: nothing answers at %s; started an embedded in-memory Redis at %s.\n     Its data is LOST when dev exits. Start redis-server and set REDIS_URL to keep it.\n",
		redisconn.Redacted(getenv("REDIS_URL")), mr.Addr())
	return nil
}

// startCommands starts the built commands with the stack's settings, their
// output prefixed with their names; close stops them.
func (s *devStack) startCommands(bins map[string]string) error {
	s.exited = make(chan string, len(commands))
	s.onClose(func() { stopAll(s.procs) })
	for _, name := range commands {
		cmd := exec.Command(bins[name])
		cmd.Env = os.Environ()
		for k, v := range s.env {
			if v != "" {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
		}
		cmd.Env = append(cmd.Env, "LOG_FORMAT=text")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = cmd.Stdout
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		p := &proc{cmd: cmd, done: make(chan struct{})}
		s.procs = append(s.procs, p)
		go prefix(s.out, &s.outMu, name, stdout)
		go func() { cmd.Wait(); close(p.done); s.exited <- name }()
	}
	return nil
}

// waitReady waits until the api and the dashboard answer.
func (s *devStack) waitReady(ctx context.Context) error {
	ready := map[string]string{
		"api":       "http://" + s.env["API_ADDR"] + "/healthz",
		"dashboard": "http://" + s.env["DASHBOARD_ADDR"] + "/healthz",
	}
	for name, u := range ready {
		if err := waitHTTP(ctx, u, 30*time.Second, s.exited); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// printBanner tells the user where everything is.
func (s *devStack) printBanner() {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	env := s.env
	fmt.Fprintf(s.out, `
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

`, env["API_ADDR"], s.secretNote, env["DASHBOARD_ADDR"], env["DASHBOARD_USER"], s.passwordNote, s.redisNote, env["API_ADDR"])
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
