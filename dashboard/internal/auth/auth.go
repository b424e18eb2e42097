// Package auth is who may use the dashboard and how hard it is to get
// in: accounts and roles (operator, viewer), sign-in with its limits
// against guessing, sessions in Redis and device cookies, the CSRF and
// Host checks, the security headers, the client address behind trusted
// proxies, and per-user rate limits (UserLimits).
//
// Internal to the dashboard command, with no compatibility promise.
package auth

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

// Role is what a signed-in user may do.
type Role string

const (
	// Operator may look, re-run, cancel and delete.
	Operator Role = "operator"
	// Viewer may only look: asynqmon is read-only and every mutating
	// route answers 403.
	Viewer Role = "viewer"
)

// Gin context keys set by Authenticate (and KeyClient by RecordClient).
const (
	KeyRole    = "role"
	KeyUser    = "user"
	KeyVia     = "auth_via" // "basic" or "session"
	KeyCSRF    = "csrf"     // the session's CSRF token
	KeySession = "session"  // the session key, for logout
)

// Account is one configured user.
type Account struct {
	user     string
	password string
	role     Role
}

// Authenticator checks credentials and sessions.
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
type Authenticator struct {
	rdb      redis.UniversalClient
	accounts []Account
	ttl      time.Duration
	limiter  *loginLimiter

	kdfMu    sync.Mutex
	kdf      *lru[[]byte]       // derived keys of proofKey
	inflight map[string]*flight // derivations in progress, by cache key
	kdfSem   chan struct{}      // concurrent Argon2id derivations
	slow     *UserLimits        // each user's derivations: KDFBurst, then one per KDFEvery

	devMu   sync.Mutex
	devKeys map[string][]byte // per account user: the key of its device cookies

	// mount is where asynqmon is mounted: its API and static files are
	// not pages, and its API is CSRF-checked by origin.
	mount string
}

// Settings are what an Authenticator checks against.
type Settings struct {
	// User and Password are the operator's (DASHBOARD_USER,
	// DASHBOARD_PASSWORD); ViewerUser and ViewerPassword the viewer's,
	// who exists only when ViewerUser is set.
	User, Password, ViewerUser, ViewerPassword string
	// SessionTTL is how long a session lasts (DASHBOARD_SESSION_TTL).
	SessionTTL time.Duration
	// Mount is the path asynqmon is mounted at, such as "/monitoring".
	Mount string
}

// New returns the Authenticator of the accounts of cfg, keeping sessions
// in rdb.
func New(rdb redis.UniversalClient, cfg Settings) *Authenticator {
	a := &Authenticator{rdb: rdb, ttl: cfg.SessionTTL, kdf: newLRU[[]byte](kdfCacheSize), inflight: map[string]*flight{},
		kdfSem: make(chan struct{}, 2), slow: NewUserLimits(rate.Every(KDFEvery), KDFBurst), devKeys: map[string][]byte{}, mount: cfg.Mount}
	a.accounts = append(a.accounts, Account{cfg.User, cfg.Password, Operator})
	if cfg.ViewerUser != "" {
		a.accounts = append(a.accounts, Account{cfg.ViewerUser, cfg.ViewerPassword, Viewer})
	}
	a.limiter = newLoginLimiter(a.accounts)
	return a
}

