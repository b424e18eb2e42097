package auth

import (
	"net/http"
	"net/url"
	"path"
	"strings"
)

// SafeNext keeps a post-login redirect on this site. It returns the
// value the redirect sends, which is what it checks: http.Redirect cleans
// the path ("/./x" becomes "/x"), so next is cleaned the same way first.
// Both next and what is sent must be a path that starts with "/" not
// followed by "/", with no "\\" anywhere and no control characters, also
// once percent-decoded (browsers read "\\" as "/" and drop tabs and line
// breaks, so "/\t/evil.com" would read as "//evil.com"). Anything else
// becomes "/".
func SafeNext(next string) string {
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

// IsTLS reports whether the client reached us over TLS, directly or
// through a proxy that says so.
func IsTLS(r *http.Request) bool {
	return r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}
