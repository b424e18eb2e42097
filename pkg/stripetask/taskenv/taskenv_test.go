package taskenv_test

import (
	"slices"
	"testing"

	"github.com/stripeq/stripeq/pkg/envconfig"
	"github.com/stripeq/stripeq/pkg/stripetask/taskenv"
	"github.com/stripeq/stripeq/pkg/stripetest"
)

// TestDefaultEventsHaveFixtures: every type STRIPE_EVENTS permits by
// default has a fixture at every stored API version, so that `go tool task
// trigger` can send it and a handler of it can be tried from the README.
func TestDefaultEventsHaveFixtures(t *testing.T) {
	env := envconfig.New(func(string) string { return "" })
	types := taskenv.Events(env)
	if err := env.Err(); err != nil || len(types) < 20 {
		t.Fatalf("default STRIPE_EVENTS: %v, %v", types, err)
	}
	for _, typ := range types {
		if !slices.Contains(stripetest.FixtureTypes(), typ) {
			t.Errorf("%s is in STRIPE_EVENTS' default but has no fixture", typ)
			continue
		}
		for _, v := range stripetest.APIVersions() {
			stripetest.FixtureAt(v, typ) // panics when missing
		}
	}
}
