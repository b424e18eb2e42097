package auth

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// Sign-in limits. Failures count twice: against the pair (client address,
// Account name), which may then be refused, and against the Account, whose
// attempts are then spaced out but never refused.
const (
	// ClientBurst failed sign-ins from one client for one Account name
	// are allowed at once, then one per ClientEvery; past that the client
	// gets 429 for that name only.
	ClientBurst = 10
	ClientEvery = time.Minute
	// maxClients bounds the client table; the least recently seen client
	// is forgotten first.
	maxClients = 10_000
	// AccountFree failures in a row on an Account cost nothing; each
	// further one doubles the spacing between the Account's attempts,
	// from AccountBase up to AccountMax.
	AccountFree = 5
	AccountBase = 500 * time.Millisecond
	AccountMax  = 8 * time.Second
	// accountQuiet without a failure forgets an Account's streak.
	accountQuiet = 15 * time.Minute
	// maxWait is the longest one attempt waits for its turn; an attempt
	// that would wait longer gets 429 (only a flood of concurrent guesses
	// from many addresses gets there).
	maxWait = 10 * time.Second
)

// TooMany is a refused sign-in attempt; Retry-After carries its delay.
type TooMany struct{ RetryAfter time.Duration }

func (e TooMany) Error() string { return "too many failed sign-in attempts" }

// loginLimiter slows password guessing without letting one client lock
// anyone else out:
//
//   - Per client and Account name, a bucket of ClientBurst failures
//     refilled one per ClientEvery. Each attempt takes one before its
//     password is checked, and a success gives it back: so concurrent
//     guesses are counted before any is checked, and when the bucket is
//     empty that client's attempts under that name get 429 unchecked.
//     Other names from that client, and that name from other clients,
//     are unaffected.
//   - Per Account, exponential backoff: after AccountFree failures in a
//     row (from anyone, each counted when its attempt is admitted), the
//     Account's attempts are spaced AccountBase, then twice that, up to
//     AccountMax apart. An attempt is delayed until its turn, then
//     checked, so a correct password still signs in; and however many
//     addresses a guesser uses, one Account sees at most one guess per
//     AccountMax. An attempt whose turn is more than maxWait away gets
//     429.
//   - A trusted device (a browser holding a valid device cookie of that
//     Account, OWASP's "device cookies") has a bucket of its own, as a
//     client has, and skips the Account's backoff: guesses from many
//     addresses do not keep the operator's own browser out. Once its
//     bucket is empty it counts as any client.
//
// Client and device entries live in a table of at most maxClients,
// evicted least recently seen first in constant time. Accounts are the
// configured ones only; an unknown name has no Account state to slow
// down.
type loginLimiter struct {
	mu       sync.Mutex
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error
	clients  *lru[*bucket]
	accounts map[string]*backoff
}

// bucket holds the failures a client (or a device) may still make: up to
// ClientBurst, one more each ClientEvery.
type bucket struct {
	tokens float64
	at     time.Time // of tokens
}

func (b *bucket) refill(now time.Time) {
	if now.After(b.at) {
		b.tokens = min(ClientBurst, b.tokens+float64(now.Sub(b.at))/float64(ClientEvery))
		b.at = now
	}
}

// take takes one failure, or reports that none is left.
func (b *bucket) take(now time.Time) bool {
	b.refill(now)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// give gives back what take took: the attempt was not a failure.
func (b *bucket) give(now time.Time) {
	b.refill(now)
	b.tokens = min(ClientBurst, b.tokens+1)
}

// backoff is one Account's failure streak and the earliest time its next
// attempt may be checked.
type backoff struct {
	fails int
	last  time.Time // of the last failure
	next  time.Time
}

func newLoginLimiter(accounts []Account) *loginLimiter {
	l := &loginLimiter{now: time.Now, sleep: sleepCtx, clients: newLRU[*bucket](maxClients), accounts: map[string]*backoff{}}
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

// spacing is the gap between an Account's attempts after fails failures
// in a row.
func spacing(fails int) time.Duration {
	if fails < AccountFree {
		return 0
	}
	d := AccountBase << min(fails-AccountFree, 8)
	return min(d, AccountMax)
}

// clientKey names a client's bucket for one Account name. Unknown names
// share one bucket per client.
func (l *loginLimiter) clientKey(client, user string) string {
	if _, ok := l.accounts[user]; !ok {
		user = "\x00unknown"
	}
	return client + "\x00" + user
}

// deviceKey names a trusted device's bucket.
func deviceKey(device string) string { return "\x00device\x00" + device }

// bucketOf returns the bucket under key, full when new.
func (l *loginLimiter) bucketOf(key string, now time.Time) *bucket {
	b, ok := l.clients.get(key)
	if !ok {
		b = &bucket{tokens: ClientBurst, at: now}
		l.clients.put(key, b)
	}
	return b
}

// admit counts an attempt by client to sign in as user as a failure,
// waits for its turn, and returns done, which the caller must call with
// the outcome (a success gives the failure back). device is the nonce of
// a valid device cookie of user's Account, or "". It returns TooMany
// when the client (or device) has used up its failures for that name, or
// when the Account's queue is longer than maxWait, and ctx's error when
// ctx ends while waiting.
func (l *loginLimiter) admit(ctx context.Context, client, user, device string) (done func(ok bool), err error) {
	l.mu.Lock()
	now := l.now()
	if device != "" {
		b := l.bucketOf(deviceKey(device), now)
		if b.take(now) {
			l.mu.Unlock()
			return func(ok bool) { l.settle(b, nil, ok) }, nil
		}
	}
	b := l.bucketOf(l.clientKey(client, user), now)
	if !b.take(now) {
		l.mu.Unlock()
		return nil, TooMany{RetryAfter: ClientEvery}
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
			b.give(now) // refused unchecked: not a guess
			l.mu.Unlock()
			return nil, TooMany{RetryAfter: wait}
		}
		acc.next = turn.Add(spacing(acc.fails))
		acc.fails++
		acc.last = now
	}
	l.mu.Unlock()
	if err := l.sleep(ctx, wait); err != nil {
		l.settle(b, nil, true) // abandoned unchecked
		return nil, err
	}
	return func(ok bool) { l.settle(b, acc, ok) }, nil
}

// settle records the outcome of an admitted attempt: a success gives its
// failure back to its bucket and ends the Account's streak (acc nil: a
// trusted device, which leaves the Account's streak alone).
func (l *loginLimiter) settle(b *bucket, acc *backoff, ok bool) {
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b.give(now)
	if acc != nil {
		acc.fails, acc.next = 0, now
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

// SetClock makes the sign-in limits read the time from now and wait with
// sleep, for tests; a nil one is left as it is.
func (a *Authenticator) SetClock(now func() time.Time, sleep func(ctx context.Context, d time.Duration) error) {
	l := a.limiter
	l.mu.Lock()
	defer l.mu.Unlock()
	if now != nil {
		l.now = now
	}
	if sleep != nil {
		l.sleep = sleep
	}
}

// ResetLimits forgets every failed sign-in, as a restart does.
func (a *Authenticator) ResetLimits() { a.limiter = newLoginLimiter(a.accounts) }
