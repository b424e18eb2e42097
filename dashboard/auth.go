package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"

	"github.com/gin-gonic/gin"
)

// requireAuth lets a request through only with the configured credentials,
// sent as HTTP Basic. It guards every route, asynqmon's pages, API and
// static files included.
func requireAuth(user, password string) gin.HandlerFunc {
	wantUser := sha256.Sum256([]byte(user))
	wantPass := sha256.Sum256([]byte(password))
	return func(c *gin.Context) {
		u, p, ok := c.Request.BasicAuth()
		// Compare fixed-length digests in constant time, both always, so
		// that timing tells nothing about which part was wrong.
		gotUser := sha256.Sum256([]byte(u))
		gotPass := sha256.Sum256([]byte(p))
		userOK := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
		passOK := subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
		if !ok || userOK&passOK != 1 {
			c.Header("WWW-Authenticate", `Basic realm="stripeq dashboard", charset="UTF-8"`)
			c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"message": "authentication required"})
			return
		}
		c.Next()
	}
}
