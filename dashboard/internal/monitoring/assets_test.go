package monitoring

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
)

// TestAssetsAreCompressedAndCached: asynqmon's scripts are served gzipped
// to a browser that takes gzip, whole to one that does not, with an ETag
// and a Cache-Control that keeps them; a request with the ETag gets 304.
// Its page, and a file asynqmon does not have, are left to asynqmon.
func TestAssetsAreCompressedAndCached(t *testing.T) {
	// Static files need no Redis: nothing listens at this address.
	mon := asynqmon.New(asynqmon.Options{RootPath: Path, RedisConnOpt: asynq.RedisClientOpt{Addr: "127.0.0.1:1"}, ReadOnly: true})
	t.Cleanup(func() { mon.Close() })
	var a assets
	get := func(path string, headers ...string) (*httptest.ResponseRecorder, bool) {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			r.Header.Set(headers[i], headers[i+1])
		}
		w := httptest.NewRecorder()
		return w, a.serve(w, r, mon)
	}
	page := httptest.NewRecorder()
	mon.ServeHTTP(page, httptest.NewRequest(http.MethodGet, Path+"/", nil))
	script := regexp.MustCompile(`/static/js/main\.[0-9a-f]+\.chunk\.js`).FindString(page.Body.String())
	if script == "" {
		t.Fatalf("no main script in asynqmon's page:\n%.500s", page.Body.String())
	}
	script = Path + script

	plain, ok := get(script)
	if !ok || plain.Code != http.StatusOK || plain.Header().Get("Content-Encoding") != "" || plain.Body.Len() < 100_000 {
		t.Fatalf("plain: served %v, %d, encoding %q, %d bytes", ok, plain.Code, plain.Header().Get("Content-Encoding"), plain.Body.Len())
	}
	gz, _ := get(script, "Accept-Encoding", "gzip, deflate, br")
	if gz.Code != http.StatusOK || gz.Header().Get("Content-Encoding") != "gzip" || gz.Body.Len()*3 > plain.Body.Len() {
		t.Fatalf("gzip: %d, encoding %q, %d bytes for %d", gz.Code, gz.Header().Get("Content-Encoding"), gz.Body.Len(), plain.Body.Len())
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if body, _ := io.ReadAll(zr); !bytes.Equal(body, plain.Body.Bytes()) {
		t.Error("the gzipped script is not the script")
	}
	for _, w := range []*httptest.ResponseRecorder{plain, gz} {
		if cc := w.Header().Get("Cache-Control"); !strings.Contains(cc, "max-age=31536000") || !strings.Contains(cc, "private") {
			t.Errorf("Cache-Control %q", cc)
		}
		if !strings.Contains(w.Header().Get("Vary"), "Accept-Encoding") || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/javascript") {
			t.Errorf("Vary %q, Content-Type %q", w.Header().Get("Vary"), w.Header().Get("Content-Type"))
		}
	}
	if plain.Header().Get("ETag") == "" || plain.Header().Get("ETag") == gz.Header().Get("ETag") {
		t.Errorf("ETags %q and %q: want one per encoding", plain.Header().Get("ETag"), gz.Header().Get("ETag"))
	}
	if again, _ := get(script, "Accept-Encoding", "gzip", "If-None-Match", gz.Header().Get("ETag")); again.Code != http.StatusNotModified || again.Body.Len() != 0 {
		t.Errorf("with its ETag: %d, %d bytes; want 304", again.Code, again.Body.Len())
	}
	for _, path := range []string{Path + "/", Path + "/static/js/nope.js", Path + "/api/queues"} {
		if _, ok := get(path); ok {
			t.Errorf("%s was answered from the cache", path)
		}
	}
	if len(a.files) != 1 {
		t.Errorf("%d files kept, want the one script", len(a.files))
	}
}
