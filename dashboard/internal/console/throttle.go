package console

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// Limits of the Console's reads, which run index queries in Redis.
const (
	// apiRate and apiBurst limit each user's requests to the Console's
	// JSON API and pages and to asynqmon's API, together: apiBurst at
	// once, then apiRate a second.
	apiRate  = 5
	apiBurst = 20
	// queryConcurrency index queries run at a time in one dashboard; the
	// rest wait their turn, so Redis never queues more than that many of
	// this dashboard's scripts in front of the api's commands.
	queryConcurrency = 1
)

// userLimits is a token bucket per signed-in user. Users are the
// configured accounts, so the map stays small.
type userLimits struct {
	mu    sync.Mutex
	now   func() time.Time
	rate  rate.Limit
	burst int
	users map[string]*rate.Limiter
}

func newUserLimits(r rate.Limit, burst int) *userLimits {
	return &userLimits{now: time.Now, rate: r, burst: burst, users: map[string]*rate.Limiter{}}
}

// allow takes one request of user, or reports how long to wait.
func (u *userLimits) allow(user string) (bool, time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	lim, ok := u.users[user]
	if !ok {
		lim = rate.NewLimiter(u.rate, u.burst)
		u.users[user] = lim
	}
	r := lim.ReserveN(u.now(), 1)
	if d := r.DelayFrom(u.now()); d > 0 {
		r.CancelAt(u.now())
		return false, d
	}
	return true, 0
}

// throttle answers 429 with Retry-After to a user past their rate, as a
// page to a browser asking for one; it runs after authenticate.
func (s *server) throttle() gin.HandlerFunc {
	return func(c *gin.Context) {
		if ok, wait := s.reads.allow(c.GetString(ctxUser)); !ok {
			s.tooManyRequests(c, wait, "too many requests; slow down")
			return
		}
		c.Next()
	}
}

// throttleMonitoringAPI is throttle for asynqmon's API, on the same
// per-user limits as the Console's reads: each of its calls reads Redis.
// asynqmon's pages and static files pass unlimited.
func (s *server) throttleMonitoringAPI() gin.HandlerFunc {
	limit := s.throttle()
	return func(c *gin.Context) {
		if strings.HasPrefix(c.Request.URL.Path, monitoringPath+"/api/") {
			limit(c)
			return
		}
		c.Next()
	}
}

// queryTurn waits for a turn to run an index query and returns its
// release.
func (s *server) queryTurn(ctx context.Context) (func(), error) {
	select {
	case s.querySem <- struct{}{}:
		return func() { <-s.querySem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
