package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// DeviceCookie names the cookie of a browser that signed in before: the
// sign-in limits trust it (see loginLimiter). Its value is a random nonce,
// ".", and the hex HMAC of the nonce, the user and the role, keyed with
// deviceKey of the Account.
const DeviceCookie = "stripeq_device"

// DeviceCookieTTL is how long a device cookie lasts; each sign-in from
// its browser replaces it.
const DeviceCookieTTL = 90 * 24 * time.Hour

// deviceKey is the key of acc's device cookies: Argon2id of its password,
// salted with its name, derived once and kept in memory only. Forging a
// device cookie takes the password; a copy of Redis gives nothing toward
// one, and a new password ends every device's trust.
func (a *Authenticator) deviceKey(acc Account) []byte {
	a.devMu.Lock()
	defer a.devMu.Unlock()
	k, ok := a.devKeys[acc.user]
	if !ok {
		k = a.derive(acc.password, []byte("stripeq device\x00"+acc.user))
		a.devKeys[acc.user] = k
	}
	return k
}

// deviceMAC is the HMAC part of acc's device cookie with nonce.
func (a *Authenticator) deviceMAC(acc Account, nonce string) string {
	m := hmac.New(sha256.New, a.deviceKey(acc))
	m.Write([]byte("stripeq device\x00" + nonce + "\x00" + acc.user + "\x00" + string(acc.role)))
	return hex.EncodeToString(m.Sum(nil))
}

// NewDevice returns a new device cookie value for acc.
func (a *Authenticator) NewDevice(acc Account) string {
	nonce := rand.Text()
	return nonce + "." + a.deviceMAC(acc, nonce)
}

// trustedDevice returns the nonce of value when it is a device cookie of
// user's Account, else "".
func (a *Authenticator) trustedDevice(user, value string) string {
	nonce, mac, ok := strings.Cut(value, ".")
	if !ok || len(nonce) != 26 || len(mac) != 64 {
		return ""
	}
	for _, acc := range a.accounts {
		if acc.user == user && hmac.Equal([]byte(a.deviceMAC(acc, nonce)), []byte(mac)) {
			return nonce
		}
	}
	return ""
}
