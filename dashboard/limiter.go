package main

import (
	"container/list"
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Sign-in limits. Failures count twice: against the pair (client address,
// account name), which may then be refused, and against the account, whose
// attempts are then spaced out but never refused.
const (
	// clientBurst failed sign-ins from one client for one account name
	// are allowed at once, then one per clientEvery; past that the client
	// gets 429 for that name only.
	clientBurst = 10
	clientEvery = time.Minute
	// maxClients bounds the client table; the least recently seen client
	// is forgotten first.
	maxClients = 10_000
	// accountFree failures in a row on an account cost nothing; each
	// further one doubles the spacing between the account's attempts,
	// from accountBase up to accountMax.
	accountFree = 5
	accountBase = 500 * time.Millisecond
	accountMax  = 8 * time.Second
	// accountQuiet without a failure forgets an account's streak.
	accountQuiet = 15 * time.Minute
	// maxWait is the longest one attempt waits for its turn; an attempt
	// that would wait longer gets 429 (only a flood of concurrent guesses
	// from many addresses gets there).
	maxWait = 10 * time.Second
)

// errTooMany is a refused sign-in attempt; Retry-After carries its delay.
type errTooMany struct{ RetryAfter time.Duration }

func (e errTooMany) Error() string { return "too many failed sign-in attempts" }

// loginLimiter slows password guessing without letting one client lock
// anyone else out:
//
//   - Per client and account name, a token bucket of clientBurst failures
//     refilled every clientEvery. When it is empty that client's attempts
//     under that name get 429 before the password is checked. Other names
//     from that client, and that name from other clients, are unaffected.
//   - Per account, exponential backoff: after accountFree failures in a
//     row (from anyone), the account's attempts are spaced accountBase,
//     then twice that, up to accountMax apart. An attempt is delayed until
//     its turn, then checked, so a correct password still signs in; and
//     however many addresses a guesser uses, one account sees at most one
//     guess per accountMax.
//
// Client entries live in a table of at most maxClients, evicted least
// recently seen first in constant time. Accounts are the configured ones
// only; an unknown name has no account state to slow down.
type loginLimiter struct {
	mu       sync.Mutex
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error
	clients  *lru[*rate.Limiter]
	accounts map[string]*backoff
}

// backoff is one account's failure streak and the earliest time its next
// attempt may be checked.
type backoff struct {
	fails int
	last  time.Time // of the last failure
	next  time.Time
}

func newLoginLimiter(accounts []account) *loginLimiter {
	l := &loginLimiter{now: time.Now, sleep: sleepCtx, clients: newLRU[*rate.Limiter](maxClients), accounts: map[string]*backoff{}}
	for _, a := range accounts {
		l.accounts[a.user] = &backoff{}
	}
	return l
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// spacing is the gap between an account's attempts after fails failures
// in a row.
func spacing(fails int) time.Duration {
	if fails < accountFree {
		return 0
	}
	d := accountBase << min(fails-accountFree, 8)
	return min(d, accountMax)
}

// clientKey names a client's bucket for one account name. Unknown names
// share one bucket per client.
func (l *loginLimiter) clientKey(client, user string) string {
	if _, ok := l.accounts[user]; !ok {
		user = "\x00unknown"
	}
	return client + "\x00" + user
}

// admit waits for the turn of an attempt by client to sign in as user and
// returns done, which the caller must call with the outcome. It returns
// errTooMany when the client has used up its failures for that name, or
// when the account's queue is longer than maxWait, and ctx's error when
// ctx ends while waiting.
func (l *loginLimiter) admit(ctx context.Context, client, user string) (done func(ok bool), err error) {
	l.mu.Lock()
	now := l.now()
	key := l.clientKey(client, user)
	if lim, ok := l.clients.get(key); ok && lim.TokensAt(now) < 1 {
		l.mu.Unlock()
		return nil, errTooMany{RetryAfter: clientEvery}
	}
	var wait time.Duration
	acc := l.accounts[user]
	if acc != nil {
		if acc.fails > 0 && now.Sub(acc.last) > accountQuiet {
			acc.fails = 0
		}
		turn := now
		if acc.next.After(turn) {
			turn = acc.next
		}
		wait = turn.Sub(now)
		if wait > maxWait {
			l.mu.Unlock()
			return nil, errTooMany{RetryAfter: wait}
		}
		acc.next = turn.Add(spacing(acc.fails))
	}
	l.mu.Unlock()
	if err := l.sleep(ctx, wait); err != nil {
		return nil, err
	}
	return func(ok bool) { l.record(key, acc, ok) }, nil
}

// record counts one outcome.
func (l *loginLimiter) record(key string, acc *backoff, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if ok {
		if acc != nil {
			acc.fails, acc.next = 0, now
		}
		return
	}
	lim, found := l.clients.get(key)
	if !found {
		lim = rate.NewLimiter(rate.Every(clientEvery), clientBurst)
		l.clients.put(key, lim)
	}
	lim.AllowN(now, 1)
	if acc != nil {
		acc.fails++
		acc.last = now
	}
}

// lru is a map of at most max entries that forgets the least recently
// used one first; every operation takes constant time.
type lru[V any] struct {
	max int
	ll  *list.List // of *lruEntry[V], most recent first
	m   map[string]*list.Element
}

type lruEntry[V any] struct {
	key string
	val V
}

func newLRU[V any](max int) *lru[V] {
	return &lru[V]{max: max, ll: list.New(), m: map[string]*list.Element{}}
}

// get returns the value of key and marks it used.
func (c *lru[V]) get(key string) (V, bool) {
	e, ok := c.m[key]
	if !ok {
		var zero V
		return zero, false
	}
	c.ll.MoveToFront(e)
	return e.Value.(*lruEntry[V]).val, true
}

// put stores val under key, forgetting the least recently used entry when
// full.
func (c *lru[V]) put(key string, val V) {
	if e, ok := c.m[key]; ok {
		e.Value.(*lruEntry[V]).val = val
		c.ll.MoveToFront(e)
		return
	}
	if c.ll.Len() >= c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*lruEntry[V]).key)
	}
	c.m[key] = c.ll.PushFront(&lruEntry[V]{key: key, val: val})
}

func (c *lru[V]) len() int { return c.ll.Len() }
