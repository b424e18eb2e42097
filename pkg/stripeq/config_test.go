package stripeq

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/stripe/stripe-go/v76"
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

// TestConfigFromEnvLogging: ConfigFromEnv honours LOG_FORMAT and
// LOG_LEVEL, as the worker command does, and reports a bad one with the
// other settings.
func TestConfigFromEnvLogging(t *testing.T) {
	for _, tt := range []struct {
		env     map[string]string
		debug   bool
		wantErr string
	}{
		{nil, false, ""},
		{map[string]string{"LOG_LEVEL": "debug", "LOG_FORMAT": "json"}, true, ""},
		{map[string]string{"LOG_FORMAT": "xml", "QUEUE_SHARDS": "0"}, false, "LOG_FORMAT"},
		{map[string]string{"LOG_LEVEL": "chatty"}, false, "LOG_LEVEL"},
	} {
		c, err := ConfigFromEnv(func(k string) string { return tt.env[k] })
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%v: err %v, want one naming %s", tt.env, err, tt.wantErr)
			}
			continue
		}
		if err != nil || c.Logger == nil || c.Logger.Enabled(t.Context(), slog.LevelDebug) != tt.debug {
			t.Errorf("%v: logger %v (debug %v), err %v", tt.env, c.Logger, tt.debug, err)
		}
	}
}

// TestNewWorkerSetsNothingProcessWide: a library leaves the process's
// loggers alone; the worker's Stripe client logs through its own backend.
func TestNewWorkerSetsNothingProcessWide(t *testing.T) {
	before := stripe.DefaultLeveledLogger
	w, err := NewWorker(Config{StripeSecretKey: "sk_test_abc", GlobalConcurrency: NoLimit})
	if err != nil {
		t.Fatal(err)
	}
	defer w.rdb.Close()
	if stripe.DefaultLeveledLogger != before {
		t.Errorf("NewWorker set stripe.DefaultLeveledLogger")
	}
}

// TestWarningsNameWhatWasSet: the worker logs the warnings of the Config
// it runs with, named as it was set: by variable for ConfigFromEnv's, by
// Go field for one built in code.
func TestWarningsNameWhatWasSet(t *testing.T) {
	fromEnv, err := ConfigFromEnv(func(k string) string { return map[string]string{"METRICS_ADDR": ":8083"}[k] })
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{fromEnv, "METRICS_ADDR is not a loopback address"},
		{Config{MetricsAddr: ":8083"}, "Config.MetricsAddr is not a loopback address"},
	} {
		w, err := NewWorker(tt.cfg)
		if err != nil {
			t.Fatal(err)
		}
		w.rdb.Close()
		if len(w.warnings) != 1 || !strings.HasPrefix(w.warnings[0], tt.want) {
			t.Errorf("warnings %q, want one starting %q", w.warnings, tt.want)
		}
	}
}
