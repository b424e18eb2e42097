package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/stripeq/stripeq/pkg/keyspace"
	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// destSecret is the destinations' Standard Webhooks secret in these tests.
var destSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("e2e-destination-secret-32-bytes!"))

// received is one POST a receiver got.
type received struct {
	Path      string            `json:"path"`
	Headers   map[string]string `json:"headers"`
	Body      []byte            `json:"body"`
	Status    int               `json:"status"`
	VerifyErr string            `json:"verify_err,omitempty"`
	At        time.Time         `json:"at"`
}

// receiver is a real HTTP app receiving deliveries. It checks every
// signature with the Go Standard Webhooks library and records everything.
// On /app it answers 503 with Retry-After: 1 (and a long HTML body) to the
// first attempt of every event whose ID holds "_flaky", and 200 otherwise;
// /slow answers 200 after two seconds; /gone answers 410.
type receiver struct {
	*httptest.Server
	wh *standardwebhooks.Webhook
	mu sync.Mutex
	rs []received
}

func newReceiver(t *testing.T) *receiver {
	wh, err := standardwebhooks.NewWebhook(destSecret)
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{wh: wh}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	rec := received{Path: req.URL.Path, Headers: map[string]string{}, Body: body, At: time.Now()}
	for _, h := range []string{"webhook-id", "webhook-timestamp", "webhook-signature", "stripe-event-type", "content-type"} {
		rec.Headers[h] = req.Header.Get(h)
	}
	if err := r.wh.Verify(body, req.Header); err != nil {
		rec.VerifyErr = err.Error()
	}
	id := req.Header.Get("webhook-id")
	r.mu.Lock()
	earlier := 0
	for _, x := range r.rs {
		if x.Path == rec.Path && x.Headers["webhook-id"] == id {
			earlier++
		}
	}
	r.mu.Unlock()
	switch {
	case rec.VerifyErr != "":
		rec.Status = 400
	case req.URL.Path == "/gone":
		rec.Status = 410
	case req.URL.Path == "/slow":
		time.Sleep(2 * time.Second)
		rec.Status = 200
	case strings.Contains(id, "_flaky") && earlier == 0:
		rec.Status = 503
		w.Header().Set("Retry-After", "1")
	default:
		rec.Status = 200
	}
	r.mu.Lock()
	r.rs = append(r.rs, rec)
	r.mu.Unlock()
	w.WriteHeader(rec.Status)
	if rec.Status == 503 {
		fmt.Fprintf(w, "<h1>busy & down</h1>%s", strings.Repeat("x", 2000))
		return
	}
	fmt.Fprintf(w, "ok %s", id)
}

// on returns what path received, in order.
func (r *receiver) on(path string) []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []received
	for _, x := range r.rs {
		if x.Path == path {
			out = append(out, x)
		}
	}
	return out
}

// delivered counts the 2xx answers on path per webhook-id.
func (r *receiver) delivered(path string) map[string]int {
	n := map[string]int{}
	for _, x := range r.on(path) {
		if x.Status/100 == 2 {
			n[x.Headers["webhook-id"]]++
		}
	}
	return n
}

