package monitoring

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync"
	"time"
)

// asynqmon serves its static files (1.4 MB of JavaScript on every page)
// uncompressed and without a validator or a Cache-Control, so a browser
// downloaded them again on every visit. assets keeps each file
// of asynqmon's static/ as asynqmon serves it, compressed once with gzip,
// and answers it with an ETag and a Cache-Control that lets a browser
// keep it for a year: the files' names carry a hash of their content
// (static/js/main.5adda2da.chunk.js), so another asynqmon has other names.
// "private": they are served behind the login.
type assets struct {
	mu    sync.Mutex
	files map[string]*asset
}

// asset is one of asynqmon's static files.
type asset struct {
	contentType string
	etag        string // of the file as asynqmon serves it; the gzip one adds "-gzip"
	raw, gz     []byte
}

// maxAsset is the largest file kept: the source maps (up to
// 4.6 MB), which only a browser's developer tools fetch, pass through.
const maxAsset = 2 << 20

// assetsPath is where asynqmon's hashed static files are.
const assetsPath = Path + "/static/"

// serve answers a GET or HEAD of one of asynqmon's static files from the
// cache, asking asynqmon for it the first time, and reports whether it
// did; it leaves any other request, and a file asynqmon does not have
// (it answers its page instead), to the caller.
func (m *assets) serve(w http.ResponseWriter, r *http.Request, mon http.Handler) bool {
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || !strings.HasPrefix(r.URL.Path, assetsPath) {
		return false
	}
	name := path.Clean(r.URL.Path)
	a := m.get(name, r, mon)
	if a == nil {
		return false
	}
	body, etag := a.raw, a.etag
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		body, etag = a.gz, strings.TrimSuffix(a.etag, `"`)+`-gzip"`
		w.Header().Set("Content-Encoding", "gzip")
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", etag)
	h.Set("Cache-Control", "private, max-age=31536000, immutable")
	h.Add("Vary", "Accept-Encoding")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
	return true
}

// get returns the cached file name, asking asynqmon for it when it is
// not yet kept; nil when asynqmon has no such file or it is too large.
func (m *assets) get(name string, r *http.Request, mon http.Handler) *asset {
	m.mu.Lock()
	a, ok := m.files[name]
	m.mu.Unlock()
	if ok {
		return a
	}
	req := httptest.NewRequestWithContext(r.Context(), http.MethodGet, name, nil)
	rec := httptest.NewRecorder()
	mon.ServeHTTP(rec, req)
	ct := rec.Header().Get("Content-Type")
	if rec.Code != http.StatusOK || strings.HasPrefix(ct, "text/html") || rec.Body.Len() > maxAsset {
		return nil
	}
	raw := rec.Body.Bytes()
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(raw)
	zw.Close()
	sum := sha256.Sum256(raw)
	a = &asset{contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, raw: raw, gz: gz.Bytes()}
	m.mu.Lock()
	if m.files == nil {
		m.files = map[string]*asset{}
	}
	m.files[name] = a
	m.mu.Unlock()
	return a
}

// acceptsGzip reports whether an Accept-Encoding takes gzip: named, with
// no q=0.
func acceptsGzip(ae string) bool {
	for part := range strings.SplitSeq(ae, ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
