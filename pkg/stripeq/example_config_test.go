package stripeq_test

import (
	"fmt"

	"github.com/stripeq/stripeq/pkg/stripeq"
)

// ConfigFromEnv reads the worker command's variables, with its defaults,
// and reports every bad one at once by name, quoting no secret.
func ExampleConfigFromEnv() {
	env := map[string]string{"QUEUE_SHARDS": "4", "GLOBAL_CONCURRENCY": "0"}
	cfg, err := stripeq.ConfigFromEnv(func(k string) string { return env[k] })
	fmt.Println(cfg.Queue, cfg.Shards, cfg.Concurrency, cfg.GlobalConcurrency, cfg.RetryBaseDelay, err)

	env = map[string]string{"STRIPE_SECRET_KEY": "pk_live_123", "WORKER_CONCURRENCY": "lots"}
	_, err = stripeq.ConfigFromEnv(func(k string) string { return env[k] })
	fmt.Println(err)
	// Output:
	// stripe 4 5 -1 30s <nil>
	// invalid configuration:
	//   WORKER_CONCURRENCY must be a whole number ≥ 1, got "lots"
	// STRIPE_SECRET_KEY must be a secret (sk_…) or restricted (rk_…) Stripe API key
}
