package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/argon2"
)

// sessionCookie is the name of the session cookie.
const sessionCookie = "stripeq_session"

// sessionKeyPrefix starts the Redis key of a session:
// stripeq:dashboard:session:<SHA-256 of the cookie value>.
const sessionKeyPrefix = "stripeq:dashboard:session:"

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

// sessionProof is the fp field of the session stored under key: an HMAC
// of key, user and role, keyed with Argon2id(password, salt). Derived keys
// are cached in memory (never in Redis), by account and salt.
func (a *authenticator) sessionProof(acc account, salt []byte, key string) string {
	id := sha256.Sum256([]byte(acc.user + "\x00" + string(acc.role) + "\x00" + acc.password + "\x00" + string(salt)))
	cacheKey := string(id[:])
	a.kdfMu.Lock()
	k, ok := a.kdf.get(cacheKey)
	a.kdfMu.Unlock()
	if !ok {
		k = a.derive(acc.password, salt)
		a.kdfMu.Lock()
		a.kdf.put(cacheKey, k)
		a.kdfMu.Unlock()
	}
	m := hmac.New(sha256.New, k)
	m.Write([]byte("stripeq session\x00" + key + "\x00" + acc.user + "\x00" + string(acc.role)))
	return hex.EncodeToString(m.Sum(nil))
}

// derive is Argon2id of password and salt, at most cap(kdfSem) at once:
// each takes kdfMemory.
func (a *authenticator) derive(password string, salt []byte) []byte {
	a.kdfSem <- struct{}{}
	defer func() { <-a.kdfSem }()
	return argon2.IDKey([]byte(password), salt, kdfTime, kdfMemory, kdfThreads, 32)
}

func sessionKey(token string) string {
	h := sha256.Sum256([]byte(token))
	return sessionKeyPrefix + hex.EncodeToString(h[:])
}

// session is what Redis holds for one login.
type session struct {
	User, Role, CSRF, Salt, Proof string
}

// login starts a session for acc and returns the cookie value.
func (a *authenticator) login(ctx context.Context, acc account) (string, error) {
	token := rand.Text() + rand.Text()
	key := sessionKey(token)
	salt := make([]byte, 16)
	rand.Read(salt)
	proof := a.sessionProof(acc, salt, key)
	_, err := a.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "user", acc.user, "role", string(acc.role), "csrf", rand.Text(), "salt", hex.EncodeToString(salt), "fp", proof)
		p.Expire(ctx, key, a.ttl)
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("store session: %w", err)
	}
	return token, nil
}

// errNoSession means the cookie names no live session.
var errNoSession = errors.New("no such session")

// lookup returns the live session of a cookie value.
func (a *authenticator) lookup(ctx context.Context, token string) (session, error) {
	if len(token) < 32 || len(token) > 128 {
		return session{}, errNoSession
	}
	key := sessionKey(token)
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
		if acc.user == s.User && string(acc.role) == s.Role && hmac.Equal([]byte(a.sessionProof(acc, salt, key)), []byte(s.Proof)) {
			return s, nil
		}
	}
	return session{}, errNoSession // the account changed since the login
}

func (a *authenticator) logout(ctx context.Context, token string) error {
	return a.rdb.Del(ctx, sessionKey(token)).Err()
}
