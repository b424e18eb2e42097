package recovery

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseTime reads a window bound as POST /api/recoveries takes it: a
// duration before now ("90m", "2h", "7d"; d is 24 hours) or an RFC 3339
// time ("2026-11-28T09:00:00Z"). It returns ErrWindow, naming the
// parameter, for anything else or a negative duration.
func ParseTime(name, s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 366 {
			return time.Time{}, fmt.Errorf("%w: %s: %q is neither a duration (2h, 7d) nor an RFC 3339 time", ErrWindow, name, s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d < 0 {
			return time.Time{}, fmt.Errorf("%w: %s: %q is neither a duration (2h, 7d) nor an RFC 3339 time", ErrWindow, name, s)
		}
	}
	return now.Add(-d), nil
}