// TestDestinations forwards events through the real binaries to a real
// receiver: every event arrives once, signed, byte for byte (stored
// compressed); 503s are retried to success after their Retry-After;
// Stripe's duplicate is not forwarded again; a slow destination delays
// neither the built-in handlers nor another destination; 410 archives at
// once; the Console shows each attempt and re-runs a delivery with the
// same webhook-id; and the deliveries verify with the official Node
// library.
func TestDestinations(t *testing.T) {
	rc := newReceiver(t)
	file := filepath.Join(t.TempDir(), "destinations.json")
	os.WriteFile(file, fmt.Appendf(nil, `[
		{"name": "slow", "url": %q, "secret": %q, "concurrency": 1, "timeout": "30s"},
		{"name": "gone", "url": %q, "secret": %q, "events": ["invoice.*"]}
	]`, rc.URL+"/slow", destSecret, rc.URL+"/gone", destSecret), 0o600)
	s := startStack(t, "DESTINATION_URL", rc.URL+"/app", "DESTINATION_SECRET", destSecret,
		"DESTINATIONS_FILE", file, "PAYLOAD_COMPRESSION", "zstd")
	rdb := openRedis(t, s.db.URL)

	// Eight events, bodies as Stripe might format them: indented, with
	// escapes that a re-encoding would change.
	now := time.Now()
	var ids []string
	bodies := map[string][]byte{}
	for i, typ := range []string{"customer.created", "customer.created", "customer.created", "customer.created",
		"customer.created", "customer.created", "invoice.paid", "invoice.paid"} {
		id := fmt.Sprintf("evt_dest_%d", i)
		if i == 1 || i == 4 {
			id += "_flaky"
		}
		body := stripetest.Relabel(stripetest.Event(typ, id, now.Add(time.Duration(i)*time.Second)), fmt.Sprint(i))
		body = bytes.Replace(body, []byte(`{"`), []byte("{\n  \"note\": \"caf\\u00e9 \\/ <b>\",\n  \""), 1)
		ids, bodies[id] = append(ids, id), body
	}
	sent := time.Now()
	for _, id := range ids {
		if code, msg := s.deliver(t, bodies[id]); code != 200 {
			t.Fatalf("deliver %s: %d %s", id, code, msg)
		}
	}
	if code, _ := s.deliver(t, bodies[ids[0]]); code != 200 { // Stripe's duplicate
		t.Fatalf("duplicate: %d", code)
	}

	// The built-in handlers finish while the slow destination has most of
	// its backlog left, and so does the fast destination.
	poll.Until(t, 15*time.Second, "every event's built-in handlers", func() bool {
		return countStates(taskStates(t, rdb, ids))["completed"] == len(ids)
	})
	handlers := time.Since(sent)
	poll.Until(t, 15*time.Second, "every event delivered to the app", func() bool { return len(rc.delivered("/app")) == len(ids) })
	app := time.Since(sent)
	slowDone := len(rc.delivered("/slow"))
	t.Logf("built-in handlers done after %v, app destination after %v; slow destination had delivered %d of %d",
		handlers.Round(time.Millisecond), app.Round(time.Millisecond), slowDone, len(ids))
	if slowDone > len(ids)/2 {
		t.Errorf("the slow destination delivered %d of %d before the others finished: the test proves nothing", slowDone, len(ids))
	}
	if handlers > 8*time.Second || app > 10*time.Second {
		t.Errorf("handlers %v, app %v: the slow destination (2 s a POST, concurrency 1) held them up", handlers, app)
	}

	// Every delivery: signed (the Go library verified it), the body byte for
	// byte, the headers of the contract, once per event.
	for _, x := range rc.on("/app") {
		id := x.Headers["webhook-id"]
		if x.VerifyErr != "" {
			t.Errorf("%s: signature does not verify: %s", id, x.VerifyErr)
		}
		if !bytes.Equal(x.Body, bodies[id]) {
			t.Errorf("%s: body differs from what Stripe sent:\n%s\nwant\n%s", id, x.Body, bodies[id])
		}
		if x.Headers["content-type"] != "application/json" || !strings.HasPrefix(x.Headers["webhook-signature"], "v1,") ||
			(x.Headers["stripe-event-type"] != "customer.created" && x.Headers["stripe-event-type"] != "invoice.paid") {
			t.Errorf("%s: headers %v", id, x.Headers)
		}
		var sec int64
		fmt.Sscan(x.Headers["webhook-timestamp"], &sec)
		if d := x.At.Unix() - sec; d < 0 || d > 2 {
			t.Errorf("%s: webhook-timestamp %d is not the attempt's time %v", id, sec, x.At)
		}
	}
	for id, n := range rc.delivered("/app") {
		if n != 1 {
			t.Errorf("%s delivered %d times, want once (Stripe's duplicate is not forwarded again)", id, n)
		}
	}
	attempts := map[string][]int{}
	for _, x := range rc.on("/app") {
		attempts[x.Headers["webhook-id"]] = append(attempts[x.Headers["webhook-id"]], x.Status)
	}
	for _, id := range ids {
		want := "[200]"
		if strings.Contains(id, "_flaky") {
			want = "[503 200]"
		}
		if got := fmt.Sprint(attempts[id]); got != want {
			t.Errorf("%s: attempts %s, want %s", id, got, want)
		}
	}

	// 410: archived after one attempt, alerted.
	poll.Until(t, 10*time.Second, "the 410s archived", func() bool {
		return countStates(deliveryStates(t, rdb, "gone", ids[6:]))["archived"] == 2
	})
	// An archived task is never retried, and each POST was received before
	// its task was archived: the count is final.
	if n := len(rc.on("/gone")); n != 2 {
		t.Errorf("the gone destination got %d POSTs, want 2 (one per invoice event, never retried)", n)
	}
	if !strings.Contains(s.worker.Output(), "task archived") {
		t.Errorf("no alert for the archived deliveries:\n%s", s.worker.Output())
	}

	// The Console: attempts with status, latency and the response's first
	// kilobyte, escaped; filters; a re-run.
	flaky := ids[1] + ":dest:default"
	code, b := get(t, s.dashURL+"/api/deliveries/"+flaky, s.dashUser, s.dashPass)
	var d struct {
		State    string
		Attempts []struct {
			Status    int
			LatencyMS int64 `json:"latency_ms"`
			Response  string
		}
	}
	json.Unmarshal(b, &d)
	// Attempts newest first, as the Console shows them.
	if code != 200 || d.State != "completed" || len(d.Attempts) != 2 || d.Attempts[0].Status != 200 ||
		d.Attempts[1].Status != 503 || len(d.Attempts[1].Response) != 1024 || !strings.HasPrefix(d.Attempts[1].Response, "<h1>busy") {
		t.Errorf("delivery detail %d: %s", code, b)
	}
	// The 503's Retry-After was a wait the destination asked for, not a
	// failure: it used up none of the delivery's retries.
	if info, err := asynq.NewInspectorFromRedisClient(rdb).GetTaskInfo("dest-default", flaky); err != nil || info.Retried != 0 {
		t.Errorf("the delivery that waited for a 503's Retry-After: %+v, %v; want 0 retries used", info, err)
	}
	if code, page := get(t, s.dashURL+"/deliveries/"+flaky, s.dashUser, s.dashPass); code != 200 ||
		!bytes.Contains(page, []byte("&lt;h1&gt;busy &amp; down")) || bytes.Contains(page, []byte("<h1>busy")) {
		t.Errorf("delivery page %d does not show the response escaped:\n%s", code, page)
	}
	code, b = get(t, s.dashURL+"/api/deliveries?destination=gone&state=archived", s.dashUser, s.dashPass)
	var l struct {
		Deliveries []struct{ ID, Destination, State string }
	}
	json.Unmarshal(b, &l)
	if code != 200 || len(l.Deliveries) != 2 || l.Deliveries[0].Destination != "gone" || l.Deliveries[0].State != "archived" {
		t.Errorf("filtered list %d: %s", code, b)
	}

	first := ids[0] + ":dest:default"
	req, _ := http.NewRequest(http.MethodPost, s.dashURL+"/api/deliveries/"+first+"/rerun", nil)
	req.SetBasicAuth(s.dashUser, s.dashPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte(first+":rerun:1")) {
		t.Fatalf("re-run: %d %s", resp.StatusCode, b)
	}
	poll.Until(t, 10*time.Second, "the re-run delivered", func() bool { return rc.delivered("/app")[ids[0]] == 2 })

	rs := rc.on("/app")

	// The app answered its last POST at once: the next event's delivery
	// is made inline, in the event's own task (no attempts list), and the
	// Console shows it as any other: completed, with its one attempt.
	inlineID := "evt_dest_inline"
	if code, msg := s.deliver(t, stripetest.Event("customer.created", inlineID, time.Now())); code != 200 {
		t.Fatalf("deliver %s: %d %s", inlineID, code, msg)
	}
	poll.Until(t, 10*time.Second, "the inline delivery", func() bool { return rc.delivered("/app")[inlineID] == 1 })
	made := inlineID + ":dest:default"
	poll.Until(t, 10*time.Second, "the inline delivery stored", func() bool {
		return deliveryStates(t, rdb, "default", []string{inlineID})[inlineID] == "completed"
	})
	if n := rdb.Exists(t.Context(), keyspace.DeliveryAttempts(made)).Val(); n != 0 {
		t.Errorf("%s has an attempts list: it was delivered as a task, not inline", made)
	}
	code, b = get(t, s.dashURL+"/api/deliveries/"+made, s.dashUser, s.dashPass)
	d.Attempts = nil
	json.Unmarshal(b, &d)
	if code != 200 || d.State != "completed" || len(d.Attempts) != 1 || d.Attempts[0].Status != 200 {
		t.Errorf("the inline delivery in the Console %d: %s", code, b)
	}

	t.Run("python standardwebhooks", func(t *testing.T) { verifyWithPython(t, rs) })
	t.Run("npm standardwebhooks 1.1.1", func(t *testing.T) { verifyWithNode(t, rs) })
}

