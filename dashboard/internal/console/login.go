package console

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/gin-gonic/gin"
)

// handleLoginPage shows the sign-in form.
func (s *server) handleLoginPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		s.render(c, http.StatusOK, "login", map[string]any{"Title": "Sign in", "Next": safeNext(c.Query("next"))})
	}
}

// safeNext keeps a post-login redirect on this site. It returns the
// value the redirect sends, which is what it checks: http.Redirect cleans
// the path ("/./x" becomes "/x"), so next is cleaned the same way first.
// Both next and what is sent must be a path that starts with "/" not
// followed by "/", with no "\\" anywhere and no control characters, also
// once percent-decoded (browsers read "\\" as "/" and drop tabs and line
// breaks, so "/\t/evil.com" would read as "//evil.com"). Anything else
// becomes "/".
func safeNext(next string) string {
	sent := redirectPath(next)
	for _, p := range []string{next, sent} {
		decoded, err := url.PathUnescape(p)
		if err != nil || !isLocalPath(p) || !isLocalPath(decoded) {
			return "/"
		}
	}
	if u, err := url.Parse(sent); err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return sent
}

// redirectPath is what http.Redirect sends as the Location of a path that
// starts with "/": the part before "?" cleaned, keeping a trailing slash.
func redirectPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		return p
	}
	p, query, hasQuery := strings.Cut(p, "?")
	cleaned := path.Clean(p)
	if strings.HasSuffix(p, "/") && !strings.HasSuffix(cleaned, "/") {
		cleaned += "/"
	}
	if hasQuery {
		cleaned += "?" + query
	}
	return cleaned
}

func isLocalPath(p string) bool {
	if len(p) == 0 || p[0] != '/' || (len(p) > 1 && p[1] == '/') || strings.ContainsRune(p, '\\') {
		return false
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// handleLogin checks the form, within the sign-in limits, and starts a
// session. The form is CSRF-protected by origin (login CSRF would sign a
// victim in as the attacker).
func (s *server) handleLogin() gin.HandlerFunc {
	cop := http.NewCrossOriginProtection()
	return func(c *gin.Context) {
		next := safeNext(c.PostForm("next"))
		if err := cop.Check(c.Request); err != nil {
			c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"message": "cross-origin request refused"})
			return
		}
		device, _ := c.Cookie(deviceCookie)
		acc, ok, err := s.auth.signIn(c.Request.Context(), client(c), c.PostForm("user"), c.PostForm("password"), device)
		if err != nil {
			c.Header("Retry-After", retryAfter(retryDelay(err)))
			s.render(c, http.StatusTooManyRequests, "login", map[string]any{"Title": "Sign in", "Next": next, "Error": "Too many failed attempts. Wait a minute and try again."})
			return
		}
		if !ok {
			s.render(c, http.StatusUnauthorized, "login", map[string]any{"Title": "Sign in", "Next": next, "Error": "Wrong user or password."})
			return
		}
		token, err := s.auth.login(c.Request.Context(), acc)
		if tm, ok := errors.AsType[errTooMany](err); ok {
			c.Header("Retry-After", retryAfter(tm.RetryAfter))
			s.render(c, http.StatusTooManyRequests, "login", map[string]any{"Title": "Sign in", "Next": next, "Error": "Too many sign-ins of this account just now. Wait a moment and try again."})
			return
		}
		if err != nil {
			c.Error(err)
			s.render(c, http.StatusServiceUnavailable, "login", map[string]any{"Title": "Sign in", "Next": next, "Error": "Cannot store the session: Redis does not answer."})
			return
		}
		http.SetCookie(c.Writer, &http.Cookie{
			Name: sessionCookie, Value: token, Path: "/", MaxAge: int(s.cfg.SessionTTL.Seconds()),
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: isTLS(c.Request),
		})
		// This browser is now a trusted device of the account (see
		// loginLimiter); only the sign-in form reads the cookie.
		http.SetCookie(c.Writer, &http.Cookie{
			Name: deviceCookie, Value: s.auth.newDevice(acc), Path: "/login", MaxAge: int(deviceCookieTTL.Seconds()),
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: isTLS(c.Request),
		})
		c.Redirect(http.StatusSeeOther, next)
	}
}

// isTLS reports whether the client reached us over TLS, directly or
// through a proxy that says so.
func isTLS(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}

// handleLogout ends the session.
func (s *server) handleLogout() gin.HandlerFunc {
	return func(c *gin.Context) {
		if token := c.GetString(ctxSession); token != "" {
			if err := s.auth.logout(c.Request.Context(), c.GetString(ctxUser), token); err != nil {
				c.Error(err)
			}
		}
		http.SetCookie(c.Writer, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: isTLS(c.Request)})
		c.Redirect(http.StatusSeeOther, "/login")
	}
}
