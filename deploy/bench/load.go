package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// mix is the event types the harness sends, in turn: real-shaped events of
// 2.5–3.8 KB (3.3 KB on average) as Stripe sends them, pretty-printed, whose
// handlers need no other event first (a dispute would wait for its
// charge's customer).
var mix = []string{
	events.ChargeFailed, events.PaymentIntentPaymentFailed, events.SubscriptionCreated,
	events.SubscriptionUpdated, events.CheckoutSessionCompleted,
}

// topLevelCreated matches the event's own "created" in a pretty-printed
// fixture: the only one indented by two spaces.
var topLevelCreated = regexp.MustCompile(`\n  "created": \d+`)

// idPrefix starts every event ID; the rest is the event's index in its
// corpus, so the recorder finds the body without a map.
const idPrefix = "evt_1Bench"

func eventID(i int) string { return fmt.Sprintf("%s%014d", idPrefix, i) }

func eventIndex(id string) (int, bool) {
	if len(id) != len(idPrefix)+14 || id[:len(idPrefix)] != idPrefix {
		return 0, false
	}
	n, err := strconv.Atoi(id[len(idPrefix):])
	return n, err == nil
}

// sigLen is the length of a Stripe-Signature value signed with one secret:
// t=<10 digits>,v1=<64 hex digits>. Every request keeps it at a fixed
// offset, so a corpus is re-signed in place.
const sigLen = len("t=1767225600,v1=") + 64

// corpus is a set of unique events, pre-built as complete HTTP requests.
type corpus struct {
	secret    string
	customers int      // distinct customers; 0: all the fixtures' own
	types     []string // event type of each event
	reqs      [][]byte // the HTTP/1.1 request of each event
	sigOff    []int    // offset of the Stripe-Signature value in reqs[i]
	bodyAt    []int    // offset of the body in reqs[i]
}

// newCorpus builds n unique events of the mix. With customers > 0 the
// events' objects are relabelled to that many distinct customers (and
// their subscriptions, charges, …), as a real account's would be;
// otherwise they all share the fixtures' objects.
func newCorpus(n, customers int, secret string) *corpus {
	const head = "POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)\r\n" +
		"Content-Type: application/json; charset=utf-8\r\nStripe-Signature: "
	fixtures := make([][]byte, len(mix))
	for i, typ := range mix {
		// Created now, as live traffic is, so that the api keeps a
		// duplicate marker for each (it keeps none for events created
		// more than DEDUPE_WINDOW ago, as the fixtures were).
		fixtures[i] = topLevelCreated.ReplaceAll(stripetest.Fixture(typ), []byte("\n  \"created\": "+strconv.FormatInt(time.Now().Unix(), 10)))
	}
	c := &corpus{secret: secret, customers: customers, types: make([]string, n), reqs: make([][]byte, n), sigOff: make([]int, n), bodyAt: make([]int, n)}
	for i := range n {
		raw := fixtures[i%len(mix)]
		if customers > 0 {
			raw = stripetest.Relabel(raw, "b"+strconv.Itoa(i%customers))
		}
		// The event ID is the first "evt_…" string of the fixture.
		at := bytes.Index(raw, []byte(`"evt_`)) + 1
		end := at + bytes.IndexByte(raw[at:], '"')
		id := eventID(i)
		bodyLen := len(raw) - (end - at) + len(id)
		b := make([]byte, 0, len(head)+sigLen+64+bodyLen)
		b = append(b, head...)
		c.sigOff[i] = len(b)
		b = append(b, bytes.Repeat([]byte{'0'}, sigLen)...)
		b = append(b, "\r\nContent-Length: "+strconv.Itoa(bodyLen)+"\r\n\r\n"...)
		c.bodyAt[i] = len(b)
		b = append(b, raw[:at]...)
		b = append(b, id...)
		b = append(b, raw[end:]...)
		c.types[i], c.reqs[i] = mix[i%len(mix)], b
	}
	return c
}

// customer returns the customer ID of event i.
func (c *corpus) customer(i int) string {
	if c.customers == 0 {
		return stripetest.CustomerID("")
	}
	return stripetest.CustomerID("b" + strconv.Itoa(i%c.customers))
}

func (c *corpus) len() int          { return len(c.reqs) }
func (c *corpus) body(i int) []byte { return c.reqs[i][c.bodyAt[i]:] }

// meanBody returns the mean size of the events' bodies in bytes.
func (c *corpus) meanBody() float64 {
	total := 0
	for i := range c.reqs {
		total += len(c.body(i))
	}
	return float64(total) / float64(max(1, len(c.reqs)))
}

