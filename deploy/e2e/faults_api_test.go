package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestAPIKilledUnderLoad kills the api with SIGKILL while 16 clients post
// distinct events as fast as it answers. Every event it acknowledged with a
// 200 must be stored in Redis; the ones that got no answer were not
// acknowledged, so Stripe sends them again: the test redelivers them to a
// restarted api, and then every event is stored.
func TestAPIKilledUnderLoad(t *testing.T) {
	redisSrv := redistest.Start(t)
	db := redisSrv.URL(0)
	rdb := openRedis(t, db)
	api, addr := startAPI(t, "api", db, nil)

	type delivery struct {
		id   string
		body []byte
		a    answer
	}
	var (
		mu         sync.Mutex
		deliveries []delivery
		next       atomic.Int64
		stop       atomic.Bool
		wg         sync.WaitGroup
	)
	client := loadClient()
	created := time.Now().Add(-time.Hour)
	for range 16 {
		wg.Go(func() {
			for !stop.Load() {
				id := fmt.Sprintf("evt_fault_api_kill_%06d", next.Add(1))
				body := customerEvent(id, created)
				a := send(client, "http://"+addr, body)
				mu.Lock()
				deliveries = append(deliveries, delivery{id, body, a})
				mu.Unlock()
			}
		})
	}
	time.Sleep(time.Second)
	api.Kill()
	stop.Store(true)
	wg.Wait()

	var ids, acked, unanswered []string
	other := 0
	for _, d := range deliveries {
		ids = append(ids, d.id)
		switch {
		case d.a.acked():
			acked = append(acked, d.id)
		case d.a.status == 0:
			unanswered = append(unanswered, d.id)
		default:
			other++
		}
	}
	states := taskStates(t, rdb, ids)
	lost, storedUnacked := 0, 0
	for _, id := range acked {
		if states[id] == "" {
			lost++
			t.Errorf("%s was acknowledged but is not in Redis", id)
		}
	}
	for _, id := range unanswered {
		if states[id] != "" {
			storedUnacked++
		}
	}
	t.Logf("api SIGKILLed under load: %d deliveries, %d acknowledged (all stored: %d lost), %d without an answer (%d of them stored anyway), %d other answers",
		len(deliveries), len(acked), lost, len(unanswered), storedUnacked, other)
	if len(acked) < 100 || len(unanswered) == 0 {
		t.Fatalf("the kill did not happen under load: %d acknowledged, %d unanswered", len(acked), len(unanswered))
	}
	if other != 0 {
		t.Errorf("%d deliveries got an answer other than 200", other)
	}

	// Stripe delivers the unanswered events again, to a restarted api.
	_, addr = startAPI(t, "api-2", db, nil) // on a new port: the api's URL is the test's to choose
	bodies := map[string][]byte{}
	for _, d := range deliveries {
		bodies[d.id] = d.body
	}
	dup := 0
	for _, id := range unanswered {
		a := send(client, "http://"+addr, bodies[id])
		if !a.acked() {
			t.Fatalf("redelivery of %s: %d %q %v", id, a.status, a.message, a.err)
		}
		if a.message == "duplicate" {
			dup++
		}
	}
	if dup != storedUnacked {
		t.Errorf("%d redeliveries answered duplicate, want the %d stored before the kill", dup, storedUnacked)
	}
	if n := countStates(taskStates(t, rdb, ids))["missing"]; n != 0 {
		t.Errorf("after redelivery %d events are still missing", n)
	}
}

// TestAPISIGTERMFinishesInFlight sends SIGTERM to the api while a delivery
// is half sent. The api stops accepting connections at once, finishes the
// request in flight (answering 200 with the event stored), and exits
// cleanly.
func TestAPISIGTERMFinishesInFlight(t *testing.T) {
	db := redistest.New(t)
	api, addr := startAPI(t, "api", db.URL, nil)

	id := "evt_fault_api_sigterm"
	body := customerEvent(id, time.Now().Add(-time.Minute))
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /webhooks/stripe HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nStripe-Signature: %s\r\nContent-Length: %d\r\n\r\n",
		addr, stripetest.Sign(body, time.Now(), stripetest.Secret), len(body))
	half := len(body) / 2
	if _, err := conn.Write(body[:half]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the handler is reading the body
	api.Signal(syscall.SIGTERM)
	stopped := time.Now()

	// New connections are refused while the request in flight goes on.
	poll.Until(t, 5*time.Second, "the api to stop listening", func() bool {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	select {
	case <-api.Done():
		t.Fatalf("the api exited with a request in flight: %v", api.ExitErr())
	default:
	}
	if _, err := conn.Write(body[half:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to the request in flight: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("request in flight answered %d, want 200", resp.StatusCode)
	}
	select {
	case <-api.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the api did not exit after finishing its last request")
	}
	if err := api.ExitErr(); err != nil {
		t.Errorf("api exited with %v", err)
	}
	if s := taskStates(t, db.Client, []string{id})[id]; s != "pending" {
		t.Errorf("task state %q, want pending", s)
	}
	t.Logf("SIGTERM with a request in flight: answered %d, exited %v after the signal",
		resp.StatusCode, time.Since(stopped).Round(10*time.Millisecond))
	if !strings.Contains(api.Output(), `"api stopped"`) {
		t.Errorf("the api did not log its stop")
	}
}
