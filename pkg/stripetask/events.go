package stripetask

import (
	"slices"

	"github.com/stripeq/stripeq/pkg/envconfig"
)

// AllEvents is the STRIPE_EVENTS value that permits every event type.
const AllEvents = "*"

// ReadEvents reads STRIPE_EVENTS, the permitted event types: a
// comma-separated list, or [AllEvents]. Default: every type the worker
// handles ([Handled]). A list that names no type, or mixes "*" with
// types, is recorded on env as an error. The api stores only permitted
// events; a recovery lists only them.
func ReadEvents(env *envconfig.Reader) []string {
	events := env.List("STRIPE_EVENTS", Handled())
	if len(events) == 0 {
		env.Fail("STRIPE_EVENTS", "lists no event type")
	}
	if slices.Contains(events, AllEvents) && len(events) > 1 {
		env.Fail("STRIPE_EVENTS", `mixes "*" with event types`)
	}
	return events
}

// Permits returns a test of whether an event type is permitted by events,
// as [ReadEvents] reads them.
func Permits(events []string) func(eventType string) bool {
	if slices.Contains(events, AllEvents) {
		return func(string) bool { return true }
	}
	set := make(map[string]bool, len(events))
	for _, e := range events {
		set[e] = true
	}
	return func(t string) bool { return set[t] }
}
