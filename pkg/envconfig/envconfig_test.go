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

	err := env.Err()
	if !errors.Is(err, envconfig.ErrInvalid) {
		t.Fatalf("Err = %v", err)
	}
	for _, name := range []string{"BAD_N", "LOW_N", "HIGH_N", "BAD_D", "SECRET"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	if envconfig.New(func(string) string { return "" }).Err() != nil {
		t.Error("a reader with no problems reports an error")
	}
}
