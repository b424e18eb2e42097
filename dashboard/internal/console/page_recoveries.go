package console

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// recoveryPageSize is how many recoveries the page's history shows.
const recoveryPageSize = 20

// handleRecoveriesPage is the Console's "Recover missed events" page: the
// window picker, a dry-run preview and a run for operators (viewers see
// the history only), the missing events a dry run listed with "Store
// these N events" (POST /api/recoveries?from=rec_…), and the history of
// recoveries, each run linking to the executions it stored. The page's script
// (static/recoveries.js) starts recoveries with POST /api/recoveries and
// follows them with GET /api/recoveries/{id}.
func (s *server) handleRecoveriesPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		data := map[string]any{"Title": "Recover missed events"}
		recs, err := s.recoveries.records.List(c.Request.Context(), recoveryPageSize)
		if err != nil {
			c.Error(err)
			data["Error"] = "Cannot read the history of recoveries; see the dashboard's log."
		}
		views := make([]recoveryView, len(recs))
		for i, rec := range recs {
			views[i] = viewRecovery(rec)
		}
		data["Recoveries"] = views
		data["HasKey"] = s.recoveries.rec != nil
		if r := s.recoveries.rec; r != nil {
			data["Earliest"] = r.Earliest()
			data["Reach"] = roundDuration(time.Since(r.Earliest()))
		}
		data["Selected"] = c.Query("id")
		s.render(c, http.StatusOK, "recoveries", data)
	}
}

// roundDuration shows a window's reach as "6d 23h 50m", "2h".
func roundDuration(d time.Duration) string {
	d = d.Round(time.Minute)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	s := ""
	if days > 0 {
		s = strconv.Itoa(int(days)) + "d "
	}
	h, m := d/time.Hour, (d%time.Hour)/time.Minute
	if h > 0 || days > 0 {
		s += strconv.Itoa(int(h)) + "h "
	}
	if m > 0 {
		s += strconv.Itoa(int(m)) + "m"
	}
	return strings.TrimSpace(s)
}
