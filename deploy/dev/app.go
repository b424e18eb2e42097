package main

import (
	"crypto/rand"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// sampleApp is the demo's receiving app: the endpoint of your own app
// that the worker forwards events to (DESTINATION_URL). It verifies each
// delivery with the official Go Standard Webhooks library and says what
// it got; it answers 503 with Retry-After: 2 to the very first delivery,
// to show a retry.
type sampleApp struct {
	url, secret string
	srv         *http.Server
	seen        atomic.Int64
}

// startSampleApp listens on a free loopback port with a new secret.
func startSampleApp(say func(string, ...any)) (*sampleApp, error) {
	key := make([]byte, 32)
	rand.Read(key)
	a := &sampleApp{secret: "whsec_" + base64.StdEncoding.EncodeToString(key)}
	wh, err := standardwebhooks.NewWebhook(a.secret)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a.url = "http://" + l.Addr().String() + "/stripe-events"
	a.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err := wh.Verify(body, r.Header); err != nil {
			say("sample app: refused a delivery: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if a.seen.Add(1) == 1 {
			say("sample app: %s %s — answering 503 (Retry-After: 2) to the first delivery, to show a retry",
				r.Header.Get("webhook-id"), r.Header.Get("stripe-event-type"))
			w.Header().Set("Retry-After", "2")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		say("sample app: received %s %s, %d bytes, signature verified", r.Header.Get("webhook-id"), r.Header.Get("stripe-event-type"), len(body))
		w.WriteHeader(http.StatusNoContent)
	})}
	go a.srv.Serve(l)
	return a, nil
}

func (a *sampleApp) stop() { a.srv.Close() }
