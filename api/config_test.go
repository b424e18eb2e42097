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
	// Stripe issues whsec_ and 32 characters (its Dashboard) or 64 hex
	// digits (the Stripe CLI).
	const (
		a, b = "whsec_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6", "whsec_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4"
		cli  = "whsec_" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	)
	tests := []struct {
		name, value string
		want        []string // nil: refused
	}{
		{"one secret", a, []string{a}},
		{"the Stripe CLI's", cli, []string{cli}},
		{"two during rotation, spaced", " " + a + " , " + b + " ", []string{a, b}},
		{"the test fixtures' secret", stripetest.Secret, []string{stripetest.Secret}},
		{"unset", "", nil},
		{"blank", "   ", nil},
		{"a lone comma", ",", nil},
		{"commas and spaces", " , ", nil},
		{"a stray comma", a + ",", nil},
		{"an empty entry in the middle", a + ",," + b, nil},
		{"the prefix alone", "whsec_", nil},
		{"one character", "whsec_x", nil},
		{"one character short of Stripe's", a[:len(a)-1], nil},
		{"a short one beside a good one", a + ",whsec_abc", nil},
		{"not a signing secret", "sk_test_123", nil},
		{"a rotation with one typo", a + ",wsec" + b[len("whsec"):], nil},
		{"white space inside", a[:20] + " " + a[20:], nil},
		{"upper-case prefix", "WHSEC_" + a[len("whsec_"):], nil},
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

// TestConfigRedisPasswordInTheClear: a password sent in the clear to a
// Redis that is not on loopback starts the api, with a warning that names
// REDIS_URL and not the password.
func TestConfigRedisPasswordInTheClear(t *testing.T) {
	for _, tt := range []struct {
		url  string
		warn bool
	}{
		{"redis://:redis-pw@10.255.255.1", true},
		{"redis://:redis-pw@127.0.0.1:6379/0", false},
		{"rediss://:redis-pw@redis.internal:6380/0", false},
		{"redis://redis.internal:6379/0", false},
	} {
		cfg, err := loadConfig(func(k string) string {
			return map[string]string{"STRIPE_WEBHOOK_SECRET": stripetest.Secret, "REDIS_URL": tt.url}[k]
		})
		if err != nil {
			t.Fatalf("%s: %v", tt.url, err)
		}
		warned := strings.Join(cfg.Warnings, "\n")
		if strings.HasPrefix(warned, "REDIS_URL ") != tt.warn || strings.Contains(warned, "redis-pw") {
			t.Errorf("%s: warnings %q, want one naming REDIS_URL: %v", tt.url, warned, tt.warn)
		}
	}
}
