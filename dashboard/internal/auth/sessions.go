package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/argon2"

	"github.com/stripeq/stripeq/pkg/keyspace"
)

// SessionCookie is the name of the session cookie.
const SessionCookie = "stripeq_session"

// A session's Redis key is keyspace.DashboardSession of the SHA-256 of
// the cookie value; a user's sessions are keyspace.DashboardSessions, a
// ZSET of their session keys by sign-in time (unix ms), which expires
// with the newest session.

// Argon2id parameters of session proofs (OWASP's minimum: 19 MiB, two
// passes, one lane): about 30 ms per login on one core.
const (
	kdfTime    = 2
	kdfMemory  = 19 << 10 // KiB
	kdfThreads = 1
	// kdfCacheSize bounds the derived keys kept in memory, one per session
	// seen, so that a request costs no Argon2id after the session's first.
	kdfCacheSize = 4096
)

// Limits that keep the derived keys' cache from being thrashed: a session
// whose key is not cached costs an Argon2id (30–95 ms of CPU), and a user
// cycling more sessions than the cache holds would put that cost on every
// request of every user.
const (
	// MaxSessionsPerUser sessions of one user live at once; a new sign-in
	// ends the oldest. With two accounts, far fewer than kdfCacheSize.
	MaxSessionsPerUser = 10
	// KDFBurst Argon2id derivations of one user (sign-ins, and sessions
	// whose key is not cached) run at once, then one per KDFEvery; past
	// that, 429 before the derivation.
	KDFBurst = 10
	KDFEvery = 2 * time.Second
)

// sessionProof is the fp field of the session stored under key: an HMAC
// of key, user and role, keyed with proofKey(acc, salt). It returns
// TooMany when acc's user has no derivation left.
func (a *Authenticator) sessionProof(acc Account, salt []byte, key string) (string, error) {
	k, err := a.proofKey(acc, salt)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, k)
	m.Write([]byte("stripeq session\x00" + key + "\x00" + acc.user + "\x00" + string(acc.role)))
	return hex.EncodeToString(m.Sum(nil)), nil
}

// flight is one derivation in progress, which others asking for the same
// key wait for.
type flight struct {
	done chan struct{}
	key  []byte
}

// proofKey is Argon2id(password, salt) of acc. Derived keys are cached in
// memory (never in Redis), by Account and salt; one not cached is derived
// once however many ask at once, and only within acc's user's limit
// (slow): past it, TooMany, before any Argon2id.
func (a *Authenticator) proofKey(acc Account, salt []byte) ([]byte, error) {
	id := sha256.Sum256([]byte(acc.user + "\x00" + string(acc.role) + "\x00" + acc.password + "\x00" + string(salt)))
	cacheKey := string(id[:])
	a.kdfMu.Lock()
	if k, ok := a.kdf.get(cacheKey); ok {
		a.kdfMu.Unlock()
		return k, nil
	}
	if f, ok := a.inflight[cacheKey]; ok {
		a.kdfMu.Unlock()
		<-f.done
		return f.key, nil
	}
	if ok, wait := a.slow.Allow(acc.user); !ok {
		a.kdfMu.Unlock()
		return nil, TooMany{RetryAfter: wait}
	}
	f := &flight{done: make(chan struct{})}
	a.inflight[cacheKey] = f
	a.kdfMu.Unlock()
	f.key = a.derive(acc.password, salt)
	a.kdfMu.Lock()
	a.kdf.put(cacheKey, f.key)
	delete(a.inflight, cacheKey)
	a.kdfMu.Unlock()
	close(f.done)
	return f.key, nil
}

// derive is Argon2id of password and salt, at most cap(kdfSem) at once:
// each takes kdfMemory.
func (a *Authenticator) derive(password string, salt []byte) []byte {
	a.kdfSem <- struct{}{}
	defer func() { <-a.kdfSem }()
	return argon2.IDKey([]byte(password), salt, kdfTime, kdfMemory, kdfThreads, 32)
}

func SessionKey(token string) string {
	h := sha256.Sum256([]byte(token))
	return keyspace.DashboardSession(hex.EncodeToString(h[:]))
}

// session is what Redis holds for one login.
type session struct {
	User, Role, CSRF, Salt, Proof string
}

