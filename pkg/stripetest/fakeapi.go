package stripetest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// API is a fake of the parts of Stripe's API that stripeq calls, serving
// stored, real-shaped events as Stripe would, and enforcing its limits:
//
//   - GET /v1/events: newest first; limit (1 to 100, default 10),
//     starting_after, created[gt|gte|lt|lte], type, types[] (at most 20,
//     and not with type: 400 otherwise); the events of the account named
//     by the Stripe-Account header, else the platform's.
//   - GET /v1/events/{id}: one event, of the Stripe-Account as above.
//   - GET /v1/accounts: the connected accounts, paged the same way.
//   - GET /v1/payment_intents/{id} and /v1/charges/{id}: objects stored
//     with [API.AddObject], as Stripe renders them at stripe-go v76's
//     version (2023-10-16), which the worker asks for.
//
// Every request needs "Authorization: Bearer sk_…" or "rk_…" (401
// otherwise). [API.Fail429] makes the next requests answer 429 with a
// Retry-After. stripe-mock cannot do this: it is stateless.
type API struct {
	*httptest.Server

	mu         sync.Mutex
	events     map[string][]storedEvent   // by account; "" is the platform
	objects    map[string]json.RawMessage // by account + " " + path, e.g. "/v1/charges/ch_1"
	accounts   []string
	fail429    int
	retryAfter int
	requests   []Request
}

// Request is what [API] recorded of one request it received.
type Request struct {
	Method, Path string
	Query        string // the raw query
	Account      string // the Stripe-Account header
	Version      string // the Stripe-Version header
	Status       int    // the status answered
}

type storedEvent struct {
	id      string
	typ     string
	created int64
	body    json.RawMessage
}

// NewAPI starts an API, closed when t ends.
func NewAPI(t testing.TB) *API {
	a := &API{events: map[string][]storedEvent{}, objects: map[string]json.RawMessage{}}
	a.Server = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.Close)
	return a
}

// Add stores events (event JSON, as [Event] makes them) under account
// ("" for the platform). A non-empty account is also listed by GET
// /v1/accounts, and its events get "account" set, as Stripe sets it on a
// connected account's events.
func (a *API) Add(account string, bodies ...[]byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if account != "" && !slices.Contains(a.accounts, account) {
		a.accounts = append(a.accounts, account)
	}
	for _, b := range bodies {
		if account != "" {
			b = Edit(b, func(e map[string]any) { e["account"] = account })
		}
		var e struct {
			ID      string `json:"id"`
			Type    string `json:"type"`
			Created int64  `json:"created"`
		}
		if err := json.Unmarshal(b, &e); err != nil {
			panic(fmt.Sprintf("stripetest: Add of a body that is not an event: %v", err))
		}
		a.events[account] = append(a.events[account], storedEvent{e.ID, e.Type, e.Created, b})
	}
	for _, list := range a.events {
		// Newest first; Stripe breaks ties by ID, newest first as well.
		slices.SortStableFunc(list, func(x, y storedEvent) int {
			if x.created != y.created {
				return int(y.created - x.created)
			}
			return strings.Compare(y.id, x.id)
		})
	}
}

// AddObject stores Stripe objects (their JSON, with "id" and "object")
// under account ("" for the platform), served at GET
// /v1/payment_intents/{id} for a payment_intent and /v1/charges/{id} for
// a charge. It panics on any other kind of object.
func (a *API) AddObject(account string, objects ...[]byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if account != "" && !slices.Contains(a.accounts, account) {
		a.accounts = append(a.accounts, account)
	}
	for _, b := range objects {
		var o struct {
			ID     string `json:"id"`
			Object string `json:"object"`
		}
		if err := json.Unmarshal(b, &o); err != nil || o.ID == "" {
			panic(fmt.Sprintf("stripetest: AddObject of a body that is not an object with an id: %v", err))
		}
		path, ok := objectPaths[o.Object]
		if !ok {
			panic("stripetest: AddObject of a " + o.Object + ", which API does not serve")
		}
		a.objects[account+" "+path+o.ID] = b
	}
}

// objectPaths are where API serves each kind of object AddObject takes.
var objectPaths = map[string]string{"payment_intent": "/v1/payment_intents/", "charge": "/v1/charges/"}

// Fail429 makes the next n requests answer 429 with Retry-After:
// retryAfter seconds (no header when negative).
func (a *API) Fail429(n, retryAfter int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.fail429 = n
	a.retryAfter = retryAfter
}

// Requests returns the requests received so far.
func (a *API) Requests() []Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.requests)
}

func (a *API) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	rec := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Account: r.Header.Get("Stripe-Account"), Version: r.Header.Get("Stripe-Version")}
	status := a.answer(w, r, rec.Account)
	rec.Status = status
	a.requests = append(a.requests, rec)
}

// stripeError writes Stripe's error shape.
func stripeError(w http.ResponseWriter, status int, typ, msg string) int {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"type": typ, "message": msg}})
	return status
}

