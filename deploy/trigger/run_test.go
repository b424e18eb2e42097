package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stripeq/stripeq/pkg/stripetest"
)

func TestRun(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string   // "" for none
		want    []string // in the output
	}{
		{[]string{"list"}, "", append(append([]string{"event types", "API versions (-api-version, default 2023-10-16):"},
			stripetest.FixtureTypes()...), stripetest.APIVersions()...)},
		{[]string{"-api-version", stripetest.APIVersionDahlia, "list"}, "", []string{"payment_intent.succeeded"}},
		{[]string{"-api-version", "2024-06-20", "invoice.paid"}, `-api-version "2024-06-20": no fixtures at that version; the versions are 2023-10-16, 2025-03-31.basil, 2026-08-26.dahlia`, nil},
		{[]string{"scenario", "-api-version", "dahlia"}, `-api-version "dahlia"`, nil},
		{[]string{"invoice.nope"}, `no fixture for event type "invoice.nope"`, nil},
		{nil, "name one event type, scenario or list", []string{"-api-version"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			getenv := func(string) string { return "" }
			err := run(context.Background(), tc.args, getenv, &out)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}
