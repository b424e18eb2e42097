package console

import (
	"strings"
	"testing"
	"time"
)

func TestRecoverCheckConfig(t *testing.T) {
	base := map[string]string{"DASHBOARD_USER": opUser, "DASHBOARD_PASSWORD": opPass, "STRIPE_SECRET_KEY": "rk_test_check"}
	load := func(extra map[string]string) (Config, error) {
		vars := map[string]string{}
		for k, v := range base {
			vars[k] = v
		}
		for k, v := range extra {
			vars[k] = v
		}
		return LoadConfig(func(k string) string { return vars[k] })
	}
	cfg, err := load(map[string]string{"RECOVER_INTERVAL": "10m", "RECOVER_AUTO": "true", "ALERT_WEBHOOK_URL": "https://hooks.example/T/B"})
	if err != nil || cfg.Check.Interval != 10*time.Minute || cfg.Check.Grace != time.Hour || !cfg.Check.Auto || cfg.Check.AlertWebhookURL == "" {
		t.Fatalf("valid settings: %+v %v", cfg.Check, err)
	}
	if cfg, err := load(nil); err != nil || cfg.Check.Interval != 0 {
		t.Fatalf("default (off): %+v %v", cfg.Check, err)
	}
	for _, tc := range []struct {
		name string
		vars map[string]string
		says string
	}{
		{"interval too short", map[string]string{"RECOVER_INTERVAL": "30s"}, "RECOVER_INTERVAL"},
		{"interval not a duration", map[string]string{"RECOVER_INTERVAL": "hourly"}, "RECOVER_INTERVAL"},
		{"interval without a key", map[string]string{"RECOVER_INTERVAL": "10m", "STRIPE_SECRET_KEY": ""}, "RECOVER_INTERVAL"},
		{"auto not a boolean", map[string]string{"RECOVER_INTERVAL": "10m", "RECOVER_AUTO": "yes please"}, "RECOVER_AUTO"},
		{"auto without the check", map[string]string{"RECOVER_AUTO": "true"}, "RECOVER_AUTO"},
		{"grace too short", map[string]string{"RECOVER_INTERVAL": "10m", "RECOVER_GRACE": "1s"}, "RECOVER_GRACE"},
		{"grace past DEDUPE_WINDOW", map[string]string{"RECOVER_INTERVAL": "10m", "RECOVER_GRACE": "168h"}, "RECOVER_GRACE"},
		{"alert URL not http", map[string]string{"ALERT_WEBHOOK_URL": "ftp://hooks.example/x"}, "ALERT_WEBHOOK_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := load(tc.vars); err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("LoadConfig: %v, want an error naming %s", err, tc.says)
			}
		})
	}
}
