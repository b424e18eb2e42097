package e2e

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/proctest"
)

// TestDemoOnEmbeddedRedis runs `go tool task demo`'s program as a newcomer
// would, with nothing answering at REDIS_URL: it must start the embedded
// Redis, the three commands and the demo, show retried notifications going
// out after the SMTP outage, archive the undecodable event, print the
// customer's final record, and stop cleanly on Ctrl-C.
func TestDemoOnEmbeddedRedis(t *testing.T) {
	apiAddr, dashAddr, nothing := proctest.FreeAddr(t), proctest.FreeAddr(t), proctest.FreeAddr(t)
	env := map[string]string{
		"REDIS_URL": "redis://" + nothing + "/0", "API_ADDR": apiAddr, "DASHBOARD_ADDR": dashAddr, "RETRY_BASE_DELAY": "1s",
		"GOFLAGS": os.Getenv("GOFLAGS"), "GOCACHE": goEnv(t, "GOCACHE"), "GOMODCACHE": goEnv(t, "GOMODCACHE"),
	}
	p := proctest.StartArgs(t, "dev", proctest.Binary(t, "deploy/dev"), env, "-demo", "-smtp-outage", "2s")
	waitOutput(t, p, "done. In the Console", 3*time.Minute)
	out := p.Output()
	for _, want := range []string{
		"EMBEDDED in-memory Redis (miniredis): all data is lost when dev stops",
		"Dashboard login   admin / ",
		`customer.created                         evt_`,
		`→ 200 {"message":"duplicate"}`,
		"notification: dial tcp",                                                      // a notification failed while SMTP was down…
		"email to [jenny.rosen@example.com]: The dispute of 20.00 USD is closed: won", // …and went out after
		"task failed for good: kept in the failure store",
		// The decoder's own wording varies; the field's JSON pointer does not.
		"decode data.object of invoice.paid: json: ",
		`within \"/data/object/amount_paid\"`,
		"last_dispute_outcome         won",
		"on_hold                      false",
		"sample app: received evt_", // forwarded to the receiving app…
		"signature verified",
		"answering 503 (Retry-After: 2) to the first delivery", // …after a retry
		"/deliveries",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo's output lacks %q", want)
		}
	}
	p.Signal(syscall.SIGINT)
	select {
	case <-p.Done():
		if err := p.ExitErr(); err != nil {
			t.Errorf("dev exited with %v after Ctrl-C", err)
		}
	case <-time.After(45 * time.Second):
		t.Error("dev did not stop within 45 s of Ctrl-C")
	}
	if t.Failed() {
		t.Logf("output:\n%s", p.Output())
	}
}

func goEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := execCommand("go", "env", name)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}
