package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/dashboard/internal/auth"
)

// fakeTime makes the sign-in limits' clock and waits virtual: a wait
// advances the clock. It returns the total time waited so far.
func fakeTime(a *auth.Authenticator) (waited func() time.Duration) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var total time.Duration
	a.SetClock(func() time.Time { return now }, func(_ context.Context, d time.Duration) error {
		if d > 0 {
			now = now.Add(d)
			total += d
		}
		return nil
	})
	return func() time.Duration { return total }
}

// loginForm is a sign-in through the form from remote, with extra headers.
func loginForm(user, pass, remote string, headers ...string) req {
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for i := 0; i+1 < len(headers); i += 2 {
		h[headers[i]] = headers[i+1]
	}
	return req{method: "POST", path: "/login", body: url.Values{"user": {user}, "password": {pass}}.Encode(), headers: h, remote: remote}
}

// TestLoginLimits: failures from one client, or under one name, never
// lock out another client or another name; the account is slowed down
// however many addresses guess; forwarding headers count only from
// TRUSTED_PROXIES.
func TestLoginLimits(t *testing.T) {
	const attacker, operator = "198.51.100.7:4000", "203.0.113.9:5000"
	tests := []struct {
		name    string
		proxies string // TRUSTED_PROXIES
		run     func(t *testing.T, b *bundle, waited func() time.Duration)
	}{
		{"a client's own failures refuse that client, for that name only", "", func(t *testing.T, b *bundle, _ func() time.Duration) {
			exhaust(t, b, loginForm(opUser, "wrong", attacker))
			if rec := b.do(t, loginForm(opUser, opPass, attacker)); rec.Code != 429 || rec.Header().Get("Retry-After") == "" {
				t.Errorf("attacker's own next attempt: %d, want 429 with Retry-After", rec.Code)
			}
			if rec := b.do(t, loginForm(opUser, opPass, operator)); rec.Code != 303 {
				t.Errorf("operator from another address, right password: %d, want 303", rec.Code)
			}
			if rec := b.do(t, req{path: "/api/executions", user: opUser, pass: opPass, remote: operator}); rec.Code != 200 {
				t.Errorf("operator with Basic from another address: %d, want 200", rec.Code)
			}
			if rec := b.do(t, loginForm(viewerUser, viewerPass, attacker)); rec.Code != 303 {
				t.Errorf("another account from the attacker's address: %d, want 303", rec.Code)
			}
		}},
		{"failures under one name do not lock out another", "", func(t *testing.T, b *bundle, _ func() time.Duration) {
			for range 3 * auth.ClientBurst {
				b.do(t, loginForm(viewerUser, "wrong", attacker))
				b.do(t, loginForm("nobody", "wrong", attacker))
			}
			if rec := b.do(t, loginForm(opUser, opPass, attacker)); rec.Code != 303 {
				t.Errorf("operator from the same address after failures as viewer and nobody: %d, want 303", rec.Code)
			}
			if rec := b.do(t, req{path: "/api/executions", user: opUser, pass: opPass, remote: attacker}); rec.Code != 200 {
				t.Errorf("Basic as operator from the same address: %d, want 200", rec.Code)
			}
		}},
		{"many addresses: the account slows down but still admits its password", "", func(t *testing.T, b *bundle, waited func() time.Duration) {
			const n = 300
			for i := range n {
				remote := fmt.Sprintf("10.%d.%d.1:1000", i/250, i%250)
				if rec := b.do(t, loginForm(opUser, "wrong", remote)); rec.Code != 401 {
					t.Fatalf("guess %d from a fresh address: %d, want 401 (delayed, not refused)", i, rec.Code)
				}
			}
			// The guesses took (virtual) time: at most one per auth.AccountMax
			// once the backoff is at its top.
			if min := time.Duration(n-auth.AccountFree-10) * auth.AccountMax; waited() < min {
				t.Errorf("%d guesses from %d addresses waited %v in all, want at least %v", n, n, waited(), min)
			}
			before := waited()
			if rec := b.do(t, loginForm(opUser, opPass, operator)); rec.Code != 303 {
				t.Errorf("operator's right password after the flood: %d, want 303", rec.Code)
			}
			if w := waited() - before; w > auth.AccountMax {
				t.Errorf("operator waited %v, want at most %v", w, auth.AccountMax)
			}
			// The success ends the streak.
			before = waited()
			b.do(t, loginForm(opUser, opPass, operator))
			b.do(t, loginForm(opUser, opPass, operator))
			if w := waited() - before; w > 0 {
				t.Errorf("after a success, sign-in still waits %v", w)
			}
		}},
		{"X-Forwarded-For from an untrusted peer is ignored", "", func(t *testing.T, b *bundle, _ func() time.Duration) {
			for i := 0; ; i++ {
				rec := b.do(t, loginForm(opUser, "wrong", attacker, "X-Forwarded-For", fmt.Sprintf("192.0.2.%d", i), "X-Real-IP", fmt.Sprintf("192.0.2.%d", i)))
				if rec.Code == 429 {
					break
				}
				if i > 2*auth.ClientBurst {
					t.Fatalf("%d guesses naming a new X-Forwarded-For each were never refused", i)
				}
			}
		}},
		{"behind a trusted proxy each client has its own limit", "10.9.0.0/16, 127.0.0.1", func(t *testing.T, b *bundle, _ func() time.Duration) {
			const proxy = "10.9.0.2:33000"
			exhaust(t, b, loginForm(opUser, "wrong", proxy, "X-Forwarded-For", "198.51.100.7"))
			if rec := b.do(t, loginForm(opUser, opPass, proxy, "X-Forwarded-For", "198.51.100.7")); rec.Code != 429 {
				t.Errorf("attacker through the proxy: %d, want 429", rec.Code)
			}
			// A client cannot pose as another by prepending to the list:
			// the proxy appends the address it saw.
			if rec := b.do(t, loginForm(opUser, opPass, proxy, "X-Forwarded-For", "203.0.113.9, 198.51.100.7")); rec.Code != 429 {
				t.Errorf("attacker naming another address first: %d, want 429", rec.Code)
			}
			if rec := b.do(t, loginForm(opUser, opPass, proxy, "X-Forwarded-For", "203.0.113.9")); rec.Code != 303 {
				t.Errorf("operator through the same proxy: %d, want 303", rec.Code)
			}
			if rec := b.do(t, loginForm(opUser, opPass, proxy, "X-Real-IP", "203.0.113.10")); rec.Code != 303 {
				t.Errorf("operator named by X-Real-IP: %d, want 303", rec.Code)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setupEnv(t, nil, map[string]string{"TRUSTED_PROXIES": tt.proxies})
			tt.run(t, b, fakeTime(b.srv.auth))
		})
	}
}

// exhaust repeats a failing sign-in r until it is refused, and fails the
// test if the client limit never refuses it.
func exhaust(t *testing.T, b *bundle, r req) {
	t.Helper()
	for i := range 2 * auth.ClientBurst {
		switch rec := b.do(t, r); rec.Code {
		case 429:
			if i < auth.ClientBurst {
				t.Fatalf("refused after %d failures, want at least %d", i, auth.ClientBurst)
			}
			return
		case 401:
		default:
			t.Fatalf("attempt %d: %d", i, rec.Code)
		}
	}
	t.Fatalf("%d failures from one client were never refused", 2*auth.ClientBurst)
}

// TestGuessesAreCountedBeforeTheyAreChecked: 500 concurrent guesses from
// one address get at most auth.ClientBurst passwords checked; the rest are
// refused before any check.
func TestGuessesAreCountedBeforeTheyAreChecked(t *testing.T) {
	b := setup(t, nil)
	// Admitted attempts wait at the gate until every attempt is either
	// admitted or refused, so that none is checked before all are counted.
	admitted, gate := make(chan struct{}, 500), make(chan struct{})
	b.srv.auth.SetClock(nil, func(ctx context.Context, _ time.Duration) error {
		admitted <- struct{}{}
		<-gate
		return nil
	})
	const n = 500
	codes := make(chan int, n)
	for range n {
		go func() { codes <- b.do(t, loginForm(opUser, "wrong", "198.51.100.7:4000")).Code }()
	}
	got := map[int]int{}
	for waiting := 0; waiting+got[429] < n; {
		select {
		case <-admitted:
			waiting++
		case code := <-codes:
			got[code]++
		}
	}
	close(gate)
	for got[401]+got[429] < n {
		got[<-codes]++
	}
	if got[401] > auth.ClientBurst || got[401] == 0 || got[429] != n-got[401] {
		t.Errorf("%d concurrent guesses: %v; want at most %d checked (401), the rest refused (429)", n, got, auth.ClientBurst)
	}
}

// TestDeviceCookieKeepsTheOperatorIn: a browser that signed in before
// keeps signing in while guesses from many addresses hold the account's
// queue (OWASP's device cookies); without the cookie, or with a forged
// one, it waits as any client; a device's own failures lock out only that
// device.
func TestDeviceCookieKeepsTheOperatorIn(t *testing.T) {
	b := setup(t, nil)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	// The guesses arrive at once.
	b.srv.auth.SetClock(func() time.Time { return now }, func(context.Context, time.Duration) error { return nil })
	const operator = "203.0.113.9:5000"
	rec := b.do(t, loginForm(opUser, opPass, operator))
	var device *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == auth.DeviceCookie {
			device = c
		}
	}
	if rec.Code != 303 || device == nil || !device.HttpOnly || device.SameSite != http.SameSiteStrictMode || device.Path != "/login" {
		t.Fatalf("sign-in: %d, device cookie %+v", rec.Code, device)
	}
	for i := range 40 {
		b.do(t, loginForm(opUser, "wrong", fmt.Sprintf("10.0.%d.1:1000", i)))
	}
	withCookie := func(r req, c *http.Cookie) req { r.cookie = c; return r }
	forged := &http.Cookie{Name: auth.DeviceCookie, Value: strings.Repeat("A", 26) + "." + strings.Repeat("0", 64)}
	if rec := b.do(t, loginForm(opUser, opPass, "203.0.113.10:5000")); rec.Code != 429 {
		t.Errorf("a new browser while the account is flooded: %d, want 429", rec.Code)
	}
	if rec := b.do(t, withCookie(loginForm(opUser, opPass, "203.0.113.10:5000"), forged)); rec.Code != 429 {
		t.Errorf("a forged device cookie: %d, want 429", rec.Code)
	}
	if rec := b.do(t, withCookie(loginForm(viewerUser, viewerPass, operator), device)); rec.Code != 303 {
		t.Errorf("the viewer from the operator's browser: %d, want 303", rec.Code)
	}
	if rec := b.do(t, withCookie(loginForm(opUser, opPass, "203.0.113.10:5000"), device)); rec.Code != 303 {
		t.Fatalf("the operator's browser while the account is flooded: %d, want 303", rec.Code)
	}
	// Guesses with a stolen device cookie: its own limit, then it counts
	// for nothing.
	for i := range auth.ClientBurst {
		if rec := b.do(t, withCookie(loginForm(opUser, "wrong", fmt.Sprintf("10.1.%d.1:1000", i)), device)); rec.Code != 401 {
			t.Fatalf("guess %d with the device cookie: %d, want 401", i, rec.Code)
		}
	}
	if rec := b.do(t, withCookie(loginForm(opUser, opPass, "10.1.99.1:1000"), device)); rec.Code != 429 {
		t.Errorf("the device cookie past its own failures, while the account is flooded: %d, want 429", rec.Code)
	}
}
