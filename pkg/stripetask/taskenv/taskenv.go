// Package taskenv reads the settings that decide which Stripe events are
// stored and how: STRIPE_EVENTS, TASK_RETENTION and PAYLOAD_COMPRESSION.
// The api reads them to store deliveries, and the dashboard to store what
// a recovery finds exactly as the api would; the worker reads none of
// them, so they live apart from pkg/stripetask, which every command
// imports.
package taskenv

import (
	"slices"

	"github.com/stripeq/stripeq/pkg/envconfig"
	"github.com/stripeq/stripeq/pkg/stripetask"
)

// Events reads STRIPE_EVENTS, the permitted event types: a
// comma-separated list, or [stripetask.AllEvents]. Default: every type the worker
// handles ([stripetask.Handled]). A list that names no type, or mixes "*" with
// types, is recorded on env as an error. The api stores only permitted
// events; a recovery lists only them.
func Events(env *envconfig.Reader) []string {
	events := env.List("STRIPE_EVENTS", stripetask.Handled())
	if len(events) == 0 {
		env.Fail("STRIPE_EVENTS", "lists no event type")
	}
	if slices.Contains(events, stripetask.AllEvents) && len(events) > 1 {
		env.Fail("STRIPE_EVENTS", `mixes "*" with event types`)
	}
	return events
}

// Storage reads into o the settings of how a task is stored, which
// the api and a recovery (the dashboard) must share: TASK_RETENTION
// (default [stripetask.DefaultRetention]) and PAYLOAD_COMPRESSION ("none", the
// default, or [stripetask.CompressionZstd]). A bad value is recorded on env.
func Storage(env *envconfig.Reader, o *stripetask.Options) {
	o.Retention = env.Duration("TASK_RETENTION", stripetask.DefaultRetention)
	o.Compression = env.String("PAYLOAD_COMPRESSION", "none")
	switch o.Compression {
	case "none":
		o.Compression = ""
	case stripetask.CompressionZstd:
	default:
		env.Fail("PAYLOAD_COMPRESSION", `must be "none" or "zstd", got "`+o.Compression+`"`)
	}
}
