package e2e

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/outcome"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// readmeProgram returns the Go program of the README's "Your own handlers"
// section: its first ```go block.
func readmeProgram(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var prog []string
	in, block := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			in = line == "## Your own handlers"
		case in && !block && line == "```go" && prog == nil:
			block = true
		case block && line == "```":
			return strings.Join(prog, "\n") + "\n"
		case block:
			prog = append(prog, line)
		}
	}
	t.Fatal(`README has no go block under "## Your own handlers"`)
	return ""
}

// buildOutside builds program as the main package of a new module in a
// temporary directory outside this one, whose go.mod requires this module
// through a replace directive, as a team adopting stripeq would. It
// builds offline (GOPROXY=off): everything it needs is this module's
// requirements, in the module cache, checked against this module's go.sum.
func buildOutside(t *testing.T, program string) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ours, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goMod := "module example.com/myworker\n\ngo 1.26.4\n\nrequire github.com/stripeq/stripeq v0.0.0\n\nrequire (\n" +
		requirements(string(ours)) + ")\n\nreplace github.com/stripeq/stripeq => " + root + "\n"
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"go.mod": []byte(goMod), "go.sum": sum, "main.go": []byte(program)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(dir, "myworker")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOPROXY=off", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build of the README's program in %s: %v\n%s", dir, err, out)
	}
	return bin
}

// requirements returns the require lines of goMod (this module's go.mod),
// one "path version" a line. The outside module lists them all, as `go mod
// tidy` would once it imports stripeq: with every module it builds from
// listed, the go command reads no go.mod beyond them (lazy loading), so the
// build needs nothing but what this module's own build put in the module
// cache. Without them it would resolve the whole graph, including go.mod
// files of old versions (golang.org/x/sys@v0.6.0, required by go-isatty)
// that a cache filled by this module's build does not hold.
func requirements(goMod string) string {
	var b strings.Builder
	block := false
	for line := range strings.Lines(goMod) {
		line, _, _ = strings.Cut(line, "//")
		line = strings.TrimSpace(line)
		switch {
		case line == "require (":
			block = true
		case block && line == ")":
			block = false
		case block && line != "":
			b.WriteString("\t" + line + "\n")
		case strings.HasPrefix(line, "require ") && !strings.HasSuffix(line, "("):
			b.WriteString("\t" + strings.TrimPrefix(line, "require ") + "\n")
		}
	}
	return b.String()
}

// TestOwnHandlersOutsideTheModule builds the README's program (one handler
// of its own, for invoice.payment_succeeded, plus the built-ins) as a
// module outside this one, runs it with the real api against real Redis,
// and posts signed events, each twice, plus a Console-style re-run: its
// handler's side effect happens once per event, the Console's Result shows
// its outcome, and the built-in records are still written.
func TestOwnHandlersOutsideTheModule(t *testing.T) {
	bin := buildOutside(t, readmeProgram(t))
	db := redistest.New(t)
	apiAddr, metricsAddr := proctest.FreeAddr(t), proctest.FreeAddr(t)
	env := map[string]string{
		"REDIS_URL":             db.URL,
		"STRIPE_WEBHOOK_SECRET": stripetest.Secret,
		"STRIPE_EVENTS":         strings.Join(append(events.Handled(), "invoice.payment_succeeded"), ","),
		"API_ADDR":              apiAddr,
		"METRICS_ADDR":          metricsAddr,
		"RETRY_BASE_DELAY":      "1s",
	}
	// The api reads METRICS_ADDR too: give it its own.
	api := proctest.Start(t, "api", proctest.Binary(t, "api"), with(env, "METRICS_ADDR", proctest.FreeAddr(t)))
	own := proctest.Start(t, "myworker", bin, env)
	proctest.WaitHTTP(t, api, "http://"+apiAddr+"/healthz", 30*time.Second)
	proctest.WaitHTTP(t, own, "http://"+metricsAddr+"/healthz", 30*time.Second)

	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	var bodies [][]byte
	var grants []string
	for i := range 3 {
		id := fmt.Sprintf("evt_own_paid_%d", i)
		grants = append(grants, id)
		bodies = append(bodies, stripetest.Edit(stripetest.Event("invoice.paid", id, t0.Add(time.Duration(i)*time.Second)), func(e map[string]any) {
			e["type"] = "invoice.payment_succeeded"
		}))
	}
	for _, typ := range []string{"customer.created", "customer.subscription.created", "invoice.paid"} {
		bodies = append(bodies, stripetest.Fixture(typ))
	}
	base := "http://" + apiAddr
	for _, want := range []string{"Received", "duplicate"} { // Stripe delivers twice
		for _, body := range bodies {
			if a := send(loadClient(), base, body); a.status != 200 || a.message != want {
				t.Fatalf("delivery answered %d %q, want 200 %q", a.status, a.message, want)
			}
		}
	}
	ctx := context.Background()
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	waitFor(t, 30*time.Second, "every event handled", func() bool {
		info, err := insp.GetQueueInfo(stripetask.DefaultQueue)
		return err == nil && info.Completed == len(bodies)
	})

	// An operator re-runs the first from the Console: a copy with its own
	// task ID and the same event.
	orig, err := insp.GetTaskInfo(stripetask.DefaultQueue, grants[0])
	if err != nil {
		t.Fatal(err)
	}
	rerun := asynq.NewTaskWithHeaders(orig.Type, orig.Payload, maps.Clone(orig.Headers),
		asynq.TaskID(grants[0]+":rerun:1"), asynq.Queue(stripetask.DefaultQueue), asynq.Retention(time.Hour))
	if _, err := asynq.NewClientFromRedisClient(db.Client).Enqueue(rerun); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the re-run handled", func() bool {
		info, err := insp.GetQueueInfo(stripetask.DefaultQueue)
		return err == nil && info.Completed == len(bodies)+1
	})

	// The handler's side effect: once per event, re-run and duplicates
	// included.
	got := db.Client.LRange(ctx, "myapp:grants", 0, -1).Val()
	slices.Sort(got)
	if !slices.Equal(got, grants) {
		t.Errorf("grants %v, want each event once: %v", got, grants)
	}
	for _, id := range grants {
		info, err := insp.GetTaskInfo(stripetask.DefaultQueue, id)
		if err != nil {
			t.Errorf("task %s: %v", id, err)
			continue
		}
		if o, _ := outcome.Parse(info.Result); o.Summary != "granted to cus_stripeq_demo" || info.Retried != 0 {
			t.Errorf("task %s: result %s, retried %d; want the outcome as its result, no retry", id, info.Result, info.Retried)
		}
	}
	// The built-ins still keep their records.
	if c := db.Client.HGetAll(ctx, records.CustomerKey("cus_stripeq_demo")).Val(); c["email"] != "jenny.rosen@example.com" || c["delinquent"] != "false" || c["subscription_status"] != "active" {
		t.Errorf("customer record = %v", c)
	}
	if s := db.Client.HGet(ctx, records.SubscriptionKey("sub_stripeq_demo"), "status").Val(); s != "active" {
		t.Errorf("subscription status = %q, want active", s)
	}
	if n := db.Client.XLen(ctx, records.NotificationsStream).Val(); n != 1 {
		t.Errorf("%d notifications, want the receipt of invoice.paid", n)
	}

	if took, clean := own.Stop(40 * time.Second); !clean {
		t.Errorf("the program did not exit within 40s of SIGTERM")
	} else if err := own.ExitErr(); err != nil {
		t.Errorf("the program exited after %v with %v", took, err)
	}
}
