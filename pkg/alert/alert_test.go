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
	if err := Post(cancelled, Client(), ok.URL+"/hook", Message{Text: "hi"}); err != nil || got["text"] != "hi" {
		t.Errorf("Post = %v, received %v", err, got)
	}
	var status *StatusError
	if err := Post(context.Background(), Client(), redirect.URL+"/hook", Message{Text: "hi"}); !errors.As(err, &status) || status.Status != 307 {
		t.Errorf("a redirect: %v, want StatusError 307", err)
	}
	err := Post(context.Background(), Client(), "http://127.0.0.1:1/services/T0/B0/secret-token", Message{Text: "hi"})
	if err == nil || strings.Contains(err.Error(), "secret-token") {
		t.Errorf("an unreachable webhook: %v, want an error without the URL's path", err)
	}
}

// TestPostEscapesText: the text is escaped as Slack's mrkdwn wants, so an
// error quoting an event value cannot mention the channel or hide a link.
func TestPostEscapesText(t *testing.T) {
	var got map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewDecoder(r.Body).Decode(&got)
	}))
	defer srv.Close()
	tests := []struct{ text, want string }{
		{"plain text: evt_1 failed", "plain text: evt_1 failed"},
		{"<!channel> pay now", "&lt;!channel&gt; pay now"},
		{"<@U024BE7LH>", "&lt;@U024BE7LH&gt;"},
		{"<https://evil.example|Console>", "&lt;https://evil.example|Console&gt;"},
		{"a & b", "a &amp; b"},
		{"already &lt;escaped&gt;", "already &amp;lt;escaped&amp;gt;"},
		{":rotating_light: *bold* `code`\nline two", ":rotating_light: *bold* `code`\nline two"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got = nil
			if err := Post(context.Background(), Client(), srv.URL, Message{Text: tt.text}); err != nil {
				t.Fatal(err)
			}
			if got["text"] != tt.want {
				t.Errorf("text sent %q, want %q", got["text"], tt.want)
			}
		})
	}
}
