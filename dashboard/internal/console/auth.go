package console

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"
)

// role is what a signed-in user may do.
type role string

const (
	// roleOperator may look, re-run, cancel and delete.
	roleOperator role = "operator"
	// roleViewer may only look: asynqmon is read-only and every mutating
	// route answers 403.
	roleViewer role = "viewer"
)

// Gin context keys set by authenticate.
const (
	ctxRole    = "role"
	ctxUser    = "user"
	ctxVia     = "auth_via" // "basic" or "session"
	ctxCSRF    = "csrf"     // the session's CSRF token
	ctxSession = "session"  // the session key, for logout
)

// account is one configured user.
type account struct {
	user     string
	password string
	role     role
}

// authenticator checks credentials and sessions.
//
// Sessions live in Redis, not in a signed cookie: logout and a password
// change end them at once, they survive a restart of the dashboard and
// work across replicas. The cookie holds 32 random bytes; Redis holds
// only their SHA-256, so a copy of Redis cannot be replayed as cookies.
// A session also holds a proof of its user's password, so changing
// DASHBOARD_PASSWORD signs that user out everywhere: fp, an HMAC of the
// session's own key, user and role, keyed with Argon2id of the password
// and the session's random salt (see sessionProof). Guessing the password
// from a copied record costs one Argon2id per guess and session, and the
// proof does not carry over to another key, so a copy of Redis can
// neither be replayed nor minted into new sessions without the password.
type authenticator struct {
	rdb      redis.UniversalClient
	accounts []account
	ttl      time.Duration
	limiter  *loginLimiter

	kdfMu    sync.Mutex
	kdf      *lru[[]byte]       // derived keys of proofKey
	inflight map[string]*flight // derivations in progress, by cache key
	kdfSem   chan struct{}      // concurrent Argon2id derivations
	slow     *userLimits        // each user's derivations: kdfBurst, then one per kdfEvery

	devMu   sync.Mutex
	devKeys map[string][]byte // per account user: the key of its device cookies
}

func newAuthenticator(rdb redis.UniversalClient, cfg Config) *authenticator {
	a := &authenticator{rdb: rdb, ttl: cfg.SessionTTL, kdf: newLRU[[]byte](kdfCacheSize), inflight: map[string]*flight{},
		kdfSem: make(chan struct{}, 2), slow: newUserLimits(rate.Every(kdfEvery), kdfBurst), devKeys: map[string][]byte{}}
	a.accounts = append(a.accounts, account{cfg.User, cfg.Password, roleOperator})
	if cfg.ViewerUser != "" {
		a.accounts = append(a.accounts, account{cfg.ViewerUser, cfg.ViewerPassword, roleViewer})
	}
	a.limiter = newLoginLimiter(a.accounts)
	return a
}

// check returns the account matching user and password. It compares with
// every account in constant time, whatever matches.
func (a *authenticator) check(user, password string) (account, bool) {
	gotUser := sha256.Sum256([]byte(user))
	gotPass := sha256.Sum256([]byte(password))
	var found account
	ok := 0
	for _, acc := range a.accounts {
		wantUser := sha256.Sum256([]byte(acc.user))
		wantPass := sha256.Sum256([]byte(acc.password))
		match := subtle.ConstantTimeCompare(gotUser[:], wantUser[:]) & subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
		if match == 1 {
			found = acc
		}
		ok |= match
	}
	return found, ok == 1
}

// authenticate accepts HTTP Basic credentials (for scripts) or a session
// cookie (for browsers) and records the role. Without either, a browser
// asking for a page is sent to the login page; anything else gets 401 with
// a Basic challenge. Basic attempts go through the sign-in limits.
func (s *server) authenticate() gin.HandlerFunc {
	return func(c *gin.Context) {
		if u, p, ok := c.Request.BasicAuth(); ok {
			acc, ok, err := s.auth.signIn(c.Request.Context(), client(c), u, p, "")
			if err != nil {
				s.tooManyRequests(c, retryDelay(err), "too many failed sign-in attempts; try again later")
				return
			}
			if !ok {
				unauthorized(c)
				return
			}
			c.Set(ctxRole, string(acc.role))
			c.Set(ctxUser, acc.user)
			c.Set(ctxVia, "basic")
			c.Next()
			return
		}
		if token, err := c.Cookie(sessionCookie); err == nil && token != "" {
			sess, err := s.auth.lookup(c.Request.Context(), token)
			if tm, ok := errors.AsType[errTooMany](err); ok {
				s.tooManyRequests(c, tm.RetryAfter, "too many sessions of this user to check at once; try again in a moment")
				return
			}
			switch {
			case err == nil:
				c.Set(ctxRole, sess.Role)
				c.Set(ctxUser, sess.User)
				c.Set(ctxVia, "session")
				c.Set(ctxCSRF, sess.CSRF)
				c.Set(ctxSession, token)
				c.Next()
				return
			case !errors.Is(err, errNoSession):
				c.Error(err)
				c.AbortWithStatusJSON(http.StatusServiceUnavailable, gin.H{"message": "Redis does not answer"})
				return
			}
		}
		if wantsPage(c.Request) {
			c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request.URL.RequestURI()))
			c.Abort()
			return
		}
		unauthorized(c)
	}
}