// verifyWithPython checks deliveries with the Python Standard Webhooks
// library as the README's example calls it: its source in the Go module
// github.com/standard-webhooks/standard-webhooks/libraries (PyPI is out
// of reach of the test machines). Without python3 it skips.
func verifyWithPython(t *testing.T, rs []received) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed: the deliveries are not checked with the Python library")
	}
	dir, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/standard-webhooks/standard-webhooks/libraries").Output()
	if err != nil {
		t.Fatalf("locate the Standard Webhooks module: %v", err)
	}
	tmp := t.TempDir()
	data, _ := json.Marshal(rs)
	os.WriteFile(filepath.Join(tmp, "deliveries.json"), data, 0o600)
	os.WriteFile(filepath.Join(tmp, "verify.py"), []byte(`
import base64, json, sys
from standardwebhooks import Webhook

wh = Webhook(sys.argv[1])
n = 0
for d in json.load(open(sys.argv[2])):
    event = wh.verify(base64.b64decode(d["body"]), d["headers"])  # raises when the signature is wrong
    assert event["id"] == d["headers"]["webhook-id"], event["id"]
    n += 1
print("verified", n)
`), 0o600)
	cmd := exec.Command("python3", filepath.Join(tmp, "verify.py"), destSecret, filepath.Join(tmp, "deliveries.json"))
	cmd.Env = append(os.Environ(), "PYTHONPATH="+filepath.Join(strings.TrimSpace(string(dir)), "python"))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("verified %d", len(rs))) {
		t.Fatalf("the Python Standard Webhooks library does not verify the deliveries: %v\n%s", err, out)
	}
	t.Logf("Python standardwebhooks: %s", strings.TrimSpace(string(out)))
}