func (a *API) answer(w http.ResponseWriter, r *http.Request, account string) int {
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !(strings.HasPrefix(key, "sk_") || strings.HasPrefix(key, "rk_")) {
		return stripeError(w, http.StatusUnauthorized, "invalid_request_error", "Invalid API Key provided")
	}
	if a.fail429 > 0 {
		a.fail429--
		if a.retryAfter >= 0 {
			w.Header().Set("Retry-After", strconv.Itoa(a.retryAfter))
		}
		return stripeError(w, http.StatusTooManyRequests, "invalid_request_error", "Too many requests hit the API too quickly.")
	}
	if r.Method != http.MethodGet {
		return stripeError(w, http.StatusMethodNotAllowed, "invalid_request_error", "method not allowed")
	}
	if account != "" && !slices.Contains(a.accounts, account) {
		return stripeError(w, http.StatusForbidden, "invalid_request_error", "The provided key does not have access to account '"+account+"'")
	}
	switch {
	case r.URL.Path == "/v1/events":
		return a.listEvents(w, r, account)
	case strings.HasPrefix(r.URL.Path, "/v1/events/"):
		id := strings.TrimPrefix(r.URL.Path, "/v1/events/")
		for _, e := range a.events[account] {
			if e.id == id {
				w.Header().Set("Content-Type", "application/json")
				w.Write(e.body)
				return http.StatusOK
			}
		}
		return stripeError(w, http.StatusNotFound, "invalid_request_error", "No such event: '"+id+"'")
	case strings.HasPrefix(r.URL.Path, "/v1/payment_intents/"), strings.HasPrefix(r.URL.Path, "/v1/charges/"):
		if b, ok := a.objects[account+" "+r.URL.Path]; ok {
			w.Header().Set("Content-Type", "application/json")
			w.Write(b)
			return http.StatusOK
		}
		return stripeError(w, http.StatusNotFound, "invalid_request_error", "No such object: '"+path.Base(r.URL.Path)+"'")
	case r.URL.Path == "/v1/accounts":
		var objs []json.RawMessage
		for _, id := range a.accounts {
			objs = append(objs, json.RawMessage(fmt.Sprintf(`{"id":%q,"object":"account"}`, id)))
		}
		ids := slices.Clone(a.accounts)
		return page(w, r, "/v1/accounts", ids, objs)
	}
	return stripeError(w, http.StatusNotFound, "invalid_request_error", "Unrecognized request URL")
}

func (a *API) listEvents(w http.ResponseWriter, r *http.Request, account string) int {
	q := r.URL.Query()
	var types []string
	for k, v := range q {
		if k == "types[]" || strings.HasPrefix(k, "types[") {
			types = append(types, v...)
		}
	}
	if len(types) > 20 {
		return stripeError(w, http.StatusBadRequest, "invalid_request_error", "types: at most 20 types may be given")
	}
	if len(types) > 0 && q.Get("type") != "" {
		return stripeError(w, http.StatusBadRequest, "invalid_request_error", "You may only specify one of these parameters: type, types.")
	}
	bound := func(name string) (int64, bool, error) {
		v := q.Get("created[" + name + "]")
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		return n, true, err
	}
	var ids []string
	var objs []json.RawMessage
	for _, e := range a.events[account] {
		keep := true
		for _, c := range []struct {
			name string
			ok   func(int64) bool
		}{
			{"gt", func(n int64) bool { return e.created > n }},
			{"gte", func(n int64) bool { return e.created >= n }},
			{"lt", func(n int64) bool { return e.created < n }},
			{"lte", func(n int64) bool { return e.created <= n }},
		} {
			n, set, err := bound(c.name)
			if err != nil {
				return stripeError(w, http.StatusBadRequest, "invalid_request_error", "created["+c.name+"]: invalid integer")
			}
			if set && !c.ok(n) {
				keep = false
			}
		}
		if t := q.Get("type"); t != "" && !typeMatches(t, e.typ) {
			keep = false
		}
		if len(types) > 0 && !slices.ContainsFunc(types, func(t string) bool { return typeMatches(t, e.typ) }) {
			keep = false
		}
		if keep {
			ids = append(ids, e.id)
			objs = append(objs, e.body)
		}
	}
	return page(w, r, "/v1/events", ids, objs)
}

// typeMatches reports whether pattern ("invoice.paid" or "invoice.*")
// matches t.
func typeMatches(pattern, t string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(t, p)
	}
	return pattern == t
}

// page writes one page of a Stripe list of objs (with IDs ids), by the
// limit and starting_after of r.
func page(w http.ResponseWriter, r *http.Request, url string, ids []string, objs []json.RawMessage) int {
	q := r.URL.Query()
	limit := 10
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return stripeError(w, http.StatusBadRequest, "invalid_request_error", "limit: must be between 1 and 100")
		}
		limit = n
	}
	start := 0
	if after := q.Get("starting_after"); after != "" {
		i := slices.Index(ids, after)
		if i < 0 {
			return stripeError(w, http.StatusBadRequest, "invalid_request_error", "starting_after: no such object: '"+after+"'")
		}
		start = i + 1
	}
	end := min(start+limit, len(objs))
	data := objs[start:end]
	if data == nil {
		data = []json.RawMessage{}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"object": "list", "url": url, "has_more": end < len(objs), "data": data})
	return http.StatusOK
}
