package alert

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPost(t *testing.T) {
	var got map[string]string
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(415)
			return
		}
		json.NewDecoder(r.Body).Decode(&got)
	}))
	defer ok.Close()
	elsewhere := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { t.Error("a redirect was followed") }))
	defer elsewhere.Close()
	redirect := httptest.NewServer(http.RedirectHandler(elsewhere.URL, http.StatusTemporaryRedirect))
	defer redirect.Close()

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Post(cancelled, Client(), ok.URL+"/hook", map[string]string{"text": "hi"}); err != nil || got["text"] != "hi" {
		t.Errorf("Post = %v, received %v", err, got)
	}
	var status *StatusError
	if err := Post(context.Background(), Client(), redirect.URL+"/hook", map[string]string{"text": "hi"}); !errors.As(err, &status) || status.Status != 307 {
		t.Errorf("a redirect: %v, want StatusError 307", err)
	}
	err := Post(context.Background(), Client(), "http://127.0.0.1:1/services/T0/B0/secret-token", map[string]string{"text": "hi"})
	if err == nil || strings.Contains(err.Error(), "secret-token") {
		t.Errorf("an unreachable webhook: %v, want an error without the URL's path", err)
	}
}
