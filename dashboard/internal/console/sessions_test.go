package console

import (
	"net/http"
	"testing"
	"time"

	"github.com/stripeq/stripeq/dashboard/internal/auth"

	"golang.org/x/time/rate"

	"github.com/stripeq/stripeq/pkg/keyspace"
)

// TestSessionsPerUserAreBounded: each user keeps at most
// auth.MaxSessionsPerUser sessions; a new sign-in ends the oldest, and another
// user's sessions are left alone.
func TestSessionsPerUserAreBounded(t *testing.T) {
	b := setup(t, nil)
	op := b.login(t, opUser, opPass)
	var cookies []*http.Cookie
	for range auth.MaxSessionsPerUser + 3 {
		cookies = append(cookies, b.login(t, viewerUser, viewerPass))
	}
	for i, c := range cookies {
		want := 200
		if i < 3 {
			want = 401
		}
		if rec := b.do(t, req{path: "/api/facets", cookie: c}); rec.Code != want {
			t.Errorf("viewer's session %d: %d, want %d", i+1, rec.Code, want)
		}
	}
	if rec := b.do(t, req{path: "/api/facets", cookie: op}); rec.Code != 200 {
		t.Errorf("the operator's session: %d", rec.Code)
	}
	if n := len(b.db.Client.Keys(t.Context(), keyspace.DashboardSession("*")).Val()); n != auth.MaxSessionsPerUser+1 {
		t.Errorf("%d sessions in Redis, want %d", n, auth.MaxSessionsPerUser+1)
	}
}

// TestSessionChecksAreRateLimitedBeforeArgon2id: a session whose key is
// not in memory costs an Argon2id; each user gets auth.KDFBurst of those at
// once, then one per auth.KDFEvery, counted before the derivation (a sign-in
// is one too); cached sessions cost nothing and are not limited, and the
// other user is not slowed.
func TestSessionChecksAreRateLimitedBeforeArgon2id(t *testing.T) {
	b := setup(t, nil)
	a := b.srv.auth
	slow := auth.NewUserLimits(rate.Every(auth.KDFEvery), auth.KDFBurst)
	now := time.Now()
	slow.SetClock(func() time.Time { return now })
	a.SetDerivationLimits(slow)
	var cookies []*http.Cookie
	for range auth.KDFBurst {
		cookies = append(cookies, b.login(t, viewerUser, viewerPass))
	}
	form := loginForm(viewerUser, viewerPass, "192.0.2.1:1000")
	if rec := b.do(t, form); rec.Code != 429 || rec.Header().Get("Retry-After") == "" {
		t.Errorf("a sign-in past the viewer's derivations: %d, want 429 with Retry-After", rec.Code)
	}
	b.login(t, opUser, opPass)
	session := func(c *http.Cookie) int { return b.do(t, req{path: "/api/facets", cookie: c}).Code }
	if code := session(cookies[0]); code != 200 {
		t.Errorf("a cached session with no derivation left: %d, want 200", code)
	}
	a.ForgetKeys() // its keys forgotten: a restart, or thrashing
	if code := session(cookies[0]); code != 429 {
		t.Errorf("an uncached session with no derivation left: %d, want 429", code)
	}
	now = now.Add(auth.KDFBurst * auth.KDFEvery)
	for i, c := range cookies {
		if code := session(c); code != 200 {
			t.Errorf("session %d once the limit refilled: %d, want 200", i+1, code)
		}
	}
	for i, c := range cookies {
		if code := session(c); code != 200 {
			t.Errorf("session %d again, cached: %d, want 200", i+1, code)
		}
	}
}
