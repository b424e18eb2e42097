package main

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// recorder is the Stripe API the workers call at handler start: it serves
// the corpus's events at /v1/events/{id} and records when each is first
// requested. It is also the destination of the forward target: a POST
// records the arrival of the event its webhook-id names.
type recorder struct {
	srv *http.Server
	url string
	cur atomic.Pointer[recording]
}

// recording is what the recorder holds for one run.
type recording struct {
	corpus   *corpus
	arrivals []atomic.Int64 // first request of event i, unix ns
	handled  atomic.Int64   // events requested at least once
}

func startRecorder() (*recorder, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &recorder{url: "http://" + l.Addr().String()}
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	go r.srv.Serve(l)
	return r, nil
}

func (r *recorder) close() { r.srv.Close() }

// reset starts a new recording for c; call it while no worker runs.
func (r *recorder) reset(c *corpus) *recording {
	rec := &recording{corpus: c, arrivals: make([]atomic.Int64, c.len())}
	r.cur.Store(rec)
	return rec
}

func (r *recorder) serve(w http.ResponseWriter, req *http.Request) {
	now := time.Now().UnixNano()
	rec := r.cur.Load()
	if req.Method == http.MethodPost { // a forwarded event (forward.go)
		io.Copy(io.Discard, req.Body)
		if i, ok := eventIndex(req.Header.Get("webhook-id")); ok && rec != nil && i < len(rec.arrivals) && rec.arrivals[i].CompareAndSwap(0, now) {
			rec.handled.Add(1)
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	i, ok := eventIndex(strings.TrimPrefix(req.URL.Path, "/v1/events/"))
	if rec == nil || !ok || i >= len(rec.arrivals) {
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"error":{"type":"invalid_request_error","message":"No such event"}}`))
		return
	}
	if rec.arrivals[i].CompareAndSwap(0, now) {
		rec.handled.Add(1)
	}
	body := rec.corpus.body(i)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// startsBetween counts the handler starts in [from, until).
func (rec *recording) startsBetween(from, until time.Time) int {
	n := 0
	f, u := from.UnixNano(), until.UnixNano()
	for i := range rec.arrivals {
		if a := rec.arrivals[i].Load(); a >= f && a < u {
			n++
		}
	}
	return n
}

// waitHandled waits until n events have started, for up to timeout, and
// returns how many have.
func (rec *recording) waitHandled(n int, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for int(rec.handled.Load()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return int(rec.handled.Load())
}
