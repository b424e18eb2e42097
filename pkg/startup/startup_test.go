package startup_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stripeq/stripeq/pkg/redisconn"
	"github.com/stripeq/stripeq/pkg/startup"
)

// settings is a command's configuration for the tests.
type settings struct {
	name   string
	unsafe []string
}

func (s settings) UnsafeSettings() []string { return s.unsafe }

func TestBegin(t *testing.T) {
	errBad := errors.New("PORT is not a number; NAME is required")
	for _, tc := range []struct {
		name    string
		env     map[string]string
		loadErr error
		unsafe  []string
		wantErr string
		wantLog []string
	}{
		{name: "plain", env: map[string]string{"LOG_FORMAT": "json"}},
		{name: "unsafe settings are logged", env: map[string]string{"LOG_FORMAT": "json"}, unsafe: []string{"A is open", "B is in clear text"},
			wantLog: []string{`"level":"WARN","msg":"unsafe setting: A is open"`, `"msg":"unsafe setting: B is in clear text"`}},
		{name: "the configuration's error as it is", loadErr: errBad, unsafe: []string{"A is open"}, wantErr: errBad.Error()},
		{name: "an invalid LOG_FORMAT", env: map[string]string{"LOG_FORMAT": "xml"}, wantErr: "LOG_FORMAT"},
		{name: "an invalid LOG_LEVEL", env: map[string]string{"LOG_LEVEL": "loud"}, wantErr: "LOG_LEVEL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			getenv := func(k string) string { return tc.env[k] }
			loaded := false
			log, cfg, err := startup.Begin(&out, getenv, func(g func(string) string) (settings, error) {
				loaded = true
				return settings{name: g("LOG_FORMAT"), unsafe: tc.unsafe}, tc.loadErr
			})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Begin: %v, want an error with %q", err, tc.wantErr)
				}
				if out.Len() > 0 {
					t.Errorf("logged on error: %s", out.String())
				}
				return
			}
			if err != nil || log == nil || !loaded || cfg.name != tc.env["LOG_FORMAT"] {
				t.Fatalf("Begin: %v, logger %v, loaded %v, config %+v", err, log, loaded, cfg)
			}
			for _, want := range tc.wantLog {
				if !strings.Contains(out.String(), want) {
					t.Errorf("log lacks %s:\n%s", want, out.String())
				}
			}
			if len(tc.wantLog) == 0 && out.Len() > 0 {
				t.Errorf("logged %s", out.String())
			}
		})
	}
}

func TestPing(t *testing.T) {
	// Nothing listens on port 1; the URL's password must not show.
	raw := "redis://:hunter2@127.0.0.1:1/0"
	opt, err := redisconn.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	log, _, err := startup.Begin(&out, func(string) string { return "" }, func(func(string) string) (settings, error) { return settings{}, nil })
	if err != nil {
		t.Fatal(err)
	}
	rdb := startup.Redis(log, opt)
	defer rdb.Close()
	err = startup.Ping(context.Background(), rdb, raw)
	if err == nil || !strings.HasPrefix(err.Error(), "REDIS_URL ") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Ping: %v, want an error naming REDIS_URL, redacted", err)
	}
}
