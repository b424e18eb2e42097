package console

import (
	"container/list"
	"context"
	"sync"
	"time"
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
//   - Per client and account name, a bucket of clientBurst failures
//     refilled one per clientEvery. Each attempt takes one before its
//     password is checked, and a success gives it back: so concurrent
//     guesses are counted before any is checked, and when the bucket is
//     empty that client's attempts under that name get 429 unchecked.
//     Other names from that client, and that name from other clients,
//     are unaffected.
//   - Per account, exponential backoff: after accountFree failures in a
//     row (from anyone, each counted when its attempt is admitted), the
//     account's attempts are spaced accountBase, then twice that, up to
//     accountMax apart. An attempt is delayed until its turn, then
//     checked, so a correct password still signs in; and however many
//     addresses a guesser uses, one account sees at most one guess per
//     accountMax. An attempt whose turn is more than maxWait away gets
//     429.
//   - A trusted device (a browser holding a valid device cookie of that
//     account, OWASP's "device cookies") has a bucket of its own, as a
//     client has, and skips the account's backoff: guesses from many
//     addresses do not keep the operator's own browser out. Once its
//     bucket is empty it counts as any client.
//
// Client and device entries live in a table of at most maxClients,
// evicted least recently seen first in constant time. Accounts are the
// configured ones only; an unknown name has no account state to slow
// down.
type loginLimiter struct {
	mu       sync.Mutex
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error
	clients  *lru[*bucket]
	accounts map[string]*backoff
}

// bucket holds the failures a client (or a device) may still make: up to
// clientBurst, one more each clientEvery.
type bucket struct {
	tokens float64
	at     time.Time // of tokens
}

func (b *bucket) refill(now time.Time) {
	if now.After(b.at) {
		b.tokens = min(clientBurst, b.tokens+float64(now.Sub(b.at))/float64(clientEvery))
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
	b.tokens = min(clientBurst, b.tokens+1)
}

// backoff is one account's failure streak and the earliest time its next
// attempt may be checked.
type backoff struct {
	fails int
	last  time.Time // of the last failure
	next  time.Time
}

func newLoginLimiter(accounts []account) *loginLimiter {
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

// deviceKey names a trusted device's bucket.
func deviceKey(device string) string { return "\x00device\x00" + device }

// bucketOf returns the bucket under key, full when new.
func (l *loginLimiter) bucketOf(key string, now time.Time) *bucket {
	b, ok := l.clients.get(key)
	if !ok {
		b = &bucket{tokens: clientBurst, at: now}
		l.clients.put(key, b)
	}
	return b
}

// admit counts an attempt by client to sign in as user as a failure,
// waits for its turn, and returns done, which the caller must call with
// the outcome (a success gives the failure back). device is the nonce of
// a valid device cookie of user's account, or "". It returns errTooMany
// when the client (or device) has used up its failures for that name, or
// when the account's queue is longer than maxWait, and ctx's error when
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
			b.give(now) // refused unchecked: not a guess
			l.mu.Unlock()
			return nil, errTooMany{RetryAfter: wait}
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
// failure back to its bucket and ends the account's streak (acc nil: a
// trusted device, which leaves the account's streak alone).
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
