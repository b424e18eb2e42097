package stripetask

import "slices"

// AllEvents is the STRIPE_EVENTS value that permits every event type.
const AllEvents = "*"

// Permits returns a test of whether an event type is permitted by events,
// as taskenv.Events reads them.
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
