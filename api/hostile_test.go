package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/httpserver"
	"github.com/stripeq/stripeq/pkg/poll"
	"github.com/stripeq/stripeq/pkg/proctest"
	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// running is the api as run starts it, listening on a real port.
type running struct {
	addr string
	db   *redistest.DB
}

// startRun runs the api's run function, the whole command but main, on a
// free loopback port against a fresh Redis database, until the test ends.
func startRun(t *testing.T) *running {
	t.Helper()
	db := redistest.New(t)
	// Port 0: run binds a free port and logs it.
	env := map[string]string{"REDIS_URL": db.URL, "STRIPE_WEBHOOK_SECRET": stripetest.Secret, "API_ADDR": "127.0.0.1:0", "LOG_FORMAT": "json"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	out := &proctest.Buffer{}
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	addr := poll.Value(t, 10*time.Second, "the api to listen", func() (string, error) {
		select {
		case err := <-done:
			t.Fatalf("run returned before listening: %v", err)
		default:
		}
		if addr, ok := proctest.LoggedIn(out.String(), "api listening", "addr"); ok {
			return addr, nil
		}
		return "", errors.New("not logged yet")
	})
	return &running{addr: addr, db: db}
}

// raw sends req as bytes over a new connection and reads one answer. When
// closeWrite is set, the client then shuts its side, as one that sent all
// it had.
func (r *running) raw(t *testing.T, req []byte, closeWrite bool) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", r.addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// The api may answer before it has read everything (a body too large),
	// so write while reading; a write cut short by its answer is expected.
	go func() {
		c.Write(req)
		if closeWrite {
			c.(*net.TCPConn).CloseWrite()
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, message(resp.Body)
}

func message(r io.Reader) string {
	b, _ := io.ReadAll(r)
	var a struct{ Message string }
	if json.Unmarshal(b, &a) != nil {
		return strings.TrimSpace(string(b))
	}
	return a.Message
}

// rawPost is a POST to the webhook with the given headers (each "Name:
// value") and body, as bytes.
func rawPost(addr string, body []byte, headers ...string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST /webhooks/stripe HTTP/1.1\r\nHost: %s\r\n", addr)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

func chunked(body []byte) []byte {
	var b bytes.Buffer
	for len(body) > 0 {
		n := min(len(body), 1000)
		fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
		body = body[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.Bytes()
}

func gzipped(body []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(body)
	w.Close()
	return b.Bytes()
}

// TestHostileRequests sends the api, running on a real port, requests a
// hostile or broken client could send, and the exact requests Stripe and
// its CLI send. Only the validly signed events are stored.
func TestHostileRequests(t *testing.T) {
	r := startRun(t)
	now := time.Now()
	event := func(id string) []byte { return stripetest.Event("customer.created", id, now) }
	sig := func(body []byte) string {
		return "Stripe-Signature: " + stripetest.Sign(body, time.Now(), stripetest.Secret)
	}
	cl := func(body []byte) string { return fmt.Sprintf("Content-Length: %d", len(body)) }
	signedAt := func(body []byte, ts time.Time) string {
		return "Stripe-Signature: " + stripetest.Sign(body, ts, stripetest.Secret)
	}

	valid := event("evt_hostile_valid")
	cli := event("evt_hostile_cli")
	bare := event("evt_hostile_bare")
	chunk := event("evt_hostile_chunked")
	noID := stripetest.Edit(event("evt_x"), func(e map[string]any) { delete(e, "id") })
	noType := stripetest.Edit(event("evt_hostile_no_type"), func(e map[string]any) { delete(e, "type") })
	altered := event("evt_hostile_altered")
	big := bytes.Repeat([]byte{'a'}, 10<<20)
	v0 := event("evt_hostile_v0")
	future := event("evt_hostile_two_t")
	manySigs := event("evt_hostile_many_sigs")

	tests := []struct {
		name       string
		req        []byte
		closeWrite bool
		want       int
		wantMsg    string // prefix
	}{
		// The requests Stripe sends.
		{"valid delivery", rawPost(r.addr, valid, sig(valid), "Content-Type: application/json", cl(valid)), false, 200, "Received"},
		{"Stripe CLI's exact request", rawPost(r.addr, cli,
			"Content-Type: application/json; charset=utf-8",
			"User-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)",
			"Accept: */*; q=0.5, application/xml",
			"Cache-Control: no-cache",
			"Accept-Encoding: gzip",
			sig(cli), cl(cli)), false, 200, "Received"},
		{"bare request: only Stripe-Signature", rawPost(r.addr, bare, sig(bare), cl(bare)), false, 200, "Received"},
		{"chunked body", rawPost(r.addr, chunked(chunk), sig(chunk), "Transfer-Encoding: chunked"), false, 200, "Received"},

		// Signatures.
		{"no Stripe-Signature", rawPost(r.addr, valid, cl(valid)), false, 400, "invalid Stripe-Signature: webhook has no Stripe-Signature header"},
		{"empty Stripe-Signature", rawPost(r.addr, valid, "Stripe-Signature: ", cl(valid)), false, 400, "invalid Stripe-Signature: webhook has no Stripe-Signature header"},
		{"v0 signature only", rawPost(r.addr, v0, "Stripe-Signature: "+strings.Replace(stripetest.Sign(v0, now, stripetest.Secret), "v1=", "v0=", 1), cl(v0)), false, 400, "invalid Stripe-Signature: webhook had no valid signature"},
		{"no timestamp", rawPost(r.addr, valid, "Stripe-Signature: "+strings.TrimPrefix(stripetest.Sign(valid, now, stripetest.Secret), fmt.Sprintf("t=%d,", now.Unix())), cl(valid)), false, 400, "invalid Stripe-Signature: timestamp wasn't within tolerance"},
		{"signature by another secret", rawPost(r.addr, valid, "Stripe-Signature: "+stripetest.Sign(valid, now, "whsec_attacker"), cl(valid)), false, 400, "invalid Stripe-Signature: webhook had no valid signature"},
		{"timestamp 301 s old", rawPost(r.addr, valid, signedAt(valid, now.Add(-301*time.Second)), cl(valid)), false, 400, "invalid Stripe-Signature: timestamp wasn't within tolerance"},
		{"timestamp 305 s ahead", rawPost(r.addr, valid, signedAt(valid, now.Add(305*time.Second)), cl(valid)), false, 400, "invalid Stripe-Signature: timestamp is too far in the future"},
		{"timestamp in the year 3000", rawPost(r.addr, valid, signedAt(valid, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)), cl(valid)), false, 400, "invalid Stripe-Signature: timestamp is too far in the future"},
		{"two t= values, the signed one in the future", rawPost(r.addr, future,
			fmt.Sprintf("Stripe-Signature: t=%d,%s", now.Unix(), stripetest.Sign(future, now.Add(time.Hour), stripetest.Secret)), cl(future)),
			false, 400, "invalid Stripe-Signature: timestamp is too far in the future"},
		{"5,000 wrong v1 signatures", rawPost(r.addr, manySigs, "Stripe-Signature: "+fmt.Sprintf("t=%d", now.Unix())+strings.Repeat(",v1="+strings.Repeat("ab", 4), 5000), cl(manySigs)), false, 400, "invalid Stripe-Signature: webhook had no valid signature"},

		// Bodies.
		{"body altered by one byte", rawPost(r.addr, bytes.Replace(altered, []byte(`"Jenny`), []byte(`"Jenna`), 1), sig(altered), cl(altered)), false, 400, "invalid Stripe-Signature: webhook had no valid signature"},
		{"signed body that is not JSON", rawPost(r.addr, []byte("<xml/>"), sig([]byte("<xml/>")), "Content-Length: 6"), false, 400, "malformed event JSON"},
		{"signed JSON that is not an event", rawPost(r.addr, []byte(`{"id":"cus_1"}`), sig([]byte(`{"id":"cus_1"}`)), "Content-Length: 14"), false, 400, "not a Stripe event"},
		{"signed event without an ID", rawPost(r.addr, noID, sig(noID), cl(noID)), false, 400, "not a Stripe event: id"},
		{"signed event without a type", rawPost(r.addr, noType, sig(noType), cl(noType)), false, 400, "not a Stripe event: no type"},
		{"10 MiB body", rawPost(r.addr, big, "Stripe-Signature: t=1,v1=00", cl(big)), false, 413, "body exceeds 1 MiB"},
		{"10 MiB chunked body", rawPost(r.addr, chunked(big), "Stripe-Signature: t=1,v1=00", "Transfer-Encoding: chunked"), false, 413, "body exceeds 1 MiB"},
		{"gzip Content-Encoding", rawPost(r.addr, gzipped(valid), sig(gzipped(valid)), "Content-Encoding: gzip", cl(gzipped(valid))), false, 415, "Content-Encoding gzip is not accepted"},
		{"Content-Length longer than the body", rawPost(r.addr, valid, sig(valid), fmt.Sprintf("Content-Length: %d", len(valid)+10)), true, 400, "cannot read body"},
		{"Content-Length shorter than the body", rawPost(r.addr, valid, sig(valid), fmt.Sprintf("Content-Length: %d", len(valid)-10)), false, 400, "invalid Stripe-Signature: webhook had no valid signature"},
		{"two Content-Lengths", rawPost(r.addr, valid, sig(valid), cl(valid), "Content-Length: 5"), false, 400, "400 Bad Request"},
		{"headers over MaxHeaderBytes", rawPost(r.addr, valid, sig(valid), cl(valid), "X-Padding: "+strings.Repeat("a", httpserver.MaxHeaderBytes+4096)), false, 431, "431 Request Header Fields Too Large"},

		// Routes.
		{"GET the webhook", []byte("GET /webhooks/stripe HTTP/1.1\r\nHost: x\r\n\r\n"), false, 405, "method not allowed"},
		{"PUT the webhook", bytes.Replace(rawPost(r.addr, valid, sig(valid), cl(valid)), []byte("POST"), []byte("PUT"), 1), false, 405, "method not allowed"},
		{"POST another path", []byte("POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"), false, 404, "not found"},
		{"POST with a trailing slash", []byte("POST /webhooks/stripe/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"), false, 307, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			status, msg := r.raw(t, tt.req, tt.closeWrite)
			if status != tt.want || !strings.HasPrefix(msg, tt.wantMsg) {
				t.Errorf("answer %d %q, want %d %q", status, msg, tt.want, tt.wantMsg)
			}
		})
	}
	t.Run("slow-loris headers are cut off by ReadHeaderTimeout", func(t *testing.T) {
		t.Parallel()
		c, err := net.Dial("tcp", r.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		fmt.Fprintf(c, "POST /webhooks/stripe HTTP/1.1\r\nHost: %s\r\n", r.addr)
		closed := make(chan time.Duration, 1)
		go func() {
			b := make([]byte, 512)
			for {
				if _, err := c.Read(b); err != nil {
					closed <- time.Since(start)
					return
				}
			}
		}()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case d := <-closed:
				t.Logf("slow-loris client (a header line every 250 ms) cut off after %v; ReadHeaderTimeout is %v", d.Round(10*time.Millisecond), httpserver.ReadHeaderTimeout)
				if d < httpserver.ReadHeaderTimeout-100*time.Millisecond || d > httpserver.ReadHeaderTimeout+2*time.Second {
					t.Errorf("cut off after %v, want about ReadHeaderTimeout (%v)", d, httpserver.ReadHeaderTimeout)
				}
				return
			case <-tick.C:
				if _, err := fmt.Fprintf(c, "X-Trickle-%d: x\r\n", i); err != nil && time.Since(start) < httpserver.ReadHeaderTimeout {
					t.Fatalf("write failed after %v: %v", time.Since(start), err)
				}
			case <-time.After(3 * httpserver.ReadHeaderTimeout):
				t.Fatal("slow-loris client never cut off")
			}
		}
	})

	t.Cleanup(func() {
		// Only the four valid deliveries are stored.
		keys, err := r.db.Client.Keys(context.Background(), "asynq:{stripe}:t:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{"evt_hostile_valid": true, "evt_hostile_cli": true, "evt_hostile_bare": true, "evt_hostile_chunked": true}
		for _, k := range keys {
			if id := strings.TrimPrefix(k, "asynq:{stripe}:t:"); !want[id] {
				t.Errorf("task %s stored", id)
			} else {
				delete(want, id)
			}
		}
		for id := range want {
			t.Errorf("no task for %s", id)
		}
	})
}

// TestServerTimeouts checks that every server the commands build sets each
// limit; TestHostileRequests shows the running api uses them (slow-loris,
// MaxHeaderBytes).
func TestServerTimeouts(t *testing.T) {
	s := httpserver.New(http.NotFoundHandler())
	for name, v := range map[string]int64{
		"ReadHeaderTimeout": int64(s.ReadHeaderTimeout), "ReadTimeout": int64(s.ReadTimeout),
		"WriteTimeout": int64(s.WriteTimeout), "IdleTimeout": int64(s.IdleTimeout), "MaxHeaderBytes": int64(s.MaxHeaderBytes),
	} {
		if v <= 0 {
			t.Errorf("%s is not set", name)
		}
	}
}
