package stripeq

import (
	"strings"
	"testing"
)

// TestConfigExposure checks the worker's settings, as read from the
// environment, that touch a credential
// or expose something: the unsafe ones stop it, naming the variable; the
// ones safe only behind a network boundary are warned about.
func TestConfigExposure(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		wantErr  string // the variable the error names; "" for none
		wantWarn string // the variable a warning names; "" for none
	}{
		{"defaults", nil, "", ""},
		{"a test secret key", map[string]string{"STRIPE_SECRET_KEY": "sk_test_abc"}, "", ""},
		{"a live restricted key", map[string]string{"STRIPE_SECRET_KEY": "rk_live_abc"}, "", ""},
		{"a publishable key", map[string]string{"STRIPE_SECRET_KEY": "pk_live_abc"}, "STRIPE_SECRET_KEY", ""},
		{"a webhook secret as the API key", map[string]string{"STRIPE_SECRET_KEY": "whsec_abc"}, "STRIPE_SECRET_KEY", ""},
		{"the key's prefix alone", map[string]string{"STRIPE_SECRET_KEY": "sk_test_"}, "STRIPE_SECRET_KEY", ""},
		{"stripe-mock on loopback over http", map[string]string{"STRIPE_SECRET_KEY": "sk_test_abc", "STRIPE_API_BASE": "http://127.0.0.1:12111"}, "", ""},
		{"an API over http on the network", map[string]string{"STRIPE_SECRET_KEY": "sk_test_abc", "STRIPE_API_BASE": "http://stripe-proxy.internal"}, "STRIPE_API_BASE", ""},
		{"an API over https", map[string]string{"STRIPE_SECRET_KEY": "sk_test_abc", "STRIPE_API_BASE": "https://stripe-proxy.internal"}, "", ""},
		{"alerts over https", map[string]string{"ALERT_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x"}, "", ""},
		{"alerts over http on the network", map[string]string{"ALERT_WEBHOOK_URL": "http://chat.internal/hook/x"}, "", "ALERT_WEBHOOK_URL"},
		{"alerts over http on loopback", map[string]string{"ALERT_WEBHOOK_URL": "http://localhost:9000/hook"}, "", ""},
		{"metrics on loopback", map[string]string{"METRICS_ADDR": "127.0.0.1:8082"}, "", ""},
		{"metrics on every interface", map[string]string{"METRICS_ADDR": ":8082"}, "", "METRICS_ADDR"},
		{"a Redis password in the clear to a remote host", map[string]string{"REDIS_URL": "redis://:redis-pw@10.255.255.1:6379/0"}, "", "REDIS_URL"},
		{"a Redis password over TLS", map[string]string{"REDIS_URL": "rediss://:redis-pw@10.255.255.1:6379/0"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, warnings, err := loadConfig(func(k string) string { return tt.env[k] })
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
			case tt.wantErr != "" && strings.Contains(err.Error(), tt.env["STRIPE_SECRET_KEY"]):
				t.Errorf("error quotes the key: %v", err)
			}
			if tt.wantErr != "" {
				return
			}
			warned := strings.Join(warnings, "\n")
			if tt.wantWarn == "" && warned != "" {
				t.Errorf("warnings %q, want none", warned)
			}
			if tt.wantWarn != "" && !strings.HasPrefix(warned, tt.wantWarn+" ") {
				t.Errorf("warnings %q, want one naming %s", warned, tt.wantWarn)
			}
		})
	}
}
