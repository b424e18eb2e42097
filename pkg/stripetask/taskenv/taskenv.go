// Package taskenv reads the settings that decide which Stripe events are
// stored and how: STRIPE_EVENTS, TASK_RETENTION and PAYLOAD_COMPRESSION.
// The api reads all three to store deliveries, and the dashboard and
// recover to store what a recovery finds exactly as the api would. The
// worker imports none of this package: it reads TASK_RETENTION alone, in
// pkg/stripeq's ConfigFromEnv, to keep a completed execution's attempt
// history as long as the task. They live apart from pkg/stripetask, so
// that the contract holds no setting of the api's. Internal to this
// module: no compatibility promise.
package taskenv

import (
	"slices"

	"github.com/stripeq/stripeq/pkg/envconfig"
	"github.com/stripeq/stripeq/pkg/stripeq/builtin/events"
	"github.com/stripeq/stripeq/pkg/stripetask"
	"github.com/stripeq/stripeq/pkg/stripetask/compress"
)

// AllEvents is the STRIPE_EVENTS value that permits every event type.
const AllEvents = "*"

// Events reads STRIPE_EVENTS, the permitted event types: a
// comma-separated list, or [AllEvents]. Default: every type the built-in
// handlers handle ([events.Handled]). A list that names no type, or
// mixes "*" with types, is recorded on env as an error. The api stores
// only permitted events; a recovery lists only them.
func Events(env *envconfig.Reader) []string {
	list := env.List("STRIPE_EVENTS", events.Handled())
	if len(list) == 0 {
		env.Fail("STRIPE_EVENTS", "lists no event type")
	}
	if slices.Contains(list, AllEvents) && len(list) > 1 {
		env.Fail("STRIPE_EVENTS", `mixes "*" with event types`)
	}
	return list
}

// Permits returns a test of whether an event type is permitted by list,
// as [Events] reads it.
func Permits(list []string) func(eventType string) bool {
	if slices.Contains(list, AllEvents) {
		return func(string) bool { return true }
	}
	set := make(map[string]bool, len(list))
	for _, e := range list {
		set[e] = true
	}
	return func(t string) bool { return set[t] }
}

// Storage reads into o the settings of how a task is stored, which
// the api and a recovery (the dashboard) must share: TASK_RETENTION
// (default [stripetask.DefaultRetention]) and PAYLOAD_COMPRESSION ("none", the default, or
// [compress.Zstd]). A bad value is recorded on env.
func Storage(env *envconfig.Reader, o *stripetask.Options) {
	o.Retention = env.Duration("TASK_RETENTION", stripetask.DefaultRetention)
	o.Compression = env.String("PAYLOAD_COMPRESSION", "none")
	switch o.Compression {
	case "none":
		o.Compression = ""
	case compress.Zstd:
	default:
		env.Fail("PAYLOAD_COMPRESSION", `must be "none" or "zstd", got "`+o.Compression+`"`)
	}
}