// wantsPage reports whether r is a browser navigating to a page, which
// is better sent to the login form than answered 401.
func wantsPage(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	p := r.URL.Path
	if strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, monitoringPath+"/api/") || strings.HasPrefix(p, "/static/") || strings.HasPrefix(p, monitoringPath+"/static/") {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

func unauthorized(c *gin.Context) {
	c.Header("WWW-Authenticate", `Basic realm="stripeq dashboard", charset="UTF-8"`)
	c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"message": "authentication required"})
}

// tooManyRequests answers 429 with Retry-After, after wait: a page saying
// msg to a browser asking for a page, else JSON {"message": msg}.
func (s *server) tooManyRequests(c *gin.Context, wait time.Duration, msg string) {
	c.Header("Retry-After", retryAfter(wait))
	if wantsPage(c.Request) {
		s.render(c, http.StatusTooManyRequests, "error", map[string]any{"Title": "Too many requests", "Message": msg})
		c.Abort()
		return
	}
	c.AbortWithStatusJSON(http.StatusTooManyRequests, gin.H{"message": msg})
}

// retryAfter is the Retry-After value of wait, in whole seconds.
func retryAfter(wait time.Duration) string {
	return strconv.Itoa(int(math.Ceil(wait.Seconds())))
}

// retryDelay is how long a refused or abandoned sign-in attempt should
// wait: errTooMany's delay, else clientEvery.
func retryDelay(err error) time.Duration {
	if tm, ok := errors.AsType[errTooMany](err); ok {
		return tm.RetryAfter
	}
	return clientEvery
}

// signIn checks user and password within the sign-in limits of
// loginLimiter, waiting for the attempt's turn; device is the value of
// the browser's device cookie, or "". It returns errTooMany when the
// attempt is refused, or ctx's error.
func (a *authenticator) signIn(ctx context.Context, client, user, password, device string) (account, bool, error) {
	done, err := a.limiter.admit(ctx, client, user, a.trustedDevice(user, device))
	if err != nil {
		return account{}, false, err
	}
	acc, ok := a.check(user, password)
	done(ok)
	return acc, ok, nil
}

// requireOperator answers 403 to anyone but an operator.
func requireOperator() gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.GetString(ctxRole) != string(roleOperator) {
			c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"message": "viewers may not change anything; sign in as an operator"})
			return
		}
		c.Next()
	}
}

// isSafe reports whether a method cannot change state.
func isSafe(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// headerCSRF carries the session's CSRF token on the Console's own
// state-changing requests; formFieldCSRF carries it in a form.
const (
	headerCSRF    = "X-CSRF-Token"
	formFieldCSRF = "csrf_token"
)

// csrf protects every state-changing request, asynqmon's API included:
//
//   - Any cross-origin browser request is refused, by Sec-Fetch-Site or,
//     in older browsers, Origin against Host (http.CrossOriginProtection).
//     This covers Basic credentials a browser has cached, too.
//   - A request authenticated by the session cookie must also prove it
//     comes from our own pages: asynqmon's API calls by a same-origin
//     Sec-Fetch-Site or Origin (its JavaScript cannot send our token), and
//     the Console's routes by the session's token in X-CSRF-Token or the
//     csrf_token form field.
//   - A request with Basic credentials and neither header is a script
//     (curl); it is not forgeable by a page and passes.
//
// The cookie is also SameSite=Strict, so a cross-site request does not
// even carry it.
func (s *server) csrf() gin.HandlerFunc {
	cop := http.NewCrossOriginProtection()
	return func(c *gin.Context) {
		r := c.Request
		if isSafe(r.Method) {
			c.Next()
			return
		}
		if err := cop.Check(r); err != nil {
			c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"message": "cross-origin request refused"})
			return
		}
		if c.GetString(ctxVia) != "session" {
			c.Next()
			return
		}
		if strings.HasPrefix(r.URL.Path, monitoringPath+"/") {
			if r.Header.Get("Sec-Fetch-Site") == "same-origin" || r.Header.Get("Origin") != "" {
				c.Next() // Origin, when present, was checked against Host above
				return
			}
			c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"message": "request without Origin refused"})
			return
		}
		want := c.GetString(ctxCSRF)
		got := r.Header.Get(headerCSRF)
		if got == "" {
			got = r.PostFormValue(formFieldCSRF)
		}
		if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"message": "missing or wrong CSRF token"})
			return
		}
		c.Next()
	}
}