// deliveryStates returns the state of the delivery of each event to
// destination name.
func deliveryStates(t *testing.T, rdb redis.UniversalClient, name string, ids []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, id := range ids {
		out[id] = rdb.HGet(context.Background(), "asynq:{dest-"+name+"}:t:"+id+":dest:"+name, "state").Val()
	}
	return out
}

// verifyWithNode checks deliveries with the official Node library,
// npm standardwebhooks 1.1.1, installed in a temporary directory. Without
// node it skips, unless CI is set.
func verifyWithNode(t *testing.T, rs []received) {
	t.Helper()
	_, errNode := exec.LookPath("node")
	_, errNpm := exec.LookPath("npm")
	if err := errors.Join(errNode, errNpm); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node or npm is not installed; CI needs them to check the deliveries with npm standardwebhooks (deploy/scripts/test-deps.sh installs them)")
		}
		t.Skip("node or npm is not installed: the deliveries are not checked with npm standardwebhooks 1.1.1")
	}
	dir := t.TempDir()
	if out, err := exec.Command("npm", "install", "--prefix", dir, "--no-audit", "--no-fund", "standardwebhooks@1.1.1").CombinedOutput(); err != nil {
		t.Fatalf("npm install standardwebhooks@1.1.1: %v\n%s", err, out)
	}
	data, _ := json.Marshal(rs)
	os.WriteFile(filepath.Join(dir, "deliveries.json"), data, 0o600)
	os.WriteFile(filepath.Join(dir, "verify.mjs"), []byte(`
import { Webhook } from "standardwebhooks";
import { readFileSync } from "node:fs";
const wh = new Webhook(process.argv[2]);
let n = 0;
for (const d of JSON.parse(readFileSync(process.argv[3], "utf8"))) {
  const body = Buffer.from(d.body, "base64");
  const event = wh.verify(body, d.headers); // throws when the signature is wrong
  if (event.id !== d.headers["webhook-id"]) throw new Error("id " + event.id + " is not " + d.headers["webhook-id"]);
  n++;
}
console.log("verified " + n);
`), 0o600)
	out, err := exec.Command("node", filepath.Join(dir, "verify.mjs"), destSecret, filepath.Join(dir, "deliveries.json")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("verified %d", len(rs))) {
		t.Fatalf("npm standardwebhooks 1.1.1 does not verify the deliveries: %v\n%s", err, out)
	}
	t.Logf("npm standardwebhooks 1.1.1: %s", strings.TrimSpace(string(out)))
}

