// Package console is the dashboard's Console: its routes, pages and JSON
// API over the execution index, asynq and the failure store, with the
// deliveries, recoveries and the audit log's pages, and the server that
// holds them together (Serve).
//
// Internal to the dashboard command, with no compatibility promise.
package console
