// Package e2e tests stripeq as it runs: the real api, worker and dashboard
// binaries, started as processes against a real Redis, fed signed Stripe
// deliveries over HTTP.
package e2e

import "os/exec"

func execCommand(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	return string(out), err
}
