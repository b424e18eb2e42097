package console

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/stripeq/stripeq/dashboard/internal/chart"

	"github.com/gin-gonic/gin"

	"github.com/stripeq/stripeq/pkg/execindex"
)

// handleChart is GET /api/chart?<the list's filter>: the chart's counts.
func (s *server) handleChart() gin.HandlerFunc {
	return func(c *gin.Context) {
		now := time.Now()
		q, err := parseQuery(c.Request.URL.Query(), now)
		if err != nil {
			status := http.StatusBadRequest
			if !errors.Is(err, execindex.ErrInvalidFilter) {
				status = http.StatusInternalServerError
			}
			c.JSON(status, gin.H{"message": err.Error()})
			return
		}
		types, _ := s.index.Values(c.Request.Context(), execindex.FieldType)
		ch, err := s.chart(c.Request.Context(), q.Filter, types, now)
		if err != nil {
			c.Error(err)
			c.JSON(http.StatusInternalServerError, gin.H{"message": "chart failed"})
			return
		}
		c.JSON(http.StatusOK, ch)
	}
}

// chart counts what filter f received in its range, by type, and what
// failed for good, over the index's shards (chart.Count).
func (s *server) chart(ctx context.Context, f execindex.Filter, types []execindex.ValueCount, now time.Time) (chart.Chart, error) {
	return chart.Count(ctx, s.rdb, s.index.Queues(), f, types, now)
}
