package auth

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// UserLimits is a token bucket per signed-in user. Users are the
// configured accounts, so the map stays small.
type UserLimits struct {
	mu    sync.Mutex
	now   func() time.Time
	rate  rate.Limit
	burst int
	users map[string]*rate.Limiter
}

// NewUserLimits allows each user burst requests at once, then r a
// second.
func NewUserLimits(r rate.Limit, burst int) *UserLimits {
	return &UserLimits{now: time.Now, rate: r, burst: burst, users: map[string]*rate.Limiter{}}
}

// Allow takes one request of user, or reports how long to wait.
func (u *UserLimits) Allow(user string) (bool, time.Duration) {
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

// SetClock makes u read the time from now, for tests.
func (u *UserLimits) SetClock(now func() time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.now = now
}
