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

	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/records"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/outcome"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// readmeBlock returns the first block of lang (go, sh) of the README's
// "Your own handlers" section.
func readmeBlock(t *testing.T, lang string) string {
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
		case in && !block && line == "```"+lang && prog == nil:
			block = true
		case block && line == "```":
			return strings.Join(prog, "\n") + "\n"
		case block:
			prog = append(prog, line)
		}
	}
	t.Fatalf(`README has no %s block under "## Your own handlers"`, lang)
	return ""
}

// buildOutside builds program as the main package of a new module,
// myworker, in a temporary directory outside this one, beside a clone of
// this module (a link to it, named stripeq), with the README's own
// offline lines (its sh block): as a team adopting stripeq would, on a
// machine that cannot reach the module proxy or the checksum database.
// Everything it needs is this module's requirements, in the module cache
// this module's build filled, checked against this module's go.sum.
func buildOutside(t *testing.T, program string) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	if err := os.Symlink(root, filepath.Join(parent, "stripeq")); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "myworker")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(program), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	for _, step := range append([]string{"go mod init example.com/myworker"}, strings.Split(strings.TrimSpace(readmeBlock(t, "sh")), "\n")...) {
		cmd := exec.Command("sh", "-c", step)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s, in %s: %v\n%s", step, dir, err, out)
		}
	}
	return filepath.Join(dir, "myworker")
}

// TestOwnHandlersOutsideTheModule builds the README's program (the
// built-ins, and beside the built-in handler of invoice.payment_failed one
// of its own that sends a dunning email once per invoice) as a module
// outside this one, with the README's offline lines, runs it with the real
// api and the default STRIPE_EVENTS against real Redis, and posts signed
// events, each twice, three failed attempts at one invoice and one at
// another, plus a Console-style re-run: the dunning email goes once per
// invoice, each execution's result shows both handlers' parts, and the
// built-in records and notices are still written.
func TestOwnHandlersOutsideTheModule(t *testing.T) {
	bin := buildOutside(t, readmeBlock(t, "go"))
	db := redistest.New(t)
	env := map[string]string{
		"REDIS_URL":             db.URL,
		"STRIPE_WEBHOOK_SECRET": stripetest.Secret,
		"API_ADDR":              "127.0.0.1:0", // each logs the port it bound
		"METRICS_ADDR":          "127.0.0.1:0",
		"RETRY_BASE_DELAY":      "1s",
		"LOG_FORMAT":            "json",
	}
	api := proctest.Start(t, "api", proctest.Binary(t, "api"), env)
	own := proctest.Start(t, "myworker", bin, env)
	apiAddr, metricsAddr := proctest.APIAddr(t, api), proctest.MetricsAddr(t, own)
	proctest.WaitHTTP(t, own, "http://"+metricsAddr+"/healthz", 30*time.Second)

	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	var bodies [][]byte
	var failed []string // the invoice.payment_failed events
	for i, attempt := range []struct {
		invoice string
		count   int
	}{{"in_stripeq_demo", 1}, {"in_stripeq_demo", 2}, {"in_stripeq_demo", 3}, {"in_own_other", 1}} {
		id := fmt.Sprintf("evt_own_failed_%d", i)
		failed = append(failed, id)
		bodies = append(bodies, stripetest.Edit(stripetest.Event("invoice.payment_failed", id, t0.Add(time.Duration(i)*time.Second)), func(e map[string]any) {
			stripetest.Object(e)["id"] = attempt.invoice
			stripetest.Object(e)["attempt_count"] = attempt.count
		}))
	}
	for _, typ := range []string{"customer.created", "customer.subscription.created"} {
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
	poll.Until(t, 30*time.Second, "every event handled", func() bool {
		info, err := insp.GetQueueInfo(stripetask.DefaultQueue)
		return err == nil && info.Completed == len(bodies)
	})

	// An operator re-runs the first from the Console: a copy with its own
	// task ID and the same event.
	orig, err := insp.GetTaskInfo(stripetask.DefaultQueue, failed[0])
	if err != nil {
		t.Fatal(err)
	}
	rerun := asynq.NewTaskWithHeaders(orig.Type, orig.Payload, maps.Clone(orig.Headers),
		asynq.TaskID(failed[0]+":rerun:1"), asynq.Queue(stripetask.DefaultQueue), asynq.Retention(time.Hour))
	if _, err := asynq.NewClientFromRedisClient(db.Client).Enqueue(rerun); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 30*time.Second, "the re-run handled", func() bool {
		info, err := insp.GetQueueInfo(stripetask.DefaultQueue)
		return err == nil && info.Completed == len(bodies)+1
	})

	// The program's side effect: once per invoice, attempts, duplicates
	// and the re-run included.
	got := db.Client.LRange(ctx, "myapp:dunning", 0, -1).Val()
	slices.Sort(got)
	if want := []string{"in_own_other", "in_stripeq_demo"}; !slices.Equal(got, want) {
		t.Errorf("dunning emails %v, want one per invoice: %v", got, want)
	}
	// Each execution's result shows both handlers, the built-in first,
	// done; done in an earlier attempt when the execution waited for
	// another's claim of the same invoice's email (OnceFor), which the
	// worker retries without running the built-in handler again.
	emails := map[string]int{}
	for _, id := range append(failed, failed[0]+":rerun:1") {
		info, err := insp.GetTaskInfo(stripetask.DefaultQueue, id)
		if err != nil {
			t.Errorf("task %s: %v", id, err)
			continue
		}
		o, _ := outcome.Parse(info.Result)
		done := func(h outcome.Handler) bool {
			return h.Status == outcome.HandlerDone || h.Status == outcome.HandlerDoneBefore
		}
		if len(o.Handlers) != 2 || o.Handlers[0].Name != "builtin" || o.Handlers[1].Name != "dunning" ||
			!done(o.Handlers[0]) || o.Handlers[1].Status != outcome.HandlerDone || info.Retried != 0 {
			t.Errorf("task %s: result %s, retried %d; want both handlers done", id, info.Result, info.Retried)
			continue
		}
		if s, ok := strings.CutPrefix(o.Handlers[1].Summary, "dunning email for "); ok {
			emails[s]++
		}
	}
	if emails["in_stripeq_demo"] != 1 || emails["in_own_other"] != 1 {
		t.Errorf("the dunning handlers noted emails %v, want one per invoice", emails)
	}
	// The built-ins still keep their records and send their notices, one
	// per invoice attempt.
	if c := db.Client.HGetAll(ctx, records.CustomerKey("cus_stripeq_demo")).Val(); c["email"] != "jenny.rosen@example.com" || c["delinquent"] != "true" || c["subscription_status"] != "active" {
		t.Errorf("customer record = %v", c)
	}
	if n := db.Client.XLen(ctx, records.NotificationsStream).Val(); n != 4 {
		t.Errorf("%d notifications, want the 4 payment_failed of the invoice attempts", n)
	}
	// LOG_FORMAT is honoured: the program's log lines are JSON.
	if out := own.Output(); !strings.Contains(out, `"msg":"worker running"`) {
		t.Errorf("the program's log is not JSON (LOG_FORMAT=json):\n%s", out)
	}

	if took, clean := own.Stop(40 * time.Second); !clean {
		t.Errorf("the program did not exit within 40s of SIGTERM")
	} else if err := own.ExitErr(); err != nil {
		t.Errorf("the program exited after %v with %v", took, err)
	}
}
