package console

import (
	"context"
	"strings"

	"github.com/stripeq/stripeq/dashboard/internal/auth"

	"github.com/gin-gonic/gin"
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

// throttle answers 429 with Retry-After to a user past their rate, as a
// page to a browser asking for one; it runs after authenticate.
func (s *server) throttle() gin.HandlerFunc {
	return func(c *gin.Context) {
		if ok, wait := s.reads.Allow(c.GetString(auth.KeyUser)); !ok {
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
