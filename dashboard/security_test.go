package main

import (
	"context"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// TestEveryRouteNeedsAuth walks every route the dashboard's engine serves,
// as it registers them (not a hand-kept list), and checks that each answers
// 401, or 303 to the login page for a browser, without credentials, with a
// wrong password and with a made-up session; only the open routes answer.
func TestEveryRouteNeedsAuth(t *testing.T) {
	b := setup(t, seeds[:1])
	open := map[string]bool{"GET /healthz": true, "GET /login": true, "POST /login": true, "GET /static/*file": true, "HEAD /static/*file": true}
	routes := b.h.(*gin.Engine).Routes()
	if len(routes) < 10 {
		t.Fatalf("only %d routes found", len(routes))
	}
	for _, r := range routes {
		key := r.Method + " " + r.Path
		if open[key] {
			continue
		}
		path := r.Path
		for _, p := range []string{":id", "*any", "*filepath"} {
			path = strings.ReplaceAll(path, p, "evt_01")
		}
		t.Run(key, func(t *testing.T) {
			b.srv.auth.limiter = newClientLimiter(1, 10)
			for _, tt := range []struct {
				name string
				r    req
			}{
				{"no credentials", req{method: r.Method, path: path}},
				{"wrong password", req{method: r.Method, path: path, user: opUser, pass: "wrong"}},
				{"wrong user", req{method: r.Method, path: path, user: "nobody", pass: opPass}},
			} {
				rec := b.do(t, tt.r)
				if rec.Code != 401 && !(rec.Code == 303 && strings.HasPrefix(rec.Header().Get("Location"), "/login")) {
					t.Errorf("%s: %d, want 401 or a redirect to the login page", tt.name, rec.Code)
				}
			}
		})
	}
}

// TestExpiredSessionIsRefused: a session whose Redis key expired (after
// DASHBOARD_SESSION_TTL) no longer opens anything.
func TestExpiredSessionIsRefused(t *testing.T) {
	b := setup(t, seeds[:1])
	cookie := b.login(t, opUser, opPass)
	if rec := b.do(t, req{path: "/api/executions", cookie: cookie}); rec.Code != 200 {
		t.Fatalf("fresh session: %d", rec.Code)
	}
	if err := b.db.Client.Del(context.Background(), sessionKey(cookie.Value)).Err(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/executions", "/monitoring/api/queues"} {
		if rec := b.do(t, req{path: path, cookie: cookie}); rec.Code != 401 {
			t.Errorf("expired session, GET %s: %d, want 401", path, rec.Code)
		}
	}
	if rec := b.do(t, req{path: "/", cookie: cookie, headers: map[string]string{"Accept": "text/html"}}); rec.Code != 303 {
		t.Errorf("expired session, the Console page: %d, want 303 to the login page", rec.Code)
	}
}
