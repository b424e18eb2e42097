package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/recovery"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// runRecover runs the recover binary with env and args; it returns its
// stdout, stderr and exit code.
func runRecover(t *testing.T, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, proctest.Binary(t, "deploy/recover"), args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "LOG_FORMAT=json"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return stdout.String(), stderr.String(), 0
	case errors.As(err, &exit):
		return stdout.String(), stderr.String(), exit.ExitCode()
	default:
		t.Fatalf("run recover: %v", err)
		return "", "", -1
	}
}

// TestRecoverCommand runs `recover` (go tool task recover) as a binary
// against a fake Stripe with 5 platform events and 3 of a connected
// account, and a real Redis with 3 shard queues: a dry run counts the 8
// missing and stores none; -account stores that account's 3; a run stores
// the other 5, each as the api would plus source=recovery; another finds
// nothing. A window past DEDUPE_WINDOW, a missing key and Stripe's refusal
// exit 1 with the reason. Each run is in the Console's history.
func TestRecoverCommand(t *testing.T) {
	db := redistest.New(t)
	stripe := stripetest.NewAPI(t)
	start := time.Now().Add(-2 * time.Hour)
	for i, typ := range []string{"customer.created", "invoice.paid", "invoice.paid", "charge.failed", "invoice.payment_failed"} {
		stripe.Add("", stripetest.Relabel(stripetest.Event(typ, "evt_cli_p"+string(rune('a'+i)), start.Add(time.Duration(i)*time.Minute)), string(rune('a'+i))))
	}
	for i := range 3 {
		stripe.Add("acct_cli", stripetest.Event("customer.created", "evt_cli_c"+string(rune('a'+i)), start.Add(time.Duration(i)*time.Minute)))
	}
	env := map[string]string{
		"REDIS_URL": db.URL, "STRIPE_SECRET_KEY": "rk_test_cli", "STRIPE_API_BASE": stripe.URL, "QUEUE_SHARDS": "3",
	}

	out, errOut, code := runRecover(t, env, "-since", "6h", "-dry-run")
	if code != 0 || !strings.Contains(out, "listed 8, missing 8, enqueued 0") || !strings.Contains(out, "customer.created 4") || !strings.Contains(out, "acct_cli 3") || !strings.Contains(out, "platform 5") {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, errOut)
	}
	insp := asynq.NewInspectorFromRedisClient(db.Client)
	opts := stripetask.Options{Queue: stripetask.DefaultQueue, Shards: 3}
	if _, err := insp.GetTaskInfo(stripetask.QueueFor("evt_cli_pa", opts), "evt_cli_pa"); err == nil {
		t.Fatal("the dry run stored an event")
	}

	if out, errOut, code := runRecover(t, env, "-since", "6h", "-account", "acct_cli"); code != 0 || !strings.Contains(out, "listed 3, missing 3, enqueued 3") {
		t.Fatalf("-account acct_cli: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := runRecover(t, env, "-since=6h", "-until=1m"); code != 0 || !strings.Contains(out, "listed 8, missing 5, enqueued 5") {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}
	for _, id := range []string{"evt_cli_pa", "evt_cli_pe", "evt_cli_ca"} {
		info, err := insp.GetTaskInfo(stripetask.QueueFor(id, opts), id)
		if err != nil {
			t.Fatalf("%s not stored: %v", id, err)
		}
		if info.Headers["source"] != stripetask.SourceRecovery {
			t.Errorf("%s: headers %v, want source=recovery", id, info.Headers)
		}
	}
	if out, errOut, code := runRecover(t, env, "-since", "6h"); code != 0 || !strings.Contains(out, "listed 8, missing 0, enqueued 0") {
		t.Fatalf("second run: exit %d\n%s%s", code, out, errOut)
	}

	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		says string
	}{
		{"past DEDUPE_WINDOW", env, []string{"-since", "8d"}, "DEDUPE_WINDOW"},
		{"no since", env, nil, "-since is required"},
		{"bad since", env, []string{"-since", "yesterday"}, "-since"},
		{"no key", map[string]string{"REDIS_URL": db.URL}, []string{"-since", "1h"}, "STRIPE_SECRET_KEY"},
		{"plain http to a network host", map[string]string{"REDIS_URL": db.URL, "STRIPE_SECRET_KEY": "rk_test_cli", "STRIPE_API_BASE": "http://stripe.example:80"}, []string{"-since", "1h"}, "STRIPE_API_BASE"},
		{"Stripe refuses", env, []string{"-since", "1h", "-account", "acct_unknown"}, "stripe answered 403"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runRecover(t, tc.env, tc.args...)
			if code != 1 || !strings.Contains(errOut, tc.says) {
				t.Errorf("exit %d, want 1 with %q on stderr\nstdout: %s\nstderr: %s", code, tc.says, out, errOut)
			}
		})
	}

	recs, err := (&recovery.Records{RDB: db.Client}).List(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	// The four that ran, and the one Stripe refused.
	if len(recs) != 5 || recs[0].State != recovery.StateFailed || recs[1].State != recovery.StateDone || recs[1].StartedBy != "recover command" || !recs[4].DryRun {
		t.Errorf("history: %+v", recs)
	}
}