// Login starts a session for acc and returns the cookie value; the
// user's oldest sessions past MaxSessionsPerUser end. It returns
// TooMany when the user has no derivation left (see proofKey).
func (a *Authenticator) Login(ctx context.Context, acc Account) (string, error) {
	token := rand.Text() + rand.Text()
	key := SessionKey(token)
	salt := make([]byte, 16)
	rand.Read(salt)
	proof, err := a.sessionProof(acc, salt, key)
	if err != nil {
		return "", err
	}
	_, err = a.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "user", acc.user, "role", string(acc.role), "csrf", rand.Text(), "salt", hex.EncodeToString(salt), "fp", proof)
		p.Expire(ctx, key, a.ttl)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("store session: %w", err)
	}
	if err := a.keepNewest(ctx, acc.user, key, time.Now()); err != nil {
		return "", fmt.Errorf("store session: %w", err)
	}
	return token, nil
}

// keepNewest adds the session key, started at now, to user's sessions
// and ends those past the newest MaxSessionsPerUser, and those expired.
// The keys may sit on different Cluster nodes: the commands are
// pipelined, not a transaction.
func (a *Authenticator) keepNewest(ctx context.Context, user, key string, now time.Time) error {
	list := keyspace.DashboardSessions(user)
	var older *redis.StringSliceCmd
	_, err := a.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, list, redis.Z{Score: float64(now.UnixMilli()), Member: key})
		p.ZRemRangeByScore(ctx, list, "-inf", strconv.FormatInt(now.Add(-a.ttl).UnixMilli(), 10))
		p.Expire(ctx, list, a.ttl)
		older = p.ZRange(ctx, list, 0, -MaxSessionsPerUser-1)
		return nil
	})
	if err != nil || len(older.Val()) == 0 {
		return err
	}
	_, err = a.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range older.Val() {
			p.Del(ctx, k)
		}
		p.ZRem(ctx, list, toAny(older.Val())...)
		return nil
	})
	return err
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// errNoSession means the cookie names no live session.
var errNoSession = errors.New("no such session")

// lookup returns the live session of a cookie value. It returns
// TooMany when checking it would take an Argon2id its user has no
// room for (see proofKey).
func (a *Authenticator) lookup(ctx context.Context, token string) (session, error) {
	if len(token) < 32 || len(token) > 128 {
		return session{}, errNoSession
	}
	key := SessionKey(token)
	m, err := a.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return session{}, err
	}
	if len(m) == 0 {
		return session{}, errNoSession
	}
	s := session{User: m["user"], Role: m["role"], CSRF: m["csrf"], Salt: m["salt"], Proof: m["fp"]}
	salt, err := hex.DecodeString(s.Salt)
	if err != nil || len(salt) < 16 {
		return session{}, errNoSession // a record of an older version
	}
	for _, acc := range a.accounts {
		if acc.user != s.User || string(acc.role) != s.Role {
			continue
		}
		proof, err := a.sessionProof(acc, salt, key)
		if err != nil {
			return session{}, err
		}
		if hmac.Equal([]byte(proof), []byte(s.Proof)) {
			return s, nil
		}
	}
	return session{}, errNoSession // the Account changed since the login
}

// Logout ends user's session of the cookie value token.
func (a *Authenticator) Logout(ctx context.Context, user, token string) error {
	key := SessionKey(token)
	_, err := a.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, key)
		p.ZRem(ctx, keyspace.DashboardSessions(user), key)
		return nil
	})
	return err
}

// SetPassword changes user's password, as a restart with a new
// DASHBOARD_PASSWORD does: the user's sessions and device cookies no
// longer pass. For tests.
func (a *Authenticator) SetPassword(user, password string) {
	for i := range a.accounts {
		if a.accounts[i].user == user {
			a.accounts[i].password = password
		}
	}
	a.devMu.Lock()
	delete(a.devKeys, user)
	a.devMu.Unlock()
}

// SetDerivationLimits replaces the per-user limits of Argon2id
// derivations (by default KDFBurst, then one per KDFEvery), for tests.
func (a *Authenticator) SetDerivationLimits(l *UserLimits) { a.slow = l }

// ForgetKeys drops the derived keys kept in memory, as a restart does.
func (a *Authenticator) ForgetKeys() {
	a.kdfMu.Lock()
	defer a.kdfMu.Unlock()
	a.kdf = newLRU[[]byte](kdfCacheSize)
}