// sign re-signs every event at ts, in place, on every core: Stripe's
// tolerance is 300 s, so a corpus is re-signed before each run.
func (c *corpus) sign(ts time.Time) {
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(c.reqs); i += workers {
				sig := webhook.ComputeSignature(ts, c.body(i), c.secret)
				v := c.reqs[i][c.sigOff[i] : c.sigOff[i]+sigLen]
				copy(v, "t="+strconv.FormatInt(ts.Unix(), 10)+",v1=")
				hex.Encode(v[len("t=1767225600,v1="):], sig)
			}
		})
	}
	wg.Wait()
}

// sendFunc delivers event i and returns nil once it is stored.
type sendFunc func(ctx context.Context, i int) error

// sender makes one sendFunc per connection, and a function that closes it.
type sender func() (sendFunc, func())

// httpSender posts the corpus's requests to addr over one keep-alive
// connection per sendFunc, writing pre-built bytes and reading the answer:
// a load generator as lean as wrk, so that the receivers get the cores.
// Anything but a 200 "Received" is an error.
func httpSender(addr string, c *corpus) sender {
	return func() (sendFunc, func()) {
		var conn net.Conn
		var br *bufio.Reader
		buf := make([]byte, 512)
		closeConn := func() {
			if conn != nil {
				conn.Close()
				conn = nil
			}
		}
		send := func(ctx context.Context, i int) error {
			if conn == nil {
				var err error
				if conn, err = (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", addr); err != nil {
					return err
				}
				br = bufio.NewReaderSize(conn, 4096)
			}
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := conn.Write(c.reqs[i]); err != nil {
				closeConn()
				return err
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				closeConn()
				return err
			}
			n, err := io.ReadFull(resp.Body, buf[:min(int(resp.ContentLength), len(buf))])
			resp.Body.Close()
			if err != nil && err != io.ErrUnexpectedEOF {
				closeConn()
				return err
			}
			if resp.StatusCode != http.StatusOK || !bytes.Contains(buf[:n], []byte(`"Received"`)) {
				return fmt.Errorf("%d %s", resp.StatusCode, bytes.TrimSpace(buf[:n]))
			}
			return nil
		}
		return send, closeConn
	}
}

// loadResult is what a run of a load generator measured.
type loadResult struct {
	ok      int             // events stored within the measured window
	okAll   int             // events stored in the whole run
	errors  map[string]int  // failures by message (first 60 bytes)
	lat     []time.Duration // latency of each stored event in the window
	elapsed time.Duration   // length of the measured window
	doneAt  []int64         // per event: when it was stored (unix ns), 0 if not
}

func (r loadResult) rate() float64 { return float64(r.ok) / r.elapsed.Seconds() }

func (r loadResult) errorCount() int { return errorCount(r.errors) }

// closedLoop sends events 0, 1, … back to back over conns connections,
// for warmup and then dur, and measures the events started after the
// warmup. It never sends more than limit events.
func closedLoop(ctx context.Context, s sender, conns int, warmup, dur time.Duration, limit int) loadResult {
	var next atomic.Int64
	start := time.Now()
	from, until := start.Add(warmup), start.Add(warmup+dur)
	res := loadResult{errors: map[string]int{}, elapsed: dur}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			send, closeConn := s()
			defer closeConn()
			lat := make([]time.Duration, 0, 1<<14)
			ok, okAll := 0, 0
			errs := map[string]int{}
			for ctx.Err() == nil {
				t0 := time.Now()
				if t0.After(until) {
					break
				}
				i := int(next.Add(1) - 1)
				if i >= limit {
					break
				}
				err := send(ctx, i)
				if err != nil {
					errs[errKey(err)]++
					continue
				}
				okAll++
				if t0.After(from) {
					ok++
					lat = append(lat, time.Since(t0))
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.ok += ok
			res.okAll += okAll
			res.lat = append(res.lat, lat...)
			for k, v := range errs {
				res.errors[k] += v
			}
		})
	}
	wg.Wait()
	if int(next.Load()) >= limit {
		res.errors["corpus exhausted: raise -max-rate"]++
	}
	return res
}

// openLoop sends n events at rate per second over conns connections, each
// at its scheduled time (or as soon as a connection is free when the
// receiver falls behind), and records when each was stored.
func openLoop(ctx context.Context, s sender, conns int, rate float64, n int) loadResult {
	res := loadResult{errors: map[string]int{}, doneAt: make([]int64, n)}
	next := make(chan int, conns)
	start := time.Now()
	go func() {
		defer close(next)
		for i := range n {
			at := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := time.Until(at); d > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			send, closeConn := s()
			defer closeConn()
			for i := range next {
				t0 := time.Now()
				err := send(ctx, i)
				mu.Lock()
				if err != nil {
					res.errors[errKey(err)]++
				} else {
					res.doneAt[i] = time.Now().UnixNano()
					res.ok++
					res.lat = append(res.lat, time.Since(t0))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.okAll = res.ok
	res.elapsed = time.Since(start)
	return res
}

func errKey(err error) string {
	s := err.Error()
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

// quantile returns the q-quantile of ds (0 when empty).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
