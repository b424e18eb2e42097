package stripetest

// The events under testdata/events are generated from stripe-mock's fixtures
// by internal/genfixtures, which needs two stripe-mock modules in the module
// cache (go tool task fixtures downloads them):
//
//	go mod download github.com/stripe/stripe-mock@v0.180.0 github.com/stripe/stripe-mock@v0.203.0

//go:generate go run ./internal/genfixtures -out testdata/events
