package stripetest

// The events under testdata/events are generated from stripe-mock's fixtures
// by internal/genfixtures, which needs stripe-mock's module in the module
// cache: go install github.com/stripe/stripe-mock@v0.180.0

//go:generate go run ./internal/genfixtures -out testdata/events
