package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestConfigSigningSecrets checks that the api fails closed on every
// STRIPE_WEBHOOK_SECRET that does not give it real secrets to check.
func TestConfigSigningSecrets(t *testing.T) {
	tests := []struct {
		name, value string
		want        []string // nil: refused
	}{
		{"one secret", "whsec_abc", []string{"whsec_abc"}},
		{"two during rotation, spaced", " whsec_new , whsec_old ", []string{"whsec_new", "whsec_old"}},
		{"unset", "", nil},
		{"blank", "   ", nil},
		{"a lone comma", ",", nil},
		{"commas and spaces", " , ", nil},
		{"a stray comma", "whsec_abc,", nil},
		{"an empty entry in the middle", "whsec_a,,whsec_b", nil},
		{"the prefix alone", "whsec_", nil},
		{"not a signing secret", "sk_test_123", nil},
		{"a rotation with one typo", "whsec_new,wsec_old", nil},
		{"white space inside", "whsec_ab c", nil},
		{"upper-case prefix", "WHSEC_abc", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadConfig(func(k string) string {
				return map[string]string{"STRIPE_WEBHOOK_SECRET": tt.value}[k]
			})
			if tt.want == nil {
				if err == nil {
					t.Fatalf("accepted, with %d secrets", len(cfg.Secrets))
				}
				if !strings.Contains(err.Error(), "STRIPE_WEBHOOK_SECRET") {
					t.Errorf("error does not name STRIPE_WEBHOOK_SECRET: %v", err)
				}
				if v := strings.Trim(tt.value, " ,"); len(v) > 6 && strings.Contains(err.Error(), v) {
					t.Errorf("error quotes the value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(cfg.Secrets, "|") != strings.Join(tt.want, "|") {
				t.Errorf("secrets = %d entries, want %d", len(cfg.Secrets), len(tt.want))
			}
		})
	}
}

func TestConfigTolerance(t *testing.T) {
	tests := []struct {
		value string
		ok    bool
	}{
		{"", true}, {"10m", true}, {"1h", true}, {"61m", false}, {"720h", false}, {"0s", false},
	}
	for _, tt := range tests {
		_, err := loadConfig(func(k string) string {
			return map[string]string{"STRIPE_WEBHOOK_SECRET": stripetest.Secret, "STRIPE_WEBHOOK_TOLERANCE": tt.value}[k]
		})
		if (err == nil) != tt.ok {
			t.Errorf("STRIPE_WEBHOOK_TOLERANCE=%q: err = %v, want accepted %v", tt.value, err, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "STRIPE_WEBHOOK_TOLERANCE") {
			t.Errorf("error does not name the variable: %v", err)
		}
	}
}

// TestVerifierWithoutSecretsRefuses checks that the verifier fails closed
// on its own: built with no secret, it refuses every delivery, signed or
// not, whatever its configuration said.
func TestVerifierWithoutSecretsRefuses(t *testing.T) {
	body := stripetest.Event("customer.created", "evt_no_secret", time.Now())
	for _, header := range []string{
		"",
		"t=1,v1=00",
		stripetest.Sign(body, time.Now(), stripetest.Secret),
	} {
		for _, secrets := range [][]string{nil, {}} {
			v := verifier{secrets: secrets, tolerance: 5 * time.Minute, now: time.Now}
			if err := v.verify(body, header); err == nil {
				t.Errorf("verify(%q) with %d secrets = nil, want a refusal", header, len(secrets))
			}
		}
	}
}
