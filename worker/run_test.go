package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/redistest"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
)

// TestRunReportsEverySettingAtOnce: the worker's and the built-ins'
// settings are checked together, each bad one named, before anything runs.
func TestRunReportsEverySettingAtOnce(t *testing.T) {
	env := map[string]string{"STRIPE_SECRET_KEY": "pk_live_abc", "SMTP_URL": "mail.example.com:25", "QUEUE_SHARDS": "0"}
	err := run(t.Context(), nil, func(k string) string { return env[k] }, &bytes.Buffer{})
	for _, name := range []string{"STRIPE_SECRET_KEY", "SMTP_URL", "QUEUE_SHARDS"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("err = %v, want it to name %s", err, name)
		}
	}
}

// TestRunStartsAndStops runs the worker until its context ends.
func TestRunStartsAndStops(t *testing.T) {
	db := redistest.New(t)
	env := map[string]string{"REDIS_URL": db.URL, "LOG_FORMAT": "json", "SMTP_URL": "smtp://127.0.0.1:2525"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, nil, func(k string) string { return env[k] }, &out); err != nil {
		t.Fatal(err)
	}
	types := strconv.Itoa(len(events.Handled()))
	for _, want := range []string{`"msg":"built-in handlers registered","types":` + types + `,"email":true`, `"msg":"worker running"`, `"handled_types":` + types, `"msg":"worker stopped"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, out.String())
		}
	}
}
