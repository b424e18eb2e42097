package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/stripeq/stripeq/pkg/stripetest"
)

// setup loads both stripe-mock modules from the module cache, skipping the
// test when they are not there (go tool task fixtures downloads them).
func setup(t *testing.T) (*gen, *dahlia, *spec, *spec) {
	t.Helper()
	var loaded [2]struct {
		res obj
		sp  *spec
	}
	for i, v := range []string{stripeMock2023, stripeMockDahlia} {
		dir, err := cachedModule(v)
		if err != nil {
			t.Skipf("stripe-mock %s is not in the module cache (go tool task fixtures downloads it): %v", v, err)
		}
		if loaded[i].res, loaded[i].sp, err = loadOpenAPI(dir); err != nil {
			t.Fatal(err)
		}
	}
	return &gen{res: loaded[0].res}, newDahlia(loaded[1].sp, loaded[1].res), loaded[0].sp, loaded[1].sp
}

func TestTell(t *testing.T) {
	g, d, spec2023, specDahlia := setup(t)
	events, problems := tell(g, d, spec2023, specDahlia)
	if len(problems) > 0 {
		t.Errorf("problems:\n%s", strings.Join(problems, "\n"))
	}
	for _, v := range stripetest.APIVersions() {
		if len(events[v]) != len(stripetest.Lifecycle()) {
			t.Errorf("%d events at %s, want %d", len(events[v]), v, len(stripetest.Lifecycle()))
		}
	}
}

// TestTellRefuses checks that what must stop the generator does: a key only
// stripe-mock's fixture has that dahliaOnly does not decide, a key the
// dahlia spec requires missing. (TestBasilKeyTheSpecLacks: a key it lacks.)
func TestTellRefuses(t *testing.T) {
	tests := []struct {
		name   string
		change func(d *dahlia)
		want   string
	}{
		{"an undecided fixture key", func(d *dahlia) {
			delete(dahliaOnly, "subscription.billing_mode")
		}, "subscription.billing_mode: only stripe-mock's fixture has it"},
		{"a missing required key", func(d *dahlia) {
			dahliaOnly["invoice.issuer"] = from(func(obj) any { return omitted })
		}, "2026-08-26.dahlia invoice.paid: invoice.issuer: required by the 2026-08-26.dahlia spec, missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			saved := make(map[string]decision, len(dahliaOnly))
			for k, v := range dahliaOnly {
				saved[k] = v
			}
			t.Cleanup(func() { dahliaOnly = saved })
			g, d, spec2023, specDahlia := setup(t)
			tc.change(d)
			_, problems := tell(g, d, spec2023, specDahlia)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("no problem %q among:\n%s", tc.want, strings.Join(problems, "\n"))
			}
		})
	}
}

// TestBasilKeyTheSpecLacks checks that a key the basil changes leave that
// the dahlia spec lacks is found in the basil and the dahlia objects.
func TestBasilKeyTheSpecLacks(t *testing.T) {
	g, d, _, specDahlia := setup(t)
	o, prev := g.object("charge.failed")
	bo, bprev := toBasil(o, prev)
	bo["invoice"] = invoiceID // as if basil kept charge.invoice
	for _, e := range []event{
		newEvent("charge.failed", stripetest.APIVersionBasil, bo, bprev),
		newEvent("charge.failed", stripetest.APIVersionDahlia, d.object(bo), nil),
	} {
		want := e.APIVersion + " charge.failed: charge.invoice: not in the 2026-08-26.dahlia spec"
		if problems := checkObject(specDahlia, e, true); !slices.Contains(problems, want) {
			t.Errorf("no problem %q among %q", want, problems)
		}
	}
}
