package auth

import (
	"strings"

	"github.com/gin-gonic/gin"
)

// Content-Security-Policy of the Console's pages: nothing inline, nothing
// from elsewhere, never framed.
const cspConsole = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// cspMonitoring is asynqmon's: its index page has inline scripts and its
// components inline styles. Its fonts come from the dashboard itself
// (monitoring.go), not from Google Fonts.
const cspMonitoring = "default-src 'self'; script-src 'self' 'unsafe-inline'; " +
	"style-src 'self' 'unsafe-inline'; font-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"

// SecurityHeaders sets the headers every answer carries; those under
// mount (asynqmon) get its own Content-Security-Policy.
func SecurityHeaders(mount string) gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Writer.Header()
		if strings.HasPrefix(c.Request.URL.Path, mount+"/") {
			h.Set("Content-Security-Policy", cspMonitoring)
		} else {
			h.Set("Content-Security-Policy", cspConsole)
		}
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if c.Request.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		c.Next()
	}
}