// TestDestinationOrder checks DESTINATION_ORDER=customer through the real
// binaries: while a customer's first event fails and retries, its later
// events wait, and another customer's event does not.
func TestDestinationOrder(t *testing.T) {
	var mu sync.Mutex
	var got []received
	failed := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("webhook-id")
		mu.Lock()
		defer mu.Unlock()
		status := 200
		if strings.HasSuffix(id, "_first") && !failed {
			failed, status = true, 500
		}
		got = append(got, received{Headers: map[string]string{"webhook-id": id}, Status: status, At: time.Now()})
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	s := startStack(t, "DESTINATION_URL", srv.URL+"/ordered", "DESTINATION_SECRET", destSecret, "DESTINATION_ORDER", "customer")
	t0 := time.Now().Add(-time.Minute)
	event := func(id, customer string, created time.Time) []byte {
		return stripetest.Relabel(stripetest.Event("invoice.paid", id, created), customer)
	}
	for _, b := range [][]byte{
		event("evt_order_first", "a", t0),
		event("evt_order_second", "a", t0.Add(time.Second)),
		event("evt_order_third", "a", t0.Add(2*time.Second)),
		event("evt_order_other", "b", t0.Add(time.Second)),
	} {
		if code, msg := s.deliver(t, b); code != 200 {
			t.Fatalf("deliver: %d %s", code, msg)
		}
	}
	poll.Until(t, 20*time.Second, "every ordered delivery", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, x := range got {
			if x.Status == 200 {
				n++
			}
		}
		return n == 4
	})
	mu.Lock()
	defer mu.Unlock()
	var seq []string
	for _, x := range got {
		seq = append(seq, fmt.Sprintf("%s:%d", strings.TrimPrefix(x.Headers["webhook-id"], "evt_order_"), x.Status))
	}
	var customerA []string
	otherBeforeFirst := false
	firstDone := false
	for _, x := range got {
		id := strings.TrimPrefix(x.Headers["webhook-id"], "evt_order_")
		switch {
		case id == "other":
			otherBeforeFirst = !firstDone
		default:
			customerA = append(customerA, fmt.Sprintf("%s:%d", id, x.Status))
			firstDone = firstDone || id == "first" && x.Status == 200
		}
	}
	if strings.Join(customerA, " ") != "first:500 first:200 second:200 third:200" {
		t.Errorf("customer a's POSTs %v, want the first (failed, then retried) before the others, in order; all: %v", customerA, seq)
	}
	if !otherBeforeFirst {
		t.Errorf("customer b's event waited for customer a's: %v", seq)
	}
}

// TestDestinationSurvivesWorkerKill kills the worker with SIGKILL while a
// delivery's POST is in flight, and checks that another worker POSTs it
// again, with the same webhook-id and body, once the lease has expired
// (aged in Redis here, as TestWorkerKilledMidTask does), and completes it.
func TestDestinationSurvivesWorkerKill(t *testing.T) {
	wh, _ := standardwebhooks.NewWebhook(destSecret)
	hold := make(chan struct{})
	var mu sync.Mutex
	var got []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec := received{Headers: map[string]string{"webhook-id": r.Header.Get("webhook-id")}, Body: body, Status: 200}
		if err := wh.Verify(body, r.Header); err != nil {
			rec.VerifyErr, rec.Status = err.Error(), 400
		}
		mu.Lock()
		first := len(got) == 0
		got = append(got, rec)
		mu.Unlock()
		if first {
			select { // the worker dies while this POST waits
			case <-hold:
			case <-time.After(20 * time.Second):
			}
		}
		w.WriteHeader(rec.Status)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hold) })

	redisSrv := redistest.Start(t)
	db := redisSrv.URL(0)
	rdb := openRedis(t, db)
	env := map[string]string{"DESTINATION_URL": srv.URL + "/app", "DESTINATION_SECRET": destSecret, "RETRY_BASE_DELAY": "200ms"}
	_, addr := startAPI(t, "api", db, nil)
	w1 := startWorker(t, "worker-1", db, env)
	id := "evt_dest_killed"
	body := stripetest.Event("customer.created", id, time.Now())
	if a := send(loadClient(), "http://"+addr, body); a.status != 200 {
		t.Fatalf("delivery: %d %q %v", a.status, a.message, a.err)
	}
	poll.Until(t, 10*time.Second, "the POST in flight", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
	w1.Kill()
	delivery := id + ":dest:default"
	if s := deliveryStates(t, rdb, "default", []string{id})[id]; s != "active" {
		t.Fatalf("after the kill the delivery is %q, want active", s)
	}
	past := float64(time.Now().Add(-time.Minute).Unix())
	if err := rdb.ZAddXX(context.Background(), "asynq:{dest-default}:lease", redis.Z{Score: past, Member: delivery}).Err(); err != nil {
		t.Fatal(err)
	}
	startWorker(t, "worker-2", db, env)
	poll.Until(t, 20*time.Second, "the delivery completed by worker-2", func() bool {
		return deliveryStates(t, rdb, "default", []string{id})[id] == "completed"
	})
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("%d POSTs, want 2 (the killed one, then the recovered one)", len(got))
	}
	for _, x := range got {
		if x.Headers["webhook-id"] != id || !bytes.Equal(x.Body, body) || x.VerifyErr != "" {
			t.Errorf("POST %v %q: body equal %v", x.Headers, x.VerifyErr, bytes.Equal(x.Body, body))
		}
	}
}
