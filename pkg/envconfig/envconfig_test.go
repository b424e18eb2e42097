package envconfig_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stripeq/stripeq/pkg/envconfig"
)

func TestReader(t *testing.T) {
	vars := map[string]string{
		"N": "7", "BAD_N": "x", "LOW_N": "0", "HIGH_N": "65", "D": "90s", "BAD_D": "soon", "L": " a, ,b ", "S": " v ", "SECRET": "",
		"T": "true", "F": "false", "BAD_B": "yes",
	}
	env := envconfig.New(func(k string) string { return vars[k] })
	if got := env.Int("N", 1, 1); got != 7 {
		t.Errorf("Int = %d", got)
	}
	if got := env.Int("UNSET", 5, 1); got != 5 {
		t.Errorf("Int default = %d", got)
	}
	env.Int("BAD_N", 1, 1)
	env.Int("LOW_N", 1, 1)
	if got := env.IntRange("N", 1, 1, 64); got != 7 {
		t.Errorf("IntRange = %d", got)
	}
	if got := env.IntRange("UNSET", 1, 1, 64); got != 1 {
		t.Errorf("IntRange default = %d", got)
	}
	env.IntRange("HIGH_N", 1, 1, 64)
	if got := env.Duration("D", time.Second); got != 90*time.Second {
		t.Errorf("Duration = %v", got)
	}
	env.Duration("BAD_D", time.Second)
	if got := env.List("L", nil); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("List = %q", got)
	}
	if got := env.String("S", "d"); got != "v" {
		t.Errorf("String = %q", got)
	}
	env.Required("SECRET", "the secret")
	if !env.Bool("T", false) || env.Bool("F", true) || !env.Bool("UNSET", true) || env.Bool("BAD_B", false) {
		t.Error("Bool: true, false, unset or its default on a bad value read wrong")
	}

	err := env.Err()
	if !errors.Is(err, envconfig.ErrInvalid) {
		t.Fatalf("Err = %v", err)
	}
	for _, name := range []string{"BAD_N", "LOW_N", "HIGH_N", "BAD_D", "SECRET", "BAD_B"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	if envconfig.New(func(string) string { return "" }).Err() != nil {
		t.Error("a reader with no problems reports an error")
	}
}

func TestCredential(t *testing.T) {
	tests := []struct {
		name, value, want string
		fails             bool
	}{
		{"unset", "", "", false},
		{"kept exactly", "p@ss word", "p@ss word", false},
		{"blank", "   ", "", true},
		{"tab only", "\t", "", true},
		{"leading space", " secret", " secret", true},
		{"trailing newline", "secret\n", "secret\n", true},
		{"control character", "sec\x00ret", "sec\x00ret", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := envconfig.New(func(string) string { return tt.value })
			if got := env.Credential("DASHBOARD_PASSWORD"); got != tt.want {
				t.Errorf("Credential = %q, want %q", got, tt.want)
			}
			err := env.Err()
			if (err != nil) != tt.fails {
				t.Fatalf("Err = %v, want failure %v", err, tt.fails)
			}
			if err != nil {
				if !strings.Contains(err.Error(), "DASHBOARD_PASSWORD") {
					t.Errorf("error does not name the variable: %v", err)
				}
				if strings.TrimSpace(tt.value) != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.value)) {
					t.Errorf("error quotes the value: %v", err)
				}
			}
		})
	}
}

func TestWarn(t *testing.T) {
	env := envconfig.New(func(string) string { return "" })
	if len(env.Warnings()) != 0 {
		t.Fatal("a new reader has warnings")
	}
	env.Warn("METRICS_ADDR", "is a network address")
	if got := env.Warnings(); !slices.Equal(got, []string{"METRICS_ADDR is a network address"}) {
		t.Errorf("Warnings = %q", got)
	}
	if env.Err() != nil {
		t.Error("a warning is reported as an error")
	}
}