// check returns the Account matching user and password. It compares with
// every Account in constant time, whatever matches.
func (a *Authenticator) check(user, password string) (Account, bool) {
	gotUser := sha256.Sum256([]byte(user))
	gotPass := sha256.Sum256([]byte(password))
	var found Account
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

// Authenticate accepts HTTP Basic credentials (for scripts) or a session
// cookie (for browsers) and records the role. Without either, a browser
// asking for a page is sent to the login page; anything else gets 401 with
// a Basic challenge. Basic attempts go through the sign-in limits; a
// request past a limit is answered by tooMany (429 with Retry-After wait,
// saying msg).
func (a *Authenticator) Authenticate(tooMany func(c *gin.Context, wait time.Duration, msg string)) gin.HandlerFunc {
	return func(c *gin.Context) {
		if u, p, ok := c.Request.BasicAuth(); ok {
			acc, ok, err := a.SignIn(c.Request.Context(), Client(c), u, p, "")
			if err != nil {
				tooMany(c, RetryDelay(err), "too many failed sign-in attempts; try again later")
				return
			}
			if !ok {
				unauthorized(c)
				return
			}
			c.Set(KeyRole, string(acc.role))
			c.Set(KeyUser, acc.user)
			c.Set(KeyVia, "basic")
			c.Next()
			return
		}
		if token, err := c.Cookie(SessionCookie); err == nil && token != "" {
			sess, err := a.lookup(c.Request.Context(), token)
			if tm, ok := errors.AsType[TooMany](err); ok {
				tooMany(c, tm.RetryAfter, "too many sessions of this user to check at once; try again in a moment")
				return
			}
			switch {
			case err == nil:
				c.Set(KeyRole, sess.Role)
				c.Set(KeyUser, sess.User)
				c.Set(KeyVia, "session")
				c.Set(KeyCSRF, sess.CSRF)
				c.Set(KeySession, token)
				c.Next()
				return
			case !errors.Is(err, errNoSession):
				c.Error(err)
				c.AbortWithStatusJSON(http.StatusServiceUnavailable, gin.H{"message": "Redis does not answer"})
				return
			}
		}
		if a.WantsPage(c.Request) {
			c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request.URL.RequestURI()))
			c.Abort()
			return
		}
		unauthorized(c)
	}
}

// WantsPage reports whether r is a browser navigating to a page, which
// is better sent to the login form (or a page saying why not) than
// answered with JSON.
func (a *Authenticator) WantsPage(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	p := r.URL.Path
	if strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, a.mount+"/api/") || strings.HasPrefix(p, "/static/") || strings.HasPrefix(p, a.mount+"/static/") {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

func unauthorized(c *gin.Context) {
	c.Header("WWW-Authenticate", `Basic realm="stripeq dashboard", charset="UTF-8"`)
	c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"message": "authentication required"})
}

// RetryAfter is the Retry-After value of wait, in whole seconds.
func RetryAfter(wait time.Duration) string {
	return strconv.Itoa(int(math.Ceil(wait.Seconds())))
}

// RetryDelay is how long a refused or abandoned sign-in attempt should
// wait: TooMany's delay, else ClientEvery.
func RetryDelay(err error) time.Duration {
	if tm, ok := errors.AsType[TooMany](err); ok {
		return tm.RetryAfter
	}
	return ClientEvery
}

// SignIn checks user and password within the sign-in limits of
// loginLimiter, waiting for the attempt's turn; device is the value of
// the browser's device cookie, or "". It returns TooMany when the
// attempt is refused, or ctx's error.
func (a *Authenticator) SignIn(ctx context.Context, client, user, password, device string) (Account, bool, error) {
	done, err := a.limiter.admit(ctx, client, user, a.trustedDevice(user, device))
	if err != nil {
		return Account{}, false, err
	}
	acc, ok := a.check(user, password)
	done(ok)
	return acc, ok, nil
}

// RequireOperator answers 403 to anyone but an operator.
func RequireOperator() gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.GetString(KeyRole) != string(Operator) {
			c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"message": "viewers may not change anything; sign in as an operator"})
			return
		}
		c.Next()
	}
}

// IsSafe reports whether a method cannot change state.
func IsSafe(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// headerCSRF carries the session's CSRF token on the Console's own
// state-changing requests; formFieldCSRF carries it in a form.
const (
	headerCSRF    = "X-CSRF-Token"
	formFieldCSRF = "csrf_token"
)

// CSRF protects every state-changing request, asynqmon's API included:
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
func (a *Authenticator) CSRF() gin.HandlerFunc {
	cop := http.NewCrossOriginProtection()
	return func(c *gin.Context) {
		r := c.Request
		if IsSafe(r.Method) {
			c.Next()
			return
		}
		if err := cop.Check(r); err != nil {
			c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"message": "cross-origin request refused"})
			return
		}
		if c.GetString(KeyVia) != "session" {
			c.Next()
			return
		}
		if strings.HasPrefix(r.URL.Path, a.mount+"/") {
			if r.Header.Get("Sec-Fetch-Site") == "same-origin" || r.Header.Get("Origin") != "" {
				c.Next() // Origin, when present, was checked against Host above
				return
			}
			c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"message": "request without Origin refused"})
			return
		}
		want := c.GetString(KeyCSRF)
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
