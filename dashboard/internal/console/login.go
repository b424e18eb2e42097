package console

import (
	"errors"
	"net/http"

	"github.com/stripeq/stripeq/dashboard/internal/auth"

	"github.com/gin-gonic/gin"
)

// handleLoginPage shows the sign-in form.
func (s *server) handleLoginPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		s.render(c, http.StatusOK, "login", map[string]any{"Title": "Sign in", "Next": auth.SafeNext(c.Query("next"))})
	}
}

// maxNameShown is the longest user name a refused sign-in shows again.
const maxNameShown = 200

// handleLogin checks the form, within the sign-in limits, and starts a
// session. The form is CSRF-protected by origin (login CSRF would sign a
// victim in as the attacker).
func (s *server) handleLogin() gin.HandlerFunc {
	cop := http.NewCrossOriginProtection()
	return func(c *gin.Context) {
		next := auth.SafeNext(c.PostForm("next"))
		// A refused sign-in shows the form again with the user name typed
		// (escaped by the template, cut at maxNameShown).
		name := c.PostForm("user")
		if len([]rune(name)) > maxNameShown {
			name = string([]rune(name)[:maxNameShown])
		}
		if err := cop.Check(c.Request); err != nil {
			c.AbortWithStatusJSON(http.StatusForbidden, gin.H{"message": "cross-origin request refused"})
			return
		}
		device, _ := c.Cookie(auth.DeviceCookie)
		acc, ok, err := s.auth.SignIn(c.Request.Context(), auth.Client(c), c.PostForm("user"), c.PostForm("password"), device)
		if err != nil {
			c.Header("Retry-After", auth.RetryAfter(auth.RetryDelay(err)))
			s.render(c, http.StatusTooManyRequests, "login", map[string]any{"Title": "Sign in", "Next": next, "Name": name, "Error": "Too many failed attempts. Wait a minute and try again."})
			return
		}
		if !ok {
			s.render(c, http.StatusUnauthorized, "login", map[string]any{"Title": "Sign in", "Next": next, "Name": name, "Error": "Wrong user or password."})
			return
		}
		token, err := s.auth.Login(c.Request.Context(), acc)
		if tm, ok := errors.AsType[auth.TooMany](err); ok {
			c.Header("Retry-After", auth.RetryAfter(tm.RetryAfter))
			s.render(c, http.StatusTooManyRequests, "login", map[string]any{"Title": "Sign in", "Next": next, "Name": name, "Error": "Too many sign-ins of this account just now. Wait a moment and try again."})
			return
		}
		if err != nil {
			c.Error(err)
			s.render(c, http.StatusServiceUnavailable, "login", map[string]any{"Title": "Sign in", "Next": next, "Name": name, "Error": "Cannot store the session: Redis does not answer."})
			return
		}
		http.SetCookie(c.Writer, &http.Cookie{
			Name: auth.SessionCookie, Value: token, Path: "/", MaxAge: int(s.cfg.SessionTTL.Seconds()),
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: auth.IsTLS(c.Request),
		})
		// This browser is now a trusted device of the account (see
		// loginLimiter); only the sign-in form reads the cookie.
		http.SetCookie(c.Writer, &http.Cookie{
			Name: auth.DeviceCookie, Value: s.auth.NewDevice(acc), Path: "/login", MaxAge: int(auth.DeviceCookieTTL.Seconds()),
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: auth.IsTLS(c.Request),
		})
		c.Redirect(http.StatusSeeOther, next)
	}
}

// handleLogout ends the session.
func (s *server) handleLogout() gin.HandlerFunc {
	return func(c *gin.Context) {
		if token := c.GetString(auth.KeySession); token != "" {
			if err := s.auth.Logout(c.Request.Context(), c.GetString(auth.KeyUser), token); err != nil {
				c.Error(err)
			}
		}
		http.SetCookie(c.Writer, &http.Cookie{Name: auth.SessionCookie, Value: "", Path: "/", MaxAge: -1,
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: auth.IsTLS(c.Request)})
		c.Redirect(http.StatusSeeOther, "/login")
	}
}
